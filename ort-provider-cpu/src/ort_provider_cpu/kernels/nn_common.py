"""Helpers shared by the CPU provider's nn and image kernel families: the dtype they compute
in, axis normalization and per-channel broadcasting. No kernels are registered here."""

from __future__ import annotations

from typing import Any

import numpy as np

from ort.ep import NodeInfo


def compute_dtype(dtype: Any) -> np.dtype:
    """Return the dtype to accumulate in: float64 stays, every other float type uses float32."""
    dtype = np.dtype(dtype)
    return np.dtype(np.float64) if dtype == np.float64 else np.dtype(np.float32)


def normalize_axis(node: NodeInfo, axis: int, rank: int) -> int:
    """Return ``axis`` made non-negative for a tensor of ``rank``, or raise ValueError."""
    if not -rank <= axis < max(rank, 1):
        raise ValueError(f"{node.describe()}: axis {axis} is out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


def channel_shape(rank: int) -> tuple[int, ...]:
    """Return the shape ``(-1, 1, ..., 1)`` that broadcasts a per-channel vector over NC...."""
    return (-1,) + (1,) * max(rank - 2, 0)
