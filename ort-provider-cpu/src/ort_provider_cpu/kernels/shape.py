"""CPU kernels: shape ops, which read or change a tensor's shape but not its element order
(Shape, Size, Reshape, Flatten, Squeeze, Unsqueeze, and Expand's broadcast view).

Shape-like inputs (Reshape's ``shape``, Expand's ``shape``, ...) are declared host inputs and
read as numpy; when they are constant initializers they are parsed once in the factory. The
reshaping ops and Expand return views of the input wherever numpy (or cupy) gives one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ort.ep import KernelTable, NodeInfo

from .kernel_args import const_or_none, host_ints, normalize_axes

kernels = KernelTable()


# --------------------------------------------------------------------------- Shape / Size


def _shape_range(start: int, end: int | None, rank: int) -> tuple[int, int]:
    """Clamp Shape-15 ``start``/``end`` (negative counts from the back) into ``[0, rank]``."""
    end = rank if end is None else end
    start = start + rank if start < 0 else start
    end = end + rank if end < 0 else end
    return min(max(start, 0), rank), min(max(end, 0), rank)


@kernels.register("Shape", since=1, shape_only_inputs=(0,))
def shape(node: NodeInfo):
    """Shape: the input's dimensions as int64 (start/end slice since opset 15)."""
    start = int(node.attrs.get("start", 0))
    end = node.attrs.get("end")
    end = None if end is None else int(end)
    whole = start == 0 and end is None

    def compute(x):
        dims = x.shape
        if not whole:
            lo, hi = _shape_range(start, end, len(dims))
            dims = dims[lo:hi]
        return (np.array(dims, dtype=np.int64),)

    return compute


@kernels.register("Size", since=1, shape_only_inputs=(0,))
def size(node: NodeInfo):
    """Size: the number of elements as an int64 scalar."""

    def compute(x):
        return (np.array(math.prod(x.shape), dtype=np.int64),)

    return compute


# --------------------------------------------------------------------------- Reshape / Flatten


def reshape_target(node: NodeInfo, in_shape: tuple[int, ...], spec: Sequence[int], allowzero: bool):
    """Resolve a Reshape ``shape`` (with 0 = copy dim unless allowzero, -1 = infer) for ``in_shape``."""
    out = []
    infer = -1
    for i, d in enumerate(spec):
        if d == -1:
            if infer >= 0:
                raise ValueError(f"{node.describe()}: shape {list(spec)} has more than one -1")
            infer = i
            out.append(1)
        elif d == 0 and not allowzero:
            if i >= len(in_shape):
                raise ValueError(
                    f"{node.describe()}: shape {list(spec)} copies dim {i} (0) but input "
                    f"{in_shape} has rank {len(in_shape)}")
            out.append(in_shape[i])
        elif d < 0:
            raise ValueError(f"{node.describe()}: invalid dim {d} in shape {list(spec)}")
        else:
            out.append(d)
    total = math.prod(in_shape)
    if infer >= 0:
        known = math.prod(out)
        if allowzero and 0 in spec:
            raise ValueError(f"{node.describe()}: shape {list(spec)} mixes -1 and 0 with allowzero")
        if known == 0 or total % known:
            raise ValueError(
                f"{node.describe()}: cannot reshape input of shape {in_shape} to {list(spec)}")
        out[infer] = total // known
    if math.prod(out) != total:
        raise ValueError(f"{node.describe()}: cannot reshape input of shape {in_shape} to {list(spec)}")
    return tuple(out)


def _reshape_compute(node: NodeInfo, const_spec: list[int] | None, allowzero: bool):
    """Build a Reshape compute function; ``const_spec`` None means the shape comes as input 1."""
    cache: dict[Any, tuple[int, ...]] = {}

    def target(in_shape, spec):
        key = (in_shape, spec)
        hit = cache.get(key)
        if hit is None:
            if len(cache) > 64:
                cache.clear()
            hit = cache[key] = reshape_target(node, in_shape, spec, allowzero)
        return hit

    if const_spec is not None:
        spec_t = tuple(const_spec)

        def compute(x, *_):
            return (x.reshape(target(x.shape, spec_t)),)
    else:

        def compute(x, spec):
            return (x.reshape(target(x.shape, tuple(host_ints(spec)))),)

    return compute


@kernels.register("Reshape", since=1, until=4)
def reshape_1(node: NodeInfo):
    """Reshape-1: target shape from the ``shape`` attribute."""
    spec = node.attrs.get("shape")
    if spec is None:
        raise ValueError(f"{node.describe()}: missing 'shape' attribute")
    return _reshape_compute(node, [int(d) for d in spec], False)


@kernels.register("Reshape", since=5, host_inputs=(1,))
def reshape_5(node: NodeInfo):
    """Reshape-5+: target shape from input 1; ``allowzero`` since 14."""
    allowzero = bool(node.attrs.get("allowzero", 0))
    const = const_or_none(node, 1)
    return _reshape_compute(node, None if const is None else host_ints(const), allowzero)


@kernels.register("Flatten", since=1)
def flatten(node: NodeInfo):
    """Flatten: reshape to 2-D at ``axis`` (negative axis since 11)."""
    axis = int(node.attrs.get("axis", 1))

    def compute(x):
        rank = x.ndim
        a = axis + rank if axis < 0 else axis
        if not 0 <= a <= rank:
            raise ValueError(f"{node.describe()}: axis {axis} out of range [{-rank}, {rank}]")
        return (x.reshape(math.prod(x.shape[:a]), math.prod(x.shape[a:])),)

    return compute


# --------------------------------------------------------------------------- Unsqueeze / Squeeze


def _unsqueeze_shape(node: NodeInfo, in_shape: tuple[int, ...], axes: Sequence[int]):
    """Return ``in_shape`` with size-1 dims inserted at ``axes`` (relative to the output rank)."""
    out_rank = len(in_shape) + len(axes)
    where = set(normalize_axes(node, axes, out_rank))
    dims = iter(in_shape)
    return tuple(1 if i in where else next(dims) for i in range(out_rank))


#: input shapes whose output shape a Squeeze/Unsqueeze of constant axes keeps (the shape
#: arithmetic cost 5 µs a call, a tenth of a small VAD model's run across its 13 of them)
_MAX_KEPT_SHAPES = 32


def _shape_memo(shape_of: Callable[[tuple[int, ...]], tuple[int, ...]]
                ) -> Callable[[tuple[int, ...]], tuple[int, ...]]:
    """``shape_of`` remembering its results for the last few input shapes (its errors are
    raised again on every call: nothing is kept for them)."""
    kept: dict[tuple[int, ...], tuple[int, ...]] = {}

    def lookup(shape: tuple[int, ...]) -> tuple[int, ...]:
        found = kept.get(shape)
        if found is None:
            found = shape_of(shape)
            if len(kept) >= _MAX_KEPT_SHAPES:
                kept.clear()
            kept[shape] = found
        return found

    return lookup


def _unsqueeze_compute(node: NodeInfo, const_axes: list[int] | None):
    """Build an Unsqueeze compute function (axes constant, or from input 1)."""
    if const_axes is not None:
        out_shape = _shape_memo(lambda shape: _unsqueeze_shape(node, shape, const_axes))

        def compute(x, *_):
            return (x.reshape(out_shape(x.shape)),)
    else:

        def compute(x, axes):
            return (x.reshape(_unsqueeze_shape(node, x.shape, host_ints(axes))),)

    return compute


@kernels.register("Unsqueeze", since=1, until=12)
def unsqueeze_1(node: NodeInfo):
    """Unsqueeze-1/11: ``axes`` attribute (negative since 11)."""
    axes = node.attrs.get("axes")
    if axes is None:
        raise ValueError(f"{node.describe()}: missing 'axes' attribute")
    return _unsqueeze_compute(node, [int(a) for a in axes])


@kernels.register("Unsqueeze", since=13, host_inputs=(1,))
def unsqueeze_13(node: NodeInfo):
    """Unsqueeze-13+: axes from input 1."""
    const = const_or_none(node, 1)
    return _unsqueeze_compute(node, None if const is None else host_ints(const))


def _squeeze_shape(node: NodeInfo, in_shape: tuple[int, ...], axes: Sequence[int] | None):
    """Return ``in_shape`` without the listed size-1 dims (all size-1 dims when axes is None)."""
    if not axes:  # absent or empty: squeeze every size-1 dim (as ORT does)
        return tuple(d for d in in_shape if d != 1)
    drop = set(normalize_axes(node, axes, len(in_shape)))
    for a in drop:
        if in_shape[a] != 1:
            raise ValueError(
                f"{node.describe()}: cannot squeeze axis {a} of size {in_shape[a]} "
                f"(input shape {in_shape})")
    return tuple(d for i, d in enumerate(in_shape) if i not in drop)


def _squeeze_compute(node: NodeInfo, const_axes: list[int] | None, dynamic: bool):
    """Build a Squeeze compute function; ``dynamic`` means axes arrive as input 1."""
    if dynamic:

        def compute(x, axes=None):
            spec = None if axes is None else host_ints(axes)
            return (x.reshape(_squeeze_shape(node, x.shape, spec)),)
    else:
        out_shape = _shape_memo(lambda shape: _squeeze_shape(node, shape, const_axes))

        def compute(x, *_):
            return (x.reshape(out_shape(x.shape)),)

    return compute


@kernels.register("Squeeze", since=1, until=12)
def squeeze_1(node: NodeInfo):
    """Squeeze-1/11: optional ``axes`` attribute (negative since 11)."""
    axes = node.attrs.get("axes")
    return _squeeze_compute(node, None if axes is None else [int(a) for a in axes], False)


@kernels.register("Squeeze", since=13, host_inputs=(1,))
def squeeze_13(node: NodeInfo):
    """Squeeze-13+: optional axes from input 1."""
    if not node.has_input(1):
        return _squeeze_compute(node, None, False)
    const = const_or_none(node, 1)
    if const is not None:
        return _squeeze_compute(node, host_ints(const), False)
    return _squeeze_compute(node, None, True)


# --------------------------------------------------------------------------- Expand


def _broadcast_shape(node: NodeInfo, a: Sequence[int], b: Sequence[int]) -> tuple[int, ...]:
    """Return the numpy-style broadcast of shapes ``a`` and ``b`` or raise ValueError."""
    rank = max(len(a), len(b))
    a = (1,) * (rank - len(a)) + tuple(a)
    b = (1,) * (rank - len(b)) + tuple(b)
    out = []
    for x, y in zip(a, b):
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            raise ValueError(f"{node.describe()}: cannot broadcast shape {a} to {b}")
    return tuple(out)


@kernels.register("Expand", since=8, host_inputs=(1,))
def expand(node: NodeInfo):
    """Expand: bidirectionally broadcast the input to ``shape`` (returns a broadcast view,
    checked against the output-size limit as if materialized: whoever reads it may copy it)."""
    xp = node.xp
    const = const_or_none(node, 1)
    const_dims = None if const is None else tuple(host_ints(const))

    def compute(x, shape_in):
        dims = const_dims if const_dims is not None else tuple(host_ints(shape_in))
        out = _broadcast_shape(node, x.shape, dims)
        if out == x.shape:
            return (x,)
        node.check_output_size(out, x.dtype)
        return (xp.broadcast_to(x, out),)

    return compute
