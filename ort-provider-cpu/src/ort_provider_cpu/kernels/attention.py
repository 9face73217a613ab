"""CPU kernels: softmax attention and the ops around its KV cache: Attention (23+), the
RotaryEmbedding (23+) applied to its queries and keys, and TensorScatter (24+), which writes new
keys and values into a cache tensor.

Attention and RotaryEmbedding are ONNX functions; the kernels here replace the expansion. float16
and bfloat16 are computed in float32 (float64 stays float64). Attention rounds its intermediate
results to the input type at the same points as its function body and the ONNX reference
(scaled Q/K, QK^T, softcap, bias, softmax steps, probabilities, output), so that reduced
precision inputs give the results the spec's reference gives; RotaryEmbedding rounds once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ort.ep import KernelTable, NodeInfo

from ..intra_op import resolve_threads
from ..threaded_gemm import matmul as threaded_matmul
from .float_work import is_low_precision, precision_attr, rounding, widest, work_dtype
from .kernel_args import normalize_axis

kernels = KernelTable()

_QK_MODES = (0, 1, 2, 3)  # raw QK, after softcap, after bias, after softmax
_NEG_INF = -np.inf


# --------------------------------------------------------------------------------------------
# Attention
# --------------------------------------------------------------------------------------------


def _split_heads(node: NodeInfo, x: Any, num_heads: int, what: str) -> Any:
    """Return a 3-D ``(B, S, H*D)`` tensor as 4-D ``(B, H, S, D)``."""
    batch, seq, hidden = x.shape
    if hidden % num_heads:
        raise ValueError(
            f"{node.describe()}: {what} hidden size {hidden} is not a multiple of the "
            f"{num_heads} heads"
        )
    return x.reshape(batch, seq, num_heads, hidden // num_heads).transpose(0, 2, 1, 3)


def _softmax_rows(xp: Any, scores: Any, dtype: np.dtype) -> Any:
    """Return the softmax over the last axis in ``dtype`` precision; an all ``-inf`` row gives
    zeros. Each step is rounded to ``dtype`` as the ONNX reference computes it."""
    if scores.shape[-1] == 0:
        return scores
    rnd = rounding(dtype)
    row_max = scores.max(axis=-1, keepdims=True)
    row_max = xp.where(xp.isneginf(row_max), 0, row_max)
    exps = rnd(xp.exp(rnd(scores - row_max)))
    if is_low_precision(dtype):
        total = exps.astype(dtype).sum(axis=-1, keepdims=True).astype(exps.dtype)
    else:
        total = exps.sum(axis=-1, keepdims=True)
    total = xp.where(total == 0, 1, total)
    return rnd(exps / total)


class _AttentionBias:
    """The additive attention bias of one node: attn_mask, causal frontier, sliding window and
    the nonpad_kv_seqlen padding, composed as the spec composes them."""

    def __init__(self, node: NodeInfo) -> None:
        self.node = node
        self.xp = node.xp
        self.causal = bool(node.attrs.get("is_causal", 0))
        self.left = int(node.attrs.get("left_window_size", -1))
        self.right = int(node.attrs.get("right_window_size", -1))
        for name, value in (("left_window_size", self.left), ("right_window_size", self.right)):
            if value < -1:
                raise ValueError(f"{node.describe()}: {name} must be -1 or >= 0, got {value}")

    @property
    def windowed(self) -> bool:
        """Return whether a sliding window restricts the visible keys."""
        return self.left >= 0 or self.right >= 0

    def _mask_bias(self, mask: Any, total: int, dtype: np.dtype, work: np.dtype) -> Any:
        """Return ``attn_mask`` as a 4-D additive bias over ``total`` keys (short masks are
        padded with disallowed keys)."""
        xp = self.xp
        if mask.ndim > 4:
            raise ValueError(f"{self.node.describe()}: attn_mask has rank {mask.ndim} > 4")
        if mask.ndim == 0:
            mask = mask.reshape(1)
        width = mask.shape[-1]
        if width > total:
            raise ValueError(
                f"{self.node.describe()}: attn_mask covers {width} keys, more than the "
                f"{total} keys of past_key and K"
            )
        if mask.dtype == np.bool_:
            bias = xp.where(mask, work.type(0), work.type(_NEG_INF))
        else:
            bias = mask.astype(dtype, copy=False).astype(work, copy=False)
        if width < total:
            pad = [(0, 0)] * (bias.ndim - 1) + [(0, total - width)]
            bias = xp.pad(bias, pad, constant_values=_NEG_INF)
        return bias.reshape((1,) * (4 - bias.ndim) + bias.shape)

    def _allowed(self, q_len: int, total: int, offset: Any, nonpad: Any) -> Any:
        """Return the boolean keys-allowed array of the causal, window and padding limits
        (``(Sq, Skv)`` or ``(B, 1, Sq, Skv)``), or None when nothing limits the keys."""
        xp = self.xp
        allowed = None
        if self.causal or self.windowed:
            keys = xp.arange(total).reshape(1, total)
            position = xp.arange(q_len).reshape(q_len, 1) + offset
            if self.causal:
                allowed = keys <= position
            if self.left >= 0:
                near = position - keys <= self.left
                allowed = near if allowed is None else allowed & near
            if self.right >= 0:
                near = keys - position <= self.right
                allowed = near if allowed is None else allowed & near
        if nonpad is not None:
            valid = xp.arange(total).reshape(1, 1, 1, total) < nonpad.reshape(-1, 1, 1, 1)
            allowed = valid if allowed is None else allowed & valid
        return allowed

    def build(self, mask: Any, q_len: int, total: int, past_len: int, nonpad: Any,
              dtype: np.dtype, work: np.dtype) -> Any:
        """Return the 4-D additive bias in ``work`` precision, or None when there is none."""
        xp = self.xp
        offset: Any = past_len
        if nonpad is not None:
            # external cache: the queries are the last q_len of the nonpad valid keys
            offset = nonpad.astype(np.int64).reshape(-1, 1, 1, 1) - q_len
        allowed = self._allowed(q_len, total, offset, nonpad)
        bias = None if mask is None else self._mask_bias(mask, total, dtype, work)
        if allowed is None:
            return bias
        allowed = allowed.reshape((1,) * (4 - allowed.ndim) + allowed.shape)
        if bias is None:
            return xp.where(allowed, work.type(0), work.type(_NEG_INF))
        return xp.where(allowed, bias, work.type(_NEG_INF))


@kernels.register("Attention", since=23)
def attention(node: NodeInfo) -> Callable[..., tuple]:
    """Attention 23+: scaled dot-product attention (MHA/GQA/MQA) with mask, KV cache, softcap.

    3-D inputs are split into ``q_num_heads``/``kv_num_heads`` heads; 4-D inputs carry them.
    The bias composes attn_mask (bool: allowed keys, float: added), the offset-aware causal
    frontier, the sliding window (25+) and the nonpad_kv_seqlen padding (24+); a query row
    with no allowed key gives zeros. Output 4 is QK^T (mode 0), after softcap (1), after the
    bias (2) or the probabilities (3).
    """
    xp = node.xp
    threads = resolve_threads(node.intra_op_threads)
    where = node.describe()
    attrs = node.attrs
    q_heads_attr = attrs.get("q_num_heads")
    kv_heads_attr = attrs.get("kv_num_heads")
    scale_attr = attrs.get("scale")
    softcap = float(attrs.get("softcap", 0.0))
    mode = int(attrs.get("qk_matmul_output_mode", 0))
    if mode not in _QK_MODES:
        raise ValueError(f"{where}: qk_matmul_output_mode must be one of {_QK_MODES}, got {mode}")
    softmax_dtype = precision_attr(node, "softmax_precision", None)
    if node.has_input(4) != node.has_input(5):
        raise ValueError(f"{where}: past_key and past_value must be given together")
    if node.has_input(6) and node.has_input(4):
        raise ValueError(f"{where}: nonpad_kv_seqlen cannot be combined with past_key/past_value")
    reject_4d_heads = node.since_version >= 25 and (
        q_heads_attr is not None or kv_heads_attr is not None
    )
    bias_builder = _AttentionBias(node)
    want_qk = node.has_output(3)
    want_present = node.has_output(1) or node.has_output(2)

    def to_4d(q: Any, k: Any, v: Any) -> tuple[Any, Any, Any]:
        if not q.ndim == k.ndim == v.ndim or q.ndim not in (3, 4):
            raise ValueError(
                f"{where}: Q, K and V must all be 3-D or all 4-D, got ranks "
                f"{q.ndim}, {k.ndim}, {v.ndim}"
            )
        if q.ndim == 4:
            if reject_4d_heads:
                raise ValueError(
                    f"{where}: q_num_heads/kv_num_heads must not be set for 4-D inputs"
                )
            return q, k, v
        if q_heads_attr is None or kv_heads_attr is None:
            raise ValueError(
                f"{where}: 3-D inputs need the q_num_heads and kv_num_heads attributes"
            )
        q_heads, kv_heads = int(q_heads_attr), int(kv_heads_attr)
        return (
            _split_heads(node, q, q_heads, "Q"),
            _split_heads(node, k, kv_heads, "K"),
            _split_heads(node, v, kv_heads, "V"),
        )

    def scale_factor(head_size: int, dtype: np.dtype) -> float:
        """sqrt(scale), rounded to the input type, applied to both Q and K."""
        scale = 1.0 / math.sqrt(head_size) if scale_attr is None else float(scale_attr)
        return float(np.asarray(math.sqrt(scale)).astype(dtype))

    def compute(q: Any, k: Any, v: Any, attn_mask: Any = None, past_key: Any = None,
                past_value: Any = None, nonpad_kv_seqlen: Any = None) -> tuple:
        three_d = q.ndim == 3
        q4, k4, v4 = to_4d(q, k, v)
        if past_key is not None:
            k4 = xp.concatenate([past_key, k4.astype(past_key.dtype, copy=False)], axis=2)
            v4 = xp.concatenate([past_value, v4.astype(past_value.dtype, copy=False)], axis=2)
        batch, q_heads, q_len, head_size = q4.shape
        kv_heads, total, v_head_size = k4.shape[1], k4.shape[2], v4.shape[3]
        if q_heads % kv_heads or v4.shape[1] != kv_heads or k4.shape[3] != head_size:
            raise ValueError(
                f"{where}: incompatible heads: Q {q4.shape}, K {k4.shape}, V {v4.shape} "
                "(q_num_heads must be a multiple of kv_num_heads)"
            )
        group = q_heads // kv_heads
        dtype = q4.dtype
        work = work_dtype(dtype)
        rnd = rounding(dtype)

        factor = work.type(scale_factor(head_size, dtype))
        q_scaled = rnd(q4.astype(work) * factor)
        k_scaled = rnd(k4.astype(work) * factor)
        scores = threaded_matmul(
            xp, q_scaled.reshape(batch, kv_heads, group, q_len, head_size),
            xp.swapaxes(k_scaled, -1, -2)[:, :, None], threads,
        ).reshape(batch, q_heads, q_len, total)
        scores = rnd(scores)
        raw_scores = scores
        if softcap > 0:
            cap = work.type(np.asarray(softcap).astype(dtype))
            scores = rnd(rnd(xp.tanh(rnd(scores / cap))) * cap)
        capped_scores = scores
        past_len = 0 if past_key is None else past_key.shape[2]
        bias = bias_builder.build(attn_mask, q_len, total, past_len, nonpad_kv_seqlen,
                                  dtype, work)
        if bias is not None:
            scores = rnd(scores + bias)

        sm_dtype = dtype if softmax_dtype is None else softmax_dtype
        sm_scores = rounding(sm_dtype)(scores.astype(work_dtype(sm_dtype)))
        probs = _softmax_rows(xp, sm_scores, sm_dtype)
        if bias is not None:
            fully_masked = xp.isneginf(bias.max(axis=-1, keepdims=True)) if total else False
            probs = xp.where(fully_masked, probs.dtype.type(0), probs)
        probs = rnd(probs.astype(work))

        pv_work = widest(dtype, v4.dtype)
        y = threaded_matmul(
            xp, probs.astype(pv_work, copy=False).reshape(batch, kv_heads, group, q_len, total),
            v4.astype(pv_work, copy=False)[:, :, None], threads,
        ).reshape(batch, q_heads, q_len, v_head_size).astype(dtype)
        if three_d:
            y = y.transpose(0, 2, 1, 3).reshape(batch, q_len, q_heads * v_head_size)

        present_key, present_value = k4, v4
        if want_present and past_key is None:  # never hand out a view of the caller's K/V
            present_key, present_value = xp.array(k4, copy=True), xp.array(v4, copy=True)
        qk = None
        if want_qk:
            qk = (raw_scores, capped_scores, scores, probs)[mode]
            qk = xp.broadcast_to(qk, (batch, q_heads, q_len, total)).astype(dtype)
        return (y, present_key, present_value, qk)

    return compute


# --------------------------------------------------------------------------------------------
# RotaryEmbedding
# --------------------------------------------------------------------------------------------


@kernels.register("RotaryEmbedding", since=23)
def rotary_embedding(node: NodeInfo) -> Callable[..., tuple]:
    """RotaryEmbedding 23+: rotate (the first rotary_embedding_dim of) each head by the cached
    cos/sin of its position, as halves or interleaved pairs."""
    xp = node.xp
    where = node.describe()
    interleaved = bool(node.attrs.get("interleaved", 0))
    rotary_dim_attr = int(node.attrs.get("rotary_embedding_dim", 0))
    num_heads = int(node.attrs.get("num_heads", 0))
    if rotary_dim_attr < 0 or num_heads < 0:
        raise ValueError(f"{where}: rotary_embedding_dim and num_heads must be >= 0")

    def compute(x: Any, cos_cache: Any, sin_cache: Any, position_ids: Any = None) -> tuple:
        if x.ndim == 4:
            heads = x.transpose(0, 2, 1, 3)  # (B, S, H, D)
        elif x.ndim == 3:
            if num_heads == 0:
                raise ValueError(f"{where}: a 3-D input needs the num_heads attribute")
            if x.shape[2] % num_heads:
                raise ValueError(f"{where}: hidden size {x.shape[2]} % num_heads {num_heads} != 0")
            heads = x.reshape(x.shape[0], x.shape[1], num_heads, -1)
        else:
            raise ValueError(f"{where}: input must be 3-D or 4-D, got shape {x.shape}")
        head_size = heads.shape[3]
        rotary_dim = rotary_dim_attr or head_size
        if rotary_dim > head_size or rotary_dim % 2:
            raise ValueError(
                f"{where}: rotary_embedding_dim {rotary_dim} must be even and <= head size "
                f"{head_size}"
            )
        half = rotary_dim // 2
        if position_ids is not None:
            cos_cache, sin_cache = cos_cache[position_ids], sin_cache[position_ids]
        if cos_cache.shape[-1] < half or sin_cache.shape[-1] < half:
            raise ValueError(f"{where}: cos/sin caches have fewer than {half} entries per row")
        work = work_dtype(x.dtype)
        # (B, S, half) -> (B, S, 1, half); a 2-D (S, half) cache is shared by the batch
        cos = cos_cache[..., :half].astype(work).reshape(-1, heads.shape[1], 1, half)
        sin = sin_cache[..., :half].astype(work).reshape(-1, heads.shape[1], 1, half)
        out = heads.astype(work)  # a fresh array (copy): rotate it in place
        first = slice(0, rotary_dim, 2) if interleaved else slice(0, half)
        second = slice(1, rotary_dim, 2) if interleaved else slice(half, rotary_dim)
        x1, x2 = out[..., first].copy(), out[..., second].copy()
        out[..., first] = cos * x1 - sin * x2
        out[..., second] = sin * x1 + cos * x2
        out = out.astype(x.dtype)
        y = out.transpose(0, 2, 1, 3) if x.ndim == 4 else out.reshape(x.shape)
        return (xp.ascontiguousarray(y),)

    return compute


# --------------------------------------------------------------------------------------------
# TensorScatter
# --------------------------------------------------------------------------------------------

_SCATTER_MODES = ("linear", "circular")


@kernels.register("TensorScatter", since=24)
def tensor_scatter(node: NodeInfo) -> Callable[..., tuple]:
    """TensorScatter 24+: write ``update`` into a copy of the cache along ``axis``, from each
    batch's write index (modulo the cache length in circular mode)."""
    xp = node.xp
    where = node.describe()
    axis_attr = int(node.attrs.get("axis", -2))
    mode = node.attrs.get("mode", "linear")
    if mode not in _SCATTER_MODES:
        raise ValueError(f"{where}: mode must be one of {_SCATTER_MODES}, got {mode!r}")

    def compute(past: Any, update: Any, write_indices: Any = None) -> tuple:
        axis = normalize_axis(node, axis_attr, past.ndim)
        if axis == 0:
            raise ValueError(f"{where}: axis cannot be the batch axis 0")
        if update.ndim != past.ndim or any(
            u != p for i, (u, p) in enumerate(zip(update.shape, past.shape)) if i != axis
        ) or update.shape[axis] > past.shape[axis]:
            raise ValueError(
                f"{where}: update shape {update.shape} does not fit cache shape {past.shape} "
                f"along axis {axis}"
            )
        present = past.copy()
        length, capacity = update.shape[axis], past.shape[axis]
        if write_indices is None:
            index = [slice(None)] * past.ndim
            index[axis] = slice(0, length)
            present[tuple(index)] = update
            return (present,)
        positions = write_indices.astype(np.int64).reshape(-1, 1) + xp.arange(length)
        if mode == "circular":
            positions %= capacity
        elif positions.size and (int(positions.min()) < 0 or int(positions.max()) >= capacity):
            raise ValueError(
                f"{where}: write_indices + update length exceed the cache length {capacity}"
            )
        rows = xp.arange(past.shape[0]).reshape(-1, 1)
        xp.moveaxis(present, axis, 1)[rows, positions] = xp.moveaxis(update, axis, 1)
        return (present,)

    return compute
