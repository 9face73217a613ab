"""Model validation before optimizing: onnxruntime's verdict is the rule.

Each model below breaks (or, for a few, bends without breaking) one rule ONNX Runtime checks
when it loads a model. ort must refuse it at the same phase (load or run) with the same
exception class as onnxruntime, or accept it as onnxruntime does, at every optimization
level (the optimizer must not hide what was wrong, e.g. by merging two copies of a node).
"""

from __future__ import annotations

import numpy as np
import onnx
import ort
import pytest
from onnx import TensorProto as T
from onnx import helper as h

onnxruntime = pytest.importorskip("onnxruntime", reason="onnxruntime is the oracle of these tests")


def model(nodes, inputs, outputs, inits=(), opset=17, ir=8, extra_opsets=()):
    graph = h.make_graph(nodes, "g", inputs, outputs, list(inits))
    proto = h.make_model(graph, opset_imports=[h.make_opsetid("", opset)] + list(extra_opsets))
    proto.ir_version = ir
    return proto


X = h.make_tensor_value_info("x", T.FLOAT, [2, 3])
Y = h.make_tensor_value_info("y", T.FLOAT, [2, 3])
Yu = h.make_tensor_value_info("y", T.FLOAT, None)
MS = h.make_opsetid("com.microsoft", 1)


def relu(i="x", o="y", **kw):
    return h.make_node("Relu", [i], [o], **kw)


CASES = {}
CASES["ok"] = model([relu()], [X], [Y])
CASES["add_float_int64"] = model([h.make_node("Add", ["x", "c"], ["y"])], [X], [Yu], [h.make_tensor("c", T.INT64, [3], [1, 2, 3])])
CASES["opset99"] = model([relu()], [X], [Y], opset=99)
CASES["opset27"] = model([relu()], [X], [Y], opset=27)
CASES["opset0"] = model([relu()], [X], [Y], opset=0)
CASES["unknown_attr"] = model([relu(foo=1)], [X], [Y])
CASES["attr_wrong_type"] = model([h.make_node("Softmax", ["x"], ["y"], axis=1.5)], [X], [Y])
CASES["attr_wrong_type_str"] = model([h.make_node("Softmax", ["x"], ["y"], axis="a")], [X], [Y])
CASES["missing_required_attr"] = model([h.make_node("Cast", ["x"], ["y"])], [X], [Yu])
CASES["untyped_input"] = model([relu()], [onnx.ValueInfoProto(name="x")], [Y])
CASES["untyped_output"] = model([relu()], [X], [onnx.ValueInfoProto(name="y")])
CASES["dup_node"] = model([relu(), relu()], [X], [Y])
CASES["dup_output_name"] = model([relu("x", "y"), h.make_node("Neg", ["x"], ["y"])], [X], [Y])
CASES["keepdims2"] = model([h.make_node("ReduceSum", ["x"], ["y"], keepdims=2)], [X], [Yu])
CASES["too_many_inputs"] = model([h.make_node("Relu", ["x", "x"], ["y"])], [X], [Y])
CASES["too_few_inputs"] = model([h.make_node("Add", ["x"], ["y"])], [X], [Y])
CASES["too_many_outputs"] = model([h.make_node("Relu", ["x"], ["y", "z"])], [X], [Y])
CASES["unsorted"] = model([relu("t", "y"), h.make_node("Neg", ["x"], ["t"])], [X], [Y])
CASES["cycle"] = model([relu("t", "u"), h.make_node("Neg", ["u"], ["t"]), h.make_node("Identity", ["t"], ["y"])], [X], [Y])
CASES["dangling_input"] = model([h.make_node("Add", ["x", "nope"], ["y"])], [X], [Y])
CASES["output_not_produced"] = model([relu()], [X], [h.make_tensor_value_info("zz", T.FLOAT, [2, 3])])
CASES["unknown_op_default"] = model([h.make_node("Frobnicate", ["x"], ["y"])], [X], [Y])
CASES["unknown_domain"] = model([h.make_node("Frob", ["x"], ["y"], domain="foo.bar")], [X], [Y], extra_opsets=[h.make_opsetid("foo.bar", 1)])
CASES["domain_not_imported"] = model([h.make_node("FusedMatMul", ["x", "x"], ["y"], domain="com.microsoft", transB=1)], [X], [Yu])
CASES["ms_domain_imported"] = model([h.make_node("FusedMatMul", ["x", "x"], ["y"], domain="com.microsoft", transB=1)], [X], [Yu], extra_opsets=[MS])
CASES["ms_unknown_attr"] = model([h.make_node("FusedMatMul", ["x", "x"], ["y"], domain="com.microsoft", transB=1, bogus=3)], [X], [Yu], extra_opsets=[MS])
CASES["ms_too_many_inputs"] = model([h.make_node("FusedMatMul", ["x", "x", "x"], ["y"], domain="com.microsoft", transB=1)], [X], [Yu], extra_opsets=[MS])
CASES["ms_opset_5"] = model([h.make_node("FusedMatMul", ["x", "x"], ["y"], domain="com.microsoft", transB=1)], [X], [Yu], extra_opsets=[h.make_opsetid("com.microsoft", 5)])
CASES["ml_opset_99"] = model([relu()], [X], [Y], extra_opsets=[h.make_opsetid("ai.onnx.ml", 99)])
CASES["ir2"] = model([relu()], [X], [Y], ir=2)
CASES["ir3"] = model([relu()], [X], [Y], ir=3)
CASES["no_opset_import"] = model([relu()], [X], [Y])
del CASES["no_opset_import"].opset_import[:]
CASES["wrong_declared_output_type"] = model([relu()], [X], [h.make_tensor_value_info("y", T.INT64, [2, 3])])
CASES["wrong_declared_output_shape"] = model([relu()], [X], [h.make_tensor_value_info("y", T.FLOAT, [5, 7])])
CASES["wrong_declared_output_rank"] = model([relu()], [X], [h.make_tensor_value_info("y", T.FLOAT, [6])])
CASES["wrong_value_info_type"] = model([relu("x", "t"), relu("t", "y")], [X], [Y])
CASES["wrong_value_info_type"].graph.value_info.append(h.make_tensor_value_info("t", T.INT64, [2, 3]))
CASES["reshape_bad_const"] = model([h.make_node("Reshape", ["x", "s"], ["y"])], [X], [Yu], [h.make_tensor("s", T.INT64, [2], [4, 4])])
CASES["add_bad_broadcast_static"] = model([h.make_node("Add", ["x", "c"], ["y"])], [X], [Yu], [h.make_tensor("c", T.FLOAT, [5], [1]*5)])
CASES["matmul_bad_static"] = model([h.make_node("MatMul", ["x", "x"], ["y"])], [X], [Yu])
CASES["empty_op_type"] = model([h.make_node("", ["x"], ["y"])], [X], [Y])
CASES["input_is_also_initializer_ir3"] = model([relu()], [X], [Y], [h.make_tensor("x", T.FLOAT, [2, 3], [0]*6)], ir=3)
CASES["init_not_in_inputs_ir3"] = model([h.make_node("Add", ["x", "c"], ["y"])], [X], [Y], [h.make_tensor("c", T.FLOAT, [3], [1]*3)], ir=3)
CASES["dup_graph_input"] = model([relu()], [X, X], [Y])
CASES["dup_initializer"] = model([h.make_node("Add", ["x", "c"], ["y"])], [X], [Y], [h.make_tensor("c", T.FLOAT, [3], [1]*3)]*2)
CASES["empty_output_name_node"] = model([h.make_node("Relu", ["x"], [""])], [X], [Y])
CASES["graph_output_is_input"] = model([], [X], [h.make_tensor_value_info("x", T.FLOAT, [2, 3])])
CASES["attr_graph_on_relu"] = model([relu(body=h.make_graph([], "b", [], []))], [X], [Y])
# If with bad branch output type
then_g = h.make_graph([h.make_node("Identity", ["x"], ["a"])], "t", [], [h.make_tensor_value_info("a", T.FLOAT, [2, 3])])
else_g = h.make_graph([h.make_node("Cast", ["x"], ["b"], to=T.INT64)], "e", [], [h.make_tensor_value_info("b", T.INT64, [2, 3])])
C = h.make_tensor_value_info("c", T.BOOL, [])
CASES["if_branch_type_mismatch"] = model([h.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)], [C, X], [Yu])
else_g2 = h.make_graph([h.make_node("Neg", ["x"], ["b"])], "e", [], [h.make_tensor_value_info("b", T.INT64, [2, 3])])
CASES["if_branch_declared_wrong"] = model([h.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g2)], [C, X], [Yu])
CASES["if_missing_branch"] = model([h.make_node("If", ["c"], ["y"], then_branch=then_g)], [C, X], [Yu])


def _feeds(session):
    feeds = {}
    for arg in session.get_inputs():
        if arg.type == "tensor(bool)":
            feeds[arg.name] = np.array(True)
        else:
            shape = [d if isinstance(d, int) else 2 for d in (arg.shape or [2, 3])]
            feeds[arg.name] = np.ones(shape, np.float32)
    return feeds


def verdict(runtime, proto, **session_kwargs):
    """('OK', None), ('LOAD', class name) or ('RUN', class name)."""
    try:
        session = runtime.InferenceSession(proto.SerializeToString(),
                                           providers=["CPUExecutionProvider"], **session_kwargs)
    except Exception as exc:  # noqa: BLE001 - the class is the verdict
        return "LOAD", type(exc).__name__
    try:
        session.run(None, _feeds(session))
    except Exception as exc:  # noqa: BLE001
        return "RUN", type(exc).__name__
    return "OK", None


@pytest.fixture(scope="module")
def quiet_onnxruntime():
    onnxruntime.set_default_logger_severity(4)
    yield onnxruntime
    onnxruntime.set_default_logger_severity(2)


@pytest.mark.parametrize("level", ["ORT_DISABLE_ALL", "ORT_ENABLE_ALL"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_verdict_matches_onnxruntime(name, level, quiet_onnxruntime):
    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    want = verdict(quiet_onnxruntime, CASES[name])
    got = verdict(ort, CASES[name], sess_options=options)
    assert got == want


def test_refusals_are_ort_errors_that_say_what_is_wrong():
    cases = {"unknown_attr": "Unrecognized attribute: foo for operator Relu",
             "too_many_inputs": "has input size 2 not in range [min=1, max=1]",
             "dup_node": "Duplicate definition of name (y)",
             "cycle": "the graph is not acyclic",
             "opset99": "support for domain ai.onnx is till opset",
             "untyped_input": "Model input (x) does not have type information",
             "add_float_int64": "B has inconsistent type tensor(int64)"}
    for name, text in cases.items():
        with pytest.raises(ort.OrtError) as info:
            ort.InferenceSession(CASES[name].SerializeToString())
        assert text in str(info.value), name


def test_unknown_attribute_message_lists_the_ops_attributes():
    proto = model([h.make_node("Softmax", ["x"], ["y"], axes=1)], [X], [Y])
    with pytest.raises(ort.InvalidGraph, match="Softmax-13 takes the attributes: axis"):
        ort.InferenceSession(proto.SerializeToString())


def test_unsorted_main_graph_is_sorted_and_the_callers_model_is_untouched():
    proto = CASES["unsorted"]
    before = proto.SerializeToString()
    session = ort.InferenceSession(proto)
    (y,) = session.run(None, {"x": np.full((2, 3), -1.0, np.float32)})
    np.testing.assert_array_equal(y, np.ones((2, 3), np.float32))
    assert proto.SerializeToString() == before


def test_validation_sees_the_model_before_the_optimizer_merges_duplicates():
    # the same node twice: common-subexpression elimination would merge the copies
    for level in (ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                  ort.GraphOptimizationLevel.ORT_ENABLE_ALL):
        options = ort.SessionOptions()
        options.graph_optimization_level = level
        with pytest.raises(ort.Fail, match="Duplicate definition"):
            ort.InferenceSession(CASES["dup_node"].SerializeToString(), sess_options=options)


def _with_bad_utf8(proto, marker: bytes) -> bytes:
    data = proto.SerializeToString()
    assert data.count(marker) == 1
    return data.replace(marker, marker[:2] + b"\xff" + marker[3:])


def test_a_label_that_is_not_utf8_is_tolerated_as_onnxruntime_does():
    proto = model([relu()], [X], [Y])
    proto.graph.name = "GRAPHNAME"
    data = _with_bad_utf8(proto, b"GRAPHNAME")
    assert verdict(ort, onnx.ModelProto.FromString(data)) == ("OK", None)
    (y,) = ort.InferenceSession(data).run(None, {"x": np.ones((2, 3), np.float32)})
    assert y.shape == (2, 3)


def test_an_op_type_that_is_not_utf8_is_invalid_protobuf_naming_the_field():
    proto = model([h.make_node("Relu", ["x"], ["y"], domain="RELUDOMAIN")], [X], [Y])
    data = _with_bad_utf8(proto, b"RELUDOMAIN")
    with pytest.raises(ort.InvalidProtobuf, match="domain holds text that is not valid UTF-8"):
        ort.InferenceSession(data)
