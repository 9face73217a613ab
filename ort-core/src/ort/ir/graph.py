"""The graph IR: nodes in topological order, initializers as arrays, value types, opsets.

Built once per session from a type-inferred ``ModelProto``. ``Constant`` nodes become
initializers. Subgraphs (If/Loop/Scan bodies) stay ``GraphProto`` attributes of their node; the
names they read from the enclosing graph are the node's *implicit inputs*, so topological order
and value lifetimes account for them.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import (Callable, Container, Iterable, Mapping,
                             MutableMapping, Sequence)
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import AttributeProto, GraphProto, TypeProto, ValueInfoProto

from ..element_types import element_type_of_dtype, np_dtype_of
from ..errors import InvalidGraph
from .schemas import (EMPTY, SchemaTable, attribute_defaults, onnx_schema,
                      schema_version)
from .tensors import (WeightResolver, constant_value, sparse_to_dense,
                      tensor_to_array)

__all__ = ["Node", "Graph", "subgraph_free_names", "subgraphs_of", "kahn_order",
           "topological_positions"]


def subgraph_free_names(graph: GraphProto) -> set[str]:
    """Names a subgraph reads that it does not define (its outer-scope inputs)."""
    defined = {i.name for i in graph.input} | {t.name for t in graph.initializer}
    defined |= {t.values.name for t in graph.sparse_initializer}
    free: set[str] = set()
    for node in graph.node:
        for name in node.input:
            if name and name not in defined:
                free.add(name)
        for attr in node.attribute:
            for sub in subgraphs_of(attr):
                free |= {n for n in subgraph_free_names(sub) if n not in defined}
        defined.update(o for o in node.output if o)
    for out in graph.output:
        if out.name not in defined:
            free.add(out.name)
    return free


def topological_positions(needs: Sequence[Iterable[str]], producer: Mapping[str, int],
                          available: Container[str],
                          missing: Callable[[int, str], Exception]) -> list[int]:
    """Node positions in topological order (:func:`kahn_order`), node ``p`` reading the names
    ``needs[p]``, each either ``available`` (inputs, initializers, outer scope) or made by the
    node at ``producer[name]``; a name that is neither raises ``missing(p, name)``. On a cycle
    the order is shorter than ``needs``."""
    pending = [0] * len(needs)
    consumers: dict[int, list[int]] = {}
    for position, names in enumerate(needs):
        for name in names:
            if name in available:
                continue
            source = producer.get(name)
            if source is None:
                raise missing(position, name)
            consumers.setdefault(source, []).append(position)
            pending[position] += 1
    return kahn_order(pending, consumers)


def kahn_order(pending: list[int], consumers: dict[int, list[int]]) -> list[int]:
    """Positions in topological order, depth-first from the first ready one (a graph already
    in order keeps its order): ``pending[p]`` counts the producers position ``p`` waits for
    (counted down in place), ``consumers[p]`` lists the positions reading ``p``'s outputs. On a
    cycle the order is shorter than ``pending`` and positions left waiting keep a count."""
    ready = [p for p in range(len(pending)) if pending[p] == 0]
    ready.reverse()
    order: list[int] = []
    while ready:
        position = ready.pop()
        order.append(position)
        for consumer in reversed(consumers.get(position, ())):
            pending[consumer] -= 1
            if pending[consumer] == 0:
                ready.append(consumer)
    return order


def subgraphs_of(attr: AttributeProto) -> Iterable[GraphProto]:
    """The graphs an attribute holds (none, one, or a list)."""
    if attr.type == AttributeProto.GRAPH:
        yield attr.g
    elif attr.type == AttributeProto.GRAPHS:
        yield from attr.graphs


@dataclass
class Node:
    """One node of the graph IR.

    ``inputs`` keeps ``''`` for omitted optional inputs; ``implicit_inputs`` are the
    outer-scope values its subgraphs read. ``name`` is never empty: unnamed nodes get
    ``<op_type>_<index>``.
    """

    index: int
    name: str
    op_type: str
    domain: str
    inputs: list[str]
    outputs: list[str]
    attributes: list[AttributeProto]
    implicit_inputs: list[str] = field(default_factory=list)
    proto: onnx.NodeProto | None = None

    def describe(self) -> str:
        """``"Add node 'add0'"`` for messages."""
        op = f"{self.domain}:{self.op_type}" if self.domain else self.op_type
        return f"{op} node '{self.name}'"


class Graph:
    """A graph ready for partitioning and planning.

    Attributes:
        name: graph name.
        inputs: graph inputs that are not initializers (what callers must feed).
        overridable: initializers also listed as graph inputs (callers may feed them).
        outputs: graph outputs.
        initializers: name -> array, Constant nodes included.
        nodes: nodes in topological order, indexed 0..n-1 in that order.
        value_types: name -> ``TypeProto`` for every value whose type is known.
        opsets: domain -> opset version (``''`` for ai.onnx).
        outer_scope: names this (sub)graph may read from enclosing graphs.
        functions: the model-local functions, by (domain, name).
        weights: the session's store that stub initializers resolve against (None: the
            graph holds no stubs).
        schemas: the op schemas providers declared (ops ONNX does not define).

    ``extra_initializers`` are arrays held as initializers besides the proto's own (a unit of
    nodes compiled apart from its graph taking that graph's constants as they are).
    """

    def __init__(
        self,
        graph: GraphProto,
        opsets: dict[str, int],
        outer_scope: Iterable[str] = (),
        value_types: Mapping[str, TypeProto] | None = None,
        functions: dict[tuple[str, str], onnx.FunctionProto] | None = None,
        weights: WeightResolver | None = None,
        schemas: SchemaTable | None = None,
        extra_initializers: dict[str, Any] | None = None,
    ) -> None:
        self.name = graph.name
        self.weights = weights
        self.schemas = schemas if schemas is not None else EMPTY
        self.functions: dict[tuple[str, str], onnx.FunctionProto] = dict(functions or {})
        self.opsets = dict(opsets)
        self.outer_scope = set(outer_scope)
        # a nested graph may be handed its parent's types behind a layer of its own (see
        # nested()); any other mapping is copied
        self.value_types: MutableMapping[str, TypeProto] = (
            value_types if isinstance(value_types, ChainMap) else dict(value_types or {}))
        self._facts: dict[str, tuple[Any, Any]] = {}  # name -> (dtype, shape), read once
        self._since_versions: dict[tuple[str, str], int] = {}  # (domain, op_type) -> version
        for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
            if vi.type.WhichOneof("value") is not None:
                self.value_types[vi.name] = vi.type

        self.initializers: dict[str, Any] = {}
        for tensor in graph.initializer:
            self.initializers[tensor.name] = tensor_to_array(tensor, weights)
        for sparse in graph.sparse_initializer:
            self.initializers[sparse.values.name] = sparse_to_dense(sparse, weights)
        self.initializers.update(extra_initializers or {})
        init_names = set(self.initializers)
        self.inputs: list[ValueInfoProto] = [i for i in graph.input if i.name not in init_names]
        self.overridable: list[ValueInfoProto] = [i for i in graph.input if i.name in init_names]
        self.outputs: list[ValueInfoProto] = list(graph.output)

        self.constant_names: set[str] = set()
        raw_nodes = []
        for proto in graph.node:
            if proto.op_type == "Constant" and proto.domain in ("", "ai.onnx") and proto.output:
                self.initializers[proto.output[0]] = constant_value(proto)
                self.constant_names.add(proto.output[0])
            else:
                raw_nodes.append(proto)
        for name, array in self.initializers.items():
            if name not in self.value_types and isinstance(array, np.ndarray):
                self.value_types[name] = _tensor_type_of(array)
        self.nodes = self._topological_order(raw_nodes)

    def _topological_order(self, protos: list[onnx.NodeProto]) -> list[Node]:
        # each proto is read once (protobuf access dominates for big graphs); the order is
        # Kahn's, visiting consumers depth first, as it always was
        available = {i.name for i in self.inputs} | set(self.initializers) | self.outer_scope
        producers: dict[str, int] = {}
        inputs_of: list[list[str]] = []
        outputs_of: list[list[str]] = []
        attributes_of: list[list[AttributeProto]] = []
        for position, proto in enumerate(protos):
            outputs = list(proto.output)
            for out in outputs:
                if out:
                    if out in producers or out in available:
                        raise InvalidGraph(
                            f"This is an invalid model. Value '{out}' is defined more than once "
                            f"(output of node '{proto.name}')"
                        )
                    producers[out] = position
            outputs_of.append(outputs)
            inputs_of.append(list(proto.input))
            attributes_of.append(list(proto.attribute) if len(proto.attribute) else [])
        needs: list[list[str]] = []
        implicit_of: dict[int, list[str]] = {}
        for position, attributes in enumerate(attributes_of):
            names = [n for n in inputs_of[position] if n]
            if attributes:
                free_sets = [subgraph_free_names(sub)
                             for attr in attributes for sub in subgraphs_of(attr)]
                for free in free_sets:
                    names.extend(sorted(free))
                if free_sets:
                    implicit_of[position] = sorted(set().union(*free_sets))
            needs.append(names)
        def missing(position: int, name: str) -> InvalidGraph:
            return InvalidGraph(
                f"This is an invalid model. Node '{protos[position].name}' "
                f"({protos[position].op_type}) reads '{name}', which is not a graph input, "
                "an initializer, or an output of another node")

        order = topological_positions(needs, producers, available, missing)
        if len(order) != len(protos):
            ordered = set(order)
            stuck = [protos[p].name or protos[p].op_type for p in range(len(protos))
                     if p not in ordered]
            raise InvalidGraph(f"This is an invalid model. The graph has a cycle through nodes {stuck[:5]}")
        nodes = []
        for index, position in enumerate(order):
            proto = protos[position]
            op_type, domain = proto.op_type, proto.domain
            nodes.append(
                Node(
                    index=index,
                    name=proto.name or f"{op_type}_{index}",
                    op_type=op_type,
                    domain="" if domain == "ai.onnx" else domain,
                    inputs=inputs_of[position],
                    outputs=outputs_of[position],
                    attributes=attributes_of[position],
                    implicit_inputs=implicit_of.get(position, []),
                    proto=proto,
                )
            )
        return nodes

    def opset_of(self, domain: str) -> int | None:
        """The opset the model imports for ``domain`` (None when it imports none)."""
        if domain in self.opsets:
            return self.opsets[domain]
        if domain in ("", "ai.onnx"):
            return self.opsets.get("ai.onnx", self.opsets.get(""))
        return None

    def nested(self, body: GraphProto, outer_scope: Iterable[str] = (),
               extra_initializers: dict[str, Any] | None = None) -> Graph:
        """The IR of ``body``, a graph nested in this one (a subgraph attribute, or some of
        this graph's nodes compiled apart): it shares this graph's opsets, known value types,
        functions, weights and schemas, and may read ``outer_scope`` besides this graph's own
        outer scope."""
        types: Mapping[str, TypeProto] = self.value_types
        layers = types.maps if isinstance(types, ChainMap) else [types]
        if len(body.node) * 16 < sum(len(layer) for layer in layers):
            # a small body of a big graph (a subgraph attribute, a fused group) reads the
            # parent's types through a layer of its own: copying them for each of many bodies
            # made compiling quadratic in the graph's size
            types = ChainMap({}, *layers)
        return Graph(body, self.opsets, outer_scope=set(outer_scope) | self.outer_scope,
                     value_types=types, functions=self.functions,
                     weights=self.weights, schemas=self.schemas,
                     extra_initializers=extra_initializers)

    def since_version(self, node: Node) -> int:
        """The ``since_version`` of the node's op schema at the model's opset (ONNX's or a
        declared one); for ops no schema knows, the opset the model imports for the domain
        (or 1)."""
        key = (node.domain, node.op_type)
        known = self._since_versions.get(key)
        if known is not None:
            return known
        opset = self.opset_of(node.domain)
        if opset is None:
            version = 1
        else:
            version = schema_version(node.op_type, node.domain, opset, self.schemas)
            version = version if version is not None else opset
        self._since_versions[key] = version
        return version

    def knows_op(self, node: Node) -> bool:
        """Whether ONNX or a declared schema defines the node's op at the model's opset."""
        opset = self.opset_of(node.domain)
        return opset is not None and \
            schema_version(node.op_type, node.domain, opset, self.schemas) is not None

    def onnx_schema(self, node: Node) -> onnx.defs.OpSchema | None:
        """ONNX's schema of the node's op at the model's opset, if ONNX defines it."""
        opset = self.opset_of(node.domain)
        return None if opset is None else onnx_schema(node.op_type, node.domain, opset)

    def attribute_defaults(self, node: Node) -> dict[str, Any]:
        """The defaults of the node's attributes, from its op's schema."""
        opset = self.opset_of(node.domain)
        if opset is None:
            return {}
        return attribute_defaults(node.op_type, node.domain, opset, self.schemas)

    def dtype_of(self, name: str) -> np.dtype | None:
        """The numpy dtype of a tensor value, if known."""
        return self.tensor_facts(name)[0]

    def shape_of(self, name: str) -> tuple[Any, ...] | None:
        """The shape of a tensor value (ints, ``str`` for symbols, None unknown), if known."""
        return self.tensor_facts(name)[1]

    def tensor_facts(self, name: str) -> tuple[np.dtype | None, tuple[Any, ...] | None]:
        """(:meth:`dtype_of`, :meth:`shape_of`) of a value, read from its ``TypeProto`` once
        (each value is asked for as an output and again as an input, and protobuf reads are
        the slow part of compiling a big graph)."""
        facts = self._facts.get(name)
        if facts is None:
            dtype = shape = None
            tp = self.value_types.get(name)
            if tp is not None and tp.WhichOneof("value") == "tensor_type":
                tensor = tp.tensor_type
                elem_type = tensor.elem_type
                if elem_type:
                    try:
                        dtype = np_dtype_of(elem_type)
                    except ValueError:
                        dtype = None
                if tensor.HasField("shape"):
                    shape = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                                  for d in tensor.shape.dim)
            facts = self._facts[name] = (dtype, shape)
        return facts


def _tensor_type_of(array: np.ndarray) -> TypeProto:
    return onnx.helper.make_tensor_type_proto(element_type_of_dtype(array.dtype), array.shape)
