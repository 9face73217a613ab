"""CPU kernels: ops along one axis of their input: CumSum and CumProd (running sums and
products, ``exclusive`` and ``reverse``) and Hardmax (one-hot of the first maximum)."""

from __future__ import annotations

import numpy as np

from ort.ep import KernelTable, NodeInfo

kernels = KernelTable()


def _cumsum(xp, x, axis: int, exclusive: bool, reverse: bool, product: bool = False):
    """Return the (exclusive, reversed) cumulative sum (or ``product``) of x along axis in
    x's dtype."""
    op = "CumProd" if product else "CumSum"
    if x.ndim == 0:
        raise ValueError(f"{op} input must have at least one dimension")
    axis = axis + x.ndim if axis < 0 else axis
    if not 0 <= axis < x.ndim:
        raise ValueError(f"{op} axis {axis} out of range for rank {x.ndim}")
    if reverse:
        x = xp.flip(x, axis)
    out = (xp.cumprod if product else xp.cumsum)(x, axis=axis, dtype=x.dtype)
    if exclusive:
        shifted = xp.ones_like(out) if product else xp.zeros_like(out)
        dst = [slice(None)] * x.ndim
        src = [slice(None)] * x.ndim
        dst[axis] = slice(1, None)
        src[axis] = slice(None, -1)
        shifted[tuple(dst)] = out[tuple(src)]
        out = shifted
    if reverse:
        out = xp.flip(out, axis)
    return xp.ascontiguousarray(out)


def _cumulative(node: NodeInfo, product: bool):
    """The compute function of CumSum (``product=False``) or CumProd along ``axis``."""
    xp = node.xp
    exclusive = bool(node.attrs.get("exclusive", 0))
    reverse = bool(node.attrs.get("reverse", 0))

    def compute(x, axis):
        axis = int(np.asarray(axis).reshape(-1)[0])
        return (_cumsum(xp, x, axis, exclusive, reverse, product=product),)

    return compute


@kernels.register("CumSum", 11)
def cumsum(node: NodeInfo):
    """CumSum(x, axis) with ``exclusive`` and ``reverse`` attributes."""
    return _cumulative(node, product=False)


@kernels.register("CumProd", 26)
def cumprod(node: NodeInfo):
    """CumProd 26+: CumProd(x, axis) with ``exclusive`` (first product is 1) and ``reverse``."""
    return _cumulative(node, product=True)


def _one_hot_of_max(xp, x, axis: int):
    """Return a tensor like x with 1 at the first maximum along axis and 0 elsewhere."""
    index = xp.argmax(x, axis=axis, keepdims=True)
    positions = xp.arange(x.shape[axis]).reshape((-1,) + (1,) * (x.ndim - axis - 1))
    return (positions == index).astype(x.dtype)


@kernels.register("Hardmax", 1, 12)
def hardmax_coerced(node: NodeInfo):
    """Hardmax 1-12: input coerced to 2-D at ``axis`` (default 1); max over the second dim."""
    xp = node.xp
    axis = int(node.attrs.get("axis", 1))

    def compute(x):
        ax = axis + x.ndim if axis < 0 else axis
        rows = int(np.prod(x.shape[:ax], dtype=np.int64))
        flat = x.reshape(rows, -1)
        if flat.size == 0:
            return (xp.zeros_like(x),)
        return (_one_hot_of_max(xp, flat, 1).reshape(x.shape),)

    return compute


@kernels.register("Hardmax", 13)
def hardmax(node: NodeInfo):
    """Hardmax 13+: one-hot of the first maximum along ``axis`` (default -1)."""
    xp = node.xp
    axis = int(node.attrs.get("axis", -1))

    def compute(x):
        ax = axis + x.ndim if axis < 0 else axis
        if x.size == 0:
            return (xp.zeros_like(x),)
        return (_one_hot_of_max(xp, x, ax),)

    return compute
