"""Attention-family kernels (Attention, LinearAttention, RotaryEmbedding, RMS/Group/MeanVariance
normalization, TensorScatter, CausalConvWithState, SwiGLU, Swish) against onnxruntime, or onnx's
ReferenceEvaluator where onnxruntime lacks the op version or its result is not the spec's."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from single_node import make_model as single_node_model

import ort
from ort.testing import assert_outputs_match, run_onnxruntime, run_ort, run_reference

RNG = np.random.default_rng(7)
BF16 = np.dtype(ml_dtypes.bfloat16)


def rand(shape, dtype=np.float32, low=-1.0, high=1.0):
    """Uniform random values of ``shape`` cast to ``dtype``."""
    return RNG.uniform(low, high, size=shape).astype(dtype)


def make_model(op, inputs, attrs=None, opset=23, outputs=1):
    """One-node model (``single_node.make_model`` at opset 23): ``inputs`` is a list of arrays
    (None: omitted); ``outputs`` is a count or a list of bools saying which are requested."""
    return single_node_model(op, inputs, attrs, opset, outputs)


def assert_close(got, want, rtol, atol):
    """One output: a tensor of the same dtype and shape, values within tolerance (NaN equal to
    NaN) (:func:`ort.testing.assert_outputs_match`)."""
    assert isinstance(got, np.ndarray), type(got)
    assert_outputs_match([got], [np.asarray(want)], rtol, atol)


def check(op, inputs, attrs=None, opset=23, outputs=1, oracle="ort", rtol=1e-5, atol=1e-6):
    """Compare ours with onnxruntime (``"ort"``) or onnx's ReferenceEvaluator (``"ref"``) on
    every requested output; return ours."""
    model, feeds = make_model(op, inputs, attrs, opset, outputs)
    expected = (run_onnxruntime if oracle == "ort" else run_reference)(model, feeds)
    actual = run_ort(model, feeds)
    assert_outputs_match(actual, expected, rtol, atol)
    return actual


def expect_error(op, inputs, attrs=None, opset=23, outputs=1, match=None):
    """Session creation (ValueError) or the run (ort.OrtError) fails with ``match``."""
    model, feeds = make_model(op, inputs, attrs, opset, outputs)
    with pytest.raises((ValueError, ort.OrtError), match=match):
        run_ort(model, feeds)


# --------------------------------------------------------------------------------------------
# Attention
# --------------------------------------------------------------------------------------------


def qkv(b=2, hq=4, hkv=2, sq=3, skv=5, d=8, dv=6, dtype=np.float32, three_d=False):
    """Random Q, K, V in 4-D (B, H, S, D) or 3-D (B, S, H*D) layout."""
    q = rand((b, hq, sq, d), dtype)
    k, v = rand((b, hkv, skv, d), dtype), rand((b, hkv, skv, dv), dtype)
    if three_d:
        q, k, v = (x.transpose(0, 2, 1, 3).reshape(x.shape[0], x.shape[2], -1) for x in (q, k, v))
    return q, k, v


@pytest.mark.parametrize("opset", [23, 24, 25])
@pytest.mark.parametrize("heads", [(4, 4), (4, 2), (4, 1)], ids=["mha", "gqa", "mqa"])
@pytest.mark.parametrize("three_d", [False, True], ids=["4d", "3d"])
def test_attention_heads_layouts(opset, heads, three_d):
    """MHA/GQA/MQA in 3-D and 4-D layouts, V head size different from Q/K's."""
    hq, hkv = heads
    attrs = {"q_num_heads": hq, "kv_num_heads": hkv} if three_d else {}
    check("Attention", list(qkv(hq=hq, hkv=hkv, three_d=three_d)), attrs, opset)


@pytest.mark.parametrize("attrs", [
    {"scale": 0.3}, {"softcap": 1.5}, {"is_causal": 1}, {"is_causal": 1, "scale": 2.0},
], ids=["scale", "softcap", "causal", "causal_scale"])
@pytest.mark.parametrize("sq,skv", [(3, 5), (5, 3), (4, 4)])
def test_attention_attributes(attrs, sq, skv):
    """scale, softcap and the (bottom-right aligned) causal mask for square/wide/tall scores."""
    check("Attention", list(qkv(sq=sq, skv=skv)), attrs, 23, oracle="ref")


@pytest.mark.parametrize("mask_shape",
                         [(5,), (3, 5), (4, 3, 5), (2, 4, 3, 5), (2, 1, 3, 5), (3, 4)])
@pytest.mark.parametrize("kind", ["bool", "float"])
@pytest.mark.parametrize("causal", [0, 1])
def test_attention_masks(mask_shape, kind, causal):
    """Boolean and additive masks of every broadcastable rank; a short mask is padded with
    disallowed keys."""
    mask = rand(mask_shape) > -0.5 if kind == "bool" else rand(mask_shape)
    q, k, v = qkv()
    if mask.ndim == 1 and causal:
        # the reference evaluator takes the causal frontier's shape from a (1, Skv) mask:
        # compare with the mask broadcast to (Sq, Skv) instead
        model, feeds = make_model("Attention", [q, k, v, np.broadcast_to(mask, (3, 5)).copy()],
                                  {"is_causal": causal}, 24)
        got = run_ort(*make_model("Attention", [q, k, v, mask], {"is_causal": causal}, 24))[0]
        assert_close(got, run_reference(model, feeds)[0], 1e-5, 1e-6)
        return
    check("Attention", [q, k, v, mask], {"is_causal": causal}, 24, oracle="ref")


def test_attention_fully_masked_rows_are_zero():
    """A query row with no allowed key gives a zero row in Y and in mode-3 probabilities."""
    mask = np.array([[True] * 5, [False] * 5, [True, False, False, False, False]])
    q, k, v = qkv()
    out = check("Attention", [q, k, v, mask], {"qk_matmul_output_mode": 3}, 24,
                outputs=[True, False, False, True], oracle="ref")
    assert not np.isnan(out[0]).any()
    assert (out[0][:, :, 1] == 0).all() and (out[1][:, :, 1] == 0).all()
    float_mask = np.where(mask, 0.0, -np.inf).astype(np.float32)
    y = run_ort(*make_model("Attention", [q, k, v, float_mask], {}, 23))[0]
    np.testing.assert_allclose(y, out[0], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("three_d", [False, True], ids=["4d", "3d"])
@pytest.mark.parametrize("causal", [0, 1])
def test_attention_past_and_present(three_d, causal):
    """past_key/past_value are concatenated in front of K/V; present outputs are 4-D."""
    q, k, v = qkv(skv=2, three_d=three_d)
    past_k, past_v = rand((2, 2, 4, 8)), rand((2, 2, 4, 6))
    mask = rand((3, 6))
    attrs = {"is_causal": causal}
    if three_d:
        attrs.update(q_num_heads=4, kv_num_heads=2)
    out = check("Attention", [q, k, v, mask, past_k, past_v], attrs, 24, outputs=3, oracle="ref")
    assert out[1].shape == (2, 2, 6, 8) and out[2].shape == (2, 2, 6, 6)


@pytest.mark.parametrize("mode", [0, 1, 2, 3])
@pytest.mark.parametrize("softmax_precision", [None, 1, 11])
def test_attention_qk_matmul_output_modes(mode, softmax_precision):
    """The 4th output in each mode, with softcap and a mask, and with softmax_precision."""
    attrs = {"qk_matmul_output_mode": mode, "softcap": 3.0 if mode else 0.0}
    if softmax_precision is not None:
        attrs["softmax_precision"] = softmax_precision
    check("Attention", [*qkv(), rand((3, 5))], attrs, 24, outputs=4, oracle="ref")


def test_attention_mode0_is_raw_qk_even_with_softcap():
    """Mode 0 is the raw scaled QK^T, before softcap (as the spec says)."""
    q, k, v = qkv(hq=2, hkv=2)
    attrs = {"qk_matmul_output_mode": 0, "softcap": 0.5, "scale": 0.25}
    qk = run_ort(*make_model("Attention", [q, k, v], attrs, 24, [True, False, False, True]))[1]
    np.testing.assert_allclose(qk, 0.25 * q @ k.transpose(0, 1, 3, 2), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float16, BF16, np.float64], ids=["fp16", "bf16", "fp64"])
@pytest.mark.parametrize("causal", [0, 1])
def test_attention_dtypes(dtype, causal):
    """float16/bfloat16 (float32 arithmetic rounded where the spec rounds) and float64."""
    q, k, v = qkv(dtype=dtype)
    mask = rand((3, 5), dtype)
    out = check("Attention", [q, k, v, mask], {"is_causal": causal, "qk_matmul_output_mode": 2},
                23, outputs=4, oracle="ref", rtol=1e-3, atol=1e-3)
    assert out[0].dtype == dtype and out[1].dtype == dtype


def test_attention_fp16_against_onnxruntime():
    """float16 agrees with onnxruntime within float16 precision."""
    check("Attention", list(qkv(dtype=np.float16)), {"is_causal": 1}, 23, rtol=5e-3, atol=5e-3)


def test_attention_softmax_precision_mode3_is_input_type():
    """With softmax_precision=FLOAT and float16 inputs, the mode-3 output is float16."""
    q, k, v = qkv(dtype=np.float16)
    out = check("Attention", [q, k, v], {"qk_matmul_output_mode": 3, "softmax_precision": 1}, 24,
                outputs=4, oracle="ref", rtol=1e-3, atol=1e-3)
    assert out[1].dtype == np.float16


@pytest.mark.parametrize("causal", [0, 1])
@pytest.mark.parametrize("sq", [1, 3, 6])
def test_attention_nonpad_kv_seqlen(causal, sq):
    """nonpad_kv_seqlen (24+) masks padding keys; causal offsets are per batch, and a negative
    offset fully masks the leading rows."""
    q, k, v = qkv(sq=sq, skv=6)
    nonpad = np.array([6, 4], dtype=np.int64)
    check("Attention", [q, k, v, None, None, None, nonpad], {"is_causal": causal}, 24,
          oracle="ref")
    check("Attention", [q, k, v, rand((sq, 4)), None, None, nonpad], {"is_causal": causal}, 24,
          oracle="ref")


@pytest.mark.parametrize("left,right", [(2, 0), (2, 1), (-1, 1), (0, -1), (1, 1)])
@pytest.mark.parametrize("causal", [0, 1])
@pytest.mark.parametrize("cache", ["none", "past", "nonpad"])
def test_attention_sliding_window(left, right, causal, cache):
    """left/right_window_size (25+) with the three cache layouts."""
    if causal and right > 0:
        right = 0
    q, k, v = qkv(sq=3, skv=6)
    inputs = [q, k, v, rand((3, 6)) > -0.8]
    if cache == "past":
        inputs = [q, k[:, :, :2], v[:, :, :2], rand((3, 6)) > -0.8, k[:, :, 2:], v[:, :, 2:]]
    elif cache == "nonpad":
        inputs += [None, None, np.array([6, 5], dtype=np.int64)]
    attrs = {"is_causal": causal, "left_window_size": left, "right_window_size": right}
    check("Attention", inputs, attrs, 25, oracle="ref")


def test_attention_empty_query():
    """Zero queries give an empty output of the right shape."""
    q, k, v = qkv(sq=0)
    y = run_ort(*make_model("Attention", [q, k, v], {"is_causal": 1}, 23))[0]
    assert y.shape == (2, 4, 0, 6)


@pytest.mark.parametrize("attrs,inputs,opset,match", [
    ({"qk_matmul_output_mode": 4}, "qkv", 23, "qk_matmul_output_mode"),
    ({"softmax_precision": 7}, "qkv", 23, "softmax_precision"),
    ({"left_window_size": -2}, "qkv", 25, "left_window_size"),
    ({}, "3d", 23, "q_num_heads"),
    ({"q_num_heads": 4, "kv_num_heads": 2}, "qkv", 25, "4-D|4D inputs"),
    ({}, "past_key_only", 23, "together"),
    ({"q_num_heads": 3, "kv_num_heads": 2}, "3d", 23, "multiple"),
])
def test_attention_errors(attrs, inputs, opset, match):
    """Invalid attributes and input combinations are rejected with a message."""
    q, k, v = qkv()
    if inputs == "3d":
        q, k, v = qkv(hq=4, hkv=2, three_d=True)
        values = [q, k, v]
    elif inputs == "past_key_only":
        values = [q, k, v, None, rand((2, 2, 1, 8))]
    else:
        values = [q, k, v]
    expect_error("Attention", values, attrs, opset, match=match)


# --------------------------------------------------------------------------------------------
# LinearAttention
# --------------------------------------------------------------------------------------------


def _linear_inputs(rule, b=2, t=4, hq=4, hkv=2, dk=3, dv=5, per_head_decay=False, past=True,
                   beta_heads=None, dtype=np.float32):
    """Inputs of a LinearAttention node for ``rule``."""
    key = rand((b, t, hkv, dk))
    key /= np.linalg.norm(key, axis=-1, keepdims=True)
    inputs = [rand((b, t, hq * dk), dtype), key.reshape(b, t, -1).astype(dtype),
              rand((b, t, hkv * dv), dtype), rand((b, hkv, dk, dv), dtype) if past else None]
    gated, delta = rule in ("gated", "gated_delta"), rule in ("delta", "gated_delta")
    decay_width = hkv if per_head_decay else hkv * dk
    inputs.append(rand((b, t, decay_width), dtype, -1, 0) if gated else None)
    inputs.append(rand((b, t, beta_heads or hkv), dtype, 0, 1) if delta else None)
    while inputs[-1] is None:
        inputs.pop()
    return inputs, {"update_rule": rule, "q_num_heads": hq, "kv_num_heads": hkv}


@pytest.mark.parametrize("rule", ["linear", "gated", "delta", "gated_delta"])
@pytest.mark.parametrize("heads", [(2, 2), (4, 2), (4, 1)], ids=["mha", "gqa", "mqa"])
@pytest.mark.parametrize("t", [1, 5])
def test_linear_attention_rules(rule, heads, t):
    """Every update rule, MHA/GQA/MQA, decode (T=1) and prefill."""
    inputs, attrs = _linear_inputs(rule, t=t, hq=heads[0], hkv=heads[1])
    check("LinearAttention", inputs, attrs, 27, outputs=2, oracle="ref", rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("variant", ["per_head_decay", "no_past", "beta_scalar", "scale", "fp16"])
def test_linear_attention_variants(variant):
    """Per-head decay, omitted past_state, a (B, T, 1) beta, explicit scale, float16."""
    kwargs = {
        "per_head_decay": {"per_head_decay": True},
        "no_past": {"past": False},
        "beta_scalar": {"beta_heads": 1},
        "fp16": {"dtype": np.float16},
    }.get(variant, {})
    inputs, attrs = _linear_inputs("gated_delta", **kwargs)
    if variant == "scale":
        attrs["scale"] = 0.7
    tol = 2e-3 if variant == "fp16" else 1e-5
    check("LinearAttention", inputs, attrs, 27, outputs=2, oracle="ref", rtol=tol, atol=tol)


@pytest.mark.parametrize("rule,drop,match", [
    ("gated", "decay", "requires (the )?decay"),
    ("delta", "beta", "requires (the )?beta"),
    ("linear", None, "forbids (the )?decay"),
    ("bogus", None, "update_rule"),
])
def test_linear_attention_errors(rule, drop, match):
    """Missing or forbidden gate inputs and unknown rules are rejected."""
    inputs, attrs = _linear_inputs("gated_delta")
    if drop == "decay":
        inputs[4] = None
        inputs = inputs[:5]
    elif drop == "beta":
        inputs = inputs[:5]
        inputs[4] = None
    attrs["update_rule"] = rule
    expect_error("LinearAttention", inputs, attrs, 27, outputs=2, match=match)


# --------------------------------------------------------------------------------------------
# RotaryEmbedding
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("interleaved", [0, 1])
@pytest.mark.parametrize("rotary_dim", [0, 4])
@pytest.mark.parametrize("layout", ["4d", "3d"])
@pytest.mark.parametrize("positions", [True, False])
def test_rotary_embedding(interleaved, rotary_dim, layout, positions):
    """Full and partial rotation, halves or interleaved, 3-D/4-D, with/without position ids."""
    b, h, s, d = 2, 3, 4, 8
    x = rand((b, h, s, d)) if layout == "4d" else rand((b, s, h * d))
    half = (rotary_dim or d) // 2
    if positions:
        cos, sin = rand((10, half)), rand((10, half))
        pos = RNG.integers(0, 10, size=(b, s)).astype(np.int64)
        inputs = [x, cos, sin, pos]
    else:
        inputs = [x, rand((b, s, half)), rand((b, s, half))]
    attrs = {"interleaved": interleaved, "rotary_embedding_dim": rotary_dim}
    if layout == "3d":
        attrs["num_heads"] = h
    check("RotaryEmbedding", inputs, attrs, 23)


def test_rotary_embedding_fp16_and_errors():
    """float16 input; a 3-D input without num_heads is rejected."""
    x = rand((1, 2, 3, 4), np.float16)
    cos, sin = rand((1, 3, 2), np.float16), rand((1, 3, 2), np.float16)
    check("RotaryEmbedding", [x, cos, sin], {}, 23, rtol=2e-3, atol=2e-3)
    expect_error("RotaryEmbedding", [rand((1, 3, 8)), rand((1, 3, 2)), rand((1, 3, 2))], {}, 23,
                 match="num_heads")


# --------------------------------------------------------------------------------------------
# normalizations
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape,axis", [((3, 4), -1), ((3, 4), 0), ((2, 3, 4), 1),
                                        ((2, 3, 4), -2), ((2, 3, 4, 5), 2)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_rms_normalization(shape, axis, dtype):
    """Every axis (negative too) and float type; scale broadcast over the normalized shape."""
    x = rand(shape, dtype)
    scale = rand(shape[axis:] if axis >= 0 else shape[axis:], dtype)
    tol = 2e-3 if dtype == np.float16 else 1e-5
    check("RMSNormalization", [x, scale], {"axis": axis, "epsilon": 1e-3}, 23, oracle="ref",
          rtol=tol, atol=tol)


def test_rms_normalization_errors():
    """An out-of-range axis and an unknown stash_type are rejected."""
    expect_error("RMSNormalization", [rand((2, 3)), rand((3,))], {"axis": 2}, 23, match="axis")
    expect_error("RMSNormalization", [rand((2, 3)), rand((3,))], {"stash_type": 3}, 23,
                 match="stash_type")


@pytest.mark.parametrize("shape", [(2, 4), (2, 4, 3), (3, 6, 2, 2), (1, 4, 2, 1, 3)])
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("opset", [18, 21])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_group_normalization(shape, groups, opset, dtype):
    """Opset 18 (scale/bias per group) and 21 (per channel), ranks 2 to 5."""
    params = groups if opset == 18 else shape[1]
    inputs = [rand(shape, dtype), rand((params,), dtype), rand((params,), dtype)]
    tol = 3e-3 if dtype == np.float16 else 1e-5
    check("GroupNormalization", inputs, {"num_groups": groups, "epsilon": 1e-3}, opset,
          rtol=tol, atol=tol)


@pytest.mark.parametrize("opset,params,groups,match", [
    (21, 4, 3, "divisible"), (21, 2, 2, "shape"), (18, 4, 2, "shape"), (21, 4, 0, "num_groups"),
])
def test_group_normalization_errors(opset, params, groups, match):
    """Channels not divisible by groups, scale/bias of the wrong version's shape."""
    inputs = [rand((2, 4, 3)), rand((params,)), rand((params,))]
    expect_error("GroupNormalization", inputs, {"num_groups": groups}, opset, match=match)


@pytest.mark.parametrize("axes", [None, [0, 2, 3], [1], [-1, -2], [0, 1, 2, 3]])
@pytest.mark.parametrize("opset", [9, 13])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_mean_variance_normalization(axes, opset, dtype):
    """Default and explicit (negative) axes, both versions. The function body is ill-typed for
    float16/float64 (float constants), so numpy's formula checks those."""
    attrs = {} if axes is None else {"axes": axes}
    x = rand((2, 3, 4, 5), dtype, -2, 5)
    if dtype == np.float32:
        check("MeanVarianceNormalization", [x], attrs, opset)
        return
    reduce_axes = tuple(axes or (0, 2, 3))
    x64 = x.astype(np.float64)
    centered = x64 - x64.mean(axis=reduce_axes, keepdims=True)
    want = centered / (np.sqrt((centered**2).mean(axis=reduce_axes, keepdims=True)) + 1e-9)
    got = run_ort(*make_model("MeanVarianceNormalization", [x], attrs, opset))[0]
    tol = 5e-3 if dtype == np.float16 else 1e-12
    assert_close(got, want.astype(dtype), tol, tol)


def test_mean_variance_normalization_constant_input():
    """A constant slice normalizes to zeros, not NaN."""
    x = np.full((2, 3, 2, 2), 7.0, np.float32)
    y = run_ort(*make_model("MeanVarianceNormalization", [x], {}, 13))[0]
    assert_close(y, np.zeros_like(x), 0, 0)


# --------------------------------------------------------------------------------------------
# TensorScatter
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("axis,shape", [(-2, (2, 3, 6, 4)), (1, (2, 6, 4)), (2, (2, 3, 6)),
                                        (-1, (2, 3, 6))])
@pytest.mark.parametrize("mode", ["linear", "circular"])
@pytest.mark.parametrize("indices", [True, False])
def test_tensor_scatter(axis, shape, mode, indices):
    """Every axis and mode, with and without write_indices."""
    ax = axis % len(shape)
    upd_shape = list(shape)
    upd_shape[ax] = 3
    write = np.array([3, 1], dtype=np.int64) if mode == "linear" else np.array([5, 2], np.int64)
    inputs = [rand(shape), rand(tuple(upd_shape))] + ([write] if indices else [])
    check("TensorScatter", inputs, {"axis": axis, "mode": mode}, 24, oracle="ref")


@pytest.mark.parametrize("dtype", [np.int64, np.bool_, np.float16, object])
def test_tensor_scatter_types(dtype):
    """Integer, bool, float16 and string caches."""
    past, upd = rand((2, 5, 2), np.float32, 0, 9), rand((2, 2, 2), np.float32, 0, 9)
    if dtype is object:
        past, upd = (x.astype(int).astype(str).astype(object) for x in (past, upd))
    else:
        past, upd = past.astype(dtype), upd.astype(dtype)
    check("TensorScatter", [past, upd, np.array([0, 3], dtype=np.int64)], {"axis": 1}, 24,
          oracle="ref")


def test_tensor_scatter_errors():
    """Axis 0, an unknown mode and a linear write past the end are rejected."""
    past, upd = rand((2, 5, 2)), rand((2, 2, 2))
    expect_error("TensorScatter", [past, upd], {"axis": 0}, 24, match="batch|out of range")
    expect_error("TensorScatter", [past, upd], {"mode": "ring", "axis": 1}, 24, match="mode")
    expect_error("TensorScatter", [past, upd, np.array([4, 0], np.int64)], {"axis": 1}, 24,
                 match="exceed")


# --------------------------------------------------------------------------------------------
# CausalConvWithState, SwiGLU, Swish
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 3, 4])
@pytest.mark.parametrize("length", [1, 2, 6])
@pytest.mark.parametrize("extras", ["none", "bias", "past", "both"])
@pytest.mark.parametrize("activation", ["none", "silu", "swish"])
def test_causal_conv_with_state(k, length, extras, activation):
    """Kernel sizes (1: empty state), short inputs, bias/past_state, fused SiLU."""
    b, c = 2, 3
    inputs = [rand((b, c, length)), rand((c, 1, k))]
    if extras in ("bias", "both"):
        inputs.append(rand((c,)))
    if extras in ("past", "both"):
        inputs += [None] * (3 - len(inputs)) + [rand((b, c, k - 1))]
    check("CausalConvWithState", inputs, {"activation": activation}, 27, outputs=2, oracle="ref")


def test_causal_conv_with_state_fp16_and_errors():
    """float16, and an unknown activation is rejected."""
    inputs = [rand((1, 2, 5), np.float16), rand((2, 1, 3), np.float16)]
    check("CausalConvWithState", inputs, {"activation": "silu"}, 27, outputs=2, oracle="ref",
          rtol=2e-3, atol=2e-3)
    expect_error("CausalConvWithState", inputs, {"activation": "gelu"}, 27, outputs=2,
                 match="activation")


@pytest.mark.parametrize("alpha", [None, 1.702])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, BF16])
def test_swiglu(alpha, dtype):
    """SwiGLU-28 (onnxruntime has no opset 28: the reference checks it), large |A| too."""
    attrs = {} if alpha is None else {"alpha": alpha}
    a, b = rand((2, 3, 4), dtype, -30, 30), rand((2, 3, 4), dtype)
    tol = 1e-2 if dtype == BF16 else 2e-3 if dtype == np.float16 else 1e-6
    check("SwiGLU", [a, b], attrs, 28, oracle="ref", rtol=tol, atol=tol)


def test_swiglu_shape_mismatch():
    """A and B of different shapes are rejected (no broadcasting)."""
    expect_error("SwiGLU", [rand((2, 3)), rand((1, 3))], {}, 28, match="same shape")


@pytest.mark.parametrize("alpha", [None, 0.5, -2.0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("shape", [(), (0, 3), (4, 5)])
def test_swish(alpha, dtype, shape):
    """Swish-24 over scalars, empty and large-magnitude inputs (onnxruntime's approximate
    sigmoid is off by 1e-6 for large |x|: the reference checks)."""
    attrs = {} if alpha is None else {"alpha": alpha}
    tol = 2e-3 if dtype == np.float16 else 1e-6
    check("Swish", [rand(shape, dtype, -40, 40)], attrs, 24, oracle="ref", rtol=tol, atol=tol)


def test_swish_matches_onnxruntime_in_range():
    """Swish agrees with onnxruntime for moderate inputs."""
    check("Swish", [rand((3, 7), np.float32, -8, 8)], {"alpha": 1.5}, 24, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op,inputs,attrs,opset", [
    ("RMSNormalization", [rand((2, 3)), rand((3,))], {}, 23),
    ("Attention", [rand((1, 2, 3, 4))] * 3, {"is_causal": 1}, 23),
    ("GroupNormalization", [rand((2, 4, 3)), rand((4,)), rand((4,))], {"num_groups": 2}, 21),
    ("MeanVarianceNormalization", [rand((2, 3, 4, 5))], {}, 13),
    ("Swish", [rand((2, 3))], {}, 24),
])
def test_kernels_replace_function_bodies(op, inputs, attrs, opset):
    """Ops with a function body run as one kernel node, not as their expansion."""
    model, feeds = make_model(op, inputs, attrs, opset)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    nodes = sess.get_partition().nodes_by_provider
    assert sum(len(v) for v in nodes.values()) == 1, nodes
