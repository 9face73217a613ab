"""CPU kernels: The ai.onnx.ml domain (tensor-valued ops)."""

from __future__ import annotations

from ort.kernels import KernelTable

kernels = KernelTable()
