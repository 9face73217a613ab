"""CPU kernels: loss functions: SoftmaxCrossEntropyLoss, NegativeLogLikelihoodLoss."""

from __future__ import annotations

from ort.kernels import KernelTable

kernels = KernelTable()
