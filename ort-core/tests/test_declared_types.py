"""The type check of declared ops (DeclaredSchema.check_types, check_declared_types): onnxruntime's
verdicts and message shapes, variadic parameters, unknown types, schemas without types."""

from __future__ import annotations

import pytest
from onnx import TensorProto, helper
from ort.errors import Fail, InvalidGraph
from ort.ir import DeclaredSchema, SchemaTable, infer_types
from ort.ir.declared_types import (check_declared_node, check_declared_types,
                                   type_string)

EX = "com.example"
FLOATS = ("tensor(float)", "tensor(double)")


def _text(error: Exception) -> str:
    """The message, without the ``[ONNXRuntimeError] : <code> : <name> :`` prefix."""
    return str(error).split(" : ", 3)[-1]


def _schema(**types) -> DeclaredSchema:
    return DeclaredSchema(op_type="Op", domain=EX, min_inputs=1, max_inputs=None,
                          max_outputs=None, **types)


BINARY = _schema(input_types=("T", "T"), output_types=("T",),
                 type_constraints={"T": FLOATS})


def test_allowed_types_pass():
    BINARY.check_types(["tensor(float)", "tensor(float)"], "n0", ["a", "b"],
                       ["tensor(float)"], ["y"])


def test_forbidden_input_type_is_invalid_graph_as_onnxruntime_words_it():
    with pytest.raises(InvalidGraph) as info:
        BINARY.check_types(["tensor(int64)", "tensor(int64)"], "n0", ["a", "b"])
    assert _text(info.value).startswith(
        "This is an invalid model. Type Error: Type 'tensor(int64)' of input parameter (a) of "
        "operator (Op) in node (n0) is invalid.")
    assert "tensor(double), tensor(float)" in str(info.value)  # what is allowed


def test_parameter_bound_to_two_types_is_fail_as_onnxruntime_words_it():
    with pytest.raises(Fail) as info:
        BINARY.check_types(["tensor(float)", "tensor(double)"], "n0", ["a", "b"])
    assert _text(info.value).startswith(
        "Type Error: Type parameter (T) of Optype (Op) bound to different types (tensor(float) "
        "and tensor(double) in node (n0).")


def test_unknown_and_omitted_inputs_are_not_checked():
    BINARY.check_types([None, "tensor(double)"], "n0", ["", "b"])
    BINARY.check_types([None, None], "n0")


def test_a_type_as_formal_parameter_allows_only_itself():
    schema = _schema(input_types=("T", "tensor(int64)"), type_constraints={"T": FLOATS})
    schema.check_types(["tensor(double)", "tensor(int64)"], "n0")
    with pytest.raises(InvalidGraph, match=r"Type 'tensor\(int32\)' of input parameter \(#1\)"):
        schema.check_types(["tensor(double)", "tensor(int32)"], "n0")


def test_homogeneous_variadic_input_binds_one_type():
    schema = _schema(input_types=("I", "T"), type_constraints={"I": ("tensor(int64)",),
                                                                "T": FLOATS})
    schema.check_types(["tensor(int64)"] + ["tensor(double)"] * 3, "n0")
    with pytest.raises(Fail, match="bound to different types"):
        schema.check_types(["tensor(int64)", "tensor(double)", "tensor(double)",
                            "tensor(float)"], "n0")
    with pytest.raises(InvalidGraph, match="tensor\\(int32\\)' of input parameter \\(#3\\)"):
        schema.check_types(["tensor(int64)", "tensor(double)", "tensor(double)",
                            "tensor(int32)"], "n0")


def test_heterogeneous_variadic_input_checks_each_type_alone():
    schema = _schema(input_types=("T", "V"), variadic_inputs_homogeneous=False,
                     type_constraints={"T": FLOATS, "V": ("tensor(uint8)", "tensor(float)")})
    schema.check_types(["tensor(float)", "tensor(uint8)", "tensor(float)", "tensor(uint8)"],
                       "n0")
    with pytest.raises(InvalidGraph):
        schema.check_types(["tensor(float)", "tensor(uint8)", "tensor(int8)"], "n0")


def test_output_type_contradicting_the_bound_one_is_fail():
    with pytest.raises(Fail) as info:
        BINARY.check_types(["tensor(float)", "tensor(float)"], "n0", ["a", "b"],
                           ["tensor(double)"], ["y"])
    assert _text(info.value).startswith(
        "Type Error: Type (tensor(double)) of output arg (y) of node (n0) does not match "
        "expected type (tensor(float)).")


def test_output_of_a_single_type_parameter_must_have_it():
    schema = _schema(input_types=("T",), output_types=("T", "tensor(int64)"),
                     type_constraints={"T": FLOATS})
    schema.check_types(["tensor(float)"], "n0", output_types=[None, "tensor(int64)"])
    with pytest.raises(Fail, match=r"expected type \(tensor\(int64\)\)"):
        schema.check_types(["tensor(float)"], "n0", output_types=[None, "tensor(int32)"])


def test_output_of_an_unbound_parameter_is_not_checked():
    schema = _schema(input_types=("T",), output_types=("U",),
                     type_constraints={"T": FLOATS, "U": FLOATS})
    schema.check_types(["tensor(float)"], "n0", output_types=["tensor(double)"])


def test_schema_without_types_checks_nothing():
    _schema().check_types(["tensor(string)", "seq(tensor(bool))"], "n0",
                          output_types=["tensor(int4)"])


def test_formal_type_that_is_neither_parameter_nor_type_is_refused_at_declaration():
    with pytest.raises(ValueError, match="neither a type parameter"):
        _schema(input_types=("T",), type_constraints={"U": FLOATS})


def test_type_strings_are_onnx_ones():
    tensor = helper.make_tensor_type_proto(TensorProto.FLOAT8E4M3FN, [2])
    assert type_string(tensor) == "tensor(float8e4m3fn)"
    assert type_string(helper.make_sequence_type_proto(tensor)) == "seq(tensor(float8e4m3fn))"
    assert type_string(helper.make_optional_type_proto(tensor)) == \
        "optional(tensor(float8e4m3fn))"
    assert type_string(helper.make_map_type_proto(
        TensorProto.STRING, helper.make_tensor_type_proto(TensorProto.INT64, None))) == \
        "map(string,tensor(int64))"
    assert type_string(helper.make_sparse_tensor_type_proto(TensorProto.INT8, [2])) == \
        "sparse_tensor(int8)"
    assert type_string(helper.make_tensor_type_proto(TensorProto.UNDEFINED, None)) is None
    assert type_string(None) is None


# -- check_declared_types over inferred models ------------------------------------------------

def _table(*schemas: DeclaredSchema) -> SchemaTable:
    table = SchemaTable()
    for schema in schemas:
        table.add(schema, "test")
    return table


def _like_input(types, attrs):
    return [types[0]]


TYPED = DeclaredSchema(op_type="Scaled", domain=EX, min_inputs=1, max_inputs=2,
                       input_types=("T", "T"), output_types=("T",),
                       type_constraints={"T": FLOATS}, infer=_like_input)


def _model(nodes, inputs, outputs, initializers=(), opsets=(("", 17), (EX, 1))):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])


def _inferred(model, table):
    return infer_types(model, table)


def _scaled(x_type, scale=None, y_type=None, name="n0"):
    inputs = [helper.make_tensor_value_info("x", x_type, [2])]
    initializers = []
    if scale is not None:
        initializers.append(helper.make_tensor("s", scale, [1], [1]))
    node = helper.make_node("Scaled", ["x", "s"] if scale is not None else ["x"], ["y"],
                            domain=EX, name=name)
    return _model([node], inputs, [helper.make_tensor_value_info("y", y_type or 0, None)],
                  initializers)


def test_model_with_allowed_types_passes():
    table = _table(TYPED)
    check_declared_types(_inferred(_scaled(TensorProto.DOUBLE, TensorProto.DOUBLE), table), table)


def test_graph_input_of_forbidden_type_is_invalid_graph():
    table = _table(TYPED)
    with pytest.raises(InvalidGraph, match=r"Type 'tensor\(int64\)' of input parameter \(x\) of "
                                           r"operator \(Scaled\) in node \(n0\) is invalid"):
        check_declared_types(_inferred(_scaled(TensorProto.INT64), table), table)


def test_initializer_type_binds_like_any_input():
    table = _table(TYPED)
    with pytest.raises(Fail, match=r"bound to different types \(tensor\(float\) and "
                                   r"tensor\(double\) in node \(n0\)"):
        check_declared_types(_inferred(_scaled(TensorProto.FLOAT, TensorProto.DOUBLE), table),
                             table)


def test_declared_graph_output_type_contradicting_the_inputs_is_fail():
    table = _table(TYPED)
    with pytest.raises(Fail, match=r"Type \(tensor\(double\)\) of output arg \(y\)"):
        check_declared_types(_inferred(_scaled(TensorProto.FLOAT, y_type=TensorProto.DOUBLE),
                                       table), table)


def test_value_typed_by_an_upstream_node_is_checked():
    table = _table(TYPED)
    cast = helper.make_node("Cast", ["x"], ["c"], to=TensorProto.INT32)
    scaled = helper.make_node("Scaled", ["c"], ["y"], domain=EX, name="n1")
    model = _model([cast, scaled], [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                   [helper.make_empty_tensor_value_info("y")])
    with pytest.raises(InvalidGraph, match=r"tensor\(int32\)' of input parameter \(c\)"):
        check_declared_types(_inferred(model, table), table)


def test_schema_without_types_leaves_model_alone():
    untyped = DeclaredSchema(op_type="Scaled", domain=EX, min_inputs=1, max_inputs=2,
                             infer=_like_input)
    table = _table(untyped)
    check_declared_types(_inferred(_scaled(TensorProto.INT64), table), table)


def test_onnx_domain_declaration_governs_only_versions_onnx_lacks():
    norm = DeclaredSchema(op_type="LayerNormalization", domain="", min_inputs=2, max_inputs=3,
                          max_outputs=3, attributes={"axis": -1, "epsilon": 1e-5,
                                                     "stash_type": 1},
                          input_types=("T", "V", "V"), output_types=("V", "U", "U"),
                          type_constraints={"T": FLOATS, "U": FLOATS, "V": FLOATS})
    table = _table(norm)
    node = helper.make_node("LayerNormalization", ["x", "s"], ["y"], name="ln")
    inputs = [helper.make_tensor_value_info("x", TensorProto.INT64, [2, 3]),
              helper.make_tensor_value_info("s", TensorProto.INT64, [3])]
    below = _model([node], inputs, [helper.make_empty_tensor_value_info("y")],
                   opsets=(("", 16),))
    with pytest.raises(InvalidGraph, match="operator \\(LayerNormalization\\)"):
        check_declared_types(below, table)
    at_17 = _model([node], inputs, [helper.make_empty_tensor_value_info("y")],
                   opsets=(("", 17),))
    check_declared_types(at_17, table)  # ONNX's own op: onnx's inference checks it


def test_declared_node_in_a_subgraph_reads_outer_scope_types():
    table = _table(TYPED)
    scaled = helper.make_node("Scaled", ["x"], ["z"], domain=EX, name="inner")
    branch = helper.make_graph([scaled], "branch", [],
                               [helper.make_tensor_value_info("z", TensorProto.UNDEFINED, None)])
    other = helper.make_graph([helper.make_node("Identity", ["x"], ["w"])], "other", [],
                              [helper.make_tensor_value_info("w", TensorProto.UNDEFINED, None)])
    node = helper.make_node("If", ["c"], ["y"], then_branch=branch, else_branch=other)
    model = _model([node], [helper.make_tensor_value_info("c", TensorProto.BOOL, []),
                            helper.make_tensor_value_info("x", TensorProto.INT32, [2])],
                   [helper.make_empty_tensor_value_info("y")])
    with pytest.raises(InvalidGraph, match="in node \\(inner\\)"):
        check_declared_types(model, table)


def test_model_without_declared_ops_is_not_examined():
    class Spy(SchemaTable):
        looked_up = 0

        def lookup(self, domain, op_type, opset):
            Spy.looked_up += 1
            return super().lookup(domain, op_type, opset)

    table = Spy()
    table.add(TYPED, "test")
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Neg", ["r"], ["y"])]
    model = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                   [helper.make_empty_tensor_value_info("y")])
    check_declared_types(model, table)
    assert Spy.looked_up == 0
    check_declared_types(model, SchemaTable())  # no declarations at all


def test_single_node_check_for_type_inference_uses_the_governing_declaration():
    table = _table(TYPED)
    node = helper.make_node("Scaled", ["x", "s"], ["y"], domain=EX, name="n0")
    known = {"x": helper.make_tensor_type_proto(TensorProto.FLOAT, [2]), "s": "tensor(float)"}
    check_declared_node(node, {"": 17, EX: 1}, table, known)
    known["s"] = "tensor(double)"
    with pytest.raises(Fail, match="bound to different types"):
        check_declared_node(node, {"": 17, EX: 1}, table, known)
    check_declared_node(node, {"": 17}, table, known)  # the domain is not imported
    relu = helper.make_node("Relu", ["x"], ["y"])
    check_declared_node(relu, {"": 17, EX: 1}, table, {"x": "tensor(int4)"})  # not declared
