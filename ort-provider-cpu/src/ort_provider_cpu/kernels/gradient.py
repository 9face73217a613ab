"""CPU kernel: ``ai.onnx.preview.training:Gradient``, reverse-mode differentiation of the part of
the graph that computes ``y`` from ``xs`` (and ``zs``).

At session creation the kernel slices the enclosing graph backwards from ``y`` to the names in
``xs``/``zs``, compiles that slice as a subgraph that also returns every intermediate value
(the forward pass runs on the ordinary kernels), and at run time walks the slice in reverse
applying one vector-Jacobian product rule per op. ``y`` need not be a scalar: the seed is a
tensor of ones, i.e. the gradient of ``sum(y)``, as the spec's examples assume.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from onnx import helper

from ort.ep import KernelTable, NodeInfo, attribute_value

kernels = KernelTable()

# A VJP rule: (node attrs, input values, output values, output gradient) -> input gradients.
VjpRule = Callable[[dict[str, Any], list[Any], list[Any], np.ndarray], list[Any]]


def _unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum a broadcast gradient back down to an operand's shape."""
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad


def _binary(d_a: Callable, d_b: Callable) -> VjpRule:
    def rule(attrs, ins, outs, g):
        a, b = ins
        return [_unbroadcast(d_a(a, b, outs[0], g), np.shape(a)),
                _unbroadcast(d_b(a, b, outs[0], g), np.shape(b))]
    return rule


def _unary(derivative: Callable) -> VjpRule:
    return lambda attrs, ins, outs, g: [g * derivative(ins[0], outs[0])]


def _matmul(attrs, ins, outs, g):
    a, b = ins
    a2 = a if a.ndim > 1 else a[None, :]
    b2 = b if b.ndim > 1 else b[:, None]
    g2 = g.reshape(np.matmul(a2, b2).shape)
    ga = np.matmul(g2, np.swapaxes(b2, -1, -2))
    gb = np.matmul(np.swapaxes(a2, -1, -2), g2)
    ga = ga.reshape(a.shape) if a.ndim == 1 else _unbroadcast(ga, a.shape)
    gb = gb.reshape(b.shape) if b.ndim == 1 else _unbroadcast(gb, b.shape)
    return [ga, gb]


def _gemm(attrs, ins, outs, g):
    a, b = ins[0], ins[1]
    alpha, beta = attrs.get("alpha", 1.0), attrs.get("beta", 1.0)
    op_a = a.T if attrs.get("transA", 0) else a
    op_b = b.T if attrs.get("transB", 0) else b
    g_op_a = alpha * g @ op_b.T
    g_op_b = alpha * op_a.T @ g
    grads = [g_op_a.T if attrs.get("transA", 0) else g_op_a,
             g_op_b.T if attrs.get("transB", 0) else g_op_b]
    if len(ins) > 2 and ins[2] is not None:
        grads.append(_unbroadcast(beta * g, np.shape(ins[2])))
    return grads


def _reduce_axes(attrs, ins, x):
    axes = attrs.get("axes")
    if axes is None and len(ins) > 1 and ins[1] is not None:
        axes = [int(a) for a in np.asarray(ins[1]).reshape(-1)]
    if not axes:
        return tuple(range(x.ndim))
    return tuple(int(a) % x.ndim for a in axes)


def _reduce(scale_by_count: bool) -> VjpRule:
    def rule(attrs, ins, outs, g):
        x = ins[0]
        axes = _reduce_axes(attrs, ins, x)
        if not attrs.get("keepdims", 1):
            g = np.expand_dims(g, axes)
        grad = np.broadcast_to(g, x.shape)
        if scale_by_count:
            grad = grad / np.prod([x.shape[a] for a in axes])
        return [grad] + [None] * (len(ins) - 1)
    return rule


def _reshape_like(attrs, ins, outs, g):
    return [g.reshape(np.shape(ins[0]))] + [None] * (len(ins) - 1)


def _transpose(attrs, ins, outs, g):
    perm = attrs.get("perm") or list(range(g.ndim))[::-1]
    return [np.transpose(g, np.argsort(perm))]


def _softmax(attrs, ins, outs, g):
    y = outs[0]
    axis = attrs.get("axis", -1)
    return [y * (g - (g * y).sum(axis=axis, keepdims=True))]


_RULES: dict[str, VjpRule] = {
    "Identity": lambda attrs, ins, outs, g: [g],
    "Add": _binary(lambda a, b, y, g: g, lambda a, b, y, g: g),
    "Sub": _binary(lambda a, b, y, g: g, lambda a, b, y, g: -g),
    "Mul": _binary(lambda a, b, y, g: g * b, lambda a, b, y, g: g * a),
    "Div": _binary(lambda a, b, y, g: g / b, lambda a, b, y, g: -g * a / (b * b)),
    "Pow": _binary(lambda a, b, y, g: g * b * np.power(a, b - 1),
                   lambda a, b, y, g: g * y * np.log(np.where(a > 0, a, 1))),
    "Neg": _unary(lambda x, y: -1),
    "Exp": _unary(lambda x, y: y),
    "Log": _unary(lambda x, y: 1 / x),
    "Sqrt": _unary(lambda x, y: 0.5 / y),
    "Reciprocal": _unary(lambda x, y: -y * y),
    "Relu": _unary(lambda x, y: (x > 0).astype(x.dtype)),
    "Sigmoid": _unary(lambda x, y: y * (1 - y)),
    "Tanh": _unary(lambda x, y: 1 - y * y),
    "Sin": _unary(lambda x, y: np.cos(x)),
    "Cos": _unary(lambda x, y: -np.sin(x)),
    "Abs": _unary(lambda x, y: np.sign(x)),
    "MatMul": _matmul,
    "Gemm": _gemm,
    "ReduceSum": _reduce(False),
    "ReduceMean": _reduce(True),
    "Reshape": _reshape_like,
    "Flatten": _reshape_like,
    "Squeeze": _reshape_like,
    "Unsqueeze": _reshape_like,
    "Transpose": _transpose,
    "Softmax": _softmax,
}


def _backward_slice(graph: Any, y: str, stop: set[str]) -> list[Any]:
    """The nodes of ``graph`` on which ``y`` depends, stopping at ``stop``, in graph order."""
    producer = {out: n for n in graph.nodes for out in n.outputs if out}
    needed: set[int] = set()
    pending = [y]
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name in seen or name in stop or name not in producer:
            continue
        seen.add(name)
        node = producer[name]
        needed.add(node.index)
        pending.extend(n for n in node.inputs if n)
    return [n for n in graph.nodes if n.index in needed]


@kernels.register("Gradient", 1, domain="ai.onnx.preview.training")
def gradient(node: NodeInfo):
    """Gradient 1: the gradients of ``y`` with respect to each name in ``xs`` (``zs`` are
    inputs treated as constants), by reverse-mode differentiation of the graph slice."""
    xs = list(node.attrs["xs"])
    zs = list(node.attrs.get("zs") or [])
    y = node.attrs["y"]
    graph = node.graph
    nodes = _backward_slice(graph, y, set(xs) | set(zs))
    unsupported = sorted({n.op_type for n in nodes if n.op_type not in _RULES})
    if unsupported:
        raise NotImplementedError(
            f"{node.describe()}: no derivative rule for {unsupported}; differentiable ops are "
            f"{sorted(_RULES)}"
        )
    values = sorted({out for n in nodes for out in n.outputs if out})
    body = helper.make_graph(
        [n.proto for n in nodes], f"{node.name}_forward",
        [helper.make_value_info(name, graph.value_types[name]) if name in graph.value_types
         else helper.make_empty_tensor_value_info(name) for name in xs + zs],
        [helper.make_empty_tensor_value_info(name) for name in values],
    )
    forward = node.subgraph(body)
    steps = [(n, {a.name: attribute_value(a) for a in n.attributes}) for n in reversed(nodes)]
    constants = graph.initializers
    outer = {name: constants[name] for name in forward.outer_names if name in constants}

    def compute(*inputs):
        env = dict(zip(xs + zs, inputs))
        env.update(zip(values, forward.run(list(inputs), outer)))
        grads: dict[str, np.ndarray] = {y: np.ones_like(env[y])}
        for n, attrs in steps:
            outs = [env.get(o) for o in n.outputs]
            g = grads.get(n.outputs[0])
            if g is None:
                continue
            ins = [env.get(i, constants.get(i)) if i else None for i in n.inputs]
            for name, value, grad in zip(n.inputs, ins, _RULES[n.op_type](attrs, ins, outs, g)):
                if name and grad is not None:
                    grad = np.asarray(grad, dtype=np.asarray(value).dtype)
                    grads[name] = grads[name] + grad if name in grads else grad
        return tuple(grads.get(x, np.zeros_like(env[x])) for x in xs)

    return compute
