"""CPU kernels: nn (convolution, pooling, normalization, softmax, dropout, LRN).

Sliding-window ops (Conv, ConvTranspose, MaxPool, AveragePool) share one geometry helper
(:func:`_window_geometry`); plans depend on the input's spatial shape, so each node caches them
per shape, together with work buffers it reuses across runs (:class:`_Scratch`).

* Conv (:func:`conv_kernel`) copies strided windows of the padded input into im2col columns in
  cache-sized chunks (rows of one image, or whole small images) and runs one GEMM per group and
  chunk straight into the output, then adds bias (and FusedConv's Z and activation) while the
  chunk is in cache; 1x1 convolutions multiply X itself. Depthwise 2-D convolutions split the
  padded input into stride phases (:class:`_PhaseLayout`) so that every kernel tap reads
  contiguous runs, and contract the taps of a block of channels with one batched GEMV.
* ConvTranspose does a GEMM then a col2im scatter-add per kernel tap.
* MaxPool/AveragePool reduce one spatial axis at a time (:func:`_separable_reduce`), each tap
  a strided slice of the input restricted to the outputs whose window it reaches, so no padded
  copy is made; MaxPool with Indices loops over kernel taps of the padded input.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import ml_dtypes
import numpy as np

from ort.ep import KernelTable, NodeInfo

kernels = KernelTable()

_AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")
# ONNX TensorProto element types a LayerNormalization stash_type may name.
_STASH_DTYPES = {1: np.dtype(np.float32), 10: np.dtype(np.float16), 11: np.dtype(np.float64)}


# --------------------------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------------------------


def _compute_dtype(dtype: Any) -> np.dtype:
    """Return the dtype to accumulate in: float64 stays, every other float type uses float32."""
    dtype = np.dtype(dtype)
    return np.dtype(np.float64) if dtype == np.float64 else np.dtype(np.float32)


def _normalize_axis(node: NodeInfo, axis: int, rank: int) -> int:
    """Return ``axis`` made non-negative for a tensor of ``rank``, or raise ValueError."""
    if not -rank <= axis < max(rank, 1):
        raise ValueError(f"{node.describe()}: axis {axis} is out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


def _channel_shape(rank: int) -> tuple[int, ...]:
    """Return the shape ``(-1, 1, ..., 1)`` that broadcasts a per-channel vector over NC...."""
    return (-1,) + (1,) * max(rank - 2, 0)


def _shape_cache(build: Callable[[tuple[int, ...]], Any]) -> Callable[[tuple[int, ...]], Any]:
    """Wrap ``build(shape)`` so that each distinct input shape is planned only once."""
    cache: dict[tuple[int, ...], Any] = {}

    def get(shape: tuple[int, ...]) -> Any:
        plan = cache.get(shape)
        if plan is None:
            plan = cache[shape] = build(shape)
        return plan

    return get


@dataclass(frozen=True)
class _WindowAttrs:
    """Validated sliding-window attributes of a Conv or pooling node."""

    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    pads: tuple[int, ...]  # begins then ends, as in the ONNX ``pads`` attribute
    auto_pad: str
    ceil_mode: bool


@dataclass(frozen=True)
class _WindowGeometry:
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


def _window_attrs(node: NodeInfo, kernel: Sequence[int], *, pooling: bool) -> _WindowAttrs:
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
    return _WindowAttrs(
        tuple(int(k) for k in kernel),
        strides,
        dilations,
        pads,
        auto_pad,
        bool(attrs.get("ceil_mode", 0)),
    )


def _window_geometry(node: NodeInfo, wa: _WindowAttrs, in_shape: Sequence[int]) -> _WindowGeometry:
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
    return _WindowGeometry(tuple(in_shape), tuple(outs), tuple(begins), tuple(ends), tuple(extras))


def _pad_spatial(xp: Any, x: Any, geo: _WindowGeometry, value: Any) -> Any:
    """Return ``x`` padded on its spatial axes as ``geo`` says, with the constant ``value``."""
    if not geo.padded:
        return x
    widths = [(0, 0)] * (x.ndim - len(geo.in_shape))
    widths += [(b, e + x_) for b, e, x_ in zip(geo.pads_begin, geo.pads_end, geo.extra_end)]
    return xp.pad(x, widths, mode="constant", constant_values=value)


def _sliding_windows(xp: Any, xpad: Any, geo: _WindowGeometry, wa: _WindowAttrs) -> Any:
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


def _tap_slices(geo: _WindowGeometry, wa: _WindowAttrs):
    """Yield (flat tap index, spatial slices of the padded input that tap reads for every
    output position), for pooling as a loop over kernel taps."""
    for flat, tap in enumerate(np.ndindex(*wa.kernel)):
        yield flat, tuple(
            slice(t * d, t * d + (o - 1) * s + 1, s)
            for t, d, o, s in zip(tap, wa.dilations, geo.out_shape, wa.strides)
        )


def _pool_kernel_shape(node: NodeInfo) -> tuple[int, ...]:
    """Return the required ``kernel_shape`` attribute of a pooling node."""
    kernel = node.attrs.get("kernel_shape")
    if not kernel:
        raise ValueError(f"{node.describe()}: attribute kernel_shape is required")
    return tuple(int(k) for k in kernel)


# --------------------------------------------------------------------------------------------
# scratch buffers
# --------------------------------------------------------------------------------------------


#: buffer shapes a node's scratch pool keeps
_SCRATCH_KEYS = 8


class _Scratch:
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


def _padded_input(xp: Any, x: Any, geo: _WindowGeometry, scratch: _Scratch, value: Any) -> Any:
    """Return ``x`` padded as ``geo`` says in a reused buffer whose border always holds
    ``value``; give it back with :func:`_give_padded` after use."""
    lead = x.ndim - len(geo.in_shape)
    shape = tuple(x.shape[:lead]) + tuple(
        b + s + e + x_
        for b, s, e, x_ in zip(geo.pads_begin, geo.in_shape, geo.pads_end, geo.extra_end)
    )
    buf = scratch.take(shape, x.dtype, value, geo.pads_begin)
    inner = tuple(slice(b, b + s) for b, s in zip(geo.pads_begin, geo.in_shape))
    buf[(slice(None),) * lead + inner] = x
    return buf


def _give_padded(scratch: _Scratch, buf: Any, geo: _WindowGeometry, value: Any) -> None:
    """Return a buffer of :func:`_padded_input` to ``scratch``."""
    scratch.give(buf, value, geo.pads_begin)


@dataclass(frozen=True)
class _PhaseLayout:
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


def _phase_layout(geo: _WindowGeometry, wa: _WindowAttrs) -> _PhaseLayout:
    """Return the :class:`_PhaseLayout` of 2-D windows ``wa`` over ``geo``."""
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
    return _PhaseLayout((hq, wq), sh * sw, tuple(copies), tuple(taps), out_h * wq,
                        tuple(grids), (geo.in_shape, geo.pads_begin, wa.strides))


def _phase_planes(x: Any, layout: _PhaseLayout, scratch: _Scratch, fill: Any) -> Any:
    """Return the phase planes of ``x`` (N, C, H, W) as (N, C, phases, Hq * Wq), in a reused
    buffer whose padding always holds ``fill``; give it back with ``fill`` and the layout's
    key after use."""
    n, c = x.shape[:2]
    buf = scratch.take((n, c, layout.phases) + layout.plane, x.dtype, fill, layout.key)
    for phase, rows, cols, x_rows, x_cols in layout.copies:
        buf[:, :, phase, rows, cols] = x[:, :, x_rows, x_cols]
    return buf


def _tap_range(tap_offset: int, stride: int, size: int, outputs: int) -> tuple[int, int]:
    """Return the range [lo, hi) of outputs whose window tap reads input index
    ``tap_offset + o * stride`` inside [0, size) (``tap_offset`` may be negative: padding)."""
    lo = max(0, -(tap_offset // stride)) if tap_offset < 0 else 0
    if tap_offset + lo * stride < 0:
        lo += 1
    hi = min(outputs, (size - 1 - tap_offset) // stride + 1) if size - 1 >= tap_offset else 0
    return lo, max(lo, hi)


def _separable_reduce(xp: Any, x: Any, geo: _WindowGeometry, wa: _WindowAttrs,
                      scratch: _Scratch, fill: Any, combine: Any) -> Any:
    """Reduce the windows of ``x`` (N, C, *spatial) with the associative binary ufunc
    ``combine`` (max, sum), one spatial axis at a time: k1 + k2 + ... strided ufunc calls
    instead of k1 * k2 * ... Padding (and windows past the end in ceil mode) reads ``fill``:
    each tap only combines the outputs whose window position it reads inside X, so no padded
    copy is made. Returns a fresh array."""
    nd = len(wa.kernel)
    current, owned = x, []
    for axis in range(nd):
        k, s, d, o = wa.kernel[axis], wa.strides[axis], wa.dilations[axis], geo.out_shape[axis]
        size = current.shape[2 + axis]
        lead = (slice(None),) * (2 + axis)
        full, partial = [], []
        for t in range(k):
            offset = t * d - geo.pads_begin[axis]
            lo, hi = _tap_range(offset, s, size, o)
            if hi > lo:
                start = offset + lo * s
                view = current[lead + (slice(start, start + (hi - lo - 1) * s + 1, s),)]
                (full if (lo, hi) == (0, o) else partial).append((lo, hi, view))
        if k == 1 and full:
            current = full[0][2]
            continue
        shape = current.shape[:2 + axis] + (o,) + current.shape[3 + axis:]
        last = all(kk == 1 for kk in wa.kernel[axis + 1:])
        out = xp.empty(shape, x.dtype) if last else scratch.take(shape, x.dtype)
        if len(full) >= 2:
            combine(full[0][2], full[1][2], out=out)
            full = full[2:]
        elif full:
            xp.copyto(out, full.pop()[2])
        else:
            out.fill(fill)
        for lo, hi, view in full + partial:
            part = out[lead + (slice(lo, hi),)]
            combine(part, view, out=part)
        if not last:
            owned.append(out)
        current = out
    if all(k == 1 for k in wa.kernel):
        current = xp.array(current, copy=True)  # a 1x1 window: still a fresh result
    for buf in owned:
        scratch.give(buf)
    return current


# --------------------------------------------------------------------------------------------
# Conv
# --------------------------------------------------------------------------------------------

#: im2col columns (elements) built per GEMM: small enough to stay in cache between the copy
#: and the GEMM, large enough for an efficient GEMM.
_COLUMN_BUDGET = 1 << 19
_MIN_COLUMNS = 400
#: im2col columns (elements) per block of channels of a depthwise Conv
_DEPTHWISE_COLUMNS = 1 << 18

#: Conv's in-place epilogue: activate(y) on a fresh float array (or a view of one).
Activation = Callable[[Any], Any]


@dataclass(frozen=True)
class _ConvPlan:
    """How Conv computes one input shape: method and column chunks."""

    geo: _WindowGeometry
    method: str  # "gemm" (im2col + one GEMM per group and chunk) or "depthwise"
    pointwise: bool  # 1x1 kernel, unit strides, no padding: X itself is the im2col matrix
    # (first image, end image, first row, end row) of the output each GEMM computes; a chunk
    # of several images always covers all rows
    chunks: tuple[tuple[int, int, int, int], ...]
    cols_size: int  # elements of the largest im2col chunk
    out_size: int  # elements of the GEMM result of a multi-image chunk (0: none)
    layout: _PhaseLayout | None = None  # depthwise 2-D windows as contiguous runs


def _conv_chunks(n: int, out_shape: tuple[int, ...], k: int, m: int) -> tuple[tuple, ...]:
    """Split the GEMM columns (N * prod(out_shape)) into chunks of whole output rows of one
    image, or of whole images, of about ``_COLUMN_BUDGET / (k + m)`` columns each (``k``
    im2col rows and ``m`` output rows per column)."""
    positions = math.prod(out_shape)
    target = max(_MIN_COLUMNS, _COLUMN_BUDGET // max(k + m, 1))
    rows = out_shape[0] if out_shape else 1
    if positions >= target or n == 1:
        per_row = positions // rows if rows else 0
        count = max(1, min(rows, -(-positions // target)))
        bounds = [rows * i // count for i in range(count + 1)]
        if per_row == 0:
            bounds = [0, rows]
        return tuple((i, i + 1, r0, r1) for i in range(n) for r0, r1 in zip(bounds, bounds[1:]))
    per_chunk = max(1, target // max(positions, 1))
    return tuple((i, min(i + per_chunk, n), 0, rows) for i in range(0, n, per_chunk))


def conv_kernel(node: NodeInfo) -> Callable[..., Any]:
    """Return ``run(x, w, b=None, z=None, activate=None) -> Y`` for a Conv node: the
    convolution (in X's dtype), then ``Y += Z`` and ``activate(Y)`` in place (FusedConv).

    A general Conv builds im2col columns (a copy of a strided view of the padded input) in
    cache-sized chunks of output rows or whole images, one GEMM per group and chunk writing
    straight into Y, and applies bias, Z and the activation to each chunk while it is in cache.
    1x1 convolutions with unit strides and no padding multiply X itself. Depthwise
    convolutions (one input and output channel per group) see :func:`_conv_depthwise`.
    Work buffers (padded input, columns) are reused across runs. Z and ``activate`` are for
    float32/float64 X (FusedConv handles the other types itself).
    """
    xp = node.xp
    group = int(node.attrs.get("group", 1))
    if group < 1:
        raise ValueError(f"{node.describe()}: group must be positive, got {group}")
    const_w = node.const_inputs[1] if len(node.const_inputs) > 1 else None
    kernel_attr = node.attrs.get("kernel_shape")
    if const_w is not None:
        kernel = tuple(int(k) for k in const_w.shape[2:])
        if kernel_attr and tuple(kernel_attr) != kernel:
            raise ValueError(
                f"{node.describe()}: kernel_shape {tuple(kernel_attr)} does not match W {kernel}"
            )
        if const_w.shape[0] % group:
            raise ValueError(f"{node.describe()}: M={const_w.shape[0]} not divisible by group")
    elif kernel_attr:
        kernel = tuple(int(k) for k in kernel_attr)
    else:
        kernel = None
    attr_cache: dict[tuple[int, ...], _WindowAttrs] = {}

    def window_attrs(w_kernel: tuple[int, ...]) -> _WindowAttrs:
        """Return the validated window attributes for W's kernel shape."""
        wa = attr_cache.get(w_kernel)
        if wa is None:
            if kernel is not None and kernel != w_kernel:
                raise ValueError(f"{node.describe()}: kernel_shape {kernel} does not match W")
            wa = attr_cache[w_kernel] = _window_attrs(node, w_kernel, pooling=False)
        return wa

    if kernel is not None:
        window_attrs(kernel)  # validate attributes at factory time
    plans: dict[tuple, _ConvPlan] = {}
    scratch = _Scratch(xp)

    def plan_for(wa: _WindowAttrs, x_shape: tuple[int, ...], m: int) -> _ConvPlan:
        """Return the (cached) plan for one input shape, kernel and output channel count."""
        key = (wa.kernel, x_shape, m)
        plan = plans.get(key)
        if plan is None:
            plan = plans[key] = _conv_plan(node, wa, x_shape, m, group)
        return plan

    def weights_matrix(w: Any, cdt: np.dtype) -> Any:
        """Return W as (group, M/group, C/group * prod(kernel)) in the compute dtype."""
        return w.reshape(group, w.shape[0] // group, -1).astype(cdt, copy=False)

    prepared_w = None
    if const_w is not None:
        prepared_w = weights_matrix(xp.asarray(const_w), _compute_dtype(const_w.dtype))

    def run(x: Any, w: Any, b: Any = None, z: Any = None, activate: Activation | None = None):
        cdt = _compute_dtype(x.dtype)
        n, c = x.shape[:2]
        m = w.shape[0]
        if w.shape[1] * group != c or m % group:
            raise ValueError(
                f"{node.describe()}: X has {c} channels, W {tuple(w.shape)} with group {group}"
            )
        wa = window_attrs(tuple(w.shape[2:]))
        plan = plan_for(wa, tuple(x.shape), m)
        wm = prepared_w if prepared_w is not None else weights_matrix(w, cdt)
        if wm.dtype != cdt:
            wm = wm.astype(cdt)
        y = node.empty((n, m) + plan.geo.out_shape, cdt)
        bias = None if b is None else b.astype(cdt, copy=False)
        native = x.dtype == cdt
        # Z and the activation are applied chunk by chunk when Z has Y's shape
        chunk_z = z if native and z is not None and z.shape == y.shape else None
        chunked = native and (z is None or chunk_z is not None)
        if y.size:
            xc = x.astype(cdt, copy=False)
            if plan.method == "depthwise":
                _conv_depthwise(xp, plan, wa, wm, xc, y, bias, chunk_z,
                                activate if chunked else None, scratch)
            else:
                _conv_gemm(xp, plan, wa, wm, xc, y, bias, chunk_z,
                           activate if chunked else None, scratch)
        if not native:
            return y.astype(x.dtype)
        if not chunked:
            y += z.astype(cdt, copy=False)
            if activate is not None:
                activate(y)
        return y

    return run


def _conv_plan(node: NodeInfo, wa: _WindowAttrs, x_shape: tuple[int, ...], m: int,
               group: int) -> _ConvPlan:
    """Plan Conv of an input of ``x_shape`` with ``m`` output channels."""
    geo = _window_geometry(node, wa, x_shape[2:])
    n, c = x_shape[:2]
    taps = math.prod(wa.kernel)
    if group > 1 and group == c and m == c:
        layout = _phase_layout(geo, wa) if len(wa.kernel) == 2 else None
        return _ConvPlan(geo, "depthwise", False, (), 0, 0, layout)
    pointwise = taps == 1 and all(s == 1 for s in wa.strides) and not geo.padded
    k = c // group * taps
    chunks = _conv_chunks(n, geo.out_shape, c * taps, m)
    positions = math.prod(geo.out_shape)
    cols_size = out_size = 0
    for n0, n1, r0, r1 in chunks:
        width = (n1 - n0) * (positions // geo.out_shape[0] * (r1 - r0) if geo.out_shape else 1)
        if not pointwise or n1 - n0 > 1:  # a 1x1 chunk of one image multiplies X in place
            cols_size = max(cols_size, group * k * width)
        if n1 - n0 > 1:
            out_size = max(out_size, m * width)
    return _ConvPlan(geo, "gemm", pointwise, chunks, cols_size, out_size)


def _conv_epilogue(y: Any, bias: Any, z: Any, activate: Activation | None) -> None:
    """y += bias (per channel, axis 1); y += z; activate(y): all in place."""
    if bias is not None:
        y += bias.reshape(_channel_shape(y.ndim))
    if z is not None:
        y += z
    if activate is not None:
        activate(y)


def _conv_gemm(xp: Any, plan: _ConvPlan, wa: _WindowAttrs, wm: Any, x: Any, y: Any,
               bias: Any, z: Any, activate: Activation | None, scratch: _Scratch) -> None:
    """Conv by im2col and GEMM, chunk by chunk, into the preallocated ``y``."""
    geo = plan.geo
    n, c = x.shape[:2]
    group, mg = wm.shape[:2]
    m, cg = group * mg, c // group
    nd = len(wa.kernel)
    positions = math.prod(geo.out_shape)
    per_row = positions // geo.out_shape[0] if nd else 1
    src = _padded_input(xp, x, geo, scratch, 0) if geo.padded else x
    windows = _sliding_windows(xp, src, geo, wa).reshape((n, group, cg) + geo.out_shape + wa.kernel)
    # (group, C/group, *kernel, images, *out) from (images, group, C/group, *out, *kernel)
    to_cols = (1, 2) + tuple(range(3 + nd, 3 + 2 * nd)) + (0,) + tuple(range(3, 3 + nd))
    cols_buf = scratch.take((plan.cols_size,), x.dtype) if plan.cols_size else None
    out_buf = scratch.take((plan.out_size,), x.dtype) if plan.out_size else None
    y_flat = y.reshape(n, m, positions)
    z_flat = None if z is None else z.reshape(n, m, positions)
    for n0, n1, r0, r1 in plan.chunks:
        images = n1 - n0
        width = (r1 - r0) * per_row
        if plan.pointwise and images == 1:
            cols = x[n0].reshape(group, cg, positions)[:, :, r0 * per_row:r1 * per_row]
        else:
            view = windows[n0:n1, :, :, r0:r1] if nd else windows[n0:n1]
            view = view.transpose(to_cols)
            cols = cols_buf[: view.size].reshape(view.shape)
            xp.copyto(cols, view)
            cols = cols.reshape(group, -1, images * width)
        if images == 1:
            out = y_flat[n0][:, r0 * per_row:r1 * per_row]
            for g in range(group):
                xp.matmul(wm[g], cols[g], out=out[g * mg:(g + 1) * mg])
            if bias is not None:
                out += bias[:, None]
            if z_flat is not None:
                out += z_flat[n0][:, r0 * per_row:r1 * per_row]
        else:
            product = out_buf[: m * images * width].reshape(m, images * width)
            for g in range(group):
                xp.matmul(wm[g], cols[g], out=product[g * mg:(g + 1) * mg])
            out = y_flat[n0:n1]
            product = product.reshape(m, images, positions).transpose(1, 0, 2)
            if bias is not None:
                xp.add(product, bias[:, None], out=out)
            else:
                xp.copyto(out, product)
            if z_flat is not None:
                out += z_flat[n0:n1]
        if activate is not None:
            activate(out)
    if cols_buf is not None:
        scratch.give(cols_buf)
    if out_buf is not None:
        scratch.give(out_buf)
    if src is not x:
        _give_padded(scratch, src, geo, 0)


def _conv_depthwise(xp: Any, plan: _ConvPlan, wa: _WindowAttrs, wm: Any, x: Any, y: Any,
                    bias: Any, z: Any, activate: Activation | None, scratch: _Scratch) -> None:
    """Depthwise Conv (one input and output channel per group) into ``y``, then bias, Z and
    the activation. In 2-D, the input is split into stride phases so that each tap of every
    output row is a contiguous run (:class:`_PhaseLayout`); the runs of a block of channels
    are copied into (taps, run) columns and contracted with the channels' weights by one
    batched GEMV, then the valid part of each run is kept. Otherwise, a multiply-add of a
    strided slice of the padded input per kernel tap."""
    weights = wm.reshape(wm.shape[0], -1)  # (C, taps)
    layout = plan.layout
    if layout is None:  # not 2-D: strided slices of the padded input
        src = _padded_input(xp, x, plan.geo, scratch, 0) if plan.geo.padded else x
        tmp = scratch.take(y.shape, y.dtype)
        shape = _channel_shape(y.ndim)
        lead = (slice(None), slice(None))
        for tap, slices in _tap_slices(plan.geo, wa):
            if tap == 0:
                xp.multiply(src[lead + slices], weights[:, 0].reshape(shape), out=y)
            else:
                xp.multiply(src[lead + slices], weights[:, tap].reshape(shape), out=tmp)
                y += tmp
        scratch.give(tmp)
        if src is not x:
            _give_padded(scratch, src, plan.geo, 0)
        _conv_epilogue(y, bias, z, activate)
        return
    n, c = x.shape[:2]
    out_h, out_w = plan.geo.out_shape
    planes = _phase_planes(x, layout, scratch, 0)
    flat = planes.reshape(n, c, layout.phases, -1)
    taps, run = len(layout.taps), layout.run
    # per channel: (1, taps) weights @ (taps, run) columns, the columns built for a block of
    # channels at a time (one strided copy per phase), small enough to stay in cache
    block = max(1, min(c, _DEPTHWISE_COLUMNS // (taps * run)))
    cols = scratch.take((block, taps, run), y.dtype)
    acc = scratch.take((block, 1, run), y.dtype)
    tap_weights = weights[:, list(layout.tap_order)].reshape(c, 1, taps)
    channel_bias = None if bias is None else bias.reshape(c, 1, 1)
    item = flat.itemsize
    for i in range(n):
        views = []  # per phase grid: (first column, strided view of its taps for all channels)
        first = 0
        for phase, offset, (rows, columns), (row_step, col_step), grid in layout.grids:
            base = flat[i, :, phase, offset:]
            views.append((first, xp.lib.stride_tricks.as_strided(
                base, shape=(c, rows, columns, run),
                strides=(base.strides[0], row_step * item, col_step * item, item))))
            first += len(grid)
        for c0 in range(0, c, block):
            c1 = min(c, c0 + block)
            k = c1 - c0
            for first, view in views:
                part = view[c0:c1]
                xp.copyto(cols[:k, first:first + part.shape[1] * part.shape[2]].reshape(
                    part.shape), part)
            xp.matmul(tap_weights[c0:c1], cols[:k], out=acc[:k])
            kept = acc[:k].reshape(k, out_h, -1)[:, :, :out_w]
            out = y[i, c0:c1]
            if channel_bias is not None:
                xp.add(kept, channel_bias[c0:c1], out=out)
            else:
                xp.copyto(out, kept)
            if z is not None:
                out += z[i, c0:c1]
            if activate is not None:
                activate(out)
    scratch.give(cols)
    scratch.give(acc)
    scratch.give(planes, 0, layout.key)


@kernels.register("Conv", since=1)
def conv(node: NodeInfo) -> Callable[..., tuple]:
    """Conv (all versions): im2col and GEMM in cache-sized chunks (see :func:`conv_kernel`)."""
    run = conv_kernel(node)

    def compute(x: Any, w: Any, b: Any = None) -> tuple:
        return (run(x, w, b),)

    return compute


def _grouped_gemm(xp: Any, a: Any, b: Any) -> Any:
    """Return a @ b for stacks of matrices (G, m, k) @ (G, k, n); a single GEMM when G == 1."""
    if a.shape[0] == 1:
        return xp.matmul(a[0], b[0])[None]
    return xp.matmul(a, b)


# --------------------------------------------------------------------------------------------
# ConvTranspose
# --------------------------------------------------------------------------------------------


@kernels.register("ConvTranspose", since=1)
def conv_transpose(node: NodeInfo) -> Callable[..., tuple]:
    """ConvTranspose (all versions): GEMM to columns, then col2im by a loop over kernel taps."""
    xp = node.xp
    attrs = node.attrs
    group = int(attrs.get("group", 1))
    output_padding_attr = attrs.get("output_padding")
    output_shape_attr = attrs.get("output_shape")

    def plan(in_shape: tuple[int, ...], kernel: tuple[int, ...]) -> tuple:
        """Return (window attrs, pads_begin, output spatial shape) for one input shape."""
        nd = len(kernel)
        wa = _window_attrs(node, kernel, pooling=False)
        out_pad = tuple(int(p) for p in output_padding_attr or [0] * nd)
        full = [
            wa.strides[i] * (in_shape[i] - 1) + out_pad[i] + (kernel[i] - 1) * wa.dilations[i] + 1
            for i in range(nd)
        ]
        if output_shape_attr or wa.auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            if output_shape_attr:
                out_shape = tuple(int(o) for o in output_shape_attr[-nd:])
            else:
                out_shape = tuple(in_shape[i] * wa.strides[i] for i in range(nd))
            # the spec crops the total padding evenly, the odd one at the start unless SAME_UPPER
            totals = [max(full[i] - out_shape[i], 0) for i in range(nd)]
            if wa.auto_pad == "SAME_UPPER":
                begins = tuple(t // 2 for t in totals)
            else:
                begins = tuple(t - t // 2 for t in totals)
            return wa, begins, out_shape
        pads = wa.pads if wa.auto_pad == "NOTSET" else (0,) * (2 * nd)
        out_shape = tuple(full[i] - pads[i] - pads[i + nd] for i in range(nd))
        if any(o < 0 for o in out_shape):
            raise ValueError(f"{node.describe()}: pads {pads} exceed the output {out_shape}")
        return wa, tuple(pads[:nd]), out_shape

    plans: dict[tuple, tuple] = {}

    def compute(x: Any, w: Any, b: Any = None) -> tuple:
        cdt = _compute_dtype(x.dtype)
        n, c = x.shape[:2]
        if w.shape[0] != c or c % group:
            raise ValueError(f"{node.describe()}: X has {c} channels, W {tuple(w.shape)}")
        kernel = tuple(w.shape[2:])
        key = (tuple(x.shape[2:]), kernel)
        if key not in plans:
            plans[key] = plan(key[0], kernel)
        wa, begins, out_shape = plans[key]
        cg, mg = c // group, w.shape[1]
        nd = len(kernel)
        in_shape = x.shape[2:]
        positions = math.prod(in_shape)
        # columns: (G, Mg*K, N*P) = W_g^T (Mg*K, Cg) @ X_g (Cg, N*P), one GEMM per group
        wm = w.astype(cdt, copy=False).reshape(group, cg, mg * math.prod(kernel))
        xg = x.astype(cdt, copy=False).reshape(n, group, cg, positions).transpose(1, 2, 0, 3)
        cols = _grouped_gemm(xp, wm.transpose(0, 2, 1), xg.reshape(group, cg, n * positions))
        cols = cols.reshape((group * mg,) + kernel + (n,) + tuple(in_shape))
        # scatter-add each kernel tap into a buffer big enough for every tap, then crop
        full = [
            (in_shape[i] - 1) * wa.strides[i] + (kernel[i] - 1) * wa.dilations[i] + 1
            for i in range(nd)
        ]
        extent = [max(full[i], begins[i] + out_shape[i]) for i in range(nd)]
        buf = xp.zeros((group * mg, n) + tuple(extent), dtype=cdt)
        for tap in np.ndindex(*kernel):  # loop over kernel taps, each a strided block add
            target = tuple(
                slice(
                    tap[i] * wa.dilations[i],
                    tap[i] * wa.dilations[i] + (in_shape[i] - 1) * wa.strides[i] + 1,
                    wa.strides[i],
                )
                for i in range(nd)
            )
            buf[(slice(None), slice(None)) + target] += cols[(slice(None),) + tap]
        crop = tuple(slice(begins[i], begins[i] + out_shape[i]) for i in range(nd))
        y = buf[(slice(None), slice(None)) + crop].swapaxes(0, 1)
        if b is not None:
            y = y + b.astype(cdt, copy=False).reshape(_channel_shape(y.ndim))
        return (xp.ascontiguousarray(y).astype(x.dtype, copy=False),)

    return compute


# --------------------------------------------------------------------------------------------
# pooling
# --------------------------------------------------------------------------------------------


def _max_pool_pad_value(dtype: np.dtype) -> tuple[np.dtype, Any]:
    """Return (working dtype, padding value below every input value) for max pooling."""
    if dtype.kind == "f" or dtype.kind == "V":
        return dtype, -np.inf
    if dtype.itemsize == 1:  # int8/uint8 widen so that padding loses to every real value
        return np.dtype(np.int16), np.iinfo(np.int16).min
    return dtype, np.iinfo(dtype).min


@kernels.register("MaxPool", since=1)
def max_pool(node: NodeInfo) -> Callable[..., tuple]:
    """MaxPool (all versions): running max over kernel taps; optional int64 Indices."""
    xp = node.xp
    wa = _window_attrs(node, _pool_kernel_shape(node), pooling=True)
    storage_order = int(node.attrs.get("storage_order", 0))
    if storage_order not in (0, 1):
        raise ValueError(f"{node.describe()}: storage_order must be 0 or 1")
    want_indices = node.has_output(1)
    # fmax skips NaN like onnxruntime's `if (v > best)` scan
    larger = xp.maximum if np.dtype(node.input_dtypes[0] or np.float32).kind in "iu" else xp.fmax
    plan = _shape_cache(lambda shape: _window_geometry(node, wa, shape))
    scratch = _Scratch(xp)

    def compute(x: Any) -> tuple:
        geo = plan(tuple(x.shape[2:]))
        if not want_indices and x.dtype.kind == "f" and x.size and math.prod(geo.out_shape):
            return (_separable_reduce(xp, x, geo, wa, scratch, -np.inf, larger),)
        work_dtype, pad_value = _max_pool_pad_value(x.dtype)
        xpad = _pad_spatial(xp, x.astype(work_dtype, copy=False), geo, pad_value)
        lead = (slice(None), slice(None))
        if want_indices:
            mults = _index_strides(tuple(x.shape[2:]), storage_order)
            offsets = _tap_offsets(wa, mults)
        y = best = None
        for flat, taps in _tap_slices(geo, wa):  # loop over kernel taps, not elements
            values = xpad[lead + taps]
            if y is None:
                y = values.copy()
                if want_indices:
                    best = xp.full(y.shape, offsets[0], dtype=np.int64)
            elif want_indices:
                better = values > y  # strict: the first maximal tap wins, as in onnxruntime
                larger(y, values, out=y)
                xp.putmask(best, better, offsets[flat])
            else:
                larger(y, values, out=y)
        y = y.astype(x.dtype, copy=False)
        if not want_indices:
            return (y,)
        best += _window_start_index(xp, tuple(x.shape), geo, wa, mults)
        return (y, best)

    return compute


def _index_strides(spatial: tuple[int, ...], storage_order: int) -> list[int]:
    """Return the flat-index stride of each spatial axis, row-major (0) or column-major (1)."""
    if storage_order == 0:
        return [math.prod(spatial[i + 1 :]) for i in range(len(spatial))]
    return [math.prod(spatial[:i]) for i in range(len(spatial))]


def _tap_offsets(wa: _WindowAttrs, mults: list[int]) -> list[int]:
    """Return, per kernel tap (row-major), its flat-index offset from the window start."""
    return [
        sum(t * d * m for t, d, m in zip(tap, wa.dilations, mults))
        for tap in np.ndindex(*wa.kernel)
    ]


def _window_start_index(
    xp: Any, x_shape: tuple, geo: _WindowGeometry, wa: _WindowAttrs, mults: list[int]
) -> Any:
    """Return the flat index (N, C, *out) of each window's first tap in the unpadded input."""
    nd = len(wa.kernel)
    n, c = x_shape[:2]
    planes = xp.arange(n * c, dtype=np.int64).reshape((n, c) + (1,) * nd)
    index = planes * math.prod(x_shape[2:])
    for i in range(nd):
        starts = xp.arange(geo.out_shape[i], dtype=np.int64) * wa.strides[i] - geo.pads_begin[i]
        index = index + (starts * mults[i]).reshape((-1,) + (1,) * (nd - 1 - i))
    return index


def _window_counts(geo: _WindowGeometry, wa: _WindowAttrs, include_pad: bool) -> np.ndarray:
    """Return how many taps of each window AveragePool divides by, shaped like the output."""
    counts = np.ones((), dtype=np.float64)
    for i, size in enumerate(geo.in_shape):
        out = np.arange(geo.out_shape[i])[:, None]
        starts = out * wa.strides[i] - geo.pads_begin[i]
        taps = starts + np.arange(wa.kernel[i])[None, :] * wa.dilations[i]
        if include_pad:
            inside = taps < size + geo.pads_end[i]
        else:
            inside = (taps >= 0) & (taps < size)
        count = inside.sum(axis=1).astype(np.float64)
        counts = counts[..., None] * count
    return counts


@kernels.register("AveragePool", since=1)
def average_pool(node: NodeInfo) -> Callable[..., tuple]:
    """AveragePool (all versions): window sums over kernel taps divided by tap counts."""
    xp = node.xp
    wa = _window_attrs(node, _pool_kernel_shape(node), pooling=True)
    include_pad = bool(node.attrs.get("count_include_pad", 0))

    def build(shape: tuple[int, ...]) -> tuple[_WindowGeometry, dict]:
        geo = _window_geometry(node, wa, shape)
        return geo, {"counts": _window_counts(geo, wa, include_pad)}

    plan = _shape_cache(build)
    scratch = _Scratch(xp)

    def compute(x: Any) -> tuple:
        geo, prepared = plan(tuple(x.shape[2:]))
        cdt = _compute_dtype(x.dtype)
        key = np.dtype(cdt).name
        if key not in prepared:
            prepared[key] = xp.asarray(prepared["counts"].astype(cdt))
        if x.dtype == cdt and x.size and math.prod(geo.out_shape):
            sums = _separable_reduce(xp, x, geo, wa, scratch, 0, xp.add)
            sums /= prepared[key]
            return (sums,)
        xpad = _pad_spatial(xp, x.astype(cdt, copy=False), geo, 0)
        lead = (slice(None), slice(None))
        sums = xp.zeros(x.shape[:2] + geo.out_shape, dtype=cdt)
        for _, taps in _tap_slices(geo, wa):  # loop over kernel taps, not elements
            sums += xpad[lead + taps]
        sums /= prepared[key]
        return (sums.astype(x.dtype, copy=False),)

    return compute


@kernels.register("GlobalAveragePool", since=1)
def global_average_pool(node: NodeInfo) -> Callable[..., tuple]:
    """GlobalAveragePool: mean over all spatial axes, kept as size-1 dims."""

    def compute(x: Any) -> tuple:
        axes = tuple(range(2, x.ndim))
        y = x.mean(axis=axes, keepdims=True, dtype=_compute_dtype(x.dtype))
        return (y.astype(x.dtype, copy=False),)

    return compute


@kernels.register("GlobalMaxPool", since=1)
def global_max_pool(node: NodeInfo) -> Callable[..., tuple]:
    """GlobalMaxPool: max over all spatial axes, kept as size-1 dims."""
    xp = node.xp

    def compute(x: Any) -> tuple:
        axes = tuple(range(2, x.ndim))
        if not axes:
            return (xp.array(x, copy=True),)
        return (x.max(axis=axes, keepdims=True),)

    return compute


# --------------------------------------------------------------------------------------------
# normalization
# --------------------------------------------------------------------------------------------


def _per_channel(param: Any, x: Any, spatial: bool, cdt: np.dtype) -> Any:
    """Reshape a BatchNormalization parameter to broadcast against X (N, C, ...)."""
    param = param.astype(cdt, copy=False)
    if spatial or x.ndim <= 2 or param.size == x.shape[1] and param.ndim == 1:
        return param.reshape(_channel_shape(x.ndim))
    return param.reshape(x.shape[1:])  # spatial=0: one parameter per (C, D1, ..., Dn) element


@kernels.register("BatchNormalization", since=1)
def batch_normalization(node: NodeInfo) -> Callable[..., tuple]:
    """BatchNormalization (all versions): inference, or training when asked for statistics.

    Before opset 14 the statistics outputs (mean, var, saved_mean, saved_var) exist only for
    training, so requesting any of them selects training mode (as the ONNX reference does);
    ``is_test`` alone does not, since old inference models often carry ``is_test=0``.
    From opset 14 the ``training_mode`` attribute decides.
    """
    xp = node.xp
    version = node.since_version
    epsilon = float(node.attrs.get("epsilon", 1e-5))
    momentum = float(node.attrs.get("momentum", 0.9))
    spatial = bool(node.attrs.get("spatial", 1)) if version < 9 else True
    if version >= 14:
        training = bool(node.attrs.get("training_mode", 0))
    else:
        training = any(node.has_output(i) for i in range(1, node.num_outputs))
    if version >= 14 and not training and any(node.has_output(i) for i in (1, 2)):
        raise ValueError(
            f"{node.describe()}: running_mean/running_var outputs need training_mode=1"
        )
    stats_axes_cache: dict[int, tuple[int, ...]] = {}

    def stats_axes(x: Any) -> tuple[int, ...]:
        axes = stats_axes_cache.get(x.ndim)
        if axes is None:
            keep = {1} if spatial else set(range(1, x.ndim))
            axes = stats_axes_cache[x.ndim] = tuple(i for i in range(x.ndim) if i not in keep)
        return axes

    params_const = all(
        i < len(node.const_inputs) and node.const_inputs[i] is not None for i in range(1, 5)
    )
    folded: dict[tuple, tuple] = {}

    def fold(x: Any, scale: Any, bias: Any, mean: Any, var: Any) -> tuple:
        """Fold the parameters into y = x * a + b (cached when they are constants)."""
        cdt = _compute_dtype(x.dtype)
        key = (x.ndim, x.shape[1:] if not spatial else None, cdt)
        if params_const and key in folded:
            return folded[key]
        inv_std = 1.0 / xp.sqrt(_per_channel(var, x, spatial, cdt) + cdt.type(epsilon))
        a = _per_channel(scale, x, spatial, cdt) * inv_std
        b = _per_channel(bias, x, spatial, cdt) - _per_channel(mean, x, spatial, cdt) * a
        if params_const:
            folded[key] = (a, b)
        return a, b

    def infer(x: Any, scale: Any, bias: Any, mean: Any, var: Any) -> tuple:
        a, b = fold(x, scale, bias, mean, var)
        y = x.astype(a.dtype, copy=False) * a
        y += b
        return (y.astype(x.dtype, copy=False),)

    def train(x: Any, scale: Any, bias: Any, mean: Any, var: Any) -> tuple:
        cdt = _compute_dtype(x.dtype)
        xc = x.astype(cdt, copy=False)
        axes = stats_axes(x)
        batch_mean = xc.mean(axis=axes, keepdims=True)
        centered = xc - batch_mean
        batch_var = (centered * centered).mean(axis=axes, keepdims=True)
        inv_std = 1.0 / xp.sqrt(batch_var + cdt.type(epsilon))
        a = _per_channel(scale, x, spatial, cdt) * inv_std
        y = (centered * a + _per_channel(bias, x, spatial, cdt)).astype(x.dtype, copy=False)
        stat_shape = mean.shape
        batch_mean = batch_mean.reshape(stat_shape)
        batch_var = batch_var.reshape(stat_shape)
        mdt = _compute_dtype(mean.dtype)
        run_mean = mean.astype(mdt) * momentum + batch_mean * (1.0 - momentum)
        run_var = var.astype(mdt) * momentum + batch_var * (1.0 - momentum)
        outs = [y, run_mean.astype(mean.dtype), run_var.astype(var.dtype)]
        if version < 14:
            outs += [batch_mean.astype(mean.dtype), batch_var.astype(var.dtype)]
        return tuple(outs[: node.num_outputs])

    return train if training else infer


@kernels.register("InstanceNormalization", since=1)
def instance_normalization(node: NodeInfo) -> Callable[..., tuple]:
    """InstanceNormalization: normalize each (n, c) over the spatial axes, then scale/shift."""
    xp = node.xp
    epsilon = float(node.attrs.get("epsilon", 1e-5))

    def compute(x: Any, scale: Any, bias: Any) -> tuple:
        cdt = _compute_dtype(x.dtype)
        xc = x.astype(cdt, copy=False)
        axes = tuple(range(2, x.ndim))
        mean = xc.mean(axis=axes, keepdims=True)
        centered = xc - mean
        var = (centered * centered).mean(axis=axes, keepdims=True)
        a = scale.astype(cdt, copy=False).reshape(_channel_shape(x.ndim)) / xp.sqrt(
            var + cdt.type(epsilon)
        )
        y = centered * a + bias.astype(cdt, copy=False).reshape(_channel_shape(x.ndim))
        return (y.astype(x.dtype, copy=False),)

    return compute


def normalize_rows(xp: Any, y: Any, epsilon: float) -> tuple[Any, Any]:
    """Normalize each row of the fresh 2-D float array ``y`` in place to zero mean and unit
    variance (``epsilon`` added to the variance); return (mean, 1 / std), each (rows, 1)."""
    mean = y.mean(axis=1, keepdims=True)
    y -= mean
    var = xp.einsum("ij,ij->i", y, y)  # sum of squares without a temporary
    var *= y.dtype.type(1 / y.shape[1])
    var += y.dtype.type(epsilon)
    inv_std = xp.sqrt(var, out=var)
    xp.divide(y.dtype.type(1), inv_std, out=inv_std)
    inv_std = inv_std.reshape(-1, 1)
    y *= inv_std
    return mean, inv_std


@kernels.register("LayerNormalization", since=17)
def layer_normalization(node: NodeInfo) -> Callable[..., tuple]:
    """LayerNormalization-17: normalize over axes [axis, rank) in stash_type precision."""
    axis = int(node.attrs.get("axis", -1))
    epsilon = float(node.attrs.get("epsilon", 1e-5))
    stash_type = int(node.attrs.get("stash_type", 1))
    stat_dtype = node.output_dtypes[1] if len(node.output_dtypes) > 1 else None
    if stat_dtype is None:
        stat_dtype = _STASH_DTYPES.get(stash_type)
    if stat_dtype is None and (node.has_output(1) or node.has_output(2)):
        raise ValueError(f"{node.describe()}: unsupported stash_type {stash_type}")
    cdt = _compute_dtype(stat_dtype if stat_dtype is not None else np.float32)
    want_mean, want_inv_std = node.has_output(1), node.has_output(2)
    xp = node.xp

    def compute(x: Any, scale: Any, bias: Any = None) -> tuple:
        first = _normalize_axis(node, axis, x.ndim)
        work = cdt if x.dtype != np.float64 else np.dtype(np.float64)
        rows, width = math.prod(x.shape[:first]), math.prod(x.shape[first:])
        stat_shape = tuple(x.shape[:first]) + (1,) * (x.ndim - first)
        if rows and width:
            y = xp.array(x, dtype=work, order="C")  # a fresh array: normalize it in place
            mean, inv_std = normalize_rows(xp, y.reshape(rows, width), epsilon)
            mean, inv_std = mean.reshape(stat_shape), inv_std.reshape(stat_shape)
        else:
            axes = tuple(range(first, x.ndim))
            xc = x.astype(work, copy=False)
            mean = xc.mean(axis=axes, keepdims=True)
            y = xc - mean
            var = (y * y).mean(axis=axes, keepdims=True)
            inv_std = 1.0 / xp.sqrt(var + work.type(epsilon))
            y *= inv_std
        y *= scale.astype(work, copy=False)
        if bias is not None:
            y += bias.astype(work, copy=False)
        outs = [y.astype(x.dtype, copy=False)]
        if node.num_outputs > 1:
            outs.append(mean.astype(stat_dtype) if want_mean else None)
        if node.num_outputs > 2:
            outs.append(inv_std.astype(stat_dtype) if want_inv_std else None)
        return tuple(outs)

    return compute


@kernels.register("LRN", since=1)
def lrn(node: NodeInfo) -> Callable[..., tuple]:
    """LRN: divide by a power of the summed squares over a window of neighbouring channels."""
    xp = node.xp
    size = node.attrs.get("size")
    if size is None or int(size) < 1:
        raise ValueError(f"{node.describe()}: attribute size must be a positive int")
    size = int(size)
    alpha = float(node.attrs.get("alpha", 1e-4))
    beta = float(node.attrs.get("beta", 0.75))
    bias = float(node.attrs.get("bias", 1.0))
    before = (size - 1) // 2
    after = size - 1 - before

    def compute(x: Any) -> tuple:
        cdt = _compute_dtype(x.dtype)
        xc = x.astype(cdt, copy=False)
        squares = xc * xc
        widths = [(0, 0), (before, after)] + [(0, 0)] * (x.ndim - 2)
        padded = xp.pad(squares, widths)
        channels = x.shape[1]
        total = xp.zeros_like(squares)
        for offset in range(size):  # loop over window taps, not elements
            total += padded[:, offset : offset + channels]
        y = xc / (cdt.type(bias) + cdt.type(alpha / size) * total) ** cdt.type(beta)
        return (y.astype(x.dtype, copy=False),)

    return compute


# --------------------------------------------------------------------------------------------
# softmax family
# --------------------------------------------------------------------------------------------


_LOW_PRECISION_FLOATS = frozenset(np.dtype(t) for t in (np.float16, ml_dtypes.bfloat16))


#: elements per block of rows that softmax takes through all its steps while in cache
_SOFTMAX_CHUNK = 1 << 15


def softmax_rows(xp: Any, x: Any, out: Any) -> Any:
    """Write the softmax of each row of the C-contiguous 2-D float array ``x`` into ``out``
    (which may be ``x``): x - max, exp, divide by the sum, a block of rows at a time."""
    rows, width = x.shape
    step = max(1, _SOFTMAX_CHUNK // max(width, 1))
    peak = xp.empty((min(step, rows), 1), x.dtype)
    total = xp.empty((min(step, rows), 1), x.dtype)
    for r0 in range(0, rows, step):
        block, o = x[r0:r0 + step], out[r0:r0 + step]
        k = block.shape[0]
        xp.max(block, axis=1, keepdims=True, out=peak[:k])
        xp.subtract(block, peak[:k], out=o)
        xp.exp(o, out=o)
        xp.sum(o, axis=1, keepdims=True, out=total[:k])
        o /= total[:k]
    return out


def _softmax_factory(node: NodeInfo, log: bool) -> Callable[..., tuple]:
    """Build Softmax/LogSoftmax: opset < 13 coerces to 2-D at ``axis``, 13+ uses one axis.

    Softmax of float16/bfloat16 runs in the input type step by step (x - max, exp, sum,
    divide), which is how the spec's reference and the suite's expected outputs round."""
    xp = node.xp
    coerce = node.since_version < 13
    axis = int(node.attrs.get("axis", 1 if coerce else -1))

    def along_axis(xc: Any, ax: int) -> Any:
        """Return (log-)softmax of ``xc`` along ``ax``, shifted by the max for stability."""
        shifted = xc - xc.max(axis=ax, keepdims=True)
        if log:
            shifted -= xp.log(xp.exp(shifted).sum(axis=ax, keepdims=True))
            return shifted
        xp.exp(shifted, out=shifted)
        shifted /= shifted.sum(axis=ax, keepdims=True)
        return shifted

    def compute(x: Any) -> tuple:
        ax = _normalize_axis(node, axis, x.ndim)
        if x.size == 0:
            return (xp.array(x, copy=True),)
        if log or x.dtype not in _LOW_PRECISION_FLOATS:
            xc = x.astype(_compute_dtype(x.dtype), copy=False)
        else:  # each step rounded to the input type, as the ONNX reference computes it
            xc = x
        if not log and xc.dtype == _compute_dtype(x.dtype) and (coerce or ax == x.ndim - 1):
            rows = math.prod(x.shape[:ax]) if coerce else math.prod(x.shape[:-1])
            flat = xp.ascontiguousarray(xc).reshape(rows, -1)
            y = softmax_rows(xp, flat, xp.empty_like(flat)).reshape(x.shape)
        elif coerce:
            rows = math.prod(x.shape[:ax])
            y = along_axis(xc.reshape(rows, -1), 1).reshape(x.shape)
        else:
            y = along_axis(xc, ax)
        return (y.astype(x.dtype, copy=False),)

    return compute


@kernels.register("Softmax", since=1)
def softmax(node: NodeInfo) -> Callable[..., tuple]:
    """Softmax (all versions), numerically stable."""
    return _softmax_factory(node, log=False)


@kernels.register("LogSoftmax", since=1)
def log_softmax(node: NodeInfo) -> Callable[..., tuple]:
    """LogSoftmax (all versions), numerically stable."""
    return _softmax_factory(node, log=True)


# --------------------------------------------------------------------------------------------
# Dropout
# --------------------------------------------------------------------------------------------


@kernels.register("Dropout", since=1, until=11)
def dropout_legacy(node: NodeInfo) -> Callable[..., tuple]:
    """Dropout 1-11: ``ratio`` is an attribute; ort runs it in inference mode (identity).

    Opsets 1 and 6 say ``is_test=0`` means training, but converted inference models carry that
    default everywhere, so (like onnxruntime) no units are dropped. The mask is all ones, typed
    like the input before opset 10 and bool from 10 on.
    """
    xp = node.xp
    bool_mask = node.since_version >= 10
    want_mask = node.has_output(1)

    def compute(x: Any) -> tuple:
        y = xp.array(x, copy=True)
        if node.num_outputs < 2:
            return (y,)
        mask_dtype = np.dtype(bool) if bool_mask else x.dtype
        mask = xp.ones(x.shape, dtype=mask_dtype) if want_mask else None
        return (y, mask)

    return compute


@kernels.register("Dropout", since=12, host_inputs=(1, 2))
def dropout(node: NodeInfo) -> Callable[..., tuple]:
    """Dropout 12+: identity unless the ``training_mode`` input is true, then random dropout.

    In training mode an element is kept where a uniform draw in [0, 1) is ``>= ratio`` and
    scaled by ``1 / (1 - ratio)``. The draws come from the node's host generator
    (``RandomState(seed)`` when seeded, the generator onnx's reference and test data use, so a
    seeded node's first run reproduces them); later runs continue the stream.
    """
    from .random_ops import node_generator

    xp = node.xp
    rng = node_generator(node)
    want_mask = node.has_output(1)

    def compute(x: Any, ratio: Any = None, training_mode: Any = None) -> tuple:
        training = training_mode is not None and bool(training_mode)
        rate = np.asarray(0.5 if ratio is None else ratio)
        if not training or float(rate) == 0.0:
            y = xp.array(x, copy=True)
            mask = xp.ones(x.shape, dtype=bool) if want_mask else None
        else:
            if not 0.0 <= float(rate) < 1.0:
                raise ValueError(f"{node.describe()}: ratio must be in [0, 1), got {rate}")
            keep = xp.asarray(rng.random_sample(x.shape) >= float(rate))
            # the scale is computed in the ratio's type, as the reference does
            scale = (rate.dtype.type(1) / (rate.dtype.type(1) - rate)).astype(x.dtype)
            y = (x * keep * scale).astype(x.dtype, copy=False)
            mask = keep if want_mask else None
        return (y, mask) if node.num_outputs > 1 else (y,)

    return compute
