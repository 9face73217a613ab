"""Level-2 (``ORT_ENABLE_EXTENDED``) fusions of RMS normalization (T5, Llama, Mistral ...).

* ``SimplifiedLayerNormFusion``: the subgraph torch exports for RMSNorm,
  ``scale * (x / Sqrt(ReduceMean(Pow(x, 2)) + eps))``, becomes ``SimplifiedLayerNormalization``
  (ONNX domain, since 1; ``axis``, ``epsilon``, ``stash_type``). The division may also be
  ``x * Reciprocal(sqrt)`` or ``x * (1 / sqrt)`` (``torch.rsqrt``), the square ``Mul(x, x)``;
  a ``Cast`` to float before it (``x.to(torch.float32)``) and a ``Cast`` back before the scale
  (``.to(input_dtype)``) fold into the op, which computes in float and returns the scale's
  type. Without a scale Mul the fused op gets a scale of ones. The exponent and epsilon may
  be ``CastLike(constant, x)``, as the dynamo exporter and onnxscript write scalars.
* ``SkipSimplifiedLayerNormFusion``: ``Add(input, skip) [+ bias] -> SimplifiedLayerNormalization``
  becomes ``com.microsoft:SkipSimplifiedLayerNormalization``; when the sum is read elsewhere
  too (the residual stream), they read the op's ``input_skip_bias_sum`` output.

Each pass fires only where ``context.has_kernel`` finds a kernel for the op it produces, on
float32 inputs (float16 ones behind the Cast to float), so a saved optimized model also runs
on onnxruntime; the normalized axes must be the trailing ones, with known sizes.
"""

from __future__ import annotations

import numpy as np
from onnx import ModelProto, NodeProto, TensorProto

from .context import OptimizerContext
from .norm_fusions import (
    _reduce_axes, _trailing_axis, broadcast_param, skip_norm_outputs, take_bias_add,
)
from .patterns import (
    MS_DOMAIN, FLOAT32, GraphView, Rewriter, attr, close, fuse_node_pattern,
    is_default_domain, other_input,
)

__all__ = ["fuse_simplified_layer_norm", "fuse_skip_simplified_layer_norm", "scalar_value",
           "scalar_operand"]

#: Element types of the fused op's input (T) and scale / output (V).
_T_TYPES = (TensorProto.FLOAT, TensorProto.FLOAT16)
_CAST_TYPES = {TensorProto.FLOAT: np.float32, TensorProto.FLOAT16: np.float16}


def scalar_value(view: GraphView, name: str) -> float | None:
    """The value of a one-element constant, also behind ``CastLike(constant, x)`` (exporters
    such as onnxscript and torch's dynamo exporter write a Python scalar that way) or the
    ``Cast`` that ``CastLikeToCast`` makes of it when constant folding is off."""
    value = view.scalar(name)
    if value is not None:
        return value
    found = view.producer_of(name, ("CastLike", "Cast"))
    if found is None or not found[1].input:
        return None
    return view.scalar(found[1].input[0])


def scalar_operand(view: GraphView, node: NodeProto) -> tuple[int, float] | None:
    """(index of the other input, value) of a binary node with one scalar constant input
    (see :func:`scalar_value`)."""
    if len(node.input) != 2:
        return None
    for i in (1, 0):
        value = scalar_value(view, node.input[i])
        if value is not None:
            return 1 - i, value
    return None


def _type_readers(view: GraphView, value: str) -> set[int]:
    """Indices of the CastLike nodes reading ``value`` only for its type (``CastLike(c,
    value)``, as exporters cast a scalar to the type of what it meets)."""
    return {i for i, n in view.consumers_of(value)
            if n.op_type == "CastLike" and is_default_domain(n) and len(n.input) == 2
            and n.input[1] == value and n.input[0] != value}


def _sole(view: GraphView, value: str, op_types: tuple[str, ...]) -> tuple[int, NodeProto] | None:
    """The only node reading ``value`` (but for :func:`_type_readers`), when it is an ai.onnx
    node of ``op_types`` and ``value`` is internal."""
    if value in view.protected:
        return None
    like = _type_readers(view, value)
    readers = [i for i in view.consumers.get(value, []) if i not in like]
    if len(readers) != 1:
        return None
    node = view.nodes[readers[0]]
    if node.op_type not in op_types or not is_default_domain(node):
        return None
    return readers[0], node


def _type_readers_within(view: GraphView, values: list[str],
                         indices: list[int]) -> list[int] | None:
    """The CastLike nodes that read ``values`` (which a fusion of the nodes ``indices``
    removes) for their type and feed only those nodes; None when anything else reads one."""
    found = []
    for value in values:
        if value in view.protected:
            return None
        like = _type_readers(view, value)
        for i in view.consumers.get(value, []):
            if i in indices:
                continue
            if i not in like or not view.internal(view.nodes[i].output[0], indices):
                return None
            found.append(i)
    return found


def _cast_to(node: NodeProto) -> int | None:
    return int(attr(node, "to", 0)) if node.op_type == "Cast" and is_default_domain(node) else None


def _square_of(view: GraphView, node: NodeProto) -> str | None:
    """x when ``node`` is ``Pow(x, 2)`` or ``Mul(x, x)``."""
    if node.op_type == "Pow" and len(node.input) == 2:
        return node.input[0] if close(scalar_value(view, node.input[1]), 2.0, 1e-7) else None
    if node.op_type == "Mul" and len(node.input) == 2 and node.input[0] == node.input[1]:
        return node.input[0]
    return None


def _normalized(view: GraphView, sqrt_out: str, x0: str) -> tuple[list[int], str] | None:
    """(indices, output) of ``x0 / sqrt``, ``x0 * Reciprocal(sqrt)`` or ``x0 * (1 / sqrt)``
    reading ``sqrt_out`` (its only reader)."""
    found = _sole(view, sqrt_out, ("Div", "Reciprocal"))
    if found is None:
        return None
    index, node = found
    if node.op_type == "Div" and list(node.input) == [x0, sqrt_out]:
        return [index], node.output[0]
    if node.op_type == "Div":  # 1 / sqrt
        if node.input[1] != sqrt_out or not close(scalar_value(view, node.input[0]), 1.0, 1e-7):
            return None
    times = _sole(view, node.output[0], ("Mul",))
    if times is None or other_input(times[1], node.output[0]) != x0:
        return None
    return [index, times[0]], times[1].output[0]


def _scale_of(view: GraphView, value: str, normalized: tuple[int, ...],
              out_type: int) -> tuple[int, str | np.ndarray, str] | None:
    """(index, scale, output) of the sole Mul applying a scale along the normalized axes only
    to ``value``: the scale's name when its shape is ``normalized``, else the constant
    broadcast to it."""
    found = _sole(view, value, ("Mul",))
    if found is None:
        return None
    scale = other_input(found[1], value)
    if not scale or scale == value or view.elem_type(scale) != out_type:
        return None
    shape = view.shape(scale)
    if shape is not None and tuple(shape) == normalized:
        return found[0], scale, found[1].output[0]
    constant = view.const(scale)
    full = None if constant is None else broadcast_param(constant, normalized)
    return None if full is None else (found[0], full, found[1].output[0])


def _match_rms_norm(view: GraphView, rewriter: Rewriter, index: int, square: NodeProto) -> None:
    x0 = _square_of(view, square)
    if x0 is None:
        return
    indices = [index]
    mean = _sole(view, square.output[0], ("ReduceMean",))
    axes = None if mean is None else _reduce_axes(view, mean[1])
    shape = view.shape(x0)
    axis = None if axes is None or shape is None else _trailing_axis(axes, len(shape))
    if axis is None:
        return
    normalized = tuple(shape[axis:])
    if not all(isinstance(d, int) and d > 0 for d in normalized):
        return
    add_eps = _sole(view, mean[1].output[0], ("Add",))
    eps = None if add_eps is None else scalar_operand(view, add_eps[1])
    if eps is None or add_eps[1].input[eps[0]] != mean[1].output[0] or eps[1] < 0:
        return
    sqrt = _sole(view, add_eps[1].output[0], ("Sqrt",))
    if sqrt is None:
        return
    divided = _normalized(view, sqrt[1].output[0], x0)
    if divided is None:
        return
    indices += [mean[0], add_eps[0], sqrt[0]] + divided[0]
    if view.elem_type(x0) != TensorProto.FLOAT:
        return
    out, out_type = divided[1], TensorProto.FLOAT
    cast_out = _sole(view, out, ("Cast",))
    if cast_out is not None and _cast_to(cast_out[1]) in _T_TYPES:
        indices.append(cast_out[0])
        out, out_type = cast_out[1].output[0], _cast_to(cast_out[1])
    scale = _scale_of(view, out, normalized, out_type)
    if scale is not None:
        indices.append(scale[0])
        out = scale[2]
    # every value the fusion removes must feed nothing else (but CastLikes of the pattern)
    removed = [o for i in indices for o in view.nodes[i].output if o and o != out]
    type_casts = _type_readers_within(view, removed, indices)
    if type_casts is None:
        return
    indices += type_casts
    # the input: x0 itself, or what a Cast to float (read only by the pattern) converts
    x = x0
    cast_in = view.producer_of(x0, "Cast")
    if cast_in is not None and _cast_to(cast_in[1]) == TensorProto.FLOAT:
        more = _type_readers_within(view, [x0], indices + [cast_in[0]])
        if more is not None and view.elem_type(cast_in[1].input[0]) in _T_TYPES:
            indices += [cast_in[0]] + more
            x = cast_in[1].input[0]
    if view.elem_type(x) not in _T_TYPES or rewriter.claimed(indices):
        return
    if scale is None:
        scale_name = rewriter.add_initializer(np.ones(normalized, _CAST_TYPES[out_type]),
                                              f"{x}_RMSNorm_scale")
    elif isinstance(scale[1], np.ndarray):
        scale_name = rewriter.add_initializer(scale[1], f"{x}_RMSNorm_scale")
    else:
        scale_name = scale[1]
    node = rewriter.make_node("SimplifiedLayerNormalization", [x, scale_name], [out],
                              "SimplifiedLayerNorm_fused", axis=axis, epsilon=float(eps[1]),
                              stash_type=1)
    rewriter.replace(indices, [node])


def fuse_simplified_layer_norm(model: ModelProto, context: OptimizerContext) -> bool:
    """The RMS normalization subgraph -> SimplifiedLayerNormalization."""
    # ONNX itself has no SimplifiedLayerNormalization (onnxruntime adds it to the ONNX domain
    # at version 1), so ask for the kernel directly rather than through ONNX's schemas
    if not context.has_kernel("", "SimplifiedLayerNormalization", 1):
        return False
    return fuse_node_pattern(model, context, ["Pow", "Mul"], _match_rms_norm)


def _match_skip_rms_norm(view: GraphView, rewriter: Rewriter, index: int,
                         norm: NodeProto) -> None:
    if any(o for o in norm.output[1:]) or len(norm.input) != 2:
        return
    rank = view.rank(norm.input[0])
    axis = int(attr(norm, "axis", -1))
    if rank not in (2, 3) or axis not in (-1, rank - 1) or int(attr(norm, "stash_type", 1)) != 1:
        return
    scale = norm.input[1]
    if view.rank(scale) != 1 or not view.is_float(scale, FLOAT32):
        return
    found = view.producer_of(norm.input[0], "Add")
    if found is None or rewriter.claimed([found[0]]) or len(found[1].input) != 2:
        return
    add_index, add = found
    a, b = add.input
    shape = view.shape(a)
    if (shape is None or shape != view.shape(b) or any(d is None for d in shape)
            or not view.is_float(a, FLOAT32) or not view.is_float(b, FLOAT32)):
        return
    inputs, bias, bias_add = take_bias_add(view, rewriter, [a, b], shape)
    indices = [add_index, index] + bias_add
    outputs = skip_norm_outputs(view, add, norm, index)
    if outputs is None:
        return
    node = rewriter.make_node("SkipSimplifiedLayerNormalization",
                              inputs + [scale] + ([bias] if bias else []), outputs,
                              "SkipSimplifiedLayerNorm_fused", domain=MS_DOMAIN,
                              epsilon=float(attr(norm, "epsilon", 1e-5)))
    rewriter.replace(indices, [node])


def fuse_skip_simplified_layer_norm(model: ModelProto, context: OptimizerContext) -> bool:
    """Add of two same-shaped values (plus a bias Add) before a last-axis
    SimplifiedLayerNormalization -> com.microsoft:SkipSimplifiedLayerNormalization."""
    if not GraphView.of(model, context).can_run(MS_DOMAIN, "SkipSimplifiedLayerNormalization"):
        return False
    return fuse_node_pattern(model, context, ["SimplifiedLayerNormalization"],
                             _match_skip_rms_norm)
