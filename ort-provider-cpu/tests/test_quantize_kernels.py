"""Quantization kernels (QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, QLinearMatMul,
QLinearConv, ConvInteger) and BitCast of the CPU provider, compared with onnxruntime on
single-node models (onnx's ReferenceEvaluator where onnxruntime lacks the type or opset)."""

import ml_dtypes
import numpy as np
import ort
import pytest
from onnx import TensorProto
from ort.testing import run_ort
from single_node import check, make_model, rand

INT_TYPES = [np.uint8, np.int8, np.uint16, np.int16]
NARROW_INT_TYPES = [ml_dtypes.int4, ml_dtypes.uint4, ml_dtypes.int2, ml_dtypes.uint2]
FLOAT8_TYPES = [ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e4m3fnuz, ml_dtypes.float8_e5m2,
                ml_dtypes.float8_e5m2fnuz]


def _zero_point(dtype, shape=(), value=3):
    """A zero point of ``dtype`` (0 for float types and unsigned 2-bit)."""
    if np.dtype(dtype).kind not in "iu" or np.dtype(dtype) == np.dtype(ml_dtypes.uint2):
        value = 0
    return np.full(shape, value, dtype=np.int32).astype(dtype)


def _raises(op, inputs, attrs, opset, match):
    """Assert that building or running the model raises with ``match`` in the message."""
    model, feeds = make_model(op, inputs, attrs, opset)
    with pytest.raises(Exception, match=match):
        run_ort(model, feeds)


# ---- QuantizeLinear -----------------------------------------------------------------------

@pytest.mark.parametrize("opset", [10, 13, 19, 21, 23, 25])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_quantize_per_tensor(opset, dtype):
    x = rand((3, 4, 5), np.float32, -200, 200)
    check("QuantizeLinear", [x, np.array(0.73, np.float32), _zero_point(dtype)], opset=opset)


@pytest.mark.parametrize("dtype", INT_TYPES)
def test_quantize_saturates_and_rounds_half_to_even(dtype):
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 1e9, -1e9, np.inf, -np.inf, 3.49],
                 np.float32)
    check("QuantizeLinear", [x, np.array(1.0, np.float32), _zero_point(dtype)], opset=21)


@pytest.mark.parametrize("opset", [13, 21, 25])
@pytest.mark.parametrize("axis", [1, -1, 0])
def test_quantize_per_axis(opset, axis):
    x = rand((3, 4, 5), np.float32, -100, 100)
    n = x.shape[axis]
    scale = rand((n,), np.float32, 0.1, 2.0)
    check("QuantizeLinear", [x, scale, np.arange(n).astype(np.uint8)], {"axis": axis},
          opset=opset)


def test_quantize_per_tensor_default_uint8_without_zero_point():
    check("QuantizeLinear", [rand((2, 6), np.float32, -50, 300), np.array(1.3, np.float32)],
          opset=13)


@pytest.mark.parametrize("shape,axis,block", [((3, 8), 1, 2), ((3, 7), 1, 3), ((6, 5), 0, 4),
                                             ((2, 3, 4), -1, 2)])
def test_quantize_blocked(shape, axis, block):
    x = rand(shape, np.float32, -100, 100)
    scale_shape = list(shape)
    scale_shape[axis] = -(-shape[axis] // block)
    scale = rand(tuple(scale_shape), np.float32, 0.5, 3.0)
    zp = rand(tuple(scale_shape), np.int8, -5, 5)
    check("QuantizeLinear", [x, scale, zp], {"axis": axis, "block_size": block}, opset=21)


@pytest.mark.parametrize("dtype", [np.int16, np.uint16, ml_dtypes.int4, ml_dtypes.uint4])
def test_quantize_output_dtype_without_zero_point(dtype):
    code = {np.int16: TensorProto.INT16, np.uint16: TensorProto.UINT16,
            ml_dtypes.int4: TensorProto.INT4, ml_dtypes.uint4: TensorProto.UINT4}[dtype]
    x = rand((4, 6), np.float32, -40, 40)
    got = check("QuantizeLinear", [x, np.array(2.0, np.float32)], {"output_dtype": code},
                opset=21, oracle="ort" if np.dtype(dtype).itemsize == 2 else "ref")[0]
    assert got.dtype == np.dtype(dtype)


@pytest.mark.parametrize("dtype", NARROW_INT_TYPES + [ml_dtypes.float4_e2m1fn])
def test_quantize_narrow_types(dtype):
    x = rand((3, 5), np.float32, -20, 20)
    check("QuantizeLinear", [x, np.array([2.0, 3.0, 0.7], np.float32),
                             _zero_point(dtype, (3,), 1)], {"axis": 0}, opset=25, oracle="ref")


@pytest.mark.parametrize("dtype", FLOAT8_TYPES)
@pytest.mark.parametrize("saturate", [0, 1])
def test_quantize_float8(dtype, saturate):
    x = np.array([0.0, 1.0, -3.3, 1e5, -1e5, 200.0, 0.013, np.inf, -np.inf], np.float32)
    model, feeds = make_model("QuantizeLinear", [x, np.array(2.0, np.float32),
                                                 _zero_point(dtype)],
                              {"saturate": saturate}, opset=21)
    (got,) = run_ort(model, feeds)
    assert got.dtype == np.dtype(dtype)
    ratio = x / 2
    if saturate:
        limit = float(ml_dtypes.finfo(dtype).max)
        ratio = np.clip(ratio, -limit, limit)
    np.testing.assert_array_equal(got.view(np.uint8), ratio.astype(dtype).view(np.uint8))


@pytest.mark.parametrize("x_type", [np.float16, ml_dtypes.bfloat16, np.int32])
def test_quantize_input_types(x_type):
    x = rand((4, 5), np.float32, -100, 100).astype(x_type)
    scale = np.array(3 if x_type == np.int32 else 0.37, x_type)  # x and y_scale share T1
    # the division runs in the scale's type (as the spec and the reference do; onnxruntime
    # divides float16 in float32)
    check("QuantizeLinear", [x, scale, _zero_point(np.int8)], opset=21, oracle="ref")


def test_quantize_scale_of_another_type_than_x_is_refused():
    """x and y_scale share the type parameter T1 (opset 19+): onnxruntime refuses int32 x with
    a float scale when the model loads (Fail, 'bound to different types')."""
    model, _ = make_model("QuantizeLinear", [np.zeros((4,), np.int32), np.float32(0.5),
                                             _zero_point(np.int8)], {}, 21)
    with pytest.raises(ort.Fail, match="inconsistent type"):
        ort.InferenceSession(model.SerializeToString())


@pytest.mark.parametrize("precision", [TensorProto.FLOAT, TensorProto.FLOAT16])
def test_quantize_precision(precision):
    x = rand((4, 5), np.float32, -100, 100).astype(np.float16)
    check("QuantizeLinear", [x, np.array(0.37, np.float16), _zero_point(np.uint8)],
          {"precision": precision}, opset=23, oracle="ref")


def test_quantize_e8m0_scale():
    x = rand((2, 8), np.float32, -100, 100)
    scale = np.array([0.25, 2.0], np.float32).astype(ml_dtypes.float8_e8m0fnu)
    check("QuantizeLinear", [x, scale, _zero_point(np.int8, (2,))], {"axis": 0}, opset=25,
          oracle="ref")


def test_quantize_opset28_and_empty():
    check("QuantizeLinear", [np.zeros((0, 3), np.float32), np.array(1.0, np.float32),
                             _zero_point(np.int8)], opset=28, oracle="ref")
    check("QuantizeLinear", [rand((2, 3)), np.array(0.1, np.float32)], opset=28, oracle="ref")


@pytest.mark.parametrize("inputs,attrs,opset,match", [
    ([rand((2, 4)), np.ones(4, np.float32)], {}, 10, "scalars"),
    ([rand((2, 4)), np.ones(3, np.float32)], {"axis": 1}, 13, "1-D of length 4"),
    ([rand((2, 4)), np.ones(2, np.float32)], {"axis": 2}, 13, "out of range"),
    ([rand((2, 4)), np.ones((2, 3), np.float32)], {"axis": 1, "block_size": 2}, 21,
     "does not match"),
    ([rand((2, 4)), np.ones((2, 2), np.float32)], {"axis": 1, "block_size": -1}, 21,
     "block_size"),
    ([rand((2, 4)), np.float32(1), np.uint8(0)], {"output_dtype": TensorProto.INT8}, 21,
     "output_dtype"),
    ([rand((2, 4)), np.float32(1)], {"output_dtype": TensorProto.FLOAT}, 21,
     "unsupported type|quantized"),
])
def test_quantize_invalid(inputs, attrs, opset, match):
    _raises("QuantizeLinear", inputs, attrs, opset, match)


# ---- DequantizeLinear ---------------------------------------------------------------------

@pytest.mark.parametrize("opset", [10, 13, 19, 21, 23, 25])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int32])
def test_dequantize_per_tensor(opset, dtype):
    x = rand((3, 4), dtype, -100 if dtype != np.uint8 else 0, 200)
    zp = None if dtype == np.int32 else _zero_point(dtype)
    check("DequantizeLinear", [x, np.array(0.37, np.float32), zp], opset=opset)


@pytest.mark.parametrize("dtype", INT_TYPES)
@pytest.mark.parametrize("axis", [0, -1])
def test_dequantize_per_axis(dtype, axis):
    low, high = (0, 60000) if np.dtype(dtype).kind == "u" else (-30000, 30000)
    x = rand((3, 4, 5), dtype, low, min(high, np.iinfo(dtype).max))
    n = x.shape[axis]
    check("DequantizeLinear", [x, rand((n,), np.float32, 0.1, 2), _zero_point(dtype, (n,))],
          {"axis": axis}, opset=21)


@pytest.mark.parametrize("scale_type", [np.float16, ml_dtypes.bfloat16])
def test_dequantize_scale_types(scale_type):
    x = rand((30,), np.int16, -30000, 30000)
    check("DequantizeLinear", [x, np.array(0.37, scale_type), _zero_point(np.int16)], opset=21,
          oracle="ort" if scale_type == np.float16 else "ref", rtol=1e-3)


@pytest.mark.parametrize("shape,axis,block", [((3, 8), 1, 2), ((3, 7), 1, 3), ((5, 2), 0, 2)])
def test_dequantize_blocked(shape, axis, block):
    x = rand(shape, np.uint8, 0, 255)
    scale_shape = list(shape)
    scale_shape[axis] = -(-shape[axis] // block)
    check("DequantizeLinear", [x, rand(tuple(scale_shape), np.float32, 0.5, 3),
                               rand(tuple(scale_shape), np.uint8, 0, 9)],
          {"axis": axis, "block_size": block}, opset=21)


@pytest.mark.parametrize("dtype", NARROW_INT_TYPES + FLOAT8_TYPES + [ml_dtypes.float4_e2m1fn])
def test_dequantize_narrow_types(dtype):
    x = rand((2, 6), np.float32, -8, 8)
    if np.dtype(dtype).kind in "iuV" and dtype in NARROW_INT_TYPES:
        info = ml_dtypes.iinfo(dtype)
        x = np.clip(np.round(x), info.min, info.max)
    x = x.astype(dtype)
    check("DequantizeLinear", [x, np.array([2.0, 0.5], np.float32), _zero_point(dtype, (2,))],
          {"axis": 0}, opset=25, oracle="ref")


@pytest.mark.parametrize("output_dtype,expected", [(TensorProto.FLOAT16, np.float16),
                                                   (TensorProto.BFLOAT16, ml_dtypes.bfloat16)])
def test_dequantize_output_dtype(output_dtype, expected):
    x = rand((4, 4), np.int8, -100, 100)
    got = check("DequantizeLinear", [x, np.array(0.5, np.float32), _zero_point(np.int8)],
                {"output_dtype": output_dtype}, opset=23, oracle="ref")[0]
    assert got.dtype == np.dtype(expected)


def test_dequantize_e8m0_scale():
    x = rand((2, 4), np.int8, -100, 100)
    scale = np.array([0.25, 4.0], np.float32).astype(ml_dtypes.float8_e8m0fnu)
    got = check("DequantizeLinear", [x, scale], {"axis": 0, "output_dtype": TensorProto.FLOAT},
                opset=25, oracle="ref")[0]
    np.testing.assert_array_equal(got, x * np.array([[0.25], [4.0]], np.float32))


def test_dequantize_opset28_and_empty():
    check("DequantizeLinear", [np.zeros((0, 2), np.uint8), np.array(1.0, np.float32)],
          opset=28, oracle="ref")


def test_dequantize_invalid():
    _raises("DequantizeLinear", [rand((2, 4), np.uint8, 0, 9), np.ones(3, np.float32)],
            {"axis": 1}, 13, "1-D of length 4")
    _raises("DequantizeLinear", [rand((2, 4), np.uint8, 0, 9), np.ones(2, np.float32)],
            {}, 10, "scalars")


# ---- DynamicQuantizeLinear ----------------------------------------------------------------

@pytest.mark.parametrize("low,high", [(-5, 5), (1, 7), (-9, -2), (0, 0), (-3, 300)])
def test_dynamic_quantize_linear(low, high):
    x = rand((4, 7), np.float32, low, high) if high > low else np.zeros((4, 7), np.float32)
    check("DynamicQuantizeLinear", [x], opset=11, n_outputs=3)


# ---- QLinearMatMul ------------------------------------------------------------------------

def _qmatmul_inputs(a_shape, b_shape, a_type, b_type, y_type, per_axis=False, ts=np.float32):
    """Inputs of QLinearMatMul with per-tensor (or per-row/column) scales and zero points."""
    a = rand(a_shape, a_type, -100 if a_type == np.int8 else 0, 120)
    b = rand(b_shape, b_type, -100 if b_type == np.int8 else 0, 120)
    m, n = a_shape[-2], b_shape[-1]
    a_scale = rand((m,) if per_axis else (), np.float32, 0.01, 0.05).astype(ts)
    b_scale = rand((n,) if per_axis else (), np.float32, 0.01, 0.05).astype(ts)
    a_zp = _zero_point(a_type, (m,) if per_axis else (), 2)
    b_zp = _zero_point(b_type, (n,) if per_axis else (), 5)
    return [a, a_scale, a_zp, b, b_scale, b_zp, np.array(0.4, ts), _zero_point(y_type, (), 7)]


@pytest.mark.parametrize("opset", [10, 21])
@pytest.mark.parametrize("types", [(np.uint8, np.uint8, np.uint8), (np.int8, np.int8, np.int8),
                                   (np.uint8, np.int8, np.uint8)])
@pytest.mark.parametrize("shapes", [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)),
                                    ((2, 3, 4), (2, 4, 5))])
def test_qlinear_matmul(opset, types, shapes):
    check("QLinearMatMul", _qmatmul_inputs(*shapes, *types), opset=opset)


@pytest.mark.parametrize("opset", [10, 21])
def test_qlinear_matmul_per_column(opset):
    inputs = _qmatmul_inputs((3, 4), (4, 5), np.uint8, np.uint8, np.uint8, per_axis=True)
    inputs[1], inputs[2] = np.array(0.02, np.float32), np.array(2, np.uint8)
    check("QLinearMatMul", inputs, opset=opset)


def test_qlinear_matmul_per_row():
    inputs = _qmatmul_inputs((2, 3, 4), (4, 5), np.uint8, np.int8, np.uint8, per_axis=True)
    a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp = inputs
    model, feeds = make_model("QLinearMatMul", inputs, opset=21)
    (got,) = run_ort(model, feeds)
    acc = (a.astype(np.int64) - a_zp[:, None]) @ (b.astype(np.int64) - b_zp)
    real = acc * (a_scale[:, None] * b_scale / y_scale).astype(np.float64)
    np.testing.assert_array_equal(got, np.clip(np.rint(real) + y_zp, 0, 255).astype(np.uint8))


def test_qlinear_matmul_float16_scales():
    check("QLinearMatMul", _qmatmul_inputs((3, 4), (4, 5), np.int8, np.int8, np.int8,
                                           ts=np.float16), opset=21, oracle="ref")


# ---- ConvInteger, QLinearConv -------------------------------------------------------------

CONV_ATTRS = [{}, {"pads": [1, 1, 1, 1]}, {"strides": [2, 1], "dilations": [1, 2]},
              {"group": 2}, {"auto_pad": "SAME_UPPER"}]


@pytest.mark.parametrize("attrs", CONV_ATTRS)
@pytest.mark.parametrize("w_type", [np.uint8, np.int8])
@pytest.mark.parametrize("zero_points", ["none", "scalar", "per_channel"])
def test_conv_integer(attrs, w_type, zero_points):
    x = rand((2, 4, 6, 7), np.uint8, 0, 255)
    w = rand((6, 4 // attrs.get("group", 1), 3, 3), w_type, -100 if w_type == np.int8 else 0,
             120)
    inputs = [x, w]
    if zero_points == "scalar":
        inputs += [np.array(17, np.uint8), _zero_point(w_type, (), 4)]
    elif zero_points == "per_channel":
        inputs += [np.array(9, np.uint8), rand((6,), w_type, 0, 9)]
    # onnxruntime supports only a per-tensor W zero point
    check("ConvInteger", inputs, attrs, opset=10,
          oracle="ref" if zero_points == "per_channel" else "ort")


def test_conv_integer_constant_weights():
    x = rand((1, 2, 5, 5), np.uint8, 0, 255)
    w = rand((3, 2, 2, 2), np.uint8, 0, 255)
    check("ConvInteger", [x, w, np.array(100, np.uint8), np.array(30, np.uint8)],
          {"pads": [1, 0, 1, 0]}, opset=10, const=(1, 3))


@pytest.mark.parametrize("attrs", CONV_ATTRS)
@pytest.mark.parametrize("types", [(np.uint8, np.uint8), (np.int8, np.int8), (np.uint8, np.int8)])
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("bias", [False, True])
def test_qlinear_conv(attrs, types, per_channel, bias):
    x_type, w_type = types
    x = rand((2, 4, 6, 7), x_type, -100 if x_type == np.int8 else 0, 120)
    w = rand((6, 4 // attrs.get("group", 1), 3, 3), w_type, -100 if w_type == np.int8 else 0,
             120)
    w_scale = rand((6,) if per_channel else (), np.float32, 0.001, 0.01)
    w_zp = _zero_point(w_type, (6,) if per_channel else (), 0)  # onnxruntime: symmetric W
    inputs = [x, np.array(0.02, np.float32), _zero_point(x_type, (), 3), w, w_scale, w_zp,
              np.array(0.05, np.float32), _zero_point(x_type, (), 10)]
    if bias:
        inputs.append(rand((6,), np.int32, -2000, 2000))
    check("QLinearConv", inputs, attrs, opset=10, const=(3, 5) if bias else ())


def test_qlinear_conv_per_channel_weight_zero_point():
    x = rand((1, 3, 5, 5), np.uint8, 0, 255)
    w = rand((4, 3, 3, 3), np.uint8, 0, 255)
    inputs = [x, np.array(0.02, np.float32), np.array(7, np.uint8), w,
              rand((4,), np.float32, 0.001, 0.01), rand((4,), np.uint8, 100, 150),
              np.array(0.3, np.float32), np.array(128, np.uint8), rand((4,), np.int32, -99, 99)]
    check("QLinearConv", inputs, {"pads": [1, 1, 1, 1]}, opset=10, oracle="ref")


# ---- BitCast ------------------------------------------------------------------------------

@pytest.mark.parametrize("src,to", [
    (np.float32, TensorProto.INT32), (np.int32, TensorProto.FLOAT), (np.float64, TensorProto.INT64),
    (np.uint16, TensorProto.FLOAT16), (np.float16, TensorProto.BFLOAT16),
    (np.int8, TensorProto.UINT8), (np.uint8, TensorProto.FLOAT8E4M3FN),
    (np.bool_, TensorProto.UINT8), (np.uint32, TensorProto.INT32),
    (np.complex64, TensorProto.UINT64), (ml_dtypes.int4, TensorProto.UINT4),
    (ml_dtypes.uint4, TensorProto.FLOAT4E2M1),
])
@pytest.mark.parametrize("shape", [(2, 3), (), (0,)])
def test_bitcast(src, to, shape):
    x = rand(shape, np.float32, -7, 7)
    if np.dtype(src).kind in "iu" or src in (ml_dtypes.int4, ml_dtypes.uint4):
        x = np.round(np.abs(x) if src in (np.uint8, np.uint16, np.uint32, ml_dtypes.uint4) else x)
    x = (x > 0) if src == np.bool_ else x.astype(src)
    if src == np.complex64:
        x = x + 1j
    check("BitCast", [x], {"to": to}, opset=26, oracle="ref")


def test_bitcast_uint8_to_bool_and_width_mismatch():
    model, feeds = make_model("BitCast", [np.array([0, 1, 0], np.uint8)],
                              {"to": TensorProto.BOOL}, opset=26)
    np.testing.assert_array_equal(run_ort(model, feeds)[0], [False, True, False])
    _raises("BitCast", [rand((3,))], {"to": TensorProto.INT64}, 26, "bits")
    _raises("BitCast", [rand((3,))], {"to": TensorProto.STRING}, 26, "string")
