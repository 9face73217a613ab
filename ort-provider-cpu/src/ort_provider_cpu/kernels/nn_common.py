"""Helpers shared by the CPU provider's nn and image kernel families (conv, pooling,
normalization, softmax, resize, sampling, detection, ...): the float dtype they compute in,
axis and attribute reading, rounding results back to the input type, the cubic filter and Lp
norms. No kernels are registered here. :func:`compute_dtype` and :func:`wide_compute_dtype`
differ only for integer inputs, which the latter computes in float64 from 32 bits up."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ort.ep import NodeInfo


# --------------------------------------------------------------------------------------------
# dtypes
# --------------------------------------------------------------------------------------------


def compute_dtype(dtype: Any) -> np.dtype:
    """Return the dtype to accumulate in: float64 stays, every other float type uses float32."""
    dtype = np.dtype(dtype)
    return np.dtype(np.float64) if dtype == np.float64 else np.dtype(np.float32)


def wide_compute_dtype(dtype: Any) -> np.dtype:
    """Return the float dtype to compute in: float64 for float64 and wide integers, else
    float32 (float16, bfloat16, float32, narrow integers)."""
    dtype = np.dtype(dtype)
    if dtype == np.float64 or (dtype.kind in "iu" and dtype.itemsize >= 4):
        return np.dtype(np.float64)
    return np.dtype(np.float32)


def cast_result(xp: Any, y: Any, dtype: Any) -> Any:
    """Return the float result ``y`` as ``dtype``: integers rounded half to even and
    saturated, bool as ``y != 0``, floats cast."""
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        y = xp.clip(xp.rint(y), info.min, info.max)
    elif dtype.kind == "b":
        return y != 0
    return y.astype(dtype, copy=False)


# --------------------------------------------------------------------------------------------
# axes and attributes
# --------------------------------------------------------------------------------------------


def normalize_axis(node: NodeInfo, axis: int, rank: int) -> int:
    """Return ``axis`` made non-negative for a tensor of ``rank``, or raise ValueError."""
    if not -rank <= axis < max(rank, 1):
        raise ValueError(f"{node.describe()}: axis {axis} is out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


def normalize_axes(node: NodeInfo, axes: Sequence[int], rank: int) -> tuple[int, ...]:
    """Return ``axes`` made non-negative for ``rank``; raise ValueError if out of range or
    repeated."""
    result = []
    for axis in axes:
        if not -rank <= axis < rank:
            raise ValueError(f"{node.describe()}: axis {axis} is out of range for rank {rank}")
        result.append(axis + rank if axis < 0 else axis)
    if len(set(result)) != len(result):
        raise ValueError(f"{node.describe()}: axes {tuple(axes)} contain a repeated axis")
    return tuple(result)


def channel_shape(rank: int) -> tuple[int, ...]:
    """Return the shape ``(-1, 1, ..., 1)`` that broadcasts a per-channel vector over NC...."""
    return (-1,) + (1,) * max(rank - 2, 0)


def str_attr(node: NodeInfo, name: str, default: str) -> str:
    """Return string attribute ``name`` of ``node`` (``default`` when absent)."""
    value = node.attrs.get(name, default)
    if value is None:
        return default
    return value.decode() if isinstance(value, bytes) else str(value)


def host_ints(value: Any) -> tuple[int, ...]:
    """Return a host shape-like tensor as a tuple of Python ints."""
    return tuple(int(v) for v in np.asarray(value).reshape(-1))


# --------------------------------------------------------------------------------------------
# filters and norms
# --------------------------------------------------------------------------------------------


def cubic_kernel(xp: Any, d: Any, a: float) -> Any:
    """Return Keys' cubic convolution filter with coefficient ``a`` at distances ``d``."""
    d = xp.abs(d)
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return xp.where(d <= 1, near, xp.where(d < 2, far, xp.zeros((), dtype=d.dtype)))


def lp_power(xp: Any, x: Any, p: float) -> Any:
    """Return |x|**p (x*x for p=2)."""
    if p == 2:
        return x * x
    if p == 1:
        return xp.abs(x)
    return xp.abs(x) ** x.dtype.type(p)


def lp_root(xp: Any, total: Any, p: float) -> Any:
    """Return total**(1/p) (sqrt for p=2)."""
    if p == 2:
        return xp.sqrt(total)
    if p == 1:
        return total
    return total ** total.dtype.type(1.0 / p)
