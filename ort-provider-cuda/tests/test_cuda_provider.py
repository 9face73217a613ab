"""CUDAExecutionProvider: registration and the kernels it declares everywhere; real runs only
where a GPU is usable (they skip with the reason ``cuda_unavailable_reason()`` gives)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

import ort
from cuda_testing import REASON, needs_gpu
from cuda_test_models import (bert_encoder, bert_feeds, gpt_decoder, gpt_feeds, resnet_cnn,
                              to_float16, unet_cnn)
from ort.ep import get_registry
from ort.testing import make_model
from ort_provider_cuda.kernels import REUSED, gpu_specific_kernels
from ort_provider_cuda.plugin import PROVIDER_NAME
from ort_provider_cuda.dtypes import DEVICE_TYPE_NAMES

CPU = "CPUExecutionProvider"


def test_registered_through_the_entry_point_with_priority_over_cpu():
    ours = [p for p in ort.get_all_providers() if p in (PROVIDER_NAME, CPU)]  # others may be installed
    assert ours == [PROVIDER_NAME, CPU]
    assert get_registry().provider_owner(PROVIDER_NAME) == "cuda"


def test_availability_matches_the_check_and_says_why():
    if REASON is None:
        assert PROVIDER_NAME in ort.get_available_providers()
    else:
        assert PROVIDER_NAME not in ort.get_available_providers()
        assert ort.unavailable_providers()[PROVIDER_NAME] == REASON
        assert "pip install" in REASON or "CUDA" in REASON or "driver" in REASON


def test_sessions_asking_for_cuda_run_on_cpu_with_the_reason_when_unavailable():
    if REASON is None:
        pytest.skip("CUDA is available here")
    model = resnet_cnn()
    with pytest.warns(UserWarning, match="not available on this machine"):
        sess = ort.InferenceSession(model.SerializeToString(), providers=[PROVIDER_NAME, CPU])
    assert sess.get_providers() == [CPU]


def _declared():
    return {(k.domain, k.op_type): k for k in get_registry().all_kernels(PROVIDER_NAME)}


def test_declared_ops_are_the_reused_and_the_gpu_specific_ones():
    declared = {key for key in _declared()}
    specific = {(k.domain, k.op_type) for k in gpu_specific_kernels()}
    assert declared == REUSED | specific
    for op in ("Conv", "Gather", "Cast", "MatMul", "Erf", "LSTM", "Resize"):
        assert ("", op) in specific
    for op in ("FusedConv", "FusedGemm", "Gelu", "BiasGelu"):
        assert ("com.microsoft", op) in specific


def test_reused_kernels_cover_the_cpu_version_ranges():
    registry = get_registry()
    cpu = {(k.domain, k.op_type, k.since_version, k.until_version)
           for k in registry.all_kernels(CPU) if (k.domain, k.op_type) in REUSED}
    cuda = {(k.domain, k.op_type, k.since_version, k.until_version)
            for k in registry.all_kernels(PROVIDER_NAME) if (k.domain, k.op_type) in REUSED}
    specific = {(k.domain, k.op_type) for k in gpu_specific_kernels()}
    assert cuda == {entry for entry in cpu if entry[:2] not in specific}


def test_every_kernel_accepts_only_types_cupy_holds():
    for kernel in get_registry().all_kernels(PROVIDER_NAME):
        assert kernel.accepts(["float16", "float", "int64"])
        assert not kernel.accepts(["bfloat16"]) and not kernel.accepts(["string"])
        assert set(kernel.input_types[0]) == DEVICE_TYPE_NAMES


@pytest.mark.parametrize("op, version, covered", [
    ("Conv", 1, True), ("Conv", 11, True), ("Gather", 13, True), ("Cast", 6, True),
    ("Cast", 19, True), ("Cast", 24, True), ("LayerNormalization", 17, True),
    ("Softmax", 1, True), ("Softmax", 13, True), ("ReduceMean", 13, True),
    ("ReduceMean", 18, True), ("Resize", 10, True), ("Resize", 19, True), ("LSTM", 14, True),
    ("Gelu", 20, True), ("Shape", 15, False), ("NonZero", 13, False), ("If", 13, False),
    ("Einsum", 12, False), ("ScatterND", 18, True), ("ScatterElements", 11, True),
    ("GatherND", 13, False), ("TopK", 11, False),
])
def test_claimed_versions(op, version, covered):
    found = get_registry().lookup(PROVIDER_NAME, "", op, version, ["float"])
    assert (found is not None) == covered


def test_host_inputs_match_onnx_shape_inputs():
    declared = _declared()
    assert declared[("", "Reshape")].host_inputs == (1,)
    assert declared[("", "Resize")].host_inputs == (1, 2, 3)
    assert declared[("", "LSTM")].host_inputs == (4,)  # sequence_lens: host step order
    assert declared[("", "CumSum")].host_inputs == (1,)
    assert declared[("", "Gather")].host_inputs == ()


# -- on a real GPU -----------------------------------------------------------------------------

def _mlp_model():
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, ["batch", 8])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["batch", 4])
    rng = np.random.default_rng(0)
    w = helper.make_tensor("W", TensorProto.FLOAT, [8, 4],
                           rng.standard_normal(32).astype(np.float32))
    b = helper.make_tensor("B", TensorProto.FLOAT, [4], rng.standard_normal(4).astype(np.float32))
    nodes = [helper.make_node("MatMul", ["X", "W"], ["H"]),
             helper.make_node("Add", ["H", "B"], ["A"]),
             helper.make_node("Relu", ["A"], ["R"]), helper.make_node("NonZero", ["R"], ["N"]),
             helper.make_node("Softmax", ["R"], ["Y"], axis=-1)]
    return make_model(nodes, [x], [y, helper.make_empty_tensor_value_info("N")], [w, b],
                      opset=17, ir_version=8, name="mlp")


@needs_gpu
def test_runs_on_gpu_with_cpu_fallback_and_matches_cpu():
    data = _mlp_model().SerializeToString()
    gpu = ort.InferenceSession(data, providers=[PROVIDER_NAME, CPU])
    cpu = ort.InferenceSession(data, providers=[CPU])
    assert gpu.get_providers() == [PROVIDER_NAME, CPU]
    placed = gpu.get_partition().nodes_by_provider
    assert placed[PROVIDER_NAME] and placed[CPU]  # NonZero falls back
    x = np.random.default_rng(1).standard_normal((5, 8)).astype(np.float32)
    for got, want in zip(gpu.run(None, {"X": x}), cpu.run(None, {"X": x})):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@needs_gpu
def test_ortvalue_on_cuda():
    value = ort.OrtValue.ortvalue_from_numpy(np.arange(6, dtype=np.float32), "cuda", 0)
    assert value.device_name() == "cuda" and value.data_ptr() != 0
    np.testing.assert_array_equal(value.numpy(), np.arange(6))


_GPU_MODELS = {
    "resnet": (resnet_cnn, lambda: {"input": np.random.default_rng(2).standard_normal(
        (2, 3, 32, 32), dtype=np.float32)}),
    "unet": (unet_cnn, lambda: {"image": np.random.default_rng(3).standard_normal(
        (2, 3, 16, 16), dtype=np.float32)}),
    "bert": (bert_encoder, bert_feeds),
    "gpt": (gpt_decoder, gpt_feeds),
}


@needs_gpu
@pytest.mark.parametrize("half", [False, True], ids=["float32", "float16"])
@pytest.mark.parametrize("name", _GPU_MODELS)
def test_models_on_the_gpu_match_the_cpu(name, half):
    build, feeds = _GPU_MODELS[name]
    model = to_float16(build()) if half else build()
    inputs = {k: v.astype(np.float16) if half and v.dtype == np.float32 else v
              for k, v in feeds().items()}
    data = model.SerializeToString()
    gpu = ort.InferenceSession(data, providers=[PROVIDER_NAME, CPU])
    cpu = ort.InferenceSession(data, providers=[CPU])
    tol = 2e-2 if half else 1e-4
    for got, want in zip(gpu.run(None, inputs), cpu.run(None, inputs)):
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=tol,
                                   atol=tol)


@needs_gpu
def test_cuda_graph_on_the_gpu_matches_the_cpu():
    data = resnet_cnn(batch=2).SerializeToString()
    gpu = ort.InferenceSession(data, providers=[(PROVIDER_NAME, {"enable_cuda_graph": "1"})])
    cpu = ort.InferenceSession(data, providers=[CPU])
    for seed in range(4):
        image = np.random.default_rng(seed).standard_normal((2, 3, 32, 32), dtype=np.float32)
        np.testing.assert_allclose(gpu.run(None, {"input": image})[0],
                                   cpu.run(None, {"input": image})[0], rtol=1e-4, atol=1e-4)
