"""Model validation before any optimizer pass, with ONNX Runtime's verdicts.

ONNX Runtime checks a model when it loads it (``Model``'s constructor, ``Graph::Resolve``):
the opsets it imports, its initializers' dims and data sizes, the graph's inputs and outputs, that every value is defined once and
read only after it is defined, and every node against its op's schema (onnx's
``checker::check_node``: arity, attribute names and types, required attributes, subgraphs).
:func:`validate_model` makes the same checks, in the same order, and raises the class ONNX
Runtime raises for each (``Fail``, ``InvalidArgument`` or ``InvalidGraph``), so that a model
onnxruntime refuses is refused here before the optimizer could hide what was wrong (two copies
of a node merged, an unknown attribute folded away), at every optimization level. Type and
shape errors are found by inference right after (:func:`ort.ir.loading.infer_types`).

Where ONNX Runtime is lenient, so is this: the main graph's nodes may come in any order (they
are sorted here), and a node of a domain nobody declares is accepted when an installed provider
has a kernel for it. Checking costs about 1 µs a node (onnx's C++ checker, one node at a time).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import onnx
from onnx import ModelProto, NodeProto
from onnx.onnx_cpp2py_export import checker as _checker

from ..errors import Fail, InvalidArgument, InvalidGraph
from .graph import subgraph_free_names, subgraphs_of
from .schemas import SchemaTable, onnx_schema
from .tensors import checked_element_count

__all__ = ["validate_model", "newest_opsets", "OpIsKnown"]

#: ``op_is_known(domain, op_type)``: whether an installed provider has a kernel for the op.
OpIsKnown = Callable[[str, str], bool]

_ONNX_DOMAINS = ("", "ai.onnx.ml", "ai.onnx.training", "ai.onnx.preview.training")


def newest_opsets(schemas: SchemaTable) -> dict[str, int]:
    """The newest opset of every domain this build knows: ONNX's own domains from the installed
    onnx, the others from the schemas providers declare."""
    newest: dict[str, int] = {}
    for schema in onnx.defs.get_all_schemas_with_history():
        domain = "" if schema.domain == "ai.onnx" else schema.domain
        if schema.since_version > newest.get(domain, 0):
            newest[domain] = schema.since_version
    newest[""] = max(newest.get("", 0), onnx.defs.onnx_opset_version())
    for declared in schemas:
        if declared.domain not in _ONNX_DOMAINS and \
                declared.since_version > newest.get(declared.domain, 0):
            newest[declared.domain] = declared.since_version
    return newest


def validate_model(model: ModelProto, schemas: SchemaTable,
                   op_is_known: OpIsKnown = lambda domain, op_type: False) -> None:
    """Check ``model`` as ONNX Runtime does when it loads one; raise its error class if the
    model is invalid. The main graph's nodes are put in topological order in place (ONNX
    Runtime accepts them in any order)."""
    newest = newest_opsets(schemas)
    opsets = _check_opsets(model, newest)
    _import_used_domains(model, newest)
    graph = model.graph
    for tensor in (*graph.initializer, *(s.values for s in graph.sparse_initializer)):
        checked_element_count(tensor)
    _check_value_types(graph)
    _canonical_constants(model)
    _check_interface(graph)
    _sort_nodes(graph)
    _check_outputs_exist(graph)
    for function in model.functions:
        _check_function_body(function)
    _check_nodes(model, opsets, schemas, op_is_known)


def _check_opsets(model: ModelProto, newest: dict[str, int]) -> dict[str, int]:
    """The model's opsets by domain, every known domain it does not import added at its newest
    version (as ONNX Runtime adds them); Fail for a missing ONNX opset or one newer than known."""
    if not len(model.opset_import):
        raise Fail("Missing opset in the model. All ModelProtos MUST have at least one entry "
                   "that specifies which version of the ONNX OperatorSet is being imported.")
    opsets: dict[str, int] = {}
    for entry in model.opset_import:
        domain = "" if entry.domain == "ai.onnx" else entry.domain
        known = newest.get(domain)
        if known is not None and entry.version > known:
            raise Fail(
                f"Opset {entry.version} of domain {domain or 'ai.onnx'} is newer than this "
                f"build knows: support for domain {domain or 'ai.onnx'} is till opset {known} "
                "(ONNX Runtime refuses such a model the same way). Export the model with an "
                "older opset, or upgrade onnx and the providers")
        opsets[domain] = entry.version
    for domain, version in newest.items():
        opsets.setdefault(domain, version)
    return opsets


def _import_used_domains(model: ModelProto, newest: dict[str, int]) -> None:
    """Add an opset import, at its newest version, for every known domain a node uses that the
    model does not import (ONNX Runtime imports every domain it knows)."""
    imported = {"" if o.domain == "ai.onnx" else o.domain for o in model.opset_import}
    used = {"" if n.domain == "ai.onnx" else n.domain for n in _all_nodes(model.graph)}
    for domain in sorted(used - imported):
        if domain in newest:
            model.opset_import.append(onnx.helper.make_opsetid(domain, newest[domain]))


def _all_nodes(graph: onnx.GraphProto) -> Iterable[NodeProto]:
    for node in graph.node:
        yield node
        for attr in node.attribute:
            for sub in subgraphs_of(attr):
                yield from _all_nodes(sub)


#: A Constant node's value by its attribute's type: ONNX Runtime turns a Constant into an
#: initializer from its first attribute, read by type whatever its name (so it never checks
#: the node against Constant's schema).
_CONSTANT_ATTRIBUTE = {
    onnx.AttributeProto.TENSOR: "value", onnx.AttributeProto.SPARSE_TENSOR: "sparse_value",
    onnx.AttributeProto.FLOAT: "value_float", onnx.AttributeProto.FLOATS: "value_floats",
    onnx.AttributeProto.INT: "value_int", onnx.AttributeProto.INTS: "value_ints",
    onnx.AttributeProto.STRING: "value_string", onnx.AttributeProto.STRINGS: "value_strings"}


def _canonical_constants(model: ModelProto) -> None:
    """Every Constant node reduced to the one attribute ONNX Runtime reads (its first, named
    for its type); Fail for one without attributes, InvalidGraph for a first attribute of a
    type a Constant cannot hold, as ONNX Runtime."""
    for node in _all_nodes(model.graph):  # not in function bodies: onnx infers those
        if node.op_type != "Constant" or node.domain not in ("", "ai.onnx"):
            continue
        if not len(node.attribute):
            raise Fail(f"Constant node '{node.name}' has no value attribute: give it one of "
                       f"{sorted(_CONSTANT_ATTRIBUTE.values())}")
        first = node.attribute[0]
        name = _CONSTANT_ATTRIBUTE.get(first.type)
        if name is None:
            raise InvalidGraph(
                f"Unsupported attribute value type of {first.type} in 'Constant' node "
                f"'{node.name}': its value must be one of {sorted(_CONSTANT_ATTRIBUTE.values())}")
        if first.name != name or len(node.attribute) > 1:
            kept = onnx.AttributeProto()
            kept.CopyFrom(first)
            kept.name = name
            del node.attribute[:]
            node.attribute.append(kept)


def _check_value_types(graph: onnx.GraphProto) -> None:
    """Tensor types of the graph's inputs, outputs and value_info name a known element type
    (InvalidArgument, as ONNX Runtime)."""
    for vi in (*graph.input, *graph.output, *graph.value_info):
        bad = _unknown_element_type(vi.type)
        if bad is not None:
            raise InvalidArgument(
                f"Failed to load model with error: Invalid tensor data type {bad} (value "
                f"'{vi.name}'): an element type must be one of onnx.TensorProto's data types")


def _unknown_element_type(tp: onnx.TypeProto) -> int | None:
    kind = tp.WhichOneof("value")
    if kind in ("tensor_type", "sparse_tensor_type"):
        elem = getattr(tp, kind).elem_type
        return None if elem in _ELEMENT_TYPES else elem
    if kind == "sequence_type":
        return _unknown_element_type(tp.sequence_type.elem_type)
    if kind == "optional_type":
        return _unknown_element_type(tp.optional_type.elem_type)
    if kind == "map_type":
        return _unknown_element_type(tp.map_type.value_type)
    return None


_ELEMENT_TYPES = frozenset(v for v in onnx.TensorProto.DataType.values()
                           if v != onnx.TensorProto.UNDEFINED)


def _check_function_body(function: onnx.FunctionProto) -> None:
    """A model-local function's nodes: each value defined once (Fail), read after it is
    defined (InvalidArgument), as ONNX Runtime finds when it expands the function."""
    defined = set(function.input)
    for node in function.node:
        for name in node.input:
            if name and name not in defined:
                raise InvalidArgument(
                    f"Invalid model. Node input '{name}' is not a graph input, initializer, or "
                    f"output of a previous node (node '{node.name}' ({node.op_type}) in the "
                    f"body of function {function.domain}:{function.name})")
        for name in node.output:
            if name in defined:
                raise Fail(f"This is an invalid model. Error: Duplicate definition of name "
                           f"({name}) in the body of function {function.domain}:{function.name}")
            if name:
                defined.add(name)


def _check_interface(graph: onnx.GraphProto) -> None:
    """Graph inputs: named once, each with a type (Fail, as in ONNX Runtime)."""
    seen: set[str] = set()
    for vi in graph.input:
        if vi.name in seen:
            raise Fail(f"Error: Duplicate definition-site for ({vi.name}): the graph lists input "
                       f"'{vi.name}' more than once")
        seen.add(vi.name)
        if vi.type.WhichOneof("value") is None:
            raise Fail(f"This is an invalid model. Model input ({vi.name}) does not have type "
                       "information: give it a type (e.g. onnx.helper.make_tensor_value_info)")


def _sort_nodes(graph: onnx.GraphProto) -> None:
    """Put the graph's nodes in topological order in place: every value defined once (Fail),
    every input defined somewhere (InvalidArgument), no cycle (Fail)."""
    available = {vi.name for vi in graph.input} | {t.name for t in graph.initializer}
    available |= {t.values.name for t in graph.sparse_initializer}
    nodes = list(graph.node)
    producer: dict[str, int] = {}
    for position, node in enumerate(nodes):
        for name in node.output:
            if not name:
                continue
            if name in producer or name in available:
                raise Fail(f"This is an invalid model. Error: Duplicate definition of name "
                           f"({name}): node '{node.name}' ({node.op_type}) defines a value "
                           "that is already defined")
            producer[name] = position
    pending = [0] * len(nodes)
    consumers: dict[int, list[int]] = {}
    in_order = True
    for position, node in enumerate(nodes):
        for name in _reads(node):
            if name in available:
                continue
            source = producer.get(name)
            if source is None:
                raise InvalidArgument(
                    f"Invalid model. Node input '{name}' is not a graph input, initializer, or "
                    f"output of a previous node (node '{node.name}', {node.op_type})")
            in_order = in_order and source < position
            consumers.setdefault(source, []).append(position)
            pending[position] += 1
    if in_order:
        return
    ready = [p for p in range(len(nodes)) if not pending[p]]
    ready.reverse()
    order: list[int] = []
    while ready:
        position = ready.pop()
        order.append(position)
        for consumer in reversed(consumers.get(position, ())):
            pending[consumer] -= 1
            if not pending[consumer]:
                ready.append(consumer)
    if len(order) != len(nodes):
        stuck = [nodes[p].name or nodes[p].op_type for p in range(len(nodes)) if pending[p]]
        raise Fail(f"This is an invalid model. Error: the graph is not acyclic: a cycle runs "
                   f"through nodes {stuck[:5]}")
    del graph.node[:]
    graph.node.extend(nodes[p] for p in order)


def _reads(node: NodeProto) -> Iterable[str]:
    """The names a node reads: its inputs and its subgraphs' outer-scope names."""
    yield from (name for name in node.input if name)
    for attr in node.attribute:
        for sub in subgraphs_of(attr):
            yield from subgraph_free_names(sub)


def _check_outputs_exist(graph: onnx.GraphProto) -> None:
    defined = {vi.name for vi in graph.input} | {t.name for t in graph.initializer}
    defined |= {t.values.name for t in graph.sparse_initializer}
    defined |= {name for node in graph.node for name in node.output if name}
    for vi in graph.output:
        if vi.name not in defined:
            raise Fail(f"This is an invalid model. Graph output ({vi.name}) does not exist in "
                       "the graph: no node, input or initializer defines it")


def _check_nodes(model: ModelProto, opsets: dict[str, int], schemas: SchemaTable,
                 op_is_known: OpIsKnown) -> None:
    """Every node against its op's schema, as ONNX Runtime checks them."""
    context = _checker.CheckerContext()
    context.ir_version = model.ir_version
    context.opset_imports = dict(opsets)
    scope = _checker.LexicalScopeContext()
    local_functions = {(f.domain, f.name) for f in model.functions}
    unregistered: dict[str, list[str]] = {}
    for node in model.graph.node:
        domain = "" if node.domain == "ai.onnx" else node.domain
        opset = opsets.get(domain)
        if node.op_type == "Constant" and domain == "":
            continue  # read as an initializer (_canonical_constants), never checked
        declared = schemas.lookup(domain, node.op_type, opset) if opset is not None else None
        if declared is not None and (domain not in _ONNX_DOMAINS or
                                     onnx_schema(node.op_type, domain, opset) is None):
            declared.check(node, _describe(node))
            continue
        checker_context = context
        if (domain, node.op_type) in _DEPRECATED_BUT_ACCEPTED and opset is not None:
            checker_context = _context_at(model.ir_version, opsets, domain,
                                          _DEPRECATED_BUT_ACCEPTED[domain, node.op_type], opset)
        try:
            _checker.check_node(_checkable(node).SerializeToString(), checker_context, scope)
        except _checker.ValidationError as exc:
            raise InvalidGraph(f"This is an invalid model. In Node {_describe(node)}, Error "
                               f"{_first_lines(str(exc))}{_attribute_hint(node, domain, opset)}"
                               ) from None
        if domain in _ONNX_DOMAINS or (node.domain, node.op_type) in local_functions or \
                onnx_schema(node.op_type, domain, opset) is not None:
            continue
        if not op_is_known(domain, node.op_type):
            unregistered.setdefault(f"{domain}:{node.op_type}({opset})", []).append(
                node.name or node.op_type)
    if unregistered:
        first, names = next(iter(unregistered.items()))
        listing = "; ".join(f"{op} at node(s) {', '.join(repr(n) for n in nodes)}"
                            for op, nodes in sorted(unregistered.items()))
        count = sum(len(nodes) for nodes in unregistered.values())
        raise Fail(
            f"Fatal error: {first} is not a registered function/op (node '{names[0]}'). "
            f"{len(unregistered)} op(s) in {count} node(s) are not registered: {listing}. No "
            "plugin declares them, no installed provider has a kernel for them and the model "
            "defines no function of those names: install the provider that implements them, or "
            "register Python kernels for them (ort.ep.KernelTable, see the provider guide)")


#: Ops onnx marks deprecated at a version ONNX Runtime still runs (checking a deprecated op
#: fails in onnx's checker; ONNX Runtime accepts these): (domain, op) -> the opset whose
#: version of the op stands in for the check.
_DEPRECATED_BUT_ACCEPTED = {("", "GroupNormalization"): 21}


def _context_at(ir_version: int, opsets: dict[str, int], domain: str, stand_in: int,
                opset: int) -> _checker.CheckerContext:
    context = _checker.CheckerContext()
    context.ir_version = ir_version
    context.opset_imports = {**opsets, domain: max(stand_in, opset)}
    return context


def _checkable(node: NodeProto) -> NodeProto:
    """``node`` as onnx's checker can check it on its own: each subgraph lists the outer-scope
    names it reads as inputs (ONNX Runtime hands the checker its lexical scope instead; onnx's
    Python binding cannot be given one)."""
    if not any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
               for a in node.attribute):
        return node
    copy = NodeProto()
    copy.CopyFrom(node)
    for attr in copy.attribute:
        for sub in subgraphs_of(attr):
            sub.input.extend(onnx.ValueInfoProto(name=name)
                             for name in sorted(subgraph_free_names(sub)))
    return copy


def _describe(node: NodeProto) -> str:
    op = f"{node.domain}:{node.op_type}" if node.domain else node.op_type
    return f"'{node.name}' ({op})"


def _first_lines(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    head = lines[0] if lines else text
    context = [line.strip() for line in lines[1:] if "Bad node spec" in line]
    return head + (f" [{'; '.join(context)}]" if context else "")


def _attribute_hint(node: NodeProto, domain: str, opset: int | None) -> str:
    """For an op ONNX defines: the attributes it takes, to say what is right."""
    schema = onnx_schema(node.op_type, domain, opset) if opset is not None else None
    if schema is None or not schema.attributes:
        return ""
    names = ", ".join(sorted(schema.attributes))
    return f" ({node.op_type}-{schema.since_version} takes the attributes: {names})"
