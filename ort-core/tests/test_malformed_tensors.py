"""Malformed initializers and outputs too large to hold get onnxruntime's Fail with a message
naming the tensor and what is wrong, never a raw ValueError/KeyError/MemoryError, and nothing
is decoded or allocated for a tensor whose dims and data disagree."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import ort


def _add_model(weight: TensorProto) -> bytes:
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [weight])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                             ir_version=8).SerializeToString()


def _weight(data_type=TensorProto.FLOAT, dims=(4,), raw: bytes | None = None,
            floats=None) -> TensorProto:
    tensor = TensorProto(name="w", data_type=data_type, dims=list(dims))
    if raw is not None:
        tensor.raw_data = raw
    if floats is not None:
        tensor.float_data.extend(floats)
    return tensor


@pytest.mark.parametrize("weight,message", [
    (_weight(raw=b"\0" * 8), r"raw_data size \(8 bytes\) does not match expected size .*16"),
    (_weight(raw=b"\0" * 20), r"raw_data size \(20 bytes\)"),
    (_weight(data_type=999, raw=b"\0" * 16), "element type 999"),
    (_weight(dims=(-4,)), "cannot be negative"),
    (_weight(dims=(2 ** 40, 2 ** 40)), "holds no data"),
    (_weight(floats=[1.0, 2.0]), "does not match its shape.*size 2 into shape"),
])
def test_malformed_initializers_are_fail(weight, message):
    model = _add_model(weight)
    with pytest.raises(ort.Fail, match=message):
        ort.InferenceSession(model)
    onnxruntime = pytest.importorskip("onnxruntime")
    with pytest.raises(onnxruntime.capi.onnxruntime_pybind11_state.Fail):
        onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])


def test_a_well_formed_initializer_still_loads():
    model = _add_model(numpy_helper.from_array(np.arange(4, dtype=np.float32), "w"))
    out = ort.InferenceSession(model).run(None, {"x": np.ones(4, np.float32)})[0]
    np.testing.assert_array_equal(out, np.arange(4) + 1)


def test_an_output_too_large_for_memory_is_fail_and_the_session_stays_usable():
    shape = numpy_helper.from_array(np.array([2 ** 20, 2 ** 20], np.int64), "s")
    graph = helper.make_graph([helper.make_node("Expand", ["x", "s"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [shape])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    session = ort.InferenceSession(model.SerializeToString())
    too_large = r"Expand.*4,398,046,511,104 bytes"  # refused before the view is made
    with pytest.raises(ort.Fail, match=too_large):
        session.run(None, {"x": np.ones(1, np.float32)})
    with pytest.raises(ort.Fail, match=too_large):  # and again: still usable
        session.run(None, {"x": np.ones(1, np.float32)})
