"""Level-2 (``ORT_ENABLE_EXTENDED``) fusions of Gelu's primitive forms.

Each pass fires only where ``context.has_kernel`` finds a kernel for the op it produces and
only on float32 values (the type ONNX Runtime's CPU kernels of these contrib ops take), so a
saved optimized model also runs on ONNX Runtime:

* ``GeluFusion``: ``x * 0.5 * (1 + erf(x / sqrt(2)))`` (its Mul orders, ``Mul(1/sqrt(2))``
  for the Div) becomes ``Gelu`` (ONNX Gelu-20 when the model's opset allows, else
  ``com.microsoft:Gelu``); ``FastGeluFusion``: the tanh approximation
  ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`` becomes ``com.microsoft:FastGelu``.
* ``BiasGeluFusion``: ``Add(x, bias) -> Gelu`` becomes ``com.microsoft:BiasGelu`` (and
  ``FastGelu``'s optional bias input).
"""

from __future__ import annotations

import math

from onnx import ModelProto, NodeProto

from .context import OptimizerContext
from .patterns import (
    MS_DOMAIN, FLOAT32, GraphView, Rewriter, attr, bias_operand, close, const_operand,
    fuse_node_pattern, is_default_domain, other_input,
)

__all__ = ["fuse_gelu", "fuse_fast_gelu", "fuse_bias_gelu"]


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
    if not view.is_float(x, FLOAT32):
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
        if not view.is_float(x, FLOAT32):
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


def fuse_fast_gelu(model: ModelProto, context: OptimizerContext) -> bool:
    """The tanh approximation of GELU -> com.microsoft:FastGelu."""
    if not GraphView.of(model, context).can_run(MS_DOMAIN, "FastGelu"):
        return False
    return fuse_node_pattern(model, context, ["Tanh"], _match_fast_gelu)


def _match_bias_gelu(view: GraphView, rewriter: Rewriter, index: int, gelu: NodeProto) -> None:
    fast = gelu.op_type == "FastGelu"
    if gelu.domain == MS_DOMAIN and len(gelu.input) != 1:
        return
    if gelu.domain != MS_DOMAIN and (attr(gelu, "approximate", "none") != "none" or fast):
        return
    found = view.producer_of(gelu.input[0], "Add")
    if found is None or view.sole_consumer(gelu.input[0]) is None or rewriter.claimed([found[0]]):
        return
    operands = bias_operand(view, found[1])
    if operands is None or not view.is_float(operands[0], FLOAT32):
        return
    op = "FastGelu" if fast else "BiasGelu"
    if not view.can_run(MS_DOMAIN, op):
        return
    node = rewriter.make_node(op, list(operands), [gelu.output[0]], f"{op}_fused",
                              domain=MS_DOMAIN)
    rewriter.replace([found[0], index], [node])


def fuse_bias_gelu(model: ModelProto, context: OptimizerContext) -> bool:
    """Add of a 1-D bias followed only by Gelu (FastGelu) -> BiasGelu (FastGelu with bias)."""
    changed = fuse_node_pattern(model, context, ["Gelu", "FastGelu"], _match_bias_gelu,
                                domain=MS_DOMAIN)
    return fuse_node_pattern(model, context, ["Gelu"], _match_bias_gelu) or changed
