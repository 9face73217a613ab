"""Level-2 (``ORT_ENABLE_EXTENDED``) fusions into ops some session provider can run.

Each pass fires only where ``context.has_kernel`` finds a kernel for the op it produces and
only on float32 values (the type ONNX Runtime's CPU kernels of these contrib ops take), so a
saved optimized model also runs on ONNX Runtime:

* ``ConvActivationFusion``: ``Conv -> Relu|LeakyRelu|Sigmoid|Tanh|Clip|HardSigmoid`` becomes
  ``com.microsoft:FusedConv`` (``activation``, ``activation_params``).
* ``ConvAddActivationFusion``: ``Conv -> Add(same-shaped Z) -> activation`` becomes
  ``FusedConv(X, W, B, Z)`` (``Y = activation(conv + Z)``).
* ``MatMulAddFusion``: ``MatMul(A, B) -> Add(C)`` with a 2-D ``A`` and a ``C`` that broadcasts
  to the product becomes ``Gemm``.
* ``GemmActivationFusion``: ``Gemm -> activation`` becomes ``com.microsoft:FusedGemm``.
* ``GeluFusion``: ``x * 0.5 * (1 + erf(x / sqrt(2)))`` (its Mul orders, ``Mul(1/sqrt(2))``
  for the Div) becomes ``Gelu`` (ONNX Gelu-20 when the model's opset allows, else
  ``com.microsoft:Gelu``); ``FastGeluFusion``: the tanh approximation
  ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`` becomes ``com.microsoft:FastGelu``.
* ``BiasGeluFusion``: ``Add(x, bias) -> Gelu`` becomes ``com.microsoft:BiasGelu`` (and
  ``FastGelu``'s optional bias input).
* ``LayerNormFusion``: ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul, Add becomes
  ``LayerNormalization`` (ONNX, opset 17+) or else ``com.microsoft:LayerNormalization``.
* ``SkipLayerNormFusion``: ``Add(input, skip) [+ bias] -> LayerNormalization`` becomes
  ``com.microsoft:SkipLayerNormalization``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from onnx import ModelProto, NodeProto, TensorProto, helper

from . import OptimizerContext, register_pass
from .patterns import (
    MS_DOMAIN, GraphView, Rewriter, attr, close, const_operand, fuse_node_pattern,
    is_default_domain, other_input,
)

__all__ = [
    "fuse_conv_activation", "fuse_conv_add_activation", "fuse_matmul_add",
    "fuse_gemm_activation", "fuse_gelu", "fuse_fast_gelu", "fuse_bias_gelu",
    "fuse_layer_norm", "fuse_skip_layer_norm",
]

_FLOAT32 = (TensorProto.FLOAT,)
_FLOAT_MAX = float(np.finfo(np.float32).max)

# ------------------------------------------------------------------------------------------
# activations
# ------------------------------------------------------------------------------------------


def _clip_bounds(view: GraphView, node: NodeProto) -> list[float] | None:
    """[min, max] of a Clip with constant (or absent) bounds."""
    if len(node.input) == 1 and (node.attribute or (view.opset() or 0) < 11):
        return [float(attr(node, "min", -_FLOAT_MAX)), float(attr(node, "max", _FLOAT_MAX))]
    bounds = []
    for i, default in ((1, -_FLOAT_MAX), (2, _FLOAT_MAX)):
        if i < len(node.input) and node.input[i]:
            value = view.scalar(node.input[i])
            if value is None:
                return None
            bounds.append(value)
        else:
            bounds.append(default)
    return bounds


def _conv_activation(view: GraphView, node: NodeProto) -> tuple[str, list[float]] | None:
    """(activation, activation_params) of FusedConv for an activation node."""
    if not is_default_domain(node):
        return None
    op = node.op_type
    if op in ("Relu", "Sigmoid", "Tanh"):
        return op, []
    if op == "LeakyRelu":
        return op, [float(attr(node, "alpha", 0.01))]
    if op == "HardSigmoid":
        return op, [float(attr(node, "alpha", 0.2)), float(attr(node, "beta", 0.5))]
    if op == "Clip":
        bounds = _clip_bounds(view, node)
        return None if bounds is None else (op, bounds)
    return None


#: FusedGemm activations and the ONNX attributes they take (with defaults).
_GEMM_ACTIVATIONS: dict[str, dict[str, float]] = {
    "Relu": {}, "Sigmoid": {}, "Tanh": {}, "Softsign": {}, "Softplus": {},
    "LeakyRelu": {"alpha": 0.01}, "HardSigmoid": {"alpha": 0.2, "beta": 0.5},
    "Elu": {"alpha": 1.0}, "ThresholdedRelu": {"alpha": 1.0},
    "Selu": {"alpha": 1.67326319217681884765625, "gamma": 1.05070102214813232421875},
}


def _gemm_activation(node: NodeProto) -> dict[str, Any] | None:
    """FusedGemm attributes (``activation``, ``activation_alpha`` ...) for an activation."""
    if not is_default_domain(node) or node.op_type not in _GEMM_ACTIVATIONS:
        return None
    attrs: dict[str, Any] = {"activation": node.op_type}
    for name, default in _GEMM_ACTIVATIONS[node.op_type].items():
        attrs[f"activation_{name}"] = float(attr(node, name, default))
    return attrs


def _sole_activation(view: GraphView, value: str, rewriter: Rewriter):
    """(index, node) of the single node reading ``value``, if unclaimed."""
    found = view.sole_consumer(value)
    if found is None or rewriter.claimed([found[0]]) or len(found[1].output) != 1:
        return None
    return found


def _match_conv_activation(view: GraphView, rewriter: Rewriter, index: int,
                           conv: NodeProto) -> None:
    if len(conv.output) != 1 or not view.is_float(conv.input[0], _FLOAT32):
        return
    found = _sole_activation(view, conv.output[0], rewriter)
    if found is None:
        return
    act = _conv_activation(view, found[1])
    if act is None:
        return
    rewriter.replace([index, found[0]], [_fused_conv(rewriter, conv, list(conv.input),
                                                     found[1].output[0], act)])


def _fused_conv(rewriter: Rewriter, conv: NodeProto, inputs: list[str], output: str,
                act: tuple[str, list[float]] | None) -> NodeProto:
    """A FusedConv with ``conv``'s attributes and the activation ``act`` (None: no
    activation attribute, i.e. identity, as onnxruntime reads it)."""
    extra = {} if act is None else {"activation": act[0]}
    node = rewriter.make_node("FusedConv", inputs, [output], f"{conv.name or 'Conv'}_fused",
                              domain=MS_DOMAIN, **extra)
    node.attribute.extend(a for a in conv.attribute)
    if act is not None and act[1]:
        node.attribute.append(helper.make_attribute("activation_params", act[1]))
    return node


@register_pass(2, "ConvActivationFusion")
def fuse_conv_activation(model: ModelProto, context: OptimizerContext) -> bool:
    """Conv followed only by Relu/LeakyRelu/Sigmoid/Tanh/Clip/HardSigmoid -> FusedConv."""
    view_check = GraphView.of(model, context)
    if not view_check.can_run(MS_DOMAIN, "FusedConv"):
        return False
    return fuse_node_pattern(model, context, ["Conv"], _match_conv_activation)


def _match_conv_add_activation(view: GraphView, rewriter: Rewriter, index: int,
                               add: NodeProto) -> None:
    if len(add.input) != 2 or add.input[0] == add.input[1]:
        return
    found_act = _sole_activation(view, add.output[0], rewriter)
    act = _conv_activation(view, found_act[1]) if found_act is not None else None
    if act is None:  # Conv + Add alone (MobileNet's residuals): FusedConv without activation
        found_act = None
    for side in (0, 1):
        conv_found = view.producer_of(add.input[side], "Conv")
        if conv_found is None or rewriter.claimed([conv_found[0]]):
            continue
        conv_index, conv = conv_found
        z = add.input[1 - side]
        if view.sole_consumer(conv.output[0]) is None or len(conv.output) != 1:
            continue
        shape, z_shape = view.shape(conv.output[0]), view.shape(z)
        if (shape is None or shape != z_shape or any(d is None for d in shape)
                or not view.is_float(z, _FLOAT32) or not view.is_float(conv.input[0], _FLOAT32)):
            continue
        inputs = list(conv.input) + [""] * (3 - len(conv.input)) + [z]
        if found_act is None:
            rewriter.replace([conv_index, index],
                             [_fused_conv(rewriter, conv, inputs, add.output[0], None)])
        else:
            rewriter.replace([conv_index, index, found_act[0]],
                             [_fused_conv(rewriter, conv, inputs, found_act[1].output[0], act)])
        return


@register_pass(2, "ConvAddActivationFusion")
def fuse_conv_add_activation(model: ModelProto, context: OptimizerContext) -> bool:
    """Conv -> Add(Z of the same shape) [-> activation]: FusedConv with the sum input Z."""
    if not GraphView.of(model, context).can_run(MS_DOMAIN, "FusedConv"):
        return False
    return fuse_node_pattern(model, context, ["Add"], _match_conv_add_activation)


# ------------------------------------------------------------------------------------------
# MatMul + Add -> Gemm, Gemm + activation -> FusedGemm
# ------------------------------------------------------------------------------------------


def _same_dim(a: Any, b: Any) -> bool:
    return a is not None and a == b


def _match_matmul_add(view: GraphView, rewriter: Rewriter, index: int, add: NodeProto) -> None:
    for side in (0, 1):
        found = view.producer_of(add.input[side], "MatMul") if len(add.input) == 2 else None
        if found is None or rewriter.claimed([found[0]]):
            continue
        mm_index, matmul = found
        if view.sole_consumer(matmul.output[0]) is None:
            continue
        a_shape, b_shape = view.shape(matmul.input[0]), view.shape(matmul.input[1])
        c = add.input[1 - side]
        c_shape = view.shape(c)
        if a_shape is None or b_shape is None or c_shape is None:
            continue
        if len(a_shape) != 2 or len(b_shape) != 2 or len(c_shape) > 2:
            continue
        if not all(view.is_float(n, (TensorProto.FLOAT, TensorProto.DOUBLE))
                   for n in (matmul.input[0], matmul.input[1], c)):
            continue
        m, n = a_shape[0], b_shape[1]
        padded = (1,) * (2 - len(c_shape)) + tuple(c_shape)
        if not ((padded[0] == 1 or _same_dim(padded[0], m))
                and (padded[1] == 1 or _same_dim(padded[1], n))):
            continue
        gemm = rewriter.make_node("Gemm", [matmul.input[0], matmul.input[1], c], [add.output[0]],
                                  f"{matmul.name or 'MatMul'}_gemm")
        rewriter.replace([mm_index, index], [gemm])
        return


@register_pass(2, "MatMulAddFusion")
def fuse_matmul_add(model: ModelProto, context: OptimizerContext) -> bool:
    """MatMul of a 2-D A followed only by an Add of a C that broadcasts to the product: Gemm."""
    view = GraphView.of(model, context)
    if (view.opset() or 0) < 7 or not view.can_run("", "Gemm"):
        return False  # Gemm 1-6 broadcasts C only with broadcast=1
    return fuse_node_pattern(model, context, ["Add"], _match_matmul_add)


def _match_gemm_activation(view: GraphView, rewriter: Rewriter, index: int,
                           gemm: NodeProto) -> None:
    if len(gemm.output) != 1 or not view.is_float(gemm.input[0], _FLOAT32):
        return
    found = _sole_activation(view, gemm.output[0], rewriter)
    if found is None:
        return
    act = _gemm_activation(found[1])
    if act is None:
        return
    node = rewriter.make_node("FusedGemm", list(gemm.input), [found[1].output[0]],
                              f"{gemm.name or 'Gemm'}_fused", domain=MS_DOMAIN, **act)
    node.attribute.extend(gemm.attribute)
    rewriter.replace([index, found[0]], [node])


@register_pass(2, "GemmActivationFusion")
def fuse_gemm_activation(model: ModelProto, context: OptimizerContext) -> bool:
    """Gemm followed only by an elementwise activation -> com.microsoft:FusedGemm."""
    view = GraphView.of(model, context)
    if not view.can_run(MS_DOMAIN, "FusedGemm"):
        return False
    opset = view.opset() or 0
    if opset < 7:
        return False  # Gemm 1-6 broadcasting rules differ
    return fuse_node_pattern(model, context, ["Gemm"], _match_gemm_activation)


# ------------------------------------------------------------------------------------------
# Gelu
# ------------------------------------------------------------------------------------------


def _match_half_x_product(view: GraphView, rewriter: Rewriter, x: str,
                          s: str) -> tuple[list[int], str] | None:
    """Match ``0.5 * x * s`` in any of its Mul orders: (node indices, output)."""
    first = view.sole_consumer(s)
    if first is None or first[1].op_type != "Mul" or not is_default_domain(first[1]):
        return None
    mul1_index, mul1 = first
    other = other_input(mul1, s)
    if other is None:
        return None
    if other == x:  # (x * s) * 0.5
        second = view.sole_consumer(mul1.output[0])
        if second is None or second[1].op_type != "Mul":
            return None
        half = const_operand(view, second[1])
        if half is None or not close(half[1], 0.5) or second[1].input[half[0]] != mul1.output[0]:
            return None
        return [mul1_index, second[0]], second[1].output[0]
    if close(view.scalar(other), 0.5):  # x * (s * 0.5)
        second = view.sole_consumer(mul1.output[0])
        if (second is None or second[1].op_type != "Mul"
                or other_input(second[1], mul1.output[0]) != x):
            return None
        return [mul1_index, second[0]], second[1].output[0]
    found = view.producer_of(other, "Mul")  # (x * 0.5) * s
    if found is None or not view.internal(other, [mul1_index]):
        return None
    half = const_operand(view, found[1])
    if half is None or not close(half[1], 0.5) or found[1].input[half[0]] != x:
        return None
    return [found[0], mul1_index], mul1.output[0]


def _match_one_plus(view: GraphView, value: str) -> tuple[int, str] | None:
    """(index, output) of the sole ``Add(value, 1)`` reading ``value``."""
    found = view.sole_consumer(value)
    if found is None or found[1].op_type != "Add" or not is_default_domain(found[1]):
        return None
    one = const_operand(view, found[1])
    if one is None or not close(one[1], 1.0) or found[1].input[one[0]] != value:
        return None
    return found[0], found[1].output[0]


def _gelu_input(view: GraphView, erf: NodeProto) -> tuple[int, str] | None:
    """(index, x) of the ``x / sqrt(2)`` (or ``x * (1/sqrt(2))``) feeding an Erf."""
    found = view.producer_of(erf.input[0], ("Div", "Mul"))
    if found is None or view.sole_consumer(erf.input[0]) is None:
        return None
    index, node = found
    operand = const_operand(view, node)
    if operand is None:
        return None
    x_index, value = operand
    if node.op_type == "Div" and (x_index != 0 or not close(value, math.sqrt(2.0))):
        return None
    if node.op_type == "Mul" and not close(value, 1 / math.sqrt(2.0)):
        return None
    return index, node.input[x_index]


def _match_gelu(view: GraphView, rewriter: Rewriter, index: int, erf: NodeProto) -> None:
    found = _gelu_input(view, erf)
    if found is None:
        return
    scaled_index, x = found
    if not view.is_float(x, _FLOAT32):
        return
    plus = _match_one_plus(view, erf.output[0])
    if plus is None:
        return
    tail = _match_half_x_product(view, rewriter, x, plus[1])
    if tail is None:
        return
    indices = [scaled_index, index, plus[0]] + tail[0]
    if rewriter.claimed(indices):
        return
    if _onnx_gelu(view):
        node = rewriter.make_node("Gelu", [x], [tail[1]], "Gelu_fused")
    else:
        node = rewriter.make_node("Gelu", [x], [tail[1]], "Gelu_fused", domain=MS_DOMAIN)
    rewriter.replace(indices, [node])


def _onnx_gelu(view: GraphView) -> bool:
    return (view.opset() or 0) >= 20 and view.can_run("", "Gelu")


@register_pass(2, "GeluFusion")
def fuse_gelu(model: ModelProto, context: OptimizerContext) -> bool:
    """The exact (erf) GELU subgraph -> Gelu."""
    view = GraphView.of(model, context)
    if not (_onnx_gelu(view) or view.can_run(MS_DOMAIN, "Gelu")):
        return False
    return fuse_node_pattern(model, context, ["Erf"], _match_gelu)


def _cube_of(view: GraphView, value: str) -> tuple[list[int], str] | None:
    """(indices, x) when ``value`` is ``Pow(x, 3)`` or ``x * (x * x)`` (any order)."""
    found = view.producer_of(value, ("Pow", "Mul"))
    if found is None:
        return None
    index, node = found
    if node.op_type == "Pow":
        return ([index], node.input[0]) if close(view.scalar(node.input[1]), 3.0) else None
    for side in (0, 1):
        square = view.producer_of(node.input[side], "Mul")
        if square is None or square[1].input[0] != square[1].input[1]:
            continue
        x = square[1].input[0]
        if node.input[1 - side] == x and view.internal(node.input[side], [index]):
            return [index, square[0]], x
    return None


def _match_fast_gelu(view: GraphView, rewriter: Rewriter, index: int, tanh: NodeProto) -> None:
    scaled = view.producer_of(tanh.input[0], "Mul")
    if scaled is None or view.sole_consumer(tanh.input[0]) is None:
        return
    operand = const_operand(view, scaled[1])
    if operand is None or not close(operand[1], math.sqrt(2 / math.pi), 1e-3):
        return
    inner = scaled[1].input[operand[0]]
    added = view.producer_of(inner, "Add")
    if added is None or not view.internal(inner, [scaled[0]]):
        return
    for side in (0, 1):
        x = added[1].input[side]
        cubed = view.producer_of(added[1].input[1 - side], "Mul")
        if cubed is None or not view.internal(added[1].input[1 - side], [added[0]]):
            continue
        coefficient = const_operand(view, cubed[1])
        if coefficient is None or not close(coefficient[1], 0.044715, 1e-3):
            continue
        cube_value = cubed[1].input[coefficient[0]]
        cube = _cube_of(view, cube_value)
        if cube is None or cube[1] != x or not view.internal(cube_value, [cubed[0]]):
            continue
        if not view.is_float(x, _FLOAT32):
            return
        plus = _match_one_plus(view, tanh.output[0])
        if plus is None:
            return
        tail = _match_half_x_product(view, rewriter, x, plus[1])
        if tail is None:
            return
        indices = cube[0] + [cubed[0], added[0], scaled[0], index, plus[0]] + tail[0]
        if rewriter.claimed(indices):
            return
        node = rewriter.make_node("FastGelu", [x], [tail[1]], "FastGelu_fused", domain=MS_DOMAIN)
        rewriter.replace(indices, [node])
        return


@register_pass(2, "FastGeluFusion")
def fuse_fast_gelu(model: ModelProto, context: OptimizerContext) -> bool:
    """The tanh approximation of GELU -> com.microsoft:FastGelu."""
    if not GraphView.of(model, context).can_run(MS_DOMAIN, "FastGelu"):
        return False
    return fuse_node_pattern(model, context, ["Tanh"], _match_fast_gelu)


def _bias_operand(view: GraphView, add: NodeProto) -> tuple[str, str] | None:
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


def _match_bias_gelu(view: GraphView, rewriter: Rewriter, index: int, gelu: NodeProto) -> None:
    fast = gelu.op_type == "FastGelu"
    if gelu.domain == MS_DOMAIN and len(gelu.input) != 1:
        return
    if gelu.domain != MS_DOMAIN and (attr(gelu, "approximate", "none") != "none" or fast):
        return
    found = view.producer_of(gelu.input[0], "Add")
    if found is None or view.sole_consumer(gelu.input[0]) is None or rewriter.claimed([found[0]]):
        return
    operands = _bias_operand(view, found[1])
    if operands is None or not view.is_float(operands[0], _FLOAT32):
        return
    op = "FastGelu" if fast else "BiasGelu"
    if not view.can_run(MS_DOMAIN, op):
        return
    node = rewriter.make_node(op, list(operands), [gelu.output[0]], f"{op}_fused",
                              domain=MS_DOMAIN)
    rewriter.replace([found[0], index], [node])


@register_pass(2, "BiasGeluFusion")
def fuse_bias_gelu(model: ModelProto, context: OptimizerContext) -> bool:
    """Add of a 1-D bias followed only by Gelu (FastGelu) -> BiasGelu (FastGelu with bias)."""
    changed = fuse_node_pattern(model, context, ["Gelu", "FastGelu"], _match_bias_gelu,
                                domain=MS_DOMAIN)
    return fuse_node_pattern(model, context, ["Gelu"], _match_bias_gelu) or changed


# ------------------------------------------------------------------------------------------
# LayerNormalization, SkipLayerNormalization
# ------------------------------------------------------------------------------------------


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
    if axis is None or shape is None or not view.is_float(x, _FLOAT32):
        return
    normalized = shape[axis:]
    if not all(isinstance(d, int) and d > 0 for d in normalized):
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
    if _trailing_axis(_reduce_axes(view, mean2[1]), len(shape)) != axis:
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


def _affine_constant(view: GraphView, value: str, op_type: str,
                     normalized: tuple[int, ...]) -> tuple[int, np.ndarray, str] | None:
    """(index, constant broadcast to the normalized shape, output) of the sole ``op_type``
    node applying a float32 constant to ``value`` along the normalized axes only."""
    found = _single_consumer_op(view, value, op_type)
    if found is None:
        return None
    other = other_input(found[1], value)
    constant = view.const(other) if other else None
    if constant is None or constant.dtype != np.float32 or constant.ndim > len(normalized):
        return None
    try:
        full = np.broadcast_to(constant, normalized)
    except ValueError:
        return None
    return found[0], np.asarray(full, order="C"), found[1].output[0]


@register_pass(2, "LayerNormFusion")
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
            or any(d is None for d in shape_a) or not view.is_float(a, _FLOAT32)
            or not view.is_float(b, _FLOAT32)):
        return
    indices = [add_index, index]
    inputs = [a, b]
    bias = None
    for side in (0, 1):
        inner = view.producer_of(inputs[side], "Add")
        if (inner is None or view.sole_consumer(inputs[side]) is None
                or rewriter.claimed([inner[0]])):
            continue
        operands = _bias_operand(view, inner[1])
        if operands is not None and view.shape(operands[0]) == shape_a:
            inputs[side], bias = operands
            indices.append(inner[0])
            break
    scale, beta, epsilon = parts
    node_inputs = [inputs[0], inputs[1], scale, beta or ""] + ([bias] if bias else [])
    while node_inputs[-1] == "":
        node_inputs.pop()
    outputs = [ln.output[0]]
    if add.output[0] in view.protected or len(view.consumers.get(add.output[0], [])) > 1:
        outputs += ["", "", add.output[0]]  # input_skip_bias_sum feeds the other readers
    node = rewriter.make_node("SkipLayerNormalization", node_inputs, outputs,
                              "SkipLayerNorm_fused", domain=MS_DOMAIN, epsilon=epsilon)
    rewriter.replace(indices, [node])


@register_pass(2, "SkipLayerNormFusion")
def fuse_skip_layer_norm(model: ModelProto, context: OptimizerContext) -> bool:
    """Add of two same-shaped values (plus a bias Add) before a last-axis LayerNormalization
    -> com.microsoft:SkipLayerNormalization."""
    if not GraphView.of(model, context).can_run(MS_DOMAIN, "SkipLayerNormalization"):
        return False
    changed = fuse_node_pattern(model, context, ["LayerNormalization"], _match_skip_layer_norm)
    return fuse_node_pattern(model, context, ["LayerNormalization"], _match_skip_layer_norm,
                             domain=MS_DOMAIN) or changed
