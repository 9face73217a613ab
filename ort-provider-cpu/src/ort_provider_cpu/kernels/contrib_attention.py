"""CPU kernels: onnxruntime's com.microsoft attention ops.

Attention and QAttention live here (merged Q/K/V weights, mask_index forms, past/present
state, attention_bias, unidirectional, qkv_hidden_sizes, scale); MultiHeadAttention and the
com.microsoft RotaryEmbedding in :mod:`.contrib_attention_mha`, GroupQueryAttention in
:mod:`.contrib_attention_gqa`, DecoderMaskedMultiHeadAttention and SparseAttention in
:mod:`.contrib_attention_decoder`; the shared scaled dot-product core in
:mod:`.contrib_attention_core`. They follow onnxruntime's contrib operator spec
(docs/ContribOperators.md) and its CPU kernels' observed behaviour. Reduced precision inputs
are computed in float32 and rounded once.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from ort.ep import DeclaredSchema, KernelTable, NodeInfo

from ..intra_op import resolve_threads
from ..threaded_gemm import matmul as threaded_matmul
from . import (contrib_attention_decoder, contrib_attention_gqa,
               contrib_attention_mha)
from .contrib_attention_core import (CAUSAL_FILL, HALF_AND_FLOAT, attend,
                                     causal_keep, merge_heads, padding_mask)
from .contrib_schema import (REQUIRED, declare, dims, elem_type, tensor_type,
                             typed)
from .float_work import work_dtype
from .softmax import row_softmax

kernels = KernelTable()

MS = "com.microsoft"


# --------------------------------------------------------------------------------------------
# Attention and QAttention
# --------------------------------------------------------------------------------------------


class _MergedAttention:
    """The attention step of Attention and QAttention once Q/K/V are projected: the
    attributes read once, then heads, past/present state, masks and the softmax core."""

    def __init__(self, node: NodeInfo) -> None:
        attrs = node.attrs
        self.where = node.describe()
        self.xp = node.xp
        self.heads = int(attrs["num_heads"])
        if self.heads < 1:
            raise ValueError(f"{self.where}: num_heads must be positive, got {self.heads}")
        self.causal = bool(attrs.get("unidirectional") or 0)
        filter_value = attrs.get("mask_filter_value")
        self.fill = -10000.0 if filter_value is None else float(filter_value)
        self.scale = float(attrs.get("scale") or 0.0)
        self.sizes = list(attrs.get("qkv_hidden_sizes") or [])
        for unsupported in ("do_rotary", "past_present_share_buffer"):
            if int(attrs.get(unsupported) or 0):
                raise ValueError(f"{self.where}: {unsupported}=1 is not supported by the CPU "
                                 "kernel (onnxruntime's CPU kernel refuses it too)")
        self.want_present = node.has_output(1)
        self.threads = resolve_threads(node.intra_op_threads)
        self.softmax = row_softmax(node)

    def qkv_sizes(self, width: int) -> tuple[int, int, int]:
        """(Q, K, V) hidden sizes from ``qkv_hidden_sizes`` or an even split of ``width``."""
        if self.sizes:
            if len(self.sizes) != 3 or sum(self.sizes) != width:
                raise ValueError(f"{self.where}: qkv_hidden_sizes {self.sizes} must be 3 sizes "
                                 f"adding up to the weights' {width} columns")
            q, k, v = self.sizes
        elif width % 3:
            raise ValueError(f"{self.where}: weights have {width} columns, not 3 * hidden")
        else:
            q = k = v = width // 3
        if q != k or q % self.heads or v % self.heads:
            raise ValueError(f"{self.where}: hidden sizes {q, k, v} must have Q = K and split "
                             f"into {self.heads} heads")
        return q, k, v

    def __call__(self, projected: Any, out_dtype: np.dtype, mask_index: Any, past: Any,
                 attention_bias: Any) -> tuple:
        """Attention over ``projected`` (B, S, q + k + v hidden, work precision)."""
        xp = self.xp
        batch, seq, width = projected.shape
        q_hidden, k_hidden, _ = self.qkv_sizes(width)
        work = projected.dtype
        heads = self.heads
        q = projected[..., :q_hidden].reshape(batch, seq, heads, -1).transpose(0, 2, 1, 3)
        k = projected[..., q_hidden:q_hidden + k_hidden].reshape(batch, seq, heads, -1)
        v = projected[..., q_hidden + k_hidden:].reshape(batch, seq, heads, -1)
        k, v = k.transpose(0, 2, 1, 3), v.transpose(0, 2, 1, 3)
        past_len = 0
        if past is not None:
            if past.ndim != 5 or past.shape[:3] != (2, batch, heads) \
                    or past.shape[4] != k.shape[3]:
                raise ValueError(f"{self.where}: past must be (2, {batch}, {heads}, P, "
                                 f"{k.shape[3]}), got {tuple(past.shape)}")
            past_len = past.shape[3]
            k = xp.concatenate([past[0].astype(work, copy=False), k], axis=2)
            v = xp.concatenate([past[1].astype(work, copy=False), v], axis=2)
        total = past_len + seq
        scale = self.scale or 1 / math.sqrt(q.shape[3])
        mask = None
        if mask_index is not None:
            mask = padding_mask(xp, mask_index, batch, seq, total, past_len, self.fill,
                                self.where).astype(work)
        if self.causal:
            keep = causal_keep(xp, seq, total, past_len)
            mask = xp.where(keep, work.type(0) if mask is None else mask, work.type(CAUSAL_FILL))
        bias = None if attention_bias is None else attention_bias.astype(work, copy=False)
        context, _ = attend(xp, q, k, v, scale, mask, bias, threads=self.threads,
                            softmax=self.softmax)
        present = xp.stack([k, v]).astype(out_dtype, copy=False) if self.want_present else None
        return merge_heads(context).astype(out_dtype, copy=False), present


@kernels.register("Attention", since=1, domain=MS, input_types={0: HALF_AND_FLOAT})
def attention(node: NodeInfo):
    """Attention 1+: multi-head self-attention with merged Q/K/V weights; optional bias,
    mask_index (key lengths, key end and start positions, raw 0/1 masks (B, T), (B, S, T) or
    Megatron-style (B, 1, M, M): masked keys get ``mask_filter_value``), past/present state
    (2, B, N, T, H), attention_bias, unidirectional (causal), qkv_hidden_sizes, ``scale``.
    past_sequence_length is ignored (it only matters for past_present_share_buffer, which the
    CPU kernel refuses, as onnxruntime's does, like do_rotary)."""
    xp = node.xp
    step = _MergedAttention(node)

    def compute(x, weights, bias=None, mask_index=None, past=None, attention_bias=None,
                past_sequence_length=None):
        if past is not None and attention_bias is not None:
            raise ValueError(f"{node.describe()}: Attention cannot have both past and "
                             "attention_bias (onnxruntime's CPU kernel refuses the pair)")
        work = work_dtype(x.dtype)
        batch, seq, width = x.shape
        projected = threaded_matmul(xp, x.reshape(batch * seq, width).astype(work, copy=False),
                                    weights.astype(work, copy=False), step.threads)
        if bias is not None:
            projected += bias.astype(work, copy=False)
        return step(projected.reshape(batch, seq, -1), x.dtype, mask_index, past,
                    attention_bias)

    return compute


@kernels.register("QAttention", since=1, domain=MS,
                  input_types={0: ("uint8",), 1: ("int8", "uint8"), 2: HALF_AND_FLOAT})
def qattention(node: NodeInfo):
    """QAttention 1+: Attention on a quantized input and weights: the int8/uint8 GEMM of
    (input - input_zero_point) and (weight - weight_zero_point), scaled by input_scale *
    weight_scale (per tensor or per output column), plus the float bias; then as
    Attention (mask_index, past/present, unidirectional, scale)."""
    xp = node.xp
    step = _MergedAttention(node)

    def compute(x, weight, bias, input_scale, weight_scale, mask_index=None,
                input_zero_point=None, weight_zero_point=None, past=None):
        batch, seq, width = x.shape
        xs = x.reshape(batch * seq, width).astype(np.float64)
        if input_zero_point is not None:
            xs -= np.float64(np.asarray(input_zero_point).reshape(-1)[0])
        ws = weight.astype(np.float64)
        if weight_zero_point is not None:
            ws -= np.asarray(weight_zero_point, np.float64).reshape(-1)
        # exact integer products in float64 BLAS, then the float32 scales
        acc = threaded_matmul(xp, xs, ws, step.threads).astype(np.float32)
        scale = np.float32(np.asarray(input_scale).reshape(-1)[0]) \
            * np.asarray(weight_scale, np.float32).reshape(-1)
        projected = acc * scale + bias.astype(np.float32)
        return step(projected.reshape(batch, seq, -1), bias.dtype, mask_index, past, None)

    return compute


# --------------------------------------------------------------------------------------------
# schemas (contrib ops are unknown to ONNX: see .contrib_schema)
# --------------------------------------------------------------------------------------------


def _merged_output(data: int, bias: int, element_of: int):
    """Output 0 of Attention/QAttention: (B, S, v hidden), v hidden from qkv_hidden_sizes or
    the bias (inferred only where the bias's shape is known, as onnxruntime does)."""

    def infer(types, attrs):
        shape = dims(types[data])
        bias_shape = dims(types[bias]) if bias < len(types) else None
        element = elem_type(types[element_of])
        if shape is None or bias_shape is None or len(shape) != 3:
            return tensor_type(element)
        sizes = attrs.get("qkv_hidden_sizes") or []
        hidden = sizes[2] if sizes else (bias_shape[0] // 3
                                         if isinstance(bias_shape[0], int) else None)
        return tensor_type(element, [shape[0], shape[1], hidden])

    return infer


def _merged_present(data: int, past: int, element_of: int):
    """Output 1 (present) of Attention/QAttention: past's shape with P + S keys."""

    def infer(types, attrs):
        element = elem_type(types[element_of])
        past_shape = dims(types[past]) if past < len(types) else None
        shape = dims(types[data])
        if past_shape is None or shape is None or len(past_shape) != 5:
            return tensor_type(element)
        if int(attrs.get("past_present_share_buffer") or 0):
            return tensor_type(element, past_shape)
        if isinstance(past_shape[3], int) and isinstance(shape[1], int):
            return tensor_type(element, past_shape[:3] + [past_shape[3] + shape[1]]
                               + past_shape[4:])
        return tensor_type(element)

    return infer


_MERGED_ATTRS = {"num_heads": REQUIRED, "unidirectional": 0, "scale": None,
                 "mask_filter_value": None, "past_present_share_buffer": None,
                 "do_rotary": None}

SCHEMAS: list[DeclaredSchema] = [
    declare("Attention", inputs=(2, 7), outputs=(1, 2),
            attributes={**_MERGED_ATTRS, "qkv_hidden_sizes": None,
                        "rotary_embedding_dim": None},
            infer=typed(_merged_output(0, 2, 0), _merged_present(0, 4, 0))),
    declare("QAttention", inputs=(5, 9), outputs=(1, 2), attributes=_MERGED_ATTRS,
            infer=typed(_merged_output(0, 2, 2), _merged_present(0, 8, 2))),
]

kernels.extend(contrib_attention_mha.kernels)
kernels.extend(contrib_attention_gqa.kernels)
kernels.extend(contrib_attention_decoder.kernels)
SCHEMAS += contrib_attention_mha.SCHEMAS
SCHEMAS += contrib_attention_gqa.SCHEMAS
SCHEMAS += contrib_attention_decoder.SCHEMAS
