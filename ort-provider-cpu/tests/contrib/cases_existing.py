"""Contrib-op cases of the ops ort ran before the contrib tiers: the fused ops its optimizer
makes (FusedConv, FusedGemm, Gelu, BiasGelu, FastGelu, SkipLayerNormalization) and Tokenizer."""

from __future__ import annotations

import numpy as np
from contrib_case import Case, rng

r = rng(1)
f32 = np.float32
X4 = r.standard_normal((2, 3, 7, 6)).astype(f32)
W4 = r.standard_normal((4, 3, 3, 3)).astype(f32)
B4 = r.standard_normal(4).astype(f32)
Z4 = r.standard_normal((2, 4, 5, 4)).astype(f32)
A2 = r.standard_normal((5, 6)).astype(f32)
B2 = r.standard_normal((6, 3)).astype(f32)
C2 = r.standard_normal(3).astype(f32)
H3 = r.standard_normal((2, 4, 8)).astype(f32)
G1 = r.standard_normal(8).astype(f32)
S3 = r.standard_normal((2, 4, 8)).astype(f32)

CASES = [
    Case("FusedConv_relu", "FusedConv", [X4, W4, B4], {"activation": "Relu"}),
    Case("FusedConv_clip_pads", "FusedConv", [X4, W4, B4],
         {"activation": "Clip", "activation_params": [-0.5, 0.5], "pads": [1, 1, 1, 1]}),
    Case("FusedConv_sum_sigmoid", "FusedConv", [X4, W4, B4, Z4], {"activation": "Sigmoid"},
         atol=1e-5),
    Case("FusedConv_leaky_strides", "FusedConv", [X4, W4],
         {"activation": "LeakyRelu", "activation_params": [0.2], "strides": [2, 2]}, atol=1e-5),
    Case("FusedGemm_relu", "FusedGemm", [A2, B2, C2], {"activation": "Relu"}),
    Case("FusedGemm_transB_leaky", "FusedGemm", [A2, B2.T.copy(), C2],
         {"transB": 1, "alpha": 0.5, "activation": "LeakyRelu", "activation_alpha": 0.1}),
    Case("FusedGemm_tanh_noC", "FusedGemm", [A2, B2], {"activation": "Tanh"}),
    Case("Gelu_float", "Gelu", [H3]),
    Case("Gelu_float16", "Gelu", [H3.astype(np.float16)], atol=1e-3, rtol=1e-3),
    Case("BiasGelu_float", "BiasGelu", [H3, G1]),
    Case("FastGelu_bias", "FastGelu", [H3, G1], atol=1e-5),
    Case("FastGelu_nobias", "FastGelu", [H3], atol=1e-5),
    Case("SkipLayerNormalization_gamma", "SkipLayerNormalization", [H3, S3, 1 + G1],
         atol=1e-5),
    Case("SkipLayerNormalization_all", "SkipLayerNormalization",
         [H3, S3, 1 + G1, G1 * 0.1, G1 * 0.2], {"epsilon": 1e-5}, outputs=4, atol=1e-5),
    Case("Tokenizer_separators", "Tokenizer",
         [np.array(["a b  c", "dd e", "fff"], dtype=object)],
         {"mark": 0, "pad_value": "#", "mincharnum": 1, "separators": [" "]}),
    Case("Tokenizer_mark_chars", "Tokenizer", [np.array([["ab", "cde"]], dtype=object)],
         {"mark": 1, "pad_value": "#", "mincharnum": 1, "separators": [""]}),
]

# inputs declared without shapes: the outputs are still typed (float statistics)
CASES.append(Case("SkipLayerNormalization_unshaped", "SkipLayerNormalization",
                  [H3, S3, 1 + G1], outputs=3, atol=1e-5, input_shapes=False))
