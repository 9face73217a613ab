"""The formal parameter types of the declared contrib ops (``kernels/contrib_types.py``, generated
from onnxruntime's schemas by ``tools/generate_contrib_types.py``): the table is onnxruntime's,
every declaration carries its entry, and a node with a type onnxruntime's schema forbids (a type
parameter bound to two types, an output typed against its inputs) gets onnxruntime's verdict
and message.

The verdict tests build one node per case, its inputs of unknown shape, and compare
``onnxruntime.InferenceSession`` with ort's load-time checks (validation, type inference, then
:func:`ort.ir.declared_types.check_declared_types`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import onnx
import pytest
from onnx import TensorProto, helper
from ort.ep import get_registry
from ort.ir import infer_types, validate_model
from ort.ir.declared_types import check_declared_types
from ort_provider_cpu.kernels import ALL_SCHEMAS
from ort_provider_cpu.kernels.contrib_types import CONTRIB_TYPES, OpTypes

#: Types tried, in order, as the one a formal parameter forbids.
_FORBIDDEN_CANDIDATES = ("tensor(int64)", "tensor(string)", "tensor(bool)", "tensor(float)",
                         "tensor(float8e5m2)")
_ELEMENT = {f"tensor({name.lower()})": value for name, value in TensorProto.DataType.items()}


def _onnxruntime_schemas() -> dict[tuple[str, str, int], Any]:
    capi = pytest.importorskip("onnxruntime.capi.onnxruntime_pybind11_state")
    return {(s.domain, s.name, s.since_version): s for s in capi.get_all_operator_schema()}


def _declared_key(schema) -> tuple[str, str, int]:
    return ("" if schema.domain == "ai.onnx" else schema.domain, schema.op_type,
            schema.since_version)


# -- the table ---------------------------------------------------------------------------------

def test_table_is_onnxruntimes():
    schemas = _onnxruntime_schemas()
    for key, types in CONTRIB_TYPES.items():
        schema = schemas.get(key)
        assert schema is not None, f"onnxruntime has no schema {key}: regenerate the table"

        def homogeneous(params) -> bool:
            return not (params and str(params[-1].option).endswith("Variadic")
                        and not params[-1].isHomogeneous)

        expected = OpTypes(tuple(p.typeStr for p in schema.inputs),
                           tuple(p.typeStr for p in schema.outputs),
                           {c.type_param_str: tuple(c.allowed_type_strs)
                            for c in schema.type_constraints},
                           homogeneous(schema.inputs), homogeneous(schema.outputs))
        assert types == expected, (f"{key} differs from onnxruntime's schema: run "
                                   "ort-provider-cpu/tools/generate_contrib_types.py")


def test_every_declared_op_onnxruntime_defines_is_in_the_table():
    schemas = _onnxruntime_schemas()
    missing = [key for key in map(_declared_key, ALL_SCHEMAS)
               if key in schemas and key not in CONTRIB_TYPES]
    assert not missing, ("declared ops without types (run "
                         f"ort-provider-cpu/tools/generate_contrib_types.py): {missing}")


def test_declarations_carry_their_table_entry():
    for schema in ALL_SCHEMAS:
        types = CONTRIB_TYPES.get(_declared_key(schema))
        if types is None:
            assert not schema.input_types and not schema.output_types
            continue
        assert schema.input_types == types.inputs, schema.op_type
        assert schema.output_types == types.outputs, schema.op_type
        assert schema.type_constraints == {p: frozenset(t) for p, t in types.constraints.items()}
        assert schema.variadic_inputs_homogeneous == types.homogeneous_inputs
        # each input position the declaration admits has its formal parameter
        if schema.max_inputs is not None:
            assert schema.max_inputs == len(types.inputs), schema.op_type
        if schema.max_outputs is not None:
            assert schema.max_outputs == len(types.outputs), schema.op_type


# -- verdicts against onnxruntime --------------------------------------------------------------

class Case(NamedTuple):
    """One node: its op, its inputs' types and, optionally, its first output's declared type."""

    key: tuple[str, str, int]
    input_types: tuple[str, ...]
    output_type: str | None = None


def _allowed(types: OpTypes, formal: str) -> tuple[str, ...]:
    return types.constraints.get(formal, (formal,))


#: Inputs given to ops that cannot take all their formal inputs without shapes: MatMulNBits'
#: inference needs its bias's shape.
_INPUT_COUNT = {"MatMulNBits": 5}


def _input_count(key: tuple[str, str, int], types: OpTypes) -> int:
    """Every formal input given (a variadic one twice: QLinearConcat takes tuples of three)."""
    if key[1] in _INPUT_COUNT:
        return _INPUT_COUNT[key[1]]
    return len(types.inputs) + (5 if not types.homogeneous_inputs else 0)


def _formal_at(types: OpTypes, index: int) -> str:
    return types.inputs[min(index, len(types.inputs) - 1)]


def _allowed_types(key: tuple[str, str, int]) -> tuple[str, ...]:
    """Each input of the op given its formal parameter's first allowed type."""
    types = CONTRIB_TYPES[key]
    return tuple(_allowed(types, _formal_at(types, i))[0]
                 for i in range(_input_count(key, types)))


def _cases() -> list[Any]:
    found = []
    for key, types in CONTRIB_TYPES.items():
        good = _allowed_types(key)
        count = len(good)
        name = f"{key[0] or 'ai.onnx'}:{key[1]}"
        found.append(pytest.param(Case(key, good), id=f"{name}-allowed"))
        seen: set[str] = set()
        for index in range(count):
            formal = _formal_at(types, index)
            if formal in seen:
                continue
            seen.add(formal)
            allowed = _allowed(types, formal)
            forbidden = next(t for t in _FORBIDDEN_CANDIDATES if t not in allowed)
            found.append(pytest.param(Case(key, good[:index] + (forbidden,) + good[index + 1:]),
                                      id=f"{name}-input{index}-{forbidden}"))
        found += _binding_case(key, types, good, name)
        found += _output_case(key, types, good, name)
    return found


def _binding_case(key, types: OpTypes, good: tuple[str, ...], name: str) -> list[Any]:
    """Two inputs of one type parameter given two of its types (Fail)."""
    last = len(types.inputs) - 1
    positions: dict[str, list[int]] = {}
    for index in range(len(good)):
        if min(index, last) == last and not types.homogeneous_inputs:
            continue
        positions.setdefault(_formal_at(types, index), []).append(index)
    for formal, where in positions.items():
        allowed = _allowed(types, formal)
        if len(where) > 1 and len(allowed) > 1:
            mixed = list(good)
            mixed[where[1]] = allowed[1]
            return [pytest.param(Case(key, tuple(mixed)), id=f"{name}-binding-{formal}")]
    return []


def _output_case(key, types: OpTypes, good: tuple[str, ...], name: str) -> list[Any]:
    """The first output declared of another type than its inputs bind it to (Fail)."""
    formal = types.outputs[0] if types.outputs else None
    if formal is None:
        return []
    bound = {_formal_at(types, i): t for i, t in enumerate(good)}
    expected = bound.get(formal) if formal in bound else (
        _allowed(types, formal)[0] if len(_allowed(types, formal)) == 1 else None)
    if expected is None:
        return []
    other = next(t for t in ("tensor(double)", "tensor(int32)") if t != expected)
    return [pytest.param(Case(key, good, other), id=f"{name}-output-{other}")]


def _attribute_value(attribute: Any) -> Any:
    kind = onnx.defs.OpSchema.AttrType
    if attribute.type == kind.GRAPH:
        value = helper.make_tensor_value_info("a", TensorProto.FLOAT, None)
        return helper.make_graph([helper.make_node("Identity", ["a"], ["b"])], "body", [value],
                                 [helper.make_tensor_value_info("b", TensorProto.FLOAT, None)])
    return {kind.INT: 1, kind.FLOAT: 1.0, kind.STRING: "x", kind.INTS: [1],
            kind.FLOATS: [1.0], kind.STRINGS: ["x"]}[attribute.type]


def _model(case: Case, schema: Any) -> onnx.ModelProto:
    domain, op_type, since = case.key
    attributes = {name: _attribute_value(a) for name, a in schema.attributes.items()
                  if a.required}
    if op_type in ("MatMulNBits", "MatMulBnb4"):
        attributes.update(K=16, N=16, block_size=16)
    names = [f"i{k}" for k in range(len(case.input_types))]
    outputs = [f"o{k}" for k in range(len(schema.outputs))]
    node = helper.make_node(op_type, names, outputs, domain=domain, name="n0", **attributes)
    inputs = [helper.make_tensor_value_info(n, _ELEMENT[t], None)
              for n, t in zip(names, case.input_types)]
    declared = [helper.make_tensor_value_info(outputs[0], _ELEMENT[case.output_type], None)
                if case.output_type else helper.make_empty_tensor_value_info(outputs[0])]
    declared += [helper.make_empty_tensor_value_info(o) for o in outputs[1:]]
    graph = helper.make_graph([node], "case", inputs, declared)
    # the ONNX-domain ops are declared below the versions ONNX defines (or ever defined)
    opsets = [helper.make_opsetid("", 8 if domain == "" else 17)]
    if domain:
        opsets.append(helper.make_opsetid(domain, since))
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    return model


def _onnxruntime_verdict(model: onnx.ModelProto) -> tuple[str, str]:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 4
    try:
        onnxruntime.InferenceSession(model.SerializeToString(), options,
                                     providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - the verdict is the exception's class
        return type(exc).__name__, str(exc).split(" : ", 3)[-1]
    return "accepted", ""


def _ort_verdict(model: onnx.ModelProto) -> tuple[str, str]:
    registry = get_registry()
    try:
        validate_model(model, registry.schemas, lambda domain, op_type: True)
        check_declared_types(infer_types(model, registry.schemas), registry.schemas)
    except Exception as exc:  # noqa: BLE001 - the verdict is the exception's class
        return type(exc).__name__, str(exc).split(" : ", 3)[-1]
    return "accepted", ""


@pytest.mark.parametrize("case", _cases())
def test_type_verdict_is_onnxruntimes(case: Case):
    schema = _onnxruntime_schemas()[case.key]
    theirs, their_message = _onnxruntime_verdict(_model(case, schema))
    ours, our_message = _ort_verdict(_model(case, schema))
    if case.input_types == _allowed_types(case.key) and case.output_type is None:
        # onnxruntime accepts the types (it may still refuse the node, for its kernel or its
        # attributes): ort's type check must accept them too
        assert "Type Error" not in their_message, their_message
        assert "Type Error" not in our_message, our_message
        return
    assert ours == theirs, f"onnxruntime: {theirs}: {their_message}\nort: {ours}: {our_message}"
    assert their_message in our_message  # onnxruntime's words, then ort's hint
