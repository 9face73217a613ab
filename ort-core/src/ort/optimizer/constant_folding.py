"""Level-1 constant folding: nodes computable from constants become initializers.

A node folds when it is a deterministic ai.onnx / ai.onnx.ml op without subgraphs whose inputs
are all constants (non-overridable initializers, ``Constant`` outputs, outputs of other folded
nodes) and whose outputs are not graph outputs. Every foldable node of the graph is evaluated in
one model through ``context.evaluate`` (the session's own kernels); if that fails, nodes are
evaluated one at a time and the failing ones stay. Outputs over :data:`MAX_FOLDED_ELEMENTS`
elements (ConstantOfShape, Expand, Tile, Range blowing up) are never materialized: their size
is estimated from shapes and constant values (Python ints, no overflow) before anything is
evaluated, and a node whose estimate exceeds onnxruntime's folding limit (1 GiB) is reported
with onnxruntime's warning, once per folding pass. ``Shape`` and ``Size`` of a value whose
inferred shape is fully static fold too, without evaluation.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
from onnx import ModelProto, NodeProto, helper

from .context import OptimizerContext
from .patterns import GraphView, array_to_tensor, attr, broadcast_size

__all__ = ["fold_constants", "MAX_FOLDED_ELEMENTS"]

#: Outputs larger than this (in elements) are not folded into initializers.
MAX_FOLDED_ELEMENTS = 1 << 20
#: onnxruntime's limit for a folded output: larger estimates are skipped with a warning.
_WARN_BYTES = 1 << 30
#: Ops whose output size comes from constant values: the ones a model can blow up.
_BLOW_UP = frozenset({"ConstantOfShape", "Expand", "Tile", "Range"})

logger = logging.getLogger("ort")

_FOLDABLE_DOMAINS = ("", "ai.onnx", "ai.onnx.ml")
#: Ops whose result changes from run to run (or that may train), never folded.
_NONDETERMINISTIC = frozenset({
    "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial",
    "Bernoulli", "Dropout",
})
#: Ops producing sequences, optionals or maps: no initializer can hold their result.
_NON_TENSOR = frozenset({
    "SequenceEmpty", "SequenceConstruct", "SequenceInsert", "SequenceErase", "SplitToSequence",
    "Optional", "ZipMap", "CastMap",
})


#: Folding waves per pass: a wave sizes ops such as ConstantOfShape from the previous
#: wave's results.
_MAX_WAVES = 8


def fold_constants(model: ModelProto, context: OptimizerContext) -> bool:
    """Replace nodes computable from constants by initializers (see the module docstring),
    in waves until nothing more folds."""
    changed = False
    for _ in range(_MAX_WAVES):
        if not _fold_wave(model, context):
            break
        changed = True
    _warn_oversized(model, context)
    return changed


def _fold_wave(model: ModelProto, context: OptimizerContext) -> bool:
    """Fold every node foldable now; return whether any was."""
    view = GraphView.of(model, context)
    order = view.topological_order()
    known: dict[str, Any] = {}  # value name -> array (Shape/Size) or the _PENDING marker
    to_eval: list[int] = []
    direct: list[int] = []
    shape_ops = ("Shape", "Size")
    for index in order:
        node = view.nodes[index]
        value = _static_shape_value(view, node) if view.op_types[index] in shape_ops else None
        if value is not None:
            direct.append(index)
            known[node.output[0]] = value
        elif _foldable(view, index, known):
            to_eval.append(index)
            known.update((out, _PENDING) for out in node.output if out)
    if context.evaluate is None:
        to_eval = []
    if not to_eval and not direct:
        return False
    values = {view.nodes[i].output[0]: known[view.nodes[i].output[0]] for i in direct}
    if to_eval:
        values.update(_evaluate(view, context, [view.nodes[i] for i in to_eval], values))
    direct_outputs = {view.nodes[i].output[0] for i in direct}
    folded = _folded_nodes(view, to_eval, values, direct_outputs) + direct
    if not folded:
        return False
    return _apply(view, set(folded), values)


class _Pending:
    """Marks a value a foldable node will produce."""


_PENDING = _Pending()


def _is_constant(view: GraphView, name: str, known: dict[str, Any]) -> bool:
    return not name or name in known or view.is_const(name)


def _foldable(view: GraphView, index: int, known: dict[str, Any]) -> bool:
    """Whether node ``index`` may be evaluated at optimization time."""
    op_type, domain = view.op_types[index], view.node_domains[index]
    if domain not in _FOLDABLE_DOMAINS or op_type in _NONDETERMINISTIC:
        return False
    outputs = view.node_outputs[index]
    if op_type in _NON_TENSOR or index in view.subgraph_names or not any(outputs):
        return False
    if op_type == "Constant":
        return False  # already a constant (patterns read it as one)
    if op_type == "DequantizeLinear":
        return False  # as onnxruntime: kept for the QDQ fusions (quant_fusions.fuse_qdq)
    if any(out in view.protected for out in outputs):
        return False
    if not all(_is_constant(view, name, known) for name in view.node_inputs[index]):
        return False
    if (domain, op_type) in view.local_functions:
        return False
    size = _output_size_bound(view, view.nodes[index], known)
    return size is not None and size <= MAX_FOLDED_ELEMENTS


def _warn_oversized(model: ModelProto, context: OptimizerContext) -> None:
    """onnxruntime's warning for each op that blows up (:data:`_BLOW_UP`) left unfolded from
    constant inputs because its estimated output exceeds onnxruntime's limit."""
    view = GraphView.of(model, context)
    for node in view.nodes:
        if node.op_type not in _BLOW_UP or node.domain not in _FOLDABLE_DOMAINS:
            continue
        if not all(not name or view.is_const(name) for name in node.input):
            continue
        size = _output_size_bound(view, node, {})
        if size is None or size <= MAX_FOLDED_ELEMENTS:
            continue
        element_type = view.elem_type(node.output[0]) if node.output else None
        try:
            itemsize = helper.tensor_dtype_to_np_dtype(element_type).itemsize
        except (KeyError, TypeError, ValueError):
            itemsize = 1
        if size * itemsize > _WARN_BYTES:
            logger.warning("Skipping constant folding for %s node '%s' because estimated "
                           "output size (%d bytes) exceeds the limit (%d bytes)", node.op_type,
                           node.name or node.output[0], size * itemsize, _WARN_BYTES)


def _input_shape(view: GraphView, name: str, known: dict[str, Any]) -> tuple[int, ...] | None:
    value = known.get(name)
    if isinstance(value, np.ndarray):
        return tuple(value.shape)
    return view.static_shape(name)


def _input_value(view: GraphView, name: str, known: dict[str, Any]) -> np.ndarray | None:
    value = known.get(name)
    if isinstance(value, np.ndarray):
        return value
    return view.const(name)


def _output_size_bound(view: GraphView, node: NodeProto, known: dict[str, Any]) -> int | None:
    """An upper bound of the elements of the node's largest output (None: unbounded or
    unknown, which prevents folding). Inferred static shapes win; ops that can blow up are
    sized from their constant inputs; other ops are bounded by the broadcast of their inputs."""
    sizes = []
    for out in node.output:
        shape = view.static_shape(out) if out else ()
        if shape is None:
            break
        sizes.append(math.prod(shape))
    else:
        return max(sizes, default=0)
    op = node.op_type
    inputs = list(node.input)

    def value(i: int) -> np.ndarray | None:
        return _input_value(view, inputs[i], known) if i < len(inputs) and inputs[i] else None

    if op == "ConstantOfShape":
        shape = value(0)
        return None if shape is None else _count([int(d) for d in shape.reshape(-1)])
    if op == "Expand":
        data, shape = _input_shape(view, inputs[0], known), value(1)
        if data is None or shape is None:
            return None
        dims = [int(d) for d in shape.reshape(-1)]
        return broadcast_size([data, dims]) if min(dims, default=0) >= 0 else None
    if op == "Tile":
        data, repeats = _input_shape(view, inputs[0], known), value(1)
        if data is None or repeats is None or len(repeats) != len(data):
            return None
        return _count([d * int(r) for d, r in zip(data, repeats.reshape(-1))])
    if op == "Range":
        start, limit, delta = value(0), value(1), value(2)
        if start is None or limit is None or delta is None or float(delta) == 0:
            return None
        count = (float(limit) - float(start)) / float(delta)
        return max(int(math.ceil(count)), 0) if math.isfinite(count) else None
    if op in _SIZE_PRESERVING or op in _ELEMENTWISE:
        shapes = [_input_shape(view, n, known) for n in inputs if n]
        if any(s is None for s in shapes):
            return None
        if op in _ELEMENTWISE:
            return broadcast_size(shapes)
        return max((math.prod(s) for s in shapes), default=0)
    return None  # e.g. MatMul, Resize, Pad, OneHot without an inferred shape


def _count(dims: list[int]) -> int | None:
    """The elements of a shape of Python ints (None for a negative dim: not a shape)."""
    return math.prod(dims) if min(dims, default=0) >= 0 else None


#: Ops whose outputs never hold more elements than their largest input.
_SIZE_PRESERVING = frozenset({
    "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Cast", "CastLike", "Identity",
    "Slice", "Shape", "Size", "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd",
    "Neg", "Abs", "Sqrt", "Exp", "Log", "Reciprocal", "Floor", "Ceil", "Round", "Sign", "Not",
    "Relu", "Sigmoid", "Tanh", "Erf", "Softmax", "Split", "ArgMax", "ArgMin", "NonZero",
    "DequantizeLinear", "QuantizeLinear",
})
#: Broadcasting elementwise ops: output size is the broadcast of the inputs.
_ELEMENTWISE = frozenset({
    "Add", "Sub", "Mul", "Div", "Pow", "Equal", "Less", "Greater", "LessOrEqual",
    "GreaterOrEqual", "And", "Or", "Xor", "Where", "Max", "Min", "Mod", "Sum", "Mean",
    "BitShift",
})


def _static_shape_value(view: GraphView, node: NodeProto) -> np.ndarray | None:
    """The value of a ``Shape``/``Size`` node of a fully static input, else None."""
    if node.domain not in ("", "ai.onnx") or node.op_type not in ("Shape", "Size"):
        return None
    if not node.output or node.output[0] in view.protected or not node.input:
        return None
    shape = view.static_shape(node.input[0])
    if shape is None:
        return None
    if node.op_type == "Size":
        return np.array(math.prod(shape), dtype=np.int64)
    rank = len(shape)
    start, end = int(attr(node, "start", 0)), attr(node, "end", None)
    end = rank if end is None else int(end)
    start = min(max(start + rank if start < 0 else start, 0), rank)
    end = min(max(end + rank if end < 0 else end, 0), rank)
    return np.array(shape[start:end], dtype=np.int64)


def _evaluation_model(view: GraphView, nodes: list[NodeProto],
                      values: dict[str, np.ndarray]) -> ModelProto:
    """An input-free model computing every output of ``nodes`` from the constants."""
    produced = {o for n in nodes for o in n.output if o}
    needed = {i for n in nodes for i in n.input if i and i not in produced}
    initializers = []
    for name in sorted(needed):
        value = values.get(name)
        if value is None:
            value = view.const(name)
        if value is None:
            raise ValueError(f"constant folding: no value for '{name}'")
        initializers.append(array_to_tensor(value, name, view.context.weights))
    outputs = [helper.make_empty_tensor_value_info(o) for n in nodes for o in n.output if o]
    graph = helper.make_graph(list(nodes), "constant_folding", [], outputs, initializers)
    model = helper.make_model(graph, opset_imports=list(view.model.opset_import))
    model.ir_version = max(view.model.ir_version, 4)
    return model


def _evaluate(view: GraphView, context: OptimizerContext, nodes: list[NodeProto],
              known: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Values of the outputs of ``nodes`` (reading constants and the ``known`` values): all
    at once, else node by node (skipping the ones that fail and the ones depending on them)."""
    try:
        results = context.evaluate(_evaluation_model(view, nodes, known))
        names = [o for n in nodes for o in n.output if o]
        return dict(zip(names, results))
    except Exception:  # noqa: BLE001 - a node the kernels reject simply stays in the graph
        pass
    values: dict[str, np.ndarray] = dict(known)
    for node in nodes:
        if not all(not i or i in values or view.is_const(i) for i in node.input):
            continue
        try:
            results = context.evaluate(_evaluation_model(view, [node], values))
        except Exception:  # noqa: BLE001
            continue
        values.update(zip([o for o in node.output if o], results))
    return values


def _folded_nodes(view: GraphView, indices: list[int], values: dict[str, Any],
                  direct: set[str]) -> list[int]:
    """The evaluated nodes whose outputs are all reasonably sized tensors; a node stays when
    an input of it stays unevaluated (``direct``: the folded Shape/Size outputs)."""
    ok: dict[str, bool] = dict.fromkeys(direct, True)
    folded = []
    for index in indices:
        node = view.nodes[index]
        inputs_ok = all(not i or view.is_const(i) or ok.get(i, False) for i in node.input)
        outputs = [o for o in node.output if o]
        good = inputs_ok and all(
            isinstance(values.get(o), np.ndarray) and values[o].size <= MAX_FOLDED_ELEMENTS
            for o in outputs)
        ok.update((o, good) for o in outputs)
        if good:
            folded.append(index)
    return folded


def _apply(view: GraphView, folded: set[int], values: dict[str, Any]) -> bool:
    """Remove the folded nodes; their outputs still read elsewhere become initializers."""
    remaining = [n for i, n in enumerate(view.nodes) if i not in folded]
    read = {i for n in remaining for i in n.input if i} | view.protected
    new_inits = [array_to_tensor(values[out], out, view.context.weights)
                 for index in sorted(folded) for out in view.nodes[index].output
                 if out and out in read]
    view.write_nodes(remaining, new_inits)
    return True
