"""CPU kernels: onnxruntime's quantized pooling and reduction contrib ops (QLinearAveragePool,
QLinearGlobalAveragePool, NhwcMaxPool, QLinearReduceMean), part of :mod:`.contrib_qlinear`.

QLinearAveragePool mirrors onnxruntime's kernel: X is dequantized to float32, each window's
in-bounds values are summed in float32 in row-major tap order, divided by the window's
in-bounds count (or the kernel size with ``count_include_pad``) and requantized as
``round_half_even(mean / y_scale + y_zero_point)``. A window covering the whole (unpadded)
image takes onnxruntime's global path instead: the integer sum less the zero point times the
image size, scaled by ``x_scale / (y_scale * size)`` in float32 (MLAS'
QLinearGlobalAveragePool), which QLinearGlobalAveragePool always uses. ``channels_last``
reads and writes NHWC. 1-D/2-D QLinearAveragePool, QLinearGlobalAveragePool (NCHW) and
NhwcMaxPool run compiled loops (:mod:`.pooling_loops`) with these numerics where the node may
use them; the numpy code below stays as their reference.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np
from ort.ep import DeclaredSchema, KernelTable, NodeInfo

from ..jit import compiled_loops_enabled
from .contrib_qlinear_common import (F32, QUANT_RANGES, check_quant_dtype,
                                     saturate_cvt, scalar_param, zero_point)
from .contrib_schema import MS, REQUIRED, declare, dims, elem_type, tensor_type
from .kernel_args import normalize_axes
from .pooling import PoolLoop, max_pool
from .windows import read_window_attrs, tap_slices, window_geometry

kernels = KernelTable()


def _to_nchw(x: np.ndarray, channels_last: bool) -> np.ndarray:
    """``x`` viewed as (N, C, *spatial)."""
    return np.moveaxis(x, -1, 1) if channels_last else x


def _from_nchw(y: np.ndarray, channels_last: bool) -> np.ndarray:
    """A (N, C, *spatial) result in the layout the node writes (contiguous)."""
    return np.ascontiguousarray(np.moveaxis(y, 1, -1) if channels_last else y)


def global_average(where: str, x: np.ndarray, xs: float, xz: int, ys: float, yz: int) -> np.ndarray:
    """MLAS' QLinearGlobalAveragePool over the trailing axes of ``x`` (N, C, *spatial):
    ``saturate(round(float32(sum - xz * size) * (xs / (ys * size))) + yz)``."""
    size = math.prod(x.shape[2:])
    scale = F32(F32(xs) / (F32(ys) * F32(size)))
    if size >= 0x1000000 or not (2.0 ** -32 <= scale < 256.0):
        raise ValueError(f"{where}: QLinearGlobalAveragePool parameter out of computation range "
                         f"(x_scale / (y_scale * {size}) = {float(scale)})")
    sums = x.reshape(x.shape[:2] + (-1,)).sum(axis=2, dtype=np.int64) - xz * size
    values = sums.astype(F32) * scale
    return _requantize(values, yz, x.dtype).reshape(x.shape[:2] + (1,) * (x.ndim - 2))


_QUANT_DTYPES = frozenset((np.dtype(np.uint8), np.dtype(np.int8)))


def _quant_loop(node: NodeInfo, name: str, specs: Callable[[np.dtype], tuple]) -> PoolLoop | None:
    """The compiled loop ``name`` of :mod:`.pooling_loops` for a uint8/int8 node, or None
    where the node may not use compiled loops."""
    if not compiled_loops_enabled(node):
        return None
    from . import pooling_loops

    return PoolLoop(node, getattr(pooling_loops, name), specs, _QUANT_DTYPES)


def _global_by_loop(loop: PoolLoop, where: str, xc: np.ndarray, xs: float, xz: int, ys: float,
                    yz: int) -> np.ndarray:
    """:func:`global_average` of a C-contiguous NCHW ``xc`` by the compiled loop."""
    size = math.prod(xc.shape[2:])
    scale = F32(F32(xs) / (F32(ys) * F32(size)))
    if size >= 0x1000000 or not (2.0 ** -32 <= scale < 256.0):
        return global_average(where, xc, xs, xz, ys, yz)  # raises the range error
    planes = xc.shape[0] * xc.shape[1]
    x2 = xc.reshape(planes, size)
    y = np.empty(xc.shape[:2] + (1,) * (xc.ndim - 2), xc.dtype)
    low, high = QUANT_RANGES[xc.dtype]
    loop.run(xc.dtype, planes, size, lambda fn, a, b: fn(x2, y.reshape(planes), xz, scale, yz,
                                                           low, high, a, b))
    return y


def _requantize(values: np.ndarray, yz: int, dtype: np.dtype) -> np.ndarray:
    """round_half_even(values) + yz, saturated to ``dtype``."""
    return saturate_cvt(np.rint(values.astype(np.float64)) + yz, dtype)


def _quant_params(where: str, dtype: np.dtype, x_scale, x_zero_point, y_scale, y_zero_point):
    """(x_scale, x_zero, y_scale, y_zero) of a pooling node."""
    return (scalar_param(where, "x_scale", x_scale),
            zero_point(where, "x_zero_point", x_zero_point, dtype),
            scalar_param(where, "y_scale", y_scale),
            zero_point(where, "y_zero_point", y_zero_point, dtype))


@kernels.register("QLinearAveragePool", since=1, domain=MS)
def qlinear_average_pool(node: NodeInfo) -> Callable[..., tuple]:
    """QLinearAveragePool 1+: AveragePool of dequantized X (auto_pad, ceil_mode,
    count_include_pad, kernel_shape, pads, strides; 1-3 spatial dims), requantized."""
    where = node.describe()
    kernel = tuple(int(k) for k in node.attrs.get("kernel_shape") or ())
    if not kernel:
        raise ValueError(f"{where}: attribute kernel_shape is required")
    if len(kernel) > 3:
        raise ValueError(f"{where}: QLinearAveragePool supports 1 to 3 spatial dims, "
                         f"got kernel_shape {kernel}")
    wa = read_window_attrs(node, kernel, pooling=True)
    include_pad = bool(node.attrs.get("count_include_pad", 0))
    channels_last = bool(node.attrs.get("channels_last", 0))
    plans: dict[tuple[int, ...], tuple] = {}
    loop = _quant_loop(node, "qlinear_average_pool_2d", lambda dt: (
        (dt, 3), (dt, 3), (F32, 2)) + (int,) * 6 + (F32, int, F32, int, int, int, int, int)) \
        if len(kernel) <= 2 else None
    global_loop = _quant_loop(node, "qlinear_global_average", lambda dt: (
        (dt, 2), (dt, 1), int, F32, int, int, int, int, int))

    def by_loop(xc: np.ndarray, geo, counts: np.ndarray, xs: float, xz: int, ys: float,
                yz: int) -> np.ndarray:
        """The pooled NCHW result by the compiled loop (1-D as H = 1)."""
        planes = xc.shape[0] * xc.shape[1]
        x3 = np.ascontiguousarray(xc).reshape((planes,) + (1,) * (3 - xc.ndim + 1)
                                              + xc.shape[2:])
        if len(kernel) == 1:
            window = (1, kernel[0], 1, wa.strides[0], 0, geo.pads_begin[0])
        else:
            window = (kernel[0], kernel[1], wa.strides[0], wa.strides[1], geo.pads_begin[0],
                      geo.pads_begin[1])
        y = np.empty(xc.shape[:2] + geo.out_shape, xc.dtype)
        y3 = y.reshape(planes, -1, geo.out_shape[-1])
        divisors = counts.reshape(-1, geo.out_shape[-1])
        low, high = QUANT_RANGES[xc.dtype]
        loop.run(xc.dtype, planes, x3.shape[1] * x3.shape[2],
                 lambda fn, a, b: fn(x3, y3, divisors, *window, F32(xs), xz, F32(ys), yz, low,
                                     high, a, b))
        return y

    def plan(spatial: tuple[int, ...]) -> tuple:
        found = plans.get(spatial)
        if found is None:
            geo = window_geometry(node, wa, spatial)
            counts = np.ones((), dtype=np.int64)
            for i, size in enumerate(spatial):
                starts = np.arange(geo.out_shape[i]) * wa.strides[i] - geo.pads_begin[i]
                ends = np.minimum(starts + kernel[i], size)
                count = ends - np.maximum(starts, 0)
                counts = counts[..., None] * count
            if include_pad:
                counts = np.full(geo.out_shape, math.prod(kernel), dtype=np.int64)
            whole = spatial == kernel and not any(geo.pads_begin) and not any(geo.pads_end)
            found = plans[spatial] = (geo, counts.astype(F32), whole)
        return found

    def compute(x, x_scale, x_zero_point=None, y_scale=None, y_zero_point=None):
        dtype = check_quant_dtype(where, x.dtype)
        xs, xz, ys, yz = _quant_params(where, dtype, x_scale, x_zero_point, y_scale,
                                       y_zero_point)
        if x.ndim != len(kernel) + 2:
            raise ValueError(f"{where}: X of shape {x.shape} does not have the "
                             f"{len(kernel)} spatial dims of kernel_shape {kernel}")
        xc = _to_nchw(x, channels_last)
        geo, counts, whole = plan(tuple(xc.shape[2:]))
        usable = loop is not None and xc.size > 0 and math.prod(geo.out_shape) > 0
        if whole:
            if usable:
                contiguous = np.ascontiguousarray(xc)
                return (_from_nchw(_global_by_loop(global_loop, where, contiguous, xs, xz, ys,
                                                   yz), channels_last),)
            return (_from_nchw(global_average(where, xc, xs, xz, ys, yz), channels_last),)
        if usable:
            return (_from_nchw(by_loop(xc, geo, counts, xs, xz, ys, yz), channels_last),)
        values = F32(xs) * (xc.astype(np.int32) - xz).astype(F32)
        widths = [(0, 0), (0, 0)] + [(b, e + extra) for b, e, extra in
                                     zip(geo.pads_begin, geo.pads_end, geo.extra_end)]
        padded = np.pad(values, widths) if geo.padded else values
        sums = np.zeros(xc.shape[:2] + geo.out_shape, dtype=F32)
        lead = (slice(None), slice(None))
        for _, taps in tap_slices(geo, wa):  # row-major taps: onnxruntime's summation order
            sums += padded[lead + taps]
        means = sums / counts
        y = _requantize(means / F32(ys) + F32(yz), 0, dtype)
        return (_from_nchw(y, channels_last),)

    return compute


@kernels.register("QLinearGlobalAveragePool", since=1, domain=MS)
def qlinear_global_average_pool(node: NodeInfo) -> Callable[..., tuple]:
    """QLinearGlobalAveragePool 1+: the mean over all spatial dims of dequantized X,
    requantized (MLAS' integer-sum path); ``channels_last`` reads NHWC."""
    where = node.describe()
    channels_last = bool(node.attrs.get("channels_last", 0))
    loop = None if channels_last else _quant_loop(node, "qlinear_global_average", lambda dt: (
        (dt, 2), (dt, 1), int, F32, int, int, int, int, int))

    def compute(x, x_scale, x_zero_point, y_scale, y_zero_point):
        dtype = check_quant_dtype(where, x.dtype)
        if x.ndim < 3:
            raise ValueError(f"{where}: X must have at least 3 dims, got shape {x.shape}")
        xs, xz, ys, yz = _quant_params(where, dtype, x_scale, x_zero_point, y_scale,
                                       y_zero_point)
        xc = _to_nchw(x, channels_last)
        if xc.size == 0:
            return (_from_nchw(np.empty(xc.shape[:2] + (1,) * (x.ndim - 2), dtype),
                               channels_last),)
        if loop is not None:
            return (_global_by_loop(loop, where, np.ascontiguousarray(xc), xs, xz, ys, yz),)
        return (_from_nchw(global_average(where, xc, xs, xz, ys, yz), channels_last),)

    return compute


@kernels.register("NhwcMaxPool", since=1, domain=MS)
def nhwc_max_pool(node: NodeInfo) -> Callable[..., tuple]:
    """NhwcMaxPool 1+: MaxPool of a uint8/int8 NHWC tensor (auto_pad, ceil_mode, dilations,
    kernel_shape, pads, strides); the result is NHWC."""
    plain = dataclasses.replace(
        node, op_type="MaxPool", domain="", since_version=12, opset=12,
        attrs={**node.attrs, "storage_order": 0}, output_names=node.output_names[:1])
    pool = max_pool(plain)
    where = node.describe()
    wa = read_window_attrs(plain, tuple(int(k) for k in node.attrs.get("kernel_shape") or ()),
                           pooling=True) if node.attrs.get("kernel_shape") else None
    loop = _quant_loop(node, "max_pool_nhwc", lambda dt: (
        (dt, 4), (dt, 4)) + (int,) * 8 + (dt, int, int)) \
        if wa is not None and len(wa.kernel) in (1, 2) else None
    plans: dict[tuple[int, ...], object] = {}

    def by_loop(x: np.ndarray) -> np.ndarray:
        """NhwcMaxPool by the compiled loop, in NHWC (1-D as H = 1)."""
        spatial = tuple(x.shape[1:-1])
        geo = plans.get(spatial)
        if geo is None:
            geo = plans[spatial] = window_geometry(plain, wa, spatial)
        x4 = np.ascontiguousarray(x)
        if len(wa.kernel) == 1:
            x4 = x4.reshape(x.shape[0], 1, x.shape[1], x.shape[2])
            window = (1, wa.kernel[0], 1, wa.strides[0], 1, wa.dilations[0], 0,
                      geo.pads_begin[0])
        else:
            window = (wa.kernel[0], wa.kernel[1], wa.strides[0], wa.strides[1],
                      wa.dilations[0], wa.dilations[1], geo.pads_begin[0], geo.pads_begin[1])
        y = np.empty((x.shape[0],) + geo.out_shape + (x.shape[-1],), x.dtype)
        y4 = y.reshape((x.shape[0], -1) + y.shape[-2:])
        if x4.size and y4.size:
            lowest = x.dtype.type(QUANT_RANGES[x.dtype][0])
            loop.run(x.dtype, y4.shape[0] * y4.shape[1], x4.shape[2] * x4.shape[3] * wa.kernel[0],
                     lambda fn, a, b: fn(x4, y4, *window, lowest, a, b))
        return y

    def compute(x):
        check_quant_dtype(where, x.dtype)
        if x.ndim < 3:
            raise ValueError(f"{where}: x must have at least 3 dims, got shape {x.shape}")
        if loop is not None and x.ndim == 2 + len(wa.kernel):
            return (by_loop(x),)
        return (_from_nchw(pool(_to_nchw(x, True))[0], True),)

    return compute


@kernels.register("QLinearReduceMean", since=1, domain=MS)
def qlinear_reduce_mean(node: NodeInfo) -> Callable[..., tuple]:
    """QLinearReduceMean 1+: ReduceMean of dequantized data over ``axes`` (``keepdims``),
    requantized half to even. (onnxruntime declares it but has no CPU kernel: the mean of
    the exact integer sums is scaled once in float64.)"""
    where = node.describe()
    if node.attrs.get("axes") is None or node.attrs.get("keepdims") is None:
        raise ValueError(f"{where}: attributes axes and keepdims are required")
    axes_attr = [int(a) for a in node.attrs["axes"]]
    keepdims = bool(node.attrs["keepdims"])

    def compute(data, data_scale, data_zero_point=None, reduced_scale=None,
                reduced_zero_point=None):
        dtype = check_quant_dtype(where, data.dtype)
        xs, xz, ys, yz = _quant_params(where, dtype, data_scale, data_zero_point,
                                       reduced_scale, reduced_zero_point)
        axes = tuple(normalize_axes(node, axes_attr, data.ndim)) if axes_attr else \
            tuple(range(data.ndim))
        count = math.prod(data.shape[a] for a in axes)
        sums = data.sum(axis=axes, keepdims=keepdims, dtype=np.int64) - xz * count
        means = sums.astype(np.float64) * (xs / ys) / max(count, 1)
        return (_requantize(means, yz, dtype),)

    return compute


# --------------------------------------------------------------------------------------------
# schemas
# --------------------------------------------------------------------------------------------


def _pool_out(size, kernel: int, stride: int, dilation: int, begin: int, end: int,
              auto_pad: str, ceil_mode: bool):
    """One pooled output extent (None when unknown)."""
    if not isinstance(size, int):
        return None
    span = (kernel - 1) * dilation + 1
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        return -(-size // stride)
    if auto_pad == "VALID":
        return (size - span) // stride + 1
    reach = size + begin + end - span
    if ceil_mode:
        out = -(-reach // stride) + 1
        return out - 1 if (out - 1) * stride >= size + begin else out
    return reach // stride + 1


def _pool_shape(channels_last_attr: str | None, has_dilations: bool):
    """Inference of a pooling op's output shape (NCHW, or NHWC when ``channels_last``)."""

    def infer(types, attrs):
        shape = dims(types[0])
        element = elem_type(types[0])
        if shape is None:
            return [tensor_type(element)]
        last = bool(attrs.get(channels_last_attr, 0)) if channels_last_attr else True
        kernel = [int(k) for k in attrs["kernel_shape"]]
        nd = len(kernel)
        if len(shape) != nd + 2:
            return [tensor_type(element)]
        spatial = shape[1:-1] if last else shape[2:]
        strides = [int(s) for s in attrs.get("strides") or [1] * nd]
        dil = [int(d) for d in (attrs.get("dilations") if has_dilations else None) or [1] * nd]
        pads = [int(p) for p in attrs.get("pads") or [0] * (2 * nd)]
        auto_pad = attrs.get("auto_pad") or "NOTSET"
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
        out = [_pool_out(spatial[i], kernel[i], strides[i], dil[i], pads[i], pads[i + nd],
                         auto_pad, bool(attrs.get("ceil_mode", 0))) for i in range(nd)]
        full = [shape[0]] + out + [shape[-1]] if last else [shape[0], shape[1]] + out
        return [tensor_type(element, full)]

    return infer


def _global_shape(types, attrs):
    """QLinearGlobalAveragePool's output type: spatial dims become 1."""
    shape = dims(types[0])
    element = elem_type(types[0])
    if shape is None or len(shape) < 3:
        return [tensor_type(element)]
    if attrs.get("channels_last"):
        return [tensor_type(element, [shape[0]] + [1] * (len(shape) - 2) + [shape[-1]])]
    return [tensor_type(element, [shape[0], shape[1]] + [1] * (len(shape) - 2))]


def _reduce_shape(types, attrs):
    """QLinearReduceMean's output type."""
    shape = dims(types[0])
    element = elem_type(types[0])
    if shape is None:
        return [tensor_type(element)]
    rank = len(shape)
    axes = {int(a) % rank for a in attrs.get("axes") or range(rank)} if rank else set()
    keep = bool(attrs.get("keepdims", 1))
    out = [1 if i in axes else d for i, d in enumerate(shape) if keep or i not in axes]
    return [tensor_type(element, out)]


_POOL_ATTRS = {"auto_pad": "NOTSET", "ceil_mode": 0, "kernel_shape": REQUIRED, "pads": None,
               "strides": None}

SCHEMAS: list[DeclaredSchema] = [
    declare("QLinearAveragePool", inputs=(4, 5),
            attributes={**_POOL_ATTRS, "channels_last": 0, "count_include_pad": 0},
            infer=_pool_shape("channels_last", False)),
    declare("QLinearGlobalAveragePool", inputs=5, attributes={"channels_last": 0},
            infer=_global_shape),
    declare("NhwcMaxPool", inputs=1, attributes={**_POOL_ATTRS, "dilations": None},
            infer=_pool_shape(None, True)),
    declare("QLinearReduceMean", inputs=(4, 5),
            attributes={"axes": REQUIRED, "keepdims": REQUIRED}, infer=_reduce_shape),
]
