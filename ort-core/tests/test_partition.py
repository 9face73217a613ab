"""Partitioning over several providers, with a test device whose memory is not numpy."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
from onnx import TensorProto, helper

import ort
from ort import ep
from ort.ep import KernelTable
from ort.ep import ProviderSpec

from ort.testing import make_model


class DeviceArray:
    """Memory of the test device: deliberately not an ndarray, so host kernels reject it."""

    def __init__(self, data: np.ndarray) -> None:
        self.data = data
        self.shape = data.shape  # device values expose shape and dtype, as cupy arrays do
        self.dtype = data.dtype


class FakeDeviceProvider(ort.ExecutionProvider):
    """A provider whose values live on 'fakedev' and only move through its copy methods."""

    name: ClassVar[str] = "FakeDeviceExecutionProvider"
    device_type: ClassVar[str] = "fakedev"
    copies: ClassVar[list[str]] = []

    def to_device(self, array):
        FakeDeviceProvider.copies.append("to_device")
        assert isinstance(array, np.ndarray)
        return DeviceArray(array.copy())

    def to_host(self, value):
        FakeDeviceProvider.copies.append("to_host")
        assert isinstance(value, DeviceArray)
        return value.data.copy()


device_kernels = KernelTable()


@device_kernels.register("Relu", since=1)
def relu(node):
    def compute(x):
        assert isinstance(x, DeviceArray), "device kernel got host memory"
        return (DeviceArray(np.maximum(x.data, 0)),)

    return compute


class _DevicePlugin:
    @ort.hookimpl
    def ort_register_providers(self, registry):
        registry.register(ProviderSpec(name=FakeDeviceProvider.name, factory=FakeDeviceProvider,
                                       priority=10, device_type="fakedev"))

    @ort.hookimpl
    def ort_register_kernels(self, registry):
        registry.add(FakeDeviceProvider.name, device_kernels)


@pytest.fixture
def device_plugin():
    ep.register_plugin(_DevicePlugin(), "fakedev")
    FakeDeviceProvider.copies.clear()
    yield
    ep.unregister_plugin("fakedev")


def chain_model():
    """X -> Relu -> Relu -> (Add with X on CPU) -> Z, plus the device value as output R2."""
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [2, 3])
    z = helper.make_tensor_value_info("Z", TensorProto.FLOAT, [2, 3])
    r2 = helper.make_tensor_value_info("R2", TensorProto.FLOAT, [2, 3])
    nodes = [helper.make_node("Relu", ["X"], ["R1"], name="relu1"),
             helper.make_node("Relu", ["R1"], ["R2"], name="relu2"),
             helper.make_node("Add", ["R2", "X"], ["Z"], name="add0"),
             helper.make_node("Mul", ["R2", "X"], ["M"], name="mul0"),
             helper.make_node("Add", ["Z", "M"], ["W"], name="add1")]
    w = helper.make_tensor_value_info("W", TensorProto.FLOAT, [2, 3])
    return make_model(nodes, [x], [z, r2, w])


def test_nodes_go_to_the_first_provider_claiming_them_with_copies_once(device_plugin):
    sess = ort.InferenceSession(chain_model().SerializeToString(),
                                providers=["FakeDeviceExecutionProvider", "CPUExecutionProvider"])
    assert sess.get_providers() == ["FakeDeviceExecutionProvider", "CPUExecutionProvider"]
    report = sess.get_partition()
    assert report.nodes_by_provider == {
        "FakeDeviceExecutionProvider": ["relu1", "relu2"],
        "CPUExecutionProvider": ["add0", "mul0", "add1"],
    }
    assert report.copies == ["copy_X", "copy_R2"]  # X to the device; R2 back once for 2 consumers
    x = np.array([[-1, 2, -3], [4, -5, 6]], np.float32)
    z, r2, w = sess.run(None, {"X": x})
    r = np.maximum(x, 0)
    np.testing.assert_array_equal(r2, r)
    np.testing.assert_array_equal(z, r + x)
    np.testing.assert_array_equal(w, r + x + r * x)
    assert isinstance(r2, np.ndarray)  # device outputs come back to the host


def test_priority_order_is_the_users(device_plugin):
    sess = ort.InferenceSession(chain_model().SerializeToString(),
                                providers=["CPUExecutionProvider", "FakeDeviceExecutionProvider"])
    assert sess.get_partition().nodes_by_provider["FakeDeviceExecutionProvider"] == []
    sess.set_providers(["FakeDeviceExecutionProvider", "CPUExecutionProvider"])
    assert sess.get_partition().nodes_by_provider["FakeDeviceExecutionProvider"] == ["relu1", "relu2"]


def test_ortvalue_on_a_provider_device(device_plugin):
    value = ort.OrtValue.ortvalue_from_numpy(np.ones(3, np.float32), "fakedev", 0)
    assert value.device_name() == "fakedev"
    np.testing.assert_array_equal(value.numpy(), np.ones(3))
    with pytest.raises(ort.InvalidArgument, match="Unsupported device type: tpu"):
        ort.OrtValue.ortvalue_from_numpy(np.ones(3), "tpu")
