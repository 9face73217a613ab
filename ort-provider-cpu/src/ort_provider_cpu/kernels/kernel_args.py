"""Helpers the CPU kernels share for reading a node's arguments: axis normalization with
errors that name the node, host inputs (shape-like tensors read as numpy) as Python ints or
scalars, constant-initializer inputs known when the kernel is prepared, required attributes,
and the zero fill value of a dtype. They hold no kernels; the op-family modules import them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ort.ep import NodeInfo


def normalize_axis(node: NodeInfo, axis: int, rank: int, what: str = "axis") -> int:
    """Return ``axis`` mapped into ``[0, rank)``; raise ValueError naming the node if out of range."""
    axis = int(axis)
    if not -rank <= axis < rank:
        raise ValueError(f"{node.describe()}: {what} {axis} is out of range [{-rank}, {rank - 1}]")
    return axis + rank if axis < 0 else axis


def normalize_axes(node: NodeInfo, axes: Sequence[int], rank: int, what: str = "axes") -> list[int]:
    """Normalize every axis of ``axes`` and reject duplicates."""
    out = [normalize_axis(node, a, rank, what) for a in axes]
    if len(set(out)) != len(out):
        raise ValueError(f"{node.describe()}: {what} {list(axes)} contain duplicates")
    return out


def host_ints(value: Any) -> list[int]:
    """Return a host (numpy) integer tensor of any rank as a flat list of Python ints."""
    return [int(v) for v in np.asarray(value).reshape(-1).tolist()]


def host_scalar(value: Any) -> Any:
    """Return the single element of a scalar or one-element host tensor."""
    arr = np.asarray(value)
    if arr.size != 1:
        raise ValueError(f"expected a scalar or one-element tensor, got shape {arr.shape}")
    return arr.reshape(-1)[0]


def const_or_none(node: NodeInfo, index: int) -> Any:
    """Return the constant value of input ``index`` or None (also None when the input is absent)."""
    if index < len(node.const_inputs) and node.has_input(index):
        return node.const_inputs[index]
    return None


def zero_of(dtype: np.dtype) -> Any:
    """Return the zero value of ``dtype`` ('' for strings)."""
    return "" if dtype == np.dtype(object) else dtype.type(0)


def checked_axis(node: NodeInfo, axis: int, rank: int) -> int:
    """Return ``axis`` made non-negative for a tensor of ``rank``, or raise ValueError
    ("axis A is out of range for rank R"): the attention-family kernels' variant of
    :func:`normalize_axis`, kept apart so that their messages stay as they are."""
    if not -rank <= axis < rank:
        raise ValueError(f"{node.describe()}: axis {axis} is out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


def required_positive_int(node: NodeInfo, name: str) -> int:
    """Return the required positive int attribute ``name``, or raise ValueError."""
    value = node.attrs.get(name)
    if value is None or int(value) <= 0:
        raise ValueError(f"{node.describe()}: attribute {name} must be a positive int")
    return int(value)
