"""CPU kernel: onnxruntime's com.microsoft GroupQueryAttention, the attention LLM exports
carry (prompt and token-generation steps over a KV cache). :mod:`.contrib_attention` lists
it."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from ort.ep import DeclaredSchema, KernelTable, NodeInfo

from ..intra_op import resolve_threads
from .contrib_attention_core import (
    HALF_AND_FLOAT, attend, merge_heads, rotate, split_heads, split_packed_qkv
)
from .contrib_schema import REQUIRED, declare, dims, elem_type, tensor_type
from .float_work import work_dtype
from .softmax import row_softmax

kernels = KernelTable()

MS = "com.microsoft"

_UNSUPPORTED_INPUTS = {14: "q_norm_weight", 15: "k_norm_weight", 16: "query_seqlens"}
_QUANT_TYPES = ("NONE", "PER_TENSOR", "PER_CHANNEL")


def _unpack_int4(packed: Any) -> Any:
    """Signed 4-bit values (-8..7) from bytes holding two each as value + 8, low nibble
    first."""
    pairs = np.stack([packed & 0x0F, packed >> 4], axis=-1).astype(np.int8) - 8
    return pairs.reshape(packed.shape[:-1] + (-1,))


def _pack_int4(values: Any) -> Any:
    """Signed 4-bit values (-8..7) packed two per byte as value + 8, low nibble first."""
    nibbles = (values + 8).astype(np.uint8)
    return nibbles[..., 0::2] | (nibbles[..., 1::2] << 4)


def _dequantize(cache: Any, scale: Any, work: np.dtype) -> Any:
    """A quantized cache (B, Nkv, T, H) (int8, or uint8 bytes of two 4-bit values) times its
    scale (one value, or one per channel broadcastable to (Nkv, 1, H)) in ``work``
    precision; float caches pass through."""
    if cache.dtype == np.uint8:
        cache = _unpack_int4(cache)
    elif cache.dtype.kind not in "iu":
        return cache.astype(work, copy=False)
    return cache.astype(work) * _channel_scale(scale, cache.shape, work)


def _quantize(values: Any, scale: Any, dtype: np.dtype) -> Any:
    """``values`` / scale rounded half to even and saturated to int8, or to 4 bits packed
    two per uint8 byte."""
    scaled = np.rint(values / _channel_scale(scale, values.shape, values.dtype))
    if dtype == np.uint8:
        return _pack_int4(np.clip(scaled, -8, 7))
    info = np.iinfo(dtype)
    return np.clip(scaled, info.min, info.max).astype(dtype)


def _channel_scale(scale: Any, shape: tuple, work: np.dtype) -> Any:
    """A k_scale/v_scale as an array broadcastable to a (B, Nkv, T, H) cache."""
    scale = np.asarray(scale, work)
    if scale.size == 1:
        return scale.reshape(())
    return scale.reshape(1, shape[1], 1, shape[3])


class _Cache:
    """Per-batch cache bookkeeping of one GroupQueryAttention call: how many keys each batch
    entry has in all (``seqlens_k + 1``), how many of them come from the past buffer, and
    where its new tokens sit."""

    def __init__(self, where: str, seqlens_k: Any, total_sequence_length: Any, seq: int,
                 batch: int, has_past: bool) -> None:
        self.total = int(np.asarray(total_sequence_length).reshape(-1)[0])
        lengths = np.asarray(seqlens_k, np.int64).reshape(-1)
        if lengths.shape[0] != batch:
            raise ValueError(f"{where}: seqlens_k must have {batch} entries, got "
                             f"{lengths.shape[0]}")
        self.lengths = lengths + 1  # keys of each batch entry
        if (self.lengths > self.total).any() or (self.lengths < 1).any():
            raise ValueError(f"{where}: seqlens_k + 1 must lie in [1, total_sequence_length="
                             f"{self.total}], got {self.lengths.tolist()}")
        self.first_prompt = seq == self.total
        if self.first_prompt or not has_past:
            self.past = np.zeros(batch, np.int64)
        else:
            self.past = self.lengths - seq
            if (self.past < 0).any():
                raise ValueError(f"{where}: seqlens_k + 1 - sequence_length must not be "
                                 f"negative after the first prompt, got {self.past.tolist()}")
        #: position of each new token (B, S)
        self.positions = self.past[:, None] + np.arange(seq)[None, :]


@kernels.register("GroupQueryAttention", since=1, domain=MS,
                  input_types={0: HALF_AND_FLOAT})
def group_query_attention(node: NodeInfo):
    """GroupQueryAttention 1+: causal attention of ``num_heads`` query heads over
    ``kv_num_heads`` shared key/value heads (query, key, value (B, S, heads * H), or one
    packed query); past_key/past_value (B, Nkv, P, H) caches extended at each batch entry's
    own length (seqlens_k + 1 keys in all, total_sequence_length for the step) into
    present_key/present_value (B, Nkv, max(P, total), H, zero beyond each entry's keys);
    do_rotary with cos_cache/sin_cache (positions from position_ids or the cache offsets,
    halves or rotary_interleaved), local_window_size (sliding window), softcap, scale,
    smooth_softmax or head_sink (an extra logit per softmax row), attention_bias, causal=0,
    output_qk (qk_output 1 or 2), and 8- or 4-bit quantized caches (k_quant_type /
    v_quant_type PER_TENSOR or PER_CHANNEL with k_scale / v_scale). q_norm_weight,
    k_norm_weight and query_seqlens are refused (onnxruntime's CPU kernel has none)."""
    xp = node.xp
    threads = resolve_threads(node.intra_op_threads)
    softmax = row_softmax(node)
    attrs = node.attrs
    where = node.describe()
    heads = int(attrs["num_heads"])
    kv_heads = int(attrs["kv_num_heads"])
    if heads < 1 or kv_heads < 1 or heads % kv_heads:
        raise ValueError(f"{where}: num_heads {heads} must be a positive multiple of "
                         f"kv_num_heads {kv_heads}")
    custom_scale = float(attrs.get("scale") or 0.0)
    softcap = float(attrs.get("softcap") or 0.0)
    do_rotary = bool(attrs.get("do_rotary") or 0)
    interleaved = bool(attrs.get("rotary_interleaved") or 0)
    window = int(attrs.get("local_window_size", -1))
    smooth = int(attrs.get("smooth_softmax", -1)) == 1
    causal = int(attrs.get("causal", 1)) != 0
    qk_mode = int(attrs.get("qk_output") or 0)  # 1: scores before the softmax, 2: after
    if qk_mode not in (0, 1, 2):
        raise ValueError(f"{where}: qk_output must be 0, 1 or 2, got {qk_mode}")
    want_qk = node.has_output(3)
    if want_qk and not qk_mode:
        raise ValueError(f"{where}: output_qk needs qk_output 1 (before softmax) or 2 (after)")
    quantized = []
    for name in ("k_quant_type", "v_quant_type"):
        value = attrs.get(name) or "NONE"
        value = value.decode() if isinstance(value, bytes) else value
        if value not in _QUANT_TYPES:
            raise ValueError(f"{where}: {name}={value} is not one of {_QUANT_TYPES}")
        quantized.append(value != "NONE")
    bits = int(attrs.get("kv_cache_bit_width") or 0)
    if any(quantized) and bits not in (0, 4, 8):
        raise ValueError(f"{where}: kv_cache_bit_width={bits} must be 4 or 8")
    cache_type = np.dtype(np.uint8 if bits == 4 else np.int8)
    for index, name in _UNSUPPORTED_INPUTS.items():
        if node.has_input(index):
            raise ValueError(f"{where}: input {name} is not supported")

    def compute(query, key=None, value=None, past_key=None, past_value=None, seqlens_k=None,
                total_sequence_length=None, cos_cache=None, sin_cache=None, position_ids=None,
                attention_bias=None, head_sink=None, k_scale=None, v_scale=None, *_):
        work = work_dtype(query.dtype)
        batch, seq, width = query.shape
        if key is None:  # packed (B, S, (N + 2 Nkv) H)
            if width % (heads + 2 * kv_heads):
                raise ValueError(f"{where}: packed query width {width} is not a multiple of "
                                 f"num_heads + 2 * kv_num_heads = {heads + 2 * kv_heads}")
            q_part, key, value = split_packed_qkv(query, heads, kv_heads)
        else:
            q_part = query
        if q_part.shape[2] % heads or key.shape[2] != value.shape[2] \
                or key.shape[2] * heads != q_part.shape[2] * kv_heads or key.shape[1] != seq:
            raise ValueError(f"{where}: query {tuple(q_part.shape)}, key {tuple(key.shape)} "
                             f"and value {tuple(value.shape)} do not fit {heads} query heads "
                             f"over {kv_heads} key/value heads of one head size")
        q = split_heads(q_part.astype(work), heads)
        k = split_heads(key.astype(work), kv_heads)
        v = split_heads(value.astype(work), kv_heads)
        size = q.shape[3]
        has_past = past_key is not None and past_value is not None
        cache = _Cache(where, seqlens_k, total_sequence_length, seq, batch, has_past)
        if do_rotary:
            if cos_cache is None or sin_cache is None:
                raise ValueError(f"{where}: do_rotary=1 needs cos_cache and sin_cache")
            # onnxruntime ignores position_ids on the first prompt
            positions = cache.positions if position_ids is None or cache.first_prompt \
                else np.asarray(position_ids).reshape(batch, seq)
            positions = np.minimum(positions, cos_cache.shape[0] - 1)
            cos = cos_cache.astype(work)[positions][:, None]  # (B, 1, S, rotary / 2)
            sin = sin_cache.astype(work)[positions][:, None]
            rotary_dim = 2 * cos_cache.shape[1]
            q = rotate(xp, q, cos, sin, interleaved, rotary_dim)
            k = rotate(xp, k, cos, sin, interleaved, rotary_dim)
        past_len = past_key.shape[2] if has_past else 0
        present_len = max(past_len, cache.total)
        keys = xp.arange(present_len)
        present_k = xp.zeros((batch, kv_heads, present_len, size), work)
        present_v = xp.zeros((batch, kv_heads, present_len, size), work)
        if has_past:  # each entry keeps its own past keys; the rest of the buffer is zero
            kept = (keys[:past_len] < cache.past[:, None])[:, None, :, None]
            present_k[:, :, :past_len] = xp.where(kept, _dequantize(past_key, k_scale, work), 0)
            present_v[:, :, :past_len] = xp.where(kept, _dequantize(past_value, v_scale, work),
                                                  0)
        rows = np.arange(batch)[:, None]
        present_k.transpose(0, 2, 1, 3)[rows, cache.positions] = k.transpose(0, 2, 1, 3)
        present_v.transpose(0, 2, 1, 3)[rows, cache.positions] = v.transpose(0, 2, 1, 3)
        # a quantized cache is attended to as stored: new keys rounded to it too
        if quantized[0]:
            present_k = _dequantize(_quantize(present_k, k_scale, cache_type), k_scale,
                                    work)
        if quantized[1]:
            present_v = _dequantize(_quantize(present_v, v_scale, cache_type), v_scale,
                                    work)
        # key j is visible to query s of entry b when j <= its position and j < its keys
        limit = np.broadcast_to(cache.lengths[:, None] - 1, cache.positions.shape)  # (B, S)
        if causal:
            limit = np.minimum(cache.positions, limit)
        visible = keys[None, None, :] <= limit[:, :, None]
        if window >= 0:
            visible &= keys[None, None, :] > limit[:, :, None] - window
        mask = xp.where(visible, 0.0, -np.inf).astype(work)[:, None]
        bias = None
        if attention_bias is not None:
            bias = xp.zeros(attention_bias.shape[:3] + (present_len,), work)
            width_b = min(attention_bias.shape[3], present_len)
            bias[..., :width_b] = attention_bias[..., :width_b]
        sink = None if head_sink is None else head_sink.astype(work)
        scale = custom_scale or 1 / math.sqrt(size)
        context, qk = attend(xp, q, present_k, present_v, scale, mask, bias, softcap,
                             smooth and sink is None, sink, want_scores=want_qk and qk_mode == 1,
                             want_probs=want_qk and qk_mode == 2, threads=threads,
                             softmax=softmax)
        out_dtype = query.dtype
        if want_qk:  # (B, N, S, total), zero where masked
            qk = xp.where(visible[:, None], qk, 0)[..., :cache.total].astype(out_dtype)
        # unwritten cache entries stay zero bytes
        written = (keys < (cache.past + seq)[:, None])[:, None, :, None]
        cache_k = xp.where(written, _quantize(present_k, k_scale, cache_type), 0).astype(
            cache_type) if quantized[0] else present_k.astype(out_dtype)
        cache_v = xp.where(written, _quantize(present_v, v_scale, cache_type), 0).astype(
            cache_type) if quantized[1] else present_v.astype(out_dtype)
        return merge_heads(context).astype(out_dtype), cache_k, cache_v, qk

    return compute


def packed_query_output(types, attrs):
    """The attention output of GroupQueryAttention and SparseAttention: the query's shape, or
    (B, S, N * H) of a packed query (QKV in one input, no key/value inputs)."""
    query = dims(types[0])
    element = elem_type(types[0])
    if query is None or len(query) != 3:
        return tensor_type(element)
    if len(types) > 2 and types[2] is not None:
        return types[0]
    heads, kv_heads = int(attrs["num_heads"]), int(attrs["kv_num_heads"])
    hidden = query[2] // (heads + 2 * kv_heads) * heads if isinstance(query[2], int) else None
    return tensor_type(element, [query[0], query[1], hidden])


def _gqa_present(index: int):
    """GroupQueryAttention present_key/value as onnxruntime infers them: (B, Nkv, S, H) of
    the new keys without a past; with one, (B, Nkv, L, H) in the past's element type, L being
    max(P, total_sequence_length) when total_sequence_length is a constant, else unknown."""

    def infer(types, attrs, values=()):
        past_type = types[3 + index] if len(types) > 3 + index else None
        if past_type is None:  # (B, Nkv, S, H) of the new keys
            query = dims(types[0])
            if query is not None and len(query) == 3:
                kv_heads = int(attrs["kv_num_heads"])
                heads = int(attrs["num_heads"])
                value = dims(types[2]) if len(types) > 2 else None
                width = value[2] if value is not None else (
                    query[2] // (heads + 2 * kv_heads) * kv_heads
                    if isinstance(query[2], int) else None)
                if isinstance(width, int):  # no shape where the head size is unknown
                    return tensor_type(elem_type(types[0]),
                                       [query[0], kv_heads, query[1], width // kv_heads])
            return tensor_type(elem_type(types[0]))
        element, past = elem_type(past_type), dims(past_type)
        if past is None or len(past) != 4:
            return tensor_type(element)
        total = values[6] if len(values) > 6 else None
        length = None
        if total is not None and isinstance(past[2], int):
            length = max(past[2], int(total.reshape(-1)[0]))
        return tensor_type(element, [past[0], past[1], length, past[3]])

    return infer


def _gqa_types(types, attrs, values):
    """GroupQueryAttention's outputs: output, present_key, present_value, output_qk."""
    return [packed_query_output(types, attrs), _gqa_present(0)(types, attrs, values),
            _gqa_present(1)(types, attrs, values), tensor_type(elem_type(types[0]))]


SCHEMAS: list[DeclaredSchema] = [
    declare("GroupQueryAttention", inputs=(7, 17), outputs=(1, 4),
            attributes={"num_heads": REQUIRED, "kv_num_heads": REQUIRED, "scale": None,
                        "softcap": None, "local_window_size": -1, "do_rotary": None,
                        "rotary_interleaved": None, "smooth_softmax": -1, "qk_output": 0,
                        "k_quant_type": "NONE", "v_quant_type": "NONE",
                        "kv_cache_bit_width": None, "sliding_window_cache": 0, "causal": 1,
                        "qk_norm_epsilon": 1e-6, "q_norm_epsilon": None,
                        "k_norm_epsilon": None},
            infer=_gqa_types, uses_values=True),
]
