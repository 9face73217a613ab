"""GPU kernels: Gather, GatherElements, ScatterElements and ScatterND without host-side
bounds checks.

The CPU kernels check every index on the host (``int(indices.min())``), which on a GPU is a
device-to-host synchronization per node (and cannot be captured in a CUDA graph). Here indices
are wrapped once (negative ones count from the back); a gathered index outside ``[-n, n)``
yields zeros, as ONNX Runtime's CUDA Gather does, without ever leaving the device. The CPU
scatters combine duplicates with ``ufunc.at``; here reductions use cupy's atomic
``scatter_add/max/min`` (there is no atomic multiply: ``reduction="mul"`` runs on the CPU).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ort_provider_cpu.kernels.kernel_args import normalize_axis

from ort.ep import KernelTable, NodeInfo

kernels = KernelTable()


def _wrapped(xp: Any, indices: Any, dim: int) -> tuple[Any, Any]:
    """(indices wrapped into [0, dim) with out-of-range ones sent to 0, validity mask)."""
    idx = indices.astype(np.int64, copy=False)
    idx = xp.where(idx < 0, idx + dim, idx)
    valid = (idx >= 0) & (idx < dim)
    return xp.where(valid, idx, 0), valid


def _zero_invalid(xp: Any, out: Any, valid: Any, shape: tuple[int, ...]) -> Any:
    """Zero the entries of ``out`` whose index was out of range (``valid`` reshaped to
    broadcast over ``out``); GPU: one masked copy, no host check of the mask."""
    xp.copyto(out, out.dtype.type(0), where=~valid.reshape(shape))
    return out


@kernels.register("Gather", since=1)
def gather(node: NodeInfo):
    """Gather 1+: entries of ``axis`` at ``indices``; out-of-range indices give zeros."""
    axis = int(node.attrs.get("axis", 0))
    xp = node.xp

    def compute(x: Any, indices: Any) -> tuple:
        a = normalize_axis(node, axis, x.ndim, scalar_ok=True)
        dim = x.shape[a]
        out_shape = x.shape[:a] + tuple(indices.shape) + x.shape[a + 1:]
        if dim == 0 or indices.size == 0:
            return (xp.zeros(out_shape, dtype=x.dtype),)
        idx, valid = _wrapped(xp, indices, dim)
        out = xp.take(x, idx, axis=a)
        mask_shape = (1,) * a + tuple(indices.shape) + (1,) * (x.ndim - a - 1)
        return (_zero_invalid(xp, out, valid, mask_shape),)

    return compute


@kernels.register("GatherElements", since=11)
def gather_elements(node: NodeInfo):
    """GatherElements 11+: ``out[i][j] = data[idx[i][j]][j]`` along ``axis``; out-of-range
    indices give zeros."""
    axis = int(node.attrs.get("axis", 0))
    xp = node.xp

    def compute(x: Any, indices: Any) -> tuple:
        if indices.ndim != x.ndim:
            raise ValueError(
                f"{node.describe()}: indices rank {indices.ndim} != data rank {x.ndim}")
        a = normalize_axis(node, axis, x.ndim, scalar_ok=True)
        for d in range(x.ndim):
            if d != a and indices.shape[d] > x.shape[d]:
                raise ValueError(f"{node.describe()}: indices shape {indices.shape} exceeds "
                                 f"data shape {x.shape} on axis {d}")
        if indices.size == 0 or x.shape[a] == 0:
            return (xp.zeros(indices.shape, dtype=x.dtype),)
        idx, valid = _wrapped(xp, indices, x.shape[a])
        view = x[tuple(slice(None) if d == a else slice(0, indices.shape[d])
                       for d in range(x.ndim))]
        out = xp.take_along_axis(view, idx, axis=a)
        return (_zero_invalid(xp, out, valid, tuple(indices.shape)),)

    return compute


# --------------------------------------------------------------------------- scatter

#: reduction -> cupy's atomic ndarray method (multiplication has none: such nodes run on CPU)
SCATTER_METHODS = {"add": "scatter_add", "max": "scatter_max", "min": "scatter_min"}
#: element types cupy's atomic scatter methods take
SCATTER_REDUCE_DTYPES = frozenset(np.dtype(t) for t in (np.float32, np.float64, np.int32))


def _scatter(xp: Any, node: NodeInfo, x: Any, index: tuple, updates: Any) -> Any:
    """A copy of ``x`` with ``updates`` written (or combined by the node's reduction) at
    ``index``. GPU: duplicate indices without reduction leave an unspecified winner (the spec
    leaves it undefined; the CPU's last write wins), and reductions use atomics, so float
    sums may differ from the CPU's in the last bits."""
    out = x.copy()
    reduction = str(node.attrs.get("reduction", "none"))
    if reduction == "none":
        out[index] = updates
    else:
        getattr(out, SCATTER_METHODS[reduction])(index, updates.astype(x.dtype, copy=False))
    return out


@kernels.register("ScatterElements", since=11)
def scatter_elements(node: NodeInfo):
    """ScatterElements 11+: write updates along ``axis`` (reduction add/min/max; mul runs on
    the CPU); negative indices count from the back, no host bounds check."""
    axis = int(node.attrs.get("axis", 0))
    xp = node.xp

    def compute(x: Any, indices: Any, updates: Any) -> tuple:
        if indices.shape != updates.shape or indices.ndim != x.ndim:
            raise ValueError(f"{node.describe()}: indices {indices.shape} and updates "
                             f"{updates.shape} must match each other and the rank of data "
                             f"{x.shape}")
        a = normalize_axis(node, axis, x.ndim, scalar_ok=True)
        idx = indices.astype(np.int64, copy=False)
        idx = xp.where(idx < 0, idx + x.shape[a], idx)
        n = indices.ndim
        grids = tuple(idx if d == a else xp.broadcast_to(
            xp.arange(s).reshape((1,) * d + (s,) + (1,) * (n - d - 1)), indices.shape)
            for d, s in enumerate(indices.shape))
        return (_scatter(xp, node, x, grids, updates),)

    return compute


@kernels.register("ScatterND", since=11)
def scatter_nd(node: NodeInfo):
    """ScatterND 11+: write update slices at the positions the last dim of ``indices`` names
    (reduction add/min/max; mul runs on the CPU); no host bounds check."""
    xp = node.xp

    def compute(x: Any, indices: Any, updates: Any) -> tuple:
        k = indices.shape[-1] if indices.ndim else -1
        if k < 1 or k > x.ndim:
            raise ValueError(f"{node.describe()}: indices shape {indices.shape} invalid for "
                             f"data {x.shape}")
        expect = indices.shape[:-1] + x.shape[k:]
        if updates.shape != expect:
            raise ValueError(f"{node.describe()}: updates shape {updates.shape} must be "
                             f"{expect}")
        idx = indices.astype(np.int64, copy=False)
        cols = tuple(xp.where(idx[..., j] < 0, idx[..., j] + x.shape[j], idx[..., j])
                     for j in range(k))
        return (_scatter(xp, node, x, cols, updates),)

    return compute
