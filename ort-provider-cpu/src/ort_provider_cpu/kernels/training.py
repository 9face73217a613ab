"""CPU kernels: ai.onnx.preview.training ops: Adagrad, Adam, Momentum."""

from __future__ import annotations

from ort.kernels import KernelTable

kernels = KernelTable()
