"""Level-2 (``ORT_ENABLE_EXTENDED``) fusions of MatMul with scalar scales and transposes into
``com.microsoft:FusedMatMul`` (``Y = alpha * op(A) @ op(B)``), named as onnxruntime names them:

* ``MatMulScaleFusion``: a Mul (or Div) by a scalar constant on the product or on either
  operand (attention's ``Q @ K^T / sqrt(d)``) becomes the ``alpha`` attribute.
* ``MatmulTransposeFusion``: a Transpose swapping only the last two axes of an operand becomes
  ``transA`` / ``transB``.

Both apply to MatMul and to FusedMatMul nodes (so the two combine), only where the Mul, Div
or Transpose feeds nothing else, only on float32 operands and only where ``context.has_kernel``
finds a FusedMatMul kernel. They run after AttentionFusion, which matches the unfused
attention subgraph.
"""

from __future__ import annotations

from typing import Any

from onnx import ModelProto, NodeProto, TensorProto

from .context import OptimizerContext
from .patterns import (
    MS_DOMAIN, FLOAT32, GraphView, Rewriter, attr, fuse_node_pattern, is_default_domain,
)
from .rms_norm_fusion import scalar_operand, scalar_value

__all__ = ["fuse_matmul_scale", "fuse_matmul_transpose"]

_FLAGS = ("transA", "transB", "transBatchA", "transBatchB")


def _attrs(node: NodeProto) -> dict[str, Any]:
    """FusedMatMul attributes of a MatMul or FusedMatMul node."""
    values: dict[str, Any] = {"alpha": float(attr(node, "alpha", 1.0))}
    values.update({flag: int(attr(node, flag, 0)) for flag in _FLAGS})
    return values


def _scalar_factor(view: GraphView, node: NodeProto, value: str) -> float | None:
    """The factor ``node`` (Mul or Div by a one-element constant) applies to ``value``."""
    if not is_default_domain(node) or node.op_type not in ("Mul", "Div"):
        return None
    operand = scalar_operand(view, node)
    if operand is None or node.input[operand[0]] != value:
        return None
    scale = node.input[1 - operand[0]]
    rank, scale_rank = view.rank(value), view.rank(scale)
    if rank is None or scale_rank is None or scale_rank > rank:
        return None  # a [1]-shaped constant must not raise the rank of what it scales
    if not view.is_float(scale, (TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16)):
        return None
    if node.op_type == "Div":
        return None if operand[0] != 0 or operand[1] == 0 else 1.0 / operand[1]
    return operand[1]


def _last_two_swapped(view: GraphView, node: NodeProto) -> bool:
    perm = attr(node, "perm")
    if perm is None:  # the default reverses the axes: the last two only for rank 2
        return view.rank(node.input[0]) == 2
    perm = [int(p) for p in perm]
    n = len(perm)
    return n >= 2 and perm == list(range(n - 2)) + [n - 1, n - 2]


def _match(view: GraphView, rewriter: Rewriter, index: int, node: NodeProto,
           scales: bool) -> None:
    if len(node.input) != 2 or len(node.output) != 1:
        return
    if not (view.is_float(node.input[0], FLOAT32) and view.is_float(node.input[1], FLOAT32)):
        return
    attrs = _attrs(node)
    inputs, output, indices = list(node.input), node.output[0], [index]
    for side, flag in ((0, "A"), (1, "B")):
        found = view.producer_of(inputs[side], "Mul" if scales else "Transpose")
        if scales and found is None:
            found = view.producer_of(inputs[side], "Div")
        if (found is None or view.sole_consumer(inputs[side]) is None
                or rewriter.claimed([found[0]])):
            continue
        producer = found[1]
        if scales:
            source = next((i for i in producer.input if scalar_value(view, i) is None), None)
            factor = None if source is None else _scalar_factor(view, producer, source)
            if factor is None or not view.is_float(source, FLOAT32):
                continue
            attrs["alpha"] *= factor
        else:
            if attrs[f"transBatch{flag}"] or not _last_two_swapped(view, producer):
                continue
            source = producer.input[0]
            attrs[f"trans{flag}"] ^= 1
        inputs[side] = source
        indices.append(found[0])
    if scales:
        after = view.sole_consumer(output)
        if after is not None and not rewriter.claimed([after[0]]):
            factor = _scalar_factor(view, after[1], output)
            if factor is not None:
                attrs["alpha"] *= factor
                output = after[1].output[0]
                indices.append(after[0])
    if len(indices) == 1:
        return
    fused = rewriter.make_node("FusedMatMul", inputs, [output],
                               f"{node.name or 'MatMul'}_fused", domain=MS_DOMAIN,
                               **{k: v for k, v in attrs.items() if k == "alpha" or v})
    rewriter.replace(indices, [fused])


def _fuse(model: ModelProto, context: OptimizerContext, scales: bool) -> bool:
    if not GraphView.of(model, context).can_run(MS_DOMAIN, "FusedMatMul"):
        return False

    def match(view: GraphView, rewriter: Rewriter, index: int, node: NodeProto) -> None:
        _match(view, rewriter, index, node, scales)

    changed = fuse_node_pattern(model, context, ["MatMul"], match)
    return fuse_node_pattern(model, context, ["FusedMatMul"], match, domain=MS_DOMAIN) or changed


def fuse_matmul_scale(model: ModelProto, context: OptimizerContext) -> bool:
    """Scalar Mul/Div on a MatMul's operands or product -> FusedMatMul's ``alpha``."""
    return _fuse(model, context, scales=True)


def fuse_matmul_transpose(model: ModelProto, context: OptimizerContext) -> bool:
    """Transpose of the last two axes of a MatMul operand -> FusedMatMul's ``transA/B``."""
    return _fuse(model, context, scales=False)
