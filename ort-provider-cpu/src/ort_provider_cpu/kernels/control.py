"""CPU kernels: Control flow: If, Loop, Scan."""

from __future__ import annotations

from ort.kernels import KernelTable

kernels = KernelTable()
