"""Optimization of the subgraphs of control-flow nodes (If branches, Loop and Scan bodies).

onnxruntime optimizes every subgraph with the passes of the main graph; models that keep
their whole network in If branches (Silero VAD picks its sample rate so) or in Loop bodies
would otherwise run unfused. Each subgraph is optimized as a model of its own
(:func:`subgraph_model`): its inputs, plus the outer-scope values it reads, are the model's
inputs, so passes keep them and never take them for constants, except the outer scope's
small initializers, which are constants there too and are given to the passes as such (Clip
bounds, Conv+BatchNormalization parameters, Reshape targets). The result goes back into the
node's attribute (:func:`write_back`); subgraphs of subgraphs are handled the same way, inside
out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from onnx import (GraphProto, ModelProto, TensorProto, TypeProto,
                  ValueInfoProto, helper)

from ..ir import DETACH_BYTES, subgraph_free_names
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
                inner = replace(context, keep=set(), cached_view=None, weights=None,
                                reserved_names=context.reserved_names | scope.names)
                if optimize(wrapper, inner):
                    write_back(body, wrapper.graph, injected)
                    for opset in wrapper.opset_import:  # com.microsoft, for fused ops
                        ensure_opset(model, opset.domain, opset.version)
                    changed = True
    return changed


class _Scope:
    """What a graph's subgraphs may read from it: each value's type and its small
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
            if tensor.name not in inputs and _small(tensor):
                self.constants[tensor.name] = tensor
        self.names = set(self.types) | {o for n in graph.node for o in n.output if o}


def _small(tensor: TensorProto) -> bool:
    """Whether ``tensor`` holds its data and is below the size the passes detach."""
    if tensor.data_location == TensorProto.EXTERNAL or tensor.data_type == TensorProto.STRING:
        return False
    return tensor.ByteSize() < DETACH_BYTES


def subgraph_model(model: ModelProto, body: GraphProto,
                   scope: _Scope) -> tuple[ModelProto, set[str]]:
    """(a model whose graph is a copy of ``body``, the names of the outer initializers it was
    given as its own): outer values ``body`` reads are graph inputs, typed where ``scope``
    knows their type, or initializers where they are small outer initializers."""
    wrapper = ModelProto()
    wrapper.ir_version = max(model.ir_version, 4)  # initializers need not be inputs
    wrapper.opset_import.extend(model.opset_import)
    wrapper.functions.extend(model.functions)
    graph = wrapper.graph
    graph.CopyFrom(body)
    injected: set[str] = set()
    for name in sorted(subgraph_free_names(body)):
        if name in scope.constants:
            graph.initializer.append(scope.constants[name])
            injected.add(name)
        elif name in scope.types:
            graph.input.append(scope.types[name])
        else:  # an outer value of unknown type: still an input the passes must keep
            graph.input.append(helper.make_value_info(name, TypeProto()))
    return wrapper, injected


def write_back(body: GraphProto, optimized: GraphProto, injected: set[str]) -> None:
    """Make ``body`` hold ``optimized``'s nodes, initializers (less the outer ones
    ``injected``) and the value_info of values it still produces; ``body``'s own inputs and
    outputs stay as they are."""
    produced = {o for n in optimized.node for o in n.output if o}
    del body.node[:]
    body.node.extend(optimized.node)
    del body.initializer[:]
    body.initializer.extend(t for t in optimized.initializer if t.name not in injected)
    kept = [vi for vi in optimized.value_info if vi.name in produced]
    del body.value_info[:]
    body.value_info.extend(kept)
