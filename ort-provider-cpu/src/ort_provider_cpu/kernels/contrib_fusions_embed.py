"""CPU kernels: onnxruntime's EmbedLayerNormalization and the tier-2 fused float ops (BiasAdd,
BiasSplitGelu, BiasSoftmax, GemmFastGelu); part of :mod:`.contrib_fusions`, which extends its
tables with these.

EmbedLayerNormalization follows onnxruntime's CPU kernel: word + position (+ segment)
embeddings, LayerNorm over the hidden axis, and a mask_index that counts each row's mask
entries equal to 1. Reduced precision inputs are computed in float32 and rounded once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from ort.ep import DeclaredSchema, KernelTable, NodeInfo

from .contrib_schema import (MS, REQUIRED, declare, dims, elem_type,
                             like_input, like_onnx, tensor_type, typed)
from .erf_gelu import erf, fast_gelu_inplace, gelu_inplace
from .float_work import work_dtype
from .kernel_args import normalize_axis
from .normalization import normalize_rows
from .softmax import softmax_rows

kernels = KernelTable()

_INT32 = 6  # TensorProto.INT32


# --------------------------------------------------------------------------------------------
# EmbedLayerNormalization
# --------------------------------------------------------------------------------------------


def _lookup(node: NodeInfo, table: Any, ids: Any, label: str) -> Any:
    """``table[ids]`` with onnxruntime's range check (ids in [0, rows))."""
    rows = table.shape[0]
    if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= rows):
        raise ValueError(f"{node.describe()}: {label} out of range: values must be in "
                         f"[0, {rows}) for an embedding of shape {table.shape}")
    return table[ids]


def _check_embed_inputs(node: NodeInfo, ids: Any, segment_ids: Any, word: Any, position: Any,
                        segment: Any, gamma: Any, beta: Any, mask: Any,
                        position_ids: Any) -> None:
    """onnxruntime's shape checks of EmbedLayerNormalization's inputs."""
    where = node.describe()
    if ids.ndim != 2:
        raise ValueError(f"{where}: input_ids must be 2-D (batch, sequence), got {ids.shape}")
    for label, value in (("segment_ids", segment_ids), ("mask", mask)):
        if value is not None and value.shape != ids.shape:
            raise ValueError(f"{where}: {label} of shape {value.shape} must have input_ids' "
                             f"shape {ids.shape}")
    if position_ids is not None and (position_ids.ndim != 2 or position_ids.shape[1]
                                     != ids.shape[1] or position_ids.shape[0]
                                     not in (1, ids.shape[0])):
        raise ValueError(f"{where}: position_ids of shape {position_ids.shape} must be "
                         f"(batch or 1, {ids.shape[1]})")
    if segment_ids is not None and segment is None:
        raise ValueError(f"{where}: segment_ids need a segment_embedding")
    hidden = word.shape[-1] if word.ndim == 2 else None
    for label, value in (("word_embedding", word), ("position_embedding", position),
                         ("segment_embedding", segment)):
        if value is not None and (value.ndim != 2 or value.shape[1] != hidden):
            raise ValueError(f"{where}: {label} of shape {value.shape} must be 2-D with the "
                             "word embedding's hidden size")
    for label, value in (("gamma", gamma), ("beta", beta)):
        if value.shape != (hidden,):
            raise ValueError(f"{where}: {label} of shape {value.shape} must be ({hidden},)")


@kernels.register("EmbedLayerNormalization", since=1, domain=MS)
def embed_layer_normalization(node: NodeInfo) -> Callable[..., tuple]:
    """EmbedLayerNormalization 1+: LayerNorm(word[input_ids] + position[position_ids or
    0..S-1] + segment[segment_ids or 0]) * gamma + beta over the hidden axis. Outputs:
    output (B, S, H), mask_index (B, int32: how many of each row's mask entries are 1; 0
    without a mask) and embedding_sum (the sum before normalization)."""
    xp = node.xp
    epsilon = float(node.attrs.get("epsilon", 1e-12))
    want_mask, want_sum = node.has_output(1), node.has_output(2)

    def compute(ids: Any, segment_ids: Any, word: Any, position: Any, segment: Any = None,
                gamma: Any = None, beta: Any = None, mask: Any = None,
                position_ids: Any = None) -> tuple:
        _check_embed_inputs(node, ids, segment_ids, word, position, segment, gamma, beta,
                            mask, position_ids)
        batch, seq = ids.shape
        hidden = word.shape[1]
        work = work_dtype(word.dtype)
        if position_ids is None:
            position_ids = xp.arange(seq)[None, :]
        total = _lookup(node, word, ids, "input_ids").astype(work, copy=False)  # fresh
        total += _lookup(node, position, position_ids, "position ids").astype(work,
                                                                               copy=False)
        if segment is not None:
            seg_ids = segment_ids if segment_ids is not None else xp.zeros_like(ids)
            total += _lookup(node, segment, seg_ids, "segment_ids").astype(work, copy=False)
        summed = total.astype(word.dtype) if want_sum else None  # a copy: total is normalized
        y = xp.ascontiguousarray(total).reshape(-1, hidden)
        normalize_rows(xp, y, epsilon)
        y *= gamma.astype(work, copy=False)
        y += beta.astype(work, copy=False)
        mask_index = None
        if want_mask:
            mask_index = (xp.count_nonzero(mask == 1, axis=1).astype(np.int32)
                          if mask is not None else xp.zeros(batch, np.int32))
        return (y.reshape(batch, seq, hidden).astype(word.dtype, copy=False), mask_index,
                summed)

    return compute


# --------------------------------------------------------------------------------------------
# tier 2: BiasAdd, BiasSplitGelu, BiasSoftmax, GemmFastGelu (onnxruntime runs these on GPUs
# only; the semantics are its contrib spec's and its CUDA/ROCm kernels')
# --------------------------------------------------------------------------------------------


def _gelu_work(xp: Any, y: Any) -> None:
    """y <- Gelu(y) (exact, erf form) in place for a fresh float32/float64 array."""
    if y.dtype == np.float32:
        gelu_inplace(xp, y)
        return
    y *= 0.5 * (1 + erf(xp, y * y.dtype.type(1 / np.sqrt(2))))


@kernels.register("BiasAdd", since=1, domain=MS)
def bias_add(node: NodeInfo) -> Callable[..., tuple]:
    """BiasAdd 1+: X + bias + skip, X and skip (N, S, C) and bias (C)."""
    xp = node.xp

    def compute(x: Any, bias: Any, skip: Any) -> tuple:
        if x.ndim != 3 or bias.shape != (x.shape[2],) or skip.shape != x.shape:
            raise ValueError(f"{node.describe()}: BiasAdd takes X (N, S, C), bias (C) and skip "
                             f"(N, S, C); got {x.shape}, {bias.shape}, {skip.shape}")
        work = work_dtype(x.dtype)
        y = xp.add(x.astype(work, copy=False), bias.astype(work, copy=False))
        y += skip.astype(work, copy=False)
        return (y.astype(x.dtype, copy=False),)

    return compute


@kernels.register("BiasSplitGelu", since=1, domain=MS)
def bias_split_gelu(node: NodeInfo) -> Callable[..., tuple]:
    """BiasSplitGelu 1+: with t = X + bias split in halves along the last axis,
    Y = t[..., :D/2] * Gelu(t[..., D/2:]); X (N, S, D), bias (D), Y (N, S, D/2)."""
    xp = node.xp

    def compute(x: Any, bias: Any) -> tuple:
        if x.ndim != 3 or bias.shape != (x.shape[2],) or x.shape[2] % 2:
            raise ValueError(f"{node.describe()}: BiasSplitGelu takes X (N, S, D) with D even "
                             f"and bias (D); got {x.shape} and {bias.shape}")
        work = work_dtype(x.dtype)
        half = x.shape[2] // 2
        t = xp.add(x.astype(work, copy=False), bias.astype(work, copy=False))
        right = xp.ascontiguousarray(t[..., half:])
        _gelu_work(xp, right)
        right *= t[..., :half]
        return (right.astype(x.dtype, copy=False),)

    return compute


@kernels.register("BiasSoftmax", since=1, domain=MS)
def bias_softmax(node: NodeInfo) -> Callable[..., tuple]:
    """BiasSoftmax 1+: softmax(data + bias) over the flattened axes [axis, rank) (opset-11
    Softmax rows). The bias holds R such rows, R dividing the data's row count B: with
    ``is_inner_broadcast`` data row i takes bias row i // (B / R) (consecutive groups), else
    bias row i % R (cyclic)."""
    xp = node.xp
    axis = int(node.attrs.get("axis", 1))
    if node.attrs.get("is_inner_broadcast") is None:
        raise ValueError(f"{node.describe()}: attribute is_inner_broadcast is required")
    inner = bool(node.attrs["is_inner_broadcast"])

    def compute(data: Any, bias: Any) -> tuple:
        first = normalize_axis(node, axis, data.ndim)
        width = int(np.prod(data.shape[first:]))
        rows = int(np.prod(data.shape[:first]))
        bias_rows = bias.size // width if width else 0
        if not width or bias.size != bias_rows * width or not bias_rows \
                or rows % bias_rows:
            raise ValueError(f"{node.describe()}: bias of shape {bias.shape} must hold a "
                             f"whole number of rows of {width} that divides data's {rows} "
                             f"rows (data {data.shape}, axis {axis})")
        work = work_dtype(data.dtype)
        b = bias.astype(work, copy=False).reshape(bias_rows, width)
        x = data.astype(work, copy=False)
        if inner:
            y = x.reshape(bias_rows, rows // bias_rows, width) + b[:, None, :]
        else:
            y = x.reshape(rows // bias_rows, bias_rows, width) + b[None, :, :]
        y = y.reshape(rows, width)
        softmax_rows(xp, y, y)
        return (y.reshape(data.shape).astype(data.dtype, copy=False),)

    return compute


@kernels.register("GemmFastGelu", since=1, domain=MS)
def gemm_fast_gelu(node: NodeInfo) -> Callable[..., tuple]:
    """GemmFastGelu 1+: FastGelu(MatMul(X, W) + bias), FastGelu the tanh approximation;
    bias (N) optional."""
    xp = node.xp

    def compute(x: Any, w: Any, bias: Any = None) -> tuple:
        work = work_dtype(x.dtype)
        y = xp.asarray(xp.matmul(x.astype(work, copy=False), w.astype(work, copy=False)))
        if bias is not None:
            y += bias.astype(work, copy=False)
        fast_gelu_inplace(xp, y)
        return (y.astype(x.dtype, copy=False),)

    return compute


# --------------------------------------------------------------------------------------------
# schemas (see .contrib_schema)
# --------------------------------------------------------------------------------------------


def _embed_output(types, attrs):
    """EmbedLayerNormalization's output/embedding_sum: (batch, sequence, hidden) of the
    word embedding's type."""
    ids, word = dims(types[0]), dims(types[2])
    if elem_type(types[2]) is None:
        return None
    hidden = word[1] if word is not None and len(word) == 2 else None
    if ids is None or len(ids) != 2:
        return tensor_type(elem_type(types[2]))
    return tensor_type(elem_type(types[2]), [ids[0], ids[1], hidden])


def _embed_mask_index(types, attrs):
    """EmbedLayerNormalization's mask_index: int32 (batch,); onnxruntime gives it no shape
    with mask_index_type=0."""
    ids = dims(types[0])
    if ids is None or len(ids) != 2 or attrs.get("mask_index_type") == 0:
        return tensor_type(_INT32)
    return tensor_type(_INT32, [ids[0]])


def _split_gelu_output(types, attrs):
    """BiasSplitGelu's Y: (N, S, bias size / 2) of X's type."""
    shape, bias = dims(types[0]), dims(types[1])
    if shape is None or bias is None or len(shape) != 3 or len(bias) != 1:
        return types[0] if shape is None else tensor_type(elem_type(types[0]))
    half = bias[0] // 2 if isinstance(bias[0], int) else None
    return tensor_type(elem_type(types[0]), [shape[0], shape[1], half])


SCHEMAS: list[DeclaredSchema] = [
    declare("EmbedLayerNormalization", inputs=(7, 9), outputs=(1, 3),
            attributes={"epsilon": 1e-12, "mask_index_type": None},
            infer=typed(_embed_output, _embed_mask_index, _embed_output)),
    declare("BiasAdd", inputs=3, infer=like_input(0)),
    declare("BiasSplitGelu", inputs=2, infer=typed(_split_gelu_output)),
    declare("BiasSoftmax", inputs=2, attributes={"axis": 1, "is_inner_broadcast": REQUIRED},
            infer=like_input(0)),
    declare("GemmFastGelu", inputs=(2, 3), infer=like_onnx("MatMul", 13, inputs=2)),
]
