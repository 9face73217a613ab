"""Declaring the schemas of onnxruntime's contrib ops (``com.microsoft``, and the few it adds
to the ONNX domain below ONNX's own versions).

ONNX does not know these ops, so the CPU provider declares each one it runs through the core's
``ort_register_schemas`` hook: inputs, outputs, every attribute with its default, and a type
inference function. The core checks nodes against the declaration (unknown attributes, missing
required ones, wrong input counts are ``InvalidGraph``) and types their outputs, so
``NodeArg`` shapes and ONNX's inference downstream work past them. Each declaration also gets
the types of its formal parameters from onnxruntime's schema of the op (:mod:`.contrib_types`,
generated from onnxruntime), so that a node's value types are checked as onnxruntime checks
them: an op onnxruntime does not define at that version is declared without types.

Each kernel module that registers contrib kernels lists its declarations in ``SCHEMAS``; the
helpers here keep each declaration to a few lines:

    SCHEMAS = [
        declare("QuickGelu", inputs=1, attributes={"alpha": 1.702}, infer=like_input(0)),
    ]

Type inference functions take the inputs' ``TypeProto`` (None where unknown or omitted) and
the node's attributes (defaults filled in) and return one ``TypeProto`` or None per output.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from onnx import TensorProto, TypeProto, helper, shape_inference
from ort.ep import REQUIRED, DeclaredSchema

from .contrib_types import CONTRIB_TYPES

__all__ = ["MS", "REQUIRED", "declare", "tensor_type", "elem_type", "dims", "like_input",
           "Dim", "Infer", "typed", "FLOAT", "like_onnx",
           "typed_with_values", "constant_ints"]

MS = "com.microsoft"
FLOAT = TensorProto.FLOAT

#: A dim in inference: an int (fixed), a str (symbolic) or None (unknown).
Dim = int | str | None
#: ``infer(input_types, attrs) -> output types``.
Infer = Callable[[Sequence[TypeProto | None], Mapping[str, Any]], Sequence[TypeProto | None]]


def declare(op_type: str, *, inputs: int | tuple[int, int | None] = 1,
            outputs: int | tuple[int, int | None] = 1, attributes: Mapping[str, Any] | None = None,
            infer: Infer | None = None, since: int = 1, domain: str = MS,
            doc: str = "", uses_values: bool = False) -> DeclaredSchema:
    """A :class:`~ort.ep.DeclaredSchema`; ``inputs``/``outputs`` are a count or a
    ``(min, max)`` range (max None: variadic). ``uses_values``: ``infer`` takes a third
    argument, the values of the inputs that are small constants (None for the others). The
    formal parameter types are onnxruntime's for the op at ``since`` (:mod:`.contrib_types`),
    none where onnxruntime does not define it."""
    min_in, max_in = (inputs, inputs) if isinstance(inputs, int) else inputs
    min_out, max_out = (outputs, outputs) if isinstance(outputs, int) else outputs
    types = CONTRIB_TYPES.get(("" if domain == "ai.onnx" else domain, op_type, since))
    typing: dict[str, Any] = {} if types is None else {
        "input_types": types.inputs, "output_types": types.outputs,
        "type_constraints": types.constraints,
        "variadic_inputs_homogeneous": types.homogeneous_inputs,
        "variadic_outputs_homogeneous": types.homogeneous_outputs}
    return DeclaredSchema(op_type=op_type, domain=domain, since_version=since,
                          min_inputs=min_in, max_inputs=max_in, min_outputs=min_out,
                          max_outputs=max_out, attributes=dict(attributes or {}),
                          infer=infer, doc=doc, uses_values=uses_values, **typing)


def tensor_type(element: int | None, shape: Sequence[Dim] | None = None) -> TypeProto | None:
    """A tensor ``TypeProto`` of ``element`` (None: unknown, so no type) and ``shape``
    (None: unknown rank; a None dim: unknown size)."""
    if not element:
        return None
    tp = TypeProto()
    tp.tensor_type.elem_type = int(element)
    if shape is not None:
        out = tp.tensor_type.shape
        out.SetInParent()
        for d in shape:
            dim = out.dim.add()
            if isinstance(d, int) and d >= 0:
                dim.dim_value = d
            elif isinstance(d, str) and d:
                dim.dim_param = d
    return tp


def elem_type(tp: TypeProto | None) -> int | None:
    """The tensor element type of ``tp`` (None when unknown)."""
    if tp is None or tp.WhichOneof("value") != "tensor_type" or not tp.tensor_type.elem_type:
        return None
    return tp.tensor_type.elem_type


def dims(tp: TypeProto | None) -> list[Dim] | None:
    """The dims of ``tp``'s shape (int, str or None each), or None when its rank is unknown."""
    if tp is None or tp.WhichOneof("value") != "tensor_type" \
            or not tp.tensor_type.HasField("shape"):
        return None
    out: list[Dim] = []
    for d in tp.tensor_type.shape.dim:
        kind = d.WhichOneof("value")
        out.append(d.dim_value if kind == "dim_value" else d.dim_param if kind == "dim_param"
                   else None)
    return out


def like_input(index: int = 0, outputs: int = 1) -> Infer:
    """Inference: each of ``outputs`` outputs has input ``index``'s type and shape."""

    def infer(types: Sequence[TypeProto | None], attrs: Mapping[str, Any]):
        source = types[index] if index < len(types) else None
        return [source] * outputs

    return infer


def typed(*outputs: Callable[[Sequence[TypeProto | None], Mapping[str, Any]],
                             TypeProto | None]) -> Infer:
    """Inference from one function per output (each ``fn(types, attrs) -> TypeProto|None``);
    a function that raises leaves its output untyped."""

    def infer(types: Sequence[TypeProto | None], attrs: Mapping[str, Any]):
        result = []
        for fn in outputs:
            try:
                result.append(fn(types, attrs))
            except (IndexError, KeyError, TypeError, ValueError):
                result.append(None)
        return result

    return infer


def like_onnx(op_type: str, opset: int, inputs: int | None = None,
              drop: Sequence[str] = (), rename: Mapping[str, str] | None = None,
              outputs: int = 1) -> Infer:
    """Inference: the outputs of the ONNX op ``op_type`` at ``opset`` given the node's first
    ``inputs`` inputs (all by default) and its attributes less ``drop`` (``rename`` maps a
    contrib attribute name to the ONNX one); for contrib ops that extend an ONNX op (FusedConv
    is Conv with an activation). ONNX's own shape inference computes it."""

    def infer(types: Sequence[TypeProto | None], attrs: Mapping[str, Any]):
        chosen = list(types if inputs is None else types[:inputs])
        while chosen and chosen[-1] is None:
            chosen.pop()
        if any(t is None for t in chosen):
            return [None] * outputs
        names = [f"i{k}" for k in range(len(chosen))]
        kept = {(rename or {}).get(k, k): v for k, v in attrs.items()
                if k not in drop and v is not None}
        node = helper.make_node(op_type, names, [f"o{k}" for k in range(outputs)], **kept)
        graph = helper.make_graph([node], "infer",
                                  [helper.make_value_info(n, t) for n, t in zip(names, chosen)],
                                  [helper.make_empty_tensor_value_info(f"o{k}")
                                   for k in range(outputs)])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        inferred = shape_inference.infer_shapes(model, strict_mode=True)
        found = {vi.name: vi.type for vi in inferred.graph.output}
        return [found.get(f"o{k}") if found.get(f"o{k}") is not None
                and elem_type(found[f"o{k}"]) else None for k in range(outputs)]

    return infer


def typed_with_values(*outputs: Callable[..., TypeProto | None]) -> Infer:
    """Like :func:`typed` for schemas declared with ``uses_values=True``: each function is
    ``fn(types, attrs, values) -> TypeProto|None``, ``values`` holding the constant inputs'
    arrays (None for the others)."""

    def infer(types: Sequence[TypeProto | None], attrs: Mapping[str, Any],
              values: Sequence[Any]):
        result = []
        for fn in outputs:
            try:
                result.append(fn(types, attrs, values))
            except (IndexError, KeyError, TypeError, ValueError):
                result.append(None)
        return result

    return infer


def constant_ints(values: Sequence[Any], index: int) -> list[int] | None:
    """Input ``index``'s constant value as a list of ints, or None when it is not constant."""
    value = values[index] if index < len(values) else None
    return None if value is None else [int(v) for v in value.reshape(-1)]


