"""The CPU execution provider: host memory, numpy arrays, numpy kernels."""

from __future__ import annotations

from typing import ClassVar

from ort.ep import ExecutionProvider

__all__ = ["CPUExecutionProvider"]


class CPUExecutionProvider(ExecutionProvider):
    """Runs nodes with numpy on the host. Always last in a session's provider list, it takes
    every node the providers before it left."""

    name: ClassVar[str] = "CPUExecutionProvider"
    device_type: ClassVar[str] = "cpu"
    known_options: ClassVar[frozenset[str] | None] = frozenset()
