"""CPU kernels: onnxruntime's fused float ops (FusedMatMul, QuickGelu, SimplifiedLayerNormalization,
SkipSimplifiedLayerNormalization, EmbedLayerNormalization, LayerNormalization below opset 17,
BiasAdd, BiasSplitGelu, BiasSoftmax, GemmFastGelu).

Semantics follow onnxruntime's contrib operator spec (docs/ContribOperators.md) and its CPU
kernels' observed behaviour; every op is declared to the core in ``SCHEMAS``
(:mod:`.contrib_schema`). SimplifiedLayerNormalization and the pre-17 LayerNormalization are
onnxruntime additions to the ONNX domain (since version 1); their output takes the *scale*'s
type, which may differ from X's. Reduced precision inputs are computed in float32 and rounded
once, as onnxruntime's CPU kernels do. EmbedLayerNormalization and the tier-2 ops live in
:mod:`.contrib_fusions_embed`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from ort.ep import DeclaredSchema, KernelTable, NodeInfo

from . import contrib_fusions_embed
from .contrib_schema import (FLOAT, MS, declare, dims, elem_type, like_input,
                             like_onnx, tensor_type, typed)
from ..intra_op import resolve_threads
from ..threaded_gemm import matmul as threaded_matmul
from .float_work import work_dtype
from .fused import contrib_layer_normalization
from .kernel_args import normalize_axis
from .linalg import ConstantCopies
from .normalization import (ROW_LOOP_DTYPES, compiled_row_norm,
                            compiled_skip_norm, row_param)

kernels = KernelTable()

_DOUBLE = 11  # TensorProto.DOUBLE


def _work_of(*dtypes: Any) -> np.dtype:
    """float64 when every one of ``dtypes`` is float64, else float32."""
    wide = all(np.dtype(d) == np.float64 for d in dtypes if d is not None)
    return np.dtype(np.float64) if wide else np.dtype(np.float32)


# --------------------------------------------------------------------------------------------
# QuickGelu
# --------------------------------------------------------------------------------------------


@kernels.register("QuickGelu", since=1, domain=MS)
def quick_gelu(node: NodeInfo) -> Callable[..., tuple]:
    """QuickGelu 1+: x * sigmoid(alpha * x) (``alpha`` 1.702 by default). float16 runs in
    float32 with alpha rounded to float16 first (onnxruntime expands the op for float16, so
    its alpha constant is a float16) and the result rounded once."""
    xp = node.xp
    alpha = float(node.attrs.get("alpha", 1.702))

    def compute(x: Any) -> tuple:
        work = work_dtype(x.dtype)
        a = work.type(x.dtype.type(alpha)) if x.dtype != work else work.type(alpha)
        xw = x.astype(work, copy=False).reshape(-1)  # 1-D: ufuncs keep returning arrays
        # sigmoid(z) = exp(min(z, 0)) / (1 + exp(-|z|)): no overflow, and no masks (slow
        # on mixed signs)
        z = xw * a
        denominator = xp.abs(z)
        xp.negative(denominator, out=denominator)
        xp.exp(denominator, out=denominator)
        denominator += work.type(1)
        xp.minimum(z, work.type(0), out=z)
        y = xp.exp(z, out=z)
        y /= denominator
        y *= xw
        return (y.reshape(x.shape).astype(x.dtype, copy=False),)

    return compute


# --------------------------------------------------------------------------------------------
# SimplifiedLayerNormalization (RMS norm), SkipSimplifiedLayerNormalization
# --------------------------------------------------------------------------------------------


def rms_normalize(xp: Any, rows: Any, epsilon: float) -> tuple[Any, Any]:
    """(rows / sqrt(mean(rows^2) + epsilon), that 1 / sqrt(...) as a (rows, 1) column) for
    a 2-D float array; the result is a fresh array."""
    width = rows.shape[1]
    mean_square = xp.einsum("ij,ij->i", rows, rows) if width else xp.zeros(rows.shape[0],
                                                                             rows.dtype)
    mean_square *= rows.dtype.type(1 / max(width, 1))
    mean_square += rows.dtype.type(epsilon)
    inv = xp.sqrt(mean_square, out=mean_square)
    xp.divide(rows.dtype.type(1), inv, out=inv)
    inv = inv.reshape(-1, 1)
    return rows * inv, inv


def _stash_dtype(node: NodeInfo, index: int) -> np.dtype:
    """The statistics output's dtype: its inferred type, else the one ``stash_type`` names."""
    known = node.output_dtypes[index] if index < len(node.output_dtypes) else None
    if known is not None:
        return np.dtype(known)
    stash = int(node.attrs.get("stash_type", 1))
    return np.dtype(np.float64) if stash == _DOUBLE else np.dtype(np.float32)


@kernels.register("SimplifiedLayerNormalization", since=1, domain="")
def simplified_layer_normalization(node: NodeInfo) -> Callable[..., tuple]:
    """SimplifiedLayerNormalization 1+ (onnxruntime's, ONNX domain): RMS normalization over
    axes [axis, rank): Y = X / sqrt(mean(X^2) + epsilon) * scale, in the scale's type;
    optional inv_std_var output (float; double with stash_type=DOUBLE)."""
    xp = node.xp
    axis = int(node.attrs.get("axis", -1))
    epsilon = float(node.attrs.get("epsilon", 1e-5))
    stash_type = int(node.attrs.get("stash_type", 1))
    if stash_type not in (1, _DOUBLE):
        raise ValueError(f"{node.describe()}: stash_type {stash_type} is not supported "
                         "(1: FLOAT or 11: DOUBLE)")
    want_inv = node.has_output(1)
    inv_dtype = _stash_dtype(node, 1)
    row_loop = compiled_row_norm(node)

    def compute(x: Any, scale: Any) -> tuple:
        first = normalize_axis(node, axis, x.ndim)
        work = np.dtype(np.float64) if stash_type == _DOUBLE else _work_of(x.dtype,
                                                                           scale.dtype)
        rows, width = math.prod(x.shape[:first]), math.prod(x.shape[first:])
        stat_shape = tuple(x.shape[:first]) + (1,) * (x.ndim - first)
        scale1 = row_param(xp, scale, tuple(x.shape[first:]), work) if (
            row_loop is not None and rows and width and x.dtype == work
            and work in ROW_LOOP_DTYPES) else None
        if scale1 is not None:
            y, _, inv = row_loop(xp.ascontiguousarray(x).reshape(rows, width), scale1, None,
                                 epsilon, True)
            return (y.reshape(x.shape),
                    inv.reshape(stat_shape).astype(inv_dtype) if want_inv else None)
        xw = xp.ascontiguousarray(x, dtype=work).reshape(rows, width)
        y, inv = rms_normalize(xp, xw, epsilon)
        y = y.reshape(x.shape)
        y *= scale.astype(work, copy=False)
        return (y.astype(scale.dtype, copy=False),
                inv.reshape(stat_shape).astype(inv_dtype) if want_inv else None)

    return compute


def _check_skip_inputs(node: NodeInfo, x: Any, skip: Any, params: dict[str, Any]) -> None:
    """onnxruntime's checks of SkipLayerNormalization's inputs: X 2-D or 3-D, skip with X's
    last two dims (batch 1 or missing broadcasts), 1-D parameters of the hidden size."""
    if x.ndim not in (2, 3):
        raise ValueError(f"{node.describe()}: input must be 2-D or 3-D, got shape {x.shape}")
    if skip.ndim not in (2, 3) or skip.shape[-2:] != x.shape[-2:] or (
            skip.ndim == 3 and skip.shape[0] not in (1, x.shape[0])) or skip.ndim > x.ndim:
        raise ValueError(f"{node.describe()}: skip of shape {skip.shape} must have input's "
                         f"last two dims {x.shape[-2:]} (a batch of 1 or none broadcasts)")
    hidden = x.shape[-1]
    for label, value in params.items():
        if value is not None and value.shape != (hidden,):
            raise ValueError(f"{node.describe()}: {label} of shape {value.shape} must be "
                             f"({hidden},)")


@kernels.register("SkipSimplifiedLayerNormalization", since=1, domain=MS)
def skip_simplified_layer_normalization(node: NodeInfo) -> Callable[..., tuple]:
    """SkipSimplifiedLayerNormalization 1+: RMS normalization over the last axis of
    input + skip (+ bias), times gamma. Optional outputs: mean (zeros: RMS norm has none, as
    onnxruntime fills it), inv_std_var (float, [..., 1]) and input_skip_bias_sum (the sum
    including the bias, in the input's type)."""
    xp = node.xp
    epsilon = float(node.attrs.get("epsilon", 1e-12))
    want_mean, want_inv, want_sum = node.has_output(1), node.has_output(2), node.has_output(3)
    skip_loop = compiled_skip_norm(node)

    def compute(x: Any, skip: Any, gamma: Any, bias: Any = None) -> tuple:
        _check_skip_inputs(node, x, skip, {"gamma": gamma, "bias": bias})
        if skip_loop is not None:
            outs = skip_loop(x, skip, gamma, None, bias, epsilon, True, want_sum)
            if outs is not None:
                y, _, inv, summed = outs
                return (y, xp.zeros(inv.shape, np.float32) if want_mean else None,
                        inv if want_inv else None, summed)
        work = work_dtype(x.dtype)
        total = xp.add(x.astype(work, copy=False), skip.astype(work, copy=False))
        if bias is not None:
            total += bias.astype(work, copy=False)
        hidden = x.shape[-1]
        y, inv = rms_normalize(xp, total.reshape(-1, hidden), epsilon)
        y *= gamma.astype(work, copy=False)
        stat_shape = x.shape[:-1] + (1,)
        return (y.reshape(x.shape).astype(x.dtype, copy=False),
                xp.zeros(stat_shape, np.float32) if want_mean else None,
                inv.reshape(stat_shape).astype(np.float32) if want_inv else None,
                total.astype(x.dtype, copy=False) if want_sum else None)

    return compute


# --------------------------------------------------------------------------------------------
# LayerNormalization 1-16 (onnxruntime's, ONNX domain)
# --------------------------------------------------------------------------------------------


@kernels.register("LayerNormalization", since=1, until=16, domain="")
def layer_normalization_pre17(node: NodeInfo) -> Callable[..., tuple]:
    """LayerNormalization 1-16 (onnxruntime's, ONNX domain; ONNX's own starts at 17):
    com.microsoft LayerNormalization's computation, with the output in the scale's type
    (X float16 with a float scale gives float) computed in float32 and rounded once."""
    inner = contrib_layer_normalization(node)

    def compute(x: Any, scale: Any, bias: Any = None) -> tuple:
        if x.dtype == scale.dtype and (bias is None or bias.dtype == scale.dtype):
            return inner(x, scale, bias)
        work = _work_of(x.dtype, scale.dtype)
        outs = inner(x.astype(work), scale.astype(work),
                     None if bias is None else bias.astype(work))
        return (outs[0].astype(scale.dtype, copy=False),) + tuple(outs[1:])

    return compute


# --------------------------------------------------------------------------------------------
# FusedMatMul
# --------------------------------------------------------------------------------------------


def _fused_matmul_operand(xp: Any, a: Any, trans_batch: bool, trans: bool) -> Any:
    """A FusedMatMul operand as MatMul sees it: with ``trans_batch`` its first axis moves
    behind the batch axes (``[M, b..., K]`` -> ``[b..., M, K]``), then with ``trans`` the last
    two axes swap; 1-D operands are vectors either way."""
    if trans_batch and a.ndim >= 3:
        a = xp.moveaxis(a, 0, -2)
    if trans and a.ndim >= 2:
        a = a.swapaxes(-1, -2)
    return a


@kernels.register("FusedMatMul", since=1, domain=MS)
def fused_matmul(node: NodeInfo) -> Callable[..., tuple]:
    """FusedMatMul 1+: alpha * MatMul(A', B') where A' is A with ``transBatchA`` (first axis
    moved behind the batch axes) and ``transA`` (last two swapped), B' likewise; batch axes
    broadcast as in MatMul. The transBatch forms need A and B of one rank of at least 3."""
    xp = node.xp
    alpha = float(node.attrs.get("alpha", 1.0))
    trans_a, trans_b = bool(node.attrs.get("transA", 0)), bool(node.attrs.get("transB", 0))
    batch_a = bool(node.attrs.get("transBatchA", 0))
    batch_b = bool(node.attrs.get("transBatchB", 0))
    threads = resolve_threads(node.intra_op_threads)
    # a transposed constant B (a tied LM head: B = W^T) copied into C order once, as MatMul
    # does: BLAS's few-row products were slower on the transposed view
    ordered = ConstantCopies(node)

    def compute(a: Any, b: Any) -> tuple:
        if (batch_a or batch_b) and (a.ndim != b.ndim or a.ndim < 3):
            raise ValueError(f"{node.describe()}: transBatchA/transBatchB need A and B of one "
                             f"rank of at least 3, got shapes {a.shape} and {b.shape}")
        work = _work_of(a.dtype, b.dtype)
        a2 = _fused_matmul_operand(xp, a.astype(work, copy=False), batch_a, trans_a)
        b2 = ordered.c_ordered(_fused_matmul_operand(xp, b.astype(work, copy=False), batch_b,
                                                     trans_b))
        k_a = a2.shape[-1]
        k_b = b2.shape[-2] if b2.ndim >= 2 else b2.shape[0]
        if k_a != k_b:
            raise ValueError(f"{node.describe()}: A of shape {a.shape} and B of shape "
                             f"{b.shape} (after the transposes: {a2.shape}, {b2.shape}) have "
                             "different inner dims")
        if a2.ndim > 2 and b2.ndim == 2:  # a stack times one matrix: one GEMM over all rows
            y = threaded_matmul(xp, a2.reshape(-1, k_a), b2, threads).reshape(
                a2.shape[:-1] + b2.shape[-1:])
        else:
            y = xp.asarray(threaded_matmul(xp, a2, b2, threads))
        if alpha != 1.0:
            y *= work.type(alpha)
        return (y.astype(a.dtype, copy=False),)

    return compute


# --------------------------------------------------------------------------------------------
# schemas (see .contrib_schema)
# --------------------------------------------------------------------------------------------


def _scale_typed(types, attrs):
    """Y of the ONNX-domain norms: the scale's element type with X's shape."""
    shape = dims(types[0])
    return tensor_type(elem_type(types[1]), shape)


def _stash_element(attrs) -> int:
    """The statistics' element type: DOUBLE for stash_type=11, else FLOAT."""
    return _DOUBLE if int(attrs.get("stash_type", 1) or 1) == _DOUBLE else FLOAT


def _first_axis(shape, attrs) -> int:
    """LayerNormalization's axis made non-negative (ValueError when out of range)."""
    axis = int(attrs.get("axis", -1))
    if not -len(shape) <= axis < len(shape):
        raise ValueError(f"axis {axis} is out of range for rank {len(shape)}")
    return axis + len(shape) if axis < 0 else axis


def _layer_norm_stats(types, attrs):
    """LayerNormalization's Mean/InvStdDev: X's shape with the normalized axes 1."""
    shape = dims(types[0])
    if shape is None:
        return tensor_type(_stash_element(attrs))
    first = _first_axis(shape, attrs)
    return tensor_type(_stash_element(attrs), shape[:first] + [1] * (len(shape) - first))


def _simplified_stats(types, attrs):
    """SimplifiedLayerNormalization's inv_std_var as onnxruntime infers it: X's shape with
    the dim at ``axis`` set to 1 (only that one: the runtime value has 1 on every normalized
    axis)."""
    shape = dims(types[0])
    if shape is None:
        return tensor_type(_stash_element(attrs))
    first = _first_axis(shape, attrs)
    return tensor_type(_stash_element(attrs), shape[:first] + [1] + shape[first + 1:])


def _row_stats(types, attrs):
    """Per-row float statistics of the skip norms: X's shape with the last dim 1."""
    shape = dims(types[0])
    return tensor_type(FLOAT, None if shape is None else shape[:-1] + [1])


def _fused_matmul_infer(types, attrs):
    """FusedMatMul's output: MatMul's inference on the transposed operand shapes."""
    if len(types) < 2 or types[0] is None or types[1] is None:
        return [None]
    moved = []
    for tp, batch, trans in ((types[0], "transBatchA", "transA"),
                             (types[1], "transBatchB", "transB")):
        shape = dims(tp)
        if shape is None:
            return [tensor_type(elem_type(types[0]))]
        if attrs.get(batch) and len(shape) >= 3:
            shape = shape[1:-1] + [shape[0], shape[-1]]
        if attrs.get(trans) and len(shape) >= 2:
            shape = shape[:-2] + [shape[-1], shape[-2]]
        moved.append(tensor_type(elem_type(tp), shape))
    return like_onnx("MatMul", 13)(moved, {})


SCHEMAS: list[DeclaredSchema] = [
    declare("QuickGelu", inputs=1, attributes={"alpha": 1.702}, infer=like_input(0)),
    declare("SimplifiedLayerNormalization", domain="", since=1, inputs=2, outputs=(1, 2),
            attributes={"axis": -1, "epsilon": 1e-5, "stash_type": 1},
            infer=typed(_scale_typed, _simplified_stats)),
    declare("SkipSimplifiedLayerNormalization", inputs=(3, 4), outputs=(1, 4),
            attributes={"epsilon": 1e-12},
            infer=typed(lambda t, a: t[0], _row_stats, _row_stats, lambda t, a: t[0])),
    declare("LayerNormalization", domain="", since=1, inputs=(2, 3), outputs=(1, 3),
            attributes={"axis": -1, "epsilon": 1e-5, "stash_type": 1},
            infer=typed(_scale_typed, _layer_norm_stats, _layer_norm_stats)),
    declare("FusedMatMul", inputs=2,
            attributes={"alpha": 1.0, "transA": 0, "transB": 0, "transBatchA": 0,
                        "transBatchB": 0},
            infer=_fused_matmul_infer),
]

kernels.extend(contrib_fusions_embed.kernels)
SCHEMAS += contrib_fusions_embed.SCHEMAS
