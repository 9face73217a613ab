"""Negative and unnamed dims are dynamic, as in onnxruntime: a -1 dim_value runs at any size
and is reported as None; dim names ONNX's inference invents (``unk__N``) are not reported."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

import ort

onnxruntime = pytest.importorskip("onnxruntime")


def _relu_model(in_shape, out_shape):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                             ir_version=8).SerializeToString()


def _shapes(session):
    return ([a.shape for a in session.get_inputs()], [a.shape for a in session.get_outputs()])


@pytest.mark.parametrize("size", [1, 4, 9])
def test_negative_dim_value_is_dynamic(size):
    model = _relu_model([-1, 3, -1], [-1, 3, -1])
    session = ort.InferenceSession(model)
    x = np.arange(size * 3 * 2, dtype=np.float32).reshape(size, 3, 2) - 5
    np.testing.assert_array_equal(session.run(None, {"x": x})[0], np.maximum(x, 0))
    theirs = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    assert _shapes(session) == _shapes(theirs) == ([[None, 3, None]], [[None, 3, None]])


def test_wrong_fixed_dim_beside_negative_one_is_still_refused():
    session = ort.InferenceSession(_relu_model([-1, 3], [-1, 3]))
    with pytest.raises(ort.InvalidArgument, match="index: 1 Got: 4 Expected: 3"):
        session.run(None, {"x": np.zeros((2, 4), np.float32)})


def test_invented_output_dim_names_are_none_declared_names_kept():
    model = _relu_model(["batch", None, 3], None)
    session = ort.InferenceSession(model)
    theirs = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    assert _shapes(session) == _shapes(theirs) == ([["batch", None, 3]], [["batch", None, 3]])


def test_negative_dims_inside_subgraphs_are_dynamic():
    then_out = helper.make_tensor_value_info("t", TensorProto.FLOAT, [-1])
    else_out = helper.make_tensor_value_info("e", TensorProto.FLOAT, [-1])
    then_graph = helper.make_graph([helper.make_node("Neg", ["x"], ["t"])], "then", [],
                                   [then_out])
    else_graph = helper.make_graph([helper.make_node("Abs", ["x"], ["e"])], "else", [],
                                   [else_out])
    node = helper.make_node("If", ["c"], ["y"], then_branch=then_graph, else_branch=else_graph)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("c", TensorProto.BOOL, []),
                      helper.make_tensor_value_info("x", TensorProto.FLOAT, [-1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [-1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    session = ort.InferenceSession(model.SerializeToString())
    x = np.array([-1, 2, -3], np.float32)
    np.testing.assert_array_equal(session.run(None, {"c": np.array(True), "x": x})[0], -x)
    np.testing.assert_array_equal(session.run(None, {"c": np.array(False), "x": x})[0],
                                  np.abs(x))
