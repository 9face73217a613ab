"""Level-2 ``AttentionFusion``: BERT self-attention -> ``com.microsoft:Attention``.

The exact pattern fused (what ``torch.onnx.export`` writes for ``BertSelfAttention``)::

    q = Transpose[0,2,1,3](Reshape(Add(MatMul(X, Wq), bq), [B, S, H, D]))
    k = Transpose[0,2,3,1](Reshape(Add(MatMul(X, Wk), bk), [B, S, H, D]))
        (or Transpose[0,1,3,2] of Transpose[0,2,1,3])
    v = Transpose[0,2,1,3](Reshape(Add(MatMul(X, Wv), bv), [B, S, H, D]))
    scores = MatMul(q, k) / c   (or * c; or no scaling)
    scores = scores + mask      (optional; mask = (1 - Cast(Unsqueeze(m, [1, 2]))) * f)
    out = Reshape(Transpose[0,2,1,3](MatMul(Softmax(scores, axis=-1), v)), [B, S, H * D])

with constant weights ``Wq, Wk, Wv`` of one shape ``[input_hidden, H * D]`` and constant 1-D
biases (absent biases count as zeros). Reshape targets may be constants (``0`` copies a dim) or
``Concat`` of ``Unsqueeze(Gather(Shape(t), i))`` pieces whose dims equal the data's dims
(:func:`~ort.optimizer.shape_values.shape_elements`).
The fused node is ``Attention(X, [Wq|Wk|Wv], [bq|bk|bv], Cast(m, int32))`` with ``num_heads=H``,
``scale`` and ``mask_filter_value=f``: for a 0/1 mask ``m`` this is what the subgraph computes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from onnx import ModelProto, NodeProto, TensorProto

from .context import OptimizerContext
from .patterns import (
    MS_DOMAIN, GraphView, Rewriter, attr, const_operand, fuse_node_pattern, is_default_domain,
)
from .shape_values import same_dim, shape_elements

__all__ = ["fuse_attention"]

def _reshape_to_heads(view: GraphView, reshape: NodeProto) -> tuple[int, int] | None:
    """(heads, head size) of a Reshape [B, S, hidden] -> [B, S, H, D]."""
    if int(attr(reshape, "allowzero", 0)) != 0:
        return None
    elements = shape_elements(view, reshape.input[1])
    data = reshape.input[0]
    if elements is None or len(elements) != 4 or view.rank(data) != 3:
        return None
    heads, size = elements[2], elements[3]
    if not (isinstance(heads, int) and isinstance(size, int) and heads > 0 and size > 0):
        return None
    copies = [same_dim(view, elements[i], data, i) for i in (0, 1)]
    inferred = [elements[i] == -1 for i in (0, 1)]
    if not all(c or f for c, f in zip(copies, inferred)) or all(inferred):
        return None
    return heads, size


def _merges_heads(view: GraphView, reshape: NodeProto, hidden: int) -> bool:
    """Whether a Reshape turns [B, S, H, D] into [B, S, hidden]."""
    if int(attr(reshape, "allowzero", 0)) != 0:
        return False
    elements = shape_elements(view, reshape.input[1])
    if elements is None or len(elements) != 3:
        return False
    copies = [same_dim(view, elements[i], reshape.input[0], i) for i in (0, 1)]
    if elements[2] == hidden:
        return all(c or e == -1 for c, e in zip(copies, elements[:2])) and not (
            elements[0] == -1 and elements[1] == -1)
    return elements[2] == -1 and all(copies)


def _transpose(view: GraphView, name: str, perm: list[int]) -> tuple[int, NodeProto] | None:
    found = view.producer_of(name, "Transpose")
    if found is None or list(attr(found[1], "perm", [])) != perm:
        return None
    return found


def _projection(view: GraphView, head_input: str, key: bool) -> dict[str, Any] | None:
    """Walk a Q/K/V branch back from the attention MatMul input: transposes, reshape,
    bias Add, MatMul with a constant weight. Returns its nodes and parameters."""
    nodes: list[int] = []
    if key:
        found = _transpose(view, head_input, [0, 2, 3, 1])
        if found is None:
            outer = _transpose(view, head_input, [0, 1, 3, 2])
            if outer is None:
                return None
            nodes.append(outer[0])
            found = _transpose(view, outer[1].input[0], [0, 2, 1, 3])
    else:
        found = _transpose(view, head_input, [0, 2, 1, 3])
    if found is None:
        return None
    nodes.append(found[0])
    reshape = view.producer_of(found[1].input[0], "Reshape")
    if reshape is None:
        return None
    nodes.append(reshape[0])
    heads = _reshape_to_heads(view, reshape[1])
    if heads is None:
        return None
    linear = reshape[1].input[0]
    bias = None
    add = view.producer_of(linear, "Add")
    if add is not None:
        for side in (0, 1):
            value = view.const(add[1].input[side])
            if value is not None and value.ndim == 1:
                bias = value
                linear = add[1].input[1 - side]
                nodes.append(add[0])
                break
        else:
            return None
    matmul = view.producer_of(linear, "MatMul")
    if matmul is None:
        return None
    nodes.append(matmul[0])
    weight = view.const(matmul[1].input[1])
    if weight is None or weight.ndim != 2 or weight.dtype != np.float32:
        return None
    if bias is None:
        bias = np.zeros(weight.shape[1], np.float32)
    if bias.shape != (weight.shape[1],) or bias.dtype != np.float32:
        return None
    return {"nodes": nodes, "x": matmul[1].input[0], "weight": weight, "bias": bias,
            "heads": heads}


def _raw_mask(view: GraphView, mask: str) -> tuple[str, float] | None:
    """(m, filter value) when ``mask`` is ``(1 - Cast(Unsqueeze(m, [1, 2]), float)) * f``."""
    mul = view.producer_of(mask, "Mul")
    if mul is None:
        return None
    operand = const_operand(view, mul[1])
    if operand is None:
        return None
    sub = view.producer_of(mul[1].input[operand[0]], "Sub")
    if sub is None or not math.isclose(view.scalar(sub[1].input[0]) or 0.0, 1.0):
        return None
    cast = view.producer_of(sub[1].input[1], "Cast")
    if cast is None or int(attr(cast[1], "to", 0)) != TensorProto.FLOAT:
        return None
    value = cast[1].input[0]
    axes: list[int] = []
    for _ in range(2):
        unsqueeze = view.producer_of(value, "Unsqueeze")
        if unsqueeze is None:
            break
        node_axes = attr(unsqueeze[1], "axes")
        if node_axes is None and len(unsqueeze[1].input) > 1:
            axes_value = view.const(unsqueeze[1].input[1])
            node_axes = None if axes_value is None else axes_value.reshape(-1).tolist()
        if node_axes is None:
            return None
        axes = list(node_axes) + axes
        value = unsqueeze[1].input[0]
    if axes not in ([1, 2], [1, 1]) or view.rank(value) != 2:
        return None  # [1, 1]: Unsqueeze(1) then Unsqueeze(1) of a [B, S] mask
    if view.elem_type(value) not in (TensorProto.INT32, TensorProto.INT64, TensorProto.BOOL,
                                     TensorProto.FLOAT):
        return None
    return value, operand[1]


_SHAPE_OPS = ("Shape", "Gather", "Unsqueeze", "Concat")


def _private_shape_nodes(view: GraphView, nodes: list[int]) -> list[int]:
    """The Shape/Gather/Unsqueeze/Concat nodes computing the pattern's Reshape targets that
    nothing outside the pattern reads (they go with it)."""
    chain: set[int] = set()
    pending = [view.nodes[i].input[1] for i in nodes if view.nodes[i].op_type == "Reshape"]
    while pending:
        found = view.producer_of(pending.pop(), _SHAPE_OPS)
        if found is None or found[0] in chain:
            continue
        chain.add(found[0])
        if found[1].op_type != "Shape":
            pending.extend(n for n in found[1].input if n)
    core = set(nodes)
    while True:
        group = core | chain
        outside = {i for i in chain
                   if not all(view.internal(o, group) for o in view.nodes[i].output if o)}
        if not outside:
            return sorted(chain)
        chain -= outside


def _reader(view: GraphView, value: str, op_type: str) -> tuple[int, NodeProto] | None:
    """The only ``op_type`` node reading ``value`` as its first input."""
    found = [(i, n) for i, n in view.consumers_of(value)
             if n.op_type == op_type and is_default_domain(n) and n.input[0] == value]
    return found[0] if len(found) == 1 else None


def _softmax_last_axis(view: GraphView, softmax: NodeProto) -> bool:
    opset = view.opset() or 0
    axis = int(attr(softmax, "axis", -1 if opset >= 13 else 1))
    return axis in (-1, 3)


def _match_attention(view: GraphView, rewriter: Rewriter, index: int, softmax: NodeProto,
                     mask_casts: dict[str, str]) -> None:
    if not _softmax_last_axis(view, softmax):
        return
    # softmax -> MatMul(probs, v) -> Transpose -> Reshape (other readers are checked below)
    context_mm = _reader(view, softmax.output[0], "MatMul")
    merged = context_mm and _reader(view, context_mm[1].output[0], "Transpose")
    if merged is None or list(attr(merged[1], "perm", [])) != [0, 2, 1, 3]:
        return
    final = _reader(view, merged[1].output[0], "Reshape")
    if final is None:
        return
    nodes = [index, context_mm[0], merged[0], final[0]]
    # scores [+ mask] <- scale <- MatMul(q, k)
    scores = softmax.input[0]
    mask = None
    add = view.producer_of(scores, "Add")
    if add is not None:
        for side in (0, 1):
            raw = _raw_mask(view, add[1].input[1 - side])
            if raw is not None and view.producer_of(add[1].input[side], ("Div", "Mul", "MatMul")):
                mask = raw
                nodes.append(add[0])
                scores = add[1].input[side]
                break
        else:
            return
    scale = 1.0
    scaled = view.producer_of(scores, ("Div", "Mul"))
    if scaled is not None:
        operand = const_operand(view, scaled[1])
        if operand is None or (scaled[1].op_type == "Div" and operand[0] != 0) or operand[1] == 0:
            return
        scale = 1.0 / operand[1] if scaled[1].op_type == "Div" else operand[1]
        nodes.append(scaled[0])
        scores = scaled[1].input[operand[0]]
    qk = view.producer_of(scores, "MatMul")
    if qk is None:
        return
    nodes.append(qk[0])
    q = _projection(view, qk[1].input[0], key=False)
    k = _projection(view, qk[1].input[1], key=True)
    v = _projection(view, context_mm[1].input[1], key=False)
    if q is None or k is None or v is None:
        return
    x = q["x"]
    if k["x"] != x or v["x"] != x or view.rank(x) != 3:
        return
    if not view.is_float(x, (TensorProto.FLOAT,)):
        return
    heads, head_size = q["heads"]
    hidden = heads * head_size
    if k["heads"] != q["heads"] or v["heads"] != q["heads"]:
        return
    if any(p["weight"].shape != (q["weight"].shape[0], hidden) for p in (q, k, v)):
        return
    if not _merges_heads(view, final[1], hidden):
        return
    nodes += q["nodes"] + k["nodes"] + v["nodes"]
    if len(set(nodes)) != len(nodes):
        return
    nodes += _private_shape_nodes(view, nodes)
    group = set(nodes)
    for i in nodes:
        if i != final[0] and not all(view.internal(o, group) for o in view.nodes[i].output if o):
            return
    if rewriter.claimed(nodes):
        return
    weights = np.concatenate([q["weight"], k["weight"], v["weight"]], axis=1)
    biases = np.concatenate([q["bias"], k["bias"], v["bias"]])
    inputs = [x, rewriter.add_initializer(weights, f"{final[1].name or 'Attention'}_qkv_weight"),
              rewriter.add_initializer(biases, f"{final[1].name or 'Attention'}_qkv_bias")]
    attrs: dict[str, Any] = {"num_heads": heads}
    if not math.isclose(scale, 1 / math.sqrt(head_size), rel_tol=1e-6):
        attrs["scale"] = float(scale)
    if mask is not None:
        raw, filter_value = mask
        attrs["mask_filter_value"] = float(filter_value)
        if view.elem_type(raw) == TensorProto.INT32:
            inputs.append(raw)
        else:
            if raw not in mask_casts:  # one Cast per mask, right after the mask itself
                mask_casts[raw] = view.unique_name(f"{raw}_int32")
                rewriter.insert_after(raw, [rewriter.make_node(
                    "Cast", [raw], [mask_casts[raw]], "Attention_mask_cast",
                    to=TensorProto.INT32)])
            inputs.append(mask_casts[raw])
    rewriter.replace(nodes, [rewriter.make_node("Attention", inputs, [final[1].output[0]],
                                                "Attention_fused", domain=MS_DOMAIN, **attrs)])


def fuse_attention(model: ModelProto, context: OptimizerContext) -> bool:
    """BERT-style multi-head self-attention -> com.microsoft:Attention (see module docs)."""
    if not GraphView.of(model, context).can_run(MS_DOMAIN, "Attention"):
        return False
    mask_casts: dict[str, str] = {}
    return fuse_node_pattern(
        model, context, ["Softmax"],
        lambda view, rewriter, index, node: _match_attention(view, rewriter, index, node,
                                                             mask_casts))
