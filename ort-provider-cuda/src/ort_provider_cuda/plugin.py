"""The ``ort`` plugin of ort-provider-cuda: registers ``CUDAExecutionProvider`` and its kernels.

The kernels (:mod:`ort_provider_cuda.kernels`) are the CPU provider's xp-generic kernels run
with cupy plus GPU versions where the two must differ; every other op falls back to the CPU
provider through the partitioner, with copies inserted at the boundary. Nothing here imports
cupy: availability is checked lazily, when providers are first listed or created.
"""

from __future__ import annotations

import ort
from ort.ep import KernelRegistrar, KernelTable, ProviderRegistrar, ProviderSpec

from .availability import cuda_unavailable_reason
from .provider import CUDAExecutionProvider

__all__ = ["CORE_REQUIRES", "PROVIDER_NAME", "gpu_kernels", "ort_register_providers",
           "ort_register_kernels"]

CORE_REQUIRES = ">=0.1,<0.2"
PROVIDER_NAME = CUDAExecutionProvider.name


def gpu_kernels() -> KernelTable:
    """Every kernel of ``CUDAExecutionProvider`` (see :mod:`ort_provider_cuda.kernels`)."""
    from .kernels import gpu_kernels as build

    return build()


@ort.hookimpl
def ort_register_providers(registry: ProviderRegistrar) -> None:
    """Register ``CUDAExecutionProvider`` (priority above CPU); availability is checked lazily."""
    registry.register(
        ProviderSpec(
            name=PROVIDER_NAME,
            factory=CUDAExecutionProvider,
            check_available=cuda_unavailable_reason,
            priority=100,
            core_requires=CORE_REQUIRES,
            device_type="cuda",
        )
    )


@ort.hookimpl
def ort_register_kernels(registry: KernelRegistrar) -> None:
    """Register the provider's kernels."""
    registry.add(PROVIDER_NAME, gpu_kernels())
