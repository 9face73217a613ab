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

import functools
from collections.abc import Callable, Iterable

import onnx
from onnx import ModelProto, NodeProto
from onnx.onnx_cpp2py_export import checker as _checker

from ..errors import Fail, InvalidArgument, InvalidGraph
from .graph import subgraph_free_names, subgraphs_of, topological_positions
from .loading import tensor_types_in
from .schemas import SchemaTable, onnx_schema
from .tensors import checked_element_count

__all__ = ["validate_model", "newest_opsets", "OpIsKnown"]

#: ``op_is_known(domain, op_type)``: whether an installed provider has a kernel for the op.
OpIsKnown = Callable[[str, str], bool]

_ONNX_DOMAINS = ("", "ai.onnx.ml", "ai.onnx.training", "ai.onnx.preview.training")


@functools.lru_cache(maxsize=1)
def _onnx_newest_opsets() -> dict[str, int]:
    """The newest opset of each domain the installed onnx defines (read once: walking onnx's
    schemas takes milliseconds)."""
    newest: dict[str, int] = {}
    for schema in onnx.defs.get_all_schemas_with_history():
        domain = "" if schema.domain == "ai.onnx" else schema.domain
        if schema.since_version > newest.get(domain, 0):
            newest[domain] = schema.since_version
    newest[""] = max(newest.get("", 0), onnx.defs.onnx_opset_version())
    return newest


def newest_opsets(schemas: SchemaTable, domains: Iterable[str] | None = None) -> dict[str, int]:
    """The newest opset of every domain this build knows (of ``domains`` at least, when given):
    ONNX's own domains from the installed onnx, the others from the schemas providers declare."""
    table = onnx.helper.VERSION_TABLE[-1]  # (onnx, IR, ai.onnx, ai.onnx.ml, ai.onnx.training)
    newest = {"": max(table[2], onnx.defs.onnx_opset_version()), "ai.onnx.ml": table[3],
              "ai.onnx.training": table[4]}
    if domains is None or any(d not in newest and not schemas.has_domain(d) for d in domains):
        newest = dict(_onnx_newest_opsets())  # another of onnx's domains: read them all
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
    graph = model.graph
    facts = [_NodeFacts(node) for node in graph.node]
    used = _used_domains(facts)
    imported = {"" if o.domain == "ai.onnx" else o.domain for o in model.opset_import}
    newest = newest_opsets(schemas, used | imported)
    opsets = _check_opsets(model, newest)
    _import_used_domains(model, used, newest)
    for tensor in (*graph.initializer, *(s.values for s in graph.sparse_initializer)):
        checked_element_count(tensor, raw_size_up_to=_RAW_CHECKED_ELEMENTS)
    _check_value_types(graph)
    _canonical_constants(model, facts)
    _check_interface(graph)
    facts = _sorted(graph, facts)
    for function in model.functions:
        _check_function_body(function)
    _check_nodes(model, facts, opsets, schemas, op_is_known)


#: Initializers of at most this many elements get their raw_data size checked here; larger
#: ones when their data is decoded (reading raw_data's size copies the weights).
_RAW_CHECKED_ELEMENTS = 65536


class _NodeFacts:
    """What the checks read of one node, read from its protobuf once."""

    __slots__ = ("node", "op_type", "domain", "inputs", "outputs", "subgraphs")

    def __init__(self, node: NodeProto) -> None:
        self.node = node
        self.op_type = node.op_type
        domain = node.domain
        self.domain = "" if domain == "ai.onnx" else domain
        self.inputs = tuple(node.input)
        self.outputs = tuple(node.output)
        self.subgraphs = [sub for attr in node.attribute for sub in subgraphs_of(attr)] \
            if len(node.attribute) else ()


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


def _used_domains(facts: list[_NodeFacts]) -> set[str]:
    """The domains of the graph's nodes and its subgraphs' nodes."""
    used = {f.domain for f in facts}
    for fact in facts:
        for sub in fact.subgraphs:
            used.update("" if n.domain == "ai.onnx" else n.domain for n in _all_nodes(sub))
    return used


def _import_used_domains(model: ModelProto, used: set[str], newest: dict[str, int]) -> None:
    """Add an opset import, at its newest version, for every known domain a node uses that the
    model does not import (ONNX Runtime imports every domain it knows)."""
    imported = {"" if o.domain == "ai.onnx" else o.domain for o in model.opset_import}
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


def _canonical_constants(model: ModelProto, facts: list[_NodeFacts]) -> None:
    """Every Constant node of the graph and its subgraphs (not of function bodies: onnx infers
    those) reduced to the one attribute ONNX Runtime reads (its first, named for its type);
    Fail for one without attributes, InvalidGraph for a first attribute of a type a Constant
    cannot hold, as ONNX Runtime."""
    nodes = [f.node for f in facts if f.op_type == "Constant"]
    for fact in facts:
        for sub in fact.subgraphs:
            nodes.extend(n for n in _all_nodes(sub) if n.op_type == "Constant")
    for node in nodes:
        if node.domain not in ("", "ai.onnx"):
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
    for tensor in tensor_types_in(tp):
        if tensor.elem_type not in _ELEMENT_TYPES:
            return tensor.elem_type
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


def _sorted(graph: onnx.GraphProto, facts: list[_NodeFacts]) -> list[_NodeFacts]:
    """The graph's nodes in topological order (put in place in ``graph`` when they were not):
    every value defined once (Fail), every input defined somewhere (InvalidArgument), no cycle
    (Fail), every graph output defined (Fail)."""
    available = {vi.name for vi in graph.input} | {t.name for t in graph.initializer}
    available |= {t.values.name for t in graph.sparse_initializer}
    defined = set(available)
    in_order = True
    for fact in facts:
        for name in fact.outputs:
            if name:
                if name in defined:
                    node = fact.node
                    raise Fail(f"This is an invalid model. Error: Duplicate definition of name "
                               f"({name}): node '{node.name}' ({fact.op_type}) defines a value "
                               "that is already defined")
                defined.add(name)
    seen = set(available)
    for fact in facts:
        if in_order:
            for name in _reads(fact):
                if name not in seen:
                    in_order = False
                    break
        if not in_order:
            break
        seen.update(fact.outputs)
    for vi in graph.output:
        if vi.name not in defined:
            raise Fail(f"This is an invalid model. Graph output ({vi.name}) does not exist in "
                       "the graph: no node, input or initializer defines it")
    if in_order:
        return facts
    producer = {name: position for position, fact in enumerate(facts)
                for name in fact.outputs if name}

    def missing(position: int, name: str) -> InvalidArgument:
        fact = facts[position]
        return InvalidArgument(
            f"Invalid model. Node input '{name}' is not a graph input, initializer, or output "
            f"of a previous node (node '{fact.node.name}', {fact.op_type})")

    order = topological_positions([list(_reads(f)) for f in facts], producer, available,
                                  missing)
    if len(order) != len(facts):
        ordered = set(order)
        stuck = [facts[p].node.name or facts[p].op_type for p in range(len(facts))
                 if p not in ordered]
        raise Fail(f"This is an invalid model. Error: the graph is not acyclic: a cycle runs "
                   f"through nodes {stuck[:5]}")
    del graph.node[:]
    graph.node.extend(facts[p].node for p in order)
    return [facts[p] for p in order]


def _reads(fact: _NodeFacts) -> Iterable[str]:
    """The names a node reads: its inputs and its subgraphs' outer-scope names."""
    for name in fact.inputs:
        if name:
            yield name
    for sub in fact.subgraphs:
        yield from subgraph_free_names(sub)


#: Attribute types whose values the checker reads (the rest it checks by name and type).
_CHECKED_VALUES = frozenset({onnx.AttributeProto.TENSOR, onnx.AttributeProto.SPARSE_TENSOR,
                             onnx.AttributeProto.GRAPH, onnx.AttributeProto.TENSORS,
                             onnx.AttributeProto.SPARSE_TENSORS, onnx.AttributeProto.GRAPHS,
                             onnx.AttributeProto.TYPE_PROTO, onnx.AttributeProto.TYPE_PROTOS,
                             onnx.AttributeProto.UNDEFINED})


def _check_key(fact: _NodeFacts) -> tuple | None:
    """What the schema checks read of a node (None where they read attribute values)."""
    attributes = fact.node.attribute
    signature = ()
    if len(attributes):
        signature = tuple((a.name, a.type, bool(a.ref_attr_name)) for a in attributes)
        if any(t in _CHECKED_VALUES for _, t, _ in signature):
            return None
    return (fact.domain, fact.op_type, tuple(bool(i) for i in fact.inputs),
            tuple(bool(o) for o in fact.outputs), signature)


def _check_nodes(model: ModelProto, facts: list[_NodeFacts], opsets: dict[str, int],
                 schemas: SchemaTable, op_is_known: OpIsKnown) -> None:
    """Every node against its op's schema, as ONNX Runtime checks them."""
    context = _checker.CheckerContext()
    context.ir_version = model.ir_version
    context.opset_imports = dict(opsets)
    scope = _checker.LexicalScopeContext()
    local_functions = {(f.domain, f.name) for f in model.functions}
    unregistered: dict[str, list[str]] = {}
    passed: set[tuple] = set()  # nodes alike in all the checker reads need checking once
    for fact in facts:
        node, domain, op_type = fact.node, fact.domain, fact.op_type
        opset = opsets.get(domain)
        if op_type == "Constant" and domain == "":
            continue  # read as an initializer (_canonical_constants), never checked
        key = _check_key(fact)
        if key is not None and key in passed:
            continue
        declared = schemas.lookup(domain, op_type, opset) if opset is not None else None
        if declared is not None and (domain not in _ONNX_DOMAINS or
                                     onnx_schema(op_type, domain, opset) is None):
            declared.check(node, _describe(node))
            if key is not None:
                passed.add(key)
            continue
        checker_context = context
        if (domain, op_type) in _DEPRECATED_BUT_ACCEPTED and opset is not None:
            checker_context = _context_at(model.ir_version, opsets, domain,
                                          _DEPRECATED_BUT_ACCEPTED[domain, op_type], opset)
        try:
            _checker.check_node(_checkable(node).SerializeToString(), checker_context, scope)
        except _checker.ValidationError as exc:
            raise InvalidGraph(f"This is an invalid model. In Node {_describe(node)}, Error "
                               f"{_first_lines(str(exc))}{_attribute_hint(node, domain, opset)}"
                               ) from None
        if domain in _ONNX_DOMAINS or (node.domain, op_type) in local_functions or \
                onnx_schema(op_type, domain, opset) is not None:
            if key is not None:
                passed.add(key)
            continue
        if not op_is_known(domain, op_type):
            unregistered.setdefault(f"{domain}:{op_type}({opset})", []).append(
                node.name or op_type)
        elif key is not None:
            passed.add(key)
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
