"""The kernels of ``CUDAExecutionProvider``.

Two sources, one table (:func:`gpu_kernels`):

* the CPU provider's kernels listed in :data:`~ort_provider_cuda.kernels.reuse.REUSED`, which
  compute only through ``node.xp`` and run unchanged with cupy;
* GPU versions where numpy and cupy code must differ (each module says why): ``conv``
  (Conv, im2col + batched cuBLAS GEMM), ``indexing`` (Gather, GatherElements,
  ScatterElements, ScatterND), ``cast`` (Cast, CastLike), ``linalg`` (MatMul), ``axis_ops``
  (CumSum), ``erf_gelu`` (Erf, Gelu, com.microsoft Gelu/BiasGelu), ``fused`` (com.microsoft
  FusedConv/FusedGemm), ``rnn`` (RNN, GRU, LSTM), ``resize`` (Resize, Upsample).

Every kernel accepts only element types cupy arrays hold (``input_types``) and runs inside the
provider's :meth:`~ort_provider_cuda.provider.CUDAExecutionProvider.scope` (its device, stream
and memory pool), its factory too, since factories upload constants.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ort.ep import KernelDef, KernelTable, NodeInfo

from ..dtypes import DEVICE_DTYPES, DEVICE_TYPE_NAMES
from . import axis_ops, cast, conv, erf_gelu, fused, indexing, linalg, resize, rnn
from .reuse import REUSED

if TYPE_CHECKING:
    from ort.ep import Graph, Node

__all__ = ["GPU_FAMILIES", "REUSED", "gpu_kernels", "reused_kernels", "gpu_specific_kernels",
           "on_device", "decline_reason"]

#: The modules of GPU-specific kernels.
GPU_FAMILIES = (conv, indexing, cast, linalg, axis_ops, erf_gelu, fused, rnn, resize)
#: input_types covers input indices below this (variadic ops included).
_MAX_INPUTS = 64


def on_device(factory: Callable[[NodeInfo], Any]) -> Callable[[NodeInfo], Any]:
    """Wrap a kernel factory so that it and its compute function run in the provider's
    scope (a no-op for providers without one, e.g. when tests prepare kernels with numpy)."""

    @functools.wraps(factory)
    def device_factory(node: NodeInfo) -> Any:
        scope = getattr(node.provider, "scope", None)
        if scope is None:
            return factory(node)
        with scope():
            compute = factory(node)

        def run(*args: Any) -> Any:
            with scope():
                return compute(*args)

        return run

    return device_factory


def _for_device(kernel: KernelDef) -> KernelDef:
    return dataclasses.replace(
        kernel, factory=on_device(kernel.factory),
        input_types={i: DEVICE_TYPE_NAMES for i in range(_MAX_INPUTS)})


def gpu_specific_kernels() -> list[KernelDef]:
    """The kernels written for the GPU (unwrapped)."""
    return [k for family in GPU_FAMILIES for k in family.kernels]


def reused_kernels() -> list[KernelDef]:
    """The CPU provider's kernels run unchanged (unwrapped), every version range of each op
    in :data:`REUSED` that has no GPU version."""
    from ort_provider_cpu.kernels import ALL_KERNELS

    specific = {(k.domain, k.op_type) for k in gpu_specific_kernels()}
    return [k for k in ALL_KERNELS
            if (k.domain, k.op_type) in REUSED and (k.domain, k.op_type) not in specific]


def gpu_kernels() -> KernelTable:
    """Every kernel of the provider, ready to register."""
    table = KernelTable()
    for kernel in reused_kernels() + gpu_specific_kernels():
        table.add(_for_device(kernel))
    return table


def decline_reason(graph: Graph, node: Node) -> str | None:
    """Why the provider leaves ``node`` to the next provider although it has a kernel: a value
    it reads or writes that cupy arrays cannot hold (strings, bfloat16, float8, int4,
    sequences: e.g. a Cast to bfloat16). None: it takes the node."""
    for name in list(node.inputs) + list(node.outputs):
        if not name:
            continue
        tp = graph.value_types.get(name)
        if tp is not None and tp.WhichOneof("value") not in (None, "tensor_type"):
            return f"'{name}' is a {tp.WhichOneof('value').replace('_type', '')}, not a tensor"
        dtype = graph.dtype_of(name)
        if dtype is not None and dtype not in DEVICE_DTYPES:
            return f"'{name}' is {dtype}, which cupy arrays cannot hold"
    if node.op_type in ("ScatterElements", "ScatterND") and not node.domain:
        reason = _scatter_reason(graph, node)
        if reason is not None:
            return reason
    if node.op_type == "Cast" and not node.domain:
        for attr in node.attributes:
            if attr.name == "to":
                from onnx import helper

                dtype = cast.target_dtype(helper.get_attribute_value(attr))
                if dtype is None or dtype not in DEVICE_DTYPES:
                    return f"Cast to {dtype} runs on the CPU (cupy has no such type)"
    return None


def _scatter_reason(graph: Graph, node: Node) -> str | None:
    """Scatter reductions cupy has no atomic for (mul; add/min/max of most types)."""
    from onnx import helper

    reduction = next((helper.get_attribute_value(a) for a in node.attributes
                      if a.name == "reduction"), b"none")
    reduction = reduction.decode() if isinstance(reduction, bytes) else str(reduction)
    if reduction == "none":
        return None
    if reduction not in indexing.SCATTER_METHODS:
        return f"reduction '{reduction}' has no atomic cupy scatter"
    dtype = graph.dtype_of(node.inputs[0])
    if dtype is None or dtype not in indexing.SCATTER_REDUCE_DTYPES:
        return f"cupy's atomic scatter_{reduction} does not take {dtype}"
    return None
