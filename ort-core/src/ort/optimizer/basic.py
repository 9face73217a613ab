"""Level-1 (``ORT_ENABLE_BASIC``) passes that need no special kernel."""

from __future__ import annotations

from onnx import ModelProto

from .context import OptimizerContext

__all__ = ["eliminate_identity", "eliminate_dead_nodes"]


def _consumers_of_graph_outputs(model: ModelProto) -> set[str]:
    return {o.name for o in model.graph.output}


def _subgraph_reads(model: ModelProto) -> set[str]:
    """Names read inside any subgraph (renaming them would need a subgraph rewrite)."""
    from ..ir import subgraph_free_names

    reads: set[str] = set()
    for node in model.graph.node:
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                reads |= subgraph_free_names(sub)
    return reads


def eliminate_identity(model: ModelProto, context: OptimizerContext) -> bool:
    """Remove tensor ``Identity`` nodes by reading their input directly (kept where the output
    is a graph output or read by a subgraph)."""
    graph = model.graph
    protected = _consumers_of_graph_outputs(model) | _subgraph_reads(model)
    tensors = {vi.name for vi in list(graph.input) + list(graph.value_info)
               if vi.type.WhichOneof("value") == "tensor_type"}
    tensors |= {t.name for t in graph.initializer}
    tensors |= {o for n in graph.node if n.op_type != "Identity" for o in n.output}
    rename: dict[str, str] = {}
    keep_nodes = []
    for node in graph.node:
        if (node.op_type == "Identity" and node.domain in ("", "ai.onnx")
                and node.output[0] not in protected and node.input[0] in tensors):
            source = node.input[0]
            rename[node.output[0]] = rename.get(source, source)
            continue
        keep_nodes.append(node)
    if not rename:
        return False
    for node in keep_nodes:
        for i, name in enumerate(node.input):
            if name in rename:
                node.input[i] = rename[name]
    del graph.node[:]
    graph.node.extend(keep_nodes)
    return True


def eliminate_dead_nodes(model: ModelProto, context: OptimizerContext) -> bool:
    """Remove nodes whose outputs nothing reads, and initializers nothing reads (graph inputs
    and outputs are kept)."""
    graph = model.graph
    needed = _consumers_of_graph_outputs(model) | _subgraph_reads(model)
    alive = []
    for node in reversed(graph.node):
        if any(o and o in needed for o in node.output):
            alive.append(node)
            needed.update(n for n in node.input if n)
            for attr in node.attribute:
                from ..ir import subgraph_free_names

                for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                    needed |= subgraph_free_names(sub)
    alive.reverse()
    inputs = {i.name for i in graph.input}
    unread = [i for i, t in enumerate(graph.initializer)
              if t.name not in needed and t.name not in inputs]
    changed = len(alive) != len(graph.node) or bool(unread)
    if len(alive) != len(graph.node):
        del graph.node[:]
        graph.node.extend(alive)
    for index in reversed(unread):  # in place: re-adding the kept ones would copy every weight
        del graph.initializer[index]
    return changed
