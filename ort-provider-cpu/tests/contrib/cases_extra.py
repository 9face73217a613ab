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
    Case("Pad_pads_2d", "Pad", [P34, _a([[1, 0, 0, 2]], i64)]),
    Case("Pad_negative", "Pad", [P34, _a([-1, 1, 0, -1], i64)]),
    Case("Pad_const_pads", "Pad", [P34, _a([1, 2, 1, 0], i64)], constants=(1,)),
    Case("Pad_float16_reflect", "Pad", [P34.astype(f16), _a([1, 1, 1, 1], i64)],
         {"mode": "reflect"}),
    Case("Unique_special_values", "Unique", [U], outputs=3),
    Case("Unique_random", "Unique", [U_R], outputs=3),
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
