"""CPU kernels: Signal processing: DFT, STFT, MelWeightMatrix, window functions."""

from __future__ import annotations

from ort.kernels import KernelTable

kernels = KernelTable()
