"""ort.testing: the model builders, the onnxruntime/reference oracles and the conformance
runner that the project's tests and third-party provider authors share."""

from __future__ import annotations

import numpy as np
import pytest

import ort
from ort import ep
from ort.testing import (
    assert_matches_onnxruntime, assert_outputs_match, check_node, node_model,
)
from ort.testing.conformance import node_tests, ran_on, run_node_test


def test_node_model_feeds_constants_and_omitted_inputs():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    model, feeds = node_model("Clip", [x, None, np.float32(4)], constants={2}, opset=13)
    assert [i.name for i in model.graph.input] == ["in0"]
    assert list(model.graph.node[0].input) == ["in0", "", "in2"]
    assert [t.name for t in model.graph.initializer] == ["in2"] and list(feeds) == ["in0"]
    np.testing.assert_array_equal(check_node("Clip", [x, None, np.float32(4)], constants={2},
                                             opset=13)[0], np.minimum(x, 4))


def test_check_node_on_a_contrib_op_and_the_reference_oracle():
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    check_node("FastGelu", [x], domain="com.microsoft", rtol=1e-4, atol=1e-5)
    check_node("Gelu", [x], {"approximate": "tanh"}, opset=20, oracle="reference",
               rtol=1e-5, atol=1e-6)


def test_mismatches_fail_loudly():
    with pytest.raises(AssertionError, match="dtype"):
        assert_outputs_match([np.zeros(2, np.float32)], [np.zeros(2, np.float64)])
    with pytest.raises(AssertionError, match="shape"):
        assert_outputs_match([np.zeros(2)], [np.zeros(3)])
    with pytest.raises(AssertionError):
        assert_outputs_match([np.array([1.0, 2.0])], [np.array([1.0, 2.1])])
    with pytest.raises(AssertionError, match="2 outputs, expected 1"):
        assert_outputs_match([1, 2], [1])
    with pytest.raises(AssertionError, match="expected a numpy array"):
        assert_outputs_match([[1.0, 2.0]], [np.array([1.0, 2.0])])  # a list is not a tensor
    assert_outputs_match([[np.array(["a"], object)], None, {1: np.float32(2)}, {"k": "v"}],
                         [[np.array(["a"], object)], None, {1: 2.0}, {"k": "v"}])


class _WrongRelu(ort.ExecutionProvider):
    """A provider whose Relu forgets to clamp: what the kit must catch."""

    name = "WrongReluExecutionProvider"


class _WrongReluPlugin:
    @ort.hookimpl
    def ort_register_providers(self, registry):
        registry.register(ep.ProviderSpec(name=_WrongRelu.name, factory=_WrongRelu, priority=30))

    @ort.hookimpl
    def ort_register_kernels(self, registry):
        table = ep.KernelTable()

        @table.register("Relu", since=6, input_types={0: ["float"]})
        def relu(node):
            return lambda x: (x.copy(),)

        registry.add(_WrongRelu.name, table)


@pytest.fixture
def wrong_relu():
    ep.register_plugin(_WrongReluPlugin(), "wrong-relu")
    yield [_WrongRelu.name, "CPUExecutionProvider"]
    ep.unregister_plugin("wrong-relu")


def test_oracle_catches_a_wrong_kernel(wrong_relu):
    model, feeds = node_model("Relu", [np.array([-1.0, 2.0], np.float32)])
    with pytest.raises(AssertionError):
        assert_matches_onnxruntime(model, feeds, providers=wrong_relu)
    assert_matches_onnxruntime(model, feeds)  # the CPU provider's Relu is right


def test_conformance_runner_passes_a_right_provider_and_fails_a_wrong_one(wrong_relu):
    tests = node_tests(include=r"^test_relu$")
    assert [t.name for t in tests] == ["test_relu"] and tests[0].data_sets
    session = run_node_test(tests[0], ["CPUExecutionProvider"])
    assert ran_on(session, "CPUExecutionProvider")
    with pytest.raises(AssertionError, match="test_relu data set 0"):
        run_node_test(tests[0], wrong_relu)
    assert len(node_tests(include=r"^test_(relu|add)", exclude="bcast|int8")) > 2
