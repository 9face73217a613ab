"""The optimizer's index of a model's main graph: :class:`GraphView` (nodes, producers,
consumers, op types, constants, inferred and derived shapes) and :func:`topological_order`.

One view is shared by the passes of a round until one of them changes the model
(:meth:`GraphView.of`), so the protobuf is walked once per change rather than once per pass;
passes read the view's tuples and sets instead of the protobuf where they scan every node.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import ModelProto, NodeProto, TensorProto, helper

from ..ir import (
    attribute_value, constant_value, schema_version, subgraph_free_names, tensor_to_array,
)
from .context import OptimizerContext

__all__ = ["MS_DOMAIN", "GraphView", "attr", "has_subgraph", "is_default_domain", "model_opset",
           "topological_order"]

#: The domain of ONNX Runtime's contrib (fused) ops.
MS_DOMAIN = "com.microsoft"


def is_default_domain(node: NodeProto) -> bool:
    """Whether the node is an ai.onnx op."""
    return node.domain in ("", "ai.onnx")


def has_subgraph(node: NodeProto) -> bool:
    """Whether one of the node's attributes is a graph."""
    return any(a.HasField("g") or len(a.graphs) for a in node.attribute)


def attr(node: NodeProto, name: str, default: Any = None) -> Any:
    """The Python value of attribute ``name`` (``default`` when absent)."""
    for a in node.attribute:
        if a.name == name:
            return attribute_value(a)
    return default


def model_opset(model: ModelProto, domain: str = "") -> int | None:
    """The opset ``model`` imports for ``domain`` (None when it imports none)."""
    for o in model.opset_import:
        if o.domain == domain or (domain == "" and o.domain == "ai.onnx"):
            return int(o.version)
    return None


def topological_order(nodes: Sequence[NodeProto], available: Iterable[str]) -> list[int]:
    """Indices of ``nodes`` in a topological order (the given order where it is one); nodes
    caught in a cycle or reading values nobody produces keep their order at the end."""
    producer = {o: i for i, n in enumerate(nodes) for o in n.output if o}
    reads = []
    for node in nodes:
        names = {n for n in node.input if n}
        for a in node.attribute:
            for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                names |= subgraph_free_names(sub)
        reads.append(names)
    return _order_of(reads, producer, set(available))


def _order_of(reads: Sequence[Iterable[str]], producer: dict[str, int],
              ready: set[str]) -> list[int]:
    """:func:`topological_order` from each node's read names and the value -> producing
    node index map (the last producer of a name wins).

    The order is that of sweeping the nodes in their given order again and again, each sweep
    placing every node whose producers are placed: a node's sweep is the latest of its
    producers' sweeps, plus one for a producer listed after it. That sweep number is worked
    out in one pass over the dependencies, so a graph listed backwards costs no more than
    one listed in order."""
    for position, names in enumerate(reads):
        if any(producer.get(n, -1) >= position and n not in ready for n in names):
            break
    else:  # every node reads only earlier ones: one sweep keeps the given order
        return list(range(len(reads)))
    count = len(reads)
    dependents: list[list[int]] = [[] for _ in range(count)]
    missing = [0] * count
    for position, names in enumerate(reads):
        need = {producer[n] for n in names if n not in ready and n in producer}
        missing[position] = len(need)
        for source in need:
            dependents[source].append(position)
    sweep = [0] * count
    placed = [False] * count
    stack = [i for i in range(count) if missing[i] == 0]
    while stack:
        source = stack.pop()
        placed[source] = True
        for position in dependents[source]:
            latest = sweep[source] + (1 if source > position else 0)
            if latest > sweep[position]:
                sweep[position] = latest
            missing[position] -= 1
            if missing[position] == 0:
                stack.append(position)
    order = sorted((i for i in range(count) if placed[i]), key=lambda i: (sweep[i], i))
    order.extend(i for i in range(count) if not placed[i])  # cycles, and what reads them
    return order


#: The structural index (:meth:`GraphView._build_index`), built on first use.
_LAZY_INDEX = frozenset({"nodes", "graph_inputs", "initializers", "producer",
                         "protected", "node_inputs", "node_outputs", "op_types", "node_domains",
                         "subgraph_names", "subgraph_reads", "op_indices", "domains",
                         "local_functions", "with_attributes"})
#: The naming index (:meth:`GraphView._build_names`): value_info and every name in use.
_LAZY_NAMES = frozenset({"value_info", "_names", "_suffixes"})


class GraphView:
    """A read-only index of a model's main graph.

    Attributes:
        model, graph: the model being optimized and its main graph.
        context: the optimizer context (``has_kernel``, ``keep``).
        nodes: the graph's nodes, in graph order.
        producer: value name -> index in ``nodes`` of the node producing it.
        consumers: value name -> indices of the nodes reading it (once per node), built when
            first asked for.
        protected: names that must keep their producer and name: ``context.keep``, graph
            outputs and values read inside subgraphs.
        node_inputs, node_outputs: each node's input and output names (tuples, as listed),
            read from the protobuf once per view.
        op_types, node_domains: each node's op_type and domain, as listed.
        with_attributes: indices, ascending, of the nodes that have attributes.
        subgraph_names: node index -> the outer names its subgraph attributes read, for the
            nodes with subgraphs (:func:`has_subgraph`) only.
        subgraph_reads: the outer names read by subgraph attributes of any node.
        op_indices: op_type -> indices of the nodes of that op (any domain), ascending.
        domains: the domains of the graph's nodes.
        local_functions: (domain, name) of the model-local functions.

    Every pass of a round shares one view until a pass changes the model (:meth:`of`), so
    each of these is computed once per change, not once per pass: a pass looking for ops
    the graph does not have costs next to nothing (:meth:`indices_of`).
    """

    def __init__(self, model: ModelProto, context: OptimizerContext) -> None:
        self.model = model
        self.graph = model.graph
        self.context = context
        self._arrays: dict[str, np.ndarray | None] = {}
        self._shapes: dict[str, tuple[Any, ...] | None] = {}
        self._depth = 0
        self._indexed = False
        self._named = False
        self._order: list[int] | None = None

    @classmethod
    def of(cls, model: ModelProto, context: OptimizerContext) -> GraphView:
        """A view of ``model``, shared between passes and calls until the model changes.

        Indexing a graph is the optimizer's main cost, and most passes change nothing. Code
        that changes the model calls :meth:`invalidate` (``Rewriter.commit`` does), and the
        optimizer drops the shared view after any pass that reports a change."""
        cached = context.cached_view
        if cached is not None and cached.model is model:
            return cached
        view = cls(model, context)
        context.cached_view = view
        return view

    def invalidate(self) -> None:
        """Say the model is about to change: later :meth:`of` calls index it afresh."""
        if self.context.cached_view is self:
            self.context.cached_view = None

    def write_nodes(self, nodes: Sequence[NodeProto],
                    initializers: Sequence[TensorProto] = ()) -> None:
        """Make ``nodes`` (copied: they may be this graph's own) the graph's node list and
        append ``initializers``; the one way passes rewrite the graph. The graph's own nodes
        in their own order (a pass that only renamed inputs in place) are left as they are."""
        self.invalidate()
        listed = self.__dict__.get("nodes")  # the graph's own nodes, when indexed
        unmoved = (listed is not None and len(nodes) == len(listed)
                   and all(mine is theirs for mine, theirs in zip(nodes, listed)))
        if not unmoved:
            copies = [_copy(node) for node in nodes]
            del self.graph.node[:]
            self.graph.node.extend(copies)
        if initializers:
            self.graph.initializer.extend(initializers)
            if self.model.ir_version < 4:  # IR 3 wants every initializer listed as an input
                self.model.ir_version = 4

    def __getattr__(self, name: str) -> Any:
        # the indices are built on first use: many passes only ask can_run() and stop
        if name in _LAZY_INDEX and not self.__dict__.get("_indexed", True):
            self._build_index()
            return self.__dict__[name]
        if name in _LAZY_NAMES and not self.__dict__.get("_named", True):
            self._build_names()
            return self.__dict__[name]
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")

    def _build_index(self) -> None:
        """One read of the graph's nodes: everything a pass asks of its structure."""
        self._indexed = True
        graph = self.graph
        nodes = self.nodes = list(graph.node)
        self.graph_inputs = {i.name for i in graph.input}
        self.initializers = {t.name: t for t in graph.initializer}
        self.node_inputs = [tuple(node.input) for node in nodes]
        node_outputs = self.node_outputs = [tuple(node.output) for node in nodes]
        op_types = self.op_types = [node.op_type for node in nodes]
        self.node_domains = [node.domain for node in nodes]
        self.domains = set(self.node_domains)
        producer: dict[str, int] = {}
        for index, outputs in enumerate(node_outputs):
            for out in outputs:
                if out:
                    producer[out] = index
        self.producer = producer
        op_indices: dict[str, list[int]] = {}
        for index, op_type in enumerate(op_types):
            found = op_indices.get(op_type)
            if found is None:
                op_indices[op_type] = [index]
            else:
                found.append(index)
        self.op_indices = op_indices
        subgraph_names: dict[int, set[str]] = {}
        subgraph_reads: set[str] = set()
        graph_types = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
        self.with_attributes = [i for i, node in enumerate(nodes) if len(node.attribute)]
        for index in self.with_attributes:
            for a in nodes[index].attribute:
                has_g = a.HasField("g")
                if not (has_g or len(a.graphs)):
                    continue
                free: set[str] = set()
                for sub in ([a.g] if has_g else []) + list(a.graphs):
                    free |= subgraph_free_names(sub)
                subgraph_names.setdefault(index, set()).update(free)
                if a.type in graph_types:
                    subgraph_reads |= free
        self.subgraph_names = subgraph_names
        self.subgraph_reads = subgraph_reads
        self.local_functions = {(f.domain, f.name) for f in self.model.functions}
        self.protected = set(self.context.keep) | {o.name for o in graph.output} | subgraph_reads

    @property
    def consumers(self) -> dict[str, list[int]]:
        """Value name -> indices of the nodes reading it (once per node), ascending."""
        consumers = self.__dict__.get("_consumers")
        if consumers is None:
            consumers = {}
            for index, inputs in enumerate(self.node_inputs):
                for name in (inputs if len(inputs) < 2 else dict.fromkeys(inputs)):
                    if name:
                        found = consumers.get(name)
                        if found is None:
                            consumers[name] = [index]
                        else:
                            found.append(index)
            self._consumers = consumers
        return consumers

    def _build_names(self) -> None:
        self._named = True
        self._suffixes: dict[str, int] = {}  # hint -> the last suffix unique_name tried
        graph = self.graph
        self.value_info = {vi.name: vi for vi in list(graph.value_info)
                           + list(graph.input) + list(graph.output)}
        names = set(self.producer) | set(self.initializers) | self.graph_inputs
        names |= {n.name for n in self.nodes if n.name} | set(self.value_info)
        names |= self.context.reserved_names
        self._names = names

    def indices_of(self, op_types: Iterable[str],
                   domains: Sequence[str] | None = None) -> list[int]:
        """Indices, ascending, of the nodes whose op is one of ``op_types`` (of one of
        ``domains``; any domain when None)."""
        found: list[int] = []
        for op_type in set(op_types):
            found.extend(self.op_indices.get(op_type, ()))
        if domains is not None:
            found = [i for i in found if self.node_domains[i] in domains]
        found.sort()
        return found

    def has_op(self, op_type: str, domains: Sequence[str] = ("", "ai.onnx")) -> bool:
        """Whether a node of ``op_type`` (of one of ``domains``) is in the graph: a pass whose
        pattern needs such a node has nothing to do without one."""
        return any(self.node_domains[i] in domains for i in self.op_indices.get(op_type, ()))

    def topological_order(self) -> list[int]:
        """:func:`topological_order` of the nodes, graph inputs and initializers available
        (computed once per view; callers must not change the list)."""
        if self._order is None:
            reads: list[Iterable[str]] = self.node_inputs
            if self.subgraph_names:
                reads = [{n for n in names if n} | self.subgraph_names.get(i, set())
                         for i, names in enumerate(self.node_inputs)]
            self._order = _order_of(reads, self.producer,
                                    self.graph_inputs | set(self.initializers))
        return self._order

    # -- values ------------------------------------------------------------------------------
    def const(self, name: str) -> np.ndarray | None:
        """The value of ``name`` if it is a constant: a non-overridable initializer or the
        output of a ``Constant`` node; else None."""
        if not name:
            return None
        if name not in self._arrays:
            value = None
            if name in self.initializers and name not in self.graph_inputs:
                value = tensor_to_array(self.initializers[name], self.context.weights)
            elif name in self.producer:
                index = self.producer[name]
                if (self.op_types[index] == "Constant"
                        and self.node_domains[index] in ("", "ai.onnx")
                        and len(self.nodes[index].attribute) == 1):
                    value = _constant_node_value(self.nodes[index])
            self._arrays[name] = value
        return self._arrays[name]

    def scalar(self, name: str) -> float | None:
        """The value of a one-element numeric constant, else None."""
        value = self.const(name)
        if value is None or value.size != 1 or value.dtype.kind not in "fiu":
            return None
        return float(value.reshape(-1)[0])

    def is_const(self, name: str) -> bool:
        """Whether ``name`` is a constant (see :meth:`const`)."""
        return self.const(name) is not None

    def shape(self, name: str) -> tuple[Any, ...] | None:
        """The shape of ``name``: ints, ``str`` symbols and None for unknown dims; None when
        even the rank is unknown. Shapes follow the inputs through shape-preserving ops
        (:func:`_derived_shape`) where that says more than the inferred ``value_info``, which
        loses symbols at broadcasts and knows nothing of contrib ops."""
        if name in self.initializers and name not in self.graph_inputs:
            return tuple(int(d) for d in self.initializers[name].dims)  # no need for the data
        value = self.const(name)
        if value is not None:
            return tuple(value.shape)
        if name not in self._shapes:
            self._shapes[name] = None  # guards against cycles
            derived = _derived_shape(self, name) if self._depth < 256 else None
            self._shapes[name] = derived if derived is not None else self._inferred_shape(name)
        return self._shapes[name]

    def _inferred_shape(self, name: str) -> tuple[Any, ...] | None:
        vi = self.value_info.get(name)
        if vi is None or vi.type.WhichOneof("value") != "tensor_type":
            return None
        tt = vi.type.tensor_type
        if not tt.HasField("shape"):
            return None
        return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                     for d in tt.shape.dim)

    def rank(self, name: str) -> int | None:
        """The rank of ``name`` if known."""
        shape = self.shape(name)
        return None if shape is None else len(shape)

    def static_shape(self, name: str) -> tuple[int, ...] | None:
        """The shape of ``name`` if every dim is a known int."""
        shape = self.shape(name)
        if shape is None or not all(isinstance(d, int) for d in shape):
            return None
        return shape

    def elem_type(self, name: str) -> int | None:
        """The ``TensorProto`` element type of ``name`` if known."""
        if name in self.initializers:
            return self.initializers[name].data_type
        vi = self.value_info.get(name)
        if vi is not None and vi.type.WhichOneof("value") == "tensor_type":
            return vi.type.tensor_type.elem_type or None
        value = self.const(name)
        if value is not None:
            return helper.np_dtype_to_tensor_dtype(value.dtype)
        return None

    def is_float(self, name: str, types: Sequence[int] = (TensorProto.FLOAT,)) -> bool:
        """Whether ``name`` is known to have one of the element ``types``."""
        return self.elem_type(name) in types

    # -- structure ---------------------------------------------------------------------------
    def producer_of(self, name: str, op_type: str | Sequence[str] | None = None,
                    domain: str = "") -> tuple[int, NodeProto] | None:
        """(index, node) producing ``name``, if it is a node of ``op_type`` (any op when None)
        of ``domain``."""
        index = self.producer.get(name)
        if index is None:
            return None
        node = self.nodes[index]
        if op_type is not None:
            types = (op_type,) if isinstance(op_type, str) else tuple(op_type)
            if node.op_type not in types:
                return None
            if (node.domain or "") not in ((domain,) if domain else ("", "ai.onnx")):
                return None
        return index, node

    def consumers_of(self, name: str) -> list[tuple[int, NodeProto]]:
        """The nodes reading ``name``."""
        return [(i, self.nodes[i]) for i in self.consumers.get(name, [])]

    def sole_consumer(self, name: str) -> tuple[int, NodeProto] | None:
        """The only node reading ``name`` when ``name`` is an internal value (not protected)."""
        if name in self.protected:
            return None
        readers = self.consumers.get(name, [])
        if len(readers) != 1:
            return None
        return readers[0], self.nodes[readers[0]]

    def internal(self, name: str, allowed: Iterable[int]) -> bool:
        """Whether ``name`` is read only by the nodes ``allowed`` and is not protected."""
        if name in self.protected:
            return False
        return set(self.consumers.get(name, [])) <= set(allowed)

    def opset(self, domain: str = "") -> int | None:
        """The opset the model imports for ``domain``."""
        return model_opset(self.model, domain)

    def can_run(self, domain: str, op_type: str) -> bool:
        """Whether a session provider has a kernel for ``domain:op_type`` at the model's opset
        (``com.microsoft`` ops: version 1; ops ONNX does not define: the opset itself)."""
        if domain == MS_DOMAIN:
            version = self.opset(MS_DOMAIN) or 1
        else:
            opset = self.opset(domain)
            if opset is None:
                return False
            # an op ONNX does not define at this opset (one onnxruntime adds to the ONNX
            # domain, as SimplifiedLayerNormalization): a kernel covering the opset decides
            version = schema_version(op_type, domain, opset) or opset
        return bool(self.context.has_kernel(domain, op_type, version))

    # -- naming ------------------------------------------------------------------------------
    def unique_name(self, hint: str) -> str:
        """A value or node name not used in the graph yet (and reserved from now on): ``hint``,
        else ``hint_N`` with the smallest free N."""
        name = hint
        # names are never given back, so the suffixes tried before for this hint stay taken:
        # many fusions with one hint cost one probe each, not one per earlier fusion
        count = self._suffixes.get(hint, 0)
        if count:
            name = f"{hint}_{count}"
        while name in self._names:
            count += 1
            name = f"{hint}_{count}"
        self._suffixes[hint] = count
        self._names.add(name)
        return name


#: Ops whose output 0 has the shape of input 0.
_SAME_SHAPE = frozenset({
    "Relu", "Sigmoid", "Tanh", "Erf", "Sqrt", "Exp", "Log", "Neg", "Abs", "Reciprocal", "Cast",
    "Softmax", "LayerNormalization", "Identity", "LeakyRelu", "Clip", "HardSigmoid", "Dropout",
    "Gelu", "FastGelu", "BiasGelu", "SkipLayerNormalization", "QuickGelu",
    "SimplifiedLayerNormalization", "SkipSimplifiedLayerNormalization",
})
_BROADCASTING = frozenset({"Add", "Sub", "Mul", "Div", "Pow"})


def _broadcast_symbolic(shapes: Sequence[tuple[Any, ...]]) -> tuple[Any, ...] | None:
    """The broadcast of symbolic shapes when it is certain (equal dims or a 1), else None."""
    rank = max(len(s) for s in shapes)
    padded = [(1,) * (rank - len(s)) + tuple(s) for s in shapes]
    out = []
    for dims in zip(*padded):
        wide = {d for d in dims if d != 1}
        if len(wide) > 1 or None in wide:
            return None
        out.append(wide.pop() if wide else 1)
    return tuple(out)


def _derived_shape(view: GraphView, name: str) -> tuple[Any, ...] | None:
    """The shape of a node output from its input shapes, for ops that keep (or simply
    transform) them; None when the node is not such an op or an input shape is unknown."""
    index = view.producer.get(name)
    if index is None:
        return None
    node = view.nodes[index]
    if node.domain not in ("", "ai.onnx", MS_DOMAIN) or not node.input:
        return None
    view._depth += 1
    try:
        op = node.op_type
        same = [node.output[0]]
        if op == "SkipLayerNormalization" and len(node.output) > 3:
            same.append(node.output[3])  # input_skip_bias_sum
        if op in _SAME_SHAPE and name in same:
            return view.shape(node.input[0])
        if op in _BROADCASTING and len(node.input) == 2:
            shapes = [view.shape(i) for i in node.input]
            return None if None in shapes else _broadcast_symbolic(shapes)
        if op == "MatMul" and len(node.input) == 2:
            a, b = view.shape(node.input[0]), view.shape(node.input[1])
            if a is None or b is None or len(a) < 2 or len(b) != 2:
                return None
            return tuple(a[:-1]) + (b[1],)
        if op == "Attention" and node.domain == MS_DOMAIN and name == node.output[0]:
            x, w = view.shape(node.input[0]), view.shape(node.input[1])
            sizes = attr(node, "qkv_hidden_sizes")
            if x is None or len(x) != 3 or w is None or not isinstance(w[1], int):
                return None
            return (x[0], x[1], sizes[2] if sizes else w[1] // 3)
        return None
    finally:
        view._depth -= 1


_NUMERIC_CONSTANT_FORMS = ("value", "value_float", "value_floats", "value_int", "value_ints")


def _constant_node_value(node: NodeProto) -> np.ndarray | None:
    """The tensor a ``Constant`` node holds (None for sparse and string forms, which the
    passes leave alone)."""
    if node.attribute[0].name not in _NUMERIC_CONSTANT_FORMS:
        return None
    return constant_value(node)


def _copy(node: NodeProto) -> NodeProto:
    copy = NodeProto()
    copy.CopyFrom(node)
    return copy
