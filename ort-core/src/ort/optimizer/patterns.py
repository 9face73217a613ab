"""Helpers the optimizer passes share: the index of a model's main graph for pattern matching
(:class:`GraphView`, from :mod:`ort.optimizer.view`, re-exported here) and a rewriter that
swaps matched node groups for fused nodes in one commit.

Passes build a :class:`GraphView`, collect non-overlapping matches with a :class:`Rewriter`
and call :meth:`Rewriter.commit` once; names the session must keep (graph inputs, outputs,
overridable initializers, values read by subgraphs) are never removed or renamed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from onnx import ModelProto, NodeProto, TensorProto, helper, numpy_helper

from ..ir import DETACH_BYTES, WeightStore
from .context import OptimizerContext
from .view import (
    MS_DOMAIN, GraphView, attr, has_subgraph, is_default_domain, model_opset, topological_order,
)

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

#: The element types ONNX Runtime's CPU kernels of the fused contrib ops take.
FLOAT32 = (TensorProto.FLOAT,)


def ensure_opset(model: ModelProto, domain: str = MS_DOMAIN, version: int = 1) -> None:
    """Import ``domain`` (at ``version``) unless the model already imports it."""
    if model_opset(model, domain) is None:
        model.opset_import.append(helper.make_opsetid(domain, version))


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
    for index in view.indices_of(op_types, domains):
        if not rewriter.claimed([index]):
            match(view, rewriter, index, view.nodes[index])
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
