"""Sliding windows shared by the Conv, ConvTranspose and pooling kernels: the validated
kernel/strides/dilations/pads/auto_pad/ceil_mode attributes of a node (:class:`WindowAttrs`),
where the windows of one input spatial shape lie (:class:`WindowGeometry`), the input slices
each kernel tap reads (:func:`tap_slices`), the work buffers a node reuses across runs
(:class:`Scratch`), and the memory layouts Conv reads windows in: a strided view for im2col
(:func:`sliding_windows`), a padded copy in a reused buffer (:func:`padded_input`) and, for
depthwise 2-D convolutions, stride phases whose kernel taps read contiguous runs
(:class:`PhaseLayout`). No kernels are registered here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ort.ep import NodeInfo


_AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


@dataclass(frozen=True)
class WindowAttrs:
    """Validated sliding-window attributes of a Conv or pooling node."""

    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    pads: tuple[int, ...]  # begins then ends, as in the ONNX ``pads`` attribute
    auto_pad: str
    ceil_mode: bool


@dataclass(frozen=True)
class WindowGeometry:
    """Where the windows of one input spatial shape lie."""

    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    pads_begin: tuple[int, ...]
    pads_end: tuple[int, ...]  # explicit (or auto) padding at the end
    extra_end: tuple[int, ...]  # more end padding that only ceil_mode windows reach

    @property
    def padded(self) -> bool:
        """Return whether the input needs padding at all."""
        return any(self.pads_begin) or any(self.pads_end) or any(self.extra_end)


def read_window_attrs(node: NodeInfo, kernel: Sequence[int], *, pooling: bool) -> WindowAttrs:
    """Read and validate kernel/strides/dilations/pads/auto_pad/ceil_mode of ``node``."""
    attrs = node.attrs
    nd = len(kernel)
    strides = tuple(int(s) for s in attrs.get("strides") or [1] * nd)
    dilations = tuple(int(d) for d in attrs.get("dilations") or [1] * nd)
    pads = tuple(int(p) for p in attrs.get("pads") or [0] * (2 * nd))
    auto_pad = attrs.get("auto_pad", "NOTSET") or "NOTSET"
    if isinstance(auto_pad, bytes):
        auto_pad = auto_pad.decode()
    where = node.describe()
    if auto_pad not in _AUTO_PADS:
        raise ValueError(f"{where}: unknown auto_pad {auto_pad!r}")
    if len(strides) != nd or len(dilations) != nd or len(pads) != 2 * nd:
        raise ValueError(
            f"{where}: strides {strides}, dilations {dilations} and pads {pads} do not match "
            f"the {nd}-d kernel {tuple(kernel)}"
        )
    if any(k < 1 for k in kernel) or any(s < 1 for s in strides) or any(d < 1 for d in dilations):
        raise ValueError(f"{where}: kernel_shape, strides and dilations must be positive")
    if any(p < 0 for p in pads):
        raise ValueError(f"{where}: negative pads {pads} are not supported")
    if pooling and auto_pad == "NOTSET":
        for i, k in enumerate(kernel):
            if pads[i] >= k * dilations[i] or pads[i + nd] >= k * dilations[i]:
                raise ValueError(f"{where}: pads {pads} must be smaller than the kernel {kernel}")
    return WindowAttrs(
        tuple(int(k) for k in kernel),
        strides,
        dilations,
        pads,
        auto_pad,
        bool(attrs.get("ceil_mode", 0)),
    )


def window_geometry(node: NodeInfo, wa: WindowAttrs, in_shape: Sequence[int]) -> WindowGeometry:
    """Return output extent and padding of the windows of ``wa`` over ``in_shape``."""
    nd = len(wa.kernel)
    if len(in_shape) != nd:
        raise ValueError(
            f"{node.describe()}: input has {len(in_shape)} spatial dims, kernel has {nd}"
        )
    outs, begins, ends, extras = [], [], [], []
    for i, size in enumerate(in_shape):
        k, s, d = wa.kernel[i], wa.strides[i], wa.dilations[i]
        span = (k - 1) * d + 1
        if wa.auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            out = -(-size // s)
            total = max(0, (out - 1) * s + span - size)
            begin = total // 2 if wa.auto_pad == "SAME_UPPER" else total - total // 2
            end = total - begin
        elif wa.auto_pad == "VALID":
            begin = end = 0
            out = (size - span) // s + 1 if size >= span else 0
        else:
            begin, end = wa.pads[i], wa.pads[i + nd]
            reach = size + begin + end - span
            if wa.ceil_mode and reach >= 0:
                out = -(-reach // s) + 1
                # a window that would start inside the end padding is dropped
                if (out - 1) * s >= size + begin:
                    out -= 1
            else:
                out = reach // s + 1 if reach >= 0 else 0
        if out < 0 or (out == 0 and size > 0 and wa.auto_pad == "NOTSET"):
            raise ValueError(
                f"{node.describe()}: kernel {wa.kernel} with dilations {wa.dilations} does not "
                f"fit the padded input of spatial shape {tuple(in_shape)}"
            )
        needed = (out - 1) * s + span if out > 0 else 0
        outs.append(out)
        begins.append(begin)
        ends.append(end)
        extras.append(max(0, needed - (size + begin + end)))
    return WindowGeometry(tuple(in_shape), tuple(outs), tuple(begins), tuple(ends), tuple(extras))


def sliding_windows(xp: Any, xpad: Any, geo: WindowGeometry, wa: WindowAttrs) -> Any:
    """Return a strided ``(*lead, *out_spatial, *kernel)`` view of the windows of ``xpad``."""
    nd = len(wa.kernel)
    lead, spatial = xpad.strides[:-nd], xpad.strides[-nd:]
    shape = tuple(xpad.shape[:-nd]) + geo.out_shape + wa.kernel
    strides = (
        tuple(lead)
        + tuple(st * s for st, s in zip(spatial, wa.strides))
        + tuple(st * d for st, d in zip(spatial, wa.dilations))
    )
    # as_strided lives in xp.lib.stride_tricks for both numpy and cupy
    return xp.lib.stride_tricks.as_strided(xpad, shape=shape, strides=strides)


def tap_slices(geo: WindowGeometry, wa: WindowAttrs):
    """Yield (flat tap index, spatial slices of the padded input that tap reads for every
    output position), for pooling as a loop over kernel taps."""
    for flat, tap in enumerate(np.ndindex(*wa.kernel)):
        yield flat, tuple(
            slice(t * d, t * d + (o - 1) * s + 1, s)
            for t, d, o, s in zip(tap, wa.dilations, geo.out_shape, wa.strides)
        )


def spatial_attr(node: NodeInfo, name: str, nd: int, default: int) -> tuple[int, ...]:
    """Return an int-per-axis attribute (``2 * nd`` values for pads) or its default."""
    count = 2 * nd if name == "pads" else nd
    values = tuple(int(v) for v in node.attrs.get(name) or [default] * count)
    if len(values) != count:
        raise ValueError(f"{node.describe()}: {name} needs {count} values, got {values}")
    if name == "pads" and min(values, default=0) < 0:
        raise ValueError(f"{node.describe()}: pads must not be negative, got {values}")
    if name != "pads" and min(values, default=1) < 1:
        raise ValueError(f"{node.describe()}: {name} must be positive, got {values}")
    return values


# --------------------------------------------------------------------------------------------
# scratch buffers
# --------------------------------------------------------------------------------------------

#: buffer shapes a scratch pool keeps (the most recently used ones)
_SCRATCH_KEYS = 16


class Scratch:
    """Work buffers one node reuses across runs (fresh large arrays are page-faulted anew on
    every run). :meth:`take` removes a buffer from the pool and :meth:`give` puts it back, so
    concurrent runs of a session never share one. A buffer made with a ``fill`` value keeps it
    wherever its users never write (the border of a padded input): ``tag`` names the layout of
    the written part, so buffers of different layouts are never mixed up."""

    def __init__(self, xp: Any) -> None:
        self.xp = xp
        self._free: dict[tuple, list[Any]] = {}

    def take(self, shape: tuple[int, ...], dtype: np.dtype, fill: Any = None,
             tag: Any = None) -> Any:
        """Return a buffer of ``shape`` and ``dtype`` (filled with ``fill`` when new)."""
        stack = self._free.get((shape, np.dtype(dtype), fill, tag))
        if stack:
            try:
                return stack.pop()
            except IndexError:  # another thread took the last one
                pass
        if fill is None:
            return self.xp.empty(shape, dtype)
        return self.xp.full(shape, fill, dtype)

    def give(self, buf: Any, fill: Any = None, tag: Any = None) -> None:
        """Return ``buf`` (taken with ``fill`` and ``tag``) to the pool, which keeps the
        buffers of the last few shapes only (inputs whose shapes vary do not pile up)."""
        key = (buf.shape, buf.dtype, fill, tag)
        stack = self._free.pop(key, None) or []
        stack.append(buf)
        self._free[key] = stack  # most recently used last
        while len(self._free) > _SCRATCH_KEYS:
            try:
                del self._free[next(iter(self._free))]
            except (KeyError, RuntimeError, StopIteration):  # another thread got there
                break


def shared_scratch(node: Any) -> Scratch:
    """The scratch pool of ``node``'s session provider (one per array namespace), which every
    Conv and pooling node of the session shares: per-node pools kept each node's buffers for
    the session's life (ResNet-18 at batch 8: 690 MB resident against onnxruntime's 292).
    Buffers are taken out while in use, so nodes and concurrent runs never share one; a node
    prepared outside a session gets a pool of its own."""
    provider = getattr(node, "provider", None)
    if provider is None:
        return Scratch(node.xp)
    pools = provider.__dict__.setdefault("_ort_scratch_pools", {})
    pool = pools.get(id(node.xp))
    return pool if pool is not None else pools.setdefault(id(node.xp), Scratch(node.xp))


def padded_input(xp: Any, x: Any, geo: WindowGeometry, scratch: Scratch, value: Any) -> Any:
    """Return ``x`` padded as ``geo`` says in a reused buffer whose border always holds
    ``value``; give it back with :func:`give_padded` after use."""
    lead = x.ndim - len(geo.in_shape)
    shape = tuple(x.shape[:lead]) + tuple(
        b + s + e + x_
        for b, s, e, x_ in zip(geo.pads_begin, geo.in_shape, geo.pads_end, geo.extra_end)
    )
    buf = scratch.take(shape, x.dtype, value, geo.pads_begin)
    inner = tuple(slice(b, b + s) for b, s in zip(geo.pads_begin, geo.in_shape))
    buf[(slice(None),) * lead + inner] = x
    return buf


def give_padded(scratch: Scratch, buf: Any, geo: WindowGeometry, value: Any) -> None:
    """Return a buffer of :func:`padded_input` to ``scratch``."""
    scratch.give(buf, value, geo.pads_begin)


# --------------------------------------------------------------------------------------------
# stride phases of depthwise 2-D windows
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhaseLayout:
    """2-D sliding windows read as contiguous runs of memory.

    The padded input is split into its ``strides`` phases (phase ``(a, b)`` holds padded rows
    ``a::sh`` and columns ``b::sw``), each stored as a row-major plane of ``plane`` = (Hq, Wq).
    Every kernel tap then reads, for all outputs at once, one contiguous run of ``run`` =
    Ho * Wq values of one plane: output row ``ho`` is ``Wq`` values of which the first Wo are
    real (the rest read the next row and are dropped). Numpy then loops over long contiguous
    runs instead of short strided rows.
    """

    plane: tuple[int, int]
    phases: int
    # (phase, plane rows, plane columns, input rows, input columns) of each copy of X
    copies: tuple[tuple[int, slice, slice, slice, slice], ...]
    taps: tuple[tuple[int, int], ...]  # (phase, offset in the plane) per tap, row-major
    run: int
    # the taps of each phase form a regular grid of offsets in its plane, read as one strided
    # view: (phase, first offset, (rows, columns), (row step, column step), tap indices)
    grids: tuple[tuple[int, int, tuple[int, int], tuple[int, int], tuple[int, ...]], ...]
    key: tuple  # what decides where X lands in the planes (input shape, pads, strides)

    @property
    def tap_order(self) -> tuple[int, ...]:
        """The tap indices in the order the grids list them."""
        return tuple(t for grid in self.grids for t in grid[4])


def phase_layout(geo: WindowGeometry, wa: WindowAttrs) -> PhaseLayout:
    """Return the :class:`PhaseLayout` of 2-D windows ``wa`` over ``geo``."""
    (sh, sw), (dh, dw), (kh, kw) = wa.strides, wa.dilations, wa.kernel
    (height, width), (out_h, _) = geo.in_shape, geo.out_shape
    (top, left) = geo.pads_begin
    padded_w = left + width + geo.pads_end[1] + geo.extra_end[1]
    padded_h = top + height + geo.pads_end[0] + geo.extra_end[0]
    wq = -(-padded_w // sw)
    taps = []
    for i in range(kh):
        for j in range(kw):
            r, c = i * dh, j * dw
            taps.append(((r % sh) * sw + c % sw, (r // sh) * wq + c // sw))
    hq = max(-(-padded_h // sh), (kh - 1) * dh // sh + out_h) + 1  # + 1: the last run's tail
    copies = []
    for a in range(sh):
        u0 = max(0, -(-(top - a) // sh))  # first plane row inside X
        r0 = a + u0 * sh - top
        rows = len(range(r0, height, sh))
        for b in range(sw):
            v0 = max(0, -(-(left - b) // sw))
            c0 = b + v0 * sw - left
            cols = len(range(c0, width, sw))
            if rows and cols:
                copies.append((a * sw + b, slice(u0, u0 + rows), slice(v0, v0 + cols),
                               slice(r0, None, sh), slice(c0, None, sw)))
    grids = []
    for a in range(sh):
        rows_a = [i for i in range(kh) if i * dh % sh == a]
        for b in range(sw):
            cols_b = [j for j in range(kw) if j * dw % sw == b]
            if not rows_a or not cols_b:
                continue
            r0, c0 = rows_a[0] * dh // sh, cols_b[0] * dw // sw
            row_step = rows_a[1] * dh // sh - r0 if len(rows_a) > 1 else 0
            col_step = cols_b[1] * dw // sw - c0 if len(cols_b) > 1 else 0
            grids.append((a * sw + b, r0 * wq + c0, (len(rows_a), len(cols_b)),
                          (row_step * wq, col_step), tuple(i * kw + j for i in rows_a
                                                           for j in cols_b)))
    return PhaseLayout((hq, wq), sh * sw, tuple(copies), tuple(taps), out_h * wq,
                        tuple(grids), (geo.in_shape, geo.pads_begin, wa.strides))


def phase_planes(x: Any, layout: PhaseLayout, scratch: Scratch, fill: Any) -> Any:
    """Return the phase planes of ``x`` (N, C, H, W) as (N, C, phases, Hq * Wq), in a reused
    buffer whose padding always holds ``fill``; give it back with ``fill`` and the layout's
    key after use."""
    n, c = x.shape[:2]
    buf = scratch.take((n, c, layout.phases) + layout.plane, x.dtype, fill, layout.key)
    for phase, rows, cols, x_rows, x_cols in layout.copies:
        buf[:, :, phase, rows, cols] = x[:, :, x_rows, x_cols]
    return buf
