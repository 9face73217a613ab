"""Contrib-op cases of the fused float ops (contrib_fusions): QuickGelu,
SimplifiedLayerNormalization and LayerNormalization 1-16 (onnxruntime's, ONNX domain),
SkipSimplifiedLayerNormalization, FusedMatMul, EmbedLayerNormalization, and the tier-2 ops
(BiasAdd, BiasSplitGelu, BiasSoftmax, GemmFastGelu) that onnxruntime runs on GPUs only."""

from __future__ import annotations

import numpy as np
from contrib_case import Case, rng

r = rng(7)
f32, f16, f64 = np.float32, np.float16, np.float64


def normal(*shape: int, scale: float = 1.0) -> np.ndarray:
    """float32 standard normal samples of ``shape`` times ``scale``."""
    return (r.standard_normal(shape) * scale).astype(f32)


LOW = {"rtol": 1e-3, "atol": 1e-3}  # float16 results: one rounding apart

# --- QuickGelu ------------------------------------------------------------------------------
QX = normal(2, 3, 16, scale=4.0)
QUICK_GELU = [
    Case("QuickGelu_default", "QuickGelu", [QX], atol=1e-5),
    Case("QuickGelu_alpha", "QuickGelu", [QX], {"alpha": 1.0}, atol=1e-5),
    Case("QuickGelu_alpha_negative", "QuickGelu", [QX], {"alpha": -0.5}, atol=1e-5),
    Case("QuickGelu_scalar", "QuickGelu", [np.array(0.75, f32)], atol=1e-6),
    Case("QuickGelu_empty", "QuickGelu", [np.zeros((2, 0, 3), f32)]),
    Case("QuickGelu_float16", "QuickGelu", [QX.astype(f16)], atol=1e-3, rtol=1e-3),
    Case("QuickGelu_float16_alpha", "QuickGelu", [QX.astype(f16)], {"alpha": 0.8}, **LOW),
    Case("QuickGelu_double", "QuickGelu", [QX.astype(f64)], atol=1e-7),
]

# --- SimplifiedLayerNormalization (ONNX domain) ---------------------------------------------
SX = normal(2, 3, 8, scale=2.0)
SG = normal(8)
SG2 = normal(3, 8)


def simplified(name: str, inputs, attrs=None, outputs=2, opset=13, **tol) -> Case:
    """A SimplifiedLayerNormalization case (ONNX domain, onnxruntime's op)."""
    tol = {"atol": 1e-5, **tol}
    return Case(f"SimplifiedLayerNormalization_{name}", "SimplifiedLayerNormalization",
                inputs, attrs or {}, domain="", opset=opset, outputs=outputs, **tol)


SIMPLIFIED = [
    simplified("default", [SX, SG]),
    simplified("y_only", [SX, SG], outputs=1),
    simplified("axis1", [SX, SG2], {"axis": 1}),
    simplified("axis_negative2", [SX, SG2], {"axis": -2, "epsilon": 0.1}),
    simplified("axis0", [SX, SX[0] * 0.5], {"axis": 0}),
    simplified("scale_broadcast", [SX, SG], {"axis": 1}),
    simplified("epsilon", [SX * 1e-3, SG], {"epsilon": 1e-2}),
    simplified("rank2", [SX[0], SG]),
    simplified("rank4", [normal(2, 2, 3, 8), SG]),
    simplified("opset21", [SX, SG], opset=21),
    simplified("opset17", [SX, SG], opset=17),
    simplified("float16", [SX.astype(f16), SG.astype(f16)], **LOW),
    simplified("x16_scale32", [SX.astype(f16), SG]),
    simplified("x32_scale16", [SX, SG.astype(f16)], **LOW),
    simplified("double", [SX.astype(f64), SG.astype(f64)], atol=1e-7),
    simplified("stash_float", [SX, SG], {"stash_type": 1, "epsilon": 1e-6}),
    simplified("empty_rows", [np.zeros((0, 3, 8), f32), SG]),
    simplified("const_scale", [SX, SG], {"axis": -1}),
]
SIMPLIFIED[-1].constants = (1,)

# --- SkipSimplifiedLayerNormalization -------------------------------------------------------
KX, KS = normal(2, 4, 16), normal(2, 4, 16)
KG, KB = normal(16) + 1, normal(16) * 0.1


def skip_simplified(name: str, inputs, attrs=None, outputs=1, **tol) -> Case:
    """A SkipSimplifiedLayerNormalization case."""
    tol = {"atol": 1e-5, **tol}
    return Case(f"SkipSimplifiedLayerNormalization_{name}", "SkipSimplifiedLayerNormalization",
                inputs, attrs or {}, outputs=outputs, **tol)


def halves(*arrays: np.ndarray) -> list[np.ndarray]:
    """The arrays as float16."""
    return [a.astype(f16) for a in arrays]


SKIP_SIMPLIFIED = [
    skip_simplified("gamma", [KX, KS, KG]),
    skip_simplified("bias", [KX, KS, KG, KB]),
    skip_simplified("all_outputs", [KX, KS, KG, KB], outputs=4),
    skip_simplified("all_outputs_nobias", [KX, KS, KG], {"epsilon": 1e-5}, outputs=4),
    skip_simplified("inv_and_sum", [KX, KS, KG, KB], outputs=[True, False, True, True]),
    skip_simplified("mean_only", [KX, KS, KG, KB], outputs=[True, True]),
    skip_simplified("empty_rows", [np.zeros((2, 0, 16), f32), np.zeros((2, 0, 16), f32), KG],
                    outputs=4),
    skip_simplified("sum_only", [KX, KS, KG, KB], outputs=[True, False, False, True]),
    skip_simplified("rank2", [KX[0], KS[0], KG, KB], outputs=4),
    skip_simplified("skip_2d", [KX, KS[0], KG, KB], outputs=4),
    skip_simplified("skip_batch1", [KX, KS[:1], KG, KB], outputs=4),
    skip_simplified("epsilon", [KX * 1e-2, KS * 1e-2, KG], {"epsilon": 1e-3}),
    skip_simplified("float16", halves(KX, KS, KG, KB), outputs=4, **LOW),
    skip_simplified("float16_nobias", halves(KX, KS, KG), outputs=4, **LOW),
]

# --- LayerNormalization 1-16 (onnxruntime's, ONNX domain) -----------------------------------
LX = normal(2, 3, 8, scale=2.0) + 0.5
LG, LB = normal(8), normal(8)
LG2, LB2 = normal(3, 8), normal(3, 8)


def layer_norm(name: str, inputs, attrs=None, outputs=3, opset=16, **tol) -> Case:
    """A LayerNormalization case below opset 17 (onnxruntime's ONNX-domain op)."""
    tol = {"atol": 1e-5, **tol}
    return Case(f"LayerNormalization_{name}", "LayerNormalization", inputs, attrs or {},
                domain="", opset=opset, outputs=outputs, **tol)


LAYER_NORM = [
    layer_norm("opset16", [LX, LG, LB]),
    layer_norm("opset13", [LX, LG, LB], opset=13),
    layer_norm("opset11", [LX, LG, LB], opset=11),
    layer_norm("opset9_y_only", [LX, LG, LB], outputs=1, opset=9),
    layer_norm("nobias", [LX, LG]),
    layer_norm("axis1", [LX, LG2, LB2], {"axis": 1}),
    layer_norm("axis_negative2", [LX, LG2, LB2], {"axis": -2, "epsilon": 0.1}),
    layer_norm("mean_only", [LX, LG, LB], outputs=[True, True, False]),
    layer_norm("inv_only", [LX, LG, LB], outputs=[True, False, True]),
    layer_norm("empty_rows", [np.zeros((0, 3, 8), f32), LG, LB]),
    layer_norm("float16", halves(LX, LG, LB), **LOW),
    layer_norm("x16_scale32", [LX.astype(f16), LG, LB]),
    layer_norm("x32_scale16", [LX, LG.astype(f16), LB.astype(f16)], **LOW),
    layer_norm("x64_scale32", [LX.astype(f64), LG, LB]),
    layer_norm("x16_scale64", [LX.astype(f16), LG.astype(f64), LB.astype(f64)]),
    layer_norm("x64_scale16", [LX.astype(f64), LG.astype(f16), LB.astype(f16)], **LOW),
    layer_norm("double", [LX.astype(f64), LG.astype(f64), LB.astype(f64)], atol=1e-7),
    layer_norm("double_stash_double", [LX.astype(f64), LG.astype(f64), LB.astype(f64)],
               {"stash_type": 11}, atol=1e-7),
    layer_norm("float_stash_double", [LX, LG, LB], {"stash_type": 11}),
]

# --- FusedMatMul ----------------------------------------------------------------------------
MA, MB = normal(2, 3, 4, 5), normal(2, 3, 5, 6)


def fused_matmul(name: str, a, b, attrs=None, **tol) -> Case:
    """A FusedMatMul case."""
    tol = {"atol": 1e-5, **tol}
    return Case(f"FusedMatMul_{name}", "FusedMatMul", [a, b], attrs or {}, **tol)


def moved(a: np.ndarray, first_to: int) -> np.ndarray:
    """``a`` with its axis ``first_to`` moved to the front (the transBatch layout)."""
    return np.ascontiguousarray(np.moveaxis(a, first_to, 0))


FUSED_MATMUL = [
    fused_matmul("plain", MA, MB),
    fused_matmul("alpha", MA, MB, {"alpha": 0.125}),
    fused_matmul("transA", MA.swapaxes(-1, -2).copy(), MB, {"transA": 1}),
    fused_matmul("transB_alpha", MA, MB.swapaxes(-1, -2).copy(), {"transB": 1, "alpha": 2.0}),
    fused_matmul("transA_transB", MA.swapaxes(-1, -2).copy(), MB.swapaxes(-1, -2).copy(),
                 {"transA": 1, "transB": 1}),
    fused_matmul("transBatchA", moved(MA, 2), MB, {"transBatchA": 1}),
    fused_matmul("transBatchA_transA", moved(MA, 3), MB, {"transBatchA": 1, "transA": 1}),
    fused_matmul("transBatchB", MA, moved(MB, 2), {"transBatchB": 1}),
    fused_matmul("transBatchB_transB", MA, moved(MB, 3), {"transBatchB": 1, "transB": 1}),
    fused_matmul("transBatch_both", moved(MA, 2), moved(MB, 3),
                 {"transBatchA": 1, "transBatchB": 1, "transB": 1, "alpha": 0.5}),
    fused_matmul("transBatchA_broadcast", normal(4, 3, 5), normal(1, 5, 6),
                 {"transBatchA": 1}),
    fused_matmul("transBatchB_rank3", normal(3, 4, 5), normal(5, 3, 6), {"transBatchB": 1}),
    fused_matmul("broadcast_rank2_B", MA, normal(5, 6), {"alpha": 3.0}),
    fused_matmul("broadcast_batch", normal(3, 4, 5), normal(2, 1, 5, 6)),
    fused_matmul("rank2", normal(4, 5), normal(5, 6), {"transA": 0, "alpha": -1.0}),
    fused_matmul("rank2_transA_transB", normal(5, 4), normal(6, 5), {"transA": 1, "transB": 1}),
    fused_matmul("vector_A", normal(5), normal(5, 6)),
    fused_matmul("vector_A_transB", normal(5), normal(6, 5), {"transB": 1}),
    fused_matmul("vector_B", normal(2, 4, 5), normal(5)),
    fused_matmul("vector_B_transB", normal(4, 5), normal(5), {"transB": 1}),
    fused_matmul("vectors", normal(5), normal(5), {"alpha": 0.5}),
    fused_matmul("empty_M", np.zeros((2, 0, 5), f32), normal(2, 5, 6), {"alpha": 2.0}),
    fused_matmul("empty_K", np.zeros((3, 4, 0), f32), np.zeros((3, 0, 6), f32)),
    fused_matmul("float16", MA.astype(f16), MB.astype(f16), {"alpha": 0.5}, **LOW),
    fused_matmul("float16_transBatchB", MA.astype(f16), moved(MB, 3).astype(f16),
                 {"transBatchB": 1, "transB": 1}, **LOW),
    fused_matmul("double", MA.astype(f64), MB.astype(f64), {"transA": 0, "alpha": 1.5},
                 atol=1e-10),
    fused_matmul("const_B", MA, MB, {"alpha": 0.25}),
]
FUSED_MATMUL[-1].constants = (1,)

# --- EmbedLayerNormalization ----------------------------------------------------------------
EB, ES, EH, EV, EP = 2, 5, 8, 11, 7
E_IDS = r.integers(0, EV, (EB, ES)).astype(np.int32)
E_SEG = r.integers(0, 2, (EB, ES)).astype(np.int32)
E_WORD, E_POS, E_SEGE = normal(EV, EH), normal(EP, EH), normal(2, EH)
E_GAMMA, E_BETA = normal(EH) + 1, normal(EH)
E_MASK = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], np.int32)
E_MASK_ODD = np.array([[2, 0, 1, 1, 0], [1, 1, 1, 1, -1]], np.int32)
E_POS_IDS = r.integers(0, EP, (EB, ES)).astype(np.int32)


def embed(name: str, inputs, attrs=None, outputs=3, **tol) -> Case:
    """An EmbedLayerNormalization case."""
    tol = {"atol": 1e-5, **tol}
    return Case(f"EmbedLayerNormalization_{name}", "EmbedLayerNormalization", inputs,
                attrs or {}, outputs=outputs, **tol)


E_ALL = [E_IDS, E_SEG, E_WORD, E_POS, E_SEGE, E_GAMMA, E_BETA]
EMBED = [
    embed("mask", E_ALL + [E_MASK]),
    embed("no_mask", E_ALL),
    embed("mask_odd_values", E_ALL + [E_MASK_ODD]),
    embed("zero_mask", E_ALL + [np.zeros((EB, ES), np.int32)]),
    embed("no_segment", [E_IDS, None, E_WORD, E_POS, None, E_GAMMA, E_BETA, E_MASK]),
    embed("segment_embedding_no_ids", [E_IDS, None, E_WORD, E_POS, E_SEGE, E_GAMMA, E_BETA]),
    embed("position_ids", E_ALL + [E_MASK, E_POS_IDS]),
    embed("position_ids_batch1", E_ALL + [E_MASK, E_POS_IDS[:1]]),
    embed("position_ids_no_mask", E_ALL + [None, E_POS_IDS]),
    embed("epsilon", E_ALL + [E_MASK], {"epsilon": 1e-3}),
    embed("mask_index_type1", E_ALL + [E_MASK], {"mask_index_type": 1}),
    embed("mask_index_type0", E_ALL + [E_MASK], {"mask_index_type": 0}),
    embed("no_sum", E_ALL + [E_MASK], outputs=2),
    embed("sum_no_mask_index", E_ALL + [E_MASK], outputs=[True, False, True]),
    embed("batch1", [E_IDS[:1], E_SEG[:1]] + E_ALL[2:] + [E_MASK[:1], E_POS_IDS[:1]]),
    embed("sequence1", [E_IDS[:, :1], E_SEG[:, :1]] + E_ALL[2:] + [E_MASK[:, :1]]),
    embed("float16", E_ALL[:2] + halves(*E_ALL[2:]) + [E_MASK], **LOW),
    embed("const_weights", E_ALL + [E_MASK]),
]
EMBED[-1].constants = (2, 3, 4, 5, 6)

# --- tier 2: onnxruntime 1.32 has no CPU kernels for these (GPU only), so every case is an
# expected failure of the oracle (expected/fusions.txt); they turn into checks if it gains one.
T2X, T2B, T2S = normal(2, 3, 8), normal(8), normal(2, 3, 8)
T2D = normal(2, 3, 4, 5, scale=2.0)
TIER2 = [
    Case("BiasAdd_float", "BiasAdd", [T2X, T2B, T2S]),
    Case("BiasAdd_float16", "BiasAdd", halves(T2X, T2B, T2S), **LOW),
    Case("BiasSplitGelu_float", "BiasSplitGelu", [T2X, T2B], atol=1e-5),
    Case("BiasSplitGelu_float16", "BiasSplitGelu", halves(T2X, T2B), **LOW),
    Case("BiasSoftmax_inner", "BiasSoftmax", [T2D, normal(2, 1, 4, 5)],
         {"axis": 2, "is_inner_broadcast": 1}, atol=1e-6),
    Case("BiasSoftmax_outer", "BiasSoftmax", [T2D, normal(1, 3, 4, 5)],
         {"axis": 2, "is_inner_broadcast": 0}, atol=1e-6),
    Case("BiasSoftmax_last_axis_float16", "BiasSoftmax", halves(T2D, normal(2, 3, 1, 5)),
         {"axis": 3, "is_inner_broadcast": 1}, **LOW),
    Case("GemmFastGelu_bias", "GemmFastGelu", [normal(2, 3, 4), normal(4, 6), normal(6)],
         atol=1e-5),
    Case("GemmFastGelu_nobias", "GemmFastGelu", [normal(3, 4), normal(4, 6)], atol=1e-5),
    Case("GemmFastGelu_float16", "GemmFastGelu", halves(normal(3, 4), normal(4, 6), normal(6)),
         **LOW),
]

CASES = QUICK_GELU + SIMPLIFIED + SKIP_SIMPLIFIED + LAYER_NORM + FUSED_MATMUL + EMBED + TIER2
