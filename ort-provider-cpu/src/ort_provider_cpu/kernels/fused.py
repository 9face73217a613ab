"""CPU kernels: fused ops the optimizer produces (ONNX Runtime's com.microsoft contrib ops)."""

from __future__ import annotations

from ort.kernels import KernelTable

kernels = KernelTable()
