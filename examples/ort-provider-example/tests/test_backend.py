"""The ONNX backend tests of the ops ExampleExecutionProvider claims, run with it first in
the provider list (the CPU provider takes what it declines, e.g. integer types)."""

import onnx.backend.test
import pytest

import ort
from ort_backend import OrtBackend

PROVIDERS = ["ExampleExecutionProvider", "CPUExecutionProvider"]


class ExampleBackend(OrtBackend):
    """ort's backend with the example provider in front."""

    @classmethod
    def prepare(cls, model, device="CPU", **kwargs):
        return super().prepare(model, device, providers=PROVIDERS, **kwargs)


backend_test = onnx.backend.test.BackendTest(ExampleBackend, __name__)
backend_test.include(r"^test_(relu|add|sub|mul|matmul)(_[a-z0-9_]+)?_cpu$")
backend_test.exclude(r"uint|int8|int16|int32|int64|bcast")  # integer variants go to CPU anyway
globals().update(backend_test.test_cases)


def test_the_example_provider_is_installed_and_takes_nodes():
    from onnx import TensorProto, helper
    import numpy as np

    from ort_provider_example import ExampleExecutionProvider

    assert "ExampleExecutionProvider" in ort.get_available_providers()
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [2, 2])
    nodes = [helper.make_node("Relu", ["X"], ["R"], name="relu"),
             helper.make_node("MatMul", ["R", "X"], ["M"], name="mm"),
             helper.make_node("Add", ["M", "X"], ["Y"], name="add"),
             helper.make_node("Sigmoid", ["Y"], ["Z"], name="sig")]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [
        helper.make_tensor_value_info("Z", TensorProto.FLOAT, [2, 2])]),
        opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    sess = ort.InferenceSession(model.SerializeToString(), providers=PROVIDERS)
    assert sess.get_partition().nodes_by_provider == {
        "ExampleExecutionProvider": ["relu", "mm+add"], "CPUExecutionProvider": ["sig"]}
    data = np.array([[1, -2], [3, 4]], np.float32)
    r = np.maximum(data, 0)
    np.testing.assert_allclose(sess.run(None, {"X": data})[0], 1 / (1 + np.exp(-(r @ data + data))),
                               rtol=1e-6)
    assert ExampleExecutionProvider.calls[-2:] == ["relu", "mm+add"]
