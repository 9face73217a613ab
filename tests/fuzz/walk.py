"""Walking an ONNX model: its graphs (nested ones too), node lists, nodes and tensors."""

from __future__ import annotations

from collections.abc import Iterable

import onnx
from onnx import AttributeProto, TensorProto

__all__ = ["subgraphs", "graphs", "node_lists", "all_nodes", "tensors", "replace_nodes",
           "copy_message", "describe"]


def subgraphs(nodes: Iterable[onnx.NodeProto]) -> Iterable[onnx.GraphProto]:
    """Every graph nested in ``nodes``' attributes, at any depth."""
    for node in nodes:
        for attr in node.attribute:
            if attr.type == AttributeProto.GRAPH:
                yield attr.g
                yield from subgraphs(attr.g.node)
            elif attr.type == AttributeProto.GRAPHS:
                for graph in attr.graphs:
                    yield graph
                    yield from subgraphs(graph.node)


def graphs(model: onnx.ModelProto) -> list[onnx.GraphProto]:
    """The main graph, then every nested graph (of the main graph and of functions)."""
    found = [model.graph, *subgraphs(model.graph.node)]
    for function in model.functions:
        found.extend(subgraphs(function.node))
    return found


def node_lists(model: onnx.ModelProto) -> list:
    """Every repeated node field: of each graph, then of each function."""
    return [g.node for g in graphs(model)] + [f.node for f in model.functions]


def all_nodes(model: onnx.ModelProto) -> list[tuple[object, int]]:
    """(node list, index) for every node of the model."""
    return [(nodes, i) for nodes in node_lists(model) for i in range(len(nodes))]


def tensors(model: onnx.ModelProto) -> list[TensorProto]:
    """Initializers of every graph, sparse initializers' parts and Constant value tensors."""
    found = []
    for graph in graphs(model):
        found.extend(graph.initializer)
        for sparse in graph.sparse_initializer:
            found.extend([sparse.values, sparse.indices])
    for nodes in node_lists(model):
        for node in nodes:
            found.extend(a.t for a in node.attribute if a.type == AttributeProto.TENSOR)
    return found


def replace_nodes(nodes, new_nodes: list[onnx.NodeProto]) -> None:
    """Make the repeated node field ``nodes`` hold copies of ``new_nodes``."""
    copies = [copy_message(n) for n in new_nodes]
    del nodes[:]
    nodes.extend(copies)


def copy_message(message):
    """A deep copy of a protobuf message."""
    clone = type(message)()
    clone.CopyFrom(message)
    return clone


def describe(node: onnx.NodeProto) -> str:
    """``domain.OpType 'name'`` of a node (its first output when it has no name)."""
    op = f"{node.domain}.{node.op_type}" if node.domain else node.op_type
    label = node.name or (node.output[0] if len(node.output) else "")
    return f"{op} '{label}'"
