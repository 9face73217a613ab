"""The ``ort`` plugin of ort-provider-cuda: registers ``CUDAExecutionProvider`` and its kernels.

The kernels are the CPU provider's kernels for the ops listed in :data:`XP_GENERIC_OPS`: those
are written once against the array namespace ``xp`` and run unchanged with cupy. Every other op
falls back to the CPU provider through the partitioner, with copies inserted at the boundary.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ort
from ort.kernels import KernelTable
from ort.registry import KernelRegistrar, ProviderRegistrar, ProviderSpec

from .availability import cuda_unavailable_reason

CORE_REQUIRES = ">=0.1,<0.2"
PROVIDER_NAME = "CUDAExecutionProvider"

#: Ops whose CPU kernels use only ``xp`` functions that numpy and cupy share.
XP_GENERIC_OPS = frozenset({
    "Add", "Sub", "Mul", "Div", "Relu", "Sqrt", "Tanh", "Sigmoid", "Exp", "Log", "Neg", "Abs",
    "Reciprocal", "MatMul", "Gemm",
})


def _make(options: Mapping[str, Any]) -> ort.ExecutionProvider:
    from .provider import CUDAExecutionProvider

    return CUDAExecutionProvider(options)


def gpu_kernels() -> KernelTable:
    """The CPU provider's xp-generic kernels, for use with cupy."""
    from ort_provider_cpu.kernels import ALL_KERNELS

    table = KernelTable()
    for kernel in ALL_KERNELS:
        if kernel.domain == "" and kernel.op_type in XP_GENERIC_OPS:
            table.add(kernel)
    return table


@ort.hookimpl
def ort_register_providers(registry: ProviderRegistrar) -> None:
    """Register ``CUDAExecutionProvider`` (priority above CPU); availability is checked lazily."""
    registry.register(
        ProviderSpec(
            name=PROVIDER_NAME,
            factory=_make,
            check_available=cuda_unavailable_reason,
            priority=100,
            core_requires=CORE_REQUIRES,
            device_type="cuda",
        )
    )


@ort.hookimpl
def ort_register_kernels(registry: KernelRegistrar) -> None:
    """Register the shared xp kernels for ``CUDAExecutionProvider``."""
    registry.add(PROVIDER_NAME, gpu_kernels())
