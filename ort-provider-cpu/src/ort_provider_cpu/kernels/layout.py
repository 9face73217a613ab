"""CPU kernels: layout and copy ops, which move, join, split or repeat elements (Transpose,
Concat, Split, Tile, Pad, DepthToSpace, SpaceToDepth).

The indexing family (Slice, Gather*, Scatter*, Compress, TopK, ...) lives in ``indexing.py``.
Host inputs (Split's ``split``, Tile's ``repeats``, Pad's ``pads``, ...) are read as numpy;
when they are constant initializers they are parsed once in the factory.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

import ort
from ort.ep import KernelTable, NodeInfo

from .kernel_args import (
    const_or_none,
    host_ints,
    host_scalar,
    normalize_axes,
    normalize_axis,
    zero_of,
)

kernels = KernelTable()


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



# --------------------------------------------------------------------------- Tile


def _tile(node: NodeInfo, x, repeats: Sequence[int]):
    """Tile ``x`` by ``repeats`` (one non-negative entry per dim)."""
    if len(repeats) != x.ndim:
        raise ValueError(
            f"{node.describe()}: repeats {list(repeats)} do not match input rank {x.ndim}")
    if any(r < 0 for r in repeats):
        raise ValueError(f"{node.describe()}: repeats {list(repeats)} must be non-negative")
    if all(r == 1 for r in repeats):
        return x
    # onnxruntime's Tile refuses an oversized output with INVALID_ARGUMENT
    node.check_output_size(tuple(map(operator.mul, x.shape, repeats)), x.dtype,
                           ort.InvalidArgument)
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
        shape = tuple(d + b + e for d, b, e in zip(x.shape, begin, end))
        node.check_output_size(shape, x.dtype)
        if mode == "constant":
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
        if mode in ("reflect", "edge"):
            return _pad_mirrored(xp, x, begin, end, mode == "reflect")
        return xp.pad(x, list(zip(begin, end)), mode=mode)

    def compute(x, pads=None, value=None, axes=None):
        p = const_pads if const_pads is not None else host_ints(pads, any_rank=True)
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


def _pad_mirrored(xp: Any, x: Any, begin: list[int], end: list[int], reflect: bool) -> Any:
    """``xp.pad(x, ..., mode="reflect" or "edge")`` one padded axis at a time, by slice
    copies (numpy's generic pad cost 45 µs for a 1-D audio frame; these copies a few):
    reflect mirrors about the first and last entries (their own copies excluded, each pad
    shorter than the axis), edge repeats them."""
    for axis, (b, e) in enumerate(zip(begin, end)):
        if not b and not e:
            continue
        d = x.shape[axis]
        out = xp.empty(x.shape[:axis] + (d + b + e,) + x.shape[axis + 1:], dtype=x.dtype)
        lead = (slice(None),) * axis
        out[lead + (slice(b, b + d),)] = x
        if reflect:
            if b:
                out[lead + (slice(0, b),)] = x[lead + (slice(b, 0, -1),)]
            if e:
                stop = d - 2 - e
                out[lead + (slice(b + d, None),)] = x[
                    lead + (slice(d - 2, stop if stop >= 0 else None, -1),)]
        else:
            if b:
                out[lead + (slice(0, b),)] = x[lead + (slice(0, 1),)]
            if e:
                out[lead + (slice(b + d, None),)] = x[lead + (slice(d - 1, d),)]
        x = out
    return x


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
        # pads: [2 * rank] or [1, 2 * rank], as onnxruntime takes them
        None if pads is None else host_ints(pads, any_rank=True),
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
