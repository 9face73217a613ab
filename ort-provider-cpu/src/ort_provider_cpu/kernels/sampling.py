"""CPU kernels: sampling, the image family's ops that read a tensor at computed fractional
positions (GridSample, the AffineGrid that builds its grids, and DeformConv, a convolution
whose kernel taps are moved by learned offsets).

GridSample and DeformConv gather the corners of N-linear (or N-cubic) interpolation through
flat spatial indices, looping over the corner combinations only.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ort.ep import KernelTable, NodeInfo

from .float_work import wide_work_dtype
from .kernel_args import host_ints
from .nn_common import cast_result, cubic_kernel, str_attr
from .windows import spatial_attr

kernels = KernelTable()


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
            weight = cubic_kernel(xp, offsets - t, -0.75).astype(x.dtype, copy=False)
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
    mode_name = str_attr(node, "mode", "bilinear" if legacy else "linear")
    if mode_name not in names:
        raise ValueError(f"{where}: mode must be one of {tuple(names)}, got {mode_name!r}")
    mode = names[mode_name]
    padding = str_attr(node, "padding_mode", "zeros")
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
        gdt = wide_work_dtype(grid.dtype)
        g = grid.reshape(n, -1, rank).astype(gdt, copy=False)
        taps = []
        for i, size in enumerate(spatial):
            norm = g[..., rank - 1 - i]  # grid lists the innermost axis first
            if align:
                coord = (norm + 1) / 2 * (size - 1)
            else:
                coord = ((norm + 1) * size - 1) / 2
            taps.append(_grid_axis_taps(xp, coord, size, mode, padding, align))
        out_dtype = x.dtype if mode == "nearest" else wide_work_dtype(x.dtype)
        y = _gather_interpolate(xp, x.reshape(n, c, -1), taps, spatial, out_dtype)
        y = y.reshape((n, c) + out_spatial)
        return (y if mode == "nearest" else cast_result(xp, y, x.dtype),)

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
        dims = host_ints(size)
        rank = len(dims) - 2
        n = dims[0]
        if rank not in (2, 3) or tuple(theta.shape) != (n, rank, rank + 1):
            raise ValueError(
                f"{node.describe()}: theta of shape {theta.shape} does not fit size {dims}"
            )
        cdt = wide_work_dtype(theta.dtype)
        node.check_output_size(dims[2:] + (rank + 1,), cdt)  # the base grid
        node.check_output_size((n,) + dims[2:] + (rank,), cdt)
        key = (dims[2:], cdt)
        if key not in bases:
            bases[key] = xp.asarray(_affine_base_grid(dims[2:], align, cdt))
        t = theta.astype(cdt, copy=False)
        grid = xp.matmul(bases[key][None], t.transpose(0, 2, 1))  # (N, P, rank)
        return (grid.reshape((n,) + dims[2:] + (rank,)).astype(theta.dtype, copy=False),)

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
        strides = spatial_attr(node, "strides", nd, 1)
        dilations = spatial_attr(node, "dilations", nd, 1)
        pads = spatial_attr(node, "pads", nd, 0)
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
        cdt = wide_work_dtype(x.dtype)
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
