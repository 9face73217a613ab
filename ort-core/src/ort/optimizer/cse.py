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
from .patterns import GraphView

__all__ = ["merge_shape_inputs", "eliminate_common_subexpressions"]

#: Constant initializers up to this many bytes are compared by value.
_MAX_COMPARED_BYTES = 4096
#: Domains whose ops are known to be pure functions of their inputs (but for the random ones).
_PURE_DOMAINS = ("", "ai.onnx", "ai.onnx.ml", "com.microsoft")


def merge_shape_inputs(model: ModelProto, context: OptimizerContext) -> bool:
    """Point ``Shape`` nodes of equally shaped (symbolic) values at one of them."""
    view = GraphView.of(model, context)
    if not view.indices_of(["Shape"], ("", "ai.onnx")):
        return False
    order = view.topological_order()
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


def _attributes_key(node: NodeProto) -> tuple[Any, ...]:
    return tuple(sorted((a.name, a.SerializeToString(deterministic=True))
                        for a in node.attribute))


def eliminate_common_subexpressions(model: ModelProto, context: OptimizerContext) -> bool:
    """Compute nodes with equal op, domain, attributes and (merged) inputs once; equal small
    constant initializers count as the same input. Nodes whose outputs must keep their name
    (graph outputs, subgraph reads) are kept, so are random ops, ops with subgraphs, model-local
    functions and ops of custom domains."""
    view = GraphView.of(model, context)
    rename = _merge_initializers(view)
    order = view.topological_order()
    local = view.local_functions  # may hide random ops
    protected = view.protected
    with_attributes = set(view.with_attributes)
    seen: dict[tuple[Any, ...], NodeProto] = {}
    kept: list[NodeProto] = []
    changed = False
    for index in order:
        node = view.nodes[index]
        inputs = view.node_inputs[index]  # as listed before this pass renamed any
        if rename and not rename.keys().isdisjoint(inputs):
            listed, inputs = inputs, tuple(rename.get(name, name) for name in inputs)
            for i, name in enumerate(inputs):
                if name != listed[i]:
                    node.input[i] = name
            changed = True
        outputs = view.node_outputs[index]
        op_type, domain = view.op_types[index], view.node_domains[index]
        if (op_type in _NONDETERMINISTIC or index in view.subgraph_names or not outputs
                or domain not in _PURE_DOMAINS or (domain, op_type) in local
                or not protected.isdisjoint(outputs)):
            kept.append(node)
            continue
        key = ("" if domain == "ai.onnx" else domain, op_type, inputs, len(outputs),
               _attributes_key(node) if index in with_attributes else ())
        first = seen.get(key)
        if first is None:
            seen[key] = node
            kept.append(node)
            continue
        if any(mine and not theirs for mine, theirs in zip(outputs, first.output)):
            kept.append(node)  # the first one omits an output this one needs
            continue
        rename.update((mine, theirs) for mine, theirs in zip(outputs, first.output) if mine)
        changed = True
    if changed:
        view.write_nodes(kept)
    return changed
