"""Level-1 (``ORT_ENABLE_BASIC``) rewrite of ``CastLike`` into ``Cast`` where the target type
is known.

torch's dynamo exporter and onnxscript write every Python scalar and many weights as
``CastLike(constant, x)``. Constant folding cannot fold that node (``x`` is not a constant),
and the fusions then miss their patterns: Gelu's ``0.5`` and ``sqrt(2)``, LayerNorm's and
RMSNorm's epsilon and scale. ``CastLike(a, x)`` is ``Cast(a, to=elem_type(x))``, so

* ``CastLikeToCast``: a CastLike whose second input has a known element type becomes that
  Cast (same output, ``saturate`` and ``round_mode`` kept); a Cast of a constant is then
  folded by ``ConstantFolding``, which runs after it.
"""

from __future__ import annotations

from onnx import ModelProto, NodeProto

from .context import OptimizerContext
from .patterns import GraphView, Rewriter, fuse_node_pattern

__all__ = ["castlike_to_cast"]


def _match(view: GraphView, rewriter: Rewriter, index: int, node: NodeProto) -> None:
    if len(node.input) != 2 or len(node.output) != 1 or not node.input[0]:
        return
    target = view.elem_type(node.input[1])
    if not target:
        return
    cast = rewriter.make_node("Cast", [node.input[0]], [node.output[0]],
                              f"{node.name or 'CastLike'}_cast", to=int(target))
    cast.attribute.extend(node.attribute)  # saturate (19+), round_mode (25+): Cast has both
    rewriter.replace([index], [cast])


def castlike_to_cast(model: ModelProto, context: OptimizerContext) -> bool:
    """CastLike(a, x) with a known element type of ``x`` -> Cast(a, to=that type)."""
    view = GraphView.of(model, context)
    if not view.can_run("", "Cast"):
        return False
    return fuse_node_pattern(model, context, ["CastLike"], _match)

