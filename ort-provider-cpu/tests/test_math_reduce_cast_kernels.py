"""Math (MatMul, Gemm, Einsum, CumSum, Hardmax), Reduce*/Arg* and Cast kernels of the CPU provider
compared with onnxruntime on single-node models."""

import numpy as np
import onnx
import pytest
from onnx import helper
from single_node import check, make_model, rand

from ort.testing import assert_outputs_match, make_model as graph_model, run_onnxruntime, run_ort


# ---- MatMul, Gemm, MatMulInteger, Einsum -------------------------------------------------

@pytest.mark.parametrize("shapes", [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((4,), (4, 5)),
                                    ((3, 4), (4,)), ((2, 1, 3, 4), (5, 4, 2)), ((4,), (4,)),
                                    ((0, 4), (4, 3))])
@pytest.mark.parametrize("opset", [1, 9, 13])
def test_matmul(shapes, opset):
    check("MatMul", [rand(shapes[0]), rand(shapes[1])], opset=opset,
          oracle="ort" if opset >= 7 else "ref", rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("rows", [1, 3, 64, 65, 130])
@pytest.mark.parametrize("attrs", [{"transB": 1}, {"transB": 1, "alpha": 0.5, "beta": 2.0},
                                   {"transA": 1, "transB": 1}, {}])
def test_gemm_row_counts(rows, attrs):
    """Few rows times a transposed B run as (B^T A^T)^T; more rows as A B^T; C in place."""
    a = rand((17, rows) if attrs.get("transA") else (rows, 17))
    b = rand((9, 17) if attrs.get("transB") else (17, 9))
    check("Gemm", [a, b, rand((9,))], attrs, opset=13, const=(1, 2), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint32])
def test_gemm_integer_scaled(dtype):
    """Integer Gemm with alpha/beta: scaled out of place, rounded back to the type."""
    inputs = [rand((3, 4), dtype, 0, 5), rand((4, 2), dtype, 0, 5), rand((3, 2), dtype, 0, 5)]
    check("Gemm", inputs, {"alpha": 2.0, "beta": 3.0}, opset=13, oracle="ref")


@pytest.mark.parametrize("shapes", [((2, 3, 16), (16, 7)), ((5, 40, 16), (16, 7)),
                                    ((1, 1, 16), (16, 7)), ((0, 3, 4), (4, 5)),
                                    ((2, 0, 4), (4, 5)), ((2, 3, 0), (0, 5))])
def test_matmul_stacked_rows_times_matrix(shapes):
    """(..., M, K) @ (K, N) runs as one 2-D GEMM over all rows (empty dims included)."""
    check("MatMul", [rand(shapes[0]), rand(shapes[1])], const=(1,), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("level", [0, 99])
@pytest.mark.parametrize("rows", [4, 100])
def test_matmul_with_transposed_constant(level, rows):
    """MatMul(X, Transpose(W)) with W an initializer: the transposed weight (folded or not)
    is multiplied as a C-ordered copy made once; results stay right across runs."""
    import ort

    w = rand((12, 16))
    nodes = [helper.make_node("Transpose", ["w"], ["wt"]),
             helper.make_node("MatMul", ["x", "wt"], ["y"])]
    model = graph_model(nodes,
                        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["n", 16])],
                        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
                        [onnx.numpy_helper.from_array(w, "w")], opset=13, ir_version=8)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel(level)
    sess = ort.InferenceSession(model.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])
    for n in (rows, rows + 1, rows):
        x = rand((n, 16))
        np.testing.assert_allclose(sess.run(None, {"x": x})[0], x @ w.T, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.int64])
def test_matmul_types(dtype):
    check("MatMul", [rand((2, 3, 4), dtype), rand((4, 2), dtype)])


@pytest.mark.parametrize("attrs", [
    {}, {"alpha": 0.5}, {"beta": 2.0}, {"transA": 1}, {"transB": 1},
    {"transA": 1, "transB": 1, "alpha": 1.5, "beta": 0.5}, {"beta": 0.0},
])
@pytest.mark.parametrize("c_shape", [None, (5,), (3, 5), (1, 5), (3, 1), ()])
def test_gemm(attrs, c_shape):
    a = rand((4, 3) if attrs.get("transA") else (3, 4))
    b = rand((5, 4) if attrs.get("transB") else (4, 5))
    inputs = [a, b] if c_shape is None else [a, b, rand(c_shape)]
    check("Gemm", inputs, attrs, opset=13, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("opset", [7, 9, 11])
def test_gemm_old_opsets(opset):
    check("Gemm", [rand((3, 4)), rand((4, 5)), rand((5,))], {"alpha": 2.0}, opset=opset,
          rtol=1e-5, atol=1e-5)


def test_gemm_legacy_broadcast():
    a, b, c = rand((3, 4)), rand((4, 5)), rand((5,))
    model, feeds = make_model("Gemm", [a, b, c], {"broadcast": 1, "beta": 2.0}, opset=6)
    (got,) = run_ort(model, feeds)
    np.testing.assert_allclose(got, a @ b + 2 * c, rtol=1e-5)


@pytest.mark.parametrize("a_type,b_type", [(np.uint8, np.uint8), (np.int8, np.int8),
                                           (np.uint8, np.int8)])
@pytest.mark.parametrize("zero_points", ["none", "scalar", "vector"])
def test_matmul_integer(a_type, b_type, zero_points):
    a = rand((3, 4), a_type, 0, 100)
    b = rand((4, 5), b_type, 0, 100)
    inputs = [a, b]
    if zero_points == "scalar":
        inputs += [np.array(3, a_type), np.array(7, b_type)]
    elif zero_points == "vector":
        # onnxruntime takes only a scalar a_zero_point; b's may be per column
        inputs += [np.array([2], a_type), np.array([1, 2, 3, 4, 5], b_type)]
    check("MatMulInteger", inputs)


@pytest.mark.parametrize("equation,shapes", [
    ("ij,jk->ik", [(3, 4), (4, 5)]), ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("ii->i", [(4, 4)]), ("ij->ji", [(3, 4)]), ("ij->", [(3, 4)]), ("i,i", [(5,), (5,)]),
    ("...ij,...jk", [(2, 3, 4), (2, 4, 2)]), ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),
    ("b i j, b j k -> b i k", [(2, 3, 4), (2, 4, 5)]), ("ij", [(3, 4)]),
])
def test_einsum(equation, shapes):
    check("Einsum", [rand(s) for s in shapes], {"equation": equation}, opset=12,
          rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("equation,shapes", [("ij,jk->ik", [(3, 4), (4, 5)]),
                                             ("bij->b", [(2, 3, 4)])])
@pytest.mark.parametrize("dtype", ["bfloat16", np.float16])
def test_einsum_low_precision(equation, shapes, dtype):
    import ml_dtypes

    dtype = ml_dtypes.bfloat16 if dtype == "bfloat16" else dtype
    inputs = [rand(s).astype(dtype) for s in shapes]
    got = check("Einsum", inputs, {"equation": equation}, opset=28, oracle="ref",
                rtol=1e-2, atol=1e-2)[0]
    assert got.dtype == np.dtype(dtype)


# ---- Det ---------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(3, 3), (2, 4, 4), (2, 1, 2, 2), (0, 3, 3), (1, 1)])
@pytest.mark.parametrize("opset", [11, 22])
def test_det(shape, opset):
    check("Det", [rand(shape)], opset=opset, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float64, np.float16, "bfloat16"])
def test_det_types(dtype):
    import ml_dtypes

    dtype = ml_dtypes.bfloat16 if dtype == "bfloat16" else dtype
    x = rand((2, 3, 3)).astype(dtype)
    model, feeds = make_model("Det", [x], opset=22)
    (got,) = run_ort(model, feeds)
    assert got.dtype == np.dtype(dtype) and got.shape == (2,)
    want = np.linalg.det(x.astype(np.float64))
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=2e-2, atol=2e-2)


def test_det_not_square():
    model, feeds = make_model("Det", [rand((2, 3, 4))], opset=22)
    with pytest.raises(Exception):
        run_ort(model, feeds)


# ---- CumSum, CumProd, Hardmax ------------------------------------------------------------

@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("exclusive", [0, 1])
@pytest.mark.parametrize("reverse", [0, 1])
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.int64])
def test_cumsum(axis, exclusive, reverse, dtype):
    check("CumSum", [rand((3, 4, 5), dtype), np.array(axis, np.int64)],
          {"exclusive": exclusive, "reverse": reverse}, opset=14, const=(1,))


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("exclusive", [0, 1])
@pytest.mark.parametrize("reverse", [0, 1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64])
def test_cumprod(axis, exclusive, reverse, dtype):
    x = rand((3, 4, 5), dtype, -2, 2)
    check("CumProd", [x, np.array(axis, np.int32)], {"exclusive": exclusive, "reverse": reverse},
          opset=26, rtol=1e-5)


@pytest.mark.parametrize("shape,axis", [((0, 3), 0), ((4, 0), 1), ((5,), 0)])
def test_cumprod_edge_shapes(shape, axis):
    check("CumProd", [rand(shape), np.array(axis, np.int64)], {"exclusive": 1}, opset=26,
          const=(1,))


@pytest.mark.parametrize("opset,axis", [(11, None), (11, 0), (11, 2), (13, None), (13, 0),
                                        (13, 1), (13, -2)])
def test_hardmax(opset, axis):
    x = rand((2, 3, 4))
    x[0, 0, :2] = 5.0  # a tie: the first index wins
    attrs = {} if axis is None else {"axis": axis}
    check("Hardmax", [x], attrs, opset=opset)


# ---- Reduce ------------------------------------------------------------------------------

REDUCE_OPS = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
              "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"]


def _reduce_input(op, dtype=np.float32, shape=(2, 3, 4)):
    """A random input in the op's domain (positive for the logarithms)."""
    low = 0.1 if op == "ReduceLogSum" else -2
    return rand(shape, dtype, low, 2)


@pytest.mark.parametrize("op", REDUCE_OPS)
@pytest.mark.parametrize("axes", [None, [1], [0, 2], [-1]])
@pytest.mark.parametrize("keepdims", [0, 1])
@pytest.mark.parametrize("opset", [11, 13, 18])
def test_reduce(op, axes, keepdims, opset):
    x = _reduce_input(op)
    attrs = {"keepdims": keepdims}
    inputs = [x]
    axes_as_input = opset >= 18 or (op == "ReduceSum" and opset >= 13)
    if axes is not None:
        if axes_as_input:
            inputs.append(np.array(axes, np.int64))
        else:
            attrs["axes"] = axes
    check(op, inputs, attrs, opset=opset, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("op", REDUCE_OPS)
@pytest.mark.parametrize("noop", [0, 1])
def test_reduce_empty_axes(op, noop):
    opset = 18
    x = _reduce_input(op)
    check(op, [x, np.array([], np.int64)], {"noop_with_empty_axes": noop}, opset=opset,
          const=(1,), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("op", REDUCE_OPS)
def test_reduce_empty_tensor(op):
    x = np.zeros((2, 0, 3), np.float32)
    check(op, [x, np.array([1], np.int64)], {"keepdims": 1}, opset=18, const=(1,))


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin",
                                "ReduceProd", "ReduceL1", "ReduceSumSquare"])
@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float64])
def test_reduce_types(op, dtype):
    x = rand((3, 4), dtype, -5, 5)
    check(op, [x, np.array([1], np.int64)], opset=18, const=(1,))


def test_reduce_old_opset_reference():
    x = rand((2, 3, 4))
    for op in ("ReduceSum", "ReduceMean", "ReduceMax"):
        check(op, [x], {"axes": [1], "keepdims": 0}, opset=1, oracle="ref")


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("keepdims", [0, 1])
@pytest.mark.parametrize("last", [0, 1])
@pytest.mark.parametrize("dtype", [np.float32, np.int32])
def test_arg(op, axis, keepdims, last, dtype):
    x = rand((3, 4, 5), dtype, -2, 2)  # integers: many ties
    check(op, [x], {"axis": axis, "keepdims": keepdims, "select_last_index": last}, opset=13)


@pytest.mark.parametrize("opset", [1, 11])
def test_arg_old(opset):
    check("ArgMax", [rand((3, 4))], {"axis": 1}, opset=opset, oracle="ort" if opset > 1 else "ref")


# ---- Cast --------------------------------------------------------------------------------

NUMERIC = [np.float32, np.float64, np.float16, np.int8, np.uint8, np.int16, np.uint16,
           np.int32, np.uint32, np.int64, np.uint64, np.bool_]


@pytest.mark.parametrize("src", NUMERIC)
@pytest.mark.parametrize("dst", NUMERIC)
def test_cast_numeric(src, dst):
    x = rand((3, 5), src, 0, 100)
    check("Cast", [x], {"to": onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dst))}, opset=21,
          rtol=1e-3)


@pytest.mark.parametrize("opset", [6, 9, 13, 19, 21])
def test_cast_opsets(opset):
    check("Cast", [rand((4,), np.float32)], {"to": onnx.TensorProto.INT32}, opset=opset)


def test_cast_v1_string_to():
    x = rand((4,), np.float32, -10, 10)
    model, feeds = make_model("Cast", [x], {"to": "INT32"}, opset=1)
    (got,) = run_ort(model, feeds)
    assert got.dtype == np.int32
    assert got.tolist() == x.astype(np.int32).tolist()


@pytest.mark.parametrize("src", [np.float32, np.float64, np.float16, np.int64, np.int8,
                                 np.uint64, np.bool_])
def test_cast_to_string(src):
    if np.dtype(src).kind == "f":
        x = np.array([0.1, 1.0, -0.0, 1e20, 1.5e-7, np.nan, np.inf, -np.inf, 123456789.0,
                      1 / 3, 1e-5, 100000.0, 0.5, 65504.0], dtype=src)
    else:
        x = rand((6,), src, 0, 100)
    check("Cast", [x], {"to": onnx.TensorProto.STRING})


@pytest.mark.parametrize("dst", [np.float32, np.float64, np.float16, np.int32, np.int64,
                                 np.uint8, np.bool_])
def test_cast_from_string(dst):
    if np.dtype(dst).kind == "f":
        values = ["1.5", "-2", "inf", "-INF", "NaN", "1e3", " 7", "+3", "0.1"]
    elif np.dtype(dst) == np.bool_:
        values = ["1", "0", "2", "00"]
    else:
        values = ["1", "2", "+3", " 4", "17"]
    x = np.array(values, dtype=object)
    check("Cast", [x], {"to": onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dst))})


FLOAT8 = [onnx.TensorProto.FLOAT8E4M3FN, onnx.TensorProto.FLOAT8E4M3FNUZ,
          onnx.TensorProto.FLOAT8E5M2, onnx.TensorProto.FLOAT8E5M2FNUZ]


def check_cast_roundtrip(x, to, saturate=1):
    """Cast x to ``to`` and back to float in one model (onnxruntime cannot hand out
    float8/bfloat16 arrays) and compare with onnxruntime bit for bit."""
    nodes = [helper.make_node("Cast", ["x"], ["narrow"], to=to, saturate=saturate),
             helper.make_node("Cast", ["narrow"], ["y"], to=onnx.TensorProto.FLOAT)]
    elem = onnx.helper.np_dtype_to_tensor_dtype(x.dtype)
    model = graph_model(nodes, [helper.make_tensor_value_info("x", elem, x.shape)],
                        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, x.shape)],
                        opset=21, ir_version=10)
    want = run_onnxruntime(model, {"x": x})
    got = run_ort(model, {"x": x})
    assert got[0].dtype == np.float32
    assert_outputs_match(got, want, rtol=0, atol=0)


@pytest.mark.parametrize("to", FLOAT8)
@pytest.mark.parametrize("saturate", [0, 1])
@pytest.mark.parametrize("src", [np.float32, np.float16])
def test_cast_float8(to, saturate, src):
    x = np.array([1000.0, -1000.0, np.inf, -np.inf, np.nan, 448, 464, 500, 0.3, -2.75,
                  1e-3, 0.0, 60000.0, -70000.0, 1e-6, 240, 250], np.float32).astype(src)
    check_cast_roundtrip(x, to, saturate)


@pytest.mark.parametrize("to", FLOAT8 + [onnx.TensorProto.BFLOAT16])
def test_cast_low_precision_random(to):
    check_cast_roundtrip(rand((200,), np.float32, -100, 100), to)


def test_cast_float8_dtype():
    from ort.ep import np_dtype_of

    for to in FLOAT8 + [onnx.TensorProto.BFLOAT16]:
        model, feeds = make_model("Cast", [rand((5,))], {"to": to})
        (got,) = run_ort(model, feeds)
        assert got.dtype == np_dtype_of(to)


def _e8m0_reference(x, saturate, round_mode):
    """Expected float8e8m0 bytes of float32 ``x`` (positive normal values or special)."""
    from onnx.numpy_helper import to_float8e8m0

    codes = to_float8e8m0(x, saturate, round_mode).view(np.uint8).copy()
    inf = np.isinf(x)
    zero = x == 0
    codes[inf] = 254 if saturate else 255  # the spec's table: Inf -> E8M0_MAX / NaN
    codes[zero] = 0 if saturate else 255  # 0 -> E8M0_MIN / NaN
    return codes


@pytest.mark.parametrize("round_mode", ["up", "down", "nearest"])
@pytest.mark.parametrize("saturate", [0, 1])
@pytest.mark.parametrize("src", [np.float32, np.float16, np.float64])
def test_cast_e8m0(round_mode, saturate, src):
    x = np.array([0.124, 0.25, 0.5, 1.1, 1.5, 1.49, 2.0, 3.0, 6.0, 1e-30, 3e38, 1.7e38, 0.0,
                  np.inf, np.nan, 2.0 ** -126, 0.75], np.float32)
    if src == np.float16:
        x = x[(x == 0) | ~np.isfinite(x) | ((np.abs(x) < 6e4) & (np.abs(x) > 1e-4))]
    x = x.astype(src)
    model, feeds = make_model("Cast", [x], {"to": onnx.TensorProto.FLOAT8E8M0,
                                            "saturate": saturate, "round_mode": round_mode},
                              opset=25)
    (got,) = run_ort(model, feeds)
    assert got.dtype == np.dtype("float8_e8m0fnu")
    expected = _e8m0_reference(x.astype(np.float32), saturate, round_mode)
    np.testing.assert_array_equal(got.view(np.uint8), expected)


def test_cast_e8m0_round_trip_and_castlike():
    import ml_dtypes

    x = np.array([0.25, 1.0, 3.0, 1024.0], np.float32)
    like = np.zeros((1,), ml_dtypes.float8_e8m0fnu)
    model, feeds = make_model("CastLike", [x, like], {"round_mode": "down"}, opset=25)
    (got,) = run_ort(model, feeds)
    np.testing.assert_array_equal(got.astype(np.float32), [0.25, 1.0, 2.0, 1024.0])
    check("Cast", [got], {"to": onnx.TensorProto.FLOAT}, opset=25, oracle="ref")


def test_cast_invalid_round_mode():
    model, feeds = make_model("Cast", [rand((3,))], {"to": onnx.TensorProto.FLOAT8E8M0,
                                                     "round_mode": "sideways"}, opset=25)
    with pytest.raises(Exception, match="round_mode"):
        run_ort(model, feeds)


@pytest.mark.parametrize("opset", [15, 19, 21])
@pytest.mark.parametrize("src,like", [(np.float32, np.int64), (np.int32, np.float16),
                                      (np.float64, np.float32), (np.float32, object)])
def test_castlike(opset, src, like):
    x = rand((3, 4), src, 0, 10)
    target = np.array(["a"], dtype=object) if like is object else np.zeros((1,), like)
    check("CastLike", [x, target], opset=opset, rtol=1e-3)


@pytest.mark.parametrize("dtype", ["bfloat16", np.float16])
def test_matmul_low_precision_keeps_the_operand_type(dtype):
    """numpy's matmul of bfloat16 arrays returns float32; MatMul must return bfloat16."""
    import ml_dtypes

    dtype = ml_dtypes.bfloat16 if dtype == "bfloat16" else dtype
    a, b = rand((2, 3, 4)).astype(dtype), rand((4, 5)).astype(dtype)
    got = check("MatMul", [a, b], opset=13, oracle="ref", rtol=1e-2, atol=1e-2)[0]
    assert got.dtype == np.dtype(dtype)
