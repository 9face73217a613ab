"""Level-1 (``ORT_ENABLE_BASIC``) removal of casts that change nothing.

Exporters write casts to the type a value already has (torch: ``Cast(to=INT64)`` of a
``Gather`` of a ``Shape``, ``Cast(to=FLOAT)`` of a Softmax, ``Cast(to=BOOL)`` of a
comparison); onnxruntime's ``CastElimination`` removes them, so

* ``CastElimination``: a ``Cast`` whose input is known to have the element type ``to``
  becomes an ``Identity``, which ``IdentityElimination`` removes (or keeps, where the value
  is a graph output).
"""

from __future__ import annotations

from onnx import ModelProto, NodeProto

from .context import OptimizerContext
from .patterns import GraphView, Rewriter, attr, fuse_node_pattern

__all__ = ["eliminate_noop_casts"]


def _match(view: GraphView, rewriter: Rewriter, index: int, node: NodeProto) -> None:
    if len(node.input) != 1 or len(node.output) != 1 or not node.input[0]:
        return
    to = int(attr(node, "to", 0))
    if not to or view.elem_type(node.input[0]) != to:
        return
    rewriter.replace([index], [rewriter.make_node("Identity", [node.input[0]], [node.output[0]],
                                                  f"{node.name or 'Cast'}_noop")])


def eliminate_noop_casts(model: ModelProto, context: OptimizerContext) -> bool:
    """Cast(x, to=T) of an ``x`` of element type T -> Identity(x)."""
    view = GraphView.of(model, context)
    if not view.has_op("Cast") or not view.can_run("", "Identity"):
        return False
    return fuse_node_pattern(model, context, ["Cast"], _match)
