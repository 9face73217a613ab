"""CPU kernels: onnxruntime's com.microsoft attention ops (Attention and its relatives).

Attention follows onnxruntime's contrib operator spec (docs/ContribOperators.md): merged Q/K/V
weights, mask_index forms, past/present state, attention_bias, unidirectional, scale.
Reduced precision inputs are computed in float32 and rounded once.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ort.ep import DeclaredSchema, KernelTable, NodeInfo

from .float_work import work_dtype
from .softmax import softmax_rows

kernels = KernelTable()

#: The contrib ops of this module, declared to the core (see :mod:`.contrib_schema`).
SCHEMAS: list[DeclaredSchema] = []

MS = "com.microsoft"


# --------------------------------------------------------------------------------------------
# Attention
# --------------------------------------------------------------------------------------------


def _attention_mask(xp: Any, mask_index: Any, batch: int, seq: int, past: int,
                    filter_value: float, dtype: np.dtype) -> Any:
    """The additive mask (B, 1, S, T) of a mask_index: raw 0/1 masks (B, T) or (B, S, T),
    end positions (B) or end and start positions (2B)."""
    total = past + seq
    if mask_index.ndim == 2:
        keep = mask_index > 0
        return xp.where(keep, 0, filter_value).astype(dtype)[:, None, None, :]
    if mask_index.ndim == 3:
        return xp.where(mask_index > 0, 0, filter_value).astype(dtype)[:, None, :, :]
    if mask_index.ndim == 1 and mask_index.shape[0] in (batch, 2 * batch):
        positions = xp.arange(total)[None, :]
        masked = positions >= mask_index[:batch, None]
        if mask_index.shape[0] == 2 * batch:
            masked |= positions < xp.minimum(mask_index[batch:, None], total)
        return xp.where(masked, filter_value, 0).astype(dtype)[:, None, None, :]
    raise ValueError(f"mask_index of shape {tuple(mask_index.shape)} is not supported")


@kernels.register("Attention", since=1, domain=MS)
def attention(node: NodeInfo):
    """Attention 1+: multi-head self-attention with merged Q/K/V weights; optional bias,
    mask_index (raw 0/1 mask or sequence end/start positions: masked keys get
    ``mask_filter_value`` added), past/present key-value state, attention_bias,
    unidirectional (causal: future keys excluded), custom ``scale``."""
    xp = node.xp
    attrs = node.attrs
    if "num_heads" not in attrs:
        raise ValueError(f"{node.describe()}: attribute num_heads is required")
    heads = int(attrs["num_heads"])
    if heads < 1:
        raise ValueError(f"{node.describe()}: num_heads must be positive, got {heads}")
    unidirectional = bool(attrs.get("unidirectional", 0))
    filter_value = float(attrs.get("mask_filter_value", -10000.0))
    custom_scale = attrs.get("scale")
    sizes = list(attrs.get("qkv_hidden_sizes", []) or [])
    for unsupported in ("do_rotary", "past_present_share_buffer"):
        if int(attrs.get(unsupported, 0)):
            raise ValueError(f"{node.describe()}: {unsupported}=1 is not supported")
    if node.has_input(6):
        raise ValueError(f"{node.describe()}: past_sequence_length is not supported")

    def compute(x, weights, bias=None, mask_index=None, past=None, attention_bias=None, *_):
        work = work_dtype(x.dtype)
        batch, seq, width = x.shape
        q_hidden, k_hidden, v_hidden = _qkv_sizes(node, sizes, weights.shape[1])
        if q_hidden % heads or v_hidden % heads or q_hidden != k_hidden:
            raise ValueError(f"{node.describe()}: hidden sizes {q_hidden, k_hidden, v_hidden} "
                             f"do not split into {heads} heads")
        # one GEMM over all tokens, bias added in place
        projected = xp.matmul(x.reshape(batch * seq, width).astype(work, copy=False),
                              weights.astype(work, copy=False))
        if bias is not None:
            projected += bias.astype(work, copy=False)
        projected = projected.reshape(batch, seq, -1)
        q, k, v = (projected[..., :q_hidden], projected[..., q_hidden:q_hidden + k_hidden],
                   projected[..., q_hidden + k_hidden:])
        head, v_head = q_hidden // heads, v_hidden // heads
        q = q.reshape(batch, seq, heads, head).transpose(0, 2, 1, 3)
        k = k.reshape(batch, seq, heads, head).transpose(0, 2, 1, 3)
        v = v.reshape(batch, seq, heads, v_head).transpose(0, 2, 1, 3)
        past_len = 0
        if past is not None:
            past_len = past.shape[3]
            k = xp.concatenate([past[0].astype(work, copy=False), k], axis=2)
            v = xp.concatenate([past[1].astype(work, copy=False), v], axis=2)
        total = past_len + seq
        scale = float(custom_scale) if custom_scale is not None else 1 / math.sqrt(head)
        scores = xp.matmul(q, k.transpose(0, 1, 3, 2))  # (B, heads, S, T), fresh
        scores *= work.type(scale)
        mask = None
        if mask_index is not None:
            mask = _attention_mask(xp, mask_index, batch, seq, past_len, filter_value, work)
        if unidirectional:  # future keys are excluded outright (ONNX Runtime uses -inf)
            future = xp.arange(total)[None, :] > (past_len + xp.arange(seq))[:, None]
            mask = xp.where(future, work.type(-np.inf), work.type(0) if mask is None else mask)
        if mask is not None:
            scores += mask
        if attention_bias is not None:
            scores += attention_bias.astype(work, copy=False)
        flat = scores.reshape(-1, total)
        softmax_rows(xp, flat, flat)
        # the context lands straight in (B, S, heads, v_head) order
        context = xp.empty((batch, seq, heads, v_head), dtype=work)
        xp.matmul(scores, v, out=context.transpose(0, 2, 1, 3))
        context = context.reshape(batch, seq, v_hidden)
        present = None
        if node.has_output(1):
            present = xp.stack([k, v]).astype(x.dtype, copy=False)
        return (context.astype(x.dtype, copy=False), present)

    return compute


def _qkv_sizes(node: NodeInfo, sizes: list[int], width: int) -> tuple[int, int, int]:
    """(Q, K, V) hidden sizes from ``qkv_hidden_sizes`` or an even split of the weights."""
    if sizes:
        if len(sizes) != 3 or sum(sizes) != width:
            raise ValueError(f"{node.describe()}: qkv_hidden_sizes {sizes} do not add up to "
                             f"the weights' {width} columns")
        return sizes[0], sizes[1], sizes[2]
    if width % 3:
        raise ValueError(f"{node.describe()}: weights have {width} columns, not 3 * hidden")
    return width // 3, width // 3, width // 3
