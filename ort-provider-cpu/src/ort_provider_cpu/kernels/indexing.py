"""CPU kernels: indexing ops (Slice, Gather*, Scatter*, Compress, NonZero, TopK, OneHot, ...).

Indices are validated, never wrapped or clamped silently: an out-of-range index raises
IndexError naming the index and the valid range.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ort.ep import KernelTable, NodeInfo

from .kernel_args import const_or_none, host_ints, host_scalar, normalize_axes, normalize_axis

kernels = KernelTable()


# --------------------------------------------------------------------------- helpers


#: index arrays up to this size are range-checked in Python rather than by numpy reductions
_FEW = 16


def checked_indices(node: NodeInfo, indices, dim: int, what: str = "index"):
    """Return ``indices`` as int64 with negatives wrapped once; raise IndexError if out of range."""
    xp = node.xp
    idx = indices.astype(np.int64, copy=False)
    if idx.size == 0:
        return idx
    if idx.size <= _FEW and isinstance(idx, np.ndarray):  # numpy's reductions cost µs each
        values = idx.ravel().tolist()
        lo, hi = min(values), max(values)
    else:
        lo, hi = int(idx.min()), int(idx.max())
    if lo < -dim or hi >= dim:
        bad = lo if lo < -dim else hi
        raise IndexError(
            f"{node.describe()}: {what} {bad} is out of range [{-dim}, {dim - 1}]")
    if lo < 0:
        idx = xp.where(idx < 0, idx + dim, idx)
    return idx


def as_array(xp, value, dtype):
    """Return ``value`` as an array of ``dtype`` (numpy indexing may yield a bare scalar)."""
    if isinstance(value, xp.ndarray):
        return value
    out = xp.empty((), dtype=dtype)
    out[()] = value
    return out


# --------------------------------------------------------------------------- Slice


def slice_index(node: NodeInfo, shape: tuple[int, ...], starts: Sequence[int],
                ends: Sequence[int], axes: Sequence[int] | None,
                steps: Sequence[int] | None) -> tuple[slice, ...]:
    """Build the index tuple of an ONNX Slice with clamping as the spec defines."""
    rank = len(shape)
    if len(starts) != len(ends):
        raise ValueError(f"{node.describe()}: starts {list(starts)} and ends {list(ends)} differ in length")
    axes = list(range(len(starts))) if axes is None else normalize_axes(node, axes, rank)
    if len(axes) != len(starts):
        raise ValueError(f"{node.describe()}: axes {axes} do not match starts {list(starts)}")
    steps = [1] * len(starts) if steps is None else list(steps)
    if len(steps) != len(starts):
        raise ValueError(f"{node.describe()}: steps {steps} do not match starts {list(starts)}")
    index = [slice(None)] * rank
    for a, s, e, st in zip(axes, starts, ends, steps):
        dim = shape[a]
        if st == 0:
            raise ValueError(f"{node.describe()}: slice step must not be zero")
        s = s + dim if s < 0 else s
        e = e + dim if e < 0 else e
        if st > 0:
            s = min(max(s, 0), dim)
            e = min(max(e, 0), dim)
            index[a] = slice(s, e, st)
        else:
            s = min(max(s, 0), dim - 1)
            e = min(max(e, -1), dim - 1)
            index[a] = slice(s, None if e < 0 else e, st)
    return tuple(index)


@kernels.register("Slice", since=1, until=9)
def slice_1(node: NodeInfo):
    """Slice-1: ``starts``/``ends``/optional ``axes`` attributes."""
    starts = node.attrs.get("starts")
    ends = node.attrs.get("ends")
    if starts is None or ends is None:
        raise ValueError(f"{node.describe()}: 'starts' and 'ends' attributes are required")
    starts, ends = [int(v) for v in starts], [int(v) for v in ends]
    axes = node.attrs.get("axes")
    axes = None if axes is None else [int(a) for a in axes]

    def compute(x):
        return (x[slice_index(node, x.shape, starts, ends, axes, None)],)

    return compute


@kernels.register("Slice", since=10, host_inputs=(1, 2, 3, 4))
def slice_10(node: NodeInfo):
    """Slice-10+: starts, ends, optional axes and steps as inputs (negative steps allowed)."""
    consts = [const_or_none(node, i) for i in range(1, 5)]
    all_const = consts[0] is not None and consts[1] is not None and all(
        consts[i - 1] is not None or not node.has_input(i) for i in (3, 4))
    if all_const:
        parsed = [None if c is None else host_ints(c) for c in consts]
        cache: dict[tuple[int, ...], tuple[slice, ...]] = {}

        def compute(x, *_):
            index = cache.get(x.shape)
            if index is None:
                if len(cache) > 64:
                    cache.clear()
                index = cache[x.shape] = slice_index(node, x.shape, *parsed)
            return (x[index],)

        return compute

    def compute(x, starts, ends, axes=None, steps=None):
        index = slice_index(
            node, x.shape, host_ints(starts), host_ints(ends),
            None if axes is None else host_ints(axes),
            None if steps is None else host_ints(steps))
        return (x[index],)

    return compute


# --------------------------------------------------------------------------- Gather family


@kernels.register("Gather", since=1)
def gather(node: NodeInfo):
    """Gather: take entries of ``axis`` at ``indices`` (negative indices count from the back)."""
    axis = int(node.attrs.get("axis", 0))
    xp = node.xp

    def compute(x, indices):
        a = normalize_axis(node, axis, x.ndim)
        dim = x.shape[a]
        if indices.ndim == 0 and isinstance(indices, np.ndarray):  # scalar index: a view
            i = int(indices)
            if not -dim <= i < dim:
                raise IndexError(
                    f"{node.describe()}: index {i} is out of range [{-dim}, {dim - 1}]")
            return (as_array(xp, x[(slice(None),) * a + (i,)], x.dtype),)
        idx = checked_indices(node, indices, dim)
        return (as_array(xp, xp.take(x, idx, axis=a), x.dtype),)

    return compute


@kernels.register("GatherElements", since=11)
def gather_elements(node: NodeInfo):
    """GatherElements: ``out[i][j] = data[idx[i][j]][j]`` along ``axis``."""
    axis = int(node.attrs.get("axis", 0))
    xp = node.xp

    def compute(x, indices):
        if indices.ndim != x.ndim:
            raise ValueError(
                f"{node.describe()}: indices rank {indices.ndim} != data rank {x.ndim}")
        a = normalize_axis(node, axis, x.ndim)
        idx = checked_indices(node, indices, x.shape[a])
        for d in range(x.ndim):
            if d != a and indices.shape[d] > x.shape[d]:
                raise ValueError(
                    f"{node.describe()}: indices shape {indices.shape} exceeds data shape "
                    f"{x.shape} on axis {d}")
        view = x[tuple(slice(None) if d == a else slice(0, indices.shape[d]) for d in range(x.ndim))]
        return (xp.take_along_axis(view, idx, axis=a),)

    return compute


@kernels.register("GatherND", since=11)
def gather_nd(node: NodeInfo):
    """GatherND: gather slices of ``data`` addressed by the last dim of ``indices``."""
    batch_dims = int(node.attrs.get("batch_dims", 0))
    xp = node.xp

    def compute(x, indices):
        k = indices.shape[-1] if indices.ndim else 0
        if indices.ndim < 1 or batch_dims + k > x.ndim or batch_dims >= indices.ndim:
            raise ValueError(
                f"{node.describe()}: indices shape {indices.shape} invalid for data {x.shape} "
                f"with batch_dims {batch_dims}")
        bshape = x.shape[:batch_dims]
        if indices.shape[:batch_dims] != bshape:
            raise ValueError(
                f"{node.describe()}: batch dims of data {x.shape} and indices {indices.shape} differ")
        nb = math.prod(bshape)
        data = x.reshape((nb,) + x.shape[batch_dims:])
        idx = indices.reshape(nb, -1, k)
        cols = [checked_indices(node, idx[:, :, j], data.shape[1 + j], f"index (dim {j})")
                for j in range(k)]
        bidx = xp.arange(nb).reshape(nb, 1)
        out = data[(bidx, *cols)] if k else xp.broadcast_to(
            data[:, None], (nb, idx.shape[1]) + data.shape[1:])
        out_shape = indices.shape[:-1] + x.shape[batch_dims + k:]
        return (xp.asarray(out).reshape(out_shape),)

    return compute


# --------------------------------------------------------------------------- Scatter family


_REDUCTIONS = {"add": "add", "mul": "multiply", "min": "minimum", "max": "maximum"}


def _reduction(node: NodeInfo, allowed: Sequence[str]):
    """Return the ufunc name of the ``reduction`` attribute (None for 'none')."""
    red = str(node.attrs.get("reduction", "none"))
    if red == "none":
        return None
    if red not in allowed:
        raise ValueError(f"{node.describe()}: unsupported reduction '{red}'")
    return _REDUCTIONS[red]


def _scatter_into(xp, out, index, updates, ufunc_name):
    """Write ``updates`` at ``index`` of ``out`` (in place), combining with a ufunc if given."""
    if ufunc_name is None:
        out[index] = updates
    else:
        getattr(xp, ufunc_name).at(out, index, updates)


def _scatter_elements(node: NodeInfo, allowed: Sequence[str]):
    """Build a ScatterElements/Scatter compute function."""
    axis = int(node.attrs.get("axis", 0))
    ufunc_name = _reduction(node, allowed)
    xp = node.xp

    def compute(x, indices, updates):
        if indices.shape != updates.shape or indices.ndim != x.ndim:
            raise ValueError(
                f"{node.describe()}: indices {indices.shape} and updates {updates.shape} must "
                f"match each other and the rank of data {x.shape}")
        a = normalize_axis(node, axis, x.ndim)
        idx = checked_indices(node, indices, x.shape[a])
        n = indices.ndim
        grids = [idx if d == a else xp.arange(s).reshape((1,) * d + (s,) + (1,) * (n - d - 1))
                 for d, s in enumerate(indices.shape)]
        out = x.copy()
        _scatter_into(xp, out, tuple(grids), updates, ufunc_name)
        return (out,)

    return compute


@kernels.register("Scatter", since=9, until=11)
def scatter(node: NodeInfo):
    """Scatter (deprecated alias of ScatterElements without reduction)."""
    return _scatter_elements(node, ())


@kernels.register("ScatterElements", since=11)
def scatter_elements(node: NodeInfo):
    """ScatterElements: write updates along ``axis``; reduction add/mul (16+), min/max (18+)."""
    allowed = ("add", "mul", "min", "max") if node.since_version >= 18 else ("add", "mul")
    return _scatter_elements(node, allowed)


@kernels.register("ScatterND", since=11)
def scatter_nd(node: NodeInfo):
    """ScatterND: write update slices at the positions named by the last dim of ``indices``."""
    allowed = ("add", "mul", "min", "max") if node.since_version >= 18 else ("add", "mul")
    ufunc_name = _reduction(node, allowed)
    xp = node.xp

    def compute(x, indices, updates):
        k = indices.shape[-1] if indices.ndim else -1
        if k < 0 or k > x.ndim:
            raise ValueError(f"{node.describe()}: indices shape {indices.shape} invalid for data {x.shape}")
        expect = indices.shape[:-1] + x.shape[k:]
        if updates.shape != expect:
            raise ValueError(
                f"{node.describe()}: updates shape {updates.shape} must be {expect}")
        idx = indices.reshape(-1, k)
        cols = tuple(checked_indices(node, idx[:, j], x.shape[j], f"index (dim {j})")
                     for j in range(k))
        out = x.copy()
        upd = updates.reshape((idx.shape[0],) + x.shape[k:])
        if k == 0:
            for i in range(idx.shape[0]):
                if ufunc_name is None:
                    out[...] = upd[i]
                else:
                    out[...] = getattr(xp, ufunc_name)(out, upd[i])
            return (out,)
        _scatter_into(xp, out, cols, upd, ufunc_name)
        return (out,)

    return compute


# --------------------------------------------------------------------------- selection ops


@kernels.register("Compress", since=9)
def compress(node: NodeInfo):
    """Compress: keep slices along ``axis`` (or elements of the flattened input) where condition."""
    axis = node.attrs.get("axis")
    xp = node.xp

    def compute(x, condition):
        data = x.reshape(-1) if axis is None else x
        a = 0 if axis is None else normalize_axis(node, int(axis), x.ndim)
        cond = condition.reshape(-1)[: data.shape[a]]  # extra entries are ignored, as in ORT
        keep = xp.nonzero(cond)[0]
        return (xp.take(data, keep, axis=a),)

    return compute


@kernels.register("NonZero", since=9)
def non_zero(node: NodeInfo):
    """NonZero: indices of the non-zero elements, shape (rank, count), int64."""
    xp = node.xp

    def compute(x):
        if x.ndim == 0:  # ORT treats a scalar as a one-element vector
            return (xp.zeros((1, int(bool(x))), dtype=np.int64),)
        return (xp.asarray(xp.nonzero(x), dtype=np.int64).reshape(x.ndim, -1),)

    return compute


def _topk(node: NodeInfo, x, k: int, axis: int, largest: bool):
    """Return (values, indices) of the top ``k`` along ``axis``; ties keep the lower index first."""
    xp = node.xp
    a = normalize_axis(node, axis, x.ndim)
    dim = x.shape[a]
    if k < 0 or k > dim:
        raise ValueError(f"{node.describe()}: k {k} is out of range [0, {dim}] for axis {a}")
    if largest:
        flipped = xp.flip(x, axis=a)
        order = xp.argsort(flipped, axis=a, kind="stable")
        order = (dim - 1) - xp.flip(order, axis=a)
    else:
        order = xp.argsort(x, axis=a, kind="stable")
    order = order[(slice(None),) * a + (slice(0, k),)].astype(np.int64, copy=False)
    return xp.take_along_axis(x, order, axis=a), order


@kernels.register("TopK", since=1, until=9)
def topk_1(node: NodeInfo):
    """TopK-1: ``k`` attribute, largest first."""
    k = node.attrs.get("k")
    if k is None:
        raise ValueError(f"{node.describe()}: missing 'k' attribute")
    axis = int(node.attrs.get("axis", -1))

    def compute(x):
        return _topk(node, x, int(k), axis, True)

    return compute


@kernels.register("TopK", since=10, host_inputs=(1,))
def topk_10(node: NodeInfo):
    """TopK-10+: ``K`` input; ``largest``/``sorted`` attributes since 11 (always sorted here)."""
    axis = int(node.attrs.get("axis", -1))
    largest = bool(node.attrs.get("largest", 1))

    def compute(x, k):
        return _topk(node, x, int(host_scalar(k)), axis, largest)

    return compute


@kernels.register("OneHot", since=9, host_inputs=(1,))
def one_hot(node: NodeInfo):
    """OneHot: ``values[1]`` where the index matches, else ``values[0]``; bad indices give all-off."""
    axis = int(node.attrs.get("axis", -1))
    xp = node.xp

    def compute(indices, depth, values):
        d = int(host_scalar(depth))
        if d < 1:
            raise ValueError(f"{node.describe()}: depth must be positive, got {d}")
        if values.size != 2:
            raise ValueError(f"{node.describe()}: values must have 2 elements, got {values.shape}")
        rank = indices.ndim + 1
        a = normalize_axis(node, axis, rank)
        node.check_output_size(indices.shape[:a] + (d,) + indices.shape[a:], values.dtype)
        idx = indices.astype(np.int64) if indices.dtype.kind in "iub" else xp.trunc(indices).astype(np.int64)
        idx = xp.where(idx < 0, idx + d, idx)
        hot = idx[..., None] == xp.arange(d, dtype=np.int64)
        hot = xp.moveaxis(hot, -1, a)
        flat = values.reshape(2)
        return (xp.where(hot, flat[1], flat[0]).astype(values.dtype, copy=False),)

    return compute


@kernels.register("ReverseSequence", since=10)
def reverse_sequence(node: NodeInfo):
    """ReverseSequence: reverse the first ``sequence_lens[b]`` steps of each batch entry."""
    batch_axis = int(node.attrs.get("batch_axis", 1))
    time_axis = int(node.attrs.get("time_axis", 0))
    if sorted((batch_axis, time_axis)) != [0, 1]:
        raise ValueError(
            f"{node.describe()}: batch_axis/time_axis must be 0 and 1, got {batch_axis}/{time_axis}")
    xp = node.xp

    def compute(x, lens):
        nb, nt = x.shape[batch_axis], x.shape[time_axis]
        lens = lens.astype(np.int64).reshape(-1)
        if lens.shape[0] != nb:
            raise ValueError(f"{node.describe()}: sequence_lens has {lens.shape[0]} entries, batch is {nb}")
        if nb and (int(lens.min()) < 0 or int(lens.max()) > nt):
            raise ValueError(f"{node.describe()}: sequence_lens must lie in [0, {nt}]")
        t = xp.arange(nt, dtype=np.int64)[None, :]
        lb = lens[:, None]
        src = xp.where(t < lb, lb - 1 - t, t)  # (batch, time)
        if time_axis == 0:
            src = src.T
        src = src.reshape(src.shape + (1,) * (x.ndim - 2))
        return (xp.take_along_axis(x, xp.broadcast_to(src, x.shape), axis=time_axis),)

    return compute


@kernels.register("Unique", since=11)
def unique(node: NodeInfo):
    """Unique: unique values or slices, with first indices, inverse indices and counts."""
    axis = node.attrs.get("axis")
    is_sorted = bool(node.attrs.get("sorted", 1))
    xp = node.xp

    def compute(x):
        a = None if axis is None else normalize_axis(node, int(axis), x.ndim)
        data = x.reshape(-1) if a is None else x
        ax = 0 if a is None else a
        host = data.get() if hasattr(data, "get") else np.asarray(data)  # cupy -> numpy
        y, first, inverse, counts = np.unique(
            host, return_index=True, return_inverse=True, return_counts=True, axis=a)
        inverse = inverse.reshape(-1)
        if not is_sorted:
            order = np.argsort(first, kind="stable")
            rank = np.empty_like(order)
            rank[order] = np.arange(order.size)
            y = np.take(y, order, axis=ax)
            first, counts, inverse = first[order], counts[order], rank[inverse]
        outs = [y, first, inverse, counts]
        return tuple(xp.asarray(np.asarray(o, dtype=None if i == 0 else np.int64))
                     for i, o in enumerate(outs))[: node.num_outputs]

    return compute
