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


def normalize_axis(node: NodeInfo | str, axis: int, rank: int, what: str = "axis", *,
                   scalar_ok: bool = False) -> int:
    """``axis`` made non-negative for a tensor of ``rank`` (``scalar_ok``: a rank-0 tensor
    takes axis 0); a ValueError naming the node (or ``node``, a description), the axis and
    the valid range otherwise."""
    axis = int(axis)
    high = max(rank, 1) if scalar_ok else rank
    if not -rank <= axis < high:
        where = node if isinstance(node, str) else node.describe()
        raise ValueError(f"{where}: {what} {axis} is out of range for rank {rank} "
                         f"(valid: {-rank} to {high - 1})")
    return axis + rank if axis < 0 else axis


def normalize_axes(node: NodeInfo | str, axes: Sequence[int], rank: int,
                   what: str = "axes") -> tuple[int, ...]:
    """Every axis of ``axes`` normalized (:func:`normalize_axis`); repeated axes are a
    ValueError."""
    out = tuple(normalize_axis(node, a, rank, what) for a in axes)
    if len(set(out)) != len(out):
        where = node if isinstance(node, str) else node.describe()
        raise ValueError(f"{where}: {what} {list(axes)} repeat an axis")
    return out


def host_ints(value: Any, any_rank: bool = False) -> tuple[int, ...]:
    """A host (numpy) integer tensor of rank 0 or 1 (shapes, axes, pads, repeats, splits,
    starts/ends) as a flat tuple of Python ints; a higher rank is a ValueError, as
    onnxruntime's kernels refuse it ("must be a 1-D array"), unless ``any_rank`` (an op that
    takes its ints in another layout, e.g. com.microsoft Pad's [1, 2 * rank] pads)."""
    array = np.asarray(value)
    if array.ndim > 1 and not any_rank:
        raise ValueError(f"expected a 1-D tensor of integers (a shape, axes, pads, ...), got "
                         f"shape {list(array.shape)}")
    return tuple(int(v) for v in array.reshape(-1).tolist())


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


def required_positive_int(node: NodeInfo, name: str) -> int:
    """Return the required positive int attribute ``name``, or raise ValueError."""
    value = node.attrs.get(name)
    if value is None or int(value) <= 0:
        raise ValueError(f"{node.describe()}: attribute {name} must be a positive int")
    return int(value)
