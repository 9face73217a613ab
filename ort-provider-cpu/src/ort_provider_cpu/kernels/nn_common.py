"""Helpers shared by the CPU provider's nn and image kernel families (conv, pooling,
normalization, softmax, resize, sampling, detection, ...): rounding results back to the input
type, string attributes, the per-channel broadcast shape, the cubic filter and Lp norms. No
kernels are registered here; the work dtypes are in :mod:`float_work`, axes and host ints in
:mod:`kernel_args`."""

from __future__ import annotations

from typing import Any

import numpy as np

from ort.ep import NodeInfo




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




def channel_shape(rank: int) -> tuple[int, ...]:
    """Return the shape ``(-1, 1, ..., 1)`` that broadcasts a per-channel vector over NC...."""
    return (-1,) + (1,) * max(rank - 2, 0)


def str_attr(node: NodeInfo, name: str, default: str) -> str:
    """Return string attribute ``name`` of ``node`` (``default`` when absent)."""
    value = node.attrs.get(name, default)
    if value is None:
        return default
    return value.decode() if isinstance(value, bytes) else str(value)


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
