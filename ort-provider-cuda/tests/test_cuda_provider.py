"""CUDAExecutionProvider: registration everywhere; real runs only where a GPU is usable."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

import ort
from ort.plugins import get_registry
from ort_provider_cuda.availability import cuda_unavailable_reason
from ort_provider_cuda.plugin import PROVIDER_NAME, XP_GENERIC_OPS

REASON = cuda_unavailable_reason()
needs_gpu = pytest.mark.skipif(REASON is not None, reason=f"CUDA unavailable: {REASON}")


def test_registered_through_the_entry_point_with_priority_over_cpu():
    assert ort.get_all_providers() == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert get_registry().provider_owner(PROVIDER_NAME) == "cuda"


def test_availability_matches_the_check_and_says_why():
    if REASON is None:
        assert PROVIDER_NAME in ort.get_available_providers()
    else:
        assert PROVIDER_NAME not in ort.get_available_providers()
        assert ort.unavailable_providers()[PROVIDER_NAME] == REASON
        assert "pip install" in REASON or "CUDA" in REASON


def test_shared_kernels_are_registered_for_cuda():
    registry = get_registry()
    ops = {k.op_type for k in registry.all_kernels(PROVIDER_NAME)}
    assert ops == set(XP_GENERIC_OPS)
    cpu = {(k.op_type, k.since_version) for k in registry.all_kernels("CPUExecutionProvider")
           if k.op_type in XP_GENERIC_OPS}
    assert {(k.op_type, k.since_version) for k in registry.all_kernels(PROVIDER_NAME)} == cpu


def _mlp_model():
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, ["batch", 8])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["batch", 4])
    rng = np.random.default_rng(0)
    w = helper.make_tensor("W", TensorProto.FLOAT, [8, 4], rng.standard_normal(32).astype(np.float32))
    b = helper.make_tensor("B", TensorProto.FLOAT, [4], rng.standard_normal(4).astype(np.float32))
    nodes = [helper.make_node("MatMul", ["X", "W"], ["H"]), helper.make_node("Add", ["H", "B"], ["A"]),
             helper.make_node("Relu", ["A"], ["R"]), helper.make_node("Softmax", ["R"], ["Y"], axis=-1)]
    graph = helper.make_graph(nodes, "mlp", [x], [y], initializer=[w, b])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@needs_gpu
def test_runs_on_gpu_with_cpu_fallback_and_matches_cpu():
    data = _mlp_model().SerializeToString()
    gpu = ort.InferenceSession(data, providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    cpu = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    assert gpu.get_providers() == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    placed = gpu.get_partition().nodes_by_provider
    assert placed["CUDAExecutionProvider"] and placed["CPUExecutionProvider"]  # Softmax falls back
    x = np.random.default_rng(1).standard_normal((5, 8)).astype(np.float32)
    np.testing.assert_allclose(gpu.run(None, {"X": x})[0], cpu.run(None, {"X": x})[0], rtol=1e-5, atol=1e-6)


@needs_gpu
def test_ortvalue_on_cuda():
    value = ort.OrtValue.ortvalue_from_numpy(np.arange(6, dtype=np.float32), "cuda", 0)
    assert value.device_name() == "cuda" and value.data_ptr() != 0
    np.testing.assert_array_equal(value.numpy(), np.arange(6))
