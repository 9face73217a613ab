"""The ONNX backend API of ort_backend, compared with onnx's ReferenceEvaluator."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

import ort
import ort_backend


def gemm_model():
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, ["n", 3])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["n", 2])
    w = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(3, 2), "W")
    node = helper.make_node("Gemm", ["X", "W"], ["Y"], alpha=0.5)
    return helper.make_model(helper.make_graph([node], "g", [x], [y], initializer=[w]),
                             opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


X = np.arange(6, dtype=np.float32).reshape(2, 3)


def test_prepare_and_run_list_dict_and_single_array():
    model = gemm_model()
    expected = ReferenceEvaluator(model).run(None, {"X": X})[0]
    rep = ort_backend.prepare(model, "CPU")
    for inputs in ([X], {"X": X}, X):
        outputs = rep.run(inputs)
        np.testing.assert_allclose(outputs[0], expected)
        np.testing.assert_allclose(outputs.Y, expected)  # named tuple
    np.testing.assert_allclose(ort_backend.run_model(model, [X])[0], expected)


def test_run_node():
    node = helper.make_node("Relu", ["x"], ["y"])
    (y,) = ort_backend.run_node(node, [np.array([-1.0, 2.0], np.float32)])
    np.testing.assert_array_equal(y, [0.0, 2.0])
    node = helper.make_node("Concat", ["a", "b"], ["c"], axis=0)
    (c,) = ort_backend.run_node(node, {"a": np.ones(2, np.int64), "b": np.zeros(1, np.int64)})
    assert c.tolist() == [1, 1, 0]


def test_devices_and_compatibility():
    assert ort_backend.supports_device("CPU")
    assert not ort_backend.supports_device("TPU")
    model = gemm_model()
    assert ort_backend.is_compatible(model, "CPU")
    model.ir_version = onnx.IR_VERSION + 1
    assert not ort_backend.is_compatible(model, "CPU")
    if not ort_backend.supports_device("CUDA"):
        assert not ort_backend.is_compatible(gemm_model(), "CUDA")
        with pytest.raises(ort.EPFail, match="not usable here"):
            ort_backend.prepare(gemm_model(), "CUDA")


def test_session_options_as_kwargs():
    rep = ort_backend.prepare(gemm_model(), "CPU", graph_optimization_level=ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    assert rep.session.get_session_options().graph_optimization_level == 0
    with pytest.raises(ValueError, match="unknown session option 'bogus'"):
        ort_backend.prepare(gemm_model(), "CPU", bogus=1)
