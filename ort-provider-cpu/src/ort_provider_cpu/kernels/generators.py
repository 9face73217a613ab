"""CPU kernels: generator ops, whose output values come from a shape, a few scalars or a
fixed pattern rather than from an input's values (ConstantOfShape, Range, EyeLike, and Trilu,
which keeps an input's values inside a triangle pattern).

Host inputs (ConstantOfShape's ``shape``, Range's scalars, Trilu's ``k``) are read as numpy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

import ort
from ort.ep import KernelTable, NodeInfo
from ort.ep import np_dtype_of

from .kernel_args import const_or_none, host_ints, host_scalar, zero_of

kernels = KernelTable()


# ------------------------------------------------------------------------- ConstantOfShape / Range


def _check_dims(node: NodeInfo, dims: Sequence[int], what: str = "shape") -> tuple[int, ...]:
    """Return ``dims`` as a tuple after rejecting negative entries."""
    if any(d < 0 for d in dims):
        raise ValueError(f"{node.describe()}: {what} {list(dims)} has negative dims")
    return tuple(dims)


@kernels.register("ConstantOfShape", since=9, host_inputs=(0,))
def constant_of_shape(node: NodeInfo):
    """ConstantOfShape: a tensor of the given shape filled with ``value`` (float32 0 default)."""
    value = node.attrs.get("value")
    if value is None:
        value = np.zeros(1, dtype=np.float32)
    value = np.asarray(value)
    if value.size != 1:
        raise ValueError(f"{node.describe()}: 'value' must have exactly one element")
    fill = value.reshape(-1)[0]
    dtype = value.dtype
    xp = node.xp

    def compute(shape_in):
        dims = _check_dims(node, host_ints(shape_in))
        node.check_output_size(dims, dtype)
        return (xp.full(dims, fill, dtype=dtype),)

    return compute


def _float_count(node: NodeInfo, span: float, delta: float) -> int:
    """``max(ceil(span / delta), 0)``: how many values a float Range has;
    :class:`ort.InvalidArgument` (as onnxruntime) when that is not a finite number."""
    count = span / delta
    if not math.isfinite(count):
        raise ort.InvalidArgument(
            f"{node.describe()}: the computed number of elements is not a finite value "
            f"((limit - start) / delta = {count}); start, limit and delta must be finite")
    return max(int(math.ceil(count)), 0)


@kernels.register("Range", since=11, host_inputs=(0, 1, 2))
def range_(node: NodeInfo):
    """Range: ``start, start+delta, ...`` up to ``limit`` (exclusive), accumulated like ORT."""
    xp = node.xp
    stash = int(node.attrs.get("stash_type", 1))

    def compute(start, limit, delta):
        dtype = np.asarray(start).dtype
        s, lim, d = (host_scalar(v) for v in (start, limit, delta))
        if d == 0:
            raise ValueError(f"{node.describe()}: delta must not be zero")
        if dtype.kind in "iu":
            s, lim, d = int(s), int(lim), int(d)
            n = max(-(-(lim - s) // d), 0)
            node.check_output_size((n,), np.int64)  # the values are made in int64
            return (xp.asarray(np.arange(n, dtype=np.int64) * d + s, dtype=dtype),)
        work = dtype
        if dtype.itemsize < 4 and stash == 1:
            work = np.dtype(np.float32)
        s, lim, d = work.type(s), work.type(lim), work.type(d)
        n = _float_count(node, float(lim) - float(s), float(d))
        node.check_output_size((n,), work)
        steps = np.full(n, d, dtype=work)
        if n:
            steps[0] = s
        out = np.cumsum(steps, dtype=work).astype(dtype, copy=False)
        return (xp.asarray(out),)

    return compute


# --------------------------------------------------------------------------- Trilu / EyeLike


@kernels.register("Trilu", since=14, host_inputs=(1,))
def trilu(node: NodeInfo):
    """Trilu: keep the upper (default) or lower triangle of the last two dims, offset by k."""
    upper = bool(node.attrs.get("upper", 1))
    xp = node.xp
    const = const_or_none(node, 1)
    const_k = None if const is None else int(host_scalar(const))

    def compute(x, k=None):
        kk = const_k if const_k is not None else (0 if k is None else int(host_scalar(k)))
        if x.ndim < 2:
            raise ValueError(f"{node.describe()}: input must have rank >= 2, got {x.shape}")
        n, m = x.shape[-2:]
        keep = xp.tri(n, m, kk - 1, dtype=bool) if upper else xp.tri(n, m, kk, dtype=bool)
        if upper:
            keep = ~keep
        return (xp.where(keep, x, zero_of(x.dtype)).astype(x.dtype, copy=False),)

    return compute


@kernels.register("EyeLike", since=9)
def eye_like(node: NodeInfo):
    """EyeLike: a 2-D identity-like tensor shaped like the input, ones on diagonal ``k``."""
    k = int(node.attrs.get("k", 0))
    dtype_attr = node.attrs.get("dtype")
    dtype = None if dtype_attr is None else np_dtype_of(int(dtype_attr))
    xp = node.xp

    def compute(x):
        if x.ndim != 2:
            raise ValueError(f"{node.describe()}: input must be 2-D, got shape {x.shape}")
        return (xp.eye(x.shape[0], x.shape[1], k, dtype=dtype or x.dtype),)

    return compute
