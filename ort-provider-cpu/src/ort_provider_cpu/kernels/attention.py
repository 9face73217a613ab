"""CPU kernels: Attention, LinearAttention, TensorScatter and the loss ops."""

from __future__ import annotations

from ort.kernels import KernelTable

kernels = KernelTable()
