"""The exception hierarchy and the errors of bad calls, compared with onnxruntime's behaviour."""

from __future__ import annotations

import numpy as np
import ort
import pytest
from onnx import TensorProto, helper
from ort import ep, errors
from ort.testing import make_model


@pytest.mark.parametrize(
    ("cls", "builtin", "code", "status"),
    [
        (errors.Fail, RuntimeError, 1, "FAIL"),
        (errors.InvalidArgument, ValueError, 2, "INVALID_ARGUMENT"),
        (errors.NoSuchFile, FileNotFoundError, 3, "NO_SUCHFILE"),
        (errors.InvalidProtobuf, ValueError, 7, "INVALID_PROTOBUF"),
        (errors.NotImplemented, NotImplementedError, 9, "NOT_IMPLEMENTED"),
        (errors.InvalidGraph, ValueError, 10, "INVALID_GRAPH"),
        (errors.EPFail, RuntimeError, 11, "EP_FAIL"),
    ],
)
def test_classes_subclass_builtins_and_keep_onnxruntime_prefix(cls, builtin, code, status):
    exc = cls("what was wrong")
    assert isinstance(exc, builtin) and isinstance(exc, errors.OrtError)
    assert str(exc) == f"[ONNXRuntimeError] : {code} : {status} : what was wrong"
    assert exc.message == "what was wrong"


def test_compat_module_path_exposes_the_same_classes():
    from ort.capi.onnxruntime_pybind11_state import Fail, InvalidArgument

    assert Fail is errors.Fail and InvalidArgument is errors.InvalidArgument


@pytest.fixture
def session(add_model):
    return ort.InferenceSession(add_model.SerializeToString(), providers=["CPUExecutionProvider"])


X = np.ones((2, 3), np.float32)


@pytest.mark.parametrize(
    ("feed", "cls", "text"),
    [
        ({"X": X, "Y": X, "W": X}, errors.InvalidArgument, "Invalid input name: W"),
        ({"X": X, "Q": X}, ValueError, "Required inputs (['Y']) are missing from input feed (['X', 'Q'])."),
        ({"X": X}, ValueError, "Required inputs (['Y']) are missing"),
        ({"X": X.astype(np.float64), "Y": X}, errors.InvalidArgument,
         "Unexpected input data type. Actual: (tensor(double)) , expected: (tensor(float))"),
        ({"X": X.astype(np.int64), "Y": X}, errors.InvalidArgument, "Actual: (tensor(int64))"),
        ({"X": X[None], "Y": X}, errors.InvalidArgument,
         "Invalid rank for input: X Got: 3 Expected: 2 Please fix either the inputs/outputs or the model."),
        ({"X": X, "Y": np.ones((2, 4), np.float32)}, errors.InvalidArgument,
         "Got invalid dimensions for input: Y for the following indices\n index: 1 Got: 4 Expected: 3"),
        ({"X": X, "Y": np.ones((5, 3), np.float32)}, errors.Fail,
         "Non-zero status code returned while running Add node. Name:'add0'"),
    ],
)
def test_bad_feeds_raise_clear_errors_and_session_stays_usable(session, feed, cls, text):
    before = {k: v.copy() for k, v in feed.items()}
    with pytest.raises(cls) as info:
        session.run(None, feed)
    assert text in str(info.value)
    for name, value in feed.items():  # the caller's arrays are untouched
        np.testing.assert_array_equal(value, before[name])
    (z,) = session.run(None, {"X": X, "Y": X})
    np.testing.assert_array_equal(z, X + X)


def test_unknown_output_name(session):
    with pytest.raises(errors.InvalidArgument, match="Invalid output name:nope"):
        session.run(["nope"], {"X": X, "Y": X})


def test_missing_file_truncated_and_garbage_models(tmp_path, add_model):
    with pytest.raises(errors.NoSuchFile, match="File doesn't exist") as info:
        ort.InferenceSession(str(tmp_path / "nope.onnx"))
    assert isinstance(info.value, FileNotFoundError)
    data = add_model.SerializeToString()
    path = tmp_path / "trunc.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises((errors.InvalidProtobuf, errors.InvalidGraph)) as info:
        ort.InferenceSession(str(path))
    assert "trunc.onnx" in str(info.value) or "invalid" in str(info.value).lower()
    with pytest.raises(errors.InvalidProtobuf, match="Protobuf parsing failed"):
        ort.InferenceSession(b"garbage")
    with pytest.raises(TypeError, match="Unable to load from type"):
        ort.InferenceSession(123)


def test_every_unregistered_op_is_named_in_one_fail():
    # onnxruntime: Fail "Fatal error: com.example:Foo(-1) is not a registered function/op"
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2])
    nodes = [helper.make_node("Foo", ["X"], ["a"], name="f1", domain="com.example"),
             helper.make_node("Relu", ["a"], ["b"], name="r"),
             helper.make_node("Foo", ["b"], ["c"], name="f2", domain="com.example"),
             helper.make_node("Bar", ["c"], ["Y"], name="b1", domain="com.example")]
    model = make_model(nodes, [x], [y], opsets={"com.example": 3})
    with pytest.raises(errors.Fail) as info:
        ort.InferenceSession(model.SerializeToString())
    message = str(info.value)
    assert "Fatal error: com.example:Foo(3) is not a registered function/op (node 'f1')" in message
    assert "2 op(s) in 3 node(s) are not registered: com.example:Bar(3) at node(s) 'b1'; " \
        "com.example:Foo(3) at node(s) 'f1', 'f2'." in message
    assert "ort.ep.KernelTable" in message


class _SchemaOnlyPlugin:
    """Declares com.example:Foo and registers no kernel for it."""

    @ort.hookimpl
    def ort_register_schemas(self, registry):
        registry.declare(ep.DeclaredSchema(op_type="Foo", domain="com.example", min_inputs=1,
                                           max_inputs=1, max_outputs=1))


def test_declared_op_without_kernel_is_not_implemented_naming_op_version_and_what_exists():
    # a valid model (the op is declared) that no provider runs: onnxruntime's NotImplemented
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2])
    model = make_model([helper.make_node("Foo", ["X"], ["Y"], name="n0", domain="com.example")],
                       [x], [y], opsets={"com.example": 1})
    ep.register_plugin(_SchemaOnlyPlugin(), "schema-only")
    try:
        with pytest.raises(errors.NotImplemented) as info:
            ort.InferenceSession(model.SerializeToString())
    finally:
        ep.unregister_plugin("schema-only")
    message = str(info.value)
    assert "Could not find an implementation for com.example:Foo(1) node with name 'n0'" in message
    assert "CPUExecutionProvider has no kernel for com.example:Foo" in message


def test_type_error_in_model_is_invalid_graph():
    x = helper.make_tensor_value_info("X", TensorProto.UINT8, [2])
    y = helper.make_tensor_value_info("Y", TensorProto.UINT8, [2])
    model = make_model([helper.make_node("Neg", ["X"], ["Y"], name="n0")], [x], [y])
    with pytest.raises(errors.InvalidGraph, match="tensor\\(uint8\\)"):
        ort.InferenceSession(model.SerializeToString())


def test_dangling_input_is_invalid_argument():
    # onnxruntime: InvalidArgument "Invalid model. Node input 'ghost' is not a graph input, ..."
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2])
    model = make_model([helper.make_node("Add", ["X", "ghost"], ["Y"], name="n0")], [x], [y])
    with pytest.raises(errors.InvalidArgument, match="Node input 'ghost' is not a graph input"):
        ort.InferenceSession(model)


def test_run_options_terminate(session):
    options = ort.RunOptions()
    options.terminate = True
    with pytest.raises(errors.Fail, match="Exiting due to terminate flag being set to true."):
        session.run(None, {"X": X, "Y": X}, options)
