"""The scaled dot-product core shared by onnxruntime's com.microsoft attention kernels
(Attention, QAttention, MultiHeadAttention, GroupQueryAttention): heads split and merged,
key padding masks turned into additive masks, rotary embedding of head tensors, and
softmax(scale * Q K^T + mask + bias) V in the work precision. It holds no kernels.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..threaded_gemm import matmul as threaded_matmul
from .softmax import softmax_rows

#: The element types onnxruntime's CPU provider runs these ops with (no bfloat16, no double):
#: a node of another type finds no kernel here either.
HALF_AND_FLOAT = ("float16", "float")

#: What onnxruntime adds to the scores of keys a causal mask hides (float's lowest value).
CAUSAL_FILL = float(np.finfo(np.float32).min)


def split_heads(x: Any, heads: int) -> Any:
    """``(B, S, heads * H)`` as ``(B, heads, S, H)`` (a view)."""
    batch, seq, hidden = x.shape
    return x.reshape(batch, seq, heads, hidden // heads).transpose(0, 2, 1, 3)


def split_packed_qkv(query: Any, heads: int, kv_heads: int) -> tuple[Any, Any, Any]:
    """Q, K and V (views) of a packed ``(B, S, (heads + 2 * kv_heads) * H)`` query, as
    GroupQueryAttention and SparseAttention take them when key and value are omitted."""
    size = query.shape[-1] // (heads + 2 * kv_heads)
    return (query[..., :heads * size], query[..., heads * size:(heads + kv_heads) * size],
            query[..., (heads + kv_heads) * size:])


def merge_heads(x: Any) -> Any:
    """``(B, heads, S, H)`` as a C-contiguous ``(B, S, heads * H)``."""
    batch, heads, seq, size = x.shape
    # reshape copies the transposed view into C order (numpy and cupy alike)
    return x.transpose(0, 2, 1, 3).reshape(batch, seq, heads * size)


def causal_keep(xp: Any, seq: int, total: int, past: Any = 0) -> Any:
    """Boolean ``(S, T)`` (or ``(B, 1, S, T)`` for per-batch ``past``) of the keys a causal
    query may see: query ``s`` sits at position ``past + s``."""
    keys = xp.arange(total)
    if np.ndim(past):
        rows = np.asarray(past)[:, None, None, None] + xp.arange(seq)[:, None]
        return keys <= rows
    return keys[None, :] <= (past + xp.arange(seq))[:, None]


def padding_mask(xp: Any, mask: Any, batch: int, seq: int, total: int, past: int,
                 fill: float, what: str) -> Any:
    """The additive mask broadcastable to ``(B, N, S, T)`` of an int32 key padding mask:
    1-D key lengths ``(B)`` (also the first part of the ``(3B + 2)`` form: lengths, then
    cumulative query and key offsets), key end and start positions ``(2B)``, raw 0/1 masks
    ``(B, T)`` or ``(B, S, T)``, or a Megatron-style ``(B, 1, M, M)`` raw mask read at rows
    ``past .. past + S`` (masked keys get ``fill``)."""
    if mask.ndim == 1 and mask.shape[0] in (batch, 2 * batch, 3 * batch + 2):
        keys = xp.arange(total)[None, :]
        hidden = keys >= mask[:batch, None]
        if mask.shape[0] == 2 * batch:
            hidden |= keys < mask[batch:, None]
        return xp.where(hidden, fill, 0.0)[:, None, None, :]
    if mask.ndim == 2 and mask.shape == (batch, total):
        return xp.where(mask > 0, 0.0, fill)[:, None, None, :]
    if mask.ndim == 3 and mask.shape == (batch, seq, total):
        return xp.where(mask > 0, 0.0, fill)[:, None, :, :]
    if mask.ndim == 4 and mask.shape[:2] == (batch, 1) and mask.shape[2] == mask.shape[3] \
            and mask.shape[3] >= past + seq and mask.shape[3] >= total:
        rows = mask[:, :, past:past + seq, :total]
        return xp.where(rows > 0, 0.0, fill)
    raise ValueError(f"{what}: mask of shape {tuple(mask.shape)} is none of (B), (2B), "
                     f"(B, T), (B, S, T), (B, 1, M, M) for B={batch}, S={seq}, T={total}")


def rotate(xp: Any, x: Any, cos: Any, sin: Any, interleaved: bool, rotary_dim: int) -> Any:
    """``x`` (..., S, H) rotated in its first ``rotary_dim`` channels by ``cos``/``sin``
    (broadcastable to (..., S, rotary_dim / 2)): as halves, or as interleaved pairs."""
    half = rotary_dim // 2
    out = x.copy()
    first = slice(0, rotary_dim, 2) if interleaved else slice(0, half)
    second = slice(1, rotary_dim, 2) if interleaved else slice(half, rotary_dim)
    x1, x2 = x[..., first], x[..., second]
    out[..., first] = x1 * cos - x2 * sin
    out[..., second] = x1 * sin + x2 * cos
    return out


def attend(xp: Any, q: Any, k: Any, v: Any, scale: float, mask: Any = None,
           bias: Any = None, softcap: float = 0.0, smooth: bool = False,
           sink: Any = None, want_scores: bool = False,
           want_probs: bool = False, threads: int = 1,
           softmax: Callable[[Any, Any], Any] | None = None) -> tuple[Any, Any]:
    """Scaled dot-product attention of work-precision head tensors ``q`` (B, N, S, H),
    ``k`` and ``v`` (B, N, T, H) (``k``/``v`` may have fewer heads, N a multiple of theirs:
    grouped queries share them). ``mask`` and ``bias`` are added to the scaled scores
    (after ``softcap * tanh(scores / softcap)`` when ``softcap``); ``smooth`` adds an
    extra zero logit to each softmax row, ``sink`` one logit per head. Returns the context
    (B, N, S, Hv) and, when ``want_scores``, the scores before the softmax. The two
    products are split over up to ``threads`` intra-op threads when large; ``softmax(x, out)``
    (a kernel's :func:`~.softmax.row_softmax`, the compiled row loop) replaces numpy's."""
    batch, heads, seq, size = q.shape
    kv_heads = k.shape[1]
    if kv_heads != heads:  # grouped: (B, Nkv, group * S, H) against each shared head
        group = heads // kv_heads
        q = q.reshape(batch, kv_heads, group * seq, size)
    scores = threaded_matmul(xp, q, k.swapaxes(-1, -2), threads)
    scores = scores.reshape(batch, heads, seq, -1)
    scores *= scores.dtype.type(scale)
    if softcap:
        scores = xp.tanh(scores / softcap) * softcap
    if mask is not None:
        scores = scores + mask
    if bias is not None:
        scores = scores + bias
    total = scores.shape[-1]
    raw = scores.copy() if want_scores else None
    if smooth or sink is not None:
        extra = xp.zeros((batch, heads, seq, 1), scores.dtype)
        if sink is not None:
            extra += sink.reshape(1, heads, 1, 1)
        scores = xp.concatenate([scores, extra], axis=-1)
    flat = xp.ascontiguousarray(scores).reshape(-1, scores.shape[-1])
    if softmax is None:
        softmax_rows(xp, flat, flat)
    else:
        softmax(flat, flat)
    probs = flat.reshape(batch, heads, seq, -1)[..., :total]
    if want_probs:
        raw = probs.copy()
    if kv_heads != heads:
        probs = probs.reshape(batch, kv_heads, -1, total)
    context = threaded_matmul(xp, probs, v, threads).reshape(batch, heads, seq, v.shape[-1])
    return context, raw


def _beam_gather(past: Any, indirection: Any, beam: int, length: int) -> Any:
    """The first ``length`` past keys (B*beam, N, length, H) each beam reads: key ``t`` of
    beam ``w`` of batch ``b`` comes from beam ``indirection[b, w, t]``."""
    batch_beam = past.shape[0]
    source = (np.arange(batch_beam) // beam * beam)[:, None] \
        + np.asarray(indirection, np.int64).reshape(batch_beam, -1)[:, :length]
    steps = np.arange(length)[None, :]
    gathered = past.transpose(0, 2, 1, 3)[source, steps]  # (B*beam, length, N, H)
    return gathered.transpose(0, 2, 1, 3)


def shared_buffer_step(xp: Any, past_key: Any, past_value: Any, k: Any, v: Any,
                       past_len: int, indirection: Any = None, beam: int = 1,
                       what: str = "attention") -> tuple[Any, Any, Any, Any]:
    """One step over a shared past/present buffer (B, N, max, H) holding ``past_len`` keys:
    returns the keys and values to attend to (the past ones read through the beam search
    ``indirection`` (B, beam, max) when ``beam`` > 1, then the new ``k``/``v``) and the
    present buffers (copies of the past ones with ``k``/``v`` written at ``past_len``)."""
    seq = k.shape[2]
    if past_len < 0 or past_len + seq > past_key.shape[2]:
        raise ValueError(f"{what}: past_sequence_length {past_len} + {seq} new keys do not "
                         f"fit the past buffer's {past_key.shape[2]} entries")
    present_k, present_v = past_key.copy(), past_value.copy()
    old_k, old_v = present_k[:, :, :past_len], present_v[:, :, :past_len]
    if indirection is not None and beam > 1:
        old_k = _beam_gather(present_k, indirection, beam, past_len)
        old_v = _beam_gather(present_v, indirection, beam, past_len)
    present_k[:, :, past_len:past_len + seq] = k
    present_v[:, :, past_len:past_len + seq] = v
    return (xp.concatenate([old_k, k], axis=2), xp.concatenate([old_v, v], axis=2),
            present_k, present_v)
