"""Contrib-op cases of the standalone com.microsoft ops: Inverse, the com.microsoft Trilu,
Range and GridSample, CDist and WordConvEmbedding."""

from __future__ import annotations

import numpy as np
from contrib_case import Case, rng

r = rng(7)
f16, f32, f64 = np.float16, np.float32, np.float64

# Inverse: well-conditioned batches (identity plus noise)
M3 = (np.eye(3) * 2 + r.standard_normal((2, 3, 3)) * 0.5)
M4 = (np.eye(4) * 3 + r.standard_normal((2, 2, 4, 4)))
M5 = np.eye(5) * 2 + r.standard_normal((5, 5)) * 0.5

# Trilu
T34 = r.standard_normal((2, 3, 4)).astype(f32)
T53 = r.standard_normal((5, 3)).astype(f32)

# GridSample: points inside and outside [-1, 1] so every padding mode matters
GX = r.standard_normal((2, 3, 5, 6)).astype(f32)
GG = r.uniform(-1.3, 1.3, (2, 4, 7, 2)).astype(f32)

# CDist
CA = r.standard_normal((5, 3))
CB = r.standard_normal((4, 3))
CA9 = r.standard_normal((6, 9))
CB9 = r.standard_normal((7, 9))

# WordConvEmbedding: ids > 0 are characters, 0 pads; words of length 0 are left out (onnxruntime
# leaves their rows unwritten)
SEQ = np.array([[3, 4, 5, 0, 0, 0], [1, 2, 0, 0, 0, 0], [5, 5, 5, 5, 5, 6], [2, 0, 3, 0, 0, 0],
                [7, 0, 0, 0, 0, 0]], np.int32)
WW = r.standard_normal((6, 1, 2, 3)).astype(f32)
WW3 = r.standard_normal((4, 1, 3, 3)).astype(f32)
WB = r.standard_normal(6).astype(f32)
WB4 = r.standard_normal(4).astype(f32)
WC = r.standard_normal((8, 3)).astype(f32)
SEQ_R = r.integers(0, 8, (9, 7)).astype(np.int32)  # zeros inside words: looked up as id 0
SEQ_R[:, 0] = r.integers(1, 8, 9)
WW1 = r.standard_normal((5, 1, 1, 3)).astype(f32)


def _scalar(value, dtype):
    return np.array(value, dtype=dtype)


CASES = [
    Case("Inverse_float", "Inverse", [M3.astype(f32)], rtol=1e-4, atol=1e-5),
    Case("Inverse_double_4d", "Inverse", [M4.astype(f64)], rtol=1e-10, atol=1e-12),
    Case("Inverse_float_2d", "Inverse", [M5.astype(f32)], rtol=1e-4, atol=1e-5),
    # onnxruntime inverts float16 in half arithmetic (Eigen::half); ort in float32, rounded once
    Case("Inverse_float16", "Inverse", [M3.astype(f16)], rtol=1e-2, atol=1e-2),
    Case("Trilu_upper", "Trilu", [T34]),
    Case("Trilu_lower_k", "Trilu", [T34, np.array(1, np.int64)], {"upper": 0}),
    Case("Trilu_upper_k_const", "Trilu", [T53, np.array(-1, np.int64)], {"upper": 1},
         constants=(1,)),
    Case("Trilu_lower_neg_k_double", "Trilu", [T34.astype(f64), np.array(-2, np.int64)],
         {"upper": 0}),
    Case("Trilu_int64", "Trilu", [(T34 * 10).astype(np.int64), np.array([2], np.int64)]),
    Case("Trilu_float16", "Trilu", [T53.astype(f16)], {"upper": 0}),
    Case("Range_int32", "Range", [_scalar(1, np.int32), _scalar(10, np.int32),
                                  _scalar(3, np.int32)]),
    Case("Range_int16_down", "Range", [_scalar(10, np.int16), _scalar(-3, np.int16),
                                       _scalar(-4, np.int16)]),
    Case("Range_int64_no_delta", "Range", [_scalar(-2, np.int64), _scalar(5, np.int64)]),
    Case("Range_int32_empty", "Range", [_scalar(5, np.int32), _scalar(1, np.int32),
                                        _scalar(2, np.int32)]),
    Case("Range_float_accumulate", "Range", [_scalar(0.1, f32), _scalar(1.0, f32),
                                             _scalar(0.1, f32)]),
    Case("Range_double_down", "Range", [_scalar(5, f64), _scalar(1, f64), _scalar(-0.7, f64)]),
    Case("Range_float_one_element_shape", "Range", [np.array([1.5], f32), _scalar(4, f32)]),
    Case("Range_float_const", "Range", [_scalar(1, f32), _scalar(10, f32), _scalar(2.5, f32)],
         constants=(0, 1, 2)),
    Case("GridSample_default", "GridSample", [GX, GG], atol=1e-5),
]
for _mode in ("bilinear", "nearest", "bicubic"):
    for _pad in ("zeros", "border", "reflection"):
        for _align in (0, 1):
            CASES.append(Case(f"GridSample_{_mode}_{_pad}_align{_align}", "GridSample",
                              [GX, GG], {"mode": _mode, "padding_mode": _pad,
                                         "align_corners": _align}, atol=1e-5, rtol=1e-5))
CASES += [
    Case("GridSample_float16", "GridSample", [GX.astype(f16), GG.astype(f16)],
         {"mode": "bilinear", "padding_mode": "border"}, atol=2e-3, rtol=2e-3),
    Case("CDist_default_float", "CDist", [CA.astype(f32), CB.astype(f32)], atol=1e-5),
    Case("CDist_sqeuclidean_double", "CDist", [CA, CB], {"metric": "sqeuclidean"},
         rtol=1e-12, atol=1e-12),
    Case("CDist_euclidean_float", "CDist", [CA.astype(f32), CB.astype(f32)],
         {"metric": "euclidean"}, atol=1e-5),
    Case("CDist_euclidean_double_k9", "CDist", [CA9, CB9], {"metric": "euclidean"},
         rtol=1e-12, atol=1e-12),
    Case("CDist_sqeuclidean_float_k9", "CDist", [CA9.astype(f32), CB9.astype(f32)],
         {"metric": "sqeuclidean"}, atol=1e-5),
    # equal rows: |a|^2 + |b|^2 - 2a.b leaves rounding noise (sqrt of ~1e-7) where 0 is exact
    Case("CDist_euclidean_equal_rows", "CDist", [CA9.astype(f32), CA9.astype(f32)],
         {"metric": "euclidean"}, atol=2e-3),
    Case("CDist_empty_rows", "CDist", [CA[:0].astype(f32), CB.astype(f32)]),
    Case("WordConvEmbedding_plain", "WordConvEmbedding", [SEQ, WW, WB, WC], atol=1e-5),
    Case("WordConvEmbedding_attrs", "WordConvEmbedding", [SEQ, WW, WB, WC],
         {"embedding_size": 6, "conv_window_size": 2, "char_embedding_size": 3}, atol=1e-5),
    Case("WordConvEmbedding_window3_const", "WordConvEmbedding", [SEQ, WW3, WB4, WC],
         {"conv_window_size": 3}, constants=(1, 2, 3), atol=1e-5),
    Case("WordConvEmbedding_random_window1", "WordConvEmbedding", [SEQ_R, WW1, WB[:5], WC],
         atol=1e-5),
    Case("WordConvEmbedding_random_window3", "WordConvEmbedding", [SEQ_R, WW3, WB4, WC],
         atol=1e-5),
]
