"""Level-1 folding of per-channel affine ops into a preceding ``Conv``'s constant weights.

* ``ConvBNFusion``: ``Conv -> BatchNormalization`` (inference mode, constant statistics):
  ``W' = W * s``, ``B' = (B - mean) * s + beta`` with ``s = scale / sqrt(var + epsilon)``.
* ``ConvMulFusion``: ``Conv -> Mul`` by a constant per-channel (or scalar) factor.
* ``ConvAddFusion``: ``Conv -> Add`` of a constant per-channel (or scalar) term into the bias.

The Conv's output must be read by that one node only; new weights get new initializer names
(the old ones go when nothing reads them), the fused Conv keeps the last node's output name.
"""

from __future__ import annotations

import numpy as np
from onnx import ModelProto, NodeProto, TensorProto

from .context import OptimizerContext
from .patterns import GraphView, Rewriter, attr

__all__ = ["fuse_conv_bn", "fuse_conv_mul", "fuse_conv_add"]

_FLOAT_TYPES = (TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16)


def _foldable_conv(view: GraphView, rewriter: Rewriter, value: str):
    """(index, node, W, B or None) of a Conv producing ``value`` (read by one node only) with
    constant float weights and bias, else None."""
    found = view.producer_of(value, "Conv")
    if found is None or view.sole_consumer(value) is None or rewriter.claimed([found[0]]):
        return None
    index, conv = found
    if len(conv.output) != 1 or len(conv.input) < 2:
        return None
    w = view.const(conv.input[1])
    if w is None or view.elem_type(conv.input[1]) not in _FLOAT_TYPES or w.ndim < 3:
        return None
    b = None
    if len(conv.input) > 2 and conv.input[2]:
        b = view.const(conv.input[2])
        if b is None or b.shape != (w.shape[0],):
            return None
    return index, conv, w, b


def _per_channel(value: np.ndarray, channels: int, rank: int) -> np.ndarray | None:
    """``value`` as a (channels,) vector when it broadcasts against an NC... output of
    ``rank`` along the channel axis only (or is a scalar), else None."""
    if value.ndim > rank:
        return None
    shape = (1,) * (rank - value.ndim) + tuple(value.shape)
    if any(d != 1 for i, d in enumerate(shape) if i != 1) or shape[1] not in (1, channels):
        return None
    return np.broadcast_to(value.reshape(-1), (channels,)).astype(np.float64)


def _fused_conv(rewriter: Rewriter, conv: NodeProto, w: np.ndarray | None, b: np.ndarray,
                output: str) -> NodeProto:
    """A copy of ``conv`` with a new bias and (unless ``w`` is None) new weight initializers,
    writing ``output``."""
    w_name = conv.input[1] if w is None else rewriter.add_initializer(w, f"{conv.input[1]}_fused")
    b_name = rewriter.add_initializer(b, f"{conv.name or conv.output[0]}_bias_fused")
    node = NodeProto()
    node.CopyFrom(conv)
    del node.input[:]
    node.input.extend([conv.input[0], w_name, b_name])
    node.output[0] = output
    return node


def _fold(view: GraphView, op_type: str, match) -> bool:
    """Run ``match(view, rewriter, index, node)`` on every ``op_type`` node; commit (each
    pattern folds into a Conv: nothing to do without one)."""
    if not view.has_op("Conv"):
        return False
    rewriter = Rewriter(view)
    for index in view.indices_of([op_type], ("", "ai.onnx")):
        if not rewriter.claimed([index]):
            match(view, rewriter, index, view.nodes[index])
    return rewriter.commit()


def _match_bn(view: GraphView, rewriter: Rewriter, index: int, bn: NodeProto) -> None:
    if len(bn.input) != 5 or any(o for o in bn.output[1:]):
        return
    if attr(bn, "training_mode", 0):
        return
    found = _foldable_conv(view, rewriter, bn.input[0])
    if found is None:
        return
    conv_index, conv, w, b = found
    stats = [view.const(n) for n in bn.input[1:]]
    channels = w.shape[0]
    if any(s is None or s.shape != (channels,) for s in stats):
        return
    scale, beta, mean, var = (s.astype(np.float64) for s in stats)
    epsilon = float(attr(bn, "epsilon", 1e-5))
    factor = scale / np.sqrt(var + epsilon)
    bias = b.astype(np.float64) if b is not None else np.zeros(channels)
    # the per-channel factor in float64, the weights scaled in their own precision (float32
    # at least), as onnxruntime folds; float64 weight temporaries cost ~0.1 s on ResNet-18
    work = np.promote_types(w.dtype, np.float32)
    new_w = (w.astype(work, copy=False)
             * factor.astype(work).reshape((-1,) + (1,) * (w.ndim - 1))).astype(w.dtype)
    new_b = ((bias - mean) * factor + beta).astype(w.dtype)
    rewriter.replace([conv_index, index], [_fused_conv(rewriter, conv, new_w, new_b, bn.output[0])])


def fuse_conv_bn(model: ModelProto, context: OptimizerContext) -> bool:
    """Fold an inference-mode BatchNormalization into the preceding Conv's weights and bias."""
    return _fold(GraphView.of(model, context), "BatchNormalization", _match_bn)


def _affine_operand(view: GraphView, rewriter: Rewriter, node: NodeProto):
    """(conv match, per-channel vector) for a binary node of a foldable Conv and a constant."""
    if len(node.input) != 2:
        return None
    for conv_side in (0, 1):
        found = _foldable_conv(view, rewriter, node.input[conv_side])
        other = view.const(node.input[1 - conv_side])
        if found is None or other is None:
            continue
        w = found[2]
        if other.dtype != w.dtype:
            return None
        vector = _per_channel(other, w.shape[0], w.ndim)
        if vector is not None:
            return found, vector
    return None


def _match_mul(view: GraphView, rewriter: Rewriter, index: int, mul: NodeProto) -> None:
    found = _affine_operand(view, rewriter, mul)
    if found is None:
        return
    (conv_index, conv, w, b), factor = found
    # the per-channel factor in float64, the weights scaled in their own precision (float32
    # at least), as onnxruntime folds; float64 weight temporaries cost ~0.1 s on ResNet-18
    work = np.promote_types(w.dtype, np.float32)
    new_w = (w.astype(work, copy=False)
             * factor.astype(work).reshape((-1,) + (1,) * (w.ndim - 1))).astype(w.dtype)
    bias = b.astype(np.float64) if b is not None else np.zeros(w.shape[0])
    new_b = (bias * factor).astype(w.dtype)
    fused = _fused_conv(rewriter, conv, new_w, new_b, mul.output[0])
    rewriter.replace([conv_index, index], [fused])


def fuse_conv_mul(model: ModelProto, context: OptimizerContext) -> bool:
    """Fold a Mul by a constant per-channel factor into the preceding Conv."""
    return _fold(GraphView.of(model, context), "Mul", _match_mul)


def _match_add(view: GraphView, rewriter: Rewriter, index: int, add: NodeProto) -> None:
    found = _affine_operand(view, rewriter, add)
    if found is None:
        return
    (conv_index, conv, w, b), term = found
    bias = b.astype(np.float64) if b is not None else np.zeros(w.shape[0])
    new_b = (bias + term).astype(w.dtype)
    rewriter.replace([conv_index, index], [_fused_conv(rewriter, conv, None, new_b, add.output[0])])


def fuse_conv_add(model: ModelProto, context: OptimizerContext) -> bool:
    """Fold an Add of a constant per-channel term into the preceding Conv's bias."""
    return _fold(GraphView.of(model, context), "Add", _match_add)
