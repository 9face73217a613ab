"""CPU kernels: detection, the image family's ops on regions of interest and boxes (RoiAlign,
MaxRoiPool, NonMaxSuppression).

RoiAlign pools all RoIs sharing a sampling-grid size at once; MaxRoiPool loops over RoIs
(their bins differ). NonMaxSuppression is greedy per (batch, class), one vectorized
suppression step per selected box.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ort.ep import KernelTable, NodeInfo

from .float_work import wide_work_dtype
from .nn_common import str_attr

kernels = KernelTable()


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
    mode = str_attr(node, "mode", "avg")
    if mode not in ("avg", "max"):
        raise ValueError(f"{where}: mode must be 'avg' or 'max', got {mode!r}")
    transform = "output_half_pixel"
    if node.since_version >= 16:
        transform = str_attr(node, "coordinate_transformation_mode", "half_pixel")
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
        cdt = wide_work_dtype(x.dtype)
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
        cdt = wide_work_dtype(rois.dtype)
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
