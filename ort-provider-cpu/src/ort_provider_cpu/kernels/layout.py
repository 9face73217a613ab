"""CPU kernels: shape and layout ops (Shape, Reshape, Transpose, Concat, Split, Pad, ...).

The indexing family (Slice, Gather*, Scatter*, Compress, TopK, ...) lives in ``indexing.py``.
Shape-like inputs (Reshape's ``shape``, Expand's ``shape``, ...) are declared host inputs and
read as numpy; when they are constant initializers they are parsed once in the factory.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ort.ep import KernelTable, NodeInfo
from ort.ep import np_dtype_of

kernels = KernelTable()


# --------------------------------------------------------------------------- helpers


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


# --------------------------------------------------------------------------- Transpose


@kernels.register("Transpose", since=1)
def transpose(node: NodeInfo):
    """Transpose: permute axes by ``perm`` (default: reverse)."""
    perm = node.attrs.get("perm")
    xp = node.xp
    if perm is None:

        def compute(x):
            return (xp.transpose(x),)

        return compute
    perm = tuple(int(p) for p in perm)
    if sorted(perm) != list(range(len(perm))):
        raise ValueError(f"{node.describe()}: perm {list(perm)} is not a permutation")

    def compute(x):
        if x.ndim != len(perm):
            raise ValueError(
                f"{node.describe()}: perm {list(perm)} does not match input rank {x.ndim}")
        return (xp.transpose(x, perm),)

    return compute


# --------------------------------------------------------------------------- Unsqueeze / Squeeze


def _unsqueeze_shape(node: NodeInfo, in_shape: tuple[int, ...], axes: Sequence[int]):
    """Return ``in_shape`` with size-1 dims inserted at ``axes`` (relative to the output rank)."""
    out_rank = len(in_shape) + len(axes)
    where = set(normalize_axes(node, axes, out_rank))
    dims = iter(in_shape)
    return tuple(1 if i in where else next(dims) for i in range(out_rank))


def _unsqueeze_compute(node: NodeInfo, const_axes: list[int] | None):
    """Build an Unsqueeze compute function (axes constant, or from input 1)."""
    if const_axes is not None:

        def compute(x, *_):
            return (x.reshape(_unsqueeze_shape(node, x.shape, const_axes)),)
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

        def compute(x, *_):
            return (x.reshape(_squeeze_shape(node, x.shape, const_axes)),)

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


# --------------------------------------------------------------------------- Concat / Split


@kernels.register("Concat", since=1)
def concat(node: NodeInfo):
    """Concat: join inputs along ``axis`` (default 1 in opset 1; negative since 11)."""
    axis = int(node.attrs.get("axis", 1))
    xp = node.xp

    def compute(*xs):
        rank = xs[0].ndim
        a = normalize_axis(node, axis, max(rank, 1))
        if len(xs) == 1:
            return (xs[0],)
        ref = xs[0].shape
        for x in xs[1:]:
            if x.ndim != rank or any(d != e for i, (d, e) in enumerate(zip(x.shape, ref)) if i != a):
                raise ValueError(
                    f"{node.describe()}: input shapes {[t.shape for t in xs]} mismatch "
                    f"outside axis {a}")
        return (xp.concatenate(xs, axis=a),)

    return compute


def _split_sizes(node: NodeInfo, dim: int, split: Sequence[int] | None, n_out: int,
                 num_outputs: int | None):
    """Return the chunk sizes of a Split along an axis of size ``dim``."""
    if split is not None:
        if len(split) != n_out:
            raise ValueError(
                f"{node.describe()}: split {list(split)} has {len(split)} entries, node has "
                f"{n_out} outputs")
        if any(s < 0 for s in split) or sum(split) != dim:
            raise ValueError(
                f"{node.describe()}: split {list(split)} does not sum to axis size {dim}")
        return list(split)
    if num_outputs is not None:
        chunk = -(-dim // num_outputs)
        if dim and (num_outputs - 1) * chunk >= dim:
            raise ValueError(
                f"{node.describe()}: axis size {dim} cannot be split into {num_outputs} chunks "
                f"of size {chunk}")
        return [chunk] * (num_outputs - 1) + [dim - (num_outputs - 1) * chunk]
    if dim % n_out:
        raise ValueError(
            f"{node.describe()}: axis size {dim} is not divisible into {n_out} equal outputs")
    return [dim // n_out] * n_out


def _split_compute(node: NodeInfo, axis: int, const_split: list[int] | None,
                   dynamic: bool, num_outputs: int | None = None):
    """Build a Split compute function; ``dynamic`` means split sizes arrive as input 1."""
    n_out = node.num_outputs

    def run(x, split):
        a = normalize_axis(node, axis, x.ndim)
        sizes = _split_sizes(node, x.shape[a], split, n_out, num_outputs)
        lead = (slice(None),) * a
        outs = []
        pos = 0
        for s in sizes:
            outs.append(x[lead + (slice(pos, pos + s),)])
            pos += s
        return tuple(outs)

    if dynamic:

        def compute(x, split=None):
            return run(x, None if split is None else host_ints(split))
    else:

        def compute(x, *_):
            return run(x, const_split)

    return compute


@kernels.register("Split", since=1, until=1, host_inputs=(1,))
def split_1(node: NodeInfo):
    """Split-1: sizes from the ``split`` attribute or optional input 1."""
    axis = int(node.attrs.get("axis", 0))
    attr = node.attrs.get("split")
    if node.has_input(1):
        return _split_compute(node, axis, None, True)
    return _split_compute(node, axis, None if not attr else [int(s) for s in attr], False)


@kernels.register("Split", since=2, until=12)
def split_2(node: NodeInfo):
    """Split-2/11: sizes from the optional ``split`` attribute (negative axis since 11)."""
    axis = int(node.attrs.get("axis", 0))
    attr = node.attrs.get("split")
    return _split_compute(node, axis, None if not attr else [int(s) for s in attr], False)


@kernels.register("Split", since=13, host_inputs=(1,))
def split_13(node: NodeInfo):
    """Split-13+: sizes from optional input 1; ``num_outputs`` attribute since 18."""
    axis = int(node.attrs.get("axis", 0))
    num_outputs = node.attrs.get("num_outputs")
    if num_outputs is not None:
        if node.has_input(1):
            raise ValueError(f"{node.describe()}: both 'split' input and 'num_outputs' given")
        num_outputs = int(num_outputs)
        if num_outputs < 1 or num_outputs != node.num_outputs:
            raise ValueError(
                f"{node.describe()}: num_outputs {num_outputs} does not match the "
                f"{node.num_outputs} node outputs")
    if not node.has_input(1):
        return _split_compute(node, axis, None, False, num_outputs)
    const = const_or_none(node, 1)
    if const is not None:
        return _split_compute(node, axis, host_ints(const), False)
    return _split_compute(node, axis, None, True)


# --------------------------------------------------------------------------- ConstantOfShape / Expand / Tile / Range


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
        return (xp.full(dims, fill, dtype=dtype),)

    return compute


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
    """Expand: bidirectionally broadcast the input to ``shape`` (returns a broadcast view)."""
    xp = node.xp
    const = const_or_none(node, 1)
    const_dims = None if const is None else tuple(host_ints(const))

    def compute(x, shape_in):
        dims = const_dims if const_dims is not None else tuple(host_ints(shape_in))
        out = _broadcast_shape(node, x.shape, dims)
        if out == x.shape:
            return (x,)
        return (xp.broadcast_to(x, out),)

    return compute


def _tile(node: NodeInfo, x, repeats: Sequence[int]):
    """Tile ``x`` by ``repeats`` (one non-negative entry per dim)."""
    if len(repeats) != x.ndim:
        raise ValueError(
            f"{node.describe()}: repeats {list(repeats)} do not match input rank {x.ndim}")
    if any(r < 0 for r in repeats):
        raise ValueError(f"{node.describe()}: repeats {list(repeats)} must be non-negative")
    if all(r == 1 for r in repeats):
        return x
    return node.xp.tile(x, tuple(repeats))


@kernels.register("Tile", since=1, until=5, host_inputs=(1, 2))
def tile_1(node: NodeInfo):
    """Tile-1: repeat input 1 (``tiles``) times along input 2 (``axis``)."""

    def compute(x, tiles, axis):
        a = normalize_axis(node, int(host_scalar(axis)), x.ndim)
        repeats = [1] * x.ndim
        repeats[a] = int(host_scalar(tiles))
        return (_tile(node, x, repeats),)

    return compute


@kernels.register("Tile", since=6, host_inputs=(1,))
def tile_6(node: NodeInfo):
    """Tile-6+: repeat each dim by the ``repeats`` input."""
    const = const_or_none(node, 1)
    const_reps = None if const is None else host_ints(const)

    def compute(x, repeats):
        return (_tile(node, x, const_reps if const_reps is not None else host_ints(repeats)),)

    return compute


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
            return (xp.asarray(np.arange(n, dtype=np.int64) * d + s, dtype=dtype),)
        work = dtype
        if dtype.itemsize < 4 and stash == 1:
            work = np.dtype(np.float32)
        s, lim, d = work.type(s), work.type(lim), work.type(d)
        n = max(int(math.ceil((float(lim) - float(s)) / float(d))), 0)
        steps = np.full(n, d, dtype=work)
        if n:
            steps[0] = s
        out = np.cumsum(steps, dtype=work).astype(dtype, copy=False)
        return (xp.asarray(out),)

    return compute


# --------------------------------------------------------------------------- Pad


def _pad_compute(node: NodeInfo, mode: str, const_pads, const_value, const_axes, dynamic_axes):
    """Build a Pad compute function; ``None`` constants are read from the inputs at run time."""
    xp = node.xp
    if mode not in ("constant", "reflect", "edge", "wrap"):
        raise ValueError(f"{node.describe()}: unsupported mode '{mode}'")

    def full_pads(x, pads, axes):
        rank = x.ndim
        if axes is None:
            if len(pads) != 2 * rank:
                raise ValueError(
                    f"{node.describe()}: pads {list(pads)} need {2 * rank} entries for rank {rank}")
            return list(pads)
        axes = normalize_axes(node, axes, rank)
        if len(pads) != 2 * len(axes):
            raise ValueError(f"{node.describe()}: pads {list(pads)} do not match axes {axes}")
        out = [0] * (2 * rank)
        for i, a in enumerate(axes):
            out[a] = pads[i]
            out[a + rank] = pads[i + len(axes)]
        return out

    def run(x, pads, value, axes):
        rank = x.ndim
        pads = full_pads(x, pads, axes)
        begin, end = pads[:rank], pads[rank:]
        if any(p < 0 for p in pads):
            if any(d + min(b, 0) + min(e, 0) < 0 for d, b, e in zip(x.shape, begin, end)):
                raise ValueError(
                    f"{node.describe()}: pads {pads} crop more than the input {x.shape}")
            crop = tuple(slice(-b if b < 0 else 0, x.shape[i] + e if e < 0 else None)
                         for i, (b, e) in enumerate(zip(begin, end)))
            x = x[crop]
            begin = [max(b, 0) for b in begin]
            end = [max(e, 0) for e in end]
        if not any(begin) and not any(end):
            return x
        if mode == "constant":
            shape = tuple(d + b + e for d, b, e in zip(x.shape, begin, end))
            fill = zero_of(x.dtype) if value is None else value
            out = xp.full(shape, fill, dtype=x.dtype)
            out[tuple(slice(b, b + d) for b, d in zip(begin, x.shape))] = x
            return out
        for i, (b, e) in enumerate(zip(begin, end)):
            if (b or e) and x.shape[i] == 0:
                raise ValueError(f"{node.describe()}: cannot {mode}-pad axis {i} of size 0")
            if mode == "reflect" and max(b, e) >= x.shape[i]:
                raise ValueError(
                    f"{node.describe()}: reflect pads {b},{e} must be smaller than the size "
                    f"{x.shape[i]} of axis {i}")
        return xp.pad(x, list(zip(begin, end)), mode=mode)

    def compute(x, pads=None, value=None, axes=None):
        p = const_pads if const_pads is not None else host_ints(pads)
        if const_value is not None:
            v = const_value
        elif value is not None and np.asarray(value).size:
            v = host_scalar(value)
        else:
            v = None
        if const_axes is not None:
            ax = const_axes
        elif dynamic_axes and axes is not None:
            ax = host_ints(axes)
        else:
            ax = None
        return (run(x, p, v, ax),)

    return compute


@kernels.register("Pad", since=1, until=10)
def pad_1(node: NodeInfo):
    """Pad-1/2: ``paddings`` (1) or ``pads`` (2) attribute and float ``value``."""
    pads = node.attrs.get("pads", node.attrs.get("paddings"))
    if pads is None:
        raise ValueError(f"{node.describe()}: missing 'pads' attribute")
    value = float(node.attrs.get("value", 0.0))
    mode = str(node.attrs.get("mode", "constant"))
    return _pad_compute(node, mode, [int(p) for p in pads], value, None, False)


@kernels.register("Pad", since=11, host_inputs=(1, 2, 3))
def pad_11(node: NodeInfo):
    """Pad-11+: pads, optional constant_value, optional axes (18+) as inputs; wrap mode (19+)."""
    mode = str(node.attrs.get("mode", "constant"))
    pads = const_or_none(node, 1)
    value = const_or_none(node, 2)
    if value is not None and np.asarray(value).size == 0:
        value = None
    axes = const_or_none(node, 3)
    return _pad_compute(
        node, mode,
        None if pads is None else host_ints(pads),
        None if value is None else host_scalar(value),
        None if axes is None else host_ints(axes),
        node.has_input(3) and axes is None,
    )


# --------------------------------------------------------------------------- DepthToSpace / SpaceToDepth


def _blocksize(node: NodeInfo) -> int:
    """Return the validated ``blocksize`` attribute."""
    b = node.attrs.get("blocksize")
    if b is None or int(b) < 1:
        raise ValueError(f"{node.describe()}: 'blocksize' must be a positive integer")
    return int(b)


@kernels.register("DepthToSpace", since=1)
def depth_to_space(node: NodeInfo):
    """DepthToSpace: move depth blocks into spatial blocks (DCR or CRD mode)."""
    b = _blocksize(node)
    mode = str(node.attrs.get("mode", "DCR"))
    if mode not in ("DCR", "CRD"):
        raise ValueError(f"{node.describe()}: mode must be DCR or CRD, got '{mode}'")
    xp = node.xp

    def compute(x):
        if x.ndim != 4:
            raise ValueError(f"{node.describe()}: input must be 4-D, got shape {x.shape}")
        n, c, h, w = x.shape
        if c % (b * b):
            raise ValueError(f"{node.describe()}: channels {c} not divisible by blocksize^2 {b * b}")
        c2 = c // (b * b)
        if mode == "DCR":
            t = xp.transpose(x.reshape(n, b, b, c2, h, w), (0, 3, 4, 1, 5, 2))
        else:
            t = xp.transpose(x.reshape(n, c2, b, b, h, w), (0, 1, 4, 2, 5, 3))
        return (t.reshape(n, c2, h * b, w * b),)

    return compute


@kernels.register("SpaceToDepth", since=1)
def space_to_depth(node: NodeInfo):
    """SpaceToDepth 1+: move spatial blocks into depth; 28+ orders the new channels DCR
    (default) or CRD per ``mode`` (the inverse of DepthToSpace of the same mode)."""
    b = _blocksize(node)
    mode = str(node.attrs.get("mode", "DCR"))
    if mode not in ("DCR", "CRD"):
        raise ValueError(f"{node.describe()}: mode must be DCR or CRD, got '{mode}'")
    order = (0, 3, 5, 1, 2, 4) if mode == "DCR" else (0, 1, 3, 5, 2, 4)
    xp = node.xp

    def compute(x):
        if x.ndim != 4:
            raise ValueError(f"{node.describe()}: input must be 4-D, got shape {x.shape}")
        n, c, h, w = x.shape
        if h % b or w % b:
            raise ValueError(f"{node.describe()}: H={h}, W={w} not divisible by blocksize {b}")
        t = xp.transpose(x.reshape(n, c, h // b, b, w // b, b), order)
        return (t.reshape(n, c * b * b, h // b, w // b),)

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
