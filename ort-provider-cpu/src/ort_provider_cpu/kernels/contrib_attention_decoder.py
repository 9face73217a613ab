"""CPU kernels: onnxruntime's com.microsoft DecoderMaskedMultiHeadAttention (one decoding
step over a shared past/present buffer, with beam search cache indirection) and
SparseAttention (block-sparse causal attention over a KV cache). :mod:`.contrib_attention`
lists them."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from ort.ep import DeclaredSchema, KernelTable, NodeInfo

from ..intra_op import resolve_threads
from .contrib_attention_core import (
    HALF_AND_FLOAT, attend, merge_heads, padding_mask, rotate, shared_buffer_step, split_heads,
    split_packed_qkv
)
from .contrib_attention_gqa import packed_query_output
from .contrib_schema import REQUIRED, declare, dims, elem_type, tensor_type, typed
from .float_work import work_dtype
from .softmax import row_softmax

kernels = KernelTable()

MS = "com.microsoft"


# --------------------------------------------------------------------------------------------
# DecoderMaskedMultiHeadAttention
# --------------------------------------------------------------------------------------------


@kernels.register("DecoderMaskedMultiHeadAttention", since=1, domain=MS,
                  input_types={0: HALF_AND_FLOAT})
def decoder_masked_multi_head_attention(node: NodeInfo):
    """DecoderMaskedMultiHeadAttention 1+: one query token (B, 1, D) per entry. Self
    attention writes the new key/value at past_sequence_length into the past buffer
    (B, N, max, H) (past_present_share_buffer) and attends to the first
    past_sequence_length + 1 keys, reading past keys through cache_indirection
    (B, beam_width, max) in beam search; cross attention takes K/V (B, N, L, H) as they are.
    Optional bias (D + D + Dv), mask_index (B, T) raw 0/1, attention_bias, ``scale``,
    ``mask_filter_value``; output_qk gives the scaled scores."""
    xp = node.xp
    threads = resolve_threads(node.intra_op_threads)
    softmax = row_softmax(node)
    attrs = node.attrs
    where = node.describe()
    heads = int(attrs["num_heads"])
    if heads < 1:
        raise ValueError(f"{where}: num_heads must be positive, got {heads}")
    fill = attrs.get("mask_filter_value")
    fill = -10000.0 if fill is None else float(fill)
    custom_scale = float(attrs.get("scale") or 0.0)
    share = bool(int(attrs.get("past_present_share_buffer") or 0))
    want_qk = node.has_output(3)

    def compute(query, key=None, value=None, mask_index=None, attention_bias=None,
                past_key=None, past_value=None, past_sequence_length=None, beam_width=None,
                cache_indirection=None, bias=None):
        work = work_dtype(query.dtype)
        batch, seq, hidden = query.shape
        if key is None or value is None:
            raise ValueError(f"{where}: key and value are required")
        q = query.astype(work)
        if bias is not None:
            q = q + bias[:hidden].astype(work)
        q = split_heads(q, heads)
        present_k = present_v = None
        if key.ndim == 4:  # cross attention: cached (B, N, L, H) keys and values
            k, v = key.astype(work), value.astype(work)
            past_len = 0
        else:
            k, v = key.astype(work), value.astype(work)
            if bias is not None:
                k = k + bias[hidden:2 * hidden].astype(work)
                v = v + bias[2 * hidden:].astype(work)
            k, v = split_heads(k, heads), split_heads(v, heads)
            if past_key is None or past_value is None:
                past_len = 0
            elif not share:
                raise ValueError(f"{where}: past_key needs past_present_share_buffer=1")
            else:
                if past_sequence_length is None:
                    raise ValueError(f"{where}: past_sequence_length is required with past")
                past_len = int(np.asarray(past_sequence_length).reshape(-1)[0])
                beam = 1 if beam_width is None else int(np.asarray(beam_width).reshape(-1)[0])
                k, v, present_k, present_v = shared_buffer_step(
                    xp, past_key.astype(work), past_value.astype(work), k, v, past_len,
                    cache_indirection, beam, where)
        total = k.shape[2]
        mask = None
        if mask_index is not None:
            mask = padding_mask(xp, mask_index, batch, seq, total, past_len, fill,
                                where).astype(work)
        bias_scores = None if attention_bias is None else attention_bias.astype(work)
        scale = custom_scale or 1 / math.sqrt(q.shape[3])
        context, scores = attend(xp, q, k, v, scale, mask, bias_scores, want_scores=want_qk,
                                 threads=threads, softmax=softmax)
        out_dtype = query.dtype
        if present_k is None and (node.has_output(1) or node.has_output(2)):
            present_k, present_v = k, v
        return (merge_heads(context).astype(out_dtype),
                None if present_k is None else present_k.astype(out_dtype),
                None if present_v is None else present_v.astype(out_dtype),
                scores.astype(out_dtype) if want_qk else None)

    return compute


# --------------------------------------------------------------------------------------------
# SparseAttention
# --------------------------------------------------------------------------------------------


def _block_layout(rows: Any, cols: Any, blocks: int) -> np.ndarray:
    """Dense (layouts, blocks, blocks) booleans of CSR block layouts (row pointers
    ``rows`` (layouts, R + 1), column indices ``cols`` (layouts, nnz))."""
    rows, cols = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
    layouts, row_count = rows.shape[0], rows.shape[1] - 1
    dense = np.zeros((layouts, max(row_count, blocks), max(row_count, blocks)), bool)
    for layout in range(layouts):  # one pass per layout over its (few) nonzero blocks
        counts = np.diff(rows[layout])
        which_row = np.repeat(np.arange(row_count), counts)
        start, stop = rows[layout, 0], rows[layout, -1]
        which_col = cols[layout, start:stop]
        keep = which_col >= 0
        dense[layout, which_row[keep], which_col[keep]] = True
    return dense


@kernels.register("SparseAttention", since=1, domain=MS, input_types={0: HALF_AND_FLOAT})
def sparse_attention(node: NodeInfo):
    """SparseAttention 1+: causal grouped-query attention where query block ``i`` sees key
    block ``j`` only if the head's block layout (CSR block_row_indices/block_col_indices,
    head h using layout h % layouts) holds it; query, key, value (B, S, heads * H) or a packed
    query; past_key/past_value (B, Nkv, max, H) share their buffer with present (new keys
    written at key_total_sequence_lengths - S); optional rotary (cos_cache/sin_cache,
    rotary_interleaved); ``scale``."""
    xp = node.xp
    threads = resolve_threads(node.intra_op_threads)
    softmax = row_softmax(node)
    attrs = node.attrs
    where = node.describe()
    heads, kv_heads = int(attrs["num_heads"]), int(attrs["kv_num_heads"])
    block = int(attrs["sparse_block_size"])
    if heads < 1 or kv_heads < 1 or heads % kv_heads or block < 1:
        raise ValueError(f"{where}: num_heads {heads} must be a multiple of kv_num_heads "
                         f"{kv_heads}, sparse_block_size {block} positive")
    custom_scale = float(attrs.get("scale") or 0.0)
    do_rotary = bool(attrs.get("do_rotary") or 0)
    interleaved = bool(attrs.get("rotary_interleaved") or 0)

    def compute(query, key, value, past_key, past_value, block_row_indices, block_col_indices,
                total_sequence_length, key_total_sequence_lengths, cos_cache=None,
                sin_cache=None):
        work = work_dtype(query.dtype)
        batch, seq, width = query.shape
        if key is None:
            q_part, key, value = split_packed_qkv(query, heads, kv_heads)
        else:
            q_part = query
        q = split_heads(q_part.astype(work), heads)
        k = split_heads(key.astype(work), kv_heads)
        v = split_heads(value.astype(work), kv_heads)
        lengths = np.asarray(key_total_sequence_lengths, np.int64).reshape(-1)
        total_len = int(np.asarray(total_sequence_length).reshape(-1)[0])
        # the prompt writes at 0 (padded entries have fewer keys); later steps append
        starts = np.zeros_like(lengths) if seq == total_len else lengths - seq
        if (starts < 0).any() or (lengths > past_key.shape[2]).any() or (lengths < 1).any():
            raise ValueError(f"{where}: key_total_sequence_lengths {lengths.tolist()} must lie "
                             f"in [{seq}, {past_key.shape[2]}]")
        positions = starts[:, None] + np.arange(seq)[None, :]
        if do_rotary:
            cos = cos_cache.astype(work)[positions][:, None]
            sin = sin_cache.astype(work)[positions][:, None]
            q = rotate(xp, q, cos, sin, interleaved, 2 * cos_cache.shape[1])
            k = rotate(xp, k, cos, sin, interleaved, 2 * cos_cache.shape[1])
        present_k, present_v = past_key.astype(work), past_value.astype(work)
        rows = np.arange(batch)[:, None]
        present_k.transpose(0, 2, 1, 3)[rows, positions] = k.transpose(0, 2, 1, 3)
        present_v.transpose(0, 2, 1, 3)[rows, positions] = v.transpose(0, 2, 1, 3)
        total = present_k.shape[2]
        keys = np.arange(total)
        limit = np.minimum(positions, lengths[:, None] - 1)
        layout = _block_layout(block_row_indices, block_col_indices, -(-total // block))
        head_layout = layout[np.arange(heads) % layout.shape[0]]  # (N, R, R)
        allowed = head_layout[:, limit // block][..., keys // block]  # (N, B, S, T)
        visible = allowed.transpose(1, 0, 2, 3) & (keys <= limit[:, :, None])[:, None]
        mask = xp.where(visible, 0.0, -np.inf).astype(work)
        scale = custom_scale or 1 / math.sqrt(q.shape[3])
        context, _ = attend(xp, q, present_k, present_v, scale, mask, threads=threads,
                            softmax=softmax)
        out_dtype = query.dtype
        return (merge_heads(context).astype(out_dtype), present_k.astype(out_dtype),
                present_v.astype(out_dtype))

    return compute


def _decoder_output(types, attrs):
    """DecoderMaskedMultiHeadAttention output: (B, S, v hidden) from the query and value."""
    query, value = dims(types[0]), dims(types[2]) if len(types) > 2 else None
    element = elem_type(types[0])
    if query is None or value is None:
        return tensor_type(element)
    hidden = value[2] if len(value) == 3 else (
        value[1] * value[3] if isinstance(value[1], int) and isinstance(value[3], int)
        else None)
    return tensor_type(element, [query[0], query[1], hidden])


def _past_like(index: int):
    """An output of unknown shape with the element type of input ``index`` (or of the query
    where that is missing), as onnxruntime infers the shared present buffers."""

    def infer(types, attrs):
        source = types[index] if len(types) > index and types[index] is not None else types[0]
        return tensor_type(elem_type(source))

    return infer


SCHEMAS: list[DeclaredSchema] = [
    declare("DecoderMaskedMultiHeadAttention", inputs=(1, 11), outputs=(1, 4),
            attributes={"num_heads": REQUIRED, "past_present_share_buffer": None,
                        "scale": None, "mask_filter_value": None, "output_qk": None},
            infer=typed(_decoder_output, _past_like(5), _past_like(6), lambda t, a: None)),
    declare("SparseAttention", inputs=(9, 11), outputs=3,
            attributes={"num_heads": REQUIRED, "kv_num_heads": REQUIRED,
                        "sparse_block_size": REQUIRED, "scale": None, "do_rotary": None,
                        "rotary_interleaved": None},
            infer=typed(packed_query_output, lambda t, a: t[3], lambda t, a: t[4])),
]
