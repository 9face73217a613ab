"""The official ONNX backend node tests of every op CUDAExecutionProvider claims, run with the
provider in front (on the cupy double) and compared with the CPU provider on the same inputs:
every attribute combination the suite covers goes through the CUDA kernels' cupy code paths.

Cases whose inputs or outputs have types cupy lacks (bfloat16, float8, int4, strings) are not
collected: those nodes run on the CPU by design (``test_kernels_on_fake_cupy`` checks that)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import ort
from ort.testing import assert_outputs_match
from ort_provider_cuda.kernels import gpu_kernels, gpu_specific_kernels
from ort_provider_cuda.dtypes import DEVICE_DTYPES

CUDA = "CUDAExecutionProvider"


def _claimed_ops() -> set[tuple[str, str]]:
    return {(k.domain, k.op_type) for k in gpu_kernels()}


def _cases() -> list[Any]:
    """onnx's node test cases (generated in memory) whose single node CUDA has a kernel for."""
    from onnx.backend.test.case import node

    claimed = _claimed_ops()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = node.collect_testcases(None)
    return [case for case in cases
            if not case.name.endswith("_expanded") and case.model is not None
            and len(case.model.graph.node) == 1 and case.data_sets
            and (case.model.graph.node[0].domain.replace("ai.onnx", ""),
                 case.model.graph.node[0].op_type) in claimed
            and _device_types(case)]


def _device_types(case: Any) -> bool:
    """Whether every input and output of the case has a type cupy arrays hold."""
    inputs, outputs = case.data_sets[0]
    for value in list(inputs) + list(outputs):
        if isinstance(value, onnx.TensorProto):
            value = numpy_helper.to_array(value)
        if not isinstance(value, np.ndarray) or value.dtype not in DEVICE_DTYPES:
            return False
    return True


def _inputs(case: Any) -> dict[str, object]:
    inputs, _ = case.data_sets[0]
    names = [i.name for i in case.model.graph.input]
    return {name: numpy_helper.to_array(value) if isinstance(value, onnx.TensorProto) else value
            for name, value in zip(names, inputs)}


def _session(model: onnx.ModelProto, providers: list[str]) -> ort.InferenceSession:
    """A session on ``providers``; the CPU provider runs its numpy kernels, which the CUDA
    provider shares (its compiled loops may sum in another order, so results would not be
    bit-identical)."""
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    chosen = [(p, {"compiled_kernels": "0"}) if p == "CPUExecutionProvider" else p
              for p in providers]
    return ort.InferenceSession(model.SerializeToString(), so, providers=chosen)


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c.name)
def test_node_test_on_cuda_matches_cpu(fake_cupy, case: Any):
    model = case.model
    feeds = _inputs(case)
    try:
        cpu = _session(model, ["CPUExecutionProvider"])
        want = cpu.run(None, feeds)
    except Exception as exc:  # the CPU provider's conformance is tracked elsewhere
        pytest.skip(f"the CPU provider cannot run it: {type(exc).__name__}")
    gpu = _session(model, [CUDA, "CPUExecutionProvider"])
    node = model.graph.node[0]
    if not gpu.get_partition().nodes_by_provider[CUDA]:
        # only scatter reductions without a cupy atomic are left to the CPU on purpose
        declined = next(p for p in gpu._providers if p.name == CUDA).declined
        assert any("atomic" in why for why in declined.values()), declined
        return
    got = gpu.run(None, feeds)
    specific = (node.domain, node.op_type) in {(k.domain, k.op_type)
                                               for k in gpu_specific_kernels()}
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert isinstance(g, np.ndarray), type(g)
        close = specific and w.dtype.kind == "f"  # otherwise exact
        assert_outputs_match([g], [w], rtol=(1e-3 if w.itemsize <= 2 else 1e-5) if close else 0,
                             atol=1e-6 if close else 0)
