"""Level-2 (``ORT_ENABLE_EXTENDED``) fusion of SiLU (Swish) into ``com.microsoft:QuickGelu``.

``QuickGelu(x; alpha) = x * Sigmoid(alpha * x)``, so

* ``QuickGeluFusion``: ``Mul(x, Sigmoid(x))`` (SiLU, as torch exports ``nn.SiLU``) becomes
  ``QuickGelu(x, alpha=1.0)`` and ``Mul(x, Sigmoid(Mul(x, alpha)))`` with a scalar constant
  ``alpha`` (CLIP's quick GELU, ``alpha = 1.702``; also ``CastLike(alpha, x)``) becomes
  ``QuickGelu(x, alpha)``.

As onnxruntime's ``QuickGeluFusion`` does, the Sigmoid (and the ``alpha`` Mul) must feed
nothing but the next node of the pattern. The pass fires only where ``context.has_kernel``
finds a QuickGelu kernel and only on float32 values (the type the fused kernels are written
for), so a saved optimized model also runs on onnxruntime.
"""

from __future__ import annotations

from onnx import ModelProto, NodeProto

from .context import OptimizerContext
from .patterns import (
    MS_DOMAIN, FLOAT32, GraphView, Rewriter, fuse_node_pattern, is_default_domain, other_input,
)
from .rms_norm_fusion import scalar_operand

__all__ = ["fuse_quick_gelu"]


def _scaled_input(view: GraphView, value: str) -> tuple[int, str, float] | None:
    """(index, x, alpha) when ``value`` is ``Mul(x, alpha)`` (a scalar constant ``alpha``,
    either side) read by nothing but the Sigmoid being matched."""
    found = view.producer_of(value, "Mul")
    if found is None or view.sole_consumer(value) is None:
        return None
    operand = scalar_operand(view, found[1])
    if operand is None:
        return None
    x = found[1].input[operand[0]]
    if view.is_const(x):
        return None
    return found[0], x, operand[1]


def _match_quick_gelu(view: GraphView, rewriter: Rewriter, index: int,
                      sigmoid: NodeProto) -> None:
    if len(sigmoid.input) != 1 or len(sigmoid.output) != 1:
        return
    product = view.sole_consumer(sigmoid.output[0])
    if (product is None or product[1].op_type != "Mul" or not is_default_domain(product[1])
            or rewriter.claimed([product[0]])):
        return
    mul_index, mul = product
    x = other_input(mul, sigmoid.output[0])
    if x is None or x == sigmoid.output[0]:
        return
    indices = [index, mul_index]
    alpha = 1.0
    scaled = _scaled_input(view, sigmoid.input[0])
    if scaled is not None and scaled[1] == x and not rewriter.claimed([scaled[0]]):
        indices.insert(0, scaled[0])
        alpha = scaled[2]
    elif sigmoid.input[0] != x:
        return
    if not view.is_float(x, FLOAT32):
        return
    node = rewriter.make_node("QuickGelu", [x], [mul.output[0]], "QuickGelu_fused",
                              domain=MS_DOMAIN, alpha=float(alpha))
    rewriter.replace(indices, [node])


def fuse_quick_gelu(model: ModelProto, context: OptimizerContext) -> bool:
    """``x * Sigmoid(x)`` and ``x * Sigmoid(alpha * x)`` -> com.microsoft:QuickGelu."""
    if not GraphView.of(model, context).can_run(MS_DOMAIN, "QuickGelu"):
        return False
    return fuse_node_pattern(model, context, ["Sigmoid"], _match_quick_gelu)
