"""The com.microsoft contrib kernels the optimizer emits (FusedConv, FusedGemm, Gelu, BiasGelu,
FastGelu, LayerNormalization, SkipLayerNormalization, Attention) against onnxruntime, which
implements the same contrib ops, on single-node models."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ort.testing import assert_outputs_match, node_model, run_onnxruntime, run_ort

RNG = np.random.default_rng(11)
MS = "com.microsoft"


def rand(shape, dtype=np.float32, low=-2.0, high=2.0):
    """Uniform random values of ``shape`` cast to ``dtype``."""
    return RNG.uniform(low, high, size=shape).astype(dtype)


def make_model(op, inputs, attrs=None, outputs=1, domain=MS, const=(), opset=17):
    """One-node model of ``domain:op`` (:func:`ort.testing.node_model`, IR 9) and its feeds;
    ``outputs`` is a count or a list of requested flags, each typed like the first input."""
    count = outputs if isinstance(outputs, int) else len(outputs)
    return node_model(op, inputs, attrs, outputs=outputs, domain=domain, opset=opset,
                      constants=const, output_types=[inputs[0].dtype] * count, ir_version=9)


def check(op, inputs, attrs=None, outputs=1, rtol=1e-5, atol=1e-5, const=(), expected=None):
    """Ours vs onnxruntime (or ``expected``) on a one-node model: dtype, shape, values."""
    model, feeds = make_model(op, inputs, attrs, outputs, const=const)
    want = expected if expected is not None else run_onnxruntime(model, feeds)
    got = run_ort(model, feeds)
    assert all(isinstance(g, np.ndarray) for g in got), [type(g) for g in got]
    assert_outputs_match(got, [np.asarray(w) for w in want], rtol, atol)
    return got


# ------------------------------------------------------------------------------------------
# FusedConv
# ------------------------------------------------------------------------------------------

CONV_ACTIVATIONS = [
    ({}, "none"),
    ({"activation": "Relu"}, "relu"),
    ({"activation": "Sigmoid"}, "sigmoid"),
    ({"activation": "Tanh"}, "tanh"),
    ({"activation": "LeakyRelu", "activation_params": [0.2]}, "leaky"),
    ({"activation": "Clip", "activation_params": [-0.5, 0.7]}, "clip"),
    ({"activation": "HardSigmoid", "activation_params": [0.3, 0.4]}, "hardsigmoid"),
]


@pytest.mark.parametrize("act", [a for a, _ in CONV_ACTIVATIONS],
                         ids=[i for _, i in CONV_ACTIVATIONS])
@pytest.mark.parametrize("with_bias", [True, False])
def test_fused_conv_activations(act, with_bias):
    x, w = rand((2, 3, 7, 6)), rand((4, 3, 3, 3))
    b = rand((4,)) if with_bias else None
    attrs = dict(act, pads=[1, 1, 1, 1], strides=[1, 2])
    check("FusedConv", [x, w, b], attrs, const=(1, 2))


@pytest.mark.parametrize("act", [{"activation": "Relu"}, {"activation": "LeakyRelu",
                                                         "activation_params": [0.1]}])
def test_fused_conv_with_sum_input(act):
    x, w, b = rand((2, 4, 5, 5)), rand((6, 2, 3, 3)), rand((6,))
    z = rand((2, 6, 3, 3))
    check("FusedConv", [x, w, b, z], dict(act, group=2))


@pytest.mark.parametrize("attrs", [{"dilations": [2]}, {"auto_pad": "SAME_UPPER"}])
def test_fused_conv_1d(attrs):
    x, w = rand((1, 2, 11)), rand((3, 2, 3))
    check("FusedConv", [x, w], dict(attrs, activation="Tanh"))


@pytest.mark.parametrize("act", [a for a, _ in CONV_ACTIVATIONS],
                         ids=[i for _, i in CONV_ACTIVATIONS])
@pytest.mark.parametrize("case", [
    ((3, 4, 9, 8), (6, 4, 3, 3), {"pads": [1, 1, 1, 1]}),  # chunks of rows
    ((5, 4, 3, 3), (6, 2, 3, 3), {"pads": [1, 1, 1, 1], "group": 2}),  # chunks of images
    ((3, 4, 9, 8), (6, 4, 1, 1), {}),  # 1x1: X itself
    ((2, 6, 9, 8), (6, 1, 3, 3), {"pads": [1, 1, 1, 1], "group": 6}),  # depthwise
    ((2, 6, 9, 8), (6, 1, 3, 3), {"strides": [2, 2], "group": 6}),
], ids=["rows", "images", "pointwise", "depthwise", "depthwise-s2"])
def test_fused_conv_epilogue_per_chunk(case, act, monkeypatch):
    """Bias, the sum input Z and the activation applied chunk by chunk (small budgets split
    the GEMM columns into several chunks and the depthwise channels into blocks)."""
    from ort_provider_cpu.kernels import conv

    monkeypatch.setattr(conv, "_COLUMN_BUDGET", 64)
    monkeypatch.setattr(conv, "_MIN_COLUMNS", 20)
    monkeypatch.setattr(conv, "_DEPTHWISE_COLUMNS", 100)
    x_shape, w_shape, attrs = case
    x, w, b = rand(x_shape), rand(w_shape), rand(w_shape[:1])
    h, wd = x_shape[2:]
    s = attrs.get("strides", [1, 1])
    pad = attrs.get("pads", [0] * 4)
    out = [(h + pad[0] + pad[2] - w_shape[2]) // s[0] + 1,
           (wd + pad[1] + pad[3] - w_shape[3]) // s[1] + 1]
    z = rand((x_shape[0], w_shape[0], *out))
    check("FusedConv", [x, w, b, z], dict(act, **attrs), const=(1, 2))


def test_fused_conv_rejects_unknown_activation():
    model, feeds = make_model("FusedConv", [rand((1, 1, 3, 3)), rand((1, 1, 2, 2))],
                              {"activation": "Softmax"})
    with pytest.raises(Exception, match="activation"):
        run_ort(model, feeds)


def test_fused_conv_rejects_wrong_parameter_count():
    model, feeds = make_model("FusedConv", [rand((1, 1, 3, 3)), rand((1, 1, 2, 2))],
                              {"activation": "Clip", "activation_params": [0.0]})
    with pytest.raises(Exception, match="activation_params"):
        run_ort(model, feeds)


# ------------------------------------------------------------------------------------------
# FusedGemm
# ------------------------------------------------------------------------------------------

GEMM_ACTIVATIONS = [
    {"activation": "Relu"}, {"activation": "Sigmoid"}, {"activation": "Tanh"},
    {"activation": "LeakyRelu", "activation_alpha": 0.3},
    {"activation": "HardSigmoid", "activation_alpha": 0.3, "activation_beta": 0.6},
    {"activation": "Elu", "activation_alpha": 0.7}, {"activation": "Softsign"},
    {"activation": "Softplus"}, {"activation": "ThresholdedRelu", "activation_alpha": 0.4},
    {"activation": "Selu", "activation_alpha": 1.5, "activation_gamma": 1.2},
]


@pytest.mark.parametrize("act", GEMM_ACTIVATIONS, ids=lambda a: a["activation"])
def test_fused_gemm_activations(act):
    a, b, c = rand((4, 5)), rand((5, 3)), rand((3,))
    check("FusedGemm", [a, b, c], act)


@pytest.mark.parametrize("attrs", [{"transA": 1}, {"transB": 1}, {"alpha": 0.5, "beta": 2.0},
                                   {"transA": 1, "transB": 1, "alpha": 1.5}])
def test_fused_gemm_gemm_attributes(attrs):
    a = rand((5, 4)) if attrs.get("transA") else rand((4, 5))
    b = rand((3, 5)) if attrs.get("transB") else rand((5, 3))
    check("FusedGemm", [a, b, rand((4, 1))], dict(attrs, activation="LeakyRelu",
                                                   activation_alpha=0.05))


def test_fused_gemm_without_c():
    check("FusedGemm", [rand((3, 4)), rand((4, 2))], {"activation": "Relu"})


# ------------------------------------------------------------------------------------------
# Gelu family
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(2, 3, 8), (5,), (0, 4)])
def test_gelu(shape):
    check("Gelu", [rand(shape, low=-5, high=5)])


def test_gelu_other_float_types_match_the_formula():
    x = rand((4, 6), np.float64, -4, 4)
    want = 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
    check("Gelu", [x], expected=[want], rtol=1e-12, atol=1e-12)
    h = x.astype(np.float16)
    want16 = (0.5 * h.astype(np.float64) * (1 + np.vectorize(math.erf)(
        h.astype(np.float64) / math.sqrt(2)))).astype(np.float16)
    check("Gelu", [h], expected=[want16], rtol=1e-3, atol=1e-3)


def test_gelu_float32_accuracy():
    """The float32 GELU (erf(z) = tanh(z P(z^2)), |z| <= 4) stays within float32 rounding of
    the exact formula over the whole range, in several cache-sized chunks, and keeps inf/nan."""
    x = np.concatenate([np.linspace(-12, 12, 150_001, dtype=np.float32),
                        np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 1e-30, -1e-30],
                                 np.float32)])
    wide = x.astype(np.float64)
    with np.errstate(invalid="ignore"):
        want = 0.5 * wide * (1 + np.vectorize(math.erf)(wide / math.sqrt(2)))
    model, feeds = make_model("Gelu", [x])
    (got,) = run_ort(model, feeds)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-6, equal_nan=True)


@pytest.mark.parametrize("shape", [(2, 3, 8), (4, 8), (3, 70, 400)])
def test_bias_gelu(shape):
    check("BiasGelu", [rand(shape, low=-4, high=4), rand(shape[-1:])])


@pytest.mark.parametrize("shape", [(2, 5, 8), (3, 90, 256)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_fast_gelu(with_bias, shape):
    x = rand(shape, low=-6, high=6)
    check("FastGelu", [x, rand(shape[-1:]) if with_bias else None])


# ------------------------------------------------------------------------------------------
# LayerNormalization (contrib), SkipLayerNormalization
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("axis,with_bias", [(-1, True), (1, True), (-2, False)])
def test_contrib_layer_normalization_matches_onnx_layer_normalization_17(axis, with_bias):
    x = rand((2, 3, 4))
    shape = x.shape[axis:]
    scale, bias = rand(shape), rand(shape) if with_bias else None
    attrs = {"axis": axis, "epsilon": 1e-3}
    model, feeds = make_model("LayerNormalization", [x, scale, bias], attrs, domain="")
    want = run_onnxruntime(model, feeds)  # the ONNX op: the contrib one has its semantics
    check("LayerNormalization", [x, scale, bias], attrs, expected=want)


def test_contrib_layer_normalization_default_epsilon_and_statistics():
    x, scale = rand((3, 5)), rand((5,))
    model, feeds = make_model("LayerNormalization", [x, scale], None, outputs=3, domain="")
    want = run_onnxruntime(model, feeds)
    check("LayerNormalization", [x, scale], None, outputs=3, expected=want)


@pytest.mark.parametrize("beta,bias", [(True, True), (True, False), (False, True),
                                       (False, False)])
def test_skip_layer_normalization(beta, bias):
    x, skip, gamma = rand((2, 3, 8)), rand((2, 3, 8)), rand((8,))
    check("SkipLayerNormalization",
          [x, skip, gamma, rand((8,)) if beta else None, rand((8,)) if bias else None],
          {"epsilon": 1e-5}, rtol=1e-4)


def test_skip_layer_normalization_all_outputs_and_default_epsilon():
    x, skip = rand((2, 4, 8)), rand((2, 4, 8))
    gamma, beta, bias = rand((8,)), rand((8,)), rand((8,))
    check("SkipLayerNormalization", [x, skip, gamma, beta, bias], outputs=4, rtol=1e-4)


@pytest.mark.parametrize("skip_shape", [(3, 8), (1, 3, 8)])
def test_skip_layer_normalization_broadcast_skip(skip_shape):
    check("SkipLayerNormalization", [rand((2, 3, 8)), rand(skip_shape), rand((8,))],
          rtol=1e-4)


def test_skip_layer_normalization_2d_input_and_sum_output_only():
    check("SkipLayerNormalization", [rand((5, 8)), rand((5, 8)), rand((8,)), rand((8,))],
          outputs=[True, False, False, True], rtol=1e-4)


def test_skip_layer_normalization_rejects_wrong_gamma():
    model, feeds = make_model("SkipLayerNormalization", [rand((2, 3, 8)), rand((2, 3, 8)),
                                                         rand((4,))])
    with pytest.raises(Exception, match="gamma"):
        run_ort(model, feeds)


# ------------------------------------------------------------------------------------------
# Attention
# ------------------------------------------------------------------------------------------

B, S, HIDDEN, HEADS = 2, 5, 16, 4


def _qkv():
    return rand((B, S, HIDDEN), low=-1, high=1), rand((HIDDEN, 3 * HIDDEN), low=-0.5,
                                                     high=0.5), rand((3 * HIDDEN,))


def test_attention_without_mask():
    x, w, b = _qkv()
    check("Attention", [x, w, b], {"num_heads": HEADS}, rtol=1e-4)


@pytest.mark.parametrize("attrs", [{"scale": 0.1}, {"mask_filter_value": -50.0},
                                   {"unidirectional": 1}])
def test_attention_raw_2d_mask(attrs):
    x, w, b = _qkv()
    mask = np.ones((B, S), np.int32)
    mask[0, 3:] = 0
    mask[1, 0] = 0
    check("Attention", [x, w, b, mask], dict(attrs, num_heads=HEADS), rtol=1e-4)


def test_attention_raw_3d_mask():
    x, w, b = _qkv()
    mask = (RNG.uniform(size=(B, S, S)) > 0.3).astype(np.int32)
    mask[..., 0] = 1
    check("Attention", [x, w, b, mask], {"num_heads": HEADS}, rtol=1e-4)


@pytest.mark.parametrize("index", [np.array([3, 5], np.int32),
                                   np.array([4, 5, 1, 0], np.int32)], ids=["end", "end_start"])
def test_attention_mask_index_positions(index):
    x, w, b = _qkv()
    check("Attention", [x, w, b, index], {"num_heads": HEADS}, rtol=1e-4)


def test_attention_unidirectional_without_mask():
    x, w, b = _qkv()
    check("Attention", [x, w, b], {"num_heads": HEADS, "unidirectional": 1}, rtol=1e-4)


def test_attention_qkv_hidden_sizes():
    x = rand((B, S, HIDDEN))
    w, b = rand((HIDDEN, 16 + 16 + 8), low=-0.5, high=0.5), rand((40,))
    check("Attention", [x, w, b], {"num_heads": 2, "qkv_hidden_sizes": [16, 16, 8]}, rtol=1e-4)


def test_attention_past_and_present():
    x, w, b = _qkv()
    past = rand((2, B, HEADS, 3, HIDDEN // HEADS))
    mask = np.ones((B, 3 + S), np.int32)
    check("Attention", [x, w, b, mask, past], {"num_heads": HEADS, "unidirectional": 1},
          outputs=2, rtol=1e-4)


def test_attention_bias_input():
    x, w, b = _qkv()
    bias = rand((1, HEADS, S, S))
    check("Attention", [x, w, b, None, None, bias], {"num_heads": HEADS}, rtol=1e-4)


def test_attention_requires_num_heads():
    x, w, b = _qkv()
    model, feeds = make_model("Attention", [x, w, b])
    with pytest.raises(Exception, match="num_heads"):
        run_ort(model, feeds)
