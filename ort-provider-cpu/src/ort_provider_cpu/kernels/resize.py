"""CPU kernels: image and detection ops.

Resize, Upsample, GridSample, AffineGrid, RoiAlign, MaxRoiPool, NonMaxSuppression, MaxUnpool,
Col2Im, DeformConv, LpPool, GlobalLpPool, LpNormalization, CenterCropPad and ImageDecoder.

Resize and Upsample are separable: each resized axis gets a plan of source indices and weights
(one tap for nearest, 2 or 4 for linear/cubic, more when antialiasing stretches the filter),
applied as a loop over taps of ``take`` along that axis. GridSample and DeformConv gather the
corners of N-linear (or N-cubic) interpolation through flat spatial indices, looping over the
corner combinations only. RoiAlign pools all RoIs sharing a sampling-grid size at once;
MaxRoiPool loops over RoIs (their bins differ). NonMaxSuppression is greedy per (batch, class),
one vectorized suppression step per selected box. LpPool reuses the window geometry of the nn
pooling kernels. Sampling coordinates of Resize are computed in float32 like ONNX Runtime, whose
rounding decides nearest-mode ties.
"""

from __future__ import annotations

import io
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ort.ep import KernelTable, NodeInfo

from .pooling import _pad_spatial, _pool_kernel_shape
from .windows import read_window_attrs, tap_slices, window_geometry

kernels = KernelTable()


# --------------------------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------------------------


def _str_attr(node: NodeInfo, name: str, default: str) -> str:
    """Return string attribute ``name`` of ``node`` (``default`` when absent)."""
    value = node.attrs.get(name, default)
    if value is None:
        return default
    return value.decode() if isinstance(value, bytes) else str(value)


def _compute_dtype(dtype: Any) -> np.dtype:
    """Return the float dtype to compute in: float64 for float64 and wide integers, else
    float32 (float16, bfloat16, float32, narrow integers)."""
    dtype = np.dtype(dtype)
    if dtype == np.float64 or (dtype.kind in "iu" and dtype.itemsize >= 4):
        return np.dtype(np.float64)
    return np.dtype(np.float32)


def _cast_result(xp: Any, y: Any, dtype: Any) -> Any:
    """Return the float result ``y`` as ``dtype``: integers rounded half to even and
    saturated, bool as ``y != 0``, floats cast."""
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        y = xp.clip(xp.rint(y), info.min, info.max)
    elif dtype.kind == "b":
        return y != 0
    return y.astype(dtype, copy=False)


def _host_ints(value: Any) -> tuple[int, ...]:
    """Return a host shape-like tensor as a tuple of Python ints."""
    return tuple(int(v) for v in np.asarray(value).reshape(-1))


def _normalize_axes(node: NodeInfo, axes: Sequence[int], rank: int) -> tuple[int, ...]:
    """Return ``axes`` made non-negative for ``rank``; raise ValueError if out of range or
    repeated."""
    result = []
    for axis in axes:
        if not -rank <= axis < rank:
            raise ValueError(f"{node.describe()}: axis {axis} is out of range for rank {rank}")
        result.append(axis + rank if axis < 0 else axis)
    if len(set(result)) != len(result):
        raise ValueError(f"{node.describe()}: axes {tuple(axes)} contain a repeated axis")
    return tuple(result)


def _linear_kernel(xp: Any, d: Any) -> Any:
    """Return the triangle (linear interpolation) filter at distances ``d``."""
    return xp.clip(1.0 - xp.abs(d), 0.0, None)


def _cubic_kernel(xp: Any, d: Any, a: float) -> Any:
    """Return Keys' cubic convolution filter with coefficient ``a`` at distances ``d``."""
    d = xp.abs(d)
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return xp.where(d <= 1, near, xp.where(d < 2, far, xp.zeros((), dtype=d.dtype)))


# --------------------------------------------------------------------------------------------
# Resize / Upsample
# --------------------------------------------------------------------------------------------

_RESIZE_MODES = ("nearest", "linear", "cubic")
_NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")
_COORD_MODES = ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
                "tf_crop_and_resize", "tf_half_pixel_for_nn")
_ASPECT_POLICIES = ("stretch", "not_larger", "not_smaller")


@dataclass(frozen=True)
class _ResizeAttrs:
    """Validated attributes of a Resize or Upsample node."""

    mode: str  # nearest, linear or cubic
    coord_mode: str  # a coordinate_transformation_mode
    nearest_mode: str  # a nearest_mode, or "simple" (Resize-10 and Upsample)
    cubic_a: float
    exclude_outside: bool
    extrapolation: float
    antialias: bool
    axes: tuple[int, ...] | None
    policy: str  # keep_aspect_ratio_policy


@dataclass(frozen=True)
class _AxisPlan:
    """How one axis is resampled."""

    axis: int
    index: np.ndarray  # source indices, clamped: (out,) for nearest, (out, taps) otherwise
    weight: np.ndarray | None  # (out, taps) filter weights; None for nearest
    outside: np.ndarray | None  # (out,) bool: outputs set to extrapolation_value, or None


def _legacy_resize_attrs(node: NodeInfo, modes: Sequence[str]) -> _ResizeAttrs:
    """Attributes of Upsample and Resize-10: asymmetric coordinates, ONNX Runtime's "simple"
    nearest rounding (floor when upsampling, ceil when downsampling)."""
    mode = _str_attr(node, "mode", "nearest")
    if mode not in modes:
        raise ValueError(f"{node.describe()}: mode must be one of {modes}, got {mode!r}")
    mode = "linear" if mode == "bilinear" else mode
    return _ResizeAttrs(mode, "asymmetric", "simple", -0.75, False, 0.0, False, None, "stretch")


def _resize_attrs(node: NodeInfo) -> _ResizeAttrs:
    """Read and validate the attributes of a Resize-11+ node."""
    where = node.describe()
    version = node.since_version
    mode = _str_attr(node, "mode", "nearest")
    if mode not in _RESIZE_MODES:
        raise ValueError(f"{where}: mode must be one of {_RESIZE_MODES}, got {mode!r}")
    coord_mode = _str_attr(node, "coordinate_transformation_mode", "half_pixel")
    coord_modes = _COORD_MODES + (("half_pixel_symmetric",) if version >= 19 else ())
    if coord_mode not in coord_modes:
        raise ValueError(
            f"{where}: coordinate_transformation_mode must be one of {coord_modes}, "
            f"got {coord_mode!r}"
        )
    nearest_mode = _str_attr(node, "nearest_mode", "round_prefer_floor")
    if nearest_mode not in _NEAREST_MODES:
        raise ValueError(f"{where}: nearest_mode must be one of {_NEAREST_MODES}")
    policy = _str_attr(node, "keep_aspect_ratio_policy", "stretch")
    if policy not in _ASPECT_POLICIES:
        raise ValueError(f"{where}: keep_aspect_ratio_policy must be one of {_ASPECT_POLICIES}")
    axes = node.attrs.get("axes")
    return _ResizeAttrs(
        mode,
        coord_mode,
        nearest_mode,
        float(node.attrs.get("cubic_coeff_a", -0.75)),
        bool(node.attrs.get("exclude_outside", 0)),
        float(node.attrs.get("extrapolation_value", 0.0)),
        bool(node.attrs.get("antialias", 0)) and mode != "nearest",
        tuple(int(a) for a in axes) if axes else None,
        policy,
    )


@dataclass(frozen=True)
class _AxisTarget:
    """What one resized axis becomes: its scale, integer length and real (scaled) length."""

    axis: int
    scale: float
    out_len: int
    out_width: float  # scale * input length; differs from out_len for fractional scales


def _resize_targets(
    node: NodeInfo, attrs: _ResizeAttrs, in_shape: tuple[int, ...], axes: tuple[int, ...],
    scales: tuple[float, ...] | None, sizes: tuple[int, ...] | None,
) -> list[_AxisTarget]:
    """Return the target of each axis in ``axes`` from ``scales`` or ``sizes``."""
    where = node.describe()
    if (scales is None) == (sizes is None):
        raise ValueError(f"{where}: exactly one of scales and sizes must be given")
    given = scales if scales is not None else sizes
    if len(given) != len(axes):
        raise ValueError(
            f"{where}: {'scales' if scales is not None else 'sizes'} has {len(given)} "
            f"values for {len(axes)} axes"
        )
    if scales is not None:
        if any(not s > 0 for s in scales):
            raise ValueError(f"{where}: scales must be positive, got {scales}")
        return [
            _AxisTarget(a, s, int(np.floor(np.float32(s) * np.float32(in_shape[a]))),
                        s * in_shape[a])
            for a, s in zip(axes, scales)
        ]
    if any(s < 0 for s in sizes):
        raise ValueError(f"{where}: sizes must not be negative, got {sizes}")
    for a, size in zip(axes, sizes):
        if in_shape[a] == 0 and size != 0:
            raise ValueError(f"{where}: cannot resize the empty axis {a} to {size}")
    ratios = [size / in_shape[a] if in_shape[a] else 1.0 for a, size in zip(axes, sizes)]
    if attrs.policy == "stretch":
        return [_AxisTarget(a, r, s, float(s)) for a, r, s in zip(axes, ratios, sizes)]
    scale = min(ratios) if attrs.policy == "not_larger" else max(ratios)
    return [
        _AxisTarget(a, scale, int(math.floor(scale * in_shape[a] + 0.5)), scale * in_shape[a])
        for a in axes
    ]


def _source_coords(
    mode: str, target: _AxisTarget, in_len: int, roi: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray | None]:
    """Return (source coordinate of each output index, extrapolated outputs or None),
    computed in float32 as ONNX Runtime does (it decides rounding ties of nearest mode)."""
    y = np.arange(target.out_len, dtype=np.float32)
    scale, width = np.float32(target.scale), np.float32(target.out_width)
    in_len = np.float32(in_len)
    if mode == "half_pixel":
        return (y + 0.5) / scale - 0.5, None
    if mode == "half_pixel_symmetric":
        offset = in_len / 2 * (1 - target.out_len / width)
        return offset + (y + 0.5) / scale - 0.5, None
    if mode == "pytorch_half_pixel":
        return ((y + 0.5) / scale - 0.5 if width > 1 else np.zeros_like(y)), None
    if mode == "align_corners":
        return (y * (in_len - 1) / (width - 1) if width != 1 else np.zeros_like(y)), None
    if mode == "asymmetric":
        return y / scale, None
    if mode == "tf_half_pixel_for_nn":
        return (y + 0.5) / scale, None
    start, end = roi  # tf_crop_and_resize
    if width != 1:
        x = start * (in_len - 1) + y * (end - start) * (in_len - 1) / (width - 1)
    else:
        x = np.full_like(y, 0.5 * (start + end) * (in_len - 1))
    return x, (x < 0) | (x > in_len - 1)


def _nearest_index(x: np.ndarray, nearest_mode: str, scale: float, in_len: int) -> np.ndarray:
    """Return the source index nearest to each coordinate ``x``, clamped into the axis."""
    if nearest_mode == "round_prefer_floor":
        index = np.ceil(x - 0.5)
    elif nearest_mode == "round_prefer_ceil":
        index = np.floor(x + 0.5)
    elif nearest_mode == "ceil" or (nearest_mode == "simple" and scale < 1):
        index = np.ceil(x)
    else:  # floor, or simple when upsampling
        index = np.floor(x)
    return np.clip(np.nan_to_num(index), 0, in_len - 1).astype(np.intp)


def _filter_taps(
    x: np.ndarray, attrs: _ResizeAttrs, scale: float, in_len: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return (clamped source indices, weights), both (out, taps), of linear/cubic filtering
    at coordinates ``x``. Antialiasing stretches the filter by 1/scale when downsampling."""
    radius = 1 if attrs.mode == "linear" else 2
    stretch = min(scale, 1.0) if attrs.antialias else 1.0
    first = math.floor(-radius / stretch) + 1
    taps = 2 - 2 * first
    base = np.floor(np.nan_to_num(x))
    index = base[:, None] + np.arange(first, first + taps, dtype=np.float64)[None, :]
    distance = (index - x[:, None]) * stretch
    if attrs.mode == "linear":
        weight = _linear_kernel(np, distance)
    else:
        weight = _cubic_kernel(np, distance, attrs.cubic_a)
    if attrs.antialias:
        weight = weight / weight.sum(axis=1, keepdims=True)
    index = index.astype(np.int64)
    if attrs.exclude_outside:
        weight = np.where((index < 0) | (index >= in_len), 0.0, weight)
        total = weight.sum(axis=1, keepdims=True)
        weight = weight / np.where(total == 0, 1.0, total)
    return np.clip(index, 0, in_len - 1).astype(np.intp), weight


def _axis_plan(
    attrs: _ResizeAttrs, target: _AxisTarget, in_len: int, roi: tuple[float, float]
) -> _AxisPlan:
    """Return the resampling plan of one axis."""
    x, outside = _source_coords(attrs.coord_mode, target, in_len, roi)
    if outside is not None and not outside.any():
        outside = None
    if attrs.mode == "nearest":
        index = _nearest_index(x, attrs.nearest_mode, target.scale, in_len)
        return _AxisPlan(target.axis, index, None, outside)
    index, weight = _filter_taps(x, attrs, target.scale, in_len)
    return _AxisPlan(target.axis, index, weight, outside)


def _is_identity(attrs: _ResizeAttrs, target: _AxisTarget, in_len: int, roi: tuple) -> bool:
    """Return whether resampling leaves the axis unchanged (so it can be skipped)."""
    return (
        math.isclose(target.scale, 1.0)
        and target.out_len == in_len
        and (
            attrs.coord_mode != "tf_crop_and_resize"
            or (math.isclose(roi[0], 0.0, abs_tol=1e-12) and math.isclose(roi[1], 1.0))
        )
    )


def _resize_planner(node: NodeInfo, attrs: _ResizeAttrs) -> Callable[..., list[_AxisPlan]]:
    """Return ``plan(in_shape, scales, sizes, roi) -> [_AxisPlan]``, cached per argument set.

    ``scales``/``sizes``/``roi`` are tuples or None; they refer to ``attrs.axes`` (all axes
    when None), the roi as starts then ends.
    """
    cache: dict[tuple, list[_AxisPlan]] = {}
    where = node.describe()

    def plan(in_shape: tuple[int, ...], scales: Any, sizes: Any, roi: Any) -> list[_AxisPlan]:
        key = (in_shape, scales, sizes, roi)
        plans = cache.get(key)
        if plans is not None:
            return plans
        rank = len(in_shape)
        axes = _normalize_axes(node, attrs.axes, rank) if attrs.axes else tuple(range(rank))
        targets = _resize_targets(node, attrs, in_shape, axes, scales, sizes)
        crop = attrs.coord_mode == "tf_crop_and_resize"
        if crop and (roi is None or len(roi) != 2 * len(axes)):
            raise ValueError(
                f"{where}: tf_crop_and_resize needs a roi of {2 * len(axes)} values, got {roi}"
            )
        plans = []
        for i, target in enumerate(targets):
            in_len = in_shape[target.axis]
            axis_roi = (float(roi[i]), float(roi[i + len(axes)])) if crop else (0.0, 1.0)
            if _is_identity(attrs, target, in_len, axis_roi):
                continue
            if in_len == 0 and target.out_len:
                raise ValueError(f"{where}: cannot resize the empty axis {target.axis}")
            plans.append(_axis_plan(attrs, target, in_len, axis_roi))
        if len(cache) > 64:
            cache.clear()
        cache[key] = plans
        return plans

    return plan


def _fill_outside(xp: Any, y: Any, plan: _AxisPlan, value: Any) -> Any:
    """Set the outputs ``plan.outside`` marks along ``plan.axis`` to ``value``."""
    shape = [1] * y.ndim
    shape[plan.axis] = -1
    mask = xp.asarray(plan.outside).reshape(shape)
    return xp.where(mask, xp.asarray(value, dtype=y.dtype), y)


def _filter_axis(xp: Any, y: Any, plan: _AxisPlan) -> Any:
    """Return ``y`` resampled along ``plan.axis``: a weighted sum over the filter taps."""
    shape = [1] * y.ndim
    shape[plan.axis] = -1
    index = xp.asarray(plan.index)
    weight = xp.asarray(plan.weight.astype(y.dtype))
    total = None
    for tap in range(index.shape[1]):  # loop over filter taps, each a gather along the axis
        term = xp.take(y, index[:, tap], axis=plan.axis)
        term *= weight[:, tap].reshape(shape)
        if total is None:
            total = term
        else:
            total += term
    return total


def _resample(xp: Any, x: Any, plans: list[_AxisPlan], attrs: _ResizeAttrs) -> Any:
    """Apply the axis plans to ``x`` and return the result in ``x``'s dtype."""
    if not plans:
        return xp.array(x, copy=True)
    if attrs.mode == "nearest":
        y = x
        for plan in plans:
            y = xp.take(y, xp.asarray(plan.index), axis=plan.axis)
            if plan.outside is not None:
                fill = np.asarray(attrs.extrapolation).astype(x.dtype)
                y = _fill_outside(xp, y, plan, fill)
        return y
    y = x.astype(_compute_dtype(x.dtype), copy=False)
    for plan in plans:
        y = _filter_axis(xp, y, plan)
        if plan.outside is not None:
            y = _fill_outside(xp, y, plan, attrs.extrapolation)
    return _cast_result(xp, y, x.dtype)


def _optional_floats(value: Any) -> tuple[float, ...] | None:
    """Return a host float tensor as a tuple, or None when omitted or empty."""
    if value is None or np.asarray(value).size == 0:
        return None
    return tuple(float(v) for v in np.asarray(value, dtype=np.float64).reshape(-1))


def _optional_ints(value: Any) -> tuple[int, ...] | None:
    """Return a host int tensor as a tuple, or None when omitted or empty."""
    if value is None or np.asarray(value).size == 0:
        return None
    return _host_ints(value)


@kernels.register("Resize", since=10, until=10, host_inputs=(1,))
def resize_10(node: NodeInfo) -> Callable[..., tuple]:
    """Resize 10: nearest/linear resampling by ``scales``, asymmetric coordinates."""
    xp = node.xp
    attrs = _legacy_resize_attrs(node, ("nearest", "linear"))
    plan = _resize_planner(node, attrs)

    def compute(x: Any, scales: Any) -> tuple:
        plans = plan(tuple(x.shape), _optional_floats(scales), None, None)
        return (_resample(xp, x, plans, attrs),)

    return compute


@kernels.register("Resize", since=11, host_inputs=(1, 2, 3))
def resize(node: NodeInfo) -> Callable[..., tuple]:
    """Resize 11+: nearest/linear/cubic resampling by ``scales`` or ``sizes``.

    Covers every coordinate_transformation_mode (tf_crop_and_resize with ``roi`` and
    extrapolation_value), nearest_mode, cubic_coeff_a, exclude_outside, and from 18 on
    antialias, axes and keep_aspect_ratio_policy.
    """
    xp = node.xp
    attrs = _resize_attrs(node)
    plan = _resize_planner(node, attrs)

    def compute(x: Any, roi: Any = None, scales: Any = None, sizes: Any = None) -> tuple:
        plans = plan(
            tuple(x.shape), _optional_floats(scales), _optional_ints(sizes),
            _optional_floats(roi),
        )
        return (_resample(xp, x, plans, attrs),)

    return compute


def _upsample_scales_check(node: NodeInfo, scales: tuple[float, ...]) -> None:
    """Raise ValueError unless every Upsample scale is at least 1."""
    if any(not s >= 1 for s in scales):
        raise ValueError(f"{node.describe()}: Upsample scales must be >= 1, got {scales}")


@kernels.register("Upsample", since=1, until=8)
def upsample_static(node: NodeInfo) -> Callable[..., tuple]:
    """Upsample 1, 7: nearest/(bi)linear upsampling by attribute scales (1: height_scale and
    width_scale of an NCHW input; 7: one scale per axis)."""
    xp = node.xp
    if node.since_version < 7:
        attrs = _legacy_resize_attrs(node, ("nearest", "bilinear"))
        try:
            scales = (1.0, 1.0, float(node.attrs["height_scale"]), float(node.attrs["width_scale"]))
        except KeyError as exc:
            raise ValueError(f"{node.describe()}: attribute {exc} is required") from exc
    else:
        attrs = _legacy_resize_attrs(node, ("nearest", "linear"))
        if not node.attrs.get("scales"):
            raise ValueError(f"{node.describe()}: attribute scales is required")
        scales = tuple(float(s) for s in node.attrs["scales"])
    _upsample_scales_check(node, scales)
    plan = _resize_planner(node, attrs)

    def compute(x: Any) -> tuple:
        return (_resample(xp, x, plan(tuple(x.shape), scales, None, None), attrs),)

    return compute


@kernels.register("Upsample", since=9, host_inputs=(1,))
def upsample(node: NodeInfo) -> Callable[..., tuple]:
    """Upsample 9, 10: nearest/linear upsampling by the ``scales`` input (each >= 1)."""
    xp = node.xp
    attrs = _legacy_resize_attrs(node, ("nearest", "linear"))
    plan = _resize_planner(node, attrs)

    def compute(x: Any, scales: Any) -> tuple:
        values = _optional_floats(scales)
        if values is not None:
            _upsample_scales_check(node, values)
        return (_resample(xp, x, plan(tuple(x.shape), values, None, None), attrs),)

    return compute


# --------------------------------------------------------------------------------------------
# GridSample / AffineGrid
# --------------------------------------------------------------------------------------------

_PADDING_MODES = ("zeros", "border", "reflection")


def _reflect(xp: Any, x: Any, low: float, high: float) -> Any:
    """Reflect coordinates ``x`` off the borders ``low``/``high`` until they lie between."""
    span = high - low
    if span <= 0:
        return xp.full_like(x, low)
    below = x < low
    distance = xp.where(below, low - x, x - high)
    flips = xp.floor(distance / span)
    rest = distance - flips * span
    even = flips % 2 == 0
    from_low, from_high = low + rest, high - rest
    reflected = xp.where(below, xp.where(even, from_low, from_high),
                         xp.where(even, from_high, from_low))
    return xp.where(below | (x > high), reflected, x)


@dataclass(frozen=True)
class _AxisTaps:
    """Interpolation taps along one spatial axis for every sampling point (..., taps)."""

    index: Any  # int64 source indices, inside the axis
    weight: Any  # filter weights (None for nearest)
    valid: Any  # bool: tap inside the axis (zeros padding only), else None


def _grid_axis_taps(
    xp: Any, x: Any, size: int, mode: str, padding: str, align: bool
) -> _AxisTaps:
    """Return the taps of GridSample along one axis of ``size`` at pixel coordinates ``x``.

    As in PyTorch (and ONNX Runtime), nearest and linear modes move coordinates outside the
    borders in (clamp or reflect) before interpolating; cubic mode pads each of its taps.
    """
    low, high = (0.0, size - 1.0) if align else (-0.5, size - 0.5)
    if mode == "nearest":
        x = xp.rint(x)
    if mode != "cubic":
        outside = (x < low) | (x > high)
        if padding == "border":
            x = xp.where(outside, xp.clip(x, 0, size - 1), x)
        elif padding == "reflection":
            x = xp.where(outside, _reflect(xp, x, low, high), x)
    if mode == "nearest":
        index, weight = xp.trunc(x)[..., None], None
    else:
        base = xp.floor(x)
        t = (x - base)[..., None]
        if mode == "linear":
            offsets = xp.asarray([0.0, 1.0], dtype=x.dtype)
            weight = xp.concatenate([1 - t, t], axis=-1)
        else:
            offsets = xp.asarray([-1.0, 0.0, 1.0, 2.0], dtype=x.dtype)
            weight = _cubic_kernel(xp, offsets - t, -0.75).astype(x.dtype, copy=False)
        index = base[..., None] + offsets
    index = xp.nan_to_num(index)
    valid = None
    if padding == "zeros":
        valid = (index >= 0) & (index <= size - 1)
    elif padding == "reflection":
        index = xp.trunc(_reflect(xp, index, low, high))
    index = xp.clip(index, 0, size - 1).astype(np.int64)
    return _AxisTaps(index, weight, valid)


def _gather_interpolate(
    xp: Any, data: Any, taps: list[_AxisTaps], spatial: tuple[int, ...], out_dtype: np.dtype
) -> Any:
    """Interpolate ``data`` (N, C, prod(spatial)) at points with per-axis ``taps`` of shape
    (N, P, taps): sum over all tap combinations of weight products times gathered values.
    Returns (N, C, P) in ``out_dtype`` (nearest: one tap, values as they are)."""
    strides = [math.prod(spatial[i + 1:]) for i in range(len(spatial))]
    total = None
    for combo in itertools.product(*(range(t.index.shape[-1]) for t in taps)):
        flat = sum(t.index[..., k] * s for t, k, s in zip(taps, combo, strides))
        values = xp.take_along_axis(data, flat[:, None, :], axis=2)
        valid = None
        for t, k in zip(taps, combo):
            if t.valid is not None:
                valid = t.valid[..., k] if valid is None else valid & t.valid[..., k]
        if valid is not None:
            values = xp.where(valid[:, None, :], values, xp.zeros((), dtype=values.dtype))
        if taps[0].weight is None:  # nearest: a single tap
            return values
        weight = taps[0].weight[..., combo[0]]
        for t, k in zip(taps[1:], combo[1:]):
            weight = weight * t.weight[..., k]
        term = values.astype(out_dtype, copy=False) * weight[:, None, :].astype(out_dtype)
        total = term if total is None else total + term
    return total


@kernels.register("GridSample", since=16)
def grid_sample(node: NodeInfo) -> Callable[..., tuple]:
    """GridSample 16+: sample X at normalized grid positions (16: 4-D, bilinear/nearest/bicubic;
    20+: N-d, linear/nearest/cubic) with zeros/border/reflection padding."""
    xp = node.xp
    where = node.describe()
    legacy = node.since_version < 20
    names = {"bilinear": "linear", "nearest": "nearest", "bicubic": "cubic"} if legacy else {
        "linear": "linear", "nearest": "nearest", "cubic": "cubic"}
    mode_name = _str_attr(node, "mode", "bilinear" if legacy else "linear")
    if mode_name not in names:
        raise ValueError(f"{where}: mode must be one of {tuple(names)}, got {mode_name!r}")
    mode = names[mode_name]
    padding = _str_attr(node, "padding_mode", "zeros")
    if padding not in _PADDING_MODES:
        raise ValueError(f"{where}: padding_mode must be one of {_PADDING_MODES}")
    align = bool(node.attrs.get("align_corners", 0))

    def compute(x: Any, grid: Any) -> tuple:
        n, c = x.shape[:2]
        spatial = tuple(x.shape[2:])
        rank = len(spatial)
        if legacy and x.ndim != 4:
            raise ValueError(f"{where}: X must be 4-D before opset 20, got shape {x.shape}")
        if grid.ndim != rank + 2 or grid.shape[0] != n or grid.shape[-1] != rank:
            raise ValueError(f"{where}: grid of shape {grid.shape} does not fit X {x.shape}")
        out_spatial = tuple(grid.shape[1:-1])
        if n * c * math.prod(out_spatial) == 0:
            return (xp.zeros((n, c) + out_spatial, dtype=x.dtype),)
        if math.prod(spatial) == 0:
            raise ValueError(f"{where}: cannot sample the empty input of shape {x.shape}")
        gdt = _compute_dtype(grid.dtype)
        g = grid.reshape(n, -1, rank).astype(gdt, copy=False)
        taps = []
        for i, size in enumerate(spatial):
            norm = g[..., rank - 1 - i]  # grid lists the innermost axis first
            if align:
                coord = (norm + 1) / 2 * (size - 1)
            else:
                coord = ((norm + 1) * size - 1) / 2
            taps.append(_grid_axis_taps(xp, coord, size, mode, padding, align))
        out_dtype = x.dtype if mode == "nearest" else _compute_dtype(x.dtype)
        y = _gather_interpolate(xp, x.reshape(n, c, -1), taps, spatial, out_dtype)
        y = y.reshape((n, c) + out_spatial)
        return (y if mode == "nearest" else _cast_result(xp, y, x.dtype),)

    return compute


def _affine_base_grid(spatial: tuple[int, ...], align: bool, dtype: np.dtype) -> np.ndarray:
    """Return the homogeneous base grid (prod(spatial), rank + 1): normalized coordinates,
    innermost axis first, then a column of ones."""
    coords = []
    for size in spatial:
        if size <= 1:
            coords.append(np.zeros(size, dtype=np.float64))
        elif align:
            coords.append(np.linspace(-1.0, 1.0, size))
        else:
            coords.append((2 * np.arange(size, dtype=np.float64) + 1) / size - 1)
    mesh = np.meshgrid(*coords, indexing="ij")
    columns = [m.reshape(-1) for m in reversed(mesh)] + [np.ones(math.prod(spatial))]
    return np.stack(columns, axis=-1).astype(dtype)


@kernels.register("AffineGrid", since=20, host_inputs=(1,))
def affine_grid(node: NodeInfo) -> Callable[..., tuple]:
    """AffineGrid 20+: the sampling grid (N, *spatial, r) of affine matrices theta."""
    xp = node.xp
    align = bool(node.attrs.get("align_corners", 0))
    bases: dict[tuple, Any] = {}

    def compute(theta: Any, size: Any) -> tuple:
        dims = _host_ints(size)
        rank = len(dims) - 2
        n = dims[0]
        if rank not in (2, 3) or tuple(theta.shape) != (n, rank, rank + 1):
            raise ValueError(
                f"{node.describe()}: theta of shape {theta.shape} does not fit size {dims}"
            )
        cdt = _compute_dtype(theta.dtype)
        key = (dims[2:], cdt)
        if key not in bases:
            bases[key] = xp.asarray(_affine_base_grid(dims[2:], align, cdt))
        t = theta.astype(cdt, copy=False)
        grid = xp.matmul(bases[key][None], t.transpose(0, 2, 1))  # (N, P, rank)
        return (grid.reshape((n,) + dims[2:] + (rank,)).astype(theta.dtype, copy=False),)

    return compute


# --------------------------------------------------------------------------------------------
# RoiAlign / MaxRoiPool
# --------------------------------------------------------------------------------------------


def _roi_axis_samples(pos: np.ndarray, size: int) -> tuple[np.ndarray, ...]:
    """Return (low index, high index, low weight, high weight) of bilinear sampling at
    ``pos`` along an axis of ``size``, with RoiAlign's border rules: samples beyond
    [-1, size] weigh nothing, others clamp into the axis."""
    valid = (pos >= -1.0) & (pos <= size)
    pos = np.maximum(pos, 0)
    low = np.floor(pos).astype(np.int64)
    at_end = low >= size - 1
    low = np.where(at_end, size - 1, low)
    high = np.where(at_end, size - 1, low + 1)
    pos = np.where(at_end, low.astype(pos.dtype), pos)
    frac = pos - low
    w_low = np.where(valid, 1 - frac, 0).astype(pos.dtype)
    w_high = np.where(valid, frac, 0).astype(pos.dtype)
    return np.where(valid, low, 0), np.where(valid, high, 0), w_low, w_high


def _sample_positions(start: np.ndarray, bin_size: np.ndarray, bins: int, grid: int) -> Any:
    """Return the sampling positions (rois, bins, grid) of RoIs along one axis: ``grid``
    evenly spaced points inside each of ``bins`` bins."""
    dtype = start.dtype
    cell = np.arange(bins, dtype=dtype)[None, :, None] * bin_size[:, None, None]
    step = (np.arange(grid, dtype=dtype) + dtype.type(0.5))[None, None, :]
    step = step * bin_size[:, None, None] / dtype.type(grid)
    return start[:, None, None] + cell + step


def _roi_align_group(
    xp: Any, features: Any, batch: np.ndarray, boxes: np.ndarray, out_hw: tuple[int, int],
    grid_hw: tuple[int, int], use_max: bool,
) -> Any:
    """Pool RoIs that share one sampling grid: ``features`` (N, H, W, C), ``boxes`` rows
    (start_w, start_h, bin_w, bin_h). Returns (rois, C, out_h, out_w)."""
    height, width = features.shape[1:3]
    (out_h, out_w), (grid_h, grid_w) = out_hw, grid_hw
    ys = _roi_axis_samples(_sample_positions(boxes[:, 1], boxes[:, 3], out_h, grid_h), height)
    xs = _roi_axis_samples(_sample_positions(boxes[:, 0], boxes[:, 2], out_w, grid_w), width)
    images = xp.asarray(batch[:, None, None, None, None])
    result = None
    for (rows, w_rows), (cols, w_cols) in itertools.product(
        ((ys[0], ys[2]), (ys[1], ys[3])), ((xs[0], xs[2]), (xs[1], xs[3]))
    ):  # the 4 corners of bilinear interpolation
        weight = w_rows[:, :, :, None, None] * w_cols[:, None, None, :, :]
        values = features[images, xp.asarray(rows[:, :, :, None, None]),
                          xp.asarray(cols[:, None, None, :, :])]  # (R, oh, gh, ow, gw, C)
        term = values * xp.asarray(weight[..., None])
        if result is None:
            result = term
        elif use_max:
            result = xp.maximum(result, term)
        else:
            result += term
    if use_max:
        pooled = result.max(axis=(2, 4))
    else:
        pooled = result.sum(axis=(2, 4)) / features.dtype.type(grid_h * grid_w)
    return pooled.transpose(0, 3, 1, 2)


@kernels.register("RoiAlign", since=10, host_inputs=(1, 2))
def roi_align(node: NodeInfo) -> Callable[..., tuple]:
    """RoiAlign 10+: average or max of bilinear samples over each bin of each RoI.

    Before 16 (and with coordinate_transformation_mode='output_half_pixel') RoI coordinates are
    not shifted by -0.5 and malformed RoIs are forced to 1x1.
    """
    xp = node.xp
    where = node.describe()
    mode = _str_attr(node, "mode", "avg")
    if mode not in ("avg", "max"):
        raise ValueError(f"{where}: mode must be 'avg' or 'max', got {mode!r}")
    transform = "output_half_pixel"
    if node.since_version >= 16:
        transform = _str_attr(node, "coordinate_transformation_mode", "half_pixel")
    if transform not in ("half_pixel", "output_half_pixel"):
        raise ValueError(f"{where}: unknown coordinate_transformation_mode {transform!r}")
    half_pixel = transform == "half_pixel"
    out_hw = (int(node.attrs.get("output_height", 1)), int(node.attrs.get("output_width", 1)))
    sampling_ratio = int(node.attrs.get("sampling_ratio", 0))
    spatial_scale = float(node.attrs.get("spatial_scale", 1.0))
    if min(out_hw) < 1 or sampling_ratio < 0:
        raise ValueError(f"{where}: output sizes must be positive, sampling_ratio >= 0")

    def compute(x: Any, rois: Any, batch_indices: Any) -> tuple:
        if x.ndim != 4:
            raise ValueError(f"{where}: X must be 4-D, got shape {x.shape}")
        rois = np.asarray(rois)
        batch = np.asarray(batch_indices).reshape(-1).astype(np.int64)
        if rois.ndim != 2 or rois.shape[1] != 4 or rois.shape[0] != batch.size:
            raise ValueError(
                f"{where}: rois {rois.shape} and batch_indices {batch.shape} do not match"
            )
        if batch.size and (batch.min() < 0 or batch.max() >= x.shape[0]):
            raise ValueError(f"{where}: batch_indices out of range [0, {x.shape[0]})")
        cdt = _compute_dtype(x.dtype)
        corners = rois.astype(cdt) * cdt.type(spatial_scale) - cdt.type(0.5 if half_pixel else 0)
        sizes = corners[:, 2:] - corners[:, :2]  # (width, height) of each RoI
        if not half_pixel:  # output_half_pixel: malformed RoIs are forced to 1x1
            sizes = np.maximum(sizes, cdt.type(1))
        bins = sizes / np.array([out_hw[1], out_hw[0]], dtype=cdt)
        if sampling_ratio > 0:
            grids = np.full((batch.size, 2), sampling_ratio, dtype=np.int64)
        else:
            grids = np.ceil(bins).astype(np.int64)
        y = xp.zeros((batch.size, x.shape[1]) + out_hw, dtype=cdt)
        if y.size == 0 or x.shape[2] == 0 or x.shape[3] == 0:
            return (y.astype(x.dtype, copy=False),)
        features = xp.ascontiguousarray(x.astype(cdt, copy=False).transpose(0, 2, 3, 1))
        boxes = np.concatenate([corners[:, :2], bins], axis=1)
        per_roi = math.prod(out_hw) * x.shape[1]
        for grid_w, grid_h in np.unique(grids, axis=0):  # RoIs grouped by sampling grid
            if grid_w <= 0 or grid_h <= 0:
                continue  # no samples: the output stays 0
            members = np.flatnonzero((grids[:, 0] == grid_w) & (grids[:, 1] == grid_h))
            chunk = max(1, (1 << 22) // (per_roi * int(grid_h) * int(grid_w)))
            for first in range(0, members.size, chunk):  # bounded temporary memory
                part = members[first:first + chunk]
                y[xp.asarray(part)] = _roi_align_group(
                    xp, features, batch[part], boxes[part], out_hw,
                    (int(grid_h), int(grid_w)), mode == "max")
        return (y.astype(x.dtype, copy=False),)

    return compute


def _round_half_away(values: np.ndarray) -> np.ndarray:
    """Round half away from zero (C's ``round``) to int64."""
    return (np.sign(values) * np.floor(np.abs(values) + 0.5)).astype(np.int64)


def _roi_bins(start: int, length: int, bins: int, limit: int, dtype: np.dtype) -> tuple:
    """Return (starts, ends) of the ``bins`` pooling bins of a RoI along one axis."""
    bin_size = dtype.type(length) / dtype.type(bins)
    k = np.arange(bins, dtype=dtype)
    starts = np.floor(k * bin_size).astype(np.int64) + start
    ends = np.ceil((k + 1) * bin_size).astype(np.int64) + start
    return np.clip(starts, 0, limit), np.clip(ends, 0, limit)


def _bin_max(xp: Any, values: Any, starts: np.ndarray, ends: np.ndarray, axis: int) -> Any:
    """Return the max of ``values`` over each bin [starts[k], ends[k]) along ``axis`` (bins
    on that axis, in place of it). A loop over the offsets within the widest bin: each step
    reads one element per bin, repeating a bin's last element once it is exhausted."""
    result = None
    for offset in range(int((ends - starts).max())):
        index = np.maximum(np.minimum(starts + offset, ends - 1), starts)
        index = np.clip(index, 0, values.shape[axis] - 1)  # empty bins: any element
        step = xp.take(values, xp.asarray(index), axis=axis)
        result = step if result is None else xp.maximum(result, step)
    return result


def _max_roi_pool_one(xp: Any, feature: Any, box: np.ndarray, pooled: tuple[int, int]) -> Any:
    """Max-pool one RoI (x1, y1, x2, y2 as ints) of ``feature`` (C, H, W) into bins."""
    c, height, width = feature.shape
    x1, y1, x2, y2 = (int(v) for v in box)
    dtype = np.dtype(np.float64) if feature.dtype == np.float64 else np.dtype(np.float32)
    h0, h1 = _roi_bins(y1, max(y2 - y1 + 1, 1), pooled[0], height, dtype)
    w0, w1 = _roi_bins(x1, max(x2 - x1 + 1, 1), pooled[1], width, dtype)
    empty = (h1 <= h0)[:, None] | (w1 <= w0)[None, :]
    if empty.all():
        return xp.zeros((c,) + pooled, dtype=feature.dtype)
    top, left = int(h0.min()), int(w0.min())
    region = feature[:, top:int(h1.max()), left:int(w1.max())]
    by_col = _bin_max(xp, region, w0 - left, np.maximum(w1, w0 + 1) - left, axis=2)
    by_row = _bin_max(xp, by_col, h0 - top, np.maximum(h1, h0 + 1) - top, axis=1)
    return xp.where(xp.asarray(empty), xp.zeros((), dtype=feature.dtype), by_row)


@kernels.register("MaxRoiPool", since=1, host_inputs=(1,))
def max_roi_pool(node: NodeInfo) -> Callable[..., tuple]:
    """MaxRoiPool 1+: max over each bin of each RoI [batch_id, x1, y1, x2, y2] (corners
    rounded after scaling; empty bins give 0)."""
    xp = node.xp
    where = node.describe()
    pooled_shape = node.attrs.get("pooled_shape")
    if not pooled_shape or len(pooled_shape) != 2 or min(pooled_shape) < 1:
        raise ValueError(f"{where}: pooled_shape must be two positive ints, got {pooled_shape}")
    pooled = (int(pooled_shape[0]), int(pooled_shape[1]))
    spatial_scale = float(node.attrs.get("spatial_scale", 1.0))

    def compute(x: Any, rois: Any) -> tuple:
        rois = np.asarray(rois)
        if x.ndim != 4 or rois.ndim != 2 or rois.shape[1] != 5:
            raise ValueError(f"{where}: X {x.shape} must be 4-D and rois (num_rois, 5)")
        cdt = _compute_dtype(rois.dtype)
        batch = rois[:, 0].astype(np.int64)
        if batch.size and (batch.min() < 0 or batch.max() >= x.shape[0]):
            raise ValueError(f"{where}: RoI batch ids out of range [0, {x.shape[0]})")
        corners = _round_half_away(rois[:, 1:].astype(cdt) * cdt.type(spatial_scale))
        y = xp.empty((rois.shape[0], x.shape[1]) + pooled, dtype=x.dtype)
        for r in range(rois.shape[0]):  # loop over RoIs: each has its own bins
            y[r] = _max_roi_pool_one(xp, x[int(batch[r])], corners[r], pooled)
        return (y,)

    return compute


# --------------------------------------------------------------------------------------------
# NonMaxSuppression
# --------------------------------------------------------------------------------------------


def _box_corners(boxes: np.ndarray, center_point_box: bool) -> np.ndarray:
    """Return boxes as (..., 4) [y_min, x_min, y_max, x_max]: corner boxes sorted per axis,
    center boxes [x_c, y_c, w, h] expanded (a negative extent stays inverted)."""
    if center_point_box:
        half_w, half_h = boxes[..., 2] / 2, boxes[..., 3] / 2
        x_c, y_c = boxes[..., 0], boxes[..., 1]
        return np.stack([y_c - half_h, x_c - half_w, y_c + half_h, x_c + half_w], axis=-1)
    y_min = np.minimum(boxes[..., 0], boxes[..., 2])
    y_max = np.maximum(boxes[..., 0], boxes[..., 2])
    x_min = np.minimum(boxes[..., 1], boxes[..., 3])
    x_max = np.maximum(boxes[..., 1], boxes[..., 3])
    return np.stack([y_min, x_min, y_max, x_max], axis=-1)


def _iou_exceeds(
    box: np.ndarray, area: Any, others: np.ndarray, areas: np.ndarray, threshold: float
) -> np.ndarray:
    """Return, per row of ``others`` (with ``areas``), whether its IoU with ``box`` (of
    ``area``) is above ``threshold``; boxes without a positive intersection or area never
    are."""
    inter_h = np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0])
    inter_w = np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1])
    inter = inter_h * inter_w
    union = area + areas - inter
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        iou = inter / union
    overlap = (inter_h > 0) & (inter_w > 0) & (inter > 0) & (areas > 0) & (union > 0)
    return overlap & (iou > threshold) if area > 0 else np.zeros(len(others), dtype=bool)


def _nms_one_class(
    corners: np.ndarray, scores: np.ndarray, limit: int, iou_threshold: float,
    score_threshold: float | None,
) -> np.ndarray:
    """Return the box indices greedy NMS keeps for one (batch, class), best first."""
    candidates = np.arange(scores.size)
    if score_threshold is not None:
        candidates = candidates[scores > score_threshold]
    order = candidates[np.argsort(-scores[candidates], kind="stable")]  # ties: lower index
    boxes = corners[order]
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    alive = np.ones(order.size, dtype=bool)
    kept: list[int] = []
    position = 0
    while len(kept) < limit and position < order.size:  # one step per kept box
        rest = alive[position:]
        if not rest.any():
            break
        position += int(np.argmax(rest))
        kept.append(int(order[position]))
        later = slice(position + 1, None)
        alive[later] &= ~_iou_exceeds(
            boxes[position], areas[position], boxes[later], areas[later], iou_threshold)
        position += 1
    return np.asarray(kept, dtype=np.int64)


def _scalar(value: Any, kind: type) -> Any:
    """Return an optional scalar input as a Python value, or None when omitted or empty."""
    if value is None or np.asarray(value).size == 0:
        return None
    return kind(np.asarray(value).reshape(-1)[0])


@kernels.register("NonMaxSuppression", since=10, host_inputs=(0, 1, 2, 3, 4))
def non_max_suppression(node: NodeInfo) -> Callable[..., tuple]:
    """NonMaxSuppression 10+: greedy per-(batch, class) selection of high-scoring boxes whose
    IoU with every kept box is at most iou_threshold; rows [batch, class, box]."""
    xp = node.xp
    where = node.describe()
    center_point_box = int(node.attrs.get("center_point_box", 0))
    if center_point_box not in (0, 1):
        raise ValueError(f"{where}: center_point_box must be 0 or 1, got {center_point_box}")

    def compute(boxes: Any, scores: Any, max_output: Any = None, iou_threshold: Any = None,
                score_threshold: Any = None) -> tuple:
        boxes, scores = np.asarray(boxes), np.asarray(scores)
        if boxes.ndim != 3 or boxes.shape[2] != 4 or scores.ndim != 3 or (
            scores.shape[0] != boxes.shape[0] or scores.shape[2] != boxes.shape[1]
        ):
            raise ValueError(f"{where}: boxes {boxes.shape} and scores {scores.shape} mismatch")
        limit = _scalar(max_output, int) or 0
        iou = _scalar(iou_threshold, float) or 0.0
        if not 0.0 <= iou <= 1.0:
            raise ValueError(f"{where}: iou_threshold must be in [0, 1], got {iou}")
        min_score = _scalar(score_threshold, float)
        rows = []
        if limit > 0:
            corners = _box_corners(boxes, bool(center_point_box))
            for b, c in np.ndindex(scores.shape[0], scores.shape[1]):  # per (batch, class)
                kept = _nms_one_class(corners[b], scores[b, c], limit, iou, min_score)
                block = np.empty((kept.size, 3), dtype=np.int64)
                block[:, 0], block[:, 1], block[:, 2] = b, c, kept
                rows.append(block)
        result = np.concatenate(rows) if rows else np.empty((0, 3), dtype=np.int64)
        return (xp.asarray(result),)

    return compute


# --------------------------------------------------------------------------------------------
# MaxUnpool / Col2Im
# --------------------------------------------------------------------------------------------


def _spatial_attr(node: NodeInfo, name: str, nd: int, default: int) -> tuple[int, ...]:
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
    strides = _spatial_attr(node, "strides", nd, 1)
    pads = _spatial_attr(node, "pads", nd, 0)

    def compute(x: Any, indices: Any, output_shape: Any = None) -> tuple:
        if x.ndim != nd + 2 or tuple(indices.shape) != tuple(x.shape):
            raise ValueError(f"{where}: X {x.shape} and I {indices.shape} must match the "
                             f"{nd}-d kernel")
        if output_shape is not None and np.asarray(output_shape).size:
            shape = _host_ints(output_shape)
            if len(shape) != x.ndim:
                raise ValueError(f"{where}: output_shape {shape} must have rank {x.ndim}")
        else:
            shape = tuple(x.shape[:2]) + tuple(
                (x.shape[2 + i] - 1) * strides[i] - pads[i] - pads[i + nd] + kernel[i]
                for i in range(nd)
            )
        total = math.prod(shape)
        flat = indices.reshape(-1)
        if flat.size and (int(flat.min()) < 0 or int(flat.max()) >= total):
            raise ValueError(f"{where}: indices out of range for the output shape {shape}")
        y = xp.zeros(total, dtype=x.dtype)
        y[flat] = x.reshape(-1)
        return (y.reshape(shape),)

    return compute


@kernels.register("Col2Im", since=18, host_inputs=(1, 2))
def col2im(node: NodeInfo) -> Callable[..., tuple]:
    """Col2Im 18+: sum sliding-block columns (N, C*prod(block), L) back into images."""
    xp = node.xp
    where = node.describe()

    def compute(data: Any, image_shape: Any, block_shape: Any) -> tuple:
        image, block = _host_ints(image_shape), _host_ints(block_shape)
        nd = len(image)
        if len(block) != nd or min(block, default=1) < 1:
            raise ValueError(f"{where}: block_shape {block} does not fit image_shape {image}")
        strides = _spatial_attr(node, "strides", nd, 1)
        dilations = _spatial_attr(node, "dilations", nd, 1)
        pads = _spatial_attr(node, "pads", nd, 0)
        taps = math.prod(block)
        if data.ndim != 3 or data.shape[1] % taps:
            raise ValueError(f"{where}: input {data.shape} is not (N, C*{taps}, L)")
        padded = [image[i] + pads[i] + pads[i + nd] for i in range(nd)]
        blocks = [(padded[i] - dilations[i] * (block[i] - 1) - 1) // strides[i] + 1
                  for i in range(nd)]
        if min(blocks, default=1) < 1 or math.prod(blocks) != data.shape[2]:
            raise ValueError(
                f"{where}: input has {data.shape[2]} blocks, the geometry gives {blocks}"
            )
        n, channels = data.shape[0], data.shape[1] // taps
        work = data.dtype if data.dtype.kind in "iub" else _compute_dtype(data.dtype)
        cols = data.astype(work, copy=False).reshape((n, channels) + block + tuple(blocks))
        buf = xp.zeros((n, channels) + tuple(padded), dtype=work)
        lead = (slice(None), slice(None))
        for tap in np.ndindex(*block):  # loop over block taps, each a strided block add
            target = tuple(
                slice(t * d, t * d + (b - 1) * s + 1, s)
                for t, d, b, s in zip(tap, dilations, blocks, strides)
            )
            buf[lead + target] += cols[lead + tap]
        crop = tuple(slice(pads[i], pads[i] + image[i]) for i in range(nd))
        return (buf[lead + crop].astype(data.dtype),)

    return compute


# --------------------------------------------------------------------------------------------
# DeformConv
# --------------------------------------------------------------------------------------------


def _deform_base_positions(
    kernel: tuple[int, ...], out_shape: tuple[int, ...], strides: tuple[int, ...],
    dilations: tuple[int, ...], pads_begin: tuple[int, ...], dtype: np.dtype,
) -> np.ndarray:
    """Return the undeformed sampling positions (taps, nd, prod(out_shape)) of every kernel
    tap at every output position."""
    nd = len(kernel)
    out_grid = np.meshgrid(*(np.arange(o) for o in out_shape), indexing="ij")
    positions = np.empty((math.prod(kernel), nd, math.prod(out_shape)), dtype=dtype)
    for t, tap in enumerate(np.ndindex(*kernel)):
        for i in range(nd):
            starts = out_grid[i].reshape(-1) * strides[i] - pads_begin[i]
            positions[t, i] = starts + tap[i] * dilations[i]
    return positions


def _deform_sample(xp: Any, x: Any, positions: Any, offset_groups: int) -> Any:
    """Return N-linear samples of ``x`` (N, C, *spatial) at ``positions``
    (N, G, taps, nd, P) with zeros outside, as (N, C, taps * P)."""
    n, c = x.shape[:2]
    spatial = tuple(x.shape[2:])
    nd = len(spatial)
    taps_p = positions.shape[2] * positions.shape[4]
    data = x.reshape(n, offset_groups, c // offset_groups, -1)
    low = xp.floor(positions)
    frac = positions - low
    low = xp.nan_to_num(low)
    strides = [math.prod(spatial[i + 1:]) for i in range(nd)]
    total = None
    for corner in itertools.product((0, 1), repeat=nd):  # 2**nd corners of the cell
        flat = weight = valid = None
        for i, bit in enumerate(corner):
            index = low[:, :, :, i] + bit
            inside = (index >= 0) & (index <= spatial[i] - 1)
            part = frac[:, :, :, i] if bit else 1 - frac[:, :, :, i]
            term = xp.clip(index, 0, spatial[i] - 1).astype(np.int64) * strides[i]
            flat = term if flat is None else flat + term
            weight = part if weight is None else weight * part
            valid = inside if valid is None else valid & inside
        weight = xp.where(valid, weight, 0).reshape(n, offset_groups, 1, taps_p)
        values = xp.take_along_axis(data, flat.reshape(n, offset_groups, 1, taps_p), axis=3)
        contribution = values * weight
        total = contribution if total is None else total + contribution
    return total.reshape(n, c, taps_p)


@kernels.register("DeformConv", since=19)
def deform_conv(node: NodeInfo) -> Callable[..., tuple]:
    """DeformConv 19+: N-d convolution sampling X bilinearly at kernel taps moved by learned
    offsets (per offset group), optionally scaled by a mask, with groups and bias."""
    xp = node.xp
    where = node.describe()
    group = int(node.attrs.get("group", 1))
    offset_groups = int(node.attrs.get("offset_group", 1))
    if group < 1 or offset_groups < 1:
        raise ValueError(f"{where}: group and offset_group must be positive")
    kernel_attr = tuple(int(k) for k in node.attrs.get("kernel_shape") or ())
    bases: dict[tuple, Any] = {}

    def compute(x: Any, w: Any, offset: Any, b: Any = None, mask: Any = None) -> tuple:
        n, c = x.shape[:2]
        spatial = tuple(x.shape[2:])
        nd = len(spatial)
        kernel = tuple(w.shape[2:])
        oc = w.shape[0]
        if kernel_attr and kernel_attr != kernel:
            raise ValueError(f"{where}: kernel_shape {kernel_attr} does not match W {w.shape}")
        if c != w.shape[1] * group or oc % group or c % offset_groups:
            raise ValueError(f"{where}: X {x.shape} and W {w.shape} do not fit group={group}, "
                             f"offset_group={offset_groups}")
        strides = _spatial_attr(node, "strides", nd, 1)
        dilations = _spatial_attr(node, "dilations", nd, 1)
        pads = _spatial_attr(node, "pads", nd, 0)
        out_shape = tuple(
            (spatial[i] + pads[i] + pads[i + nd] - dilations[i] * (kernel[i] - 1) - 1)
            // strides[i] + 1
            for i in range(nd)
        )
        taps = math.prod(kernel)
        if tuple(offset.shape) != (n, offset_groups * taps * nd) + out_shape:
            raise ValueError(f"{where}: offset {offset.shape} does not fit output {out_shape}")
        if mask is not None and tuple(mask.shape) != (n, offset_groups * taps) + out_shape:
            raise ValueError(f"{where}: mask {mask.shape} does not fit output {out_shape}")
        cdt = _compute_dtype(x.dtype)
        points = math.prod(out_shape)
        key = (spatial, kernel, cdt)
        if key not in bases:
            bases[key] = xp.asarray(_deform_base_positions(
                kernel, out_shape, strides, dilations, pads[:nd], cdt))
        positions = bases[key][None, None] + offset.astype(cdt, copy=False).reshape(
            n, offset_groups, taps, nd, points)
        sampled = _deform_sample(xp, x.astype(cdt, copy=False), positions, offset_groups)
        if mask is not None:
            sampled = sampled.reshape(n, offset_groups, -1, taps * points)
            sampled = sampled * mask.astype(cdt, copy=False).reshape(
                n, offset_groups, 1, taps * points)
        cols = sampled.reshape(n, group, (c // group) * taps, points)
        wm = w.astype(cdt, copy=False).reshape(1, group, oc // group, -1)
        y = xp.matmul(wm, cols).reshape((n, oc) + out_shape)
        if b is not None:
            y = y + b.astype(cdt, copy=False).reshape((-1,) + (1,) * nd)
        return (y.astype(x.dtype, copy=False),)

    return compute


# --------------------------------------------------------------------------------------------
# Lp pooling and normalization
# --------------------------------------------------------------------------------------------


def _lp_power(xp: Any, x: Any, p: float) -> Any:
    """Return |x|**p (x*x for p=2)."""
    if p == 2:
        return x * x
    if p == 1:
        return xp.abs(x)
    return xp.abs(x) ** x.dtype.type(p)


def _lp_root(xp: Any, total: Any, p: float) -> Any:
    """Return total**(1/p) (sqrt for p=2)."""
    if p == 2:
        return xp.sqrt(total)
    if p == 1:
        return total
    return total ** total.dtype.type(1.0 / p)


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

    def compute(x: Any) -> tuple:
        shape = tuple(x.shape[2:])
        if shape not in plans:
            plans[shape] = window_geometry(node, wa, shape)
        geo = plans[shape]
        cdt = _compute_dtype(x.dtype)
        powered = _pad_spatial(xp, _lp_power(xp, x.astype(cdt, copy=False), p), geo, 0)
        lead = (slice(None), slice(None))
        total = xp.zeros(x.shape[:2] + geo.out_shape, dtype=cdt)
        for _, taps in tap_slices(geo, wa):  # loop over kernel taps, not elements
            total += powered[lead + taps]
        return (_lp_root(xp, total, p).astype(x.dtype, copy=False),)

    return compute


@kernels.register("GlobalLpPool", since=1)
def global_lp_pool(node: NodeInfo) -> Callable[..., tuple]:
    """GlobalLpPool 1+: (sum of |x|^p over all spatial axes)^(1/p), kept as size-1 dims."""
    xp = node.xp
    p = _lp_order(node)

    def compute(x: Any) -> tuple:
        cdt = _compute_dtype(x.dtype)
        axes = tuple(range(2, x.ndim))
        total = _lp_power(xp, x.astype(cdt, copy=False), p).sum(axis=axes, keepdims=True)
        return (_lp_root(xp, total, p).astype(x.dtype, copy=False),)

    return compute


@kernels.register("LpNormalization", since=1)
def lp_normalization(node: NodeInfo) -> Callable[..., tuple]:
    """LpNormalization 1+: x divided by its L1 or L2 norm along ``axis`` (0 where the norm
    is 0)."""
    xp = node.xp
    axis = int(node.attrs.get("axis", -1))
    p = int(node.attrs.get("p", 2))
    if p not in (1, 2):
        raise ValueError(f"{node.describe()}: p must be 1 or 2, got {p}")

    def compute(x: Any) -> tuple:
        if not -x.ndim <= axis < max(x.ndim, 1):
            raise ValueError(f"{node.describe()}: axis {axis} is out of range for {x.shape}")
        cdt = _compute_dtype(x.dtype)
        xc = x.astype(cdt, copy=False)
        norm = _lp_root(xp, _lp_power(xp, xc, p).sum(axis=axis, keepdims=True), p)
        safe = xp.where(norm == 0, cdt.type(1), norm)
        y = xp.where(norm == 0, cdt.type(0), xc / safe)
        return (y.astype(x.dtype, copy=False),)

    return compute


# --------------------------------------------------------------------------------------------
# CenterCropPad
# --------------------------------------------------------------------------------------------


@kernels.register("CenterCropPad", since=18, host_inputs=(1,))
def center_crop_pad(node: NodeInfo) -> Callable[..., tuple]:
    """CenterCropPad 18+: crop or zero-pad ``axes`` symmetrically to ``shape`` (the odd
    element cropped or padded at the end)."""
    xp = node.xp
    axes_attr = node.attrs.get("axes")

    def compute(x: Any, shape: Any) -> tuple:
        target = _host_ints(shape)
        axes = _normalize_axes(node, axes_attr, x.ndim) if axes_attr else tuple(range(x.ndim))
        if len(target) != len(axes) or min(target, default=0) < 0:
            raise ValueError(f"{node.describe()}: shape {target} does not fit axes {axes}")
        out_shape = list(x.shape)
        source = [slice(None)] * x.ndim
        dest = [slice(None)] * x.ndim
        for axis, size in zip(axes, target):
            dim = x.shape[axis]
            out_shape[axis] = size
            if size < dim:
                start = (dim - size) // 2
                source[axis] = slice(start, start + size)
            elif size > dim:
                start = (size - dim) // 2
                dest[axis] = slice(start, start + dim)
        if x.dtype == object:
            y = np.full(out_shape, "", dtype=object)
        else:
            y = xp.zeros(out_shape, dtype=x.dtype)
        y[tuple(dest)] = x[tuple(source)]
        return (y,)

    return compute


# --------------------------------------------------------------------------------------------
# ImageDecoder
# --------------------------------------------------------------------------------------------

_PIXEL_FORMATS = {"RGB": 3, "BGR": 3, "Grayscale": 1}


@kernels.register("ImageDecoder", since=20, host_inputs=(0,))
def image_decoder(node: NodeInfo) -> Callable[..., tuple]:
    """ImageDecoder 20+: decode an encoded image (BMP, JPEG, JPEG2000, TIFF, PNG, WebP, PNM)
    with Pillow to (H, W, C) uint8 RGB, BGR or Grayscale; an undecodable stream gives an
    empty (0, 0, C) image."""
    xp = node.xp
    pixel_format = _str_attr(node, "pixel_format", "RGB")
    if pixel_format not in _PIXEL_FORMATS:
        raise ValueError(
            f"{node.describe()}: pixel_format must be one of {tuple(_PIXEL_FORMATS)}, "
            f"got {pixel_format!r}"
        )
    try:
        import PIL.Image  # noqa: PLC0415 (optional dependency, imported only when needed)
    except ImportError as exc:
        raise ImportError(
            f"{node.describe()} decodes images with Pillow, which is not installed: "
            "pip install pillow"
        ) from exc
    channels = _PIXEL_FORMATS[pixel_format]
    failures = (OSError, ValueError, SyntaxError, EOFError, PIL.Image.DecompressionBombError)

    def compute(encoded: Any) -> tuple:
        stream = io.BytesIO(np.asarray(encoded, dtype=np.uint8).tobytes())
        try:
            with PIL.Image.open(stream) as img:
                if pixel_format == "Grayscale":
                    image = np.asarray(img.convert("L"))[:, :, None]
                else:
                    image = np.asarray(img.convert("RGB"))
        except failures:
            image = np.zeros((0, 0, channels), dtype=np.uint8)
        if pixel_format == "BGR":
            image = image[:, :, ::-1]
        return (xp.asarray(np.asarray(image, dtype=np.uint8, order="C")),)

    return compute
