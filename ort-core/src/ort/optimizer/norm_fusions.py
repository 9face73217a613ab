"""Level-2 (``ORT_ENABLE_EXTENDED``) fusions of layer normalization's primitive forms.

Each pass fires only where ``context.has_kernel`` finds a kernel for the op it produces and
only on float32 values (the type ONNX Runtime's CPU kernels of these contrib ops take), so a
saved optimized model also runs on ONNX Runtime:

* ``LayerNormFusion``: ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul, Add becomes
  ``LayerNormalization`` (ONNX, opset 17+) or else ``com.microsoft:LayerNormalization``.
* ``SkipLayerNormFusion``: ``Add(input, skip) [+ bias] -> LayerNormalization`` becomes
  ``com.microsoft:SkipLayerNormalization``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import ModelProto, NodeProto

from .context import OptimizerContext
from .patterns import (
    MS_DOMAIN, FLOAT32, GraphView, Rewriter, attr, bias_operand, close, const_operand,
    fuse_node_pattern, is_default_domain, other_input,
)

__all__ = ["fuse_layer_norm", "fuse_skip_layer_norm", "take_bias_add", "skip_norm_outputs"]


def _reduce_axes(view: GraphView, node: NodeProto) -> list[int] | None:
    """The axes of a keepdims ReduceMean (attribute before opset 18, input after)."""
    if int(attr(node, "keepdims", 1)) != 1:
        return None
    if len(node.input) > 1 and node.input[1]:
        axes = view.const(node.input[1])
        return None if axes is None else [int(a) for a in axes.reshape(-1)]
    axes = attr(node, "axes")
    return None if axes is None else [int(a) for a in axes]


def _trailing_axis(axes: list[int], rank: int | None) -> int | None:
    """The first axis when ``axes`` are the last ``len(axes)`` axes, as a negative axis."""
    if not axes:
        return None
    if rank is not None:
        axes = [a - rank if a >= 0 else a for a in axes]
    axes = sorted(axes)
    return axes[0] if axes == list(range(-len(axes), 0)) else None


def _single_consumer_op(view: GraphView, value: str, op_type: str) -> tuple[int, NodeProto] | None:
    found = view.sole_consumer(value)
    if found is None or found[1].op_type != op_type or not is_default_domain(found[1]):
        return None
    return found


def _match_layer_norm(view: GraphView, rewriter: Rewriter, index: int, mean1: NodeProto) -> None:
    x = mean1.input[0]
    axes = _reduce_axes(view, mean1)
    shape = view.shape(x)
    axis = None if axes is None else _trailing_axis(axes, None if shape is None else len(shape))
    if axis is None or not view.is_float(x, FLOAT32):
        return
    normalized = shape[axis:] if shape is not None else None
    if normalized is None or not all(isinstance(d, int) and d > 0 for d in normalized):
        # x's last dim unknown (a computed Reshape before it, as Paddle exports write):
        # the 1-D scale of a last-axis norm tells it, as in onnxruntime's fusion
        normalized = _size_from_scale(view, x, axis, mean1)
        if normalized is None:
            return
    sub = _single_consumer_op(view, mean1.output[0], "Sub")
    if sub is None or sub[1].input[0] != x or sub[1].input[1] != mean1.output[0]:
        return
    d = sub[1].output[0]
    readers = view.consumers_of(d)
    if d in view.protected or len(readers) != 2:
        return
    power = next(((i, n) for i, n in readers if n.op_type in ("Pow", "Mul")), None)
    divide = next(((i, n) for i, n in readers if n.op_type == "Div"), None)
    if power is None or divide is None or divide[1].input[0] != d:
        return
    if power[1].op_type == "Pow" and (power[1].input[0] != d
                                      or not close(view.scalar(power[1].input[1]), 2.0, 1e-7)):
        return
    if power[1].op_type == "Mul" and list(power[1].input) != [d, d]:
        return
    mean2 = _single_consumer_op(view, power[1].output[0], "ReduceMean")
    if mean2 is None or _reduce_axes(view, mean2[1]) is None:
        return
    if _trailing_axis(_reduce_axes(view, mean2[1]), None if shape is None else len(shape)) \
            != axis:
        return
    add_eps = _single_consumer_op(view, mean2[1].output[0], "Add")
    if add_eps is None:
        return
    eps = const_operand(view, add_eps[1])
    if eps is None or add_eps[1].input[eps[0]] != mean2[1].output[0] or eps[1] < 0:
        return
    sqrt = _single_consumer_op(view, add_eps[1].output[0], "Sqrt")
    if sqrt is None or _single_consumer_op(view, sqrt[1].output[0], "Div") is None:
        return
    if divide[1].input[1] != sqrt[1].output[0]:
        return
    indices = [index, sub[0], power[0], mean2[0], add_eps[0], sqrt[0], divide[0]]
    out = divide[1].output[0]
    scale = _affine_constant(view, out, "Mul", normalized)
    if scale is not None:
        indices.append(scale[0])
        out = scale[2]
    bias = _affine_constant(view, out, "Add", normalized)
    if bias is not None:
        indices.append(bias[0])
        out = bias[2]
    if rewriter.claimed(indices):
        return
    if (view.opset() or 0) >= 17 and view.can_run("", "LayerNormalization"):
        domain = ""
    elif view.can_run(MS_DOMAIN, "LayerNormalization"):
        domain = MS_DOMAIN
    else:
        return
    scale_array = scale[1] if scale is not None else np.ones(normalized, np.float32)
    inputs = [x, rewriter.add_initializer(scale_array, f"{x}_LayerNorm_scale")]
    if bias is not None:
        inputs.append(rewriter.add_initializer(bias[1], f"{x}_LayerNorm_bias"))
    node = rewriter.make_node("LayerNormalization", inputs, [out], "LayerNorm_fused",
                              domain=domain, axis=axis, epsilon=float(eps[1]))
    rewriter.replace(indices, [node])


def _size_from_scale(view: GraphView, x: str, axis: int,
                     mean1: NodeProto) -> tuple[int, ...] | None:
    """The normalized shape ``(C,)`` of a last-axis norm of ``x`` whose rank or last dim is
    unknown, read from the 1-D float32 scale constant that multiplies the normalized value
    (``Div(Sub(x, mean), ...)``); None when there is no such scale."""
    if axis != -1:
        return None
    sub = _single_consumer_op(view, mean1.output[0], "Sub")
    divide = None
    if sub is not None:
        divide = next((n for _, n in view.consumers_of(sub[1].output[0])
                       if n.op_type == "Div"), None)
    scale = _single_consumer_op(view, divide.output[0], "Mul") if divide is not None else None
    if scale is None:
        return None
    constant = view.const(other_input(scale[1], divide.output[0]) or "")
    if constant is None or constant.dtype != np.float32 or constant.ndim != 1 \
            or constant.shape[0] < 2:
        return None
    return (int(constant.shape[0]),)


def _affine_constant(view: GraphView, value: str, op_type: str,
                     normalized: tuple[int, ...]) -> tuple[int, np.ndarray, str] | None:
    """(index, constant broadcast to the normalized shape, output) of the sole ``op_type``
    node applying a float32 constant to ``value`` along the normalized axes only."""
    found = _single_consumer_op(view, value, op_type)
    if found is None:
        return None
    other = other_input(found[1], value)
    constant = view.const(other) if other else None
    if constant is None or constant.dtype != np.float32:
        return None
    full = broadcast_param(constant, normalized)
    return None if full is None else (found[0], full, found[1].output[0])


def broadcast_param(constant: np.ndarray, normalized: tuple[int, ...]) -> np.ndarray | None:
    """A normalization's scale or bias constant broadcast to the normalized shape (a new
    C-contiguous array), or None when it does not broadcast there."""
    if constant.ndim > len(normalized):
        return None
    try:
        return np.asarray(np.broadcast_to(constant, normalized), order="C")
    except ValueError:
        return None


def fuse_layer_norm(model: ModelProto, context: OptimizerContext) -> bool:
    """The decomposed layer normalization subgraph -> LayerNormalization."""
    return fuse_node_pattern(model, context, ["ReduceMean"], _match_layer_norm)


def _layer_norm_parts(view: GraphView, ln: NodeProto) -> tuple[str, str | None, float] | None:
    """(scale, bias, epsilon) of a last-axis LayerNormalization with only output 0 in use."""
    if any(o for o in ln.output[1:]):
        return None
    rank = view.rank(ln.input[0])
    axis = int(attr(ln, "axis", -1))
    if axis != -1 and (rank is None or axis != rank - 1):
        return None
    if int(attr(ln, "stash_type", 1)) != 1:
        return None
    scale = ln.input[1] if len(ln.input) > 1 else ""
    scale_shape = view.shape(scale) if scale else None
    if scale_shape is None or len(scale_shape) != 1:
        return None
    bias = ln.input[2] if len(ln.input) > 2 and ln.input[2] else None
    if bias is not None and view.rank(bias) != 1:
        return None
    return scale, bias, float(attr(ln, "epsilon", 1e-5))


def take_bias_add(view: GraphView, rewriter: Rewriter, inputs: list[str],
                  shape: Any) -> tuple[list[str], str | None, list[int]]:
    """A skip-norm's residual operands with a bias Add taken in: when one operand is
    ``X + bias`` (a 1-D constant bias, X of ``shape``, read only there), it becomes X.
    Returns (operands, the bias or None, the Add's node index as a list of 0 or 1)."""
    inputs = list(inputs)
    for side in (0, 1):
        inner = view.producer_of(inputs[side], "Add")
        if (inner is None or view.sole_consumer(inputs[side]) is None
                or rewriter.claimed([inner[0]])):
            continue
        operands = bias_operand(view, inner[1])
        if operands is not None and view.shape(operands[0]) == shape:
            inputs[side] = operands[0]
            return inputs, operands[1], [inner[0]]
    return inputs, None, []


def skip_norm_outputs(view: GraphView, add: NodeProto, norm: NodeProto,
                      index: int) -> list[str] | None:
    """The outputs of a skip-norm fusing residual ``add`` into ``norm`` (node ``index``): the
    norm's output, plus the sum as ``input_skip_bias_sum`` when others read it. None when a
    reader of the sum comes before the norm (it may compute the norm's own scale, e.g.
    CastLike(w, sum): fusing would make a cycle)."""
    outputs = [norm.output[0]]
    readers = [i for i in view.consumers.get(add.output[0], []) if i != index]
    if add.output[0] in view.protected or readers:
        if any(i < index for i in readers):
            return None
        outputs += ["", "", add.output[0]]
    return outputs


def _match_skip_layer_norm(view: GraphView, rewriter: Rewriter, index: int,
                           ln: NodeProto) -> None:
    parts = _layer_norm_parts(view, ln)
    if parts is None:
        return
    found = view.producer_of(ln.input[0], "Add")
    if found is None or rewriter.claimed([found[0]]):
        return
    add_index, add = found
    if len(add.input) != 2:
        return
    a, b = add.input
    shape_a, shape_b = view.shape(a), view.shape(b)
    if (shape_a is None or shape_a != shape_b or len(shape_a) not in (2, 3)
            or any(d is None for d in shape_a) or not view.is_float(a, FLOAT32)
            or not view.is_float(b, FLOAT32)):
        return
    inputs, bias, bias_add = take_bias_add(view, rewriter, [a, b], shape_a)
    indices = [add_index, index] + bias_add
    scale, beta, epsilon = parts
    node_inputs = [inputs[0], inputs[1], scale, beta or ""] + ([bias] if bias else [])
    while node_inputs[-1] == "":
        node_inputs.pop()
    outputs = skip_norm_outputs(view, add, ln, index)
    if outputs is None:
        return
    node = rewriter.make_node("SkipLayerNormalization", node_inputs, outputs,
                              "SkipLayerNorm_fused", domain=MS_DOMAIN, epsilon=epsilon)
    rewriter.replace(indices, [node])


def fuse_skip_layer_norm(model: ModelProto, context: OptimizerContext) -> bool:
    """Add of two same-shaped values (plus a bias Add) before a last-axis LayerNormalization
    -> com.microsoft:SkipLayerNormalization."""
    if not GraphView.of(model, context).can_run(MS_DOMAIN, "SkipLayerNormalization"):
        return False
    changed = fuse_node_pattern(model, context, ["LayerNormalization"], _match_skip_layer_norm)
    return fuse_node_pattern(model, context, ["LayerNormalization"], _match_skip_layer_norm,
                             domain=MS_DOMAIN) or changed
