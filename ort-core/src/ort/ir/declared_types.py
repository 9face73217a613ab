"""The type check of declared ops: a node's value types against its declared schema's formal
parameters, as ONNX Runtime checks every node against its op's schema.

onnx's shape inference checks the types of ONNX ops (:func:`ort.ir.loading.infer_types`); ops
known only from a provider's declaration (:class:`~ort.ir.schemas.DeclaredSchema`) are checked
here, once the model's types are inferred: an input type the op does not allow is
:class:`~ort.errors.InvalidGraph`, a type parameter bound to two types and an output whose
declared type contradicts the one its inputs imply are :class:`~ort.errors.Fail`
(:meth:`~ort.ir.schemas.DeclaredSchema.check_types`). A model without declared ops costs one
pass over its nodes' op types.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import onnx
from onnx import GraphProto, ModelProto, NodeProto, TensorProto, TypeProto

from .schemas import DeclaredSchema, SchemaTable, onnx_schema

__all__ = ["check_declared_types", "check_declared_node", "check_node_types", "type_string",
           "element_type_string"]

_ONNX_DOMAINS = ("", "ai.onnx.ml")
#: ONNX ops whose subgraphs hold nodes of their own to check (their outer-scope values are
#: the enclosing graph's).
_SUBGRAPH_OPS = frozenset({("", "If"), ("", "Loop"), ("", "Scan"), ("", "SequenceMap")})

_ELEMENT_NAMES = {value: name.lower() for name, value in TensorProto.DataType.items()
                  if value != TensorProto.UNDEFINED}


def element_type_string(elem_type: int) -> str | None:
    """onnx's name of an element type (``'float'``, ``'float8e4m3fn'``); None when unknown."""
    return _ELEMENT_NAMES.get(elem_type)


def type_string(tp: TypeProto | None) -> str | None:
    """onnx's type string of ``tp`` (``'tensor(float)'``, ``'seq(tensor(int64))'``,
    ``'map(string,tensor(float))'``), the form schemas' type constraints use; None when the
    type (or its element type) is unknown."""
    if tp is None:
        return None
    kind = tp.WhichOneof("value")
    if kind in ("tensor_type", "sparse_tensor_type"):
        element = element_type_string(getattr(tp, kind).elem_type)
        if element is None:
            return None
        return f"tensor({element})" if kind == "tensor_type" else f"sparse_tensor({element})"
    if kind == "sequence_type":
        inner = type_string(tp.sequence_type.elem_type)
        return None if inner is None else f"seq({inner})"
    if kind == "optional_type":
        inner = type_string(tp.optional_type.elem_type)
        return None if inner is None else f"optional({inner})"
    if kind == "map_type":
        key = element_type_string(tp.map_type.key_type)
        value = type_string(tp.map_type.value_type)
        return None if key is None or value is None else f"map({key},{value})"
    return None


def check_declared_types(model: ModelProto, schemas: SchemaTable) -> None:
    """Check the value types of every node of ``model`` whose op ``schemas`` declares with
    types (ops of other domains than ONNX's, and ONNX-domain versions onnx lacks), in the main
    graph and the subgraphs of If, Loop, Scan and SequenceMap, in node order.

    ``model`` is the type-inferred model (:func:`ort.ir.loading.infer_types`): the types are
    those of its graph inputs, initializers, value_info and graph outputs; a value of unknown
    type is not checked. Raises what ONNX Runtime raises for the first node that fails."""
    if not len(schemas):
        return
    opsets = {("" if o.domain == "ai.onnx" else o.domain): o.version for o in model.opset_import}
    _check_graph(model.graph, opsets, schemas, {})


def _check_graph(graph: GraphProto, opsets: Mapping[str, int], schemas: SchemaTable,
                 outer: Mapping[str, TypeProto | str]) -> None:
    keys = {(n.domain, n.op_type) for n in graph.node}
    declared = {key for key in keys
                if schemas.declares("" if key[0] == "ai.onnx" else key[0], key[1])}
    nesting = {key for key in keys if ("" if key[0] == "ai.onnx" else key[0], key[1])
               in _SUBGRAPH_OPS}
    if not declared and not nesting:
        return
    to_check: list[tuple[NodeProto, DeclaredSchema | None]] = []
    for node in graph.node:
        key = (node.domain, node.op_type)
        if key in declared:
            schema = _declared_schema(node, opsets, schemas)
            if schema is not None and (schema.input_types or schema.output_types):
                to_check.append((node, schema))
        elif key in nesting:
            to_check.append((node, None))
    if not to_check:
        return
    types = _value_types(graph, {name for node, _ in to_check
                                 for name in (*node.input, *node.output) if name}, outer,
                         whole=any(schema is None for _, schema in to_check))
    for node, schema in to_check:
        if schema is None:
            for attr in node.attribute:
                for sub in ((attr.g,) if attr.type == onnx.AttributeProto.GRAPH else
                            attr.graphs if attr.type == onnx.AttributeProto.GRAPHS else ()):
                    _check_graph(sub, opsets, schemas, types)
            continue
        check_node_types(schema, node, types)


def check_declared_node(node: NodeProto, opsets: Mapping[str, int], schemas: SchemaTable,
                        types: Mapping[str, TypeProto | str | None]) -> None:
    """Check one node's types (looked up in ``types`` by value name) against the declaration
    that governs it at ``opsets`` (domain -> version), if ``schemas`` declares its op with
    types and ONNX does not define the op at that version; for type inference to call on a
    node before it infers the node's outputs, so that a node's type error is found before the
    errors of the nodes its outputs feed, in node order, as ONNX Runtime finds it."""
    if not schemas.declares("" if node.domain == "ai.onnx" else node.domain, node.op_type):
        return
    schema = _declared_schema(node, opsets, schemas)
    if schema is not None:
        check_node_types(schema, node, types)


def check_node_types(schema: DeclaredSchema, node: NodeProto,
                     types: Mapping[str, TypeProto | str | None]) -> None:
    """Check ``node``'s input and output types, looked up by value name in ``types`` (a
    ``TypeProto`` or a type string; absent or None: unknown), against ``schema``
    (:meth:`~ort.ir.schemas.DeclaredSchema.check_types`). The output types are those known
    before the node's own inference (declared by the model), as ONNX Runtime compares them."""
    if not schema.input_types and not schema.output_types:
        return
    schema.check_types([_type_of(types.get(n)) if n else None for n in node.input],
                       node.name, node.input,
                       [_type_of(types.get(n)) if n else None for n in node.output],
                       node.output)


def _declared_schema(node: NodeProto, opsets: Mapping[str, int],
                     schemas: SchemaTable) -> DeclaredSchema | None:
    """The declaration that governs ``node`` (as validation picks it), or None."""
    domain = "" if node.domain == "ai.onnx" else node.domain
    opset = opsets.get(domain)
    if opset is None:
        return None
    schema = schemas.lookup(domain, node.op_type, opset)
    if schema is None:
        return None
    if domain in _ONNX_DOMAINS and onnx_schema(node.op_type, domain, opset) is not None:
        return None  # ONNX defines the op at this opset: onnx's inference checked it
    return schema


def _value_types(graph: GraphProto, names: set[str], outer: Mapping[str, TypeProto | str],
                 whole: bool) -> dict[str, TypeProto | str]:
    """The types of ``names`` (of every value when ``whole``: subgraphs read any of them),
    outer-scope ones included: ``TypeProto`` from the graph's value infos, the type string of
    initializers."""
    types: dict[str, TypeProto | str] = dict(outer) if whole else {
        name: outer[name] for name in names if name in outer}
    wanted = (lambda name: True) if whole else names.__contains__
    values: Iterable[onnx.ValueInfoProto] = (*graph.input, *graph.value_info, *graph.output)
    for vi in values:
        if wanted(vi.name) and vi.type.WhichOneof("value") is not None:
            types[vi.name] = vi.type
    for tensor in graph.initializer:
        if wanted(tensor.name):
            types[tensor.name] = _tensor_string(tensor.data_type)
    for sparse in graph.sparse_initializer:  # dense to the graph, as ONNX Runtime makes it
        if wanted(sparse.values.name):
            types[sparse.values.name] = _tensor_string(sparse.values.data_type)
    return types


def _tensor_string(elem_type: int) -> str | None:
    element = element_type_string(elem_type)
    return None if element is None else f"tensor({element})"


def _type_of(value: TypeProto | str | None) -> str | None:
    return value if value is None or isinstance(value, str) else type_string(value)
