"""Contrib-op cases of the remaining onnxruntime CPU contrib ops (contrib_extra*.py):
TransposeMatMul, MatMulInteger16, ExpandDims, com.microsoft GatherND/Pad/Unique, MurmurHash3,
MaxpoolWithMask, CropAndResize, com.microsoft QLinearConv, ConvTransposeWithDynamicPads, the
experimental ONNX-domain ops and the rarer tier-3 ops."""

from __future__ import annotations

import numpy as np
from contrib_case import Case, rng

r = rng(11)
f16, f32, f64 = np.float16, np.float32, np.float64
i8, u8, i16, i32, i64 = np.int8, np.uint8, np.int16, np.int32, np.int64


def _a(value, dtype):
    return np.array(value, dtype=dtype)


# TransposeMatMul
A34 = r.standard_normal((3, 4)).astype(f32)
B45 = r.standard_normal((4, 5)).astype(f32)
A234 = r.standard_normal((2, 3, 4)).astype(f32)
B154 = r.standard_normal((1, 5, 4)).astype(f32)
V4 = r.standard_normal(4).astype(f32)

# MatMulInteger16
I16A = r.integers(-32768, 32768, (2, 3, 7)).astype(i16)
I16B = r.integers(-32768, 32768, (7, 5)).astype(i16)

# ExpandDims, GatherND
X23 = r.standard_normal((2, 3)).astype(f32)
G234 = r.standard_normal((2, 3, 4)).astype(f32)
STR = np.array([["a", "bb"], ["ccc", ""]], dtype=object)

# Pad
P34 = r.standard_normal((3, 4)).astype(f32)
P2345 = r.standard_normal((2, 3, 4, 5)).astype(f32)

# Unique
U = np.array([2, 1, 1, 3, 4, 3, np.nan, -0.0, 0.0, np.nan, 4, 2.5], f32)
U_R = r.integers(-5, 6, 40).astype(f32)
U_MIX = r.choice(np.array([np.nan, -0.0, 0.0, 1.5, -2.0, np.inf], f32), 200)

# MurmurHash3
H_INT = np.array([0, 1, -1, 123456, 2 ** 31 - 1, -2 ** 31], i64)
H_STR = np.array(["", "a", "ab", "abc", "abcd", "hello", "héllo wörld", "0123456789abcdef!"],
                 dtype=object)

CASES = [
    Case("TransposeMatMul_plain", "TransposeMatMul", [A34, B45], atol=1e-5),
    Case("TransposeMatMul_alpha", "TransposeMatMul", [A34, B45], {"alpha": 0.5}, atol=1e-5),
    Case("TransposeMatMul_transA", "TransposeMatMul", [A34.T.copy(), B45], {"transA": 1},
         atol=1e-5),
    Case("TransposeMatMul_transB_batch", "TransposeMatMul", [A234, B154],
         {"transB": 1, "alpha": 2.0}, atol=1e-5),
    Case("TransposeMatMul_both_batch", "TransposeMatMul",
         [np.swapaxes(A234, 1, 2).copy(), B154], {"transA": 1, "transB": 1}, atol=1e-5),
    Case("TransposeMatMul_const_b", "TransposeMatMul", [A234, B45.T.copy()], {"transB": 1},
         constants=(1,), atol=1e-5),
    Case("TransposeMatMul_vector_transA", "TransposeMatMul", [V4, B45], {"transA": 1},
         atol=1e-5),
    Case("TransposeMatMul_vector_transB", "TransposeMatMul", [A34, V4], {"transB": 1},
         atol=1e-5),
    Case("TransposeMatMul_float16", "TransposeMatMul", [A34.astype(f16), B45.astype(f16)],
         {"alpha": 1.5}, atol=1e-2, rtol=1e-3),
    Case("MatMulInteger16_batch", "MatMulInteger16", [I16A, I16B], rtol=0, atol=0),
    Case("MatMulInteger16_2d_const", "MatMulInteger16", [I16A[0], I16B], constants=(1,),
         rtol=0, atol=0),
    Case("MatMulInteger16_vector", "MatMulInteger16", [I16A[0, 0], I16B], rtol=0, atol=0),
    Case("ExpandDims_0", "ExpandDims", [X23, _a(0, i32)]),
    Case("ExpandDims_last", "ExpandDims", [X23, _a(2, i32)]),
    Case("ExpandDims_neg", "ExpandDims", [X23, _a(-2, i32)]),
    Case("ExpandDims_neg_first", "ExpandDims", [X23, _a(-3, i32)]),
    Case("ExpandDims_one_element_axis", "ExpandDims", [X23, _a([1], i32)]),
    Case("ExpandDims_const_axis", "ExpandDims", [X23, _a(1, i32)], constants=(1,)),
    Case("ExpandDims_string", "ExpandDims", [STR, _a(1, i32)]),
    Case("ExpandDims_int64_scalar", "ExpandDims", [_a(7, i64), _a(0, i32)]),
    Case("ExpandDims_bool", "ExpandDims", [X23 > 0, _a(-1, i32)]),
    Case("GatherND_pairs", "GatherND", [G234, _a([[0, 1], [1, -1]], i64)]),
    Case("GatherND_int32_nested", "GatherND", [G234, _a([[[1]], [[0]]], i32)]),
    Case("GatherND_full_index", "GatherND", [G234, _a([0, 1, 2], i64)]),
    Case("GatherND_float16", "GatherND", [G234.astype(f16), _a([[1, 2, 3], [0, 0, 0]], i32)]),
    Case("GatherND_string", "GatherND", [STR, _a([[1, 0], [0, 1]], i64)]),
    Case("GatherND_int64_data", "GatherND", [(G234 * 10).astype(i64), _a([[1]], i64)]),
    Case("GatherND_empty", "GatherND", [G234, np.zeros((0, 2), i64)]),
    Case("GatherND_const_indices", "GatherND", [G234, _a([[1, 2]], i64)], constants=(1,)),
    Case("Pad_constant_default", "Pad", [P34, _a([1, 0, 0, 2], i64)]),
    Case("Pad_constant_value", "Pad", [P34, _a([0, 2, 1, 1], i64), _a([9.5], f32)]),
    Case("Pad_constant_scalar_value", "Pad", [P34, _a([1, 1, 1, 1], i64), _a(-1, f32)],
         {"mode": "constant"}),
    Case("Pad_reflect", "Pad", [P34, _a([2, 1, 1, 3], i64)], {"mode": "reflect"}),
    Case("Pad_edge_4d", "Pad", [P2345, _a([0, 1, 2, 0, 0, 0, 1, 3], i64)], {"mode": "edge"}),
    Case("Pad_wrap", "Pad", [P34, _a([1, 2, 2, 1], i64)], {"mode": "wrap"}),
    Case("Pad_pads_2d", "Pad", [P34, _a([[1, 0, 0, 2]], i64)]),
    Case("Pad_negative", "Pad", [P34, _a([-1, 1, 0, -1], i64)]),
    # onnxruntime reports no shape for this output; ort infers the padded shape [5, 6] from
    # the constant pads, so only the type is compared
    Case("Pad_const_pads", "Pad", [P34, _a([1, 2, 1, 0], i64)], constants=(1,),
         check_shapes=False),
    Case("Pad_float16_reflect", "Pad", [P34.astype(f16), _a([1, 1, 1, 1], i64)],
         {"mode": "reflect"}),
    Case("Unique_special_values", "Unique", [U], outputs=3),
    Case("Unique_random", "Unique", [U_R], outputs=3),
    Case("Unique_random_nan_zeros", "Unique", [U_MIX], outputs=3),
    Case("Unique_float16", "Unique", [U.astype(f16)], outputs=3),
    Case("Unique_empty", "Unique", [U[:0]], outputs=3),
]
for _seed, _positive in ((0, 1), (42, 0), (-1, 1), (2 ** 31 - 1, 0)):
    _attrs = {"seed": _seed, "positive": _positive}
    _tag = f"seed{_seed}_pos{_positive}".replace("-", "m")
    CASES += [
        Case(f"MurmurHash3_int32_{_tag}", "MurmurHash3", [H_INT.astype(i32)], _attrs),
        Case(f"MurmurHash3_int64_{_tag}", "MurmurHash3", [H_INT.reshape(2, 3)], _attrs),
        Case(f"MurmurHash3_string_{_tag}", "MurmurHash3", [H_STR], _attrs),
    ]
CASES += [
    Case("MurmurHash3_uint32", "MurmurHash3", [H_INT.astype(np.uint32)]),
    Case("MurmurHash3_uint64", "MurmurHash3", [H_INT.astype(np.uint64)], {"seed": 7}),
    Case("MurmurHash3_float", "MurmurHash3", [np.array([0, -0.0, 1.5, np.inf, -3e7], f32)]),
    Case("MurmurHash3_double", "MurmurHash3", [np.array([[0, -0.0], [1.5, np.pi]], f64)],
         {"positive": 0}),
    Case("MurmurHash3_string_2d", "MurmurHash3", [STR], {"seed": 3}),
    Case("MurmurHash3_empty", "MurmurHash3", [H_INT[:0].astype(i32)]),
]

# MaxpoolWithMask: masks with zeros inside windows stop the row scans; masks of X's shape
# serve the planes onnxruntime's way (plane k reads from (k * plane) % (N * C))
MX2 = r.standard_normal((2, 3, 6, 7)).astype(f32)
MM2 = (r.random((2, 3, 6, 7)) > 0.25).astype(i32)
MM2_ONE = (r.random((1, 1, 6, 7)) > 0.3).astype(i32)
MX1 = r.standard_normal((2, 2, 9)).astype(f32)
MM1 = (r.random((2, 2, 9)) > 0.3).astype(i32)
MX3 = r.standard_normal((1, 2, 4, 5, 6)).astype(f32)
MM3 = (r.random((1, 2, 4, 5, 6)) > 0.3).astype(i32)

# CropAndResize: boxes inside, across and outside the image
CX = r.standard_normal((2, 3, 6, 7)).astype(f32)
CROIS = np.array([[0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], [-0.2, 0.3, 1.2, 0.5],
                  [0.5, 0.5, 0.5, 0.5], [0.9, 0.8, 0.1, 0.05]], f32)
CBI = np.array([0, 1, 1, 0, 1], i32)

# QLinearConv
QX_U8 = r.integers(0, 256, (2, 4, 7, 6)).astype(u8)
QX_I8 = r.integers(-128, 128, (2, 4, 7, 6)).astype(i8)
QW_I8 = r.integers(-128, 128, (6, 4, 3, 3)).astype(i8)
QW_U8 = r.integers(0, 256, (6, 4, 3, 3)).astype(u8)
QW_G = r.integers(-128, 128, (6, 2, 3, 2)).astype(i8)
QB = r.integers(-2000, 2000, 6).astype(i32)
QWS = (r.random(6) * 0.01 + 0.001).astype(f32)


def _qconv(x, w, y_type, w_scale=None, w_zero=None, bias=None):
    zero_type = x.dtype.type
    return [x, _a(0.03, f32), _a(5 if x.dtype == u8 else -3, zero_type), w,
            _a(0.004, f32) if w_scale is None else w_scale,
            _a(0 if w.dtype == i8 else 120, w.dtype) if w_zero is None else w_zero,
            _a(0.15, f32), _a(100 if y_type == u8 else 4, y_type), bias]


def _last(inputs):
    return [np.ascontiguousarray(np.moveaxis(inputs[0], 1, -1))] + inputs[1:]


# ConvTransposeWithDynamicPads
TX = r.standard_normal((2, 4, 5, 6)).astype(f32)
TW = r.standard_normal((4, 3, 3, 2)).astype(f32)
TB = r.standard_normal(3).astype(f32)
TX1 = r.standard_normal((1, 4, 7)).astype(f32)
TW1 = r.standard_normal((4, 2, 3)).astype(f32)

CASES += [
    Case("MaxpoolWithMask_2d", "MaxpoolWithMask", [MX2, MM2], {"kernel_shape": [2, 2]}),
    Case("MaxpoolWithMask_2d_pads_strides", "MaxpoolWithMask", [MX2, MM2],
         {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "strides": [2, 2]}),
    Case("MaxpoolWithMask_2d_one_mask_plane", "MaxpoolWithMask", [MX2, MM2_ONE],
         {"kernel_shape": [3, 2], "strides": [1, 2], "pads": [0, 1, 2, 0]}),
    Case("MaxpoolWithMask_2d_all_masked", "MaxpoolWithMask", [MX2, np.zeros_like(MM2)],
         {"kernel_shape": [2, 3]}),
    Case("MaxpoolWithMask_2d_same_upper", "MaxpoolWithMask", [MX2, MM2],
         {"kernel_shape": [3, 3], "auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    Case("MaxpoolWithMask_2d_same_lower", "MaxpoolWithMask", [MX2, MM2],
         {"kernel_shape": [2, 4], "auto_pad": "SAME_LOWER"}),
    Case("MaxpoolWithMask_2d_valid_storage_order", "MaxpoolWithMask", [MX2, MM2],
         {"kernel_shape": [2, 2], "auto_pad": "VALID", "storage_order": 1}),
    Case("MaxpoolWithMask_1d", "MaxpoolWithMask", [MX1, MM1],
         {"kernel_shape": [3], "pads": [1, 1]}),
    Case("MaxpoolWithMask_1d_strides", "MaxpoolWithMask", [MX1, MM1],
         {"kernel_shape": [4], "strides": [2]}),
    Case("MaxpoolWithMask_3d", "MaxpoolWithMask", [MX3, MM3], {"kernel_shape": [2, 2, 2]}),
    Case("MaxpoolWithMask_3d_pads", "MaxpoolWithMask", [MX3, MM3],
         {"kernel_shape": [2, 3, 2], "pads": [1, 0, 1, 0, 1, 1], "strides": [1, 2, 2]}),
    Case("CropAndResize_bilinear", "CropAndResize", [CX, CROIS, CBI, _a([4, 5], i32)]),
    Case("CropAndResize_nearest", "CropAndResize", [CX, CROIS, CBI, _a([5, 3], i32)],
         {"mode": "nearest"}),
    Case("CropAndResize_extrapolation", "CropAndResize", [CX, CROIS, CBI, _a([3, 4], i32)],
         {"extrapolation_value": -2.5}),
    Case("CropAndResize_one_by_one", "CropAndResize", [CX, CROIS, CBI, _a([1, 1], i32)]),
    Case("CropAndResize_one_row_nearest", "CropAndResize", [CX, CROIS, CBI, _a([1, 6], i32)],
         {"mode": "nearest", "extrapolation_value": 7.0}),
    Case("CropAndResize_const_size", "CropAndResize", [CX, CROIS[:2], CBI[:2], _a([8, 8], i32)],
         constants=(3,)),
    Case("CropAndResize_float16", "CropAndResize",
         [CX.astype(f16), CROIS.astype(f16), CBI, _a([4, 4], i32)], atol=2e-3, rtol=2e-3),
    Case("QLinearConv_u8_i8", "QLinearConv", _qconv(QX_U8, QW_I8, u8), constants=(3,),
         rtol=0, atol=0),
    Case("QLinearConv_u8_u8_bias_pads", "QLinearConv", _qconv(QX_U8, QW_U8, u8, bias=QB),
         {"pads": [1, 1, 1, 1], "strides": [2, 1]}, constants=(3, 8), rtol=0, atol=0),
    Case("QLinearConv_i8_i8_per_channel", "QLinearConv",
         _qconv(QX_I8, QW_I8, i8, QWS, np.zeros(6, i8), QB), constants=(3, 4, 5, 8),
         rtol=0, atol=0),
    Case("QLinearConv_u8_i8_dynamic_w", "QLinearConv", _qconv(QX_U8, QW_I8, u8),
         {"dilations": [2, 1]}, rtol=0, atol=0),
    Case("QLinearConv_group", "QLinearConv", _qconv(QX_U8, QW_G, u8, bias=QB),
         {"group": 2, "auto_pad": "SAME_UPPER"}, constants=(3,), rtol=0, atol=0),
    Case("QLinearConv_channels_last", "QLinearConv", _last(_qconv(QX_U8, QW_I8, u8, bias=QB)),
         {"channels_last": 1, "pads": [0, 1, 2, 1]}, constants=(3,), rtol=0, atol=0),
    Case("QLinearConv_channels_last_i8_per_channel", "QLinearConv",
         _last(_qconv(QX_I8, QW_I8, i8, QWS, np.zeros(6, i8))),
         {"channels_last": 1, "strides": [2, 2]}, constants=(3, 4, 5), rtol=0, atol=0),
    Case("QLinearConv_channels_last_off", "QLinearConv", _qconv(QX_U8, QW_U8, u8),
         {"channels_last": 0}, constants=(3,), rtol=0, atol=0),
]
for _name, _attrs, _pads in (
        ("plain", {}, [1, 0, 2, 1]),
        ("strides", {"strides": [2, 2]}, [0, 1, 1, 0]),
        ("output_padding", {"strides": [2, 3], "output_padding": [1, 2]}, [1, 1, 0, 0]),
        ("dilations", {"dilations": [2, 1]}, [0, 0, 0, 0]),
        ("same_upper", {"auto_pad": "SAME_UPPER", "strides": [2, 2]}, [1, 1, 1, 1]),
        ("kernel_shape", {"kernel_shape": [3, 2]}, [2, 0, 1, 1])):
    CASES.append(Case(f"ConvTransposeWithDynamicPads_{_name}", "ConvTransposeWithDynamicPads",
                      [TX, TW, _a(_pads, i64), TB], _attrs, atol=1e-5))
CASES += [
    Case("ConvTransposeWithDynamicPads_no_bias", "ConvTransposeWithDynamicPads",
         [TX, TW, _a([1, 1, 0, 1], i64)], atol=1e-5),
    Case("ConvTransposeWithDynamicPads_group_const", "ConvTransposeWithDynamicPads",
         [TX, TW[:, :1].copy(), _a([0, 1, 0, 1], i64), TB[:2]], {"group": 2},
         constants=(1,), atol=1e-5),
    Case("ConvTransposeWithDynamicPads_const_pads", "ConvTransposeWithDynamicPads",
         [TX, TW, _a([0, 1, 0, 1], i64), TB], {"strides": [1, 2]}, constants=(2,), atol=1e-5),
    Case("ConvTransposeWithDynamicPads_1d", "ConvTransposeWithDynamicPads",
         [TX1, TW1, _a([1, 2], i64)], {"strides": [2]}, atol=1e-5),
    Case("ConvTransposeWithDynamicPads_float16", "ConvTransposeWithDynamicPads",
         [TX.astype(f16), TW.astype(f16), _a([1, 0, 0, 1], i64), TB.astype(f16)],
         atol=1e-2, rtol=1e-2),
]

# the experimental ONNX-domain ops (declared at version 1; ThresholdedRelu before 10 and
# MeanVarianceNormalization before 9 only)
EX = (r.standard_normal((2, 3, 4, 5)) * 2).astype(f32)
EX[0, 0, 0, :3] = [1.0, 40.0, -40.0]  # at the threshold, and large softplus arguments
EX3 = r.standard_normal((3, 4, 5)).astype(f32)
E_CONST = np.ones((1, 2, 3, 3), f32)


def _onnx_case(name, op, inputs, attrs=None, opset=7, **kw):
    return Case(name, op, inputs, attrs or {}, domain="", opset=opset, **kw)


CASES += [
    _onnx_case("Affine_default", "Affine", [EX]),
    _onnx_case("Affine_alpha_beta", "Affine", [EX], {"alpha": -1.5, "beta": 0.25}),
    _onnx_case("Affine_float16_opset9", "Affine", [EX.astype(f16)], {"alpha": 2.0},
               opset=9),
    _onnx_case("Scale_default", "Scale", [EX]),
    _onnx_case("Scale_3", "Scale", [EX3], {"scale": 3.0}),
    _onnx_case("Scale_float16", "Scale", [EX3.astype(f16)], {"scale": -0.5}),
    _onnx_case("ScaledTanh", "ScaledTanh", [EX], {"alpha": 2.0, "beta": 0.5}, atol=1e-6),
    _onnx_case("ScaledTanh_float16", "ScaledTanh", [EX.astype(f16)],
               {"alpha": 1.5, "beta": -2.0}, atol=1e-3),
    _onnx_case("ParametricSoftplus", "ParametricSoftplus", [EX], {"alpha": 2.0, "beta": 0.5},
               atol=1e-5),
    _onnx_case("ParametricSoftplus_negative_beta", "ParametricSoftplus", [EX],
               {"alpha": 0.7, "beta": -3.0}, atol=1e-5),
    _onnx_case("ThresholdedRelu_default_opset9", "ThresholdedRelu", [EX], opset=9),
    _onnx_case("ThresholdedRelu_alpha", "ThresholdedRelu", [EX], {"alpha": -0.5}),
    _onnx_case("ThresholdedRelu_float16", "ThresholdedRelu", [EX.astype(f16)],
               {"alpha": 0.3}, opset=8),
    _onnx_case("ImageScaler", "ImageScaler", [EX], {"scale": 2.0, "bias": [1.0, -2.0, 0.5]},
               atol=1e-6),
    _onnx_case("ImageScaler_default_scale", "ImageScaler", [EX], {"bias": [0.0, 1.0, 2.0]}),
    _onnx_case("ImageScaler_float16", "ImageScaler", [EX.astype(f16)],
               {"scale": 0.5, "bias": [1.0, 2.0, 3.0]}, atol=1e-3),
    _onnx_case("Crop_border", "Crop", [EX], {"border": [1, 1, 1, 2]}),
    _onnx_case("Crop_scale", "Crop", [EX], {"border": [1, 2, 0, 0], "scale": [2, 3]}),
    _onnx_case("Crop_zero_border", "Crop", [EX], {"border": [0, 0, 0, 0]}),
    _onnx_case("Crop_float16", "Crop", [EX.astype(f16)], {"border": [2, 0, 0, 1]}),
]
for _across in (0, 1):
    for _variance in (0, 1):
        _attrs = {"across_channels": _across, "normalize_variance": _variance}
        CASES += [
            _onnx_case(f"MeanVarianceNormalization_across{_across}_var{_variance}",
                       "MeanVarianceNormalization", [EX], _attrs, opset=8, atol=1e-5),
            _onnx_case(f"MeanVarianceNormalization_3d_across{_across}_var{_variance}",
                       "MeanVarianceNormalization", [EX3], _attrs, atol=1e-5),
        ]
CASES += [
    _onnx_case("MeanVarianceNormalization_default", "MeanVarianceNormalization", [EX],
               atol=1e-5),
    _onnx_case("MeanVarianceNormalization_5d", "MeanVarianceNormalization",
               [EX.reshape(2, 3, 4, 5, 1)], {"across_channels": 1}, atol=1e-5),
    _onnx_case("MeanVarianceNormalization_constant_nan", "MeanVarianceNormalization",
               [E_CONST]),
    _onnx_case("MeanVarianceNormalization_float16", "MeanVarianceNormalization",
               [EX.astype(f16)], atol=2e-3, rtol=2e-3),
    _onnx_case("DynamicSlice_axes", "DynamicSlice",
               [EX3, _a([1, -3], i64), _a([100, -1], i64), _a([0, 2], i64)]),
    _onnx_case("DynamicSlice_int32_all_axes", "DynamicSlice",
               [EX3, _a([0, 1, 1], i32), _a([2, 3, 4], i32)]),
    _onnx_case("DynamicSlice_const", "DynamicSlice",
               [EX3, _a([0, 1, 1], i32), _a([2, 3, 4], i32)], constants=(1, 2)),
    _onnx_case("DynamicSlice_empty", "DynamicSlice",
               [EX3, _a([-1], i64), _a([-100], i64), _a([-1], i64)]),
    _onnx_case("DynamicSlice_string", "DynamicSlice",
               [STR, _a([1], i64), _a([3], i64), _a([1], i64)]),
    _onnx_case("DynamicSlice_int64_data", "DynamicSlice",
               [(EX3 * 9).astype(i64), _a([1, 0], i64), _a([3, 2], i64), _a([2, 0], i64)],
               opset=9),
]

# ScaledSiLU
SX = (r.standard_normal((2, 3, 8)) * 4).astype(f32)
SX[0, 0, :3] = [100.0, -100.0, 0.0]

# UnfoldTensor
UX = r.standard_normal((2, 7, 3)).astype(f32)

# NGramRepeatBlock: repeated n-grams in the rows
NG_IDS = np.array([[1, 2, 3, 1, 2, 5, 1, 2], [4, 4, 4, 4, 4, 4, 4, 4], [0, 1, 2, 3, 4, 5, 6, 7]],
                  i64)
NG_SCORES = r.standard_normal((3, 9)).astype(f32)

# BifurcationDetector
BSRC = np.array([1, 2, 3, 4, 5, 2, 3, 6, 7, 8], i64)
BCUR = np.array([9, 1, 2], i64)

# DynamicTimeWarping: random costs (no ties) and integer costs (many ties)
DTW = r.random((6, 9)).astype(f32)
DTW_TIES = r.integers(0, 3, (7, 5)).astype(f32)

# QEmbedLayerNormalization
QB_, QS_, QH_, QV_ = 2, 5, 8, 11
QIDS = r.integers(0, QV_, (QB_, QS_)).astype(i32)
QSEG = r.integers(0, 2, (QB_, QS_)).astype(i32)
QMASK = np.array([[1, 1, 1, 0, 0], [1, 1, 2, 1, 1]], i32)


def _qemb(dtype, segments=True, mask=True):
    low, high = (0, 256) if dtype == u8 else (-128, 128)

    def q(*shape):
        return r.integers(low, high, shape).astype(dtype)

    def z(v):
        return _a(v, dtype)

    return [QIDS, QSEG if segments else None, q(QV_, QH_), q(QS_ + 2, QH_),
            q(2, QH_) if segments else None, q(QH_), q(QH_), QMASK if mask else None,
            _a(0.02, f32), _a(0.03, f32), _a(0.01, f32) if segments else None, _a(0.01, f32),
            _a(0.005, f32), z(3), z(5), z(1) if segments else None,
            z(100 if dtype == u8 else 10), z(7)]


CASES += [
    Case("ScaledSiLU_default", "ScaledSiLU", [SX], atol=1e-6),
    Case("ScaledSiLU_alpha", "ScaledSiLU", [SX], {"alpha": 1.702}, atol=1e-5),
    Case("ScaledSiLU_scale_input", "ScaledSiLU", [SX, _a(0.5, f32)], {"alpha": 3.0},
         atol=1e-6),
    Case("ScaledSiLU_float16", "ScaledSiLU", [SX.astype(f16), _a(1.25, f16)], atol=0,
         rtol=0),
    Case("ScaledSiLU_float16_float_scale", "ScaledSiLU", [SX.astype(f16), _a(-0.75, f32)],
         atol=0, rtol=0),
    Case("UnfoldTensor_last", "UnfoldTensor", [UX], {"size": 2}),
    Case("UnfoldTensor_dim1_step2", "UnfoldTensor", [UX], {"dim": 1, "size": 3, "step": 2}),
    Case("UnfoldTensor_dim0_whole", "UnfoldTensor", [UX], {"dim": 0, "size": 2, "step": 5}),
    Case("UnfoldTensor_negative_dim_double", "UnfoldTensor", [UX.astype(f64)],
         {"dim": -2, "size": 7}),
    Case("UnfoldTensor_int32", "UnfoldTensor", [(UX * 10).astype(i32)],
         {"dim": 1, "size": 4, "step": 3}),
    Case("UnfoldTensor_int64_1d", "UnfoldTensor", [np.arange(10, dtype=i64)],
         {"size": 3, "step": 3}),
]
for _n in (1, 2, 3, 8, 9):
    CASES.append(Case(f"NGramRepeatBlock_{_n}", "NGramRepeatBlock", [NG_IDS, NG_SCORES],
                      {"ngram_size": _n}))
CASES += [
    Case("BifurcationDetector_no_pred", "BifurcationDetector", [BSRC, BCUR, _a(0, i64)],
         outputs=2),
    Case("BifurcationDetector_pred", "BifurcationDetector",
         [BSRC, BCUR, _a(2, i64), np.array([3, 4, 5, 2, 9, 9, 9, 9, 9], i64)], outputs=2),
    Case("BifurcationDetector_pred_all_match", "BifurcationDetector",
         [BSRC, BCUR, _a([6], i64), np.array([3, 6, 7, 8, 11], i64)], outputs=2),
    Case("BifurcationDetector_ngrams", "BifurcationDetector",
         [BSRC, np.array([5, 2, 3], i64), _a(0, i64)],
         {"min_ngram_size": 2, "max_ngram_size": 4}, outputs=2),
    Case("BifurcationDetector_repeats", "BifurcationDetector",
         [np.array([1, 2, 1, 2, 1, 2, 3], i64), np.array([1, 2], i64), _a(0, i64)],
         {"min_ngram_size": 1, "max_ngram_size": 5}, outputs=2),
    Case("BifurcationDetector_suffix_at_end", "BifurcationDetector",
         [BSRC, np.array([7, 8], i64), _a(0, i64)], outputs=2),
    Case("DynamicTimeWarping", "DynamicTimeWarping", [DTW], rtol=0, atol=0),
    Case("DynamicTimeWarping_ties", "DynamicTimeWarping", [DTW_TIES], rtol=0, atol=0),
    Case("DynamicTimeWarping_3d_row", "DynamicTimeWarping", [DTW[None, :1]], rtol=0, atol=0),
    Case("DynamicTimeWarping_column", "DynamicTimeWarping", [DTW[:, :1]], rtol=0, atol=0),
    Case("QEmbedLayerNormalization_uint8", "QEmbedLayerNormalization", _qemb(u8),
         {"epsilon": 1e-5}, outputs=2, atol=1e-5),
    Case("QEmbedLayerNormalization_int8", "QEmbedLayerNormalization", _qemb(i8),
         outputs=2, atol=1e-5),
    Case("QEmbedLayerNormalization_no_segment_no_mask", "QEmbedLayerNormalization",
         _qemb(u8, segments=False, mask=False), outputs=2, atol=1e-5),
    Case("QEmbedLayerNormalization_int8_const", "QEmbedLayerNormalization",
         _qemb(i8, mask=False), constants=tuple(range(2, 7)) + tuple(range(8, 18)),
         outputs=2, atol=1e-5),
]

# MatMulFpQ4: MLAS int4 blobs built here (per column, per 32-value block: float scale, type 1
# a zero point, 16 bytes of nibbles), K a multiple of 32 or not


def _q4_blob(k, n, quant_type):
    blocks = -(-k // 32)
    scale = (r.random((n, blocks, 1)) * 0.1 + 0.01).astype(f32).view(u8)
    parts = [scale]
    if quant_type:
        parts.append(r.integers(0, 16, (n, blocks, 1)).astype(u8))
    parts.append(r.integers(0, 256, (n, blocks, 16)).astype(u8))
    return np.concatenate(parts, axis=-1).reshape(-1)


FQ_A = r.standard_normal((2, 3, 64)).astype(f32)
FQ_A50 = r.standard_normal((4, 50)).astype(f32)
CASES += [
    Case("MatMulFpQ4_zero_point", "MatMulFpQ4", [FQ_A, _q4_blob(64, 6, 1), _a([64, 6], i64)],
         constants=(1, 2), atol=1e-4, rtol=1e-5),
    Case("MatMulFpQ4_symmetric", "MatMulFpQ4", [FQ_A, _q4_blob(64, 5, 0), _a([64, 5], i64)],
         {"blk_quant_type": 0}, constants=(1, 2), atol=1e-4, rtol=1e-5),
    Case("MatMulFpQ4_partial_block", "MatMulFpQ4",
         [FQ_A50, _q4_blob(50, 7, 1), _a([50, 7], i64)], {"blk_quant_type": 1},
         atol=1e-4, rtol=1e-5),
]
CASES += [
    Case("MatMulFpQ4_dynamic_blob", "MatMulFpQ4", [FQ_A, _q4_blob(64, 6, 1), _a([64, 6], i64)],
         atol=1e-4, rtol=1e-5),
    Case("MatMulFpQ4_dynamic_blob_symmetric", "MatMulFpQ4",
         [FQ_A50, _q4_blob(50, 4, 0), _a([50, 4], i64)], {"blk_quant_type": 0},
         atol=1e-4, rtol=1e-5),
]
CASES += [
    Case("QLinearConv_channels_last_1d", "QLinearConv",
         _last(_qconv(np.ascontiguousarray(QX_U8[..., 0]), np.ascontiguousarray(QW_I8[..., 0]),
                      u8, bias=QB)), {"channels_last": 1}, constants=(3,), rtol=0, atol=0),
    Case("QLinearConv_channels_last_3d", "QLinearConv",
         _last(_qconv(np.repeat(QX_I8[..., None], 3, -1), np.repeat(QW_I8[..., None], 2, -1),
                      i8)), {"channels_last": 1, "pads": [1, 0, 0, 1, 0, 1]}, constants=(3,),
         rtol=0, atol=0),
]
