"""Activations on compiled loops against their numpy reference and onnxruntime: GELU
(kernels/gelu_loops.py; the exact (erf) form and the tanh form, over the whole float32 range,
NaN and infinities, through Gelu, com.microsoft Gelu, BiasGelu and FastGelu), and the
one-pass Clip, LeakyRelu, HardSigmoid and HardSwish (conv_loops.activation_copy), bit for
bit."""

from __future__ import annotations

import numpy as np
import onnxruntime
import ort
import pytest
from ort.testing import node_model

pytest.importorskip("numba")

from ort_provider_cpu.kernels import erf_gelu  # noqa: E402

RNG = np.random.default_rng(11)


def _values(dtype=np.float32):
    grid = np.concatenate([np.linspace(-12, 12, 4001), RNG.standard_normal(5000) * 4,
                           [0.0, -0.0, 1e-30, -1e-30, 1e-5, -3e-4, 5e-4, 40.0, -40.0, 1e30,
                            -1e30, np.inf, -np.inf, np.nan]])
    return grid.astype(dtype)


@pytest.mark.parametrize("form", ["exact", "tanh"])
def test_compiled_loop_matches_numpy(form):
    exact_loop, tanh_loop = erf_gelu.gelu_loops(None)
    x = _values()
    want, got = x.copy(), x.copy()
    if form == "exact":
        erf_gelu.gelu_inplace(np, want)
        erf_gelu.gelu_inplace(np, got, exact_loop)
    else:
        erf_gelu.fast_gelu_inplace(np, want)
        erf_gelu.fast_gelu_inplace(np, got, tanh_loop)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=2e-6)


def test_float64_keeps_numpy():
    """The loops' tanh is float32-accurate: float64 arrays take the numpy path."""
    _, tanh_loop = erf_gelu.gelu_loops(None)
    x = _values(np.float64)
    want, got = x.copy(), x.copy()
    erf_gelu.fast_gelu_inplace(np, want)
    erf_gelu.fast_gelu_inplace(np, got, tanh_loop)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("op,attrs,domain,extra", [
    ("Gelu", {}, "", 0), ("Gelu", {"approximate": "tanh"}, "", 0),
    ("Gelu", {}, "com.microsoft", 0), ("BiasGelu", {}, "com.microsoft", 1),
    ("FastGelu", {}, "com.microsoft", 1)])
def test_gelu_ops_compiled_numpy_and_onnxruntime(op, attrs, domain, extra):
    x = (RNG.standard_normal((3, 40, 64)) * 3).astype(np.float32)
    inputs = [x] + [RNG.standard_normal(64).astype(np.float32)] * extra
    model, feeds = node_model(op, inputs, attrs, domain=domain, opset=20)
    data = model.SerializeToString()
    got = ort.InferenceSession(data).run(None, feeds)[0]
    slow = ort.InferenceSession(
        data, providers=[("CPUExecutionProvider", {"compiled_kernels": "0"})]).run(None, feeds)[0]
    want = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"]).run(
        None, feeds)[0]
    np.testing.assert_allclose(got, slow, rtol=2e-6, atol=2e-6)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op,attrs", [("HardSwish", {}), ("HardSigmoid", {}),
                                      ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}),
                                      ("LeakyRelu", {}), ("LeakyRelu", {"alpha": 0.2})])
def test_one_pass_activations_equal_numpy(op, attrs, dtype):
    x = _values(dtype).reshape(-1, 1)[:9000].reshape(3, 3000)
    model, feeds = node_model(op, [x], attrs, opset=14)
    data = model.SerializeToString()
    got = ort.InferenceSession(data).run(None, feeds)[0]
    slow = ort.InferenceSession(
        data, providers=[("CPUExecutionProvider", {"compiled_kernels": "0"})]).run(None, feeds)[0]
    assert got.dtype == slow.dtype
    np.testing.assert_array_equal(got, slow)
    if dtype == np.float32:
        want = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"]).run(
            None, feeds)[0]
        finite = np.isfinite(x)
        np.testing.assert_allclose(got[finite], want[finite], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bounds", [(0.0, 6.0), (-1.5, None), (None, 2.0), (3.0, -3.0),
                                    (-np.inf, np.inf), (np.nan, 1.0), (None, None)])
def test_clip_in_one_pass_equals_numpy(bounds, dtype):
    """Clip 11+ (bounds as constant inputs, either absent, crossed, infinite or NaN) in one
    compiled pass, bit for bit as the numpy kernel (NaN inputs stay NaN)."""
    from onnx import helper, numpy_helper
    from ort.testing import make_model

    x = _values(dtype)[:9000].reshape(3, 3000)
    names, constants = ["X"], []
    for name, value in zip(("low", "high"), bounds):
        if value is None:
            names.append("")
        else:
            names.append(name)
            constants.append(numpy_helper.from_array(np.array(value, dtype), name))
    element = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    model = make_model([helper.make_node("Clip", names, ["Y"])],
                       [helper.make_tensor_value_info("X", element, [3, 3000])],
                       [helper.make_tensor_value_info("Y", element, [3, 3000])], constants,
                       opset=13)
    data = model.SerializeToString()
    got = ort.InferenceSession(data).run(None, {"X": x})[0]
    slow = ort.InferenceSession(
        data, providers=[("CPUExecutionProvider", {"compiled_kernels": "0"})]).run(
            None, {"X": x})[0]
    assert got.dtype == slow.dtype == dtype
    np.testing.assert_array_equal(got, slow)
