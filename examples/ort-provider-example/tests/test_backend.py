"""ONNX's backend node tests of the ops ExampleExecutionProvider claims, run with it first in
the provider list (the CPU provider takes what it declines, e.g. integer types), through the
conformance kit that ships with ort (``ort.testing.conformance``)."""

import numpy as np
import pytest
from onnx import TensorProto, helper

import ort
from ort.testing import make_model
from ort.testing.conformance import node_tests, ran_on, run_node_test

PROVIDER = "ExampleExecutionProvider"
PROVIDERS = [PROVIDER, "CPUExecutionProvider"]
#: float variants of the ops the example registers (integer ones go to the CPU provider;
#: the "expanded" variants hold other ops)
TESTS = node_tests(include=r"^test_(relu|add|sub|mul|matmul)(_[a-z0-9_]+)?$",
                   exclude=r"uint|int8|int16|int32|int64|bcast|expanded")


@pytest.mark.parametrize("case", TESTS, ids=[t.name for t in TESTS])
def test_onnx_node(case):
    session = run_node_test(case, PROVIDERS)
    assert ran_on(session, PROVIDER), f"{PROVIDER} took no node of {case.name}"


def test_the_example_provider_is_installed_and_takes_nodes():
    from ort_provider_example import ExampleExecutionProvider

    assert PROVIDER in ort.get_available_providers()
    assert len(TESTS) >= 8
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [2, 2])
    nodes = [helper.make_node("Relu", ["X"], ["R"], name="relu"),
             helper.make_node("MatMul", ["R", "X"], ["M"], name="mm"),
             helper.make_node("Add", ["M", "X"], ["Y"], name="add"),
             helper.make_node("Sigmoid", ["Y"], ["Z"], name="sig")]
    model = make_model(nodes, [x], [helper.make_tensor_value_info("Z", TensorProto.FLOAT, [2, 2])],
                       opset=17, ir_version=9)
    sess = ort.InferenceSession(model.SerializeToString(), providers=PROVIDERS)
    assert sess.get_partition().nodes_by_provider == {
        "ExampleExecutionProvider": ["relu", "mm+add"], "CPUExecutionProvider": ["sig"]}
    data = np.array([[1, -2], [3, 4]], np.float32)
    r = np.maximum(data, 0)
    np.testing.assert_allclose(sess.run(None, {"X": data})[0], 1 / (1 + np.exp(-(r @ data + data))),
                               rtol=1e-6)
    assert ExampleExecutionProvider.calls[-2:] == ["relu", "mm+add"]
