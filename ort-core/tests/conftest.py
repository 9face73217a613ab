"""Shared fixtures: small models built with onnx.helper."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import ModelProto, TensorProto, helper, numpy_helper

from ort.testing import make_model


@pytest.fixture
def add_model() -> ModelProto:
    """``Z = Add(X, Y)``, X: float['batch', 3], Y: float[None, 3] (the reference's add.onnx)."""
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, ["batch", 3])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 3])
    z = helper.make_tensor_value_info("Z", TensorProto.FLOAT, ["batch", 3])
    return make_model([helper.make_node("Add", ["X", "Y"], ["Z"], name="add0")], [x, y], [z])


@pytest.fixture
def relu_add_model() -> ModelProto:
    """``R = Relu(X); Z = Add(R, W)`` with W an overridable initializer."""
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [2, 3])
    w_info = helper.make_tensor_value_info("W", TensorProto.FLOAT, [2, 3])
    z = helper.make_tensor_value_info("Z", TensorProto.FLOAT, [2, 3])
    w = numpy_helper.from_array(np.full((2, 3), 0.5, np.float32), "W")
    nodes = [helper.make_node("Relu", ["X"], ["R"], name="relu0"),
             helper.make_node("Add", ["R", "W"], ["Z"], name="add0")]
    return make_model(nodes, [x, w_info], [z], initializers=[w])
