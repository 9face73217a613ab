"""nn kernels, part 1: Conv, ConvTranspose and pooling against onnxruntime (and onnx's
reference evaluator where onnxruntime lacks an op version or type)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from nn_test_utils import FLOAT_TYPES, check, make_model, rand, tolerance
from onnx import helper, numpy_helper

from ort.testing import assert_outputs_match, run_onnxruntime, run_ort, run_reference
from ort.testing import make_model as graph_model
from ort_provider_cpu.kernels import conv

# --------------------------------------------------------------------------------------------
# Conv
# --------------------------------------------------------------------------------------------

CONV_CASES = [
    # (x shape, w shape, attrs)
    ((2, 4, 11), (6, 4, 3), {}),
    ((2, 4, 11), (6, 4, 3), {"strides": [2], "pads": [1, 2], "dilations": [2]}),
    ((1, 4, 12), (4, 2, 4), {"group": 2, "auto_pad": "SAME_UPPER", "strides": [3]}),
    ((2, 4, 9, 10), (6, 4, 3, 3), {}),
    ((2, 4, 9, 10), (6, 4, 3, 3), {"pads": [1, 1, 1, 1]}),
    ((2, 4, 9, 10), (6, 4, 3, 2), {"strides": [2, 3], "pads": [0, 1, 2, 1]}),
    ((2, 4, 9, 10), (6, 4, 3, 3), {"dilations": [2, 1], "pads": [2, 1, 2, 1]}),
    ((2, 4, 9, 10), (6, 2, 3, 3), {"group": 2, "pads": [1, 1, 1, 1]}),
    ((2, 4, 9, 10), (8, 1, 3, 3), {"group": 4, "pads": [1, 1, 1, 1], "strides": [2, 2]}),
    ((2, 4, 9, 10), (4, 1, 5, 5), {"group": 4, "auto_pad": "SAME_LOWER"}),
    ((2, 4, 9, 10), (6, 4, 4, 4), {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    ((2, 4, 9, 10), (6, 4, 4, 4), {"auto_pad": "SAME_LOWER", "strides": [2, 3]}),
    ((2, 4, 9, 10), (6, 4, 3, 3), {"auto_pad": "VALID", "strides": [2, 2]}),
    ((2, 4, 9, 10), (6, 4, 1, 1), {}),
    ((2, 4, 9, 10), (6, 4, 1, 1), {"strides": [2, 2]}),
    ((2, 4, 9, 10), (6, 4, 3, 3), {"kernel_shape": [3, 3], "pads": [1, 0, 1, 0]}),
    ((1, 2, 5, 6, 7), (3, 2, 2, 3, 2), {}),
    ((1, 2, 5, 6, 7), (4, 1, 3, 3, 3), {"group": 2, "pads": [1] * 6, "strides": [2, 1, 2]}),
    ((0, 4, 9, 10), (6, 4, 3, 3), {"pads": [1, 1, 1, 1]}),
]


@pytest.mark.parametrize("opset", [1, 11, 22])
@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"{c[0]}-{c[1]}-{c[2]}")
def test_conv(case, opset):
    """Conv over 1-D/2-D/3-D inputs, groups, dilations, strides and pads."""
    x_shape, w_shape, attrs = case
    inputs = {"x": rand(x_shape), "w": rand(w_shape), "b": rand(w_shape[:1])}
    check("Conv", inputs, {"y": np.float32}, opset, **attrs)


@pytest.mark.parametrize("dtype", FLOAT_TYPES)
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("const_w", [False, True])
def test_conv_dtypes_and_constant_weights(dtype, bias, const_w):
    """Conv for every float type, with/without bias, weights fed or constant."""
    inputs = {"x": rand((2, 6, 8, 7), dtype), "w": rand((4, 3, 3, 3), dtype)}
    if bias:
        inputs["b"] = rand((4,), dtype)
    check(
        "Conv", inputs, {"y": dtype}, 11, initializers=("w",) if const_w else (),
        group=2, pads=[1, 2, 1, 0], strides=[1, 2],
    )


def test_conv_rejects_mismatched_channels():
    """Conv raises when W does not match X's channels."""
    with pytest.raises(Exception):
        check("Conv", {"x": rand((1, 3, 5, 5)), "w": rand((2, 2, 3, 3))}, {"y": np.float32}, 11)


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER"])
@pytest.mark.parametrize("attrs", [{"dilations": [2, 1], "strides": [2, 3]}, {"strides": [5, 4]}])
def test_conv_same_padding_corner_cases(auto_pad, attrs):
    """SAME padding with dilations (onnxruntime refuses) and with strides larger than the
    kernel (onnxruntime pads negatively): onnx's reference follows the spec, as we do."""
    w_shape = (3, 2, 3, 3) if "dilations" in attrs else (3, 2, 1, 1)
    inputs = {"x": rand((1, 2, 9, 10)), "w": rand(w_shape)}
    check("Conv", inputs, {"y": np.float32}, 11, oracle="reference", auto_pad=auto_pad, **attrs)


# --------------------------------------------------------------------------------------------
# Conv fast paths: chunked im2col, 1x1, depthwise, reused buffers
# --------------------------------------------------------------------------------------------

CHUNK_CASES = [
    # (x shape, w shape, attrs): small budgets split these into row chunks or image chunks
    ((3, 4, 9, 10), (6, 4, 3, 3), {"pads": [1, 1, 1, 1]}),
    ((5, 4, 3, 2), (6, 4, 1, 1), {}),
    ((5, 4, 4, 3), (6, 2, 3, 3), {"group": 2, "pads": [1, 0, 1, 2]}),
    ((3, 4, 9, 10), (6, 4, 1, 1), {}),
    ((3, 4, 9, 10), (6, 4, 1, 1), {"strides": [2, 2]}),
    ((3, 4, 9, 10), (6, 4, 3, 2), {"strides": [2, 3], "dilations": [2, 1], "pads": [2] * 4}),
    ((2, 4, 13), (6, 4, 3), {"pads": [1, 1]}),
    ((2, 2, 5, 6, 7), (3, 2, 2, 3, 2), {"pads": [1, 0, 1, 0, 1, 1]}),
]


@pytest.mark.parametrize("budget", [(64, 8), (64, 40), (1 << 19, 160)])
@pytest.mark.parametrize("case", CHUNK_CASES, ids=lambda c: f"{c[0]}-{c[1]}-{c[2]}")
def test_conv_in_chunks(case, budget, monkeypatch):
    """im2col + GEMM in chunks of output rows of one image or of several whole images (the
    column budget shrunk so that small inputs split), with 1x1 convolutions multiplying X."""
    monkeypatch.setattr(conv, "_COLUMN_BUDGET", budget[0])
    monkeypatch.setattr(conv, "_MIN_COLUMNS", budget[1])
    x_shape, w_shape, attrs = case
    inputs = {"x": rand(x_shape), "w": rand(w_shape), "b": rand(w_shape[:1])}
    check("Conv", inputs, {"y": np.float32}, 11, initializers=("w", "b"), **attrs)


DEPTHWISE_CASES = [
    ((2, 6, 9, 10), (6, 1, 3, 3), {"pads": [1, 1, 1, 1]}),
    ((2, 6, 9, 10), (6, 1, 3, 3), {"pads": [1, 1, 1, 1], "strides": [2, 2]}),
    ((2, 6, 9, 10), (6, 1, 3, 3), {"pads": [0, 1, 2, 1], "strides": [2, 3]}),
    ((2, 6, 9, 10), (6, 1, 3, 2), {"dilations": [2, 3], "pads": [2, 1, 1, 2]}),
    ((2, 6, 9, 10), (6, 1, 3, 3), {"dilations": [2, 2], "strides": [2, 2]}),
    ((2, 6, 9, 10), (6, 1, 5, 5), {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    ((2, 6, 9, 10), (6, 1, 4, 4), {"auto_pad": "SAME_LOWER", "strides": [3, 2]}),
    ((1, 5, 7, 6), (5, 1, 1, 1), {"strides": [2, 1]}),
    ((2, 6, 11), (6, 1, 3), {"pads": [1, 2], "strides": [2]}),
    ((1, 4, 5, 6, 7), (4, 1, 3, 3, 3), {"pads": [1] * 6, "strides": [1, 2, 1]}),
]


@pytest.mark.parametrize("block", [1, 1 << 18])
@pytest.mark.parametrize("case", DEPTHWISE_CASES, ids=lambda c: f"{c[0]}-{c[1]}-{c[2]}")
def test_conv_depthwise(case, block, monkeypatch):
    """Depthwise Conv (group = channels): stride phases, dilations, padding, channels
    contracted one at a time or all at once; 1-D and 3-D take per-tap slices."""
    monkeypatch.setattr(conv, "_DEPTHWISE_COLUMNS", block)
    x_shape, w_shape, attrs = case
    inputs = {"x": rand(x_shape), "w": rand(w_shape), "b": rand(w_shape[:1])}
    check("Conv", inputs, {"y": np.float32}, 11, initializers=("w",), group=x_shape[1],
          **attrs)


def _dynamic_conv_model() -> onnx.ModelProto:
    """Conv (SAME_UPPER, stride 2: the padding depends on the input size) -> depthwise Conv
    -> MaxPool over an input with symbolic spatial dims."""
    w1 = numpy_helper.from_array(rand((6, 4, 3, 3)), "w1")
    w2 = numpy_helper.from_array(rand((6, 1, 3, 3)), "w2")
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], auto_pad="SAME_UPPER", strides=[2, 2]),
        helper.make_node("Conv", ["a", "w2"], ["b"], group=6, pads=[1, 0, 0, 1]),
        helper.make_node("MaxPool", ["b"], ["y"], kernel_shape=[2, 2], pads=[1, 1, 0, 0]),
    ]
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["n", 4, "h", "w"])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)
    return graph_model(nodes, [x], [y], [w1, w2], opset=17, ir_version=9)


def test_conv_buffers_are_reused_across_runs_and_shapes():
    """Work buffers kept between runs never leak values from a run with another shape or
    padding (the padded shapes of 9x10 and 10x9 inputs coincide, their pads differ)."""
    import ort

    model = _dynamic_conv_model()
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for shape in [(1, 4, 9, 10), (1, 4, 10, 9), (1, 4, 9, 10), (2, 4, 7, 8), (1, 4, 10, 9)]:
        x = rand(shape)
        assert_outputs_match(session.run(None, {"x": x}), run_onnxruntime(model, {"x": x}),
                             rtol=1e-4, atol=1e-5)


def test_conv_concurrent_runs():
    """Runs of one session on several threads at once each get their own work buffers."""
    from concurrent.futures import ThreadPoolExecutor

    import ort

    model = _dynamic_conv_model()
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    xs = [rand((2, 4, 16, 15)) for _ in range(6)]
    want = [run_onnxruntime(model, {"x": x})[0] for x in xs]
    with ThreadPoolExecutor(3) as pool:
        got = list(pool.map(lambda x: session.run(None, {"x": x})[0], xs * 4))
    assert_outputs_match(got, want * 4, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------------------------
# ConvTranspose
# --------------------------------------------------------------------------------------------

CONV_TRANSPOSE_CASES = [
    ((2, 4, 7), (4, 3, 3), {}),
    ((2, 4, 7), (4, 3, 3), {"strides": [2], "pads": [1, 0], "output_padding": [1]}),
    ((2, 4, 5, 6), (4, 3, 3, 3), {}),
    ((2, 4, 5, 6), (4, 3, 3, 2), {"strides": [2, 3], "pads": [1, 0, 1, 1]}),
    ((2, 4, 5, 6), (4, 2, 3, 3), {"group": 2, "dilations": [2, 1], "strides": [2, 2]}),
    ((2, 4, 5, 6), (4, 1, 3, 3), {"group": 4, "strides": [2, 2], "output_padding": [1, 0]}),
    ((2, 4, 5, 6), (4, 3, 3, 3), {"strides": [2, 2], "output_shape": [10, 13]}),
    ((2, 4, 5, 6), (4, 3, 4, 4), {"strides": [2, 2], "auto_pad": "SAME_UPPER"}),
    ((2, 4, 5, 6), (4, 3, 3, 3), {"strides": [2, 2], "auto_pad": "SAME_LOWER"}),
    ((1, 2, 3, 4, 5), (2, 3, 2, 3, 2), {"strides": [2, 1, 2], "pads": [0, 1, 0, 0, 1, 1]}),
]


@pytest.mark.parametrize("opset", [1, 11, 22])
@pytest.mark.parametrize("case", CONV_TRANSPOSE_CASES, ids=lambda c: f"{c[0]}-{c[1]}-{c[2]}")
def test_conv_transpose(case, opset):
    """ConvTranspose over 1-D/2-D/3-D inputs with strides, pads, groups and output shapes."""
    x_shape, w_shape, attrs = case
    group = attrs.get("group", 1)
    inputs = {"x": rand(x_shape), "w": rand(w_shape), "b": rand((w_shape[1] * group,))}
    check("ConvTranspose", inputs, {"y": np.float32}, opset, **attrs)


@pytest.mark.parametrize("dtype", [np.float64, np.float16])
def test_conv_transpose_dtypes(dtype):
    """ConvTranspose for float64 and float16."""
    inputs = {"x": rand((1, 2, 4, 5), dtype), "w": rand((2, 3, 3, 3), dtype)}
    check("ConvTranspose", inputs, {"y": dtype}, 11, strides=[2, 2], pads=[1, 1, 0, 0])


# --------------------------------------------------------------------------------------------
# MaxPool / AveragePool
# --------------------------------------------------------------------------------------------

POOL_CASES = [
    ((2, 3, 11), {"kernel_shape": [3]}),
    ((2, 3, 11), {"kernel_shape": [3], "strides": [2], "pads": [1, 1]}),
    ((2, 3, 9, 10), {"kernel_shape": [2, 2], "strides": [2, 2]}),
    ((2, 3, 9, 10), {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}),
    ((2, 3, 9, 10), {"kernel_shape": [3, 2], "strides": [2, 3], "pads": [1, 0, 2, 1]}),
    ((2, 3, 9, 10), {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"}),
    ((2, 3, 9, 10), {"kernel_shape": [4, 4], "strides": [3, 2], "auto_pad": "SAME_LOWER"}),
    ((2, 3, 9, 10), {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "VALID"}),
    ((1, 2, 5, 6, 7), {"kernel_shape": [2, 3, 2], "strides": [1, 2, 2],
                       "pads": [0, 1, 1, 1, 1, 0]}),
]
CEIL_CASES = [
    ((2, 3, 9, 10), {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1}),
    ((2, 3, 10, 11), {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1, "pads": [1] * 4}),
    ((2, 3, 7, 8), {"kernel_shape": [3, 2], "strides": [3, 3], "ceil_mode": 1, "pads": [1, 0] * 2}),
]
DILATION_CASES = [
    ((2, 3, 9, 10), {"kernel_shape": [2, 2], "dilations": [2, 2]}),
    ((2, 3, 9, 10), {"kernel_shape": [3, 2], "dilations": [2, 3], "strides": [2, 1],
                     "pads": [2, 1, 1, 1]}),
    ((2, 3, 12, 11), {"kernel_shape": [2, 2], "dilations": [2, 2], "strides": [3, 3],
                      "ceil_mode": 1}),
]


def _ids(case):
    return f"{case[0]}-{case[1]}"


@pytest.mark.parametrize("opset", [1, 8, 10, 11, 12, 22])
@pytest.mark.parametrize("case", POOL_CASES, ids=_ids)
def test_max_pool(case, opset):
    """MaxPool values with explicit and automatic padding, every version."""
    x_shape, attrs = case
    check("MaxPool", {"x": rand(x_shape)}, {"y": np.float32}, opset, **attrs)


@pytest.mark.parametrize("storage_order", [0, 1])
@pytest.mark.parametrize("case", POOL_CASES + CEIL_CASES + DILATION_CASES, ids=_ids)
def test_max_pool_indices(case, storage_order):
    """MaxPool's Indices output, row- and column-major."""
    x_shape, attrs = case
    check(
        "MaxPool", {"x": rand(x_shape)}, {"y": np.float32, "i": np.int64}, 12,
        storage_order=storage_order, **attrs,
    )


@pytest.mark.parametrize("case", CEIL_CASES + DILATION_CASES, ids=_ids)
@pytest.mark.parametrize("opset", [10, 11, 12, 22])
def test_max_pool_ceil_and_dilations(case, opset):
    """MaxPool with ceil_mode and dilations (opset 10+)."""
    x_shape, attrs = case
    check("MaxPool", {"x": rand(x_shape)}, {"y": np.float32}, opset, **attrs)


@pytest.mark.parametrize("with_indices", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.int8, np.uint8])
def test_max_pool_dtypes(dtype, with_indices):
    """MaxPool over float64/float16 and the 8-bit integer types of opset 12."""
    x = (rand((2, 3, 7, 8)) * 100).astype(dtype)
    outputs = {"y": dtype, "i": np.int64} if with_indices else {"y": dtype}
    check("MaxPool", {"x": x}, outputs, 12, kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2])


@pytest.mark.parametrize("kernel", [2, 3])
@pytest.mark.parametrize("stride", [2, 3])
@pytest.mark.parametrize("pad", [0, 1])
def test_pool_ceil_mode_edges(kernel, stride, pad):
    """ceil_mode windows that hang over the end, and windows that would start in the padding."""
    x = {"x": rand((1, 2, 5, 5))}
    attrs = {"kernel_shape": [kernel] * 2, "strides": [stride] * 2, "pads": [pad] * 4}
    attrs["ceil_mode"] = 1
    check("MaxPool", x, {"y": np.float32, "i": np.int64}, 12, **attrs)
    for include_pad in (0, 1):
        check("AveragePool", x, {"y": np.float32}, 19, count_include_pad=include_pad, **attrs)


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER"])
@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
def test_pool_same_padding_with_dilations(op, auto_pad):
    """SAME padding with dilations pads per the spec (onnxruntime ignores the dilations when it
    pads); compare with onnxruntime given the spec's padding explicitly."""
    x = rand((1, 2, 9, 10))
    attrs = {"kernel_shape": [3, 3], "dilations": [2, 2]}
    if op == "AveragePool":
        attrs["count_include_pad"] = 1
    model, feeds = make_model(op, {"x": x}, {"y": np.float32}, 19, auto_pad=auto_pad, **attrs)
    explicit, _ = make_model(op, {"x": x}, {"y": np.float32}, 19, pads=[2, 2, 2, 2], **attrs)
    assert_outputs_match(run_ort(model, feeds), run_onnxruntime(explicit, feeds),
                         rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
def test_pool_empty_batch(op):
    """Pooling an empty batch gives an empty output."""
    outputs = {"y": np.float32, "i": np.int64} if op == "MaxPool" else {"y": np.float32}
    check(op, {"x": rand((0, 3, 6, 7))}, outputs, 12, kernel_shape=[2, 2], pads=[1, 1, 1, 1])


@pytest.mark.parametrize("include_pad", [0, 1])
@pytest.mark.parametrize("opset", [7, 10, 11, 19, 22])
@pytest.mark.parametrize("case", POOL_CASES, ids=_ids)
def test_average_pool(case, opset, include_pad):
    """AveragePool with and without counting the padding."""
    x_shape, attrs = case
    x = {"x": rand(x_shape)}
    check("AveragePool", x, {"y": np.float32}, opset, count_include_pad=include_pad, **attrs)


def test_average_pool_opset1():
    """AveragePool-1 excludes padding per its spec; onnxruntime has no AveragePool-1 and onnx's
    reference includes the padding, so compare with onnxruntime's AveragePool-7 default."""
    x = rand((2, 3, 7, 8))
    attrs = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}
    old, feeds = make_model("AveragePool", {"x": x}, {"y": np.float32}, 1, **attrs)
    new, _ = make_model("AveragePool", {"x": x}, {"y": np.float32}, 7, **attrs)
    assert_outputs_match(run_ort(old, feeds), run_onnxruntime(new, feeds), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("include_pad", [0, 1])
@pytest.mark.parametrize("case", CEIL_CASES, ids=_ids)
def test_average_pool_ceil(case, include_pad):
    """AveragePool with ceil_mode (opset 10+)."""
    x_shape, attrs = case
    x = {"x": rand(x_shape)}
    check("AveragePool", x, {"y": np.float32}, 11, count_include_pad=include_pad, **attrs)


@pytest.mark.parametrize("include_pad", [0, 1])
@pytest.mark.parametrize("case", DILATION_CASES, ids=_ids)
def test_average_pool_dilations(case, include_pad):
    """AveragePool with dilations (opset 19+)."""
    x_shape, attrs = case
    x = {"x": rand(x_shape)}
    check("AveragePool", x, {"y": np.float32}, 19, count_include_pad=include_pad, **attrs)


@pytest.mark.parametrize("dtype", [np.float64, np.float16])
def test_average_pool_dtypes(dtype):
    """AveragePool over float64 and float16."""
    check(
        "AveragePool", {"x": rand((2, 3, 7, 8), dtype)}, {"y": dtype}, 11,
        kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2],
    )


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
@pytest.mark.parametrize("shape", [(2, 3, 5), (2, 3, 4, 5), (1, 2, 3, 4, 5)])
@pytest.mark.parametrize("opset", [1, 22])
def test_global_pool(op, shape, opset):
    """GlobalAveragePool and GlobalMaxPool over 1-D, 2-D and 3-D spatial inputs."""
    check(op, {"x": rand(shape)}, {"y": np.float32}, opset)


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
@pytest.mark.parametrize("dtype", [np.float64, np.float16])
def test_global_pool_dtypes(op, dtype):
    """Global pooling in float64/float16, checked against numpy (onnxruntime lacks some of
    these types and onnx's reference GlobalMaxPool mishandles non-2-D spatial inputs)."""
    x = rand((2, 3, 4, 5, 3), dtype)
    (got,) = run_ort(*make_model(op, {"x": x}, {"y": dtype}, 22))
    reduce = np.mean if op == "GlobalAveragePool" else np.max
    want = reduce(x.astype(np.float64), axis=(2, 3, 4), keepdims=True)
    assert got.dtype == dtype and got.shape == (2, 3, 1, 1, 1)
    np.testing.assert_allclose(got.astype(np.float64), want, **tolerance(dtype))


@pytest.mark.parametrize("dtype", ["bfloat16", np.float16])
def test_softmax_low_precision_rounds_each_step_like_the_reference(dtype):
    import ml_dtypes

    dtype = np.dtype(ml_dtypes.bfloat16 if dtype == "bfloat16" else dtype)
    x = (rand((4, 33)) * 8).astype(dtype)
    model, feeds = make_model("Softmax", {"x": x}, {"y": dtype}, opset=13, axis=-1)
    (got,) = run_ort(model, feeds)
    (want,) = run_reference(model, feeds)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got.astype(np.float32), want.astype(np.float32))
