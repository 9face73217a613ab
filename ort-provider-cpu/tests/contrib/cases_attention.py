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
    _attention("past_sequence_length_ignored", [AX, AW, AB, None, APAST, None, np.array(4, i32)],
               outputs=2),
    _attention("one_head", [AX, AW, AB], {"num_heads": 1}),
    _attention("float16_past_mask", [AX.astype(f16), AW.astype(f16), AB.astype(f16),
                                     A_RAW2_PAST, APAST.astype(f16)],
               {"unidirectional": 1}, outputs=2, atol=2e-3, rtol=2e-3),
]

# --------------------------------------------------------------------------------------------
# MultiHeadAttention: query (B=2, S=3, 8), key/value (B, L=4, 8), 2 heads of 4; past P=5
# --------------------------------------------------------------------------------------------

MQ, MK, MV = _n(2, 3, 8), _n(2, 4, 8), _n(2, 4, 8)
MV6 = _n(2, 4, 6)
MBIAS = _n(24, scale=0.5)
MBIAS6 = _n(22, scale=0.5)
MK4 = np.ascontiguousarray(MK.reshape(2, 4, 2, 4).transpose(0, 2, 1, 3))
MV4 = np.ascontiguousarray(MV.reshape(2, 4, 2, 4).transpose(0, 2, 1, 3))
MPK, MPV = _n(2, 2, 5, 4), _n(2, 2, 5, 4)
M_LENS = np.array([2, 4], i32)
M_RAW = np.array([[1, 1, 0, 1], [1, 0, 0, 1]], i32)
M_RAW_PAST = (r.random((2, 9)) > 0.3).astype(i32)
M_RAW3 = (r.random((2, 3, 4)) > 0.3).astype(i32)
M_BIAS = _n(2, 2, 3, 4)
M_BIAS_PAST = _n(1, 2, 3, 9)


def _mha(name: str, inputs, attrs=None, **kw) -> Case:
    """A MultiHeadAttention case with 2 heads."""
    return Case(f"MultiHeadAttention_{name}", "MultiHeadAttention", inputs,
                {"num_heads": 2, **(attrs or {})}, **{"atol": 1e-5, **kw})


def _half(values) -> list:
    """Float16 copies of the float inputs (int masks stay)."""
    return [v.astype(f16) if v is not None and v.dtype == f32 else v for v in values]


MHA = [
    _mha("basic", [MQ, MK, MV]),
    _mha("self", [MQ, MQ, MQ]),
    _mha("bias", [MQ, MK, MV, MBIAS]),
    _mha("value_width", [MQ, MK, MV6, MBIAS6]),
    _mha("float16", _half([MQ, MK, MV, MBIAS]), atol=2e-3, rtol=2e-3),
    _mha("mask_lengths", [MQ, MK, MV, None, M_LENS]),
    _mha("mask_lengths_cumulative", [MQ, MK, MV, None, np.array([2, 4, 0, 3, 6, 0, 2, 6], i32)]),
    _mha("mask_raw2d", [MQ, MK, MV, MBIAS, M_RAW]),
    _mha("mask_raw3d", [MQ, MK, MV, None, M_RAW3]),
    _mha("mask_filter_value", [MQ, MK, MV, None, M_RAW], {"mask_filter_value": -3.0}),
    _mha("attention_bias", [MQ, MK, MV, None, None, M_BIAS]),
    _mha("attention_bias_mask", [MQ, MK, MV, MBIAS, M_LENS, M_BIAS[:1]]),
    _mha("unidirectional", [MQ, MQ, MQ], {"unidirectional": 1}),
    _mha("unidirectional_mask", [MQ, MQ, MQ, MBIAS, np.array([[0, 1, 1], [1, 1, 0]], i32)],
         {"unidirectional": 1}),
    _mha("scale", [MQ, MK, MV], {"scale": 0.25}),
    _mha("cross_bnsh", [MQ, MK4, MV4]),
    _mha("cross_bnsh_bias", [MQ, MK4, MV4, MBIAS]),
    _mha("cross_bnsh_mask", [MQ, MK4, MV4, None, M_RAW]),
    _mha("past_present", [MQ, MK, MV, None, None, None, MPK, MPV], outputs=3),
    _mha("past_bias_mask", [MQ, MK, MV, MBIAS, M_RAW_PAST, None, MPK, MPV], outputs=3),
    _mha("past_lengths", [MQ, MK, MV, None, np.array([7, 9], i32), None, MPK, MPV],
         outputs=3),
    _mha("past_attention_bias", [MQ, MK, MV, None, None, M_BIAS_PAST, MPK, MPV], outputs=3),
    _mha("past_unidirectional", [MQ, MQ, MQ, None, None, None, MPK, MPV],
         {"unidirectional": 1}, outputs=3),
    _mha("present_only", [MQ, MK, MV], outputs=3),
    _mha("float16_past", _half([MQ, MK, MV, MBIAS, M_RAW_PAST, None, MPK, MPV]),
         outputs=3, atol=2e-3, rtol=2e-3),
]

# --------------------------------------------------------------------------------------------
# RotaryEmbedding (com.microsoft): (B=2, S=3, N=2 x H=8) or BNSH; caches of 16 positions
# --------------------------------------------------------------------------------------------

_angles = np.arange(16)[:, None] * (1.0 / 10000 ** (np.arange(4) / 4))[None, :]
RCOS, RSIN = np.cos(_angles).astype(f32), np.sin(_angles).astype(f32)
RCOS2, RSIN2 = RCOS[:, :2].copy(), RSIN[:, :2].copy()
RX = _n(2, 3, 16)
RX4 = _n(2, 2, 3, 8)
RPOS = np.array([[0, 1, 2], [5, 6, 7]], i64)
RSTART = np.array([4], i64)


def _rotary(name: str, inputs, attrs=None, **kw) -> Case:
    """A com.microsoft RotaryEmbedding case."""
    return Case(f"RotaryEmbedding_{name}", "RotaryEmbedding", inputs, attrs or {},
                **{"atol": 1e-5, **kw})


ROTARY = [
    _rotary("halves", [RX, RPOS, RCOS, RSIN]),
    _rotary("interleaved", [RX, RPOS, RCOS, RSIN], {"interleaved": 1}),
    _rotary("start_position", [RX, RSTART, RCOS, RSIN]),
    _rotary("bnsh", [RX4, RPOS, RCOS, RSIN]),
    _rotary("bnsh_interleaved", [RX4, RSTART, RCOS, RSIN], {"interleaved": 1}),
    _rotary("num_heads", [RX, RPOS, RCOS, RSIN], {"num_heads": 2}),
    _rotary("partial", [RX, RPOS, RCOS2, RSIN2], {"num_heads": 2, "rotary_embedding_dim": 4}),
    _rotary("partial_interleaved", [RX4, RPOS, RCOS2, RSIN2],
            {"num_heads": 2, "rotary_embedding_dim": 4, "interleaved": 1}),
    _rotary("float16", _half([RX, RPOS, RCOS, RSIN]), atol=2e-3, rtol=2e-3),
    _rotary("packed_batching", [RX, RPOS, RCOS, RSIN], {"is_packed_batching": 1}),
    _rotary("constant_caches", [RX, RPOS, RCOS, RSIN], constants=(2, 3)),
]

# --------------------------------------------------------------------------------------------
# GroupQueryAttention: 4 query heads over 2 key/value heads of 8; prompt S=4 (B=2), token
# generation S=1 over a past cache, a subsequent prompt (B=1, S=3) after 4 cached keys
# --------------------------------------------------------------------------------------------

GQ, GK, GV = _n(2, 4, 32), _n(2, 4, 16), _n(2, 4, 16)
GQ1, GK1, GV1 = _n(2, 1, 32), _n(2, 1, 16), _n(2, 1, 16)
GPK, GPV = _n(2, 2, 6, 8), _n(2, 2, 6, 8)
GPK8, GPV8 = _n(2, 2, 8, 8), _n(2, 2, 8, 8)
GPK0 = np.zeros((2, 2, 0, 8), f32)
G_PROMPT = [np.array([3, 3], i32), np.array(4, i32)]
G_STEP = [np.array([4, 6], i32), np.array(7, i32)]  # 5 and 7 keys after this token
G_STATIC = [np.array([4, 2], i32), np.array(5, i32)]  # inside a larger (8) cache buffer
# rotary needs head size 16 on onnxruntime's CPU kernel
_gangles = np.arange(32)[:, None] * (1.0 / 10000 ** (np.arange(8) / 8))[None, :]
GCOS, GSIN = np.cos(_gangles).astype(f32), np.sin(_gangles).astype(f32)
RQ, RK, RV = _n(2, 4, 64), _n(2, 4, 32), _n(2, 4, 32)
RQ1, RK1, RV1 = _n(2, 1, 64), _n(2, 1, 32), _n(2, 1, 32)
RPK, RPV = _n(2, 2, 6, 16), _n(2, 2, 6, 16)
RPACKED1 = _n(2, 1, 128)
GPACKED = _n(2, 4, 64)
# an int8 KV cache (kv_cache_bit_width 8) with per-tensor or per-channel scales
GPK_I8, GPV_I8 = (GPK * 30).astype(np.int8), (GPV * 30).astype(np.int8)
G_QUANT = {"k_quant_type": "PER_TENSOR", "v_quant_type": "PER_TENSOR", "kv_cache_bit_width": 8}
G_SCALES = [np.array(0.05, f32), np.array(0.04, f32)]
# 4-bit caches: two values (+ 8) a byte, low nibble first
GPK_U4, GPV_U4 = (r.integers(0, 256, (2, 2, 6, 4)).astype(np.uint8) for _ in range(2))
GPK_U4_8 = r.integers(0, 256, (2, 2, 8, 4)).astype(np.uint8)
G_CHANNEL_SCALES = [(r.random(16) * 0.05 + 0.01).astype(f32),
                    (r.random(16) * 0.05 + 0.01).astype(f32)]
GPACKED1 = _n(2, 1, 64)


def _gqa(name: str, inputs, attrs=None, outputs=3, **kw) -> Case:
    """A GroupQueryAttention case: num_heads 4, kv_num_heads 2."""
    return Case(f"GroupQueryAttention_{name}", "GroupQueryAttention", inputs,
                {"num_heads": 4, "kv_num_heads": 2, **(attrs or {})}, outputs=outputs,
                **{"atol": 1e-5, **kw})


GQA = [
    _gqa("prompt", [GQ, GK, GV, None, None, *G_PROMPT]),
    _gqa("prompt_output_only", [GQ, GK, GV, None, None, *G_PROMPT], outputs=1),
    _gqa("prompt_empty_past", [GQ, GK, GV, GPK0, GPK0, *G_PROMPT]),
    _gqa("prompt_padded", [GQ, GK, GV, None, None, np.array([3, 1], i32), np.array(4, i32)]),
    _gqa("token", [GQ1, GK1, GV1, GPK, GPV, *G_STEP]),
    _gqa("token_constant_total", [GQ1, GK1, GV1, GPK, GPV, *G_STEP], constants=(6,)),
    _gqa("token_static_cache", [GQ1, GK1, GV1, GPK8, GPV8, *G_STATIC]),
    _gqa("subsequent_prompt", [GQ[:1, :3], GK[:1, :3], GV[:1, :3], GPK[:1, :, :4],
                               GPV[:1, :, :4], np.array([6], i32), np.array(7, i32)]),
    _gqa("prompt_rotary", [RQ, RK, RV, None, None, *G_PROMPT, GCOS, GSIN], {"do_rotary": 1}),
    _gqa("token_rotary", [RQ1, RK1, RV1, RPK, RPV, *G_STEP, GCOS, GSIN], {"do_rotary": 1}),
    _gqa("token_rotary_interleaved", [RQ1, RK1, RV1, RPK, RPV, *G_STEP, GCOS, GSIN],
         {"do_rotary": 1, "rotary_interleaved": 1}),
    _gqa("prompt_rotary_partial", [_n(2, 4, 128), _n(2, 4, 64), _n(2, 4, 64), None, None,
                                    *G_PROMPT, GCOS, GSIN], {"do_rotary": 1}),
    _gqa("prompt_padded_rotary", [RQ, RK, RV, None, None, np.array([3, 1], i32),
                                  np.array(4, i32), GCOS, GSIN], {"do_rotary": 1}),
    _gqa("subsequent_prompt_rotary", [RQ[:1, :3], RK[:1, :3], RV[:1, :3], RPK[:1, :, :4],
                                      RPV[:1, :, :4], np.array([6], i32), np.array(7, i32),
                                      GCOS, GSIN], {"do_rotary": 1}),
    _gqa("token_rotary_position_ids", [RQ1, RK1, RV1, RPK, RPV, *G_STEP, GCOS, GSIN,
                                       np.array([[9], [3]], i64)], {"do_rotary": 1}),
    _gqa("prompt_rotary_position_ids",
         [RQ, RK, RV, None, None, *G_PROMPT, GCOS, GSIN, np.array([[0, 1, 2, 3], [2, 3, 4, 5]],
                                                                   i64)], {"do_rotary": 1}),
    _gqa("prompt_local_window", [GQ, GK, GV, None, None, *G_PROMPT], {"local_window_size": 2}),
    _gqa("token_local_window", [GQ1, GK1, GV1, GPK, GPV, *G_STEP], {"local_window_size": 3}),
    _gqa("prompt_softcap", [GQ * 4, GK, GV, None, None, *G_PROMPT], {"softcap": 2.0}),
    _gqa("prompt_smooth_softmax", [GQ, GK, GV, None, None, *G_PROMPT], {"smooth_softmax": 1}),
    _gqa("token_smooth_softmax", [GQ1, GK1, GV1, GPK, GPV, *G_STEP], {"smooth_softmax": 1}),
    _gqa("prompt_head_sink", [GQ, GK, GV, None, None, *G_PROMPT, None, None, None, None,
                              _n(4)]),
    _gqa("token_head_sink_window", [GQ1, GK1, GV1, GPK, GPV, *G_STEP, None, None, None, None,
                                    _n(4)], {"local_window_size": 2}),
    _gqa("prompt_all_options", [GQ * 3, GK, GV, None, None, *G_PROMPT, None, None, None,
                                _n(1, 4, 4, 4)],
         {"local_window_size": 2, "softcap": 1.5, "smooth_softmax": 1, "scale": 0.3}),
    _gqa("prompt_scale", [GQ, GK, GV, None, None, *G_PROMPT], {"scale": 0.2}),
    _gqa("prompt_attention_bias", [GQ, GK, GV, None, None, *G_PROMPT, None, None, None,
                                   _n(2, 4, 4, 4)]),
    _gqa("token_attention_bias", [GQ1, GK1, GV1, GPK, GPV, *G_STEP, None, None, None,
                                  _n(1, 1, 1, 7)]),
    _gqa("prompt_packed", [GPACKED, None, None, None, None, *G_PROMPT]),
    _gqa("token_packed_rotary", [RPACKED1, None, None, RPK, RPV, *G_STEP, GCOS, GSIN],
         {"do_rotary": 1}),
    _gqa("prompt_float16", _half([GQ, GK, GV, None, None, *G_PROMPT]), atol=2e-3, rtol=2e-3),
    _gqa("token_float16_rotary", _half([RQ1, RK1, RV1, RPK, RPV, *G_STEP, GCOS, GSIN]),
         {"do_rotary": 1}, atol=2e-3, rtol=2e-3),
    _gqa("prompt_qk_before_softmax", [GQ, GK, GV, None, None, *G_PROMPT], {"qk_output": 1},
         outputs=4),
    _gqa("prompt_qk_after_softmax", [GQ, GK, GV, None, None, *G_PROMPT], {"qk_output": 2},
         outputs=4),
    _gqa("token_qk_softcap_window", [GQ1, GK1, GV1, GPK, GPV, *G_STEP],
         {"qk_output": 1, "softcap": 1.0, "local_window_size": 3}, outputs=4),
    _gqa("prompt_not_causal", [GQ, GK, GV, None, None, *G_PROMPT], {"causal": 0}),
    _gqa("token_int8_cache", [GQ1, GK1, GV1, GPK_I8, GPV_I8, *G_STEP, *[None] * 5, *G_SCALES],
         G_QUANT),
    _gqa("token_int8_cache_per_channel", [GQ1, GK1, GV1, GPK_I8, GPV_I8, *G_STEP, *[None] * 5,
                                          *G_CHANNEL_SCALES],
         {**G_QUANT, "k_quant_type": "PER_CHANNEL", "v_quant_type": "PER_CHANNEL"}),
    _gqa("token_int8_cache_rotary", [RQ1, RK1, RV1, (RPK * 30).astype(np.int8),
                                     (RPV * 30).astype(np.int8), *G_STEP, GCOS, GSIN,
                                     *[None] * 3, *G_SCALES], {**G_QUANT, "do_rotary": 1}),
    _gqa("token_int4_cache", [GQ1, GK1, GV1, GPK_U4, GPV_U4, *G_STEP, *[None] * 5,
                              np.array(0.3, f32), np.array(0.2, f32)],
         {**G_QUANT, "kv_cache_bit_width": 4}),
    _gqa("token_int4_cache_per_channel_static",
         [GQ1, GK1, GV1, GPK_U4_8, GPK_U4_8, *G_STATIC, *[None] * 5, *G_CHANNEL_SCALES],
         {"k_quant_type": "PER_CHANNEL", "v_quant_type": "PER_CHANNEL",
          "kv_cache_bit_width": 4}),
    _gqa("prompt_equal_heads", [GQ, GQ, GQ, None, None, *G_PROMPT], {"kv_num_heads": 4}),
]

# --------------------------------------------------------------------------------------------
# QAttention: quantized input (B=2, S=3, 8) and weights (8, 24), float bias and scales
# --------------------------------------------------------------------------------------------

QX_U8 = r.integers(0, 256, (2, 3, 8)).astype(np.uint8)
QW_I8 = r.integers(-128, 128, (8, 24)).astype(np.int8)
QW_U8 = r.integers(0, 256, (8, 24)).astype(np.uint8)
QB = _n(24, scale=0.5)
QS_X, QS_W = np.array(0.02, f32), np.array(0.01, f32)
QS_W_COL = (r.random(24) * 0.02 + 0.001).astype(f32)
QZ_U8 = np.array(128, np.uint8)  # onnxruntime's CPU kernel takes uint8 inputs only
QZ_W_U8 = np.array(120, np.uint8)
QZ_W_COL = r.integers(110, 140, 24).astype(np.uint8)


def _qattention(name: str, inputs, attrs=None, **kw) -> Case:
    """A QAttention case with 2 heads (weights, bias, scales and zero points constant)."""
    return Case(f"QAttention_{name}", "QAttention", inputs, {"num_heads": 2, **(attrs or {})},
                constants=kw.pop("constants", (1, 2, 3, 4, 6, 7)), **{"atol": 1e-4, **kw})


QATTENTION = [
    _qattention("u8_s8", [QX_U8, QW_I8, QB, QS_X, QS_W, None, QZ_U8]),
    _qattention("u8_u8", [QX_U8, QW_U8, QB, QS_X, QS_W, None, QZ_U8, QZ_W_U8]),
    _qattention("no_zero_points", [QX_U8, QW_I8, QB, QS_X, QS_W]),
    _qattention("per_column_scale", [QX_U8, QW_I8, QB, QS_X, QS_W_COL, None, QZ_U8]),
    _qattention("per_column_zero_point", [QX_U8, QW_U8, QB, QS_X, QS_W_COL, None, QZ_U8,
                                          QZ_W_COL]),
    _qattention("mask_end", [QX_U8, QW_I8, QB, QS_X, QS_W, A_END, QZ_U8]),
    _qattention("mask_raw2d", [QX_U8, QW_I8, QB, QS_X, QS_W, A_RAW2, QZ_U8]),
    _qattention("unidirectional", [QX_U8, QW_I8, QB, QS_X, QS_W, None, QZ_U8],
                {"unidirectional": 1}),
    _qattention("past_present", [QX_U8, QW_I8, QB, QS_X, QS_W, None, QZ_U8, None, APAST],
                outputs=2),
    _qattention("scale", [QX_U8, QW_I8, QB, QS_X, QS_W, None, QZ_U8], {"scale": 0.1}),
    _qattention("input_fed", [QX_U8, QW_I8, QB, QS_X, QS_W, None, QZ_U8], constants=(1, 2)),
    _qattention("float16", [QX_U8, QW_I8, QB.astype(f16), QS_X.astype(f16),
                            QS_W.astype(f16), None, QZ_U8], atol=3e-3, rtol=3e-3),
]

# --------------------------------------------------------------------------------------------
# DecoderMaskedMultiHeadAttention: one token (B=2, 1, 16), 2 heads of 8, a buffer of 6 keys
# holding 3; beam search as 1 batch x 2 beams
# --------------------------------------------------------------------------------------------

DQ, DK, DV = _n(2, 1, 16), _n(2, 1, 16), _n(2, 1, 16)
DPK, DPV = _n(2, 2, 6, 8), _n(2, 2, 6, 8)
DLEN = np.array(3, i32)
DBIAS = _n(48, scale=0.5)
DCROSS_K, DCROSS_V = _n(2, 2, 5, 8), _n(2, 2, 5, 8)
D_INDIRECTION = np.array([[[1, 0, 1, 0, 0, 0], [0, 0, 1, 1, 0, 0]]], i32)
D_SHARE = {"past_present_share_buffer": 1}


def _dmmha(name: str, inputs, attrs=None, outputs=3, **kw) -> Case:
    """A DecoderMaskedMultiHeadAttention case with 2 heads."""
    return Case(f"DecoderMaskedMultiHeadAttention_{name}", "DecoderMaskedMultiHeadAttention",
                inputs, {"num_heads": 2, **(attrs or {})}, outputs=outputs,
                **{"atol": 1e-5, **kw})


MHA += [  # one decoding step over a shared buffer, as DecoderMaskedMultiHeadAttention
    _mha("shared_buffer", [DQ, DK, DV, None, None, None, DPK, DPV, DLEN], outputs=3),
    _mha("shared_buffer_beam", [DQ, DK, DV, DBIAS, None, None, DPK, DPV, DLEN,
                                D_INDIRECTION], outputs=3),
    _mha("shared_buffer_mask", [DQ, DK, DV, None, np.array([[1, 0, 1, 1], [0, 1, 1, 1]], i32),
                                None, DPK, DPV, DLEN], outputs=3),
]

DMMHA = [
    _dmmha("self", [DQ, DK, DV, None, None, DPK, DPV, DLEN], D_SHARE),
    _dmmha("self_bias", [DQ, DK, DV, None, None, DPK, DPV, DLEN, None, None, DBIAS], D_SHARE),
    _dmmha("self_mask", [DQ, DK, DV, np.array([[1, 0, 1, 1], [0, 1, 1, 1]], i32), None, DPK,
                         DPV, DLEN], D_SHARE),
    _dmmha("self_mask_filter_value", [DQ, DK, DV, np.array([[1, 0, 1, 1], [0, 1, 1, 1]], i32),
                                      None, DPK, DPV, DLEN],
           {**D_SHARE, "mask_filter_value": -2.0}),
    _dmmha("self_attention_bias", [DQ, DK, DV, None, _n(2, 2, 1, 4), DPK, DPV, DLEN],
           D_SHARE),
    _dmmha("self_scale", [DQ, DK, DV, None, None, DPK, DPV, DLEN], {**D_SHARE, "scale": 0.5}),
    _dmmha("beam_search", [DQ, DK, DV, None, None, DPK, DPV, DLEN, np.array(2, i32),
                           D_INDIRECTION], D_SHARE),
    _dmmha("cross", [DQ, DCROSS_K, DCROSS_V], outputs=1),
    _dmmha("cross_bias", [DQ, DCROSS_K, DCROSS_V, None, None, None, None, None, None, None,
                          DBIAS], outputs=1),
    _dmmha("cross_mask", [DQ, DCROSS_K, DCROSS_V, np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]],
                                                           i32)], outputs=1),
    _dmmha("float16", _half([DQ, DK, DV, None, None, DPK, DPV, DLEN]), D_SHARE, atol=2e-3,
           rtol=2e-3),
]

# --------------------------------------------------------------------------------------------
# SparseAttention: 4 query heads over 2 key/value heads of 16, blocks of 2 in a buffer of 8;
# layouts (CSR) for heads 0, 2 and 1, 3
# --------------------------------------------------------------------------------------------

_dense = np.tril(np.ones((4, 4), bool))
_dense[2:, 0] = False
_dense2 = np.tril(np.ones((4, 4), bool))
_dense2[3, 1:3] = False
S_ROWS = np.stack([np.concatenate([[0], np.cumsum(d.sum(1))]) for d in (_dense, _dense2)]
                  ).astype(i32)
S_COLS = np.stack([np.nonzero(d)[1] for d in (_dense, _dense2)]).astype(i32)
SPK, SPV = _n(2, 2, 8, 16), _n(2, 2, 8, 16)
_sangles = np.arange(8)[:, None] * (1.0 / 10000 ** (np.arange(8) / 8))[None, :]
SCOS, SSIN = np.cos(_sangles).astype(f32), np.sin(_sangles).astype(f32)


def _sparse(name: str, inputs, attrs=None, **kw) -> Case:
    """A SparseAttention case (onnxruntime's CPU kernel needs present to share past's
    buffer, which only IO binding gives: these cases are expected failures of the oracle)."""
    return Case(f"SparseAttention_{name}", "SparseAttention", inputs,
                {"num_heads": 4, "kv_num_heads": 2, "sparse_block_size": 2, **(attrs or {})},
                outputs=3, **{"atol": 1e-5, **kw})


SPARSE = [
    _sparse("prompt", [RQ, RK, RV, SPK, SPV, S_ROWS, S_COLS, np.array([4], i32),
                       np.array([4, 4], i32)]),
    _sparse("token_rotary", [RQ1, RK1, RV1, SPK, SPV, S_ROWS, S_COLS, np.array([6], i32),
                             np.array([6, 6], i32), SCOS, SSIN], {"do_rotary": 1}),
]

# forms ort runs that onnxruntime's CPU kernels refuse (expected failures of the oracle)
UNSUPPORTED_BY_ORACLE = [
    _attention("mask_raw4d", [AX, AW, AB, np.tril(np.ones((2, 1, 5, 5), i32))]),
    _attention("past_mask_raw4d", [AX, AW, AB, np.tril(np.ones((2, 1, 8, 8), i32)), APAST],
               outputs=2),
    _mha("packed_qkv", [np.stack([MQ.reshape(2, 3, 2, 4)] * 3, axis=3)]),
    _mha("packed_kv", [MQ, np.stack([MK.reshape(2, 4, 2, 4), MV.reshape(2, 4, 2, 4)],
                                    axis=3)]),
]

CASES = ATTENTION + MHA + ROTARY + GQA + QATTENTION + DMMHA + SPARSE + UNSUPPORTED_BY_ORACLE
