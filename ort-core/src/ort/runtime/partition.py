"""The graph partitioner: which provider runs which node.

Greedy by the user's priority list, as ONNX Runtime does: each provider in turn is offered the
nodes nobody has taken yet and claims those it can run (``get_capability``); the CPU provider
comes last. Nodes nobody takes are reported in :attr:`Partition.unclaimed`; the compiler
(:mod:`ort.runtime.compiler`) expands those whose op is an ONNX function and reports the rest
with :func:`explain_unclaimed`, which says what exists instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import NotImplemented as OrtNotImplemented
from ..ep import CompileContext, ExecutionProvider, FusedSubgraph, KernelDef, NodeInfo, Registry
from ..ir import Graph, Node
from ..element_types import ELEMENT_TYPE_NAMES

__all__ = ["Assignment", "Partition", "partition", "input_type_names", "host_preferred_nodes",
           "explain_unclaimed", "explain_all_unclaimed"]


def input_type_names(graph: Graph, node: Node) -> list[str | None]:
    """Element-type names (``'float'``) of the node's inputs; None where unknown/omitted."""
    names: list[str | None] = []
    for value in node.inputs:
        tp = graph.value_types.get(value) if value else None
        if tp is not None and tp.WhichOneof("value") == "tensor_type":
            names.append(ELEMENT_TYPE_NAMES.get(tp.tensor_type.elem_type))
        else:
            names.append(None)
    return names


@dataclass
class Assignment:
    """A node, the provider that runs it and the kernel it runs with."""

    node: Node
    provider: ExecutionProvider
    kernel: KernelDef


@dataclass
class Partition:
    """The outcome of partitioning: one :class:`Assignment` per node, in node order.

    ``fallbacks`` maps the name of each node that a provider listed before the one running it
    could not take to the reason (no kernel for the op, the version or the input types);
    ``unclaimed`` lists the nodes no provider took (the compiler expands or refuses them).
    """

    assignments: list[Assignment]
    providers: list[ExecutionProvider] = field(default_factory=list)
    registry: Registry | None = None
    fallbacks: dict[str, str] = field(default_factory=dict)
    unclaimed: list[Node] = field(default_factory=list)
    signatures: dict[int, tuple[int, list[str | None]]] = field(default_factory=dict, repr=False)

    def nodes_by_provider(self) -> dict[str, list[str]]:
        """Provider name -> names of the nodes it runs, for every provider of the session."""
        result: dict[str, list[str]] = {p.name: [] for p in self.providers}
        for a in self.assignments:
            result.setdefault(a.provider.name, []).append(a.node.name)
        return result

    def summary(self) -> str:
        """One line per provider: how many nodes it took and of which op types."""
        lines = []
        for provider, names in self.nodes_by_provider().items():
            ops = sorted({a.node.op_type for a in self.assignments if a.provider.name == provider})
            lines.append(f"{provider}: {len(names)} node(s) {ops}")
        return "; ".join(lines)


#: Cheap ops that compute shapes; kept on the host when only host inputs read their results.
SHAPE_OPS = frozenset({"Shape", "Size", "Gather", "Concat", "Unsqueeze", "Squeeze", "Slice",
                       "Cast", "Reshape", "Add", "Sub", "Mul", "Div", "Equal", "Where", "Range",
                       "ReduceProd", "Max", "Min", "Identity", "Expand", "ConstantOfShape"})
_SHAPE_TYPES = frozenset({"int64", "int32", "bool"})


def host_preferred_nodes(graph: Graph, providers: list[ExecutionProvider], registry: Registry,
                         signatures: dict[int, tuple[int, list[str | None]]]) -> set[int]:
    """Nodes that compute shapes (Shape -> Gather -> Concat -> Reshape chains) whose results
    only feed host inputs of kernels (``host_inputs``, such as Reshape's ``shape``) or other
    such nodes: they stay on the host, as ONNX Runtime's CPU-preferred nodes do, so no device
    round trip is made for a handful of integers."""
    consumers: dict[str, list[tuple[Node, int]]] = {}
    for node in graph.nodes:
        for i, name in enumerate(node.inputs):
            if name:
                consumers.setdefault(name, []).append((node, i))
    outputs = {vi.name for vi in graph.outputs}

    def host_input(node: Node, index: int) -> bool:
        version, types = signatures[node.index]
        for provider in providers:
            kernel = registry.lookup(provider.name, node.domain, node.op_type, version, types)
            if kernel is not None:
                return index in kernel.host_inputs
        return False

    preferred: set[int] = set()
    for node in reversed(graph.nodes):
        if node.op_type not in SHAPE_OPS or node.domain:
            continue
        out_types = [ELEMENT_TYPE_NAMES.get(graph.value_types[o].tensor_type.elem_type)
                     if o in graph.value_types and graph.value_types[o].HasField("tensor_type")
                     else None for o in node.outputs if o]
        if not out_types or any(t not in _SHAPE_TYPES for t in out_types):
            continue
        readers = [r for o in node.outputs if o for r in consumers.get(o, [])]
        if not readers or any(o in outputs for o in node.outputs):
            continue
        if all(r.index in preferred or host_input(r, i) for r, i in readers):
            preferred.add(node.index)
    return preferred


def _readers_of(graph: Graph) -> dict[str, list[int]]:
    """Value name -> indices of the nodes reading it (inputs and implicit inputs)."""
    readers: dict[str, list[int]] = {}
    for node in graph.nodes:
        for name in list(node.inputs) + list(node.implicit_inputs):
            if name:
                readers.setdefault(name, []).append(node.index)
    return readers


def _fuse(graph: Graph, group: FusedSubgraph, provider: ExecutionProvider,
          count: int, readers: dict[str, list[int]]) -> tuple[Node, KernelDef] | None:
    """The synthetic node standing for ``group`` and its kernel, or None when the group is not
    convex (an outside node both reads from it and feeds it). ``readers`` is
    :func:`_readers_of` the graph: only the nodes reading the group's outputs are looked at."""
    members = sorted(set(group.node_indices))
    member_set = set(members)
    nodes = [graph.nodes[i] for i in members]
    produced = {o for n in nodes for o in n.outputs if o}
    inputs: list[str] = []
    for n in nodes:
        for name in list(n.inputs) + list(n.implicit_inputs):
            if name and name not in produced and name not in inputs:
                inputs.append(name)
    graph_outputs = {vi.name for vi in graph.outputs}
    outputs: list[str] = []
    last = members[-1]
    outside = sorted({r for name in produced for r in readers.get(name, ()) if r not in member_set})
    for other in (graph.nodes[i] for i in outside):
        reads = [name for name in list(other.inputs) + list(other.implicit_inputs) if name in produced]
        if reads and other.index < last:
            return None  # an outside node between members needs a member's output
        outputs.extend(name for name in reads if name not in outputs)
    outputs.extend(o for o in produced if o in graph_outputs and o not in outputs)
    name = group.name or f"{provider.name}_fused_{count}"
    node = Node(index=last, name=name, op_type=group.op_type, domain="ort.fused", inputs=inputs,
                outputs=outputs, attributes=[])

    def factory(info: NodeInfo, _group: FusedSubgraph = group) -> Any:
        context: CompileContext | None = info.context
        if context is None:
            raise RuntimeError(f"{info.describe()}: fused groups are compiled in a session only")
        return provider.compile(graph, _group, list(inputs), list(outputs), context)

    return node, KernelDef(group.op_type, "ort.fused", 1, None, factory)


def partition(graph: Graph, providers: list[ExecutionProvider], registry: Registry,
              fuse: bool = True,
              expand: Callable[[Node], KernelDef | None] | None = None) -> Partition:
    """Assign every node of ``graph`` to the first provider (in priority order) claiming it;
    with ``fuse=False`` claimed :class:`~ort.ep.FusedSubgraph` groups are taken node by node
    (used when compiling such a group with the provider's own kernels).

    A node nobody claims is offered to ``expand`` (the compiler's function expansion), whose
    kernel then runs it on the last provider; what is still left is reported in
    :attr:`Partition.unclaimed`."""
    signatures = {
        node.index: (graph.since_version(node), input_type_names(graph, node))
        for node in graph.nodes
    }
    chosen: dict[int, Assignment] = {}
    stay_on_host: set[int] = set()
    if any(not p.device.is_host for p in providers):
        stay_on_host = host_preferred_nodes(graph, providers, registry, signatures)
    fused_count = 0
    # a big graph repeats a few (op, version, input types): look each up once per provider
    kernels: dict[tuple[Any, ...], KernelDef | None] = {}
    readers: dict[str, list[int]] | None = None  # built for the first fused group
    for provider in providers:
        def lookup(node: Node, _p: ExecutionProvider = provider) -> KernelDef | None:
            if node.index in chosen:
                return None
            if node.index in stay_on_host and not _p.device.is_host:
                return None
            version, types = signatures[node.index]
            key = (_p.name, node.domain, node.op_type, version, tuple(types))
            try:
                return kernels[key]
            except KeyError:
                kernel = kernels[key] = registry.lookup(_p.name, node.domain, node.op_type,
                                                        version, types)
                return kernel

        claims: list[Any] = []
        for claim in provider.get_capability(graph, lookup):
            if isinstance(claim, FusedSubgraph) and not fuse:
                claims.extend(sorted(claim.node_indices))
            else:
                claims.append(claim)
        for index in claims:
            if isinstance(index, FusedSubgraph):
                if any(i in chosen for i in index.node_indices):
                    continue  # a provider earlier in the list took part of it
                if readers is None:
                    readers = _readers_of(graph)
                fused = _fuse(graph, index, provider, fused_count, readers)
                if fused is None:
                    raise OrtNotImplemented(
                        f"{provider.name} claimed a fused subgraph of nodes "
                        f"{sorted(index.node_indices)} that is not convex: a node outside it, "
                        "between its members, reads a member's output; a group must take "
                        "such nodes in or end before them")
                fused_count += 1
                assignment = Assignment(fused[0], provider, fused[1])
                for i in index.node_indices:
                    chosen[i] = assignment
                continue
            node = graph.nodes[index]
            if index in chosen:
                continue
            kernel = lookup(node)
            if kernel is None:
                raise OrtNotImplemented(
                    f"{provider.name} claimed {node.describe()} but registered no kernel for it"
                )
            chosen[index] = Assignment(node, provider, kernel)
    unclaimed = []
    for node in graph.nodes:
        if node.index in chosen:
            continue
        kernel = expand(node) if expand is not None and providers else None
        if kernel is None:
            unclaimed.append(node)
        else:
            chosen[node.index] = Assignment(node, providers[-1], kernel)
    fallbacks: dict[str, str] = {}
    before: dict[int, list[ExecutionProvider]] = {}  # id(provider) -> the providers ahead of it
    for position, provider in enumerate(providers):
        before.setdefault(id(provider), list(providers[:position]))
    for node in graph.nodes:
        if node.index not in chosen:
            continue
        runner = chosen[node.index].provider
        passed_over = before.get(id(runner), providers)
        if passed_over:
            fallbacks[node.name] = "; ".join(
                _why_not(graph, node, signatures, p, registry, node.index in stay_on_host)
                for p in passed_over)
    ordered: list[Assignment] = []
    for node in graph.nodes:
        assignment = chosen.get(node.index)
        if assignment is not None and (assignment.node is node
                                       or node.index == assignment.node.index):
            ordered.append(assignment)  # a fused node sits where its last member was
    return Partition(ordered, list(providers), registry, fallbacks, unclaimed, signatures)


def _why_not(graph: Graph, node: Node, signatures: dict, provider: ExecutionProvider,
             registry: Registry, host_shape_node: bool = False) -> str:
    """Why ``provider`` did not take ``node``: no kernel for the op, its version, its types,
    a shape computation kept on the host, or the provider declined it in ``get_capability``."""
    if host_shape_node and not provider.device.is_host:
        return "shape computation kept on the host (its results only feed host inputs)"
    version, types = signatures[node.index]
    op = f"{node.domain}:{node.op_type}" if node.domain else node.op_type
    kernels = registry.kernels_for(provider.name, node.domain, node.op_type)
    if not kernels:
        return f"{provider.name} has no kernel for {op}"
    if not any(k.covers(version) for k in kernels):
        versions = ", ".join(k.version_range() for k in kernels)
        return f"{provider.name} has {op} for versions {versions}, not {version}"
    if registry.lookup(provider.name, node.domain, node.op_type, version, types) is None:
        return f"{provider.name} has no {op} kernel for input types {[t for t in types if t]}"
    return f"{provider.name} declined the node"


def explain_all_unclaimed(graph: Graph, part: Partition) -> str:
    """The error for a graph with nodes nobody claimed: ONNX Runtime's message for the first,
    then every op no provider runs (op, domain, opset, the nodes using it), so a user meets
    all of them at once instead of one per attempt."""
    first = explain_unclaimed(graph, part.unclaimed[0], part)
    by_op: dict[tuple[str, str, Any], list[str]] = {}
    for node in part.unclaimed:
        version = part.signatures[node.index][0]
        by_op.setdefault((node.domain or "ai.onnx", node.op_type, version), []).append(
            node.name or f"#{node.index}")
    if len(part.unclaimed) == 1:
        return first
    listed = []
    for (domain, op_type, version), names in sorted(by_op.items()):
        shown = ", ".join(repr(n) for n in names[:5])
        more = f" and {len(names) - 5} more" if len(names) > 5 else ""
        listed.append(f"{domain}:{op_type}({version}) at node(s) {shown}{more}")
    return (f"{first} In all, {len(by_op)} op(s) in {len(part.unclaimed)} node(s) have no "
            f"implementation: {'; '.join(listed)}.")


def explain_unclaimed(graph: Graph, node: Node, part: Partition) -> str:
    """ONNX Runtime's "Could not find an implementation" message for a node nobody claimed,
    with what each provider has instead."""
    providers, registry = part.providers, part.registry
    version, types = part.signatures[node.index]
    op = f"{node.domain}:{node.op_type}" if node.domain else node.op_type
    head = f"Could not find an implementation for {op}({version}) node with name '{node.name}'."
    if graph.opset_of(node.domain) is None:
        return (f"{head} The model does not import the domain '{node.domain}' "
                f"(opset_import lists {sorted(graph.opsets)}).")
    details = []
    for provider in providers:
        kernels = registry.kernels_for(provider.name, node.domain, node.op_type)
        if not kernels:
            details.append(f"{provider.name} has no kernel for {op}")
            continue
        versions = ", ".join(k.version_range() for k in kernels)
        covering = [k for k in kernels if k.covers(version)]
        if not covering:
            details.append(f"{provider.name} has {op} for versions {versions} only")
        else:
            known = [t for t in types if t is not None]
            details.append(
                f"{provider.name} has {op}({versions}) but not for input types {known}"
            )
    if not registry.kernel_providers():
        details.append("no provider with kernels is installed: pip install ort-provider-cpu")
    elif graph.onnx_schema(node) is None and not node.domain:
        details.append(f"'{node.op_type}' is not an ONNX operator at opset {graph.opset_of('')}")
    return f"{head} {'; '.join(details)}."
