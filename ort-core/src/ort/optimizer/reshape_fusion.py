"""Level-1 (``ORT_ENABLE_BASIC``) folding of computed Reshape targets into constants.

torch exports ``x.view(x.size(0), x.size(1), heads, -1)`` as ``Reshape(x, Concat(
Unsqueeze(Gather(Shape(x), 0)), Unsqueeze(Gather(Shape(x), 1)), [heads], [-1]))``: four to
eight shape nodes run before every such Reshape. onnxruntime's ``ReshapeFusion`` replaces the
target by a constant, so

* ``ReshapeFusion``: a Reshape (``allowzero=0``) whose target is such a ``Concat`` of
  constants and dims of known values gets a constant target: ``0`` (copy the input's dim)
  for an element that is the input's dim at the same position, the constant itself for a
  constant, and ``-1`` for at most one element that is neither (the product of the others
  then determines it, as it did). The shape nodes left unread go at once (dead-node
  elimination), so the fusions of the same round see the Reshape's input read by nobody
  else (AttentionFusion needs that).
"""

from __future__ import annotations

import numpy as np
from onnx import ModelProto, NodeProto

from .basic import eliminate_dead_nodes
from .context import OptimizerContext
from .patterns import GraphView, Rewriter, attr, fuse_node_pattern
from .shape_values import same_dim, shape_elements

__all__ = ["fuse_reshape_targets"]


def _constant_target(view: GraphView, reshape: NodeProto) -> list[int] | None:
    """The constant equivalent of ``reshape``'s computed target, if there is one."""
    data = reshape.input[0]
    elements = shape_elements(view, reshape.input[1])
    if elements is None or all(isinstance(e, int) for e in elements):
        return None  # not computed from dims (a constant target is constant folding's)
    rank = view.rank(data)
    target: list[int] = []
    for position, element in enumerate(elements):
        if isinstance(element, int):
            target.append(element)
        elif rank is not None and position < rank and same_dim(view, element, data, position):
            target.append(0)
        else:
            target.append(-1)
    if target.count(-1) > 1:
        return None
    return target


def _match(view: GraphView, rewriter: Rewriter, index: int, reshape: NodeProto) -> None:
    if len(reshape.input) != 2 or int(attr(reshape, "allowzero", 0)) != 0:
        return
    if view.is_const(reshape.input[1]):
        return
    target = _constant_target(view, reshape)
    if target is None:
        return
    shape = rewriter.add_initializer(np.array(target, np.int64),
                                     f"{reshape.name or 'Reshape'}_target")
    node = rewriter.make_node("Reshape", [reshape.input[0], shape], list(reshape.output),
                              reshape.name or "Reshape")
    rewriter.replace([index], [node])


def fuse_reshape_targets(model: ModelProto, context: OptimizerContext) -> bool:
    """Reshape(x, Concat(dims of values, constants)) -> Reshape(x, constant target)."""
    view = GraphView.of(model, context)
    if not view.has_op("Reshape") or not view.has_op("Concat"):
        return False
    if not fuse_node_pattern(model, context, ["Reshape"], _match):
        return False
    eliminate_dead_nodes(model, context)
    return True
