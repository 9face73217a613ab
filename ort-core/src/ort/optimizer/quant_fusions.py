"""Level-2 (``ORT_ENABLE_EXTENDED``) fusions of the chains ``onnxruntime.quantization``'s
``quantize_dynamic`` writes for a MatMul (or Gemm) with a constant weight::

    DynamicQuantizeLinear(x) -> MatMulInteger(x_q, W_q, x_zp, W_zp) -> Cast(to=float)
        -> Mul(., Mul(x_scale, W_scale)) [-> Add(., bias)]

named and conditioned as onnxruntime's optimizer does (so outputs match onnxruntime's, whose
fused kernels round differently from the unfused chain):

* ``MatMulIntegerToFloatFusion``: a Mul of a ``Cast(MatMulInteger)`` by the product of a Mul
  (the scales: its inputs become ``a_scale``, ``b_scale`` in that order), each read by that
  Mul alone, becomes ``com.microsoft:MatMulIntegerToFloat(A, B, a_scale, b_scale, a_zp, b_zp
  [, bias])``; an Add reading the Mul alone takes its other input (either side) as the bias
  when that is a constant of shape ``[1, ..., 1, N]`` with ``N > 1``.
* ``DynamicQuantizeMatMulFusion``: a MatMulIntegerToFloat whose A, a_scale and a_zero_point
  are the three outputs of a DynamicQuantizeLinear read by it alone becomes
  ``com.microsoft:DynamicQuantizeMatMul(x, B, b_scale, b_zp, bias)``, which quantizes ``x``
  itself. Like onnxruntime 1.32's, it does not ask for a constant B (the kernel prepares a
  constant B once, and takes any other at run time).

Each fires only where ``context.has_kernel`` finds a kernel for the op it produces. Beyond
onnxruntime's conditions, ort also asks for what its kernels (and onnxruntime's) take: a
Cast to float32 with float32 scales, a float32 bias of length N not raising the rank
(onnxruntime fuses a ``[1, 1, N]`` bias on a 2-D product and loses the leading axis; a
``[1, ..., 1, N]`` one is given to the fused op 1-D, the only form ort's kernels take).
"""

from __future__ import annotations

from onnx import ModelProto, NodeProto, TensorProto

from .context import OptimizerContext
from .patterns import FLOAT32, MS_DOMAIN, GraphView, Rewriter, attr, fuse_node_pattern

__all__ = ["fuse_matmul_integer_to_float", "fuse_dynamic_quantize_matmul"]


def _sole_reader(view: GraphView, name: str, reader: int) -> bool:
    """Whether ``name`` is an internal value read by node ``reader`` alone."""
    found = view.sole_consumer(name)
    return found is not None and found[0] == reader


def _bias(view: GraphView, rewriter: Rewriter, mul: NodeProto,
          n: object) -> tuple[int, NodeProto, str] | None:
    """(index, node, 1-D bias) of the Add that adds a constant bias to the scaled product."""
    found = view.sole_consumer(mul.output[0])
    if found is None or rewriter.claimed([found[0]]):
        return None
    add = found[1]
    if (add.op_type != "Add" or add.domain not in ("", "ai.onnx") or len(add.input) != 2
            or add.input[0] == add.input[1]):
        return None
    name = add.input[1] if add.input[0] == mul.output[0] else add.input[0]  # either side
    bias = view.const(name)
    if (bias is None or bias.ndim < 1 or bias.shape[-1] <= 1
            or any(d != 1 for d in bias.shape[:-1])):
        return None  # onnxruntime's condition: [1, ..., 1, N] with N > 1
    if not view.is_float(name, FLOAT32) or (isinstance(n, int) and bias.shape[-1] != n):
        return None
    if bias.ndim == 1:
        return found[0], add, name
    rank = view.rank(mul.output[0])
    if rank is None or bias.ndim > rank:
        return None  # the Add would raise the rank
    # the kernels take a 1-D bias: [1, ..., 1, N] adds the same
    return found[0], add, rewriter.add_initializer(bias.reshape(-1), f"{name}_1d")


def _match_matmul_integer_to_float(view: GraphView, rewriter: Rewriter, index: int,
                                   mul: NodeProto) -> None:
    if len(mul.input) != 2 or len(mul.output) != 1 or mul.input[0] == mul.input[1]:
        return
    if not view.is_float(mul.input[0], FLOAT32) or not view.is_float(mul.input[1], FLOAT32):
        return
    for side in (0, 1):
        cast = view.producer_of(mul.input[side], "Cast")
        scales = view.producer_of(mul.input[1 - side], "Mul")
        if cast is None or scales is None or rewriter.claimed([cast[0], scales[0]]):
            continue
        if attr(cast[1], "to") != TensorProto.FLOAT or len(cast[1].input) != 1:
            continue
        product = view.producer_of(cast[1].input[0], "MatMulInteger")
        if product is None or rewriter.claimed([product[0]]) or len(scales[1].input) != 2:
            continue
        if not (_sole_reader(view, product[1].output[0], cast[0])
                and _sole_reader(view, cast[1].output[0], index)
                and _sole_reader(view, scales[1].output[0], index)):
            continue
        if not all(view.is_float(s, FLOAT32) for s in scales[1].input):
            continue
        matmul = product[1]
        inputs = [matmul.input[0], matmul.input[1], scales[1].input[0], scales[1].input[1],
                  matmul.input[2] if len(matmul.input) > 2 else "",
                  matmul.input[3] if len(matmul.input) > 3 else ""]
        b_shape = view.shape(matmul.input[1])
        n = b_shape[-1] if b_shape else None
        indices = [product[0], cast[0], scales[0], index]
        output = mul.output[0]
        add = _bias(view, rewriter, mul, n)
        if add is not None:
            inputs.append(add[2])
            indices.append(add[0])
            output = add[1].output[0]
        while inputs and not inputs[-1]:
            inputs.pop()
        fused = rewriter.make_node("MatMulIntegerToFloat", inputs, [output],
                                   matmul.name or "MatMulIntegerToFloat", domain=MS_DOMAIN)
        rewriter.replace(indices, [fused])
        return


def fuse_matmul_integer_to_float(model: ModelProto, context: OptimizerContext) -> bool:
    """``Mul(Cast(MatMulInteger), Mul(a_scale, b_scale)) [+ bias]`` -> MatMulIntegerToFloat."""
    view = GraphView.of(model, context)
    if (view.opset() or 0) < 7 or not view.can_run(MS_DOMAIN, "MatMulIntegerToFloat"):
        return False
    if not view.has_op("MatMulInteger"):
        return False
    return fuse_node_pattern(model, context, ["Mul"], _match_matmul_integer_to_float)


def _match_dynamic_quantize_matmul(view: GraphView, rewriter: Rewriter, index: int,
                                   node: NodeProto) -> None:
    inputs = list(node.input) + [""] * (7 - len(node.input))
    if len(node.output) != 1 or not inputs[4]:
        return  # onnxruntime: the A zero point must be there
    found = view.producer_of(inputs[0], "DynamicQuantizeLinear")
    if found is None or rewriter.claimed([found[0]]):
        return
    quantize = found[1]
    if len(quantize.output) != 3 or list(quantize.output) != [inputs[0], inputs[2], inputs[4]]:
        return
    if not all(_sole_reader(view, name, index) for name in quantize.output):
        return
    fused_inputs = [quantize.input[0], inputs[1], inputs[3], inputs[5], inputs[6]]
    while not fused_inputs[-1]:
        fused_inputs.pop()
    fused = rewriter.make_node("DynamicQuantizeMatMul", fused_inputs, list(node.output),
                               node.name or "DynamicQuantizeMatMul", domain=MS_DOMAIN)
    rewriter.replace([found[0], index], [fused])


def fuse_dynamic_quantize_matmul(model: ModelProto, context: OptimizerContext) -> bool:
    """``DynamicQuantizeLinear -> MatMulIntegerToFloat`` -> DynamicQuantizeMatMul."""
    if not GraphView.of(model, context).can_run(MS_DOMAIN, "DynamicQuantizeMatMul"):
        return False
    return fuse_node_pattern(model, context, ["MatMulIntegerToFloat"],
                             _match_dynamic_quantize_matmul, domain=MS_DOMAIN)
