"""CPU kernels: onnxruntime's com.microsoft MultiHeadAttention and RotaryEmbedding (the
contrib op, with position ids and cos/sin caches). :mod:`.contrib_attention` lists them."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from ort.ep import DeclaredSchema, KernelTable, NodeInfo

from ..intra_op import resolve_threads
from .contrib_attention_core import (CAUSAL_FILL, HALF_AND_FLOAT, attend,
                                     causal_keep, merge_heads, padding_mask,
                                     rotate, shared_buffer_step, split_heads)
from .contrib_schema import (REQUIRED, declare, dims, elem_type, tensor_type,
                             typed)
from .float_work import work_dtype
from .softmax import row_softmax

kernels = KernelTable()

MS = "com.microsoft"


# --------------------------------------------------------------------------------------------
# MultiHeadAttention
# --------------------------------------------------------------------------------------------


def _mha_inputs(where: str, heads: int, query: Any, key: Any, value: Any, bias: Any,
                work: np.dtype) -> tuple[Any, Any, Any, bool]:
    """Q (B, N, S, H), K and V (B, N, L, H) in ``work`` precision from MultiHeadAttention's
    forms: separate (B, S, D) tensors, packed QKV (B, S, N, 3, H), packed KV (B, L, N, 2, H),
    or K/V already in (B, N, L, H) (cross-attention: used as they are, without past).
    ``bias`` (D + D + Dv) is added to the projections. The flag says K/V came as BNSH."""
    if query.ndim == 5:
        if key is not None or value is not None:
            raise ValueError(f"{where}: a packed (B, S, N, 3, H) query takes no key or value")
        q, k, v = (query[:, :, :, i].astype(work) for i in range(3))
        if bias is not None:
            q, k, v = (t + b.reshape(heads, -1).astype(work)
                       for t, b in zip((q, k, v), np.split(bias, 3)))
        return (q.transpose(0, 2, 1, 3), k.transpose(0, 2, 1, 3), v.transpose(0, 2, 1, 3),
                False)
    if query.ndim != 3 or query.shape[2] % heads:
        raise ValueError(f"{where}: query must be (B, S, D) with D a multiple of {heads} "
                         f"heads, got {tuple(query.shape)}")
    hidden = query.shape[2]
    q = query.astype(work)
    if bias is not None:
        q = q + bias[:hidden].astype(work)
    q = split_heads(q, heads)
    if key is None:
        raise ValueError(f"{where}: key is required unless the query is packed QKV")
    if key.ndim == 5:
        k = key[:, :, :, 0].astype(work).transpose(0, 2, 1, 3)
        v = key[:, :, :, 1].astype(work).transpose(0, 2, 1, 3)
        if bias is not None:
            k = k + bias[hidden:2 * hidden].reshape(heads, 1, -1).astype(work)
            v = v + bias[2 * hidden:].reshape(heads, 1, -1).astype(work)
        return q, k, v, False
    if value is None:
        raise ValueError(f"{where}: value is required with a 3-D or 4-D key")
    if key.ndim == 4:  # BNSH: the cached cross-attention keys and values, bias not added
        return q, key.astype(work), value.astype(work), True
    k, v = key.astype(work), value.astype(work)
    if bias is not None:
        k = k + bias[hidden:2 * hidden].astype(work)
        v = v + bias[2 * hidden:].astype(work)
    return q, split_heads(k, heads), split_heads(v, heads), False


@kernels.register("MultiHeadAttention", since=1, domain=MS, input_types={0: HALF_AND_FLOAT})
def multi_head_attention(node: NodeInfo):
    """MultiHeadAttention 1+: attention of projected Q/K/V (separate, packed QKV, packed KV,
    or K/V in BNSH for cross-attention); optional bias, key_padding_mask (key lengths (B),
    raw 0/1 masks (B, T) or (B, S, T): masked keys get ``mask_filter_value``),
    attention_bias, past_key/past_value (B, N, P, H) concatenated into
    present_key/present_value (or, with past_sequence_length, a shared (B, N, max, H)
    buffer the new keys are written into, read through cache_indirection in beam search),
    unidirectional (causal), ``scale``; output qk is the scores before the softmax."""
    xp = node.xp
    threads = resolve_threads(node.intra_op_threads)
    softmax = row_softmax(node)
    attrs = node.attrs
    where = node.describe()
    heads = int(attrs["num_heads"])
    if heads < 1:
        raise ValueError(f"{where}: num_heads must be positive, got {heads}")
    causal = bool(attrs.get("unidirectional") or 0)
    fill = attrs.get("mask_filter_value")
    fill = -10000.0 if fill is None else float(fill)
    custom_scale = float(attrs.get("scale") or 0.0)
    want_present = node.has_output(1) or node.has_output(2)
    want_qk = node.has_output(3)

    def compute(query, key=None, value=None, bias=None, key_padding_mask=None,
                attention_bias=None, past_key=None, past_value=None,
                past_sequence_length=None, cache_indirection=None):
        work = work_dtype(query.dtype)
        q, k, v, bnsh = _mha_inputs(where, heads, query, key, value, bias, work)
        batch, _, seq, size = q.shape
        past_len = 0
        present = None
        if past_key is not None and past_value is not None and not bnsh:
            if past_sequence_length is not None:  # a shared (B, N, max, H) buffer
                past_len = int(np.asarray(past_sequence_length).reshape(-1)[0])
                beam = 1 if cache_indirection is None else cache_indirection.shape[1]
                k, v, *present = shared_buffer_step(
                    xp, past_key.astype(work), past_value.astype(work), k, v, past_len,
                    cache_indirection, beam, where)
            else:
                past_len = past_key.shape[2]
                k = xp.concatenate([past_key.astype(work, copy=False), k], axis=2)
                v = xp.concatenate([past_value.astype(work, copy=False), v], axis=2)
        total = k.shape[2]
        mask = None
        if key_padding_mask is not None:
            mask = padding_mask(xp, key_padding_mask, batch, seq, total, past_len, fill,
                                where).astype(work)
        if causal:
            keep = causal_keep(xp, seq, total, total - seq)
            mask = xp.where(keep, work.type(0) if mask is None else mask, work.type(CAUSAL_FILL))
        bias_scores = None if attention_bias is None else attention_bias.astype(work)
        scale = custom_scale or 1 / math.sqrt(size)
        context, scores = attend(xp, q, k, v, scale, mask, bias_scores, want_scores=want_qk,
                                 threads=threads, softmax=softmax)
        out_dtype = query.dtype
        present_k, present_v = (k, v) if present is None else present
        present_k = present_k.astype(out_dtype) if want_present else None
        present_v = present_v.astype(out_dtype) if want_present else None
        qk = scores.astype(out_dtype) if want_qk else None
        return merge_heads(context).astype(out_dtype, copy=False), present_k, present_v, qk

    return compute


# --------------------------------------------------------------------------------------------
# RotaryEmbedding (com.microsoft)
# --------------------------------------------------------------------------------------------


@kernels.register("RotaryEmbedding", since=1, domain=MS, input_types={0: HALF_AND_FLOAT})
def rotary_embedding(node: NodeInfo):
    """RotaryEmbedding 1+ (com.microsoft): rotate the first ``rotary_embedding_dim`` channels
    of each head of ``input`` (B, S, N * H) or (B, N, S, H) by ``cos_cache``/``sin_cache``
    rows (max_position, rotary_dim / 2) picked by ``position_ids`` (B, S), or by one start
    position (shape (1): positions start + s); as halves or ``interleaved`` pairs.
    is_packed_batching changes nothing on CPU (as in onnxruntime's CPU kernel)."""
    xp = node.xp
    attrs = node.attrs
    where = node.describe()
    interleaved = bool(attrs.get("interleaved") or 0)
    heads_attr = int(attrs.get("num_heads") or 0)
    rotary_attr = int(attrs.get("rotary_embedding_dim") or 0)

    def compute(x, position_ids, cos_cache, sin_cache):
        work = work_dtype(x.dtype)
        half = cos_cache.shape[1]
        if x.ndim == 4:
            heads_view = x.astype(work)  # (B, N, S, H)
        elif x.ndim == 3:
            heads = heads_attr or x.shape[2] // (rotary_attr or 2 * half)
            if heads < 1 or x.shape[2] % heads:
                raise ValueError(f"{where}: hidden size {x.shape[2]} does not split into "
                                 f"{heads} heads")
            heads_view = split_heads(x.astype(work), heads)
        else:
            raise ValueError(f"{where}: input must be 3-D or 4-D, got {tuple(x.shape)}")
        batch, _, seq, size = heads_view.shape
        rotary_dim = rotary_attr or 2 * half
        if rotary_dim > size or rotary_dim != 2 * half:
            raise ValueError(f"{where}: rotary_embedding_dim {rotary_dim} must be twice the "
                             f"cache width {half} and at most the head size {size}")
        if position_ids.size == 1 and position_ids.shape != (batch, seq):
            positions = int(position_ids.reshape(-1)[0]) + np.arange(seq)[None, :]
        elif position_ids.shape == (batch, seq):
            positions = position_ids
        else:
            raise ValueError(f"{where}: position_ids must be (1) or (B, S) = ({batch}, {seq}), "
                             f"got {tuple(position_ids.shape)}")
        if positions.size and (positions.min() < 0 or positions.max() >= cos_cache.shape[0]):
            raise ValueError(f"{where}: position ids must lie in [0, {cos_cache.shape[0]})")
        cos = cos_cache.astype(work)[positions][:, None]  # (B or 1, 1, S, half)
        sin = sin_cache.astype(work)[positions][:, None]
        out = rotate(xp, heads_view, cos, sin, interleaved, rotary_dim)
        if x.ndim == 3:
            out = merge_heads(out)
        return (out.astype(x.dtype),)

    return compute


# --------------------------------------------------------------------------------------------
# schemas
# --------------------------------------------------------------------------------------------


def _mha_output(types, attrs):
    """MultiHeadAttention output: (B, S, v hidden) as onnxruntime infers it."""
    element = elem_type(types[0])
    query = dims(types[0])
    if query is None:
        return tensor_type(element)
    value = dims(types[2]) if len(types) > 2 else None
    if len(query) == 5:
        hidden = query[2] * query[4] if all(isinstance(d, int) for d in (query[2], query[4])) \
            else None
        return tensor_type(element, [query[0], query[1], hidden])
    if value is not None and len(value) in (3, 4):
        if len(value) == 3:
            hidden = value[2]
        else:
            hidden = value[1] * value[3] if isinstance(value[1], int) \
                and isinstance(value[3], int) else None
        return tensor_type(element, [query[0], query[1], hidden])
    key = dims(types[1]) if len(types) > 1 else None
    if key is not None and len(key) == 5:
        return types[0]
    return tensor_type(element)


def _mha_present(types, attrs):
    """MultiHeadAttention present_key/value: past's shape with P + L keys (L from a 3-D
    value), as onnxruntime infers it."""
    element = elem_type(types[0])
    past = dims(types[6]) if len(types) > 6 else None
    value = dims(types[2]) if len(types) > 2 else None
    if past is None or len(past) != 4:
        return tensor_type(element)
    if len(types) > 8 and types[8] is not None:
        return tensor_type(elem_type(types[6]))
    kv_len = value[1] if value is not None and len(value) == 3 else None
    if isinstance(kv_len, int) and kv_len > 0 and isinstance(past[2], int):
        return tensor_type(element, past[:2] + [past[2] + kv_len, past[3]])
    return tensor_type(element)


SCHEMAS: list[DeclaredSchema] = [
    declare("MultiHeadAttention", inputs=(1, 10), outputs=(1, 4),
            attributes={"num_heads": REQUIRED, "unidirectional": 0, "scale": None,
                        "mask_filter_value": None},
            infer=typed(_mha_output, _mha_present, _mha_present, lambda t, a: None)),
    declare("RotaryEmbedding", inputs=4,
            attributes={"num_heads": None, "rotary_embedding_dim": None, "interleaved": None,
                        "is_packed_batching": None, "scale": None},
            infer=typed(lambda t, a: t[0])),
]
