"""CPU kernels: pooling, the nn family's window reductions (MaxPool, AveragePool, LpPool and
their Global forms) and MaxUnpool, which scatters MaxPool's maxima back.

1-D and 2-D MaxPool (with Indices too), AveragePool, LpPool (AveragePool's window sums of
|x|^p) and GlobalAveragePool of float32/float64 run compiled loops
(:mod:`~ort_provider_cpu.kernels.pooling_loops`: padding handled inside the loop, the
images x channels planes split over the intra-op threads). Without them (no numba,
``compiled_kernels=0``, other dtypes, 3-D) MaxPool/AveragePool reduce one spatial axis at a
time (:func:`_separable_reduce`), each tap a strided slice of the input restricted to the
outputs whose window it reaches, so no padded copy is made; MaxPool with Indices and LpPool
loop over kernel taps of the padded input. Window geometry is shared with Conv
(:mod:`~ort_provider_cpu.kernels.windows`) and planned once per input shape.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from ort.ep import KernelTable, NodeInfo

from ..intra_op import resolve_threads, split_work
from ..jit import compiled_loops_enabled
from .float_work import wide_work_dtype, work_dtype
from .kernel_args import host_ints
from .nn_common import lp_power, lp_root
from .windows import (Scratch, WindowAttrs, WindowGeometry, read_window_attrs, shared_scratch,
                      spatial_attr, tap_slices, window_geometry)

kernels = KernelTable()


# --------------------------------------------------------------------------------------------
# plans and window reductions
# --------------------------------------------------------------------------------------------


def _shape_cache(build: Callable[[tuple[int, ...]], Any]) -> Callable[[tuple[int, ...]], Any]:
    """Wrap ``build(shape)`` so that each distinct input shape is planned only once."""
    cache: dict[tuple[int, ...], Any] = {}

    def get(shape: tuple[int, ...]) -> Any:
        plan = cache.get(shape)
        if plan is None:
            plan = cache[shape] = build(shape)
        return plan

    return get


def _pad_spatial(xp: Any, x: Any, geo: WindowGeometry, value: Any) -> Any:
    """Return ``x`` padded on its spatial axes as ``geo`` says, with the constant ``value``."""
    if not geo.padded:
        return x
    widths = [(0, 0)] * (x.ndim - len(geo.in_shape))
    widths += [(b, e + x_) for b, e, x_ in zip(geo.pads_begin, geo.pads_end, geo.extra_end)]
    return xp.pad(x, widths, mode="constant", constant_values=value)


def _pool_kernel_shape(node: NodeInfo) -> tuple[int, ...]:
    """Return the required ``kernel_shape`` attribute of a pooling node."""
    kernel = node.attrs.get("kernel_shape")
    if not kernel:
        raise ValueError(f"{node.describe()}: attribute kernel_shape is required")
    return tuple(int(k) for k in kernel)


def _tap_range(tap_offset: int, stride: int, size: int, outputs: int) -> tuple[int, int]:
    """Return the range [lo, hi) of outputs whose window tap reads input index
    ``tap_offset + o * stride`` inside [0, size) (``tap_offset`` may be negative: padding)."""
    lo = max(0, -(tap_offset // stride)) if tap_offset < 0 else 0
    if tap_offset + lo * stride < 0:
        lo += 1
    hi = min(outputs, (size - 1 - tap_offset) // stride + 1) if size - 1 >= tap_offset else 0
    return lo, max(lo, hi)


def _separable_reduce(xp: Any, x: Any, geo: WindowGeometry, wa: WindowAttrs,
                      scratch: Scratch, fill: Any, combine: Any) -> Any:
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
# compiled loops
# --------------------------------------------------------------------------------------------

#: the dtypes the compiled pooling loops take
_LOOP_DTYPES = frozenset((np.dtype(np.float32), np.dtype(np.float64)))
#: input elements below which a pooling loop stays on the calling thread
_MIN_SPLIT = 1 << 16


class PoolLoop:
    """One compiled pooling loop of a node (a loop of :mod:`.pooling_loops`, the argument
    specs for an input dtype): prepared per dtype (the node's input dtype at once, when one
    of ``dtypes``), run over the planes of X split over the intra-op threads."""

    def __init__(self, node: NodeInfo, loop: Any, specs: Callable[[np.dtype], tuple],
                 dtypes: frozenset = _LOOP_DTYPES) -> None:
        self.loop, self.specs = loop, specs
        self.threads = resolve_threads(node.intra_op_threads)
        self.prepared: dict[np.dtype, Any] = {}
        for dtype in node.input_dtypes[:1]:
            if dtype is not None and np.dtype(dtype) in dtypes:
                self.get(np.dtype(dtype))  # compiled now, not on the first run

    def get(self, dtype: np.dtype) -> Any:
        """The compiled loop for ``dtype``."""
        found = self.prepared.get(dtype)
        if found is None:
            found = self.prepared[dtype] = self.loop.prepare(*self.specs(dtype))
        return found

    def run(self, dtype: np.dtype, planes: int, plane_size: int,
            call: Callable[[Any, int, int], Any]) -> None:
        """``call(loop, start, stop)`` over ``planes`` planes (or other units of work) of
        ``plane_size`` elements each."""
        loop = self.get(dtype)
        if self.threads <= 1 or planes * plane_size < 2 * _MIN_SPLIT:
            call(loop, 0, planes)
        else:
            split_work(lambda a, b: call(loop, a, b), planes, self.threads,
                       max(1, _MIN_SPLIT // max(plane_size, 1)))


def _pool_loop(node: NodeInfo, wa: WindowAttrs, name: str,
               specs: Callable[[np.dtype], tuple]) -> PoolLoop | None:
    """The compiled loop ``name`` of :mod:`.pooling_loops` for a 1-D or 2-D pooling node, or
    None where the node may not use compiled loops."""
    if len(wa.kernel) not in (1, 2) or not compiled_loops_enabled(node):
        return None
    from . import pooling_loops

    return PoolLoop(node, getattr(pooling_loops, name), specs)


def _loop_view(x: Any, geo: WindowGeometry, wa: WindowAttrs) -> tuple:
    """X as C-contiguous (planes, H, W) (1-D: H = 1) and the window arguments of the loops:
    (kh, kw, sh, sw, dh, dw, top, left)."""
    planes = x.shape[0] * x.shape[1]
    if len(wa.kernel) == 1:
        x3 = np.ascontiguousarray(x).reshape(planes, 1, x.shape[2])
        return x3, (1, wa.kernel[0], 1, wa.strides[0], 1, wa.dilations[0], 0,
                    geo.pads_begin[0])
    x3 = np.ascontiguousarray(x).reshape(planes, x.shape[2], x.shape[3])
    return x3, (wa.kernel[0], wa.kernel[1], wa.strides[0], wa.strides[1], wa.dilations[0],
                wa.dilations[1], geo.pads_begin[0], geo.pads_begin[1])


def _loop_ready(x: Any, geo: WindowGeometry, wa: WindowAttrs) -> bool:
    """Whether the compiled loops take X: float32/float64 of rank 2 + kernel rank, not
    empty, with a non-empty output."""
    return (x.dtype in _LOOP_DTYPES and x.ndim == 2 + len(wa.kernel) and x.size > 0
            and math.prod(geo.out_shape) > 0)


#: the loops' int arguments: kh, kw, sh, sw, dh, dw, top, left, start, stop
_INTS = (int,) * 10


# --------------------------------------------------------------------------------------------
# MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool
# --------------------------------------------------------------------------------------------


#: 8-bit types the compiled MaxPool loops take where no window lies wholly in the padding
#: (their "nothing inside" value is float's -inf): quantized models' MaxPool runs on them
_BYTE_DTYPES = frozenset((np.dtype(np.uint8), np.dtype(np.int8)))


def _every_window_inside(geo: WindowGeometry, wa: WindowAttrs) -> bool:
    """Whether every window holds at least one input element (no dilation; the first window
    ends inside the input, the last one starts inside it)."""
    if any(d != 1 for d in wa.dilations):
        return False
    return all(begin < k and (out - 1) * s - begin < size
               for begin, k, s, out, size in zip(geo.pads_begin, wa.kernel, wa.strides,
                                                 geo.out_shape, geo.in_shape))


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
    wa = read_window_attrs(node, _pool_kernel_shape(node), pooling=True)
    storage_order = int(node.attrs.get("storage_order", 0))
    if storage_order not in (0, 1):
        raise ValueError(f"{node.describe()}: storage_order must be 0 or 1")
    want_indices = node.has_output(1)
    # fmax skips NaN like onnxruntime's `if (v > best)` scan
    larger = xp.maximum if np.dtype(node.input_dtypes[0] or np.float32).kind in "iu" else xp.fmax
    plan = _shape_cache(lambda shape: window_geometry(node, wa, shape))
    scratch = shared_scratch(node)
    if want_indices:
        loop = _pool_loop(node, wa, "max_pool_2d_indices", lambda dt: (
            (dt, 3), (dt, 3), (np.int64, 3)) + _INTS + (int,) * 2)
    else:
        loop = _pool_loop(node, wa, "max_pool_2d", lambda dt: ((dt, 3), (dt, 3)) + _INTS)

    def by_loop(x: Any, geo: WindowGeometry) -> tuple:
        """MaxPool (and Indices) by the compiled loop."""
        x3, window = _loop_view(x, geo, wa)
        planes, plane_size = x3.shape[0], x3.shape[1] * x3.shape[2]
        shape = tuple(x.shape[:2]) + geo.out_shape
        y = node.empty(shape, x.dtype)
        y3 = y.reshape(planes, -1, geo.out_shape[-1])
        if not want_indices:
            loop.run(x.dtype, planes, plane_size,
                     lambda fn, a, b: fn(x3, y3, *window, a, b))
            return (y,)
        mults = _index_strides(tuple(x.shape[2:]), storage_order)
        steps = (0, mults[0]) if len(mults) == 1 else tuple(mults)
        indices = node.empty(shape, np.int64)
        i3 = indices.reshape(y3.shape)
        loop.run(x.dtype, planes, plane_size,
                 lambda fn, a, b: fn(x3, y3, i3, *window, *steps, a, b))
        return (y, indices)

    def compute(x: Any) -> tuple:
        geo = plan(tuple(x.shape[2:]))
        if loop is not None and (_loop_ready(x, geo, wa) or (
                x.dtype in _BYTE_DTYPES and _every_window_inside(geo, wa)
                and x.ndim == 2 + len(wa.kernel) and x.size > 0
                and math.prod(geo.out_shape) > 0)):
            return by_loop(x, geo)
        if not want_indices and x.dtype.kind == "f" and x.size and math.prod(geo.out_shape):
            return (_separable_reduce(xp, x, geo, wa, scratch, -np.inf, larger),)
        work_dtype, pad_value = _max_pool_pad_value(x.dtype)
        xpad = _pad_spatial(xp, x.astype(work_dtype, copy=False), geo, pad_value)
        lead = (slice(None), slice(None))
        if want_indices:
            mults = _index_strides(tuple(x.shape[2:]), storage_order)
            offsets = _tap_offsets(wa, mults)
        y = best = None
        for flat, taps in tap_slices(geo, wa):  # loop over kernel taps, not elements
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


def _tap_offsets(wa: WindowAttrs, mults: list[int]) -> list[int]:
    """Return, per kernel tap (row-major), its flat-index offset from the window start."""
    return [
        sum(t * d * m for t, d, m in zip(tap, wa.dilations, mults))
        for tap in np.ndindex(*wa.kernel)
    ]


def _window_start_index(
    xp: Any, x_shape: tuple, geo: WindowGeometry, wa: WindowAttrs, mults: list[int]
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


def _window_counts(geo: WindowGeometry, wa: WindowAttrs, include_pad: bool) -> np.ndarray:
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
    wa = read_window_attrs(node, _pool_kernel_shape(node), pooling=True)
    include_pad = bool(node.attrs.get("count_include_pad", 0))

    def build(shape: tuple[int, ...]) -> tuple[WindowGeometry, dict]:
        geo = window_geometry(node, wa, shape)
        return geo, {"counts": _window_counts(geo, wa, include_pad)}

    plan = _shape_cache(build)
    scratch = shared_scratch(node)
    loop = _pool_loop(node, wa, "average_pool_2d",
                      lambda dt: ((dt, 3), (dt, 3), (dt, 2)) + _INTS)

    def by_loop(x: Any, geo: WindowGeometry, prepared: dict) -> tuple:
        """AveragePool by the compiled loop."""
        key = ("loop", x.dtype)
        counts = prepared.get(key)
        if counts is None:
            counts = prepared[key] = np.ascontiguousarray(
                prepared["counts"].astype(x.dtype).reshape(-1, geo.out_shape[-1]))
        x3, window = _loop_view(x, geo, wa)
        planes = x3.shape[0]
        y = node.empty(tuple(x.shape[:2]) + geo.out_shape, x.dtype)
        y3 = y.reshape(planes, -1, geo.out_shape[-1])
        loop.run(x.dtype, planes, x3.shape[1] * x3.shape[2],
                 lambda fn, a, b: fn(x3, y3, counts, *window, a, b))
        return (y,)

    def compute(x: Any) -> tuple:
        geo, prepared = plan(tuple(x.shape[2:]))
        if loop is not None and _loop_ready(x, geo, wa):
            return by_loop(x, geo, prepared)
        cdt = work_dtype(x.dtype)
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
        for _, taps in tap_slices(geo, wa):  # loop over kernel taps, not elements
            sums += xpad[lead + taps]
        sums /= prepared[key]
        return (sums.astype(x.dtype, copy=False),)

    return compute


@kernels.register("GlobalAveragePool", since=1)
def global_average_pool(node: NodeInfo) -> Callable[..., tuple]:
    """GlobalAveragePool: mean over all spatial axes, kept as size-1 dims."""
    loop = None
    if compiled_loops_enabled(node):
        from . import pooling_loops

        loop = PoolLoop(node, pooling_loops.global_average,
                         lambda dt: ((dt, 2), (dt, 1), int, int))

    def compute(x: Any) -> tuple:
        if loop is not None and x.ndim >= 3 and x.dtype in _LOOP_DTYPES and x.size:
            planes = x.shape[0] * x.shape[1]
            x2 = np.ascontiguousarray(x).reshape(planes, -1)
            y = node.empty(tuple(x.shape[:2]) + (1,) * (x.ndim - 2), x.dtype)
            y1 = y.reshape(planes)
            loop.run(x.dtype, planes, x2.shape[1], lambda fn, a, b: fn(x2, y1, a, b))
            return (y,)
        axes = tuple(range(2, x.ndim))
        y = x.mean(axis=axes, keepdims=True, dtype=work_dtype(x.dtype))
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
# LpPool, GlobalLpPool
# --------------------------------------------------------------------------------------------


def _lp_order(node: NodeInfo) -> float:
    """Return the validated ``p`` attribute (a float in version 1, an int after)."""
    p = float(node.attrs.get("p", 2))
    if not p > 0:
        raise ValueError(f"{node.describe()}: p must be positive, got {p}")
    return p


@kernels.register("LpPool", since=1)
def lp_pool(node: NodeInfo) -> Callable[..., tuple]:
    """LpPool 1+: (sum of |x|^p over each window)^(1/p); auto_pad, strides, pads, and from 18
    dilations and ceil_mode. Padding adds nothing to the sums."""
    xp = node.xp
    p = _lp_order(node)
    wa = read_window_attrs(node, _pool_kernel_shape(node), pooling=True)
    plans: dict[tuple[int, ...], Any] = {}
    loop = _pool_loop(node, wa, "average_pool_2d",
                      lambda dt: ((dt, 3), (dt, 3), (dt, 2)) + _INTS)
    ones: dict[tuple, Any] = {}

    def by_loop(x: Any, geo: WindowGeometry) -> tuple:
        """LpPool by AveragePool's loop: window sums of |x|^p (divided by 1), then the root."""
        key = (geo.out_shape, x.dtype)
        divisors = ones.get(key)
        if divisors is None:
            divisors = ones[key] = np.ones((math.prod(geo.out_shape[:-1]), geo.out_shape[-1]),
                                           x.dtype)
        x3, window = _loop_view(lp_power(xp, x, p), geo, wa)
        planes = x3.shape[0]
        total = np.empty(tuple(x.shape[:2]) + geo.out_shape, x.dtype)
        y3 = total.reshape(planes, -1, geo.out_shape[-1])
        loop.run(x.dtype, planes, x3.shape[1] * x3.shape[2],
                 lambda fn, a, b: fn(x3, y3, divisors, *window, a, b))
        return (lp_root(xp, total, p),)

    def compute(x: Any) -> tuple:
        shape = tuple(x.shape[2:])
        if shape not in plans:
            plans[shape] = window_geometry(node, wa, shape)
        geo = plans[shape]
        cdt = wide_work_dtype(x.dtype)
        if loop is not None and x.dtype == cdt and _loop_ready(x, geo, wa):
            return by_loop(x, geo)
        powered = _pad_spatial(xp, lp_power(xp, x.astype(cdt, copy=False), p), geo, 0)
        lead = (slice(None), slice(None))
        total = xp.zeros(x.shape[:2] + geo.out_shape, dtype=cdt)
        for _, taps in tap_slices(geo, wa):  # loop over kernel taps, not elements
            total += powered[lead + taps]
        return (lp_root(xp, total, p).astype(x.dtype, copy=False),)

    return compute


@kernels.register("GlobalLpPool", since=1)
def global_lp_pool(node: NodeInfo) -> Callable[..., tuple]:
    """GlobalLpPool 1+: (sum of |x|^p over all spatial axes)^(1/p), kept as size-1 dims."""
    xp = node.xp
    p = _lp_order(node)

    def compute(x: Any) -> tuple:
        cdt = wide_work_dtype(x.dtype)
        axes = tuple(range(2, x.ndim))
        total = lp_power(xp, x.astype(cdt, copy=False), p).sum(axis=axes, keepdims=True)
        return (lp_root(xp, total, p).astype(x.dtype, copy=False),)

    return compute


# --------------------------------------------------------------------------------------------
# MaxUnpool
# --------------------------------------------------------------------------------------------


@kernels.register("MaxUnpool", since=9, host_inputs=(2,))
def max_unpool(node: NodeInfo) -> Callable[..., tuple]:
    """MaxUnpool 9+: scatter X into zeros at the flat indices I (from MaxPool).

    The output shape is inferred from kernel_shape/strides/pads, or given by ``output_shape``;
    the indices address the output tensor flattened (as the spec and ONNX Runtime do).
    """
    xp = node.xp
    where = node.describe()
    kernel = tuple(int(k) for k in node.attrs.get("kernel_shape") or ())
    if not kernel:
        raise ValueError(f"{where}: attribute kernel_shape is required")
    nd = len(kernel)
    strides = spatial_attr(node, "strides", nd, 1)
    pads = spatial_attr(node, "pads", nd, 0)

    def compute(x: Any, indices: Any, output_shape: Any = None) -> tuple:
        if x.ndim != nd + 2 or tuple(indices.shape) != tuple(x.shape):
            raise ValueError(f"{where}: X {x.shape} and I {indices.shape} must match the "
                             f"{nd}-d kernel")
        if output_shape is not None and np.asarray(output_shape).size:
            shape = host_ints(output_shape)
            if len(shape) != x.ndim:
                raise ValueError(f"{where}: output_shape {shape} must have rank {x.ndim}")
        else:
            shape = tuple(x.shape[:2]) + tuple(
                (x.shape[2 + i] - 1) * strides[i] - pads[i] - pads[i + nd] + kernel[i]
                for i in range(nd)
            )
        node.check_output_size(shape, x.dtype)
        total = math.prod(shape)
        flat = indices.reshape(-1)
        if flat.size and (int(flat.min()) < 0 or int(flat.max()) >= total):
            raise ValueError(f"{where}: indices out of range for the output shape {shape}")
        y = xp.zeros(total, dtype=x.dtype)
        y[flat] = x.reshape(-1)
        return (y.reshape(shape),)

    return compute
