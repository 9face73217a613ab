"""Image and detection kernels (Resize, Upsample, GridSample, AffineGrid, RoiAlign, MaxRoiPool,
NonMaxSuppression, MaxUnpool, Col2Im, DeformConv, LpPool, GlobalLpPool, LpNormalization,
CenterCropPad, ImageDecoder) against onnxruntime, onnx's reference evaluator where onnxruntime
lacks an op version or type, or hand-computed values where both differ from the spec."""

from __future__ import annotations

import io
import sys

import ml_dtypes
import numpy as np
import pytest
from single_node import check, make_model, rand

import ort
from ort.errors import InvalidGraph, OrtError
from ort.testing import assert_outputs_match, run_onnxruntime, run_ort


def check_like_older(op, inputs, attrs, opset, older, rtol=1e-5, atol=1e-6):
    """Compare ours at ``opset`` with onnxruntime at the ``older`` opset of the same
    semantics (for versions onnxruntime lacks and the reference evaluator gets wrong)."""
    got = run_ort(*make_model(op, inputs, attrs, opset))
    want = run_onnxruntime(*make_model(op, inputs, attrs, older))
    assert all(isinstance(g, np.ndarray) for g in got), [type(g) for g in got]
    assert_outputs_match(got, want, rtol, atol)


# --------------------------------------------------------------------------------------------
# Resize
# --------------------------------------------------------------------------------------------

X4 = rand((2, 3, 5, 6))
UP = np.array([1, 1, 2.0, 1.5], np.float32)
DOWN = np.array([1, 1, 0.6, 0.5], np.float32)
COORD_MODES = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"]


@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
@pytest.mark.parametrize("coord", COORD_MODES)
@pytest.mark.parametrize("scales", [UP, DOWN], ids=["up", "down"])
def test_resize_scales(mode, coord, scales):
    """Every mode and coordinate transformation, upsampling and downsampling by scales.

    align_corners with a fractional output length follows the spec (and the conformance
    suite), as onnxruntime does not: compared with the reference evaluator there.
    """
    fractional = coord == "align_corners" and scales is DOWN
    check("Resize", [X4, None, scales], {"mode": mode, "coordinate_transformation_mode": coord},
          opset=19, rtol=1e-4, atol=1e-5, oracle="ref" if fractional else "ort")


@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
@pytest.mark.parametrize("coord", COORD_MODES + ["half_pixel_symmetric"])
@pytest.mark.parametrize("sizes", [(2, 3, 9, 4), (2, 3, 1, 1), (2, 3, 3, 13)])
def test_resize_sizes(mode, coord, sizes):
    """Resize to explicit sizes (including 1x1 outputs) in every mode."""
    check("Resize", [X4, None, None, np.array(sizes, np.int64)],
          {"mode": mode, "coordinate_transformation_mode": coord}, opset=19, rtol=1e-4,
          atol=1e-5)


@pytest.mark.parametrize("nearest_mode", ["round_prefer_floor", "round_prefer_ceil", "floor",
                                          "ceil"])
@pytest.mark.parametrize("coord", ["half_pixel", "asymmetric", "align_corners",
                                   "tf_half_pixel_for_nn"])
def test_resize_nearest_modes(nearest_mode, coord):
    """nearest_mode rounding, on exact .5 ties too (scale 2 and 4/3)."""
    roi = np.zeros(0, np.float32)  # required (possibly empty) in opset 11
    check("Resize", [X4, roi, np.array([1, 1, 2.0, 4 / 3], np.float32)],
          {"mode": "nearest", "nearest_mode": nearest_mode,
           "coordinate_transformation_mode": coord}, opset=11 if "nn" in coord else 19)


@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
@pytest.mark.parametrize("extrapolation", [0.0, -7.5])
def test_resize_tf_crop_and_resize(mode, extrapolation):
    """tf_crop_and_resize: roi crops and extrapolation_value fills outside the input."""
    roi = np.array([0, 0, 0.1, -0.2, 1, 1, 0.8, 1.3], np.float32)
    check("Resize", [X4, roi, None, np.array([2, 3, 4, 7], np.int64)],
          {"mode": mode, "coordinate_transformation_mode": "tf_crop_and_resize",
           "extrapolation_value": extrapolation}, opset=13, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("a", [-0.5, -0.75])
@pytest.mark.parametrize("exclude", [0, 1])
@pytest.mark.parametrize("scales", [UP, DOWN], ids=["up", "down"])
def test_resize_cubic_options(a, exclude, scales):
    """cubic_coeff_a and exclude_outside."""
    check("Resize", [X4, None, scales],
          {"mode": "cubic", "cubic_coeff_a": a, "exclude_outside": exclude}, opset=18,
          rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode", ["linear", "cubic"])
@pytest.mark.parametrize("scales", [DOWN, np.array([1, 1, 0.3, 0.75], np.float32), UP])
def test_resize_antialias(mode, scales):
    """antialias stretches the filter when downsampling (and changes nothing upsampling)."""
    check("Resize", [X4, None, scales], {"mode": mode, "antialias": 1}, opset=18,
          rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("axes", [[2, 3], [3, 2], [-1], [-2, 1]])
def test_resize_axes(axes):
    """axes (negative included) select what scales/sizes refer to."""
    scales = np.array([1.5, 2.0][: len(axes)], np.float32)
    check("Resize", [X4, None, scales], {"mode": "linear", "axes": axes}, opset=18)
    sizes = np.array([7, 4][: len(axes)], np.int64)
    check("Resize", [X4, None, None, sizes], {"mode": "nearest", "axes": axes}, opset=18)


@pytest.mark.parametrize("policy", ["stretch", "not_larger", "not_smaller"])
def test_resize_keep_aspect_ratio_policy(policy):
    """keep_aspect_ratio_policy adjusts sizes to keep the aspect ratio."""
    check("Resize", [X4, None, None, np.array([7, 9], np.int64)],
          {"mode": "nearest", "axes": [2, 3], "keep_aspect_ratio_policy": policy}, opset=18)


@pytest.mark.parametrize("opset", [10, 11, 13, 18, 19])
@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_resize_versions(opset, mode):
    """Every Resize version: 10 has only scales (asymmetric, ONNX Runtime rounding)."""
    scales = np.array([1, 1, 1.7, 0.6], np.float32)
    inputs = [X4, scales] if opset == 10 else [X4, np.zeros(0, np.float32), scales]
    check("Resize", inputs, {"mode": mode}, opset=opset, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float16, np.float64, np.uint8, np.int8, np.int32,
                                   np.int64, ml_dtypes.bfloat16])
def test_resize_dtypes_nearest(dtype):
    """Nearest resampling copies values of any type exactly."""
    x = rand((1, 2, 4, 5), dtype, -100, 100)
    check("Resize", [x, None, np.array([1, 1, 1.5, 0.7], np.float32)], {"mode": "nearest"},
          opset=19)


@pytest.mark.parametrize("dtype", [np.float16, np.float64, ml_dtypes.bfloat16])
def test_resize_dtypes_linear(dtype):
    """Linear resampling of the other float types (computed in float32/float64)."""
    x = rand((1, 2, 4, 5), dtype)
    check("Resize", [x, None, np.array([1, 1, 1.5, 2.5], np.float32)], {"mode": "linear"},
          opset=19, rtol=1e-2, atol=1e-2, oracle="ort" if dtype != ml_dtypes.bfloat16 else "ref")


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int32])
def test_resize_integers_round(dtype):
    """Integer inputs are interpolated in floating point, rounded half to even and saturated
    (as the reference does; onnxruntime truncates)."""
    x = np.array([[[[0, 100], [3, 127]]]], dtype)
    got = run_ort(*make_model("Resize", [x, None, np.array([1, 1, 1, 3], np.float32)],
                               {"mode": "linear"}, opset=19))[0]
    want = np.array([[[[0, 0, 33, 67, 100, 100], [3, 3, 44, 86, 127, 127]]]], dtype)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, want)


def test_resize_nd_and_empty():
    """Resize of 1-D, 3-D and 5-D tensors, and of an empty batch."""
    check("Resize", [rand((7,)), None, np.array([1.6], np.float32)], {"mode": "cubic"}, 19,
          rtol=1e-4, atol=1e-5, oracle="ref")
    check("Resize", [rand((2, 4, 5)), None, np.array([1.5, 1, 2], np.float32)],
          {"mode": "linear"}, 19)
    check("Resize", [rand((1, 2, 3, 4, 5)), None, np.array([1, 1, 2, 0.5, 1.4], np.float32)],
          {"mode": "linear"}, 19)
    check("Resize", [rand((0, 2, 3, 4)), None, np.array([1, 1, 2, 2], np.float32)],
          {"mode": "linear"}, 19)


@pytest.mark.parametrize("attrs", [
    {"mode": "bogus"},
    {"coordinate_transformation_mode": "sideways"},
    {"nearest_mode": "nearest_even"},
    {"keep_aspect_ratio_policy": "fit"},
])
def test_resize_invalid_attributes(attrs):
    """Invalid attributes fail at session creation, naming the node."""
    model, _ = make_model("Resize", [X4, None, UP], attrs, opset=19)
    with pytest.raises(OrtError, match="Resize"):
        ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def test_resize_scales_and_sizes_error():
    """Giving both scales and sizes (or neither) is an error at run time."""
    model, feeds = make_model("Resize", [X4, None, UP, np.array([1, 1, 2, 2], np.int64)],
                              {}, opset=19)
    with pytest.raises(OrtError, match="exactly one of scales and sizes|Either `sizes` or `scales`"):
        run_ort(model, feeds)


# --------------------------------------------------------------------------------------------
# Upsample
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("opset", [7, 9])
@pytest.mark.parametrize("mode", ["nearest", "linear"])
@pytest.mark.parametrize("scales", [(1, 1, 2, 3), (1, 1, 1.5, 2.5)])
def test_upsample(opset, mode, scales):
    """Upsample 7 (scales attribute) and 9 (scales input), integer and fractional scales."""
    scales = np.array(scales, np.float32)
    if opset == 7:
        check("Upsample", [X4], {"mode": mode, "scales": scales.tolist()}, opset=opset)
    else:
        check("Upsample", [X4, scales], {"mode": mode}, opset=opset)


def test_upsample_v1_and_v10():
    """Upsample 1 (height_scale/width_scale, 'bilinear') runs; the deprecated Upsample-10 is
    refused when the model loads, as onnxruntime refuses it (onnx's checker: deprecated)."""
    x = np.array([[[[1, 2], [3, 4]]]], np.float32)
    got = run_ort(*make_model("Upsample", [x], {"mode": "bilinear", "height_scale": 2.0,
                                                  "width_scale": 2.0}, opset=1))[0]
    want = [[1, 1.5, 2, 2], [2, 2.5, 3, 3], [3, 3.5, 4, 4], [3, 3.5, 4, 4]]
    np.testing.assert_allclose(got[0, 0], want)
    with pytest.raises(InvalidGraph, match="Upsample is deprecated in domain_version of 10"):
        run_ort(*make_model("Upsample", [x, np.array([1, 1, 2, 3], np.float32)],
                            {"mode": "nearest"}, opset=10))


def test_upsample_rejects_downsampling():
    """Upsample scales below 1 are an error."""
    model, feeds = make_model("Upsample", [X4, np.array([1, 1, 0.5, 1], np.float32)], {},
                              opset=9)
    with pytest.raises(OrtError, match=">= 1"):
        run_ort(model, feeds)


# --------------------------------------------------------------------------------------------
# GridSample / AffineGrid
# --------------------------------------------------------------------------------------------

GRID_X = rand((2, 3, 5, 6))
GRID = rand((2, 4, 7, 2), low=-1.3, high=1.3)


@pytest.mark.parametrize("mode", ["bilinear", "nearest", "bicubic"])
@pytest.mark.parametrize("padding", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align", [0, 1])
def test_grid_sample_16(mode, padding, align):
    """GridSample 16: every mode, padding mode and align_corners, grid points outside too."""
    check("GridSample", [GRID_X, GRID],
          {"mode": mode, "padding_mode": padding, "align_corners": align}, opset=16,
          rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode", ["linear", "nearest", "cubic"])
@pytest.mark.parametrize("padding", ["zeros", "border", "reflection"])
def test_grid_sample_20(mode, padding):
    """GridSample 20+ mode names (linear/cubic) on 2-D inputs, opsets 20 and 22."""
    for opset in (20, 22):
        check("GridSample", [GRID_X, GRID], {"mode": mode, "padding_mode": padding},
              opset=opset, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode", ["linear", "nearest"])
@pytest.mark.parametrize("align", [0, 1])
def test_grid_sample_volumetric(mode, align):
    """GridSample 20 on 3-D (volumetric) inputs."""
    x = rand((1, 2, 3, 4, 5))
    grid = rand((1, 2, 3, 4, 3), low=-1.2, high=1.2)
    check("GridSample", [x, grid], {"mode": mode, "align_corners": align,
                                    "padding_mode": "border"}, opset=20, oracle="ref")


def test_grid_sample_float64_and_empty():
    """float64 inputs, and an empty output grid."""
    check("GridSample", [GRID_X.astype(np.float64), GRID.astype(np.float64)], {}, opset=16)
    check("GridSample", [GRID_X, np.zeros((2, 0, 3, 2), np.float32)], {}, opset=16)


def test_grid_sample_invalid_mode():
    """An unknown mode (or an opset-20 name at opset 16) fails at session creation."""
    model, _ = make_model("GridSample", [GRID_X, GRID], {"mode": "linear"}, opset=16)
    with pytest.raises(OrtError, match="GridSample"):
        ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("size", [(2, 3, 4, 5), (2, 1, 3, 4, 5)])
@pytest.mark.parametrize("align", [0, 1])
def test_affine_grid(size, align):
    """AffineGrid 2-D and 3-D, both align_corners."""
    rank = len(size) - 2
    theta = rand((2, rank, rank + 1))
    check("AffineGrid", [theta, np.array(size, np.int64)], {"align_corners": align}, opset=20,
          rtol=1e-5, atol=1e-5)


def test_affine_grid_float64_and_size_one():
    """float64 theta; an axis of length 1 samples its center."""
    theta = rand((1, 2, 3), np.float64)
    check("AffineGrid", [theta, np.array([1, 1, 3, 4], np.int64)], {}, opset=20)
    identity = np.array([[[1, 0, 0], [0, 1, 0]]], np.float32)
    got = run_ort(*make_model("AffineGrid", [identity, np.array([1, 1, 1, 2], np.int64)],
                               {"align_corners": 1}, opset=20))[0]
    np.testing.assert_allclose(got, [[[[-1, 0], [1, 0]]]])


# --------------------------------------------------------------------------------------------
# RoiAlign / MaxRoiPool
# --------------------------------------------------------------------------------------------

ROI_X = rand((2, 3, 10, 12))
ROIS = np.array([[0, 0, 9, 9], [1.5, 2.2, 7.7, 9.1], [5, 5, 5.5, 5.2], [-2, -3, 14, 13],
                 [3, 4, 1, 2]], np.float32)
ROI_BATCH = np.array([0, 1, 1, 0, 1], np.int64)


@pytest.mark.parametrize("opset,coord", [(10, None), (16, None), (16, "half_pixel"),
                                         (16, "output_half_pixel")])
@pytest.mark.parametrize("mode", ["avg", "max"])
@pytest.mark.parametrize("sampling_ratio", [0, 2])
def test_roi_align(opset, coord, mode, sampling_ratio):
    """RoiAlign avg/max, adaptive and fixed sampling, the coordinate transformations (only
    output_half_pixel before opset 16), RoIs partly outside and malformed."""
    attrs = {"mode": mode, "sampling_ratio": sampling_ratio, "output_height": 3,
             "output_width": 4, "spatial_scale": 0.9}
    if coord is not None:
        attrs["coordinate_transformation_mode"] = coord
    check("RoiAlign", [ROI_X, ROIS, ROI_BATCH], attrs, opset=opset, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float64, np.float16])
def test_roi_align_types_and_opset_22(dtype):
    """RoiAlign-22 (reference evaluator) and other float types."""
    x, rois = ROI_X.astype(dtype), ROIS.astype(dtype)
    check("RoiAlign", [x, rois, ROI_BATCH], {"output_height": 2, "output_width": 2}, opset=16,
          rtol=1e-2, atol=1e-2)
    check("RoiAlign", [ROI_X, ROIS, ROI_BATCH], {"output_height": 2, "output_width": 3},
          opset=22, rtol=1e-4, atol=1e-5)


def test_roi_align_no_rois_and_bad_batch():
    """Zero RoIs give an empty output; a batch index out of range is an error."""
    check("RoiAlign", [ROI_X, np.zeros((0, 4), np.float32), np.zeros(0, np.int64)], {}, 16)
    model, feeds = make_model("RoiAlign", [ROI_X, ROIS[:1], np.array([2], np.int64)], {}, 16)
    with pytest.raises(OrtError, match="batch_indices"):
        run_ort(model, feeds)


@pytest.mark.parametrize("pooled", [(2, 2), (3, 4)])
@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_max_roi_pool(pooled, scale):
    """MaxRoiPool bins (empty bins give 0), scaled and clipped RoIs."""
    rois = np.array([[0, 0, 0, 9, 9], [1, 1.5, 2.4, 7.6, 9.1], [1, 5, 5, 5, 5],
                     [0, -3, -2, 30, 25], [1, 8, 8, 2, 3]], np.float32)
    attrs = {"pooled_shape": list(pooled), "spatial_scale": scale}
    check("MaxRoiPool", [ROI_X, rois], attrs, opset=1)
    check_like_older("MaxRoiPool", [ROI_X, rois], attrs, 22, 1)


# --------------------------------------------------------------------------------------------
# NonMaxSuppression
# --------------------------------------------------------------------------------------------


def _random_boxes(batches: int, count: int, center: bool) -> np.ndarray:
    """Random boxes that overlap a lot: corners (y1, x1, y2, x2) in any order, or centers."""
    rng = np.random.default_rng(1)
    if center:
        xy = rng.uniform(0, 10, (batches, count, 2))
        wh = rng.uniform(0.5, 5, (batches, count, 2))
        return np.concatenate([xy, wh], axis=-1).astype(np.float32)
    return rng.uniform(0, 10, (batches, count, 4)).astype(np.float32)


@pytest.mark.parametrize("center", [0, 1])
@pytest.mark.parametrize("limit", [0, 1, 3, 100])
@pytest.mark.parametrize("iou", [0.0, 0.3, 0.7])
@pytest.mark.parametrize("score", [None, 0.4])
def test_non_max_suppression(center, limit, iou, score):
    """Per (batch, class) greedy selection with every threshold combination."""
    boxes = _random_boxes(2, 30, bool(center))
    scores = np.random.default_rng(2).uniform(0, 1, (2, 3, 30)).astype(np.float32)
    scores[0, 0, :4] = 0.5  # ties: the lower box index comes first
    inputs = [boxes, scores, np.array([limit], np.int64), np.array([iou], np.float32)]
    if score is not None:
        inputs.append(np.array([score], np.float32))
    for opset in (10, 11):
        check("NonMaxSuppression", inputs, {"center_point_box": center}, opset=opset)


def test_non_max_suppression_defaults():
    """Omitted max_output_boxes_per_class selects nothing; scalars may be 0-d."""
    boxes, scores = _random_boxes(1, 5, False), np.ones((1, 1, 5), np.float32)
    check("NonMaxSuppression", [boxes, scores], {}, opset=11)
    check("NonMaxSuppression", [boxes, scores, np.array(4, np.int64), np.array(0.5, np.float32),
                                np.array(0.0, np.float32)], {}, opset=11)
    check("NonMaxSuppression", [np.zeros((1, 0, 4), np.float32), np.zeros((1, 2, 0), np.float32),
                                np.array([3], np.int64)], {}, opset=11)


# --------------------------------------------------------------------------------------------
# MaxUnpool / Col2Im
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("opset", [9, 11, 22])
def test_max_unpool(opset):
    """MaxUnpool of MaxPool's output and indices, with the inferred and an explicit shape
    (the indices address the flattened output, as in the spec and onnxruntime)."""
    x = rand((2, 3, 5, 6))
    pool_model, feeds = make_model("MaxPool", [x], {"kernel_shape": [2, 2], "strides": [2, 2]},
                                   opset=12, n_outputs=2)
    values, indices = run_ort(pool_model, feeds)
    attrs = {"kernel_shape": [2, 2], "strides": [2, 2]}
    oracle = "ort" if opset < 22 else "ref"
    check("MaxUnpool", [values, indices, np.array(x.shape, np.int64)], attrs, opset=opset,
          oracle="ort")
    got = run_ort(*make_model("MaxUnpool", [values, indices, np.array(x.shape, np.int64)],
                               attrs, opset=opset))[0]
    np.testing.assert_array_equal(got != 0, x == got)  # kept values sit where they came from
    x4 = rand((2, 3, 4, 6))
    values, indices = run_ort(*make_model("MaxPool", [x4], {"kernel_shape": [2, 2],
                                                             "strides": [2, 2]}, 12,
                                           n_outputs=2))
    check("MaxUnpool", [values, indices], attrs, opset=opset, oracle=oracle)


def test_max_unpool_pads_and_errors():
    """Inferred shape with pads; indices out of range are an error."""
    x, idx = rand((1, 1, 3)), np.array([[[0, 2, 4]]], np.int64)
    check("MaxUnpool", [x, idx], {"kernel_shape": [3], "strides": [2], "pads": [1, 1]}, 11)
    model, feeds = make_model("MaxUnpool", [x, idx + 10], {"kernel_shape": [2]}, 11)
    with pytest.raises(OrtError, match="out of range"):
        run_ort(model, feeds)


@pytest.mark.parametrize("attrs", [
    {},
    {"pads": [1, 0, 2, 1]},
    {"strides": [2, 3]},
    {"dilations": [2, 1]},
    {"pads": [1, 1, 1, 1], "strides": [2, 2], "dilations": [1, 2]},
])
def test_col2im(attrs):
    """Col2Im 2-D with pads, strides and dilations (inverse of im2col: overlaps add)."""
    image, block = (5, 6), (2, 3)
    pads = attrs.get("pads", [0] * 4)
    strides = attrs.get("strides", [1, 1])
    dilations = attrs.get("dilations", [1, 1])
    blocks = [(image[i] + pads[i] + pads[i + 2] - dilations[i] * (block[i] - 1) - 1)
              // strides[i] + 1 for i in range(2)]
    data = rand((2, 3 * 6, blocks[0] * blocks[1]))
    check("Col2Im", [data, np.array(image, np.int64), np.array(block, np.int64)], attrs,
          opset=18, const=(1, 2))


def test_col2im_3d_and_ints():
    """Col2Im of a 3-D image (reference evaluator) and of an integer type."""
    data = rand((1, 2 * 8, 2 * 2 * 3))
    check("Col2Im", [data, np.array([3, 3, 4], np.int64), np.array([2, 2, 2], np.int64)], {},
          opset=18, oracle="ref")
    data = rand((1, 4, 6), np.int32)
    check("Col2Im", [data, np.array([3, 4], np.int64), np.array([2, 2], np.int64)], {},
          opset=18, oracle="ref")


# --------------------------------------------------------------------------------------------
# DeformConv
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("attrs", [
    {},
    {"pads": [1, 1, 1, 1]},
    {"strides": [2, 1], "dilations": [1, 2], "pads": [0, 2, 1, 0]},
    {"group": 2},
    {"offset_group": 2},
    {"group": 2, "offset_group": 4, "pads": [1, 1, 1, 1]},
])
@pytest.mark.parametrize("extras", ["none", "bias", "mask", "both"])
def test_deform_conv(attrs, extras):
    """DeformConv 2-D: groups, offset groups, pads/strides/dilations, bias and mask."""
    group, offset_group = attrs.get("group", 1), attrs.get("offset_group", 1)
    pads = attrs.get("pads", [0] * 4)
    strides, dilations = attrs.get("strides", [1, 1]), attrs.get("dilations", [1, 1])
    x, w = rand((2, 4, 6, 7)), rand((6, 4 // group, 3, 2))
    out = [(x.shape[2 + i] + pads[i] + pads[i + 2] - dilations[i] * (w.shape[2 + i] - 1) - 1)
           // strides[i] + 1 for i in range(2)]
    offset = rand((2, offset_group * 6 * 2, *out), low=-2, high=2)
    mask = rand((2, offset_group * 6, *out), low=0, high=1) if extras in ("mask", "both") else None
    bias = rand((6,)) if extras in ("bias", "both") else None
    for opset in (19, 22):
        check("DeformConv", [x, w, offset, bias, mask], attrs, opset=opset, rtol=1e-4,
              atol=1e-4)


@pytest.mark.parametrize("x_shape,w_shape,attrs,out", [
    ((1, 2, 9), (3, 2, 3), {"pads": [1, 2], "strides": [2]}, (5,)),
    ((2, 4, 4, 5, 6), (4, 2, 2, 3, 2), {"group": 2, "dilations": [1, 1, 2]}, (3, 3, 4)),
])
def test_deform_conv_zero_offsets_is_conv(x_shape, w_shape, attrs, out):
    """With zero offsets DeformConv of any rank (1-D, 3-D here) equals Conv."""
    x, w = rand(x_shape), rand(w_shape)
    taps, nd = int(np.prod(w_shape[2:])), len(out)
    offset = np.zeros((x_shape[0], taps * nd) + out, np.float32)
    got = run_ort(*make_model("DeformConv", [x, w, offset], attrs, opset=19))
    assert_outputs_match(got, run_onnxruntime(*make_model("Conv", [x, w], attrs, 11)),
                         rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------------------------
# LpPool / GlobalLpPool / LpNormalization
# --------------------------------------------------------------------------------------------


LP_POOL_ATTRS = [
    {"kernel_shape": [3, 2]},
    {"kernel_shape": [2, 2], "strides": [2, 1], "pads": [1, 0, 1, 1]},
    {"kernel_shape": [3, 3], "auto_pad": "SAME_UPPER", "strides": [2, 2]},
    {"kernel_shape": [2, 3], "auto_pad": "SAME_LOWER"},
]
LP_POOL_18_ATTRS = [  # dilations and ceil_mode are new in opset 18
    {"kernel_shape": [2, 2], "dilations": [2, 1]},
    {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1},
    {"kernel_shape": [3, 2], "strides": [2, 3], "dilations": [1, 2], "ceil_mode": 1,
     "pads": [1, 1, 0, 1]},
]


@pytest.mark.parametrize("p", [1, 2, 3])
@pytest.mark.parametrize("opset,attrs", [(o, a) for o in (2, 11) for a in LP_POOL_ATTRS]
                         + [(o, a) for o in (18, 22) for a in LP_POOL_ATTRS + LP_POOL_18_ATTRS])
def test_lp_pool(opset, attrs, p):
    """LpPool over versions: auto_pad, strides, pads, and from 18 dilations and ceil_mode."""
    if opset < 22:
        check("LpPool", [rand((2, 3, 7, 8))], {"p": p, **attrs}, opset=opset, rtol=1e-4,
              atol=1e-5)
    else:
        check_like_older("LpPool", [rand((2, 3, 7, 8))], {"p": p, **attrs}, 22, 18, 1e-4, 1e-5)


def test_lp_pool_v1_and_1d():
    """LpPool-1 (float p) and a 1-D pooling."""
    x = rand((1, 2, 6))
    got = run_ort(*make_model("LpPool", [x], {"p": 3.0, "kernel_shape": [2]}, opset=1))[0]
    want = (np.abs(x[..., :-1]) ** 3 + np.abs(x[..., 1:]) ** 3) ** (1 / 3)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    check("LpPool", [rand((2, 3, 9))], {"kernel_shape": [4], "strides": [2]}, opset=11)


@pytest.mark.parametrize("opset", [2, 22])
@pytest.mark.parametrize("p", [1, 2, 3])
@pytest.mark.parametrize("shape", [(2, 3, 4), (2, 3, 4, 5), (1, 2, 3, 4, 2)])
def test_global_lp_pool(opset, p, shape):
    """GlobalLpPool over every spatial axis."""
    if opset < 22:
        check("GlobalLpPool", [rand(shape)], {"p": p}, opset=opset, rtol=1e-5)
    else:
        check_like_older("GlobalLpPool", [rand(shape)], {"p": p}, 22, 2)


def test_global_lp_pool_v1():
    """GlobalLpPool-1 (float p)."""
    x = rand((2, 3, 4))
    got = run_ort(*make_model("GlobalLpPool", [x], {"p": 2.0}, opset=1))[0]
    np.testing.assert_allclose(got, np.sqrt((x * x).sum(axis=2, keepdims=True)), rtol=1e-5)


@pytest.mark.parametrize("opset", [1, 22])
@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("axis", [0, 1, -1, -2])
def test_lp_normalization(opset, p, axis):
    """LpNormalization along any axis; an all-zero slice stays zero."""
    x = rand((3, 4, 5))
    x[1, 2, :] = 0
    x[:, 0, 0] = 0
    if opset < 22:
        check("LpNormalization", [x], {"p": p, "axis": axis}, opset=opset, rtol=1e-5)
    else:
        check_like_older("LpNormalization", [x], {"p": p, "axis": axis}, 22, 1)


@pytest.mark.parametrize("op,attrs", [("LpNormalization", {"p": 3}), ("LpPool", {"p": 0})])
def test_lp_invalid_p(op, attrs):
    """Unsupported p values fail at session creation."""
    model, _ = make_model(op, [rand((1, 2, 3))], {"kernel_shape": [2], **attrs}
                          if op == "LpPool" else attrs, opset=18)
    with pytest.raises(OrtError, match="p must be"):
        ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


# --------------------------------------------------------------------------------------------
# CenterCropPad
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape,axes", [
    ((3, 4, 5), None),
    ((6, 2, 9), None),
    ((2, 7), [1, 2]),
    ((7, 2), [-1, 0]),
    ((4,), [-2]),
])
@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.uint8])
def test_center_crop_pad(shape, axes, dtype):
    """Crop and pad, odd differences, axes (negative too), several types."""
    attrs = {"axes": axes} if axes is not None else {}
    check("CenterCropPad", [rand((5, 4, 6), dtype), np.array(shape, np.int64)], attrs, opset=18,
          oracle="ref")


def test_center_crop_pad_strings():
    """Strings are padded with empty strings."""
    x = np.array([["a", "b"], ["c", "d"]], dtype=object)
    got = run_ort(*make_model("CenterCropPad", [x, np.array([2, 4], np.int64)], {}, 18))[0]
    assert got.tolist() == [["", "a", "b", ""], ["", "c", "d", ""]]


# --------------------------------------------------------------------------------------------
# ImageDecoder
# --------------------------------------------------------------------------------------------


def _encode(image: np.ndarray, fmt: str) -> np.ndarray:
    """Encode an image with Pillow into a uint8 stream."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=fmt)
    return np.frombuffer(buffer.getvalue(), dtype=np.uint8)


IMAGE = np.random.default_rng(3).integers(0, 256, (6, 5, 3), dtype=np.uint8)


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "PPM", "TIFF"])
@pytest.mark.parametrize("pixel_format", ["RGB", "BGR", "Grayscale"])
def test_image_decoder_lossless(fmt, pixel_format):
    """Lossless formats decode to the original pixels, in the requested pixel format."""
    pytest.importorskip("PIL")
    from PIL import Image

    got = run_ort(*make_model("ImageDecoder", [_encode(IMAGE, fmt)],
                               {"pixel_format": pixel_format}, opset=20))[0]
    if pixel_format == "RGB":
        want = IMAGE
    elif pixel_format == "BGR":
        want = IMAGE[:, :, ::-1]
    else:
        want = np.asarray(Image.fromarray(IMAGE).convert("L"))[:, :, None]
    assert got.dtype == np.uint8 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, want)


def test_image_decoder_grayscale_source_and_corrupt_stream():
    """A grayscale image decodes to 3 equal channels as RGB; garbage gives an empty image."""
    pytest.importorskip("PIL")
    gray = IMAGE[:, :, 0]
    got = run_ort(*make_model("ImageDecoder", [_encode(gray, "PNG")], {}, opset=20))[0]
    np.testing.assert_array_equal(got, np.repeat(gray[:, :, None], 3, axis=2))
    junk = np.frombuffer(b"not an image at all", dtype=np.uint8)
    got = run_ort(*make_model("ImageDecoder", [junk], {"pixel_format": "Grayscale"}, 20))[0]
    assert got.shape == (0, 0, 1) and got.dtype == np.uint8


def test_image_decoder_needs_pillow(monkeypatch):
    """Without Pillow the session fails with an install hint."""
    monkeypatch.setitem(sys.modules, "PIL", None)
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    model, _ = make_model("ImageDecoder", [np.zeros(4, np.uint8)], {}, opset=20)
    with pytest.raises(OrtError, match="pip install pillow"):
        ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def test_image_decoder_invalid_pixel_format():
    """An unknown pixel_format fails at session creation."""
    model, _ = make_model("ImageDecoder", [np.zeros(4, np.uint8)], {"pixel_format": "CMYK"}, 20)
    with pytest.raises(OrtError, match="pixel_format"):
        ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
