"""The compiled quantized kernels (:mod:`ort_provider_cpu.kernels.quant_loops`) against the
numpy kernels (provider option ``compiled_kernels=0``) and onnxruntime, bit for bit.

Covers QuantizeLinear / DequantizeLinear (per tensor, per axis, blocked, 8 and 16 bits, ties,
NaN and saturation), DynamicQuantizeLinear, QLinearConv (groups, depthwise, strides, pads,
dilations, per-channel scales, 1-D), QLinearMatMul, QGemm, MatMulIntegerToFloat,
DynamicQuantizeMatMul and QLinearAdd, including sizes whose integer sums are too large for
one float32 GEMM (the float32 slices and the float64 fallback)."""

from __future__ import annotations

import numpy as np
import onnxruntime
import ort
import pytest
from compiled_checks import qlinear_conv_inputs, three_way
from ort.testing import node_model

RNG = np.random.default_rng(16)
MS = "com.microsoft"
U8, I8 = np.uint8, np.int8


def _run_all(op, inputs, attrs=None, constants=(), domain="", opset=21, outputs=1):
    """(compiled outputs, numpy outputs, onnxruntime outputs) of a one-node model."""
    model, feeds = node_model(op, inputs, attrs, domain=domain, opset=opset, outputs=outputs,
                              constants=constants)
    data = model.SerializeToString()
    compiled = ort.InferenceSession(data).run(None, feeds)
    numpy_only = ort.InferenceSession(
        data, providers=[("CPUExecutionProvider", {"compiled_kernels": "0"})]).run(None, feeds)
    so = onnxruntime.SessionOptions()
    so.intra_op_num_threads = 1
    reference = onnxruntime.InferenceSession(data, so, providers=["CPUExecutionProvider"]
                                             ).run(None, feeds)
    return compiled, numpy_only, reference


def _check(op, inputs, attrs=None, constants=(), domain="", opset=21, outputs=1,
           exact_reference=True):
    compiled, numpy_only, reference = _run_all(op, inputs, attrs, constants, domain, opset,
                                               outputs)
    for got, slow, want in zip(compiled, numpy_only, reference):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, slow)
        if exact_reference:
            np.testing.assert_array_equal(got, want)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    return compiled


def _ints(shape, dtype):
    info = np.iinfo(dtype)
    return RNG.integers(info.min, int(info.max) + 1, shape).astype(dtype)


# ---------------------------------------------------------------------------------------------
# QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear
# ---------------------------------------------------------------------------------------------

def _float_input(shape):
    x = (RNG.standard_normal(shape) * 40).astype(np.float32)
    flat = x.reshape(-1)
    if flat.size > 8:
        flat[:4] = [np.nan, np.inf, -np.inf, 1e30]
        flat[4:8] = [1.0, 3.0, -5.0, 7.0]  # ties at scale 2: k + 0.5
    return x


@pytest.mark.parametrize("dtype", [U8, I8, np.uint16, np.int16])
@pytest.mark.parametrize("granularity", ["tensor", "axis1", "axis-1", "block"])
def test_quantize_dequantize_linear(dtype, granularity):
    shape = (2, 5, 3, 7)
    x = _float_input(shape)
    attrs = {}
    if granularity == "tensor":
        scale = np.array(2.0, np.float32)
        zp = np.array(3 if np.dtype(dtype).kind == "u" else -3, dtype)
    elif granularity.startswith("axis"):
        axis = int(granularity[4:])
        count = shape[axis]
        scale = RNG.uniform(0.5, 3, count).astype(np.float32)
        zp = _ints(count, dtype) // 4
        attrs = {"axis": axis}
    else:
        scale = RNG.uniform(0.5, 3, (2, 3, 3, 7)).astype(np.float32)  # blocks of 2 on axis 1
        zp = _ints((2, 3, 3, 7), dtype) // 4
        attrs = {"axis": 1, "block_size": 2}
    if granularity == "block" and np.dtype(dtype).itemsize == 2:
        pytest.skip("onnxruntime runs blocked quantization for 8-bit and 4-bit types only")
    (q,) = _check("QuantizeLinear", [x, scale, zp], attrs, constants=(1, 2))
    _check("DequantizeLinear", [q, scale, zp], attrs, constants=(1, 2))


def test_quantize_linear_without_zero_point_and_empty():
    _check("QuantizeLinear", [_float_input((3, 4)), np.array(0.25, np.float32)])
    _check("QuantizeLinear", [np.zeros((0, 4), np.float32), np.array(0.25, np.float32),
                              np.array(9, U8)])
    _check("DequantizeLinear", [_ints((3, 4), I8), np.array(0.25, np.float32)])


@pytest.mark.parametrize("kind", ["normal", "positive", "negative", "zeros", "ties"])
def test_dynamic_quantize_linear(kind):
    x = RNG.standard_normal((4, 33)).astype(np.float32) * 3
    if kind == "positive":
        x = np.abs(x) + 1
    elif kind == "negative":
        x = -np.abs(x) - 1
    elif kind == "zeros":
        x = np.zeros_like(x)
    elif kind == "ties":
        x = (np.arange(132, dtype=np.float32).reshape(4, 33) - 60) / 2  # scale 95.5/255
    _check("DynamicQuantizeLinear", [x], opset=17, outputs=3)


# ---------------------------------------------------------------------------------------------
# QLinearConv
# ---------------------------------------------------------------------------------------------

def _qlinear_conv_inputs(x_shape, w_shape, x_dtype=U8, w_dtype=I8, per_channel=True,
                         bias=True, w_zp=0):
    return qlinear_conv_inputs(RNG, x_shape, w_shape, x_dtype, w_dtype, per_channel, bias, w_zp)


@pytest.mark.parametrize("case", [
    dict(x=(2, 4, 9, 11), w=(6, 4, 3, 3), attrs={"pads": [1, 1, 1, 1]}),
    dict(x=(1, 6, 10, 7), w=(4, 3, 3, 2), attrs={"group": 2, "strides": [2, 1],
                                                 "pads": [1, 0, 2, 1]}),
    dict(x=(2, 5, 9, 9), w=(5, 1, 3, 3), attrs={"group": 5, "strides": [2, 2],
                                                "pads": [1, 1, 1, 1]}),
    dict(x=(1, 4, 12, 10), w=(4, 1, 3, 3), attrs={"group": 4, "dilations": [2, 2],
                                                  "pads": [2, 2, 2, 2]}),
    dict(x=(2, 3, 7, 8), w=(3, 1, 3, 2), attrs={"group": 3, "pads": [0, 1, 2, 0]}),
    dict(x=(1, 3, 4, 4), w=(3, 1, 3, 3), attrs={"group": 3, "pads": [3, 3, 3, 3]}),
    dict(x=(1, 3, 8, 8), w=(3, 1, 5, 5), attrs={"group": 3, "auto_pad": "SAME_UPPER",
                                                "strides": [3, 2]}),
    dict(x=(2, 3, 6, 6), w=(7, 3, 1, 1), attrs={}, per_channel=False),
    dict(x=(1, 3, 13), w=(4, 3, 3), attrs={"strides": [2], "pads": [1, 0]}),
    dict(x=(2, 3, 5, 5), w=(4, 3, 3, 3), attrs={}, x_dtype=I8),
    dict(x=(1, 3, 6, 6), w=(4, 3, 3, 3), attrs={}, w_dtype=U8, w_zp=7, bias=False),
    dict(x=(0, 3, 6, 6), w=(4, 3, 3, 3), attrs={}),
])
def test_qlinear_conv(case):
    inputs = _qlinear_conv_inputs(case["x"], case["w"], case.get("x_dtype", U8),
                                  case.get("w_dtype", I8), case.get("per_channel", True),
                                  case.get("bias", True), case.get("w_zp", 0))
    _check("QLinearConv", inputs, case["attrs"], constants=(1, 2, 3, 4, 5, 6, 7, 8),
           opset=17)


@pytest.mark.parametrize("x_dtype,w_dtype,w_zp,per_channel", [
    (I8, I8, 0, True), (U8, U8, 9, False), (U8, U8, 200, True), (U8, I8, 0, False)])
@pytest.mark.parametrize("threads", [1, 2])
def test_qlinear_conv_depthwise_folds_the_zero_points(x_dtype, w_dtype, w_zp, per_channel,
                                                      threads, monkeypatch):
    """The depthwise path reads X as it is, pads with X's zero point and folds the zero
    point's share of every output into the bias: padded borders, both 8-bit types, weight
    zero points, images x channels split over threads."""
    from ort_provider_cpu.kernels import conv_compiled, quant_compiled

    monkeypatch.setattr(conv_compiled, "MIN_PIECE_OUTPUTS", 1)
    calls = []
    depthwise = quant_compiled.CompiledQLinearConv.run_depthwise
    monkeypatch.setattr(quant_compiled.CompiledQLinearConv, "run_depthwise",
                        lambda self, *a: calls.append(1) or depthwise(self, *a))
    inputs = _qlinear_conv_inputs((2, 6, 9, 8), (6, 1, 3, 3), x_dtype, w_dtype, per_channel,
                                  True, w_zp)
    model, feeds = node_model("QLinearConv", inputs, {"group": 6, "pads": [1, 2, 1, 0],
                                                      "strides": [1, 2]}, opset=17,
                              constants=(1, 2, 3, 4, 5, 6, 7, 8))
    three_way(model, feeds, rtol=0, atol=0, threads=(threads,))
    assert calls


def test_qlinear_conv_depthwise_with_a_bias_too_large_to_fold():
    """A bias that float32 cannot hold exactly with the taps' sums: the GEMM path runs."""
    inputs = _qlinear_conv_inputs((1, 4, 6, 6), (4, 1, 3, 3))
    inputs[8] = np.array([2 ** 25 + 1, -(2 ** 25) - 3, 17, 2 ** 30], np.int32)
    inputs[6] = np.array(4e7, np.float32)  # keep Y inside its range
    _check("QLinearConv", inputs, {"group": 4, "pads": [1, 1, 1, 1]},
           constants=(1, 2, 3, 4, 5, 6, 7, 8), opset=17)


def test_qlinear_conv_with_sums_too_large_for_float32():
    # all-extreme inputs: the float32 bounds fail and the exact float64 Conv runs
    x = np.full((1, 64, 5, 5), 255, U8)
    w = np.full((8, 64, 3, 3), -128, I8)
    w[:, :, 1, 1] = 127
    inputs = [x, np.array(0.05, np.float32), np.array(0, U8), w,
              np.full(8, 1e-4, np.float32), np.zeros(8, I8), np.array(3.0, np.float32),
              np.array(10, U8), np.arange(8, dtype=np.int32) * 1000]
    _check("QLinearConv", inputs, {"pads": [1, 1, 1, 1]}, constants=(1, 2, 3, 4, 5, 6, 7, 8),
           opset=17)


# ---------------------------------------------------------------------------------------------
# integer GEMM: QLinearMatMul, QGemm, MatMulIntegerToFloat, DynamicQuantizeMatMul
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("a_dtype,b_dtype,per_column", [(U8, I8, True), (U8, U8, False),
                                                         (I8, I8, True)])
def test_qlinear_matmul(a_dtype, b_dtype, per_column):
    a = _ints((2, 5, 24), a_dtype)
    b = _ints((24, 9), b_dtype)
    b_scale = (RNG.uniform(0.001, 0.01, 9) if per_column else np.array(0.004)).astype(np.float32)
    b_zp = np.full(b_scale.shape, 3 if b_dtype == U8 else 0, b_dtype)
    y_zp = np.array(120 if a_dtype == U8 else -2, a_dtype)
    _check("QLinearMatMul", [a, np.array(0.03, np.float32), np.array(7, a_dtype), b, b_scale,
                             b_zp, np.array(0.2, np.float32), y_zp], constants=(1, 2, 3, 4, 5, 6, 7))


@pytest.mark.parametrize("trans_a,trans_b,with_c,quantized", [
    (0, 1, True, True), (1, 0, False, True), (0, 0, True, False), (0, 1, False, False)])
def test_qgemm(trans_a, trans_b, with_c, quantized):
    m, k, n = 6, 20, 11
    a = _ints((k, m) if trans_a else (m, k), U8)
    b = _ints((n, k) if trans_b else (k, n), I8)
    inputs = [a, np.array(0.02, np.float32), np.array(120, U8), b,
              RNG.uniform(0.001, 0.01, n).astype(np.float32), np.zeros(n, I8),
              RNG.integers(-3000, 3000, n).astype(np.int32) if with_c else None]
    if quantized:
        inputs += [np.array(0.3, np.float32), np.array(128, U8)]
    _check("QGemm", inputs, {"transA": trans_a, "transB": trans_b, "alpha": 0.75},
           constants=tuple(range(1, len(inputs))), domain=MS)


@pytest.mark.parametrize("k", [40, 1024, 9000])
def test_matmul_integer_to_float(k):
    # k = 1024 with extreme values needs two float32 slices, k = 9000 the float64 GEMM
    a = _ints((3, 4, k), U8)
    b = _ints((k, 6), I8)
    if k > 40:
        a[...] = 255
        b[...] = 127
    bias = RNG.standard_normal(6).astype(np.float32)
    _check("MatMulIntegerToFloat", [a, b, np.array(0.01, np.float32),
                                    RNG.uniform(0.001, 0.01, 6).astype(np.float32),
                                    np.array(0, U8), np.zeros(6, I8), bias],
           constants=(1, 2, 3, 4, 5, 6), domain=MS)


@pytest.mark.parametrize("per_column,bias", [(True, True), (False, False)])
def test_dynamic_quantize_matmul(per_column, bias):
    a = (RNG.standard_normal((2, 7, 32)) * 2).astype(np.float32)
    b = _ints((32, 10), I8)
    b_scale = (RNG.uniform(0.001, 0.01, 10) if per_column else np.array(0.004)
               ).astype(np.float32)
    inputs = [a, b, b_scale, np.zeros(b_scale.shape, I8),
              RNG.standard_normal(10).astype(np.float32) if bias else None]
    _check("DynamicQuantizeMatMul", inputs, constants=(1, 2, 3, 4), domain=MS)


# ---------------------------------------------------------------------------------------------
# QLinearAdd
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [U8, I8])
@pytest.mark.parametrize("b_shape", [(3, 4, 5), (1, 4, 1)])
def test_qlinear_add(dtype, b_shape):
    a, b = _ints((3, 4, 5), dtype), _ints(b_shape, dtype)
    inputs = [a, np.array(0.031, np.float32), np.array(3, dtype), b,
              np.array(0.017, np.float32), np.array(-2 if dtype == I8 else 9, dtype),
              np.array(0.04, np.float32), np.array(1, dtype)]
    _check("QLinearAdd", inputs, constants=(1, 2, 4, 5, 6, 7), domain=MS)


@pytest.mark.parametrize("w_dtype", [U8, I8])
def test_conv_integer(w_dtype):
    x = _ints((2, 4, 7, 9), U8)
    w = _ints((6, 2, 3, 3), w_dtype)
    _check("ConvInteger", [x, w, np.array(131, U8), np.array(3, w_dtype)],
           {"group": 2, "pads": [1, 0, 1, 2], "strides": [1, 2]}, constants=(1, 2, 3), opset=17)
