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

from .contrib_schema import MS, declare, dims, elem_type, tensor_type, typed
from .float_work import work_dtype
from .normalization import normalize_rows

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
        total = _lookup(node, word, ids, "input_ids").astype(work, copy=False)
        total = total + _lookup(node, position, position_ids, "position ids").astype(work)
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


SCHEMAS: list[DeclaredSchema] = [
    declare("EmbedLayerNormalization", inputs=(7, 9), outputs=(1, 3),
            attributes={"epsilon": 1e-12, "mask_index_type": None},
            infer=typed(_embed_output, _embed_mask_index, _embed_output)),
]
