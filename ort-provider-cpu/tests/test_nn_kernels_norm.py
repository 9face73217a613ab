"""nn kernels, part 2: normalization, softmax, LRN and Dropout against onnxruntime (and onnx's
reference evaluator where onnxruntime lacks an op version or type)."""

from __future__ import annotations

import numpy as np
import pytest
from nn_test_utils import FLOAT_TYPES, check, make_model, rand, tolerance

from ort.testing import assert_outputs_match, run_onnxruntime, run_ort

SHAPES = [(2, 3), (2, 3, 5), (2, 3, 4, 5), (1, 2, 3, 4, 2)]


def _bn_inputs(shape, dtype, stat_dtype=None):
    """Return BatchNormalization inputs for X of ``shape``."""
    stat_dtype = stat_dtype or dtype
    c = shape[1]
    return {
        "x": rand(shape, dtype),
        "scale": rand((c,), dtype),
        "b": rand((c,), dtype),
        "mean": rand((c,), stat_dtype),
        "var": rand((c,), stat_dtype, 0.5, 1.5),
    }


# --------------------------------------------------------------------------------------------
# BatchNormalization
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("opset", [6, 7, 9, 14, 15])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", FLOAT_TYPES)
def test_batch_norm_inference(opset, shape, dtype):
    """BatchNormalization in inference mode, every version, rank 2 to 5 (onnxruntime has no
    opset 6: the reference evaluator checks it, with is_test=1 as it needs)."""
    if opset == 6:
        inputs = _bn_inputs(shape, dtype)
        check("BatchNormalization", inputs, {"y": dtype}, 6, oracle="reference", is_test=1)
    else:
        check("BatchNormalization", _bn_inputs(shape, dtype), {"y": dtype}, opset, epsilon=1e-3)


def test_batch_norm_mixed_stat_types():
    """BatchNormalization-15 with float16 X/scale/B and float32 mean/var."""
    inputs = _bn_inputs((2, 3, 4, 5), np.float16, np.float32)
    check("BatchNormalization", inputs, {"y": np.float16}, 15)


def test_batch_norm_constant_params():
    """BatchNormalization with its parameters as initializers."""
    inputs = _bn_inputs((2, 3, 4, 5), np.float32)
    consts = ("scale", "b", "mean", "var")
    check("BatchNormalization", inputs, {"y": np.float32}, 15, initializers=consts)


@pytest.mark.parametrize("opset", [14, 15])
@pytest.mark.parametrize("shape", SHAPES[1:])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_training(opset, shape, dtype):
    """BatchNormalization training_mode=1 with the running statistics outputs."""
    outputs = {"y": dtype, "rm": dtype, "rv": dtype}
    inputs = _bn_inputs(shape, dtype)
    check("BatchNormalization", inputs, outputs, opset, training_mode=1, momentum=0.8)


def test_batch_norm_legacy_training_outputs():
    """Before opset 14, asking for the statistics outputs computes batch statistics."""
    inputs = _bn_inputs((4, 3, 5, 2), np.float32)
    outputs = {name: np.float32 for name in ("y", "m", "v", "sm", "sv")}
    y, m, v, sm, sv = run_ort(*make_model("BatchNormalization", inputs, outputs, 9, momentum=0.7))
    x = inputs["x"].astype(np.float64)
    batch_mean, batch_var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    norm = (x - batch_mean[:, None, None]) / np.sqrt(batch_var[:, None, None] + 1e-5)
    want_y = norm * inputs["scale"][:, None, None] + inputs["b"][:, None, None]
    np.testing.assert_allclose(y, want_y, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(m, inputs["mean"] * 0.7 + batch_mean * 0.3, rtol=1e-5)
    np.testing.assert_allclose(v, inputs["var"] * 0.7 + batch_var * 0.3, rtol=1e-5)
    np.testing.assert_allclose(sm, batch_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sv, batch_var, rtol=1e-5)


def test_batch_norm_spatial_zero():
    """BatchNormalization-7 with spatial=0: one parameter per (C, H, W) element."""
    x = rand((2, 3, 4, 5))
    inputs = {
        "x": x, "scale": rand((3, 4, 5)), "b": rand((3, 4, 5)),
        "mean": rand((3, 4, 5)), "var": rand((3, 4, 5), np.float32, 0.5, 1.5),
    }
    (y,) = run_ort(*make_model("BatchNormalization", inputs, {"y": np.float32}, 7, spatial=0))
    want = (x - inputs["mean"]) / np.sqrt(inputs["var"] + 1e-5) * inputs["scale"] + inputs["b"]
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------------
# InstanceNormalization / LayerNormalization / LRN
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("opset", [1, 6, 22])
@pytest.mark.parametrize("shape", SHAPES[1:])
@pytest.mark.parametrize("dtype", FLOAT_TYPES)
def test_instance_norm(opset, shape, dtype):
    """InstanceNormalization over 1-D to 3-D spatial inputs."""
    c = shape[1]
    inputs = {"x": rand(shape, dtype), "scale": rand((c,), dtype), "b": rand((c,), dtype)}
    check("InstanceNormalization", inputs, {"y": dtype}, opset, epsilon=1e-4)


LAYER_NORM_CASES = [
    ((2, 3, 8), -1), ((2, 3, 8), 1), ((2, 3, 8), -2), ((4, 6), 0), ((2, 3, 4, 5), 2)
]


@pytest.mark.parametrize("case", LAYER_NORM_CASES)
@pytest.mark.parametrize("dtype", FLOAT_TYPES)
@pytest.mark.parametrize("bias", [False, True])
def test_layer_norm(case, dtype, bias):
    """LayerNormalization with several axes, optional bias, Mean and InvStdDev outputs."""
    shape, axis = case
    norm_shape = shape[axis:]
    inputs = {"x": rand(shape, dtype), "scale": rand(norm_shape, dtype)}
    if bias:
        inputs["b"] = rand(norm_shape, dtype)
    outputs = {"y": dtype, "mean": np.float32, "inv_std": np.float32}
    check("LayerNormalization", inputs, outputs, 17, axis=axis, epsilon=1e-3)


def test_layer_norm_only_y_and_inv_std():
    """LayerNormalization with the Mean output omitted."""
    inputs = {"x": rand((3, 7)), "scale": rand((7,)), "b": rand((7,))}
    check("LayerNormalization", inputs, {"y": np.float32, "mean": None, "inv_std": np.float32}, 17)


def _lrn_expected(x, size, alpha, beta, bias):
    """Return LRN per its spec, one channel at a time, in float64."""
    x = x.astype(np.float64)
    low, high = (size - 1) // 2, size - 1 - (size - 1) // 2
    total = np.zeros_like(x)
    for c in range(x.shape[1]):
        window = x[:, max(0, c - low) : c + high + 1]
        total[:, c] = (window**2).sum(axis=1)
    return x / (bias + alpha / size * total) ** beta


@pytest.mark.parametrize("opset", [1, 13])
@pytest.mark.parametrize("size", [1, 3, 5])
def test_lrn(opset, size):
    """LRN with odd window sizes on 4-D input (what onnxruntime supports)."""
    attrs = {"size": size, "alpha": 0.01, "beta": 0.6, "bias": 1.5}
    check("LRN", {"x": rand((2, 7, 4, 5))}, {"y": np.float32}, opset, **attrs)


@pytest.mark.parametrize("size", [2, 3, 4])
@pytest.mark.parametrize("shape", [(2, 6, 3), (2, 5, 3, 3), (1, 5, 2, 3, 2)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lrn_spec(size, shape, dtype):
    """LRN for even sizes, other ranks and float64, against the spec formula (onnxruntime
    takes odd sizes and 4-D float only; onnx's reference loops over the wrong axis)."""
    x = rand(shape, dtype)
    (got,) = run_ort(*make_model("LRN", {"x": x}, {"y": dtype}, 13, size=size, alpha=0.02))
    assert got.dtype == dtype
    np.testing.assert_allclose(got, _lrn_expected(x, size, 0.02, 0.75, 1.0), **tolerance(dtype))


# --------------------------------------------------------------------------------------------
# Softmax / LogSoftmax
# --------------------------------------------------------------------------------------------

SOFTMAX_CASES = [
    ((3, 4), None), ((2, 3, 4), None), ((2, 3, 4), 0), ((2, 3, 4), 2), ((2, 3, 4), -2),
    ((2, 3, 4, 5), 1),
]


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("opset", [1, 11, 13])
@pytest.mark.parametrize("case", SOFTMAX_CASES)
@pytest.mark.parametrize("dtype", FLOAT_TYPES)
def test_softmax(op, opset, case, dtype):
    """Softmax/LogSoftmax: coerced-to-2-D before opset 13, along one axis from 13."""
    shape, axis = case
    attrs = {} if axis is None else {"axis": axis}
    x = rand(shape, dtype, -20, 20)
    # onnxruntime breaks float16 opset-1 models (it inserts Casts of a newer opset)
    oracle_opset = 11 if dtype == np.float16 and opset == 1 else None
    check(op, {"x": x}, {"y": dtype}, opset, oracle_opset=oracle_opset, **attrs)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_softmax_large_values_are_stable(op):
    """Softmax/LogSoftmax do not overflow on large inputs."""
    x = np.array([[1000.0, 1001.0, 1002.0], [-1000.0, 0.0, 1000.0]], dtype=np.float32)
    (y,) = check(op, {"x": x}, {"y": np.float32}, 13)
    assert np.all(np.isfinite(y))


# --------------------------------------------------------------------------------------------
# Dropout
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("opset", [7, 10, 12, 13, 22])
@pytest.mark.parametrize("with_mask", [False, True])
def test_dropout_inference(opset, with_mask):
    """Dropout in inference mode is the identity with an all-true mask (typed like X before
    opset 10). onnxruntime returns an all-zero mask before opset 12, so it checks Y only."""
    x = rand((3, 4, 5))
    mask_dtype = np.bool_ if opset >= 10 else np.float32
    outputs = {"y": np.float32}
    if with_mask:
        outputs["mask"] = mask_dtype
    if opset >= 12 or not with_mask:
        check("Dropout", {"x": x}, outputs, opset)
        return
    y, mask = run_ort(*make_model("Dropout", {"x": x}, outputs, opset))
    assert_outputs_match([y], run_onnxruntime(*make_model("Dropout", {"x": x}, {"y": np.float32},
                                                          opset)), rtol=0, atol=0)
    assert mask.dtype == mask_dtype and mask.shape == x.shape and np.all(mask)


@pytest.mark.parametrize("opset", [1, 6])
def test_dropout_legacy(opset):
    """Dropout 1 and 6 (is_test attribute) run as the identity."""
    x = rand((3, 4))
    model, feeds = make_model("Dropout", {"x": x}, {"y": np.float32, "mask": np.float32}, opset,
                              is_test=1)
    y, mask = run_ort(model, feeds)
    np.testing.assert_array_equal(y, x)
    assert mask.dtype == np.float32 and np.all(mask == 1)


@pytest.mark.parametrize("dtype", FLOAT_TYPES)
def test_dropout_ratio_input_training_off(dtype):
    """Dropout-13 with ratio and training_mode=False inputs."""
    inputs = {"x": rand((4, 5), dtype), "ratio": np.array(0.3, np.float32), "t": np.array(False)}
    check("Dropout", inputs, {"y": dtype, "mask": np.bool_}, 13)


def test_dropout_training():
    """Dropout-13 in training mode drops units and rescales the kept ones."""
    x = rand((200, 50), np.float32, 1, 2)
    inputs = {"x": x, "ratio": np.array(0.25, np.float32), "t": np.array(True)}
    model, feeds = make_model("Dropout", inputs, {"y": np.float32, "mask": np.bool_}, 13, seed=3)
    y, mask = run_ort(model, feeds)
    assert mask.dtype == np.bool_ and y.dtype == np.float32
    np.testing.assert_allclose(y[mask], x[mask] / 0.75, rtol=1e-6)
    assert np.all(y[~mask] == 0)
    assert 0.2 < 1 - mask.mean() < 0.3


def test_dropout_training_ratio_zero_is_identity():
    """Dropout-13 in training mode with ratio 0 keeps everything."""
    inputs = {"x": rand((4, 5)), "ratio": np.array(0.0, np.float32), "t": np.array(True)}
    check("Dropout", inputs, {"y": np.float32, "mask": np.bool_}, 13)


def test_empty_tensors():
    """Softmax and LayerNormalization over empty batches."""
    x = np.zeros((0, 4), np.float32)
    check("Softmax", {"x": x}, {"y": np.float32}, 13)
    check("LayerNormalization", {"x": x, "scale": rand((4,))}, {"y": np.float32}, 17)
