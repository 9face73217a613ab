"""CPU kernels: Quantization: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, QLinearMatMul, QLinearConv, ConvInteger, BitCast."""

from __future__ import annotations

from ort.kernels import KernelTable

kernels = KernelTable()
