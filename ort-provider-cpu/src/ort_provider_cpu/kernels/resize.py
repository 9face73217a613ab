"""CPU kernels: Resize and Upsample, the image family's resampling of tensors to new sizes
(nearest, linear and cubic, with every coordinate transformation mode).

Resize and Upsample are separable: each resized axis gets a plan of source indices and weights
(one tap for nearest, 2 or 4 for linear/cubic, more when antialiasing stretches the filter),
applied as a loop over taps of ``take`` along that axis. Sampling coordinates are computed in
float32 like ONNX Runtime, whose rounding decides nearest-mode ties. The CUDA provider runs
these kernels with their host tables cached on the device.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ort.ep import KernelTable, NodeInfo

from .float_work import wide_work_dtype
from .kernel_args import host_ints, normalize_axes
from .nn_common import cast_result, cubic_kernel, str_attr

kernels = KernelTable()


def _linear_kernel(xp: Any, d: Any) -> Any:
    """Return the triangle (linear interpolation) filter at distances ``d``."""
    return xp.clip(1.0 - xp.abs(d), 0.0, None)


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
    mode = str_attr(node, "mode", "nearest")
    if mode not in modes:
        raise ValueError(f"{node.describe()}: mode must be one of {modes}, got {mode!r}")
    mode = "linear" if mode == "bilinear" else mode
    return _ResizeAttrs(mode, "asymmetric", "simple", -0.75, False, 0.0, False, None, "stretch")


def _resize_attrs(node: NodeInfo) -> _ResizeAttrs:
    """Read and validate the attributes of a Resize-11+ node."""
    where = node.describe()
    version = node.since_version
    mode = str_attr(node, "mode", "nearest")
    if mode not in _RESIZE_MODES:
        raise ValueError(f"{where}: mode must be one of {_RESIZE_MODES}, got {mode!r}")
    coord_mode = str_attr(node, "coordinate_transformation_mode", "half_pixel")
    coord_modes = _COORD_MODES + (("half_pixel_symmetric",) if version >= 19 else ())
    if coord_mode not in coord_modes:
        raise ValueError(
            f"{where}: coordinate_transformation_mode must be one of {coord_modes}, "
            f"got {coord_mode!r}"
        )
    nearest_mode = str_attr(node, "nearest_mode", "round_prefer_floor")
    if nearest_mode not in _NEAREST_MODES:
        raise ValueError(f"{where}: nearest_mode must be one of {_NEAREST_MODES}")
    policy = str_attr(node, "keep_aspect_ratio_policy", "stretch")
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
        weight = cubic_kernel(np, distance, attrs.cubic_a)
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
    """Return ``plan(in_shape, scales, sizes, roi, dtype) -> [_AxisPlan]``, cached per
    argument set.

    ``scales``/``sizes``/``roi`` are tuples or None; they refer to ``attrs.axes`` (all axes
    when None), the roi as starts then ends. ``dtype`` (the input's) sizes the output for the
    output-size limit, checked before any table is built.
    """
    cache: dict[tuple, list[_AxisPlan]] = {}
    where = node.describe()

    def plan(in_shape: tuple[int, ...], scales: Any, sizes: Any, roi: Any,
             dtype: Any) -> list[_AxisPlan]:
        key = (in_shape, scales, sizes, roi, dtype)
        plans = cache.get(key)
        if plans is not None:
            return plans
        rank = len(in_shape)
        axes = normalize_axes(node, attrs.axes, rank) if attrs.axes else tuple(range(rank))
        targets = _resize_targets(node, attrs, in_shape, axes, scales, sizes)
        out_shape = list(in_shape)
        for target in targets:
            out_shape[target.axis] = target.out_len
        node.check_output_size(
            out_shape, dtype if attrs.mode == "nearest" else wide_work_dtype(dtype))
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
    y = x.astype(wide_work_dtype(x.dtype), copy=False)
    for plan in plans:
        y = _filter_axis(xp, y, plan)
        if plan.outside is not None:
            y = _fill_outside(xp, y, plan, attrs.extrapolation)
    return cast_result(xp, y, x.dtype)


def _optional_floats(value: Any) -> tuple[float, ...] | None:
    """Return a host float tensor as a tuple, or None when omitted or empty."""
    if value is None or np.asarray(value).size == 0:
        return None
    return tuple(float(v) for v in np.asarray(value, dtype=np.float64).reshape(-1))


def _optional_ints(value: Any) -> tuple[int, ...] | None:
    """Return a host int tensor as a tuple, or None when omitted or empty."""
    if value is None or np.asarray(value).size == 0:
        return None
    return host_ints(value)


@kernels.register("Resize", since=10, until=10, host_inputs=(1,))
def resize_10(node: NodeInfo) -> Callable[..., tuple]:
    """Resize 10: nearest/linear resampling by ``scales``, asymmetric coordinates."""
    xp = node.xp
    attrs = _legacy_resize_attrs(node, ("nearest", "linear"))
    plan = _resize_planner(node, attrs)

    def compute(x: Any, scales: Any) -> tuple:
        plans = plan(tuple(x.shape), _optional_floats(scales), None, None, x.dtype)
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
            _optional_floats(roi), x.dtype,
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
        return (_resample(xp, x, plan(tuple(x.shape), scales, None, None, x.dtype), attrs),)

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
        return (_resample(xp, x, plan(tuple(x.shape), values, None, None, x.dtype), attrs),)

    return compute
