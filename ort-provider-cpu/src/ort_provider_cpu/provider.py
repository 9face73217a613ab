"""The CPU execution provider: host memory, numpy arrays, numpy kernels."""

from __future__ import annotations

from typing import ClassVar

from ort.ep import ExecutionProvider

__all__ = ["CPUExecutionProvider"]


class CPUExecutionProvider(ExecutionProvider):
    """Runs nodes with numpy on the host. Always last in a session's provider list, it takes
    every node the providers before it left.

    Option ``compiled_kernels``: ``"1"`` (default where numba imports) runs the kernels that
    have one with their loop compiled by numba; ``"0"`` runs their numpy implementations
    (:mod:`ort_provider_cpu.jit`)."""

    name: ClassVar[str] = "CPUExecutionProvider"
    device_type: ClassVar[str] = "cpu"
    known_options: ClassVar[frozenset[str] | None] = frozenset({"compiled_kernels"})
