"""Contrib-op cases of the com.microsoft attention family: Attention, MultiHeadAttention,
RotaryEmbedding, GroupQueryAttention, QAttention (onnxruntime's CPU kernels are the oracle)."""

from __future__ import annotations

import numpy as np
from contrib_case import Case, rng

r = rng(7)
f32, f16, i32, i64 = np.float32, np.float16, np.int32, np.int64


def _n(*shape, scale: float = 1.0) -> np.ndarray:
    """Standard normal float32 sample data of ``shape``."""
    return (r.standard_normal(shape) * scale).astype(f32)


# --------------------------------------------------------------------------------------------
# Attention: input (B=2, S=3, 8), weights (8, 24), 2 heads of 4; past (2, B, 2, P=4, 4)
# --------------------------------------------------------------------------------------------

AX = _n(2, 3, 8)
AW = _n(8, 24, scale=0.5)
AB = _n(24, scale=0.5)
APAST = _n(2, 2, 2, 4, 4)
AW2 = _n(8, 20, scale=0.5)  # qkv_hidden_sizes [8, 8, 4]
AB2 = _n(20, scale=0.5)
A_END = np.array([2, 3], i32)
A_END_START = np.array([3, 2, 0, 1], i32)
A_RAW2 = np.array([[1, 1, 0], [1, 0, 1]], i32)
A_RAW2_PAST = np.array([[1, 0, 1, 1, 1, 1, 0], [1, 1, 1, 1, 0, 1, 1]], i32)
A_RAW3 = (r.random((2, 3, 3)) > 0.3).astype(i32)
A_RAW3[:, :, 0] = 1
A_BIAS = _n(2, 2, 3, 3)
A_BIAS_ONE = _n(1, 1, 3, 3)


def _attention(name: str, inputs, attrs=None, **kw) -> Case:
    """An Attention case with 2 heads (weights and bias constant, as models hold them)."""
    return Case(f"Attention_{name}", "Attention", inputs, {"num_heads": 2, **(attrs or {})},
                constants=kw.pop("constants", (1, 2)), **{"atol": 1e-5, **kw})


ATTENTION = [
    _attention("basic", [AX, AW, AB]),
    _attention("no_bias", [AX, AW], constants=(1,)),
    _attention("weights_fed", [AX, AW, AB], constants=()),
    _attention("float16", [AX.astype(f16), AW.astype(f16), AB.astype(f16)], atol=2e-3,
               rtol=2e-3),
    _attention("mask_end", [AX, AW, AB, A_END]),
    _attention("mask_end_start", [AX, AW, AB, A_END_START]),
    _attention("mask_all_hidden", [AX, AW, AB, np.array([0, 3], i32)]),
    _attention("unidirectional_mask_first_hidden",
               [AX, AW, AB, np.array([[0, 1, 1], [0, 0, 1]], i32)], {"unidirectional": 1}),
    _attention("mask_raw2d", [AX, AW, AB, A_RAW2]),
    _attention("mask_raw3d", [AX, AW, AB, A_RAW3]),
    _attention("mask_filter_value", [AX, AW, AB, A_RAW2], {"mask_filter_value": -50.0}),
    _attention("unidirectional", [AX, AW, AB], {"unidirectional": 1}),
    _attention("unidirectional_mask", [AX, AW, AB, A_RAW2], {"unidirectional": 1}),
    _attention("past_present", [AX, AW, AB, None, APAST], outputs=2),
    _attention("past_unidirectional", [AX, AW, AB, None, APAST], {"unidirectional": 1},
               outputs=2),
    _attention("past_mask_raw2d", [AX, AW, AB, A_RAW2_PAST, APAST], outputs=2),
    _attention("past_mask_end", [AX, AW, AB, np.array([6, 7], i32), APAST], outputs=2),
    _attention("past_mask_end_start", [AX, AW, AB, np.array([7, 6, 2, 0], i32), APAST],
               outputs=2),
    _attention("present_only", [AX, AW, AB], outputs=2),
    _attention("attention_bias", [AX, AW, AB, None, None, A_BIAS]),
    _attention("attention_bias_broadcast", [AX, AW, AB, None, None, A_BIAS_ONE]),
    _attention("attention_bias_mask", [AX, AW, AB, A_END, None, A_BIAS]),
    _attention("qkv_hidden_sizes", [AX, AW2, AB2], {"qkv_hidden_sizes": [8, 8, 4]}),
    _attention("scale", [AX, AW, AB], {"scale": 0.3}),
    _attention("one_head", [AX, AW, AB], {"num_heads": 1}),
    _attention("float16_past_mask", [AX.astype(f16), AW.astype(f16), AB.astype(f16),
                                     A_RAW2_PAST, APAST.astype(f16)],
               {"unidirectional": 1}, outputs=2, atol=2e-3, rtol=2e-3),
]

CASES = ATTENTION
