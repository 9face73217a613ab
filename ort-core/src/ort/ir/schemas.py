"""Op schemas: ONNX's own, plus the contrib-op schemas that providers declare.

ONNX knows the ai.onnx and ai.onnx.ml ops; ops of other domains (onnxruntime's
``com.microsoft`` contrib ops, a vendor's custom ops), and ops onnxruntime adds to the ONNX
domain below ONNX's own versions (LayerNormalization before opset 17), are known only from
what a provider declares through the ``ort_register_schemas`` hook (:mod:`ort.ep.hookspecs`). Declarations go
into a :class:`SchemaTable`, never into onnx's process-wide schema registry, so two sessions
(or two plugins' views of an op) cannot leak into each other through onnx.

A declaration gives the op's ``since_version``, its input and output counts, its attributes
with their defaults, and optionally a type-inference function, so that contrib ops get
attribute defaults and validation like ONNX ops, and ``NodeArg`` shapes of models that use
them are inferred past them (:func:`ort.ir.loading.infer_types`). It may also give the types
of its formal parameters and their constraints, as an ONNX schema does; the types of a node's
values are then checked as ONNX Runtime checks them (:meth:`DeclaredSchema.check_types`,
:func:`ort.ir.declared_types.check_declared_types`).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import onnx
from onnx import AttributeProto, TypeProto

from ..errors import Fail, InvalidGraph
from .tensors import attribute_value

__all__ = ["REQUIRED", "DeclaredSchema", "SchemaTable", "DuplicateSchemaError", "onnx_schema",
           "schema_version", "attribute_defaults", "TypeInference"]

#: An attribute default meaning "the attribute must be given".
REQUIRED: Any = type("Required", (), {"__repr__": lambda self: "REQUIRED"})()

#: ``infer(input_types, attrs) -> output types``: one ``TypeProto`` (or None: unknown) per
#: output, from the inputs' types (None where unknown) and the node's attributes (defaults
#: filled in). A schema declared with ``uses_values=True`` is called as
#: ``infer(input_types, attrs, input_values)``, the values being numpy arrays for inputs that
#: are small constants (initializers, Constant outputs) and None for the others, so that shapes
#: that depend on constant inputs (Range, Pad, a cache length) can be inferred.
TypeInference = Callable[..., Sequence[TypeProto | None]]


class DuplicateSchemaError(ValueError):
    """Two plugins declared the same op and version."""


@dataclass(frozen=True)
class DeclaredSchema:
    """A provider's declaration of an op ONNX does not define.

    Attributes:
        op_type, domain: the op (``"FusedMatMul"``, ``"com.microsoft"``).
        since_version: the first opset version of ``domain`` with this form of the op.
        min_inputs, max_inputs, min_outputs, max_outputs: how many inputs and outputs a node
            may list (omitted optional ones counted); ``max_*`` None: no upper bound.
        attributes: every attribute the op takes, with its default (:data:`REQUIRED` for
            one that must be given, None for an optional one without a default); any other
            attribute makes the model invalid.
        infer: optional type inference (:data:`TypeInference`).
        doc: one paragraph on what the op computes.
        uses_values: ``infer`` takes a third argument, the constant inputs' values.
        input_types, output_types: optional, one entry per formal input and output: a type
            parameter (``"T"``, a key of ``type_constraints``) or a type (``"tensor(int64)"``).
            A node's inputs past the last formal input belong to it (a variadic input). Empty:
            the types are not checked.
        type_constraints: type parameter -> the types it allows (``"tensor(float)"``,
            ``"seq(tensor(int64))"``: onnx's type strings).
        variadic_inputs_homogeneous, variadic_outputs_homogeneous: False where the last formal
            input (output) is variadic and heterogeneous (onnx's ``is_homogeneous``): each of
            its values may have its own allowed type. True: all values of a type parameter
            have one type.
    """

    op_type: str
    domain: str
    since_version: int = 1
    min_inputs: int = 0
    max_inputs: int | None = None
    min_outputs: int = 1
    max_outputs: int | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    infer: TypeInference | None = None
    doc: str = ""
    uses_values: bool = False
    input_types: Sequence[str] = ()
    output_types: Sequence[str] = ()
    type_constraints: Mapping[str, frozenset[str]] = field(default_factory=dict)
    variadic_inputs_homogeneous: bool = True
    variadic_outputs_homogeneous: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_types", tuple(self.input_types))
        object.__setattr__(self, "output_types", tuple(self.output_types))
        object.__setattr__(self, "type_constraints", {
            param: frozenset(allowed) for param, allowed in self.type_constraints.items()})
        for formal in (*self.input_types, *self.output_types):
            if formal not in self.type_constraints and not _TYPE_STRING.fullmatch(formal):
                raise ValueError(
                    f"{self.domain}:{self.op_type}: formal parameter type {formal!r} is neither "
                    f"a type parameter of type_constraints ({sorted(self.type_constraints)}) "
                    "nor a type such as 'tensor(float)'")

    def allowed_types(self, formal: str) -> frozenset[str]:
        """The types a formal parameter of type ``formal`` (a parameter or a type) allows."""
        allowed = self.type_constraints.get(formal)
        return allowed if allowed is not None else frozenset((formal,))

    def check_types(self, input_types: Sequence[str | None], node_name: str = "",
                    input_names: Sequence[str] = (), output_types: Sequence[str | None] = (),
                    output_names: Sequence[str] = ()) -> None:
        """Check a node's value types (onnx type strings; None: unknown or omitted, not
        checked) against the formal parameters, as ONNX Runtime checks them: an input of a
        type its parameter does not allow is :class:`~ort.errors.InvalidGraph`; a type
        parameter bound to two types by the inputs, or an output whose type is not the one
        the inputs bind it to (or its parameter's only type), is :class:`~ort.errors.Fail`.
        A schema declared without types checks nothing."""
        bound = self._check_inputs(input_types, node_name, input_names)
        if output_types and self.output_types:
            self._check_outputs(output_types, node_name, output_names, bound)

    def _check_inputs(self, input_types: Sequence[str | None], node_name: str,
                      input_names: Sequence[str]) -> dict[str, str]:
        formals = self.input_types
        bound: dict[str, str] = {}
        if not formals:
            return bound
        last = len(formals) - 1
        for index, actual in enumerate(input_types):
            if actual is None:
                continue
            position = min(index, last)
            formal = formals[position]
            allowed = self.allowed_types(formal)
            name = input_names[index] if index < len(input_names) else f"#{index}"
            if actual not in allowed:
                raise InvalidGraph(
                    f"This is an invalid model. Type Error: Type '{actual}' of input parameter "
                    f"({name}) of operator ({self.op_type}) in node ({node_name}) is invalid. "
                    f"({self._name()} input {index} is {_formal(formal, allowed)})")
            if position == last and not self.variadic_inputs_homogeneous:
                continue
            first = bound.setdefault(formal, actual)
            if first != actual:
                raise Fail(
                    f"Type Error: Type parameter ({formal}) of Optype ({self.op_type}) bound to "
                    f"different types ({first} and {actual} in node ({node_name}). "
                    f"({self._name()}: the inputs of type parameter {formal} must all have "
                    f"one type; input {index} ({name}) is {actual})")
        return bound

    def _check_outputs(self, output_types: Sequence[str | None], node_name: str,
                       output_names: Sequence[str], bound: Mapping[str, str]) -> None:
        formals = self.output_types
        last = len(formals) - 1
        for index, existing in enumerate(output_types):
            if existing is None:
                continue
            position = min(index, last)
            formal = formals[position]
            homogeneous = position != last or self.variadic_outputs_homogeneous
            allowed = self.allowed_types(formal)
            if homogeneous and formal in bound:
                expected, why = bound[formal], f"bound to it by the inputs of type {formal}"
            elif len(allowed) == 1:
                expected, why = next(iter(allowed)), f"the only type of {formal}"
            else:
                continue
            if existing != expected:
                name = output_names[index] if index < len(output_names) else f"#{index}"
                raise Fail(
                    f"Type Error: Type ({existing}) of output arg ({name}) of node ({node_name}) "
                    f"does not match expected type ({expected}). ({self._name()} output "
                    f"{index} is {expected}, {why})")

    def _name(self) -> str:
        return f"{self.domain or 'ai.onnx'}:{self.op_type}({self.since_version})"

    def check(self, node: onnx.NodeProto, where: str) -> None:
        """Raise :class:`~ort.errors.InvalidGraph` unless ``node`` fits this declaration."""
        op = f"{self.domain}:{self.op_type}({self.since_version})"
        inputs, outputs = len(node.input), len(node.output)
        if inputs < self.min_inputs or (self.max_inputs is not None and inputs > self.max_inputs):
            raise InvalidGraph(f"This is an invalid model. {where}: {op} takes "
                               f"{_count_range(self.min_inputs, self.max_inputs)} input(s), "
                               f"the node lists {inputs}")
        if outputs < self.min_outputs or (self.max_outputs is not None
                                          and outputs > self.max_outputs):
            raise InvalidGraph(f"This is an invalid model. {where}: {op} has "
                               f"{_count_range(self.min_outputs, self.max_outputs)} output(s), "
                               f"the node lists {outputs}")
        given = {a.name for a in node.attribute}
        if len(given) != len(node.attribute):
            repeated = sorted({a.name for a in node.attribute
                               if sum(b.name == a.name for b in node.attribute) > 1})
            raise InvalidGraph(f"This is an invalid model. {where}: Attribute '{repeated[0]}' "
                               "appeared multiple times.")
        unknown = sorted(given - set(self.attributes))
        if unknown:
            raise InvalidGraph(f"This is an invalid model. {where}: {op} has no attribute(s) "
                               f"{unknown}; its attributes are {sorted(self.attributes)}")
        for attr in node.attribute:
            expected = _attribute_type_of(self.attributes[attr.name])
            if expected is not None and attr.type != expected:
                raise InvalidGraph(
                    f"This is an invalid model. {where}: Mismatched attribute type in "
                    f"'{attr.name}'. Expected: '{AttributeProto.AttributeType.Name(expected)}', "
                    f"actual: '{AttributeProto.AttributeType.Name(attr.type)}'")
        missing = sorted(n for n, d in self.attributes.items() if d is REQUIRED and n not in given)
        if missing:
            raise InvalidGraph(f"This is an invalid model. {where}: {op} needs the "
                               f"attribute(s) {missing}")


def _attribute_type_of(default: Any) -> int | None:
    """The attribute type a declared default implies (None: no default to tell by)."""
    if default is None or default is REQUIRED:
        return None
    if isinstance(default, bool) or isinstance(default, int):
        return AttributeProto.INT
    if isinstance(default, float):
        return AttributeProto.FLOAT
    if isinstance(default, str):
        return AttributeProto.STRING
    if isinstance(default, (list, tuple)) and default:
        if all(isinstance(v, int) for v in default):
            return AttributeProto.INTS
        if all(isinstance(v, (int, float)) for v in default):
            return AttributeProto.FLOATS
        if all(isinstance(v, str) for v in default):
            return AttributeProto.STRINGS
    return None


#: An onnx type string: ``tensor(float)``, ``seq(tensor(int64))``, ``map(string,tensor(float))``.
_TYPE_STRING = re.compile(r"[a-z_]+\(.+\)")


def _formal(formal: str, allowed: frozenset[str]) -> str:
    """How a message names a formal parameter's types."""
    if allowed == frozenset((formal,)):
        return formal
    return f"{formal}, one of {', '.join(sorted(allowed))}"


def _count_range(low: int, high: int | None) -> str:
    if high is None:
        return f"at least {low}"
    return str(low) if low == high else f"{low} to {high}"


class SchemaTable:
    """Declared schemas by (domain, op_type), each op's versions oldest first."""

    def __init__(self) -> None:
        self._schemas: dict[tuple[str, str], list[tuple[DeclaredSchema, str]]] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count  # asked per node at compile time: kept, not counted

    def add(self, schema: DeclaredSchema, owner: str) -> None:
        """Record a declaration; the same op and version twice raises, naming both owners."""
        domain = "" if schema.domain == "ai.onnx" else schema.domain
        if domain in ("", "ai.onnx.ml") and \
                onnx_schema(schema.op_type, domain, schema.since_version) is not None:
            raise ValueError(f"{schema.op_type}: ONNX defines {domain or 'ai.onnx'}:"
                             f"{schema.op_type} at version {schema.since_version}; declare "
                             "only ops (or versions) ONNX does not define")
        if domain != schema.domain:
            schema = dataclasses.replace(schema, domain=domain)
        versions = self._schemas.setdefault((schema.domain, schema.op_type), [])
        for other, other_owner in versions:
            if other.since_version == schema.since_version:
                raise DuplicateSchemaError(
                    f"schema {schema.domain}:{schema.op_type} version {schema.since_version} is "
                    f"declared twice: by {other_owner!r} and by {owner!r}")
        versions.append((schema, owner))
        self._count += 1
        versions.sort(key=lambda item: item[0].since_version)

    def declares(self, domain: str, op_type: str) -> bool:
        """Whether any version of ``domain:op_type`` is declared."""
        return (domain, op_type) in self._schemas

    def has_domain(self, domain: str) -> bool:
        """Whether any op of ``domain`` is declared."""
        return any(d == domain for d, _ in self._schemas)

    def lookup(self, domain: str, op_type: str, opset: int) -> DeclaredSchema | None:
        """The newest declaration of the op not newer than ``opset``."""
        found = None
        for schema, _ in self._schemas.get((domain, op_type), ()):
            if schema.since_version <= opset:
                found = schema
        return found

    def __iter__(self):
        return (schema for versions in self._schemas.values() for schema, _ in versions)


#: The table of a session with no declarations.
EMPTY = SchemaTable()


@functools.lru_cache(maxsize=4096)
def onnx_schema(op_type: str, domain: str, opset: int) -> onnx.defs.OpSchema | None:
    """ONNX's schema of an op at ``opset`` (None when onnx does not define it)."""
    try:
        return onnx.defs.get_schema(op_type, max_inclusive_version=opset, domain=domain)
    except onnx.defs.SchemaError:
        return None


def schema_version(op_type: str, domain: str, opset: int,
                   table: SchemaTable | None = None) -> int | None:
    """The ``since_version`` of the op's schema at ``opset`` (ONNX's or a declared one); None
    when neither knows the op."""
    schema = onnx_schema(op_type, domain, opset)
    if schema is not None:
        return schema.since_version
    declared = table.lookup(domain, op_type, opset) if table is not None else None
    return declared.since_version if declared is not None else None


def attribute_defaults(op_type: str, domain: str, opset: int,
                       table: SchemaTable | None = None) -> dict[str, Any]:
    """Attribute name -> default value (Python) from the op's schema at ``opset``."""
    schema = onnx_schema(op_type, domain, opset)
    if schema is not None:
        return _onnx_defaults(schema)
    declared = table.lookup(domain, op_type, opset) if table is not None else None
    if declared is None:
        return {}
    return {name: value for name, value in declared.attributes.items()
            if value is not REQUIRED and value is not None}


@functools.lru_cache(maxsize=4096)
def _onnx_default_protos(schema: onnx.defs.OpSchema) -> tuple[tuple[str, AttributeProto], ...]:
    return tuple((name, spec.default_value) for name, spec in schema.attributes.items()
                 if spec.default_value is not None
                 and spec.default_value.type != AttributeProto.UNDEFINED)


def _onnx_defaults(schema: onnx.defs.OpSchema) -> dict[str, Any]:
    return {name: attribute_value(proto) for name, proto in _onnx_default_protos(schema)}
