"""CPU kernels: Sequence and Optional ops."""

from __future__ import annotations

from ort.kernels import KernelTable

kernels = KernelTable()
