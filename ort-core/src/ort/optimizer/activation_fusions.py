"""Level-2 (``ORT_ENABLE_EXTENDED``) fusions of Conv, MatMul and Gemm with what follows them.

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
"""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import ModelProto, NodeProto, TensorProto, helper

from .context import OptimizerContext
from .patterns import (
    MS_DOMAIN, FLOAT32, GraphView, Rewriter, attr, fuse_node_pattern, is_default_domain,
)

__all__ = ["fuse_conv_activation", "fuse_conv_add_activation", "fuse_matmul_add",
           "fuse_gemm_activation"]

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
    if len(conv.output) != 1 or not view.is_float(conv.input[0], FLOAT32):
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
                or not view.is_float(z, FLOAT32) or not view.is_float(conv.input[0], FLOAT32)):
            continue
        inputs = list(conv.input) + [""] * (3 - len(conv.input)) + [z]
        if found_act is None:
            rewriter.replace([conv_index, index],
                             [_fused_conv(rewriter, conv, inputs, add.output[0], None)])
        else:
            rewriter.replace([conv_index, index, found_act[0]],
                             [_fused_conv(rewriter, conv, inputs, found_act[1].output[0], act)])
        return


def fuse_conv_add_activation(model: ModelProto, context: OptimizerContext) -> bool:
    """Conv -> Add(Z of the same shape) [-> activation]: FusedConv with the sum input Z."""
    view = GraphView.of(model, context)
    if not view.has_op("Conv") or not view.can_run(MS_DOMAIN, "FusedConv"):
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


def fuse_matmul_add(model: ModelProto, context: OptimizerContext) -> bool:
    """MatMul of a 2-D A followed only by an Add of a C that broadcasts to the product: Gemm."""
    view = GraphView.of(model, context)
    if (view.opset() or 0) < 7 or not view.can_run("", "Gemm"):
        return False  # Gemm 1-6 broadcasts C only with broadcast=1
    if not view.has_op("MatMul"):
        return False
    return fuse_node_pattern(model, context, ["Add"], _match_matmul_add)


def _match_gemm_activation(view: GraphView, rewriter: Rewriter, index: int,
                           gemm: NodeProto) -> None:
    if len(gemm.output) != 1 or not view.is_float(gemm.input[0], FLOAT32):
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


def fuse_gemm_activation(model: ModelProto, context: OptimizerContext) -> bool:
    """Gemm followed only by an elementwise activation -> com.microsoft:FusedGemm."""
    view = GraphView.of(model, context)
    if not view.can_run(MS_DOMAIN, "FusedGemm"):
        return False
    opset = view.opset() or 0
    if opset < 7:
        return False  # Gemm 1-6 broadcasting rules differ
    return fuse_node_pattern(model, context, ["Gemm"], _match_gemm_activation)
