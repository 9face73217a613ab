"""The graph partitioner: which provider runs which node.

Greedy by the user's priority list, as ONNX Runtime does: each provider in turn is offered the
nodes nobody has taken yet and claims those it can run (``get_capability``); the CPU provider
comes last. A node nobody takes but whose op is defined by an ONNX function is expanded into
that function's body (see :mod:`ort.functions`); any other node left is an error that says what
exists instead.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field

import onnx

from .errors import NotImplemented as OrtNotImplemented
from .graph import Graph, Node
from .kernels import KernelDef
from .provider import ExecutionProvider
from .registry import Registry
from .types import ELEMENT_TYPE_NAMES

__all__ = ["Assignment", "Partition", "partition", "schema_version", "input_type_names"]


@functools.lru_cache(maxsize=4096)
def _schema(op_type: str, domain: str, opset: int) -> onnx.defs.OpSchema | None:
    try:
        return onnx.defs.get_schema(op_type, max_inclusive_version=opset, domain=domain)
    except onnx.defs.SchemaError:
        return None


def schema_version(graph: Graph, node: Node) -> int:
    """The ``since_version`` of the node's op schema at the model's opset; for ops without
    an ONNX schema (custom domains), the opset the model imports for the domain (or 1)."""
    opset = graph.opset_of(node.domain)
    if opset is None:
        return 1
    schema = _schema(node.op_type, node.domain, opset)
    return schema.since_version if schema is not None else opset


def op_schema(graph: Graph, node: Node) -> onnx.defs.OpSchema | None:
    """The ONNX schema of the node's op at the model's opset, if there is one."""
    opset = graph.opset_of(node.domain)
    return None if opset is None else _schema(node.op_type, node.domain, opset)


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
    could not take to the reason (no kernel for the op, the version or the input types).
    """

    assignments: list[Assignment]
    providers: list[ExecutionProvider] = field(default_factory=list)
    registry: Registry | None = None
    fallbacks: dict[str, str] = field(default_factory=dict)

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


def partition(graph: Graph, providers: list[ExecutionProvider], registry: Registry) -> Partition:
    """Assign every node of ``graph`` to the first provider (in priority order) claiming it."""
    signatures = {
        node.index: (schema_version(graph, node), input_type_names(graph, node))
        for node in graph.nodes
    }
    chosen: dict[int, Assignment] = {}
    for provider in providers:
        def lookup(node: Node, _p: ExecutionProvider = provider) -> KernelDef | None:
            if node.index in chosen:
                return None
            version, types = signatures[node.index]
            return registry.lookup(_p.name, node.domain, node.op_type, version, types)

        for index in provider.get_capability(graph, lookup):
            node = graph.nodes[index]
            if index in chosen:
                continue
            kernel = lookup(node)
            if kernel is None:
                raise OrtNotImplemented(
                    f"{provider.name} claimed {node.describe()} but registered no kernel for it"
                )
            chosen[index] = Assignment(node, provider, kernel)
    missing = [node for node in graph.nodes if node.index not in chosen]
    if missing and providers:
        from .functions import function_body, function_kernel

        still_missing = []
        for node in missing:
            body = function_body(graph, node)
            if body is None:
                still_missing.append(node)
                continue
            kernel = function_kernel(graph, node, body, providers, registry)
            chosen[node.index] = Assignment(node, providers[-1], kernel)
        missing = still_missing
    if missing:
        raise OrtNotImplemented(_explain_missing(graph, missing[0], signatures, providers, registry))
    fallbacks: dict[str, str] = {}
    for node in graph.nodes:
        runner = chosen[node.index].provider
        passed_over = list(itertools.takewhile(lambda p: p is not runner, providers))
        if passed_over:
            fallbacks[node.name] = "; ".join(
                _why_not(graph, node, signatures, p, registry) for p in passed_over)
    return Partition([chosen[n.index] for n in graph.nodes], list(providers), registry, fallbacks)


def _why_not(graph: Graph, node: Node, signatures: dict, provider: ExecutionProvider,
             registry: Registry) -> str:
    """Why ``provider`` did not take ``node``: no kernel for the op, its version, its types,
    or the provider declined it in ``get_capability``."""
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


def _explain_missing(graph, node, signatures, providers, registry) -> str:
    version, types = signatures[node.index]
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
    elif op_schema(graph, node) is None and not node.domain:
        details.append(f"'{node.op_type}' is not an ONNX operator at opset {graph.opset_of('')}")
    return f"{head} {'; '.join(details)}."
