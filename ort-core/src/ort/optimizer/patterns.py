"""Helpers the optimizer passes share: an index of a model's main graph for pattern matching
(producers, consumers, constants, inferred shapes) and a rewriter that swaps matched node
groups for fused nodes in one commit.

Passes build a :class:`GraphView`, collect non-overlapping matches with a :class:`Rewriter`
and call :meth:`Rewriter.commit` once; names the session must keep (graph inputs, outputs,
overridable initializers, values read by subgraphs) are never removed or renamed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import ModelProto, NodeProto, TensorProto, helper, numpy_helper

from ..ir import (
    DETACH_BYTES, WeightStore, attribute_value, constant_value, schema_version, subgraph_free_names,
    tensor_to_array,
)
from .context import OptimizerContext

__all__ = [
    "MS_DOMAIN",
    "GraphView",
    "Rewriter",
    "attr",
    "has_subgraph",
    "is_default_domain",
    "ensure_opset",
    "topological_order",
    "fuse_node_pattern",
    "other_input",
    "const_operand",
    "close",
]

#: The domain of ONNX Runtime's contrib (fused) ops.
MS_DOMAIN = "com.microsoft"
#: The element types ONNX Runtime's CPU kernels of the fused contrib ops take.
FLOAT32 = (TensorProto.FLOAT,)


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


def ensure_opset(model: ModelProto, domain: str = MS_DOMAIN, version: int = 1) -> None:
    """Import ``domain`` (at ``version``) unless the model already imports it."""
    if model_opset(model, domain) is None:
        model.opset_import.append(helper.make_opsetid(domain, version))


def topological_order(nodes: Sequence[NodeProto], available: Iterable[str]) -> list[int]:
    """Indices of ``nodes`` in a topological order (the given order where it is one); nodes
    caught in a cycle or reading values nobody produces keep their order at the end."""
    producer = {o: i for i, n in enumerate(nodes) for o in n.output if o}
    ready = set(available)
    needs: list[set[int]] = []
    for node in nodes:
        names = {n for n in node.input if n}
        for a in node.attribute:
            for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                names |= subgraph_free_names(sub)
        needs.append({producer[n] for n in names if n not in ready and n in producer})
    done: set[int] = set()
    order: list[int] = []
    pending = list(range(len(nodes)))
    while pending:
        rest = []
        for i in pending:
            if needs[i] <= done:
                order.append(i)
                done.add(i)
            else:
                rest.append(i)
        if len(rest) == len(pending):  # a cycle: keep what is left as it is
            order.extend(rest)
            break
        pending = rest
    return order


_LAZY_INDEX = frozenset({"nodes", "graph_inputs", "initializers", "producer", "consumers",
                         "protected", "value_info", "_names"})


class GraphView:
    """A read-only index of a model's main graph.

    Attributes:
        model, graph: the model being optimized and its main graph.
        context: the optimizer context (``has_kernel``, ``keep``).
        nodes: the graph's nodes, in graph order.
        producer: value name -> index in ``nodes`` of the node producing it.
        consumers: value name -> indices of the nodes reading it (once per node).
        protected: names that must keep their producer and name: ``context.keep``, graph
            outputs and values read inside subgraphs.
    """

    def __init__(self, model: ModelProto, context: OptimizerContext) -> None:
        self.model = model
        self.graph = model.graph
        self.context = context
        self._arrays: dict[str, np.ndarray | None] = {}
        self._shapes: dict[str, tuple[Any, ...] | None] = {}
        self._depth = 0
        self._indexed = False

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
        append ``initializers``; the one way passes rewrite the graph."""
        self.invalidate()
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
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")

    def _build_index(self) -> None:
        self._indexed = True
        graph = self.graph
        self.nodes = list(graph.node)
        self.graph_inputs = {i.name for i in graph.input}
        self.initializers = {t.name: t for t in graph.initializer}
        producer: dict[str, int] = {}
        consumers: dict[str, list[int]] = {}
        subgraph_reads: set[str] = set()
        for index, node in enumerate(self.nodes):
            for out in node.output:
                if out:
                    producer[out] = index
            seen: set[str] = set()
            for name in node.input:
                if name and name not in seen:
                    seen.add(name)
                    consumers.setdefault(name, []).append(index)
            for a in node.attribute:
                if a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
                    for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                        subgraph_reads |= subgraph_free_names(sub)
        self.producer = producer
        self.consumers = consumers
        self.protected = set(self.context.keep) | {o.name for o in graph.output} | subgraph_reads
        self.value_info = {vi.name: vi for vi in list(graph.value_info)
                           + list(graph.input) + list(graph.output)}
        names = set(producer) | set(self.initializers) | self.graph_inputs
        names |= {n.name for n in self.nodes if n.name} | set(self.value_info)
        self._names = names

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
                node = self.nodes[self.producer[name]]
                if (node.op_type == "Constant" and is_default_domain(node)
                        and len(node.attribute) == 1):
                    value = _constant_node_value(node)
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
        """A value or node name not used in the graph yet (and reserved from now on)."""
        name = hint
        count = 0
        while name in self._names:
            count += 1
            name = f"{hint}_{count}"
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


def array_to_tensor(array: np.ndarray, name: str,
                    weights: WeightStore | None = None) -> TensorProto:
    """A ``TensorProto`` named ``name`` holding ``array``; with the session's ``weights``
    store, a large numeric array becomes a stub whose data stays in the store
    (:mod:`ort.ir.weights`)."""
    array = np.asarray(array)
    if weights is not None and array.dtype != object and array.nbytes >= DETACH_BYTES:
        return weights.stub(array, name)
    if array.dtype == object:
        return helper.make_tensor(name, TensorProto.STRING, array.shape,
                                  [str(s).encode("utf-8", "surrogateescape")
                                   for s in array.reshape(-1)])
    # not np.ascontiguousarray: it turns 0-d arrays into 1-d ones
    return numpy_helper.from_array(np.array(array, order="C", copy=not array.flags.c_contiguous),
                                   name)


class Rewriter:
    """Collects node replacements on a :class:`GraphView` and applies them in one commit.

    Each replacement removes a group of nodes and inserts new nodes where the last removed
    node (the ``anchor``) stood, so every input of the new nodes is still produced before
    them. A node may belong to one replacement only (:meth:`claimed` tells).
    """

    def __init__(self, view: GraphView) -> None:
        self.view = view
        self._removed: set[int] = set()
        self._inserted: dict[int, list[NodeProto]] = {}
        self._first: list[NodeProto] = []
        self._initializers: list[TensorProto] = []
        self._domains: set[str] = set()

    def claimed(self, indices: Iterable[int]) -> bool:
        """Whether any of the nodes is already part of a replacement."""
        return any(i in self._removed for i in indices)

    def add_initializer(self, array: np.ndarray, hint: str) -> str:
        """Add a constant initializer under a fresh name derived from ``hint``."""
        name = self.view.unique_name(hint)
        self._initializers.append(array_to_tensor(array, name, self.view.context.weights))
        return name

    def replace(self, indices: Iterable[int], new_nodes: Sequence[NodeProto]) -> None:
        """Remove the nodes ``indices`` and put ``new_nodes`` where the last of them was."""
        indices = sorted(set(indices))
        self._removed.update(indices)
        self._inserted.setdefault(indices[-1], []).extend(new_nodes)
        for node in new_nodes:
            if node.domain and node.domain != "ai.onnx":
                self._domains.add(node.domain)

    def insert_after(self, name: str, nodes: Sequence[NodeProto]) -> None:
        """Put ``nodes`` right after the producer of ``name`` (first in the graph when a graph
        input or an initializer produces it)."""
        index = self.view.producer.get(name)
        if index is None:
            self._first.extend(nodes)
        else:
            self._inserted.setdefault(index, []).extend(nodes)
        for node in nodes:
            if node.domain and node.domain != "ai.onnx":
                self._domains.add(node.domain)

    def make_node(self, op_type: str, inputs: Sequence[str], outputs: Sequence[str],
                  name_hint: str, domain: str = "", **attrs: Any) -> NodeProto:
        """A new node with a unique name."""
        return helper.make_node(op_type, list(inputs), list(outputs),
                                name=self.view.unique_name(name_hint), domain=domain or None,
                                **attrs)

    @property
    def changed(self) -> bool:
        """Whether a replacement was recorded."""
        return bool(self._removed or self._initializers or self._first or self._inserted)

    def commit(self) -> bool:
        """Apply every replacement to the model; return whether anything changed."""
        if not self.changed:
            return False
        view = self.view
        kept: list[NodeProto] = list(self._first)
        for index, node in enumerate(view.nodes):
            if index not in self._removed:
                kept.append(node)
            kept.extend(self._inserted.get(index, []))
        view.write_nodes(kept, self._initializers)
        for domain in sorted(self._domains):
            ensure_opset(view.model, domain, 1)
        return True


def _copy(node: NodeProto) -> NodeProto:
    copy = NodeProto()
    copy.CopyFrom(node)
    return copy


def broadcast_size(shapes: Sequence[Sequence[int]]) -> int | None:
    """The element count of the broadcast of ``shapes`` (None if they do not broadcast)."""
    try:
        return math.prod(np.broadcast_shapes(*[tuple(s) for s in shapes]))
    except ValueError:
        return None


# ---- helpers for matchers -----------------------------------------------------------------

Matcher = Callable[[GraphView, "Rewriter", int, NodeProto], None]


def fuse_node_pattern(model: ModelProto, context: OptimizerContext, op_types: Sequence[str],
                      match: Matcher, domain: str = "") -> bool:
    """Run ``match(view, rewriter, index, node)`` on every node of ``op_types`` (of ``domain``)
    not yet claimed by an earlier match, then commit the rewrites."""
    view = GraphView.of(model, context)
    rewriter = Rewriter(view)
    domains = (domain,) if domain else ("", "ai.onnx")
    for index, node in enumerate(view.nodes):
        if (node.op_type in op_types and node.domain in domains
                and not rewriter.claimed([index])):
            match(view, rewriter, index, node)
    return rewriter.commit()


def other_input(node: NodeProto, name: str) -> str | None:
    """The other input of a binary node one of whose inputs is ``name``."""
    if len(node.input) != 2:
        return None
    if node.input[0] == name:
        return node.input[1]
    if node.input[1] == name:
        return node.input[0]
    return None


def close(value: float | None, target: float, rtol: float = 1e-4) -> bool:
    """Whether ``value`` is within ``rtol`` of ``target``."""
    return value is not None and math.isclose(value, target, rel_tol=rtol)


def const_operand(view: GraphView, node: NodeProto) -> tuple[int, float] | None:
    """(index of the other input, value) of a binary node with one scalar constant input."""
    if len(node.input) != 2:
        return None
    for i in (1, 0):
        value = view.scalar(node.input[i])
        if value is not None:
            return 1 - i, value
    return None


def bias_operand(view: GraphView, add: NodeProto) -> tuple[str, str] | None:
    """(input, bias) of an Add of a 1-D constant bias over the last axis of ``input``."""
    if len(add.input) != 2:
        return None
    for side in (0, 1):
        bias = view.const(add.input[side])
        x = add.input[1 - side]
        shape = view.shape(x)
        if (bias is None or bias.ndim != 1 or shape is None or len(shape) < 1
                or shape[-1] != bias.shape[0] or bias.dtype != np.float32):
            continue
        return x, add.input[side]
    return None
