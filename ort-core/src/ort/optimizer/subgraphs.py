"""Optimization of the subgraphs of control-flow nodes (If branches, Loop and Scan bodies).

onnxruntime optimizes every subgraph with the passes of the main graph; models that keep
their whole network in If branches (Silero VAD picks its sample rate so) or in Loop bodies
would otherwise run unfused. Each subgraph is optimized as a model of its own
(:func:`subgraph_model`): its inputs, plus the outer-scope values it reads, are the model's
inputs, so passes keep them and never take them for constants, except the outer scope's
initializers, which are constants there too and are given to the passes as such (Clip
bounds, Conv+BatchNormalization parameters, the LSTM weights Silero's branches slice). The
result goes back into the node's attribute (:func:`write_back`), with the data of any large
initializer a pass made embedded (the session's weight store only serves the main graph's);
subgraphs of subgraphs are handled the same way, inside out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from onnx import (GraphProto, ModelProto, NodeProto, TensorProto, TypeProto,
                  ValueInfoProto, helper, numpy_helper)

from ..ir import (WeightStore, constant_value, subgraph_free_names,
                  tensor_to_array)
from .context import OptimizerContext
from .patterns import ensure_opset

__all__ = ["optimize_subgraphs", "subgraph_model", "write_back"]

#: ``(model, context) -> changed``: optimizes the model in place.
GraphOptimizer = Callable[[ModelProto, OptimizerContext], bool]

#: Bodies with fewer computing (non-``Constant``) nodes than this are left as they are: no
#: fusion matches one node, and what a pass could do to a lone node (fold it) its being the
#: body's output forbids; many models nest dozens of such one-node branches.
MIN_BODY_NODES = 2


def optimize_subgraphs(model: ModelProto, context: OptimizerContext,
                       optimize: GraphOptimizer) -> bool:
    """Optimize, with ``optimize``, every subgraph attribute of ``model``'s main graph's
    nodes in place; return whether one changed."""
    graph = model.graph
    if not any(a.HasField("g") or len(a.graphs) for n in graph.node for a in n.attribute):
        return False
    scope = _Scope(graph)
    changed = False
    for node in graph.node:
        for attribute in node.attribute:
            bodies = [attribute.g] if attribute.HasField("g") else list(attribute.graphs)
            for body in bodies:
                if sum(n.op_type != "Constant" for n in body.node) < MIN_BODY_NODES:
                    continue
                wrapper, injected = subgraph_model(model, body, scope)
                inner = replace(context, keep=set(), cached_view=None,
                                reserved_names=context.reserved_names | scope.names)
                if optimize(wrapper, inner):
                    write_back(body, wrapper.graph, injected, context.weights)
                    for opset in wrapper.opset_import:  # com.microsoft, for fused ops
                        ensure_opset(model, opset.domain, opset.version)
                    changed = True
    return changed


class _Scope:
    """What a graph's subgraphs may read from it: each value's type and its constant
    initializers (the names of all its values, for new names not to shadow them)."""

    def __init__(self, graph: GraphProto) -> None:
        self.types: dict[str, ValueInfoProto] = {}
        for vi in list(graph.value_info) + list(graph.input) + list(graph.output):
            if vi.type.WhichOneof("value") is not None:
                self.types.setdefault(vi.name, vi)
        inputs = {vi.name for vi in graph.input}
        self.constants: dict[str, TensorProto] = {}
        for tensor in graph.initializer:
            if tensor.name not in self.types:
                self.types[tensor.name] = helper.make_tensor_value_info(
                    tensor.name, tensor.data_type, list(tensor.dims))
            if tensor.name not in inputs:
                self.constants[tensor.name] = tensor
        #: outputs of the graph's Constant nodes, made tensors when a body reads them
        self.constant_nodes: dict[str, NodeProto] = {
            n.output[0]: n for n in graph.node
            if n.op_type == "Constant" and n.domain in ("", "ai.onnx") and len(n.output) == 1
            and len(n.attribute) == 1 and n.attribute[0].name != "sparse_value"}
        self.names = set(self.types) | {o for n in graph.node for o in n.output if o}

    def constant(self, name: str) -> TensorProto | None:
        """The outer constant ``name`` as an initializer (None: not a constant)."""
        if name in self.constants:
            return self.constants[name]
        node = self.constant_nodes.get(name)
        if node is None:
            return None
        if node.attribute[0].name == "value":
            tensor = TensorProto()
            tensor.CopyFrom(node.attribute[0].t)
            tensor.name = name
            return tensor
        return numpy_helper.from_array(constant_value(node), name)


def subgraph_model(model: ModelProto, body: GraphProto,
                   scope: _Scope) -> tuple[ModelProto, set[str]]:
    """(a model whose graph is a copy of ``body``, the names of the outer initializers it was
    given as its own): outer values ``body`` reads are graph inputs, typed where ``scope``
    knows their type, or initializers where they are outer initializers (stubs of the
    session's weight store stay stubs: the passes read them through the store)."""
    wrapper = ModelProto()
    wrapper.ir_version = max(model.ir_version, 4)  # initializers need not be inputs
    wrapper.opset_import.extend(model.opset_import)
    wrapper.functions.extend(model.functions)
    graph = wrapper.graph
    graph.CopyFrom(body)
    injected: set[str] = set()
    for name in sorted(subgraph_free_names(body)):
        constant = scope.constant(name)
        if constant is not None:
            graph.initializer.append(constant)
            injected.add(name)
        elif name in scope.types:
            graph.input.append(scope.types[name])
        else:  # an outer value of unknown type: still an input the passes must keep
            graph.input.append(helper.make_value_info(name, TypeProto()))
    return wrapper, injected


def write_back(body: GraphProto, optimized: GraphProto, injected: set[str],
               weights: WeightStore | None = None) -> None:
    """Make ``body`` hold ``optimized``'s nodes, initializers (less the outer ones
    ``injected``; stubs of ``weights`` with their data) and the value_info of values it
    still produces; ``body``'s own inputs and outputs stay as they are."""
    produced = {o for n in optimized.node for o in n.output if o}
    del body.node[:]
    body.node.extend(optimized.node)
    del body.initializer[:]
    for tensor in optimized.initializer:
        if tensor.name in injected:
            continue
        if weights is not None and weights.is_stub(tensor):
            tensor = numpy_helper.from_array(tensor_to_array(tensor, weights), tensor.name)
        body.initializer.append(tensor)
    kept = [vi for vi in optimized.value_info if vi.name in produced]
    del body.value_info[:]
    body.value_info.extend(kept)
