"""Ops without kernels run as their ONNX function bodies; model-local functions run too."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
from onnx import TensorProto, helper

import ort

from ort.testing import make_model


def test_schema_function_op_without_kernel_matches_onnxruntime():
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [2, 3, 4, 5])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2, 3, 4, 5])
    model = make_model([helper.make_node("MeanVarianceNormalization", ["X"], ["Y"], name="mvn")], [x], [y])
    data = model.SerializeToString()
    feed = {"X": np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)}
    ours = ort.InferenceSession(data).run(None, feed)[0]
    theirs = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, feed)[0]
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_model_local_function_with_attribute_reference():
    scale = helper.make_attribute_ref("alpha", onnx.AttributeProto.FLOAT)
    scale.ref_attr_name = "scale"
    body = [helper.make_node("Constant", [], ["a"], value_float=0.0),
            helper.make_node("LeakyRelu", ["x"], ["r"]),
            helper.make_node("Add", ["r", "a"], ["y"])]
    body[1].attribute.append(scale)
    function = helper.make_function("com.example", "ScaledLeaky", ["x"], ["y"], body,
                                    [helper.make_opsetid("", 17)], attributes=["scale"])
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [4])
    graph = helper.make_graph([helper.make_node("ScaledLeaky", ["X"], ["Y"], domain="com.example", scale=0.5)],
                              "g", [x], [y])
    model = helper.make_model(graph, functions=[function], ir_version=8,
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    data = model.SerializeToString()
    feed = {"X": np.array([-2, -1, 0, 3], np.float32)}
    ours = ort.InferenceSession(data).run(None, feed)[0]
    theirs = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, feed)[0]
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(ours, [-1, -0.5, 0, 3])


def test_function_body_with_a_branch_reading_body_values_and_attribute_references():
    """An If inside a function body reads a value the body computed and an attribute
    reference of the function; both must be resolved inside the branch (AffineGrid's body
    has this shape)."""
    scale_ref = helper.make_attribute_ref("alpha", onnx.AttributeProto.FLOAT)
    scale_ref.ref_attr_name = "scale"
    then_node = helper.make_node("LeakyRelu", ["doubled"], ["t"])
    then_node.attribute.append(scale_ref)
    then_branch = helper.make_graph([then_node], "then", [],
                                    [helper.make_tensor_value_info("t", TensorProto.FLOAT, None)])
    else_branch = helper.make_graph([helper.make_node("Identity", ["doubled"], ["e"])], "else", [],
                                    [helper.make_tensor_value_info("e", TensorProto.FLOAT, None)])
    body = [helper.make_node("Add", ["x", "x"], ["doubled"]),
            helper.make_node("If", ["flag"], ["y"], then_branch=then_branch,
                             else_branch=else_branch)]
    function = helper.make_function("com.example", "MaybeLeaky", ["x", "flag"], ["y"], body,
                                    [helper.make_opsetid("", 17)], attributes=["scale"])
    call = helper.make_node("MaybeLeaky", ["X", "F"], ["Y"], domain="com.example", scale=0.25)
    graph = helper.make_graph(
        [call, helper.make_node("MaybeLeaky", ["Y", "F"], ["Z"], domain="com.example", scale=0.5)],
        "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [3]),
              helper.make_tensor_value_info("F", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("Z", TensorProto.FLOAT, [3])])
    model = helper.make_model(graph, functions=[function], ir_version=8, opset_imports=[
        helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    data = model.SerializeToString()
    for flag in (True, False):
        feed = {"X": np.array([-2, 0, 3], np.float32), "F": np.array(flag)}
        ours = ort.InferenceSession(data).run(None, feed)[0]
        theirs = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, feed)[0]
        np.testing.assert_array_equal(ours, theirs)
