"""Level-1 passes that merge equal computations.

* ``ShapeInputMerge``: ``Shape`` nodes of values whose inferred shapes are the same (equal
  ints and symbols, at least one symbol) read the first such value instead, so that common
  subexpression elimination can merge them and everything computed from them.
* ``CommonSubexpressionElimination``: equal small constant initializers are merged, then nodes
  with the same op, domain, attributes and inputs are computed once.
"""

from __future__ import annotations

from typing import Any

from onnx import ModelProto, NodeProto

from .context import OptimizerContext
from .constant_folding import _NONDETERMINISTIC
from .patterns import GraphView, has_subgraph, topological_order

__all__ = ["merge_shape_inputs", "eliminate_common_subexpressions"]

#: Constant initializers up to this many bytes are compared by value.
_MAX_COMPARED_BYTES = 4096
#: Domains whose ops are known to be pure functions of their inputs (but for the random ones).
_PURE_DOMAINS = ("", "ai.onnx", "ai.onnx.ml", "com.microsoft")


def merge_shape_inputs(model: ModelProto, context: OptimizerContext) -> bool:
    """Point ``Shape`` nodes of equally shaped (symbolic) values at one of them."""
    view = GraphView.of(model, context)
    available = view.graph_inputs | set(view.initializers)
    order = topological_order(view.nodes, available)
    position = {o: rank for rank, i in enumerate(order) for o in view.nodes[i].output if o}
    canonical: dict[tuple[Any, ...], str] = {}
    changed = False
    candidates = sorted(
        (i for i in order if view.nodes[i].op_type == "Shape"
         and view.nodes[i].domain in ("", "ai.onnx") and view.nodes[i].input),
        key=lambda i: position.get(view.nodes[i].input[0], -1))
    for index in candidates:
        node = view.nodes[index]
        source = node.input[0]
        shape = view.shape(source)
        if (shape is None or any(d is None for d in shape)
                or all(isinstance(d, int) for d in shape)):
            continue
        first = canonical.setdefault(shape, source)
        if first != source:
            node.input[0] = first
            changed = True
    if changed:
        view.write_nodes([view.nodes[i] for i in order])
    return changed


def _merge_initializers(view: GraphView) -> dict[str, str]:
    """Rename map: duplicate small constant initializer -> the first equal one."""
    seen: dict[tuple[int, tuple[int, ...], bytes], str] = {}
    rename: dict[str, str] = {}
    for tensor in view.graph.initializer:
        name = tensor.name
        if name in view.graph_inputs or name in view.protected:
            continue
        elements = 1
        for d in tensor.dims:
            elements *= d
        if elements * 8 > _MAX_COMPARED_BYTES or tensor.data_location == 1:
            continue  # (ByteSize() of every initializer costs seconds on big models)
        value = view.const(name)
        if value is None or value.dtype == object:
            continue
        key = (tensor.data_type, tuple(value.shape), value.tobytes())
        first = seen.setdefault(key, name)
        if first != name:
            rename[name] = first
    return rename


def _node_key(node: NodeProto) -> tuple[Any, ...]:
    attrs = tuple(sorted((a.name, a.SerializeToString(deterministic=True))
                         for a in node.attribute))
    domain = "" if node.domain == "ai.onnx" else node.domain
    return (domain, node.op_type, tuple(node.input), len(node.output), attrs)


def eliminate_common_subexpressions(model: ModelProto, context: OptimizerContext) -> bool:
    """Compute nodes with equal op, domain, attributes and (merged) inputs once; equal small
    constant initializers count as the same input. Nodes whose outputs must keep their name
    (graph outputs, subgraph reads) are kept, so are random ops, ops with subgraphs, model-local
    functions and ops of custom domains."""
    view = GraphView.of(model, context)
    rename = _merge_initializers(view)
    order = topological_order(view.nodes, view.graph_inputs | set(view.initializers))
    local = {(f.domain, f.name) for f in model.functions}  # may hide random ops
    seen: dict[tuple[Any, ...], NodeProto] = {}
    kept: list[NodeProto] = []
    changed = False
    for index in order:
        node = view.nodes[index]
        for i, name in enumerate(node.input):
            if name in rename:
                node.input[i] = rename[name]
                changed = True
        if (node.op_type in _NONDETERMINISTIC or has_subgraph(node) or not node.output
                or node.domain not in _PURE_DOMAINS or (node.domain, node.op_type) in local
                or any(o in view.protected for o in node.output)):
            kept.append(node)
            continue
        key = _node_key(node)
        first = seen.get(key)
        if first is None:
            seen[key] = node
            kept.append(node)
            continue
        if any(mine and not theirs for mine, theirs in zip(node.output, first.output)):
            kept.append(node)  # the first one omits an output this one needs
            continue
        rename.update((mine, theirs) for mine, theirs in zip(node.output, first.output) if mine)
        changed = True
    if changed:
        view.write_nodes(kept)
    return changed
