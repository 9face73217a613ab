"""CPU kernels: nn (convolution, pooling, normalization, softmax, dropout, LRN).

Sliding-window ops (Conv, ConvTranspose, MaxPool, AveragePool) share one geometry helper
(:func:`_window_geometry`). Conv views the padded input as ``(N, C, *out_spatial, *kernel)``
without copying (:func:`_sliding_windows`) and turns that view into im2col columns for one GEMM
per group; ConvTranspose does a GEMM then a col2im scatter-add per kernel tap; pooling loops
over kernel taps, each a strided slice of the padded input. Geometry depends on the input's
spatial shape, so each node caches its plan per shape.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import ml_dtypes
import numpy as np

from ort.kernels import KernelTable, NodeInfo

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
# Conv
# --------------------------------------------------------------------------------------------


@kernels.register("Conv", since=1)
def conv(node: NodeInfo) -> Callable[..., tuple]:
    """Conv (all versions): im2col over a strided view of the padded input, one GEMM per group."""
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
    plans: dict[tuple, _WindowGeometry] = {}

    def geometry(wa: _WindowAttrs, in_shape: tuple[int, ...]) -> _WindowGeometry:
        """Return the (cached) window geometry for one kernel and input spatial shape."""
        key = (wa.kernel, in_shape)
        geo = plans.get(key)
        if geo is None:
            geo = plans[key] = _window_geometry(node, wa, in_shape)
        return geo

    def weights_matrix(w: Any, cdt: np.dtype) -> Any:
        """Return W as (group, M/group, C/group * prod(kernel)) in the compute dtype."""
        return w.reshape(group, w.shape[0] // group, -1).astype(cdt, copy=False)

    prepared_w = None
    if const_w is not None:
        prepared_w = weights_matrix(xp.asarray(const_w), _compute_dtype(const_w.dtype))

    def compute(x: Any, w: Any, b: Any = None) -> tuple:
        cdt = _compute_dtype(x.dtype)
        n, c = x.shape[:2]
        if w.shape[1] * group != c or w.shape[0] % group:
            raise ValueError(
                f"{node.describe()}: X has {c} channels, W {tuple(w.shape)} with group {group}"
            )
        wa = window_attrs(tuple(w.shape[2:]))
        geo = geometry(wa, tuple(x.shape[2:]))
        wm = prepared_w if prepared_w is not None else weights_matrix(w, cdt)
        cols = _im2col(xp, x.astype(cdt, copy=False), geo, wa, group)
        y = _grouped_gemm(xp, wm, cols)  # (G, M/G, N * P)
        y = y.reshape(w.shape[0], n, math.prod(geo.out_shape)).transpose(1, 0, 2)
        if b is not None:
            y = y + b.astype(cdt, copy=False).reshape(-1, 1)
        else:
            y = xp.ascontiguousarray(y)
        return (y.reshape((n, w.shape[0]) + geo.out_shape).astype(x.dtype, copy=False),)

    return compute


def _grouped_gemm(xp: Any, a: Any, b: Any) -> Any:
    """Return a @ b for stacks of matrices (G, m, k) @ (G, k, n); a single GEMM when G == 1."""
    if a.shape[0] == 1:
        return xp.matmul(a[0], b[0])[None]
    return xp.matmul(a, b)


def _im2col(xp: Any, x: Any, geo: _WindowGeometry, wa: _WindowAttrs, group: int) -> Any:
    """Return the im2col matrix of ``x`` as (group, C/group * prod(kernel), N * prod(out)).

    Batch and output positions share the GEMM's column axis, so each group is one big GEMM.
    """
    n, c = x.shape[:2]
    nd = len(wa.kernel)
    cg = c // group
    columns = n * math.prod(geo.out_shape)
    pointwise = all(k == 1 for k in wa.kernel) and all(s == 1 for s in wa.strides)
    if pointwise and not geo.padded:
        windows = x.reshape(n, group, cg, math.prod(geo.out_shape))
        return windows.transpose(1, 2, 0, 3).reshape(group, cg, columns)
    windows = _sliding_windows(xp, _pad_spatial(xp, x, geo, 0), geo, wa)
    windows = windows.reshape((n, group, cg) + geo.out_shape + wa.kernel)
    kernel_axes = tuple(range(3 + nd, 3 + 2 * nd))
    out_axes = tuple(range(3, 3 + nd))
    cols = windows.transpose((1, 2) + kernel_axes + (0,) + out_axes)
    return cols.reshape(group, cg * math.prod(wa.kernel), columns)


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

    def compute(x: Any) -> tuple:
        geo = plan(tuple(x.shape[2:]))
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

    def compute(x: Any) -> tuple:
        geo, prepared = plan(tuple(x.shape[2:]))
        cdt = _compute_dtype(x.dtype)
        key = np.dtype(cdt).name
        if key not in prepared:
            prepared[key] = xp.asarray(prepared["counts"].astype(cdt))
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
        axes = tuple(range(first, x.ndim))
        work = cdt if x.dtype != np.float64 else np.dtype(np.float64)
        xc = x.astype(work, copy=False)
        mean = xc.mean(axis=axes, keepdims=True)
        centered = xc - mean
        var = (centered * centered).mean(axis=axes, keepdims=True)
        inv_std = 1.0 / xp.sqrt(var + work.type(epsilon))
        y = centered  # a fresh array: normalize it in place
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
        if coerce:
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
    from .random import node_generator

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
