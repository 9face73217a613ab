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

import numpy as np
from onnx import ModelProto, NodeProto, TensorProto, helper

from .context import OptimizerContext
from .patterns import (FLOAT32, MS_DOMAIN, GraphView, Rewriter, attr,
                       fuse_node_pattern)

__all__ = ["fuse_matmul_integer_to_float", "fuse_dynamic_quantize_matmul", "fuse_qdq",
           "fuse_qdq_s8_to_u8"]


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


# ---------------------------------------------------------------------------------------
# QDQ node groups -> QOperator ops (onnxruntime's QDQSelectorActionTransformer)
# ---------------------------------------------------------------------------------------
#
# ``quantize_static`` in QDQ format writes float ops between DequantizeLinear (DQ) and
# QuantizeLinear (Q) nodes; onnxruntime's level-2 QDQ transformer runs each such group as the
# quantized op (its outputs are those of the quantized kernels, which round once, not the
# float op's). The groups fused here, each under onnxruntime's conditions:
#
# * DQ(x), DQ(W), [DQ(int32 bias)] -> Conv -> Q  => QLinearConv
# * DQ(a), DQ(b) -> Add|Mul -> Q                 => com.microsoft QLinearAdd|QLinearMul
# * DQ(x) -> GlobalAveragePool -> Q              => com.microsoft QLinearGlobalAveragePool
# * DQ(x) -> AveragePool -> Q                    => com.microsoft QLinearAveragePool
# * DQ(a), DQ(B) -> MatMul -> Q                  => QLinearMatMul
# * DQ(a), DQ(B) -> MatMul                       => com.microsoft MatMulIntegerToFloat
# * DQ(a), DQ(B), [DQ(int32 C)] -> Gemm [-> Q]   => com.microsoft QGemm
# * DQ(x) -> MaxPool|Reshape|Flatten|... -> Q with the same scale and zero point: the op runs
#   on the quantized values (DQ and Q dropped)
#
# Activations (x, a, b) need per-tensor constant scales and zero points of uint8/int8 and a
# Q of the same type as the input; weights (W, B) are constant int8/uint8 with a per-tensor
# or per-output-channel scale. A DQ read by several nodes is used by each of them (as
# onnxruntime's EnsureUniqueDQForNodeUnit duplicates it); dead-node elimination removes it
# once nothing reads it.

_QDQ_TYPES = (TensorProto.UINT8, TensorProto.INT8)
#: Ops that onnxruntime runs on quantized values where DQ and Q around them agree.
_DROP_QDQ = frozenset({"MaxPool", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze",
                       "Gather", "Slice", "Expand", "Tile", "DepthToSpace", "SpaceToDepth"})


class _Quant:
    """A DQ or Q node's quantization: its node index, the quantized value, scale and zero
    point names, their constant values and the quantized element type."""

    def __init__(self, index: int, node: NodeProto, quantized: str, scale, zero_point,
                 elem: int) -> None:
        self.index, self.node, self.quantized = index, node, quantized
        self.scale_name, self.zp_name = node.input[1], node.input[2]
        self.scale, self.zero_point, self.elem = scale, zero_point, elem

    @property
    def per_tensor(self) -> bool:
        """Whether the scale and zero point are single values."""
        return self.scale.size == 1 and self.scale.ndim <= 1

    def same_params(self, other: "_Quant") -> bool:
        """Whether both have equal (per-tensor) scales and zero points of one type."""
        return (self.per_tensor and other.per_tensor and self.elem == other.elem
                and float(self.scale.reshape(-1)[0]) == float(other.scale.reshape(-1)[0])
                and int(self.zero_point.reshape(-1)[0]) == int(other.zero_point.reshape(-1)[0]))


def _quant_params(view: GraphView, index: int, node: NodeProto, quantized: str,
                  elem_types: tuple[int, ...]) -> _Quant | None:
    """The constant scale (float32) and zero point of a DQ/Q node (None where not usable)."""
    if len(node.input) != 3 or not node.input[2] or attr(node, "block_size", 0):
        return None
    scale, zero_point = view.const(node.input[1]), view.const(node.input[2])
    if scale is None or zero_point is None or scale.dtype != np.float32:
        return None
    if scale.shape != zero_point.shape or scale.ndim > 1:
        return None
    elem = helper.np_dtype_to_tensor_dtype(zero_point.dtype)
    if elem not in elem_types:
        return None
    return _Quant(index, node, quantized, scale, zero_point, elem)


def _dequantized(view: GraphView, name: str, elem_types: tuple[int, ...] = _QDQ_TYPES
                 ) -> _Quant | None:
    """The DequantizeLinear (default domain) producing ``name``."""
    found = view.producer_of(name, "DequantizeLinear")
    if found is None or name in view.protected:
        return None
    index, node = found
    return _quant_params(view, index, node, node.input[0], elem_types)


def _requantized(view: GraphView, rewriter: Rewriter, name: str) -> _Quant | None:
    """The QuantizeLinear that alone reads ``name`` (an op's float output)."""
    found = view.sole_consumer(name)
    if found is None or rewriter.claimed([found[0]]):
        return None
    index, node = found
    if node.op_type != "QuantizeLinear" or (node.domain or "") not in ("", "ai.onnx"):
        return None
    if node.input[0] != name or attr(node, "saturate", 1) != 1:
        return None
    quant = _quant_params(view, index, node, node.output[0], _QDQ_TYPES)
    if quant is None or not quant.per_tensor:
        return None
    out_type = attr(node, "output_dtype", 0)
    return quant if out_type in (0, quant.elem) else None


def _activation(view: GraphView, name: str, elem_types: tuple[int, ...] = (TensorProto.UINT8,)
                ) -> _Quant | None:
    """A per-tensor DQ of a uint8 activation producing ``name`` (onnxruntime on x86 runs
    int8 activations through its QDQ kernels only after :func:`fuse_qdq_s8_to_u8` made
    them uint8; the groups left with int8 ones stay float)."""
    quant = _dequantized(view, name, elem_types)
    return quant if quant is not None and quant.per_tensor else None


def _weight(view: GraphView, name: str, channels: int | None, axis: int) -> _Quant | None:
    """A DQ of a constant int8/uint8 weight, per tensor or per ``axis`` with ``channels``."""
    quant = _dequantized(view, name)
    if quant is None or view.const(quant.quantized) is None:
        return None
    if quant.per_tensor:
        return quant
    weight = view.const(quant.quantized)
    rank = weight.ndim
    dq_axis = attr(quant.node, "axis", 1)
    dq_axis = dq_axis + rank if dq_axis < 0 else dq_axis
    if quant.scale.ndim != 1 or dq_axis != axis or weight.shape[axis] != quant.scale.shape[0]:
        return None
    if channels is not None and quant.scale.shape[0] != channels:
        return None
    return quant


def _int32_bias(view: GraphView, name: str) -> str | None:
    """The int32 constant a DQ producing ``name`` dequantizes (onnxruntime's bias condition)."""
    found = view.producer_of(name, "DequantizeLinear")
    if found is None or name in view.protected:
        return None
    quantized = found[1].input[0]
    value = view.const(quantized)
    if value is None or value.dtype != np.int32 or value.ndim != 1:
        return None
    return quantized


def _copy_attrs(node: NodeProto, names: tuple[str, ...]) -> dict:
    """The attributes ``names`` that ``node`` sets."""
    return {a.name: helper.get_attribute_value(a) for a in node.attribute if a.name in names}


_CONV_ATTRS = ("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides")


def _match_qdq_conv(view: GraphView, rewriter: Rewriter, index: int, conv: NodeProto) -> None:
    if len(conv.input) < 2 or len(conv.output) != 1:
        return
    x = _activation(view, conv.input[0])
    w_value = view.const(view.producer_of(conv.input[1], "DequantizeLinear")[1].input[0]) \
        if view.producer_of(conv.input[1], "DequantizeLinear") else None
    if x is None or w_value is None:
        return
    w = _weight(view, conv.input[1], w_value.shape[0], 0)
    q = _requantized(view, rewriter, conv.output[0])
    if w is None or q is None or q.elem != x.elem:
        return
    inputs = [x.quantized, x.scale_name, x.zp_name, w.quantized, w.scale_name, w.zp_name,
              q.scale_name, q.zp_name]
    if len(conv.input) > 2 and conv.input[2]:
        bias = _int32_bias(view, conv.input[2])
        if bias is None:
            return
        inputs.append(bias)
    fused = rewriter.make_node("QLinearConv", inputs, [q.quantized], conv.name or "QLinearConv",
                               **_copy_attrs(conv, _CONV_ATTRS))
    rewriter.replace([index, q.index], [fused])


def _match_qdq_binary(view: GraphView, rewriter: Rewriter, index: int, node: NodeProto) -> None:
    if len(node.input) != 2 or len(node.output) != 1:
        return
    a, b = _activation(view, node.input[0]), _activation(view, node.input[1])
    q = _requantized(view, rewriter, node.output[0])
    if a is None or b is None or q is None or not (a.elem == b.elem == q.elem):
        return
    fused = rewriter.make_node(
        f"QLinear{node.op_type}",
        [a.quantized, a.scale_name, a.zp_name, b.quantized, b.scale_name, b.zp_name,
         q.scale_name, q.zp_name],
        [q.quantized], node.name or f"QLinear{node.op_type}", domain=MS_DOMAIN)
    rewriter.replace([index, q.index], [fused])


_POOL_ATTRS = ("auto_pad", "ceil_mode", "count_include_pad", "kernel_shape", "pads", "strides")


def _match_qdq_pool(view: GraphView, rewriter: Rewriter, index: int, node: NodeProto) -> None:
    if len(node.input) != 1 or len(node.output) != 1:
        return
    x = _activation(view, node.input[0])
    q = _requantized(view, rewriter, node.output[0])
    if x is None or q is None or x.elem != q.elem:
        return
    if node.op_type == "AveragePool" and attr(node, "dilations") is not None:
        return  # QLinearAveragePool has no dilations
    attrs = _copy_attrs(node, _POOL_ATTRS) if node.op_type == "AveragePool" else {}
    fused = rewriter.make_node(
        f"QLinear{node.op_type}",
        [x.quantized, x.scale_name, x.zp_name, q.scale_name, q.zp_name], [q.quantized],
        node.name or f"QLinear{node.op_type}", domain=MS_DOMAIN, channels_last=0, **attrs)
    rewriter.replace([index, q.index], [fused])


def _match_qdq_drop(view: GraphView, rewriter: Rewriter, index: int, node: NodeProto) -> None:
    if not node.input or len(node.output) != 1:
        return
    if node.op_type == "MaxPool" and (view.opset() or 0) < 12:
        return  # MaxPool takes 8-bit integers from opset 12
    x = _activation(view, node.input[0], _QDQ_TYPES)
    q = _requantized(view, rewriter, node.output[0])
    if x is None or q is None or not x.same_params(q):
        return
    dropped = helper.make_node(node.op_type, [x.quantized] + list(node.input[1:]),
                               [q.quantized], name=view.unique_name(node.name or node.op_type))
    dropped.attribute.extend(node.attribute)
    rewriter.replace([index, q.index], [dropped])


def _match_qdq_matmul(view: GraphView, rewriter: Rewriter, index: int, node: NodeProto) -> None:
    if len(node.input) != 2 or len(node.output) != 1:
        return
    a = _activation(view, node.input[0])
    b_found = view.producer_of(node.input[1], "DequantizeLinear")
    b_value = view.const(b_found[1].input[0]) if b_found else None
    if a is None or b_value is None or b_value.ndim != 2:
        return
    b = _weight(view, node.input[1], b_value.shape[1], 1)
    if b is None:
        return
    q = _requantized(view, rewriter, node.output[0])
    if q is not None:
        if q.elem != a.elem:
            return
        fused = rewriter.make_node(
            "QLinearMatMul",
            [a.quantized, a.scale_name, a.zp_name, b.quantized, b.scale_name, b.zp_name,
             q.scale_name, q.zp_name], [q.quantized], node.name or "QLinearMatMul")
        rewriter.replace([index, q.index], [fused])
        return
    if not view.can_run(MS_DOMAIN, "MatMulIntegerToFloat"):
        return
    fused = rewriter.make_node(
        "MatMulIntegerToFloat",
        [a.quantized, b.quantized, a.scale_name, b.scale_name, a.zp_name, b.zp_name],
        list(node.output), node.name or "MatMulIntegerToFloat", domain=MS_DOMAIN)
    rewriter.replace([index], [fused])


def _match_qdq_gemm(view: GraphView, rewriter: Rewriter, index: int, node: NodeProto) -> None:
    if len(node.input) < 2 or len(node.output) != 1:
        return
    trans_a, trans_b = attr(node, "transA", 0), attr(node, "transB", 0)
    a = _activation(view, node.input[0])
    b_found = view.producer_of(node.input[1], "DequantizeLinear")
    b_value = view.const(b_found[1].input[0]) if b_found else None
    if a is None or b_value is None or b_value.ndim != 2:
        return
    n_axis = 0 if trans_b else 1
    b = _weight(view, node.input[1], b_value.shape[n_axis], n_axis)
    if b is None:
        return
    bias = ""
    if len(node.input) > 2 and node.input[2]:
        if attr(node, "beta", 1.0) != 1.0:
            return
        bias = _int32_bias(view, node.input[2])
        if bias is None:
            return
    q = _requantized(view, rewriter, node.output[0])
    if q is not None and q.elem != a.elem:
        return
    inputs = [a.quantized, a.scale_name, a.zp_name, b.quantized, b.scale_name, b.zp_name, bias]
    outputs = list(node.output)
    removed = [index]
    if q is not None:
        inputs += [q.scale_name, q.zp_name]
        outputs = [q.quantized]
        removed.append(q.index)
    while not inputs[-1]:
        inputs.pop()
    fused = rewriter.make_node("QGemm", inputs, outputs, node.name or "QGemm",
                               domain=MS_DOMAIN, alpha=float(attr(node, "alpha", 1.0)),
                               transA=int(trans_a), transB=int(trans_b))
    rewriter.replace(removed, [fused])


#: op type -> (matcher, the fused op's (domain, type) whose kernel it needs; None: the op's).
_QDQ_MATCHERS = {
    "Conv": (_match_qdq_conv, ("", "QLinearConv")),
    "Add": (_match_qdq_binary, (MS_DOMAIN, "QLinearAdd")),
    "Mul": (_match_qdq_binary, (MS_DOMAIN, "QLinearMul")),
    "GlobalAveragePool": (_match_qdq_pool, (MS_DOMAIN, "QLinearGlobalAveragePool")),
    "AveragePool": (_match_qdq_pool, (MS_DOMAIN, "QLinearAveragePool")),
    "MatMul": (_match_qdq_matmul, ("", "QLinearMatMul")),
    "Gemm": (_match_qdq_gemm, (MS_DOMAIN, "QGemm")),
    **{op: (_match_qdq_drop, None) for op in _DROP_QDQ},
}


def fuse_qdq(model: ModelProto, context: OptimizerContext) -> bool:
    """DQ -> op -> Q groups -> the quantized ops onnxruntime runs (see the list above)."""
    view = GraphView.of(model, context)
    if (view.opset() or 0) < 10 or not view.has_op("DequantizeLinear"):
        return False
    rewriter = Rewriter(view)
    for op_type, (match, fused) in _QDQ_MATCHERS.items():
        if fused is not None and not view.can_run(*fused):
            continue
        if fused is None and not view.can_run("", op_type):
            continue
        for index in view.indices_of([op_type], ("", "ai.onnx")):
            if not rewriter.claimed([index]):
                match(view, rewriter, index, view.nodes[index])
    return rewriter.commit()


def fuse_qdq_s8_to_u8(model: ModelProto, context: OptimizerContext) -> bool:
    """onnxruntime's QDQS8ToU8Transformer (x86): a QuantizeLinear to int8 read by one
    DequantizeLinear alone, both with the same per-tensor scale and zero point, quantizes to
    uint8 with the zero point plus 128 instead (the same values, shifted: lossless), so that
    :func:`fuse_qdq` can fuse the groups around it. A DQ read by several nodes counts as one
    DQ per reader (onnxruntime duplicates it first), so its Q stays int8."""
    view = GraphView.of(model, context)
    if not view.has_op("QuantizeLinear") or not view.can_run("", "QLinearConv"):
        return False
    rewriter = Rewriter(view)
    converted: dict[tuple[float, int], str] = {}
    retyped: set[str] = set()
    for index in view.indices_of(["QuantizeLinear"], ("", "ai.onnx")):
        node = view.nodes[index]
        q = _quant_params(view, index, node, node.output[0], (TensorProto.INT8,))
        if q is None or not q.per_tensor or attr(node, "output_dtype", 0) not in (0, q.elem):
            continue
        found = view.sole_consumer(node.output[0])
        if found is None or rewriter.claimed([found[0]]):
            continue
        dq_index, dq_node = found
        if dq_node.op_type != "DequantizeLinear" or (dq_node.domain or "") not in ("", "ai.onnx"):
            continue
        dq = _quant_params(view, dq_index, dq_node, dq_node.input[0], (TensorProto.INT8,))
        if dq is None or dq_node.input[0] != node.output[0] or not q.same_params(dq):
            continue
        if len(view.consumers_of(dq_node.output[0])) > 1:
            continue
        key = (float(q.scale.reshape(-1)[0]), int(q.zero_point.reshape(-1)[0]))
        zp = converted.get(key)
        if zp is None:
            shifted = np.array(key[1] + 128, np.uint8).reshape(q.zero_point.shape)
            zp = converted[key] = rewriter.add_initializer(shifted, "qdq_s8_to_u8_zero_point")
        new_q, new_dq = onnx_copy(node), onnx_copy(dq_node)
        new_q.input[2] = zp
        new_dq.input[2] = zp
        rewriter.replace([index], [new_q])
        rewriter.replace([dq_index], [new_dq])
        retyped.add(node.output[0])
    if not rewriter.commit():
        return False
    for info in model.graph.value_info:  # the Q outputs are uint8 now
        if info.name in retyped and info.type.HasField("tensor_type"):
            info.type.tensor_type.elem_type = TensorProto.UINT8
    return True


def onnx_copy(node: NodeProto) -> NodeProto:
    """A copy of ``node``."""
    copy = NodeProto()
    copy.CopyFrom(node)
    return copy
