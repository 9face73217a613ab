"""CPU kernels: the rarer onnxruntime CPU contrib ops (part of :mod:`.contrib_extra`):
ScaledSiLU, UnfoldTensor, NGramRepeatBlock, BifurcationDetector (speculative decoding),
DynamicTimeWarping (Whisper word timestamps), MatMulFpQ4 (MLAS int4-packed weights) and
QEmbedLayerNormalization (quantized BERT embeddings). Semantics and rounding steps follow
onnxruntime's CPU kernels.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from onnx import TensorProto
from ort.ep import DeclaredSchema, KernelTable, NodeInfo

from .contrib_schema import (MS, REQUIRED, constant_ints, declare, dims, elem_type,
                             like_input, tensor_type, typed, typed_with_values)
from .kernel_args import normalize_axis

kernels = KernelTable()

_F32 = np.float32
_HALVES = ("float", "float16", "bfloat16")

# --------------------------------------------------------------------------------------------
# ScaledSiLU
# --------------------------------------------------------------------------------------------


def _sigmoid32(xp: Any, z: Any) -> Any:
    """The float32 sigmoid as onnxruntime takes it: ``1 / (1 + e^-z)`` for z >= 0, else
    ``e^z / (1 + e^z)``."""
    e = xp.exp(-xp.abs(z))
    return xp.where(z >= 0, _F32(1) / (_F32(1) + e), e / (_F32(1) + e))


@kernels.register("ScaledSiLU", since=1, domain=MS, input_types={0: _HALVES, 1: _HALVES})
def scaled_silu(node: NodeInfo) -> Callable[..., tuple]:
    """ScaledSiLU 1: ``z * sigmoid(z)`` with ``z = scale * x``; the scale is the optional
    scalar input, else ``alpha``. float16/bfloat16 round z, the sigmoid and the result to
    the input type, as onnxruntime does."""
    xp = node.xp
    where = node.describe()
    alpha = _F32(node.attrs.get("alpha", 1.0))

    def compute(x: Any, scale: Any = None) -> tuple:
        if scale is not None and np.ndim(scale) != 0:
            raise ValueError(f"{where}: scale must be a scalar, got shape "
                             f"{np.shape(scale)}")
        factor = alpha if scale is None else _F32(np.asarray(scale).astype(_F32))
        with np.errstate(over="ignore"):
            z = (x.astype(_F32) * factor).astype(x.dtype).astype(_F32)
            s = _sigmoid32(xp, z).astype(x.dtype).astype(_F32)
        return ((z * s).astype(x.dtype),)

    return compute


# --------------------------------------------------------------------------------------------
# UnfoldTensor
# --------------------------------------------------------------------------------------------


@kernels.register("UnfoldTensor", since=1, domain=MS,
                  input_types={0: ("float", "double", "int32", "int64")})
def unfold_tensor(node: NodeInfo) -> Callable[..., tuple]:
    """UnfoldTensor 1 (torch's ``Tensor.unfold``): the windows of ``size`` elements every
    ``step`` along ``dim``; that dim becomes the window count and a last dim of ``size``
    holds each window."""
    where = node.describe()
    size = int(node.attrs["size"])
    step = int(node.attrs.get("step", 1))
    dim = int(node.attrs.get("dim", -1))
    if size <= 0 or step <= 0:
        raise ValueError(f"{where}: size and step must be positive, got {size} and {step}")

    def compute(x: Any) -> tuple:
        axis = normalize_axis(where, dim, x.ndim, "dim")
        if x.shape[axis] < size:
            raise ValueError(f"{where}: dim {axis} has size {x.shape[axis]}, less than the "
                             f"unfold size {size}")
        windows = np.lib.stride_tricks.sliding_window_view(x, size, axis=axis)
        picked = windows[(slice(None),) * axis + (slice(None, None, step),)]
        return (np.ascontiguousarray(picked),)

    return compute


# --------------------------------------------------------------------------------------------
# NGramRepeatBlock, BifurcationDetector
# --------------------------------------------------------------------------------------------


@kernels.register("NGramRepeatBlock", since=1, domain=MS,
                  input_types={0: ("int64",), 1: ("float",)})
def ngram_repeat_block(node: NodeInfo) -> Callable[..., tuple]:
    """NGramRepeatBlock 1: scores (batch, vocab) with -inf at every token that would repeat
    an n-gram of input_ids (batch, length): the token after each earlier occurrence of the
    last ``ngram_size - 1`` ids."""
    xp = node.xp
    where = node.describe()
    n = int(node.attrs["ngram_size"])
    if n <= 0:
        raise ValueError(f"{where}: ngram_size must be positive, got {n}")

    def compute(ids: Any, scores: Any) -> tuple:
        if ids.ndim != 2 or scores.ndim != 2 or scores.shape[0] != ids.shape[0]:
            raise ValueError(f"{where}: input_ids (batch, length) and scores (batch, vocab) "
                             f"must be 2-D with one batch, got {tuple(ids.shape)} and "
                             f"{tuple(scores.shape)}")
        out = scores.copy()
        length = ids.shape[1]
        if length < n:  # no n-gram fits (onnxruntime: nothing when length + 1 < n)
            return (out,)
        grams = np.lib.stride_tricks.sliding_window_view(ids, n, axis=1)  # (B, count, n)
        tail = ids[:, length + 1 - n:]  # the last n - 1 ids
        banned = (grams[..., :-1] == tail[:, None, :]).all(axis=-1)
        rows, cols = xp.nonzero(banned)
        tokens = grams[rows, cols, -1]
        if ((tokens < 0) | (tokens >= scores.shape[1])).any():
            raise ValueError(f"{where}: token ids must lie in [0, {scores.shape[1]})")
        out[rows, tokens] = -np.inf
        return (out,)

    return compute


def _find(haystack: np.ndarray, needle: np.ndarray, start: int = 0) -> int:
    """The first index >= ``start`` where ``needle`` occurs in ``haystack`` (-1: none)."""
    count = haystack.size - start - needle.size + 1
    if count <= 0:
        return -1 if needle.size else start
    windows = np.lib.stride_tricks.sliding_window_view(haystack[start:], needle.size)
    hits = np.flatnonzero((windows == needle).all(axis=1))
    return start + int(hits[0]) if hits.size else -1


@kernels.register("BifurcationDetector", since=1, domain=MS, host_inputs=(0, 1, 2, 3),
                  input_types={i: ("int64",) for i in range(4)})
def bifurcation_detector(node: NodeInfo) -> Callable[..., tuple]:
    """BifurcationDetector 1 (speculative decoding): appends to cur_tokens the predicted
    tokens up to and including the first one that departs from src_tokens (read from
    prev_suffix_match_idx), then finds where the output's last n-gram (n from
    ``min_ngram_size`` to ``max_ngram_size``) occurs once in src_tokens: the index after it,
    or -1, by onnxruntime's scan."""
    where = node.describe()
    low = int(node.attrs.get("min_ngram_size", 1))
    high = int(node.attrs.get("max_ngram_size", 3))
    if low <= 0 or high < low:
        raise ValueError(f"{where}: need 0 < min_ngram_size <= max_ngram_size, got {low} and "
                         f"{high}")

    def compute(src: Any, cur: Any, prev: Any, pred: Any = None) -> tuple:
        src, cur = np.asarray(src).reshape(-1), np.asarray(cur).reshape(-1)
        tokens = cur.copy()
        if pred is not None:
            pred = np.asarray(pred).reshape(-1)
            start = int(np.asarray(prev).reshape(-1)[0])
            if not 0 <= start <= src.size or pred.size != src.size + 1 - start:
                raise ValueError(f"{where}: need 0 <= prev_suffix_match_idx ({start}) <= "
                                 f"len(src_tokens) ({src.size}) and len(pred_tokens) = "
                                 f"{src.size + 1 - start}, got {pred.size}")
            differs = np.flatnonzero(pred[:src.size - start] != src[start:])
            split = int(differs[0]) if differs.size else src.size - start
            tokens = np.concatenate([cur, pred[:split + 1]])
        suffix = -1
        for size in range(low, high + 1):
            if size > tokens.size:
                break
            gram = tokens[tokens.size - size:]
            found = _find(src, gram)
            if found < 0:
                break
            suffix = found + size
            if suffix >= src.size:
                break
            if _find(src, gram, suffix - size + 1) >= 0:  # more than one occurrence
                suffix = -1
        return (tokens, np.full(np.shape(prev), suffix, dtype=np.int64))

    return compute


# --------------------------------------------------------------------------------------------
# DynamicTimeWarping
# --------------------------------------------------------------------------------------------


@kernels.register("DynamicTimeWarping", since=1, domain=MS, input_types={0: ("float",)})
def dynamic_time_warping(node: NodeInfo) -> Callable[..., tuple]:
    """DynamicTimeWarping 1: the cheapest monotonic path through a cost matrix (rows, cols)
    (or (1, rows, cols)) from (0, 0) to the last cell, as int32 (2, path length): row and
    column indices. Costs accumulate in float32; ties prefer a left step, then an upward
    one, as onnxruntime's. The table fills by anti-diagonals, each one vectorized."""
    where = node.describe()

    def compute(x: Any) -> tuple:
        if not (x.ndim == 2 or (x.ndim == 3 and x.shape[0] == 1)):
            raise ValueError(f"{where}: input must be (rows, cols) or (1, rows, cols), got "
                             f"{tuple(x.shape)}")
        cost_in = np.asarray(x, dtype=_F32).reshape(x.shape[-2:])
        rows, cols = cost_in.shape
        cost = np.full((rows + 1, cols + 1), np.inf, dtype=_F32)
        cost[0, 0] = 0
        trace = np.full((rows + 1, cols + 1), -1, dtype=np.int8)
        for d in range(2, rows + cols + 1):  # cells with i + j == d
            i = np.arange(max(1, d - cols), min(rows, d - 1) + 1)
            j = d - i
            c0, c1, c2 = cost[i - 1, j - 1], cost[i - 1, j], cost[i, j - 1]
            step = np.where((c0 < c1) & (c0 < c2), 0, np.where((c1 < c0) & (c1 < c2), 1, 2))
            best = np.choose(step, (c0, c1, c2))
            cost[i, j] = best + cost_in[i - 1, j - 1]
            trace[i, j] = step
        path = []
        i, j = rows, cols
        while i > 0 and j > 0:  # back-trace along the path (its length, not the table's)
            path.append((i - 1, j - 1))
            t = trace[i, j]
            i, j = (i - 1, j - 1) if t == 0 else (i - 1, j) if t == 1 else (i, j - 1)
        out = np.asarray(path[::-1], dtype=np.int32).reshape(-1, 2).T
        return (node.xp.asarray(np.ascontiguousarray(out)),)

    return compute


# --------------------------------------------------------------------------------------------
# QEmbedLayerNormalization
# --------------------------------------------------------------------------------------------


def _dequantized(value: Any, scale: Any, zero_point: Any) -> Any:
    """``(value - zero_point) * scale`` in float32 (per-tensor scale and zero point)."""
    centered = value.astype(np.int32) - np.asarray(zero_point).reshape(-1)[0].astype(np.int32)
    return centered.astype(_F32) * _F32(np.asarray(scale).reshape(-1)[0])


@kernels.register("QEmbedLayerNormalization", since=1, domain=MS,
                  input_types={0: ("int32",), 2: ("int8", "uint8"), 8: ("float",)})
def qembed_layer_normalization(node: NodeInfo) -> Callable[..., tuple]:
    """QEmbedLayerNormalization 1: EmbedLayerNormalization over int8/uint8 quantized
    embedding tables, gamma and beta (per-tensor scales and zero points): the word, position
    (0..S-1) and optional segment embeddings summed, layer-normalized with ``epsilon``; and
    the mask index, each batch row's count of mask entries equal to 1 (0s without mask)."""
    xp = node.xp
    where = node.describe()
    epsilon = _F32(node.attrs.get("epsilon", 1e-12))

    def compute(ids: Any, segment_ids: Any, word: Any, position: Any, segment: Any,
                gamma: Any, beta: Any, mask: Any, word_scale: Any, position_scale: Any,
                segment_scale: Any, gamma_scale: Any, beta_scale: Any, word_zero: Any,
                position_zero: Any, segment_zero: Any, gamma_zero: Any,
                beta_zero: Any) -> tuple:
        if ids.ndim != 2 or word.ndim != 2 or position.ndim != 2:
            raise ValueError(f"{where}: input_ids must be (batch, sequence) and the embedding "
                             "tables 2-D")
        batch, seq = ids.shape
        if seq > position.shape[0] or (ids < 0).any() or (ids >= word.shape[0]).any():
            raise ValueError(f"{where}: input index out of range")
        x = _dequantized(word, word_scale, word_zero)[ids]
        x += _dequantized(position[:seq], position_scale, position_zero)[None]
        if segment_ids is not None:
            if segment is None or (segment_ids < 0).any() or \
                    (segment_ids >= segment.shape[0]).any():
                raise ValueError(f"{where}: segment index out of range")
            x += _dequantized(segment, segment_scale, segment_zero)[segment_ids]
        x -= x.mean(axis=-1, keepdims=True, dtype=_F32)
        deviation = np.sqrt(np.mean(x * x, axis=-1, keepdims=True, dtype=_F32) + epsilon)
        y = x / deviation * _dequantized(gamma, gamma_scale, gamma_zero) \
            + _dequantized(beta, beta_scale, beta_zero)
        if mask is None:
            index = np.zeros(batch, dtype=np.int32)
        else:
            index = (np.asarray(mask).reshape(batch, seq) == 1).sum(axis=1).astype(np.int32)
        return (xp.asarray(y.astype(_F32, copy=False)), xp.asarray(index))

    return compute


# --------------------------------------------------------------------------------------------
# MatMulFpQ4
# --------------------------------------------------------------------------------------------

#: Values per int4 block of MLAS's packed B, and the bytes before each block's data (a float
#: scale, then for blk_quant_type 1 a uint8 zero point).
_Q4_BLOCK = 32
_Q4_HEADER = {0: 4, 1: 5}


def unpack_mlas_q4(blob: np.ndarray, k: int, n: int, quant_type: int) -> np.ndarray:
    """B (K, N) float32 from MLAS's int4 packing (``MlasQ4GemmPackB``): column by column,
    each block of 32 values along K a float32 scale, for type 1 a uint8 zero point (else 8),
    then 16 bytes whose low nibbles hold values 0-15 and high nibbles values 16-31; a value
    is ``(nibble - zero point) * scale``."""
    header = _Q4_HEADER[quant_type]
    blocks = -(-k // _Q4_BLOCK)
    rows = blob.reshape(n, blocks, header + _Q4_BLOCK // 2)
    scale = np.ascontiguousarray(rows[..., :4]).view(np.float32)  # (N, blocks, 1)
    zero = rows[..., 4:5].astype(np.float32) if quant_type == 1 else np.float32(8)
    data = rows[..., header:]
    nibbles = np.concatenate([data & 0x0F, data >> 4], axis=-1).astype(np.float32)
    values = (nibbles - zero) * scale  # (N, blocks, 32)
    return np.ascontiguousarray(values.reshape(n, blocks * _Q4_BLOCK)[:, :k].T)


@kernels.register("MatMulFpQ4", since=1, domain=MS, host_inputs=(1, 2),
                  input_types={0: ("float",), 1: ("uint8",), 2: ("int64",)})
def matmul_fpq4(node: NodeInfo) -> Callable[..., tuple]:
    """MatMulFpQ4 1: float A @ B where B (K, N), shape given by the B_shape input, is an
    MLAS int4-packed 1-D blob (:func:`unpack_mlas_q4`): ``blk_quant_type`` 0 symmetric
    (zero point 8), any other value with a zero point per block. B is unpacked once when it
    is constant."""
    xp = node.xp
    where = node.describe()
    quant_type = 0 if int(node.attrs.get("blk_quant_type", 1)) == 0 else 1
    unpacked: dict[tuple[int, int], np.ndarray] = {}
    constant = node.const_inputs[1] is not None and node.const_inputs[2] is not None

    def compute(a: Any, blob: Any, b_shape: Any) -> tuple:
        shape = [int(v) for v in np.asarray(b_shape).reshape(-1)]
        if len(shape) != 2 or min(shape) < 0:
            raise ValueError(f"{where}: B_shape must be [K, N], got {shape}")
        k, n = shape
        size = n * -(-k // _Q4_BLOCK) * (_Q4_HEADER[quant_type] + _Q4_BLOCK // 2)
        if np.ndim(blob) != 1 or np.size(blob) != size:
            raise ValueError(f"{where}: B must be a 1-D blob of {size} bytes for B_shape "
                             f"{shape}, got shape {np.shape(blob)}")
        if a.ndim < 1 or a.shape[-1] != k:
            raise ValueError(f"{where}: A's last dim must be K={k}, got {tuple(a.shape)}")
        b = unpacked.get((k, n)) if constant else None
        if b is None:
            b = unpack_mlas_q4(np.asarray(blob), k, n, quant_type)
            if constant:
                unpacked[(k, n)] = b
        return (xp.matmul(a, xp.asarray(b)),)

    return compute


# --------------------------------------------------------------------------------------------
# schemas
# --------------------------------------------------------------------------------------------


def _unfold_output(types, attrs):
    """UnfoldTensor's output: ``dim`` becomes the window count, a last dim of ``size``."""
    shape = dims(types[0])
    if shape is None:
        return tensor_type(elem_type(types[0]))
    size, step = int(attrs["size"]), int(attrs.get("step", 1))
    axis = normalize_axis("UnfoldTensor", int(attrs.get("dim", -1)), len(shape), "dim")
    extent = shape[axis]
    shape[axis] = (extent - size) // step + 1 if isinstance(extent, int) else None
    return tensor_type(elem_type(types[0]), shape + [size])


def _qembed_outputs(types, attrs):
    """QEmbedLayerNormalization's outputs: float (batch, sequence, hidden), int32 (batch)."""
    ids, word = dims(types[0]), dims(types[2])
    hidden = word[1] if word is not None and len(word) == 2 else None
    if ids is None or len(ids) != 2:
        return [tensor_type(TensorProto.FLOAT), tensor_type(TensorProto.INT32)]
    return [tensor_type(TensorProto.FLOAT, ids + [hidden]),
            tensor_type(TensorProto.INT32, ids[:1])]


def _fpq4_output(types, attrs, values):
    """MatMulFpQ4's output: float, A's shape with its last dim N from the constant B_shape
    [K, N] (shape unknown otherwise)."""
    shape, b_shape = dims(types[0]), constant_ints(values, 2)
    if shape is None or not shape or b_shape is None or len(b_shape) != 2:
        return tensor_type(TensorProto.FLOAT)
    if len(shape) == 1:
        return tensor_type(TensorProto.FLOAT, [b_shape[1]])
    return tensor_type(TensorProto.FLOAT, shape[:-1] + [b_shape[1]])


#: The contrib ops of this module, declared to the core.
SCHEMAS: list[DeclaredSchema] = [
    declare("ScaledSiLU", inputs=(1, 2), attributes={"alpha": 1.0}, infer=like_input(0)),
    declare("UnfoldTensor", inputs=1, attributes={"dim": -1, "size": REQUIRED, "step": 1},
            infer=typed(_unfold_output)),
    declare("NGramRepeatBlock", inputs=2, attributes={"ngram_size": REQUIRED},
            infer=like_input(1)),
    declare("BifurcationDetector", inputs=(3, 4), outputs=2,
            attributes={"min_ngram_size": 1, "max_ngram_size": 3},
            infer=typed(lambda t, a: tensor_type(TensorProto.INT64),
                        lambda t, a: t[2])),
    declare("DynamicTimeWarping", inputs=1,
            infer=typed(lambda t, a: tensor_type(TensorProto.INT32, [2, None]))),
    declare("MatMulFpQ4", inputs=3, attributes={"blk_quant_type": 1},
            infer=typed_with_values(_fpq4_output), uses_values=True),
    declare("QEmbedLayerNormalization", inputs=18, outputs=2, attributes={"epsilon": 1e-12},
            infer=_qembed_outputs),
]
