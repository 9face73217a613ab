"""The ``ort`` plugin of ort-provider-cpu: registers the provider and its kernels.

This module is what the entry point ``[project.entry-points.ort] cpu`` names; core reaches the
CPU provider only through these hooks, exactly as it reaches third-party providers.
"""

from __future__ import annotations

import ort
from ort.ep import KernelRegistrar, ProviderRegistrar, ProviderSpec, SchemaRegistrar

from .provider import CPUExecutionProvider

CORE_REQUIRES = ">=0.1,<0.2"

@ort.hookimpl
def ort_register_providers(registry: ProviderRegistrar) -> None:
    """Register ``CPUExecutionProvider`` with the lowest priority (it is the fallback)."""
    registry.register(
        ProviderSpec(
            name=CPUExecutionProvider.name,
            factory=CPUExecutionProvider,
            priority=0,
            core_requires=CORE_REQUIRES,
            device_type="cpu",
        )
    )


@ort.hookimpl
def ort_register_kernels(registry: KernelRegistrar) -> None:
    """Register every numpy kernel for ``CPUExecutionProvider``."""
    from .kernels import ALL_KERNELS

    registry.add(CPUExecutionProvider.name, ALL_KERNELS)


@ort.hookimpl
def ort_register_schemas(registry: SchemaRegistrar) -> None:
    """Declare the contrib ops this provider runs (ONNX does not define them): each kernel
    module lists its declarations in ``SCHEMAS``."""
    from .kernels import ALL_SCHEMAS

    for schema in ALL_SCHEMAS:
        registry.declare(schema)
