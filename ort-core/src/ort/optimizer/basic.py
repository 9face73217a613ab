"""Level-1 (``ORT_ENABLE_BASIC``) passes that need no special kernel."""

from __future__ import annotations

from onnx import ModelProto

from .context import OptimizerContext
from .patterns import GraphView

__all__ = ["eliminate_identity", "eliminate_dead_nodes"]


def _consumers_of_graph_outputs(model: ModelProto) -> set[str]:
    return {o.name for o in model.graph.output}


def _subgraph_reads(view: GraphView) -> set[str]:
    """Names read inside any subgraph (renaming them would need a subgraph rewrite)."""
    reads: set[str] = set()
    for names in view.subgraph_names.values():
        reads |= names
    return reads


def eliminate_identity(model: ModelProto, context: OptimizerContext) -> bool:
    """Remove tensor ``Identity`` nodes by reading their input directly (kept where the output
    is a graph output or read by a subgraph)."""
    view = GraphView.of(model, context)
    if not view.indices_of(["Identity"], ("", "ai.onnx")):
        return False
    graph = model.graph
    protected = _consumers_of_graph_outputs(model) | _subgraph_reads(view)
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
    view.invalidate()
    for node in keep_nodes:
        for i, name in enumerate(node.input):
            if name in rename:
                node.input[i] = rename[name]
    del graph.node[:]
    graph.node.extend(keep_nodes)
    return True


def eliminate_dead_nodes(model: ModelProto, context: OptimizerContext) -> bool:
    """Remove nodes whose outputs nothing reads, and initializers nothing reads (graph inputs
    and outputs are kept). What is read is followed back from the graph outputs (and the
    values subgraphs read) through the producers, so nodes listed out of order (ONNX Runtime
    sorts such graphs) are not taken for dead."""
    view = GraphView.of(model, context)
    graph = model.graph
    needed = _consumers_of_graph_outputs(model) | _subgraph_reads(view)
    producers: dict[str, list[int]] = {}
    for index, outputs in enumerate(view.node_outputs):
        for out in outputs:
            if out:
                producers.setdefault(out, []).append(index)
    is_alive = [False] * len(view.nodes)
    pending = list(needed)
    while pending:
        for index in producers.get(pending.pop(), ()):
            if not is_alive[index]:
                is_alive[index] = True
                for name in view.node_inputs[index]:
                    if name and name not in needed:
                        needed.add(name)
                        pending.append(name)
    alive = [index for index, live in enumerate(is_alive) if live]
    inputs = view.graph_inputs
    unread = [i for i, t in enumerate(graph.initializer)
              if t.name not in needed and t.name not in inputs]
    changed = len(alive) != len(view.nodes) or bool(unread)
    if changed:
        view.invalidate()
    if len(alive) != len(view.nodes):
        kept = [view.nodes[i] for i in alive]
        del graph.node[:]
        graph.node.extend(kept)
    for index in reversed(unread):  # in place: re-adding the kept ones would copy every weight
        del graph.initializer[index]
    return changed
