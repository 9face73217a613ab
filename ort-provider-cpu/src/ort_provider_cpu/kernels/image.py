"""CPU kernels: Image and detection ops: Resize/Upsample, GridSample, AffineGrid, RoiAlign, NonMaxSuppression, MaxUnpool, Col2Im, DeformConv, LpPool, LpNormalization, ImageDecoder."""

from __future__ import annotations

from ort.kernels import KernelTable

kernels = KernelTable()
