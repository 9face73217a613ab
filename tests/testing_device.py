"""A test "device": memory that is a separate object type with its own allocator and copies,
so partitioning, copy insertion and IOBinding are proven without a GPU.

``DeviceBuffer`` is not a numpy array (no ``__array__``): a host kernel handed one fails, so a
missing copy cannot go unnoticed. Its "addresses" are handles in a table, which is what
``buffer_ptr`` means on this device.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

import ort
from ort.ep import KernelTable
from ort.ep import ProviderSpec

DEVICE = "testdev"


class DeviceBuffer:
    """Device memory: an array only this provider's kernels and copies may touch."""

    __slots__ = ("_data", "handle")
    _handles = itertools.count(0x1000, 0x1000)
    table: dict[int, DeviceBuffer] = {}

    def __init__(self, data: np.ndarray) -> None:
        self._data = data
        self.handle = next(self._handles)
        DeviceBuffer.table[self.handle] = self

    @property
    def shape(self) -> tuple[int, ...]:
        """The buffer's dimensions."""
        return self._data.shape

    @property
    def dtype(self) -> np.dtype:
        """The element type."""
        return self._data.dtype

    def __repr__(self) -> str:
        return f"DeviceBuffer({self.dtype}, {self.shape})"


class TestDeviceProvider(ort.ExecutionProvider):
    """Runs Relu, Add and MatMul on the test device; counts copies and allocations."""

    __test__ = False  # not a pytest class
    name = "TestDeviceExecutionProvider"
    device_type = DEVICE
    known_options = frozenset({"device_id", "fuse"})
    copies_in = 0
    copies_out = 0
    allocations = 0

    def get_capability(self, graph: Any, lookup: Any) -> list[Any]:
        """Claim every node with a kernel; with option ``fuse=MatMul+Add`` claim each MatMul
        followed by an Add reading it as one fused group (run through ``compile``)."""
        claimed = [n.index for n in graph.nodes if lookup(n) is not None]
        if self.options.get("fuse") != "MatMul+Add":
            return claimed
        from ort.ep import FusedSubgraph

        result: list[Any] = []
        skip: set[int] = set()
        for node in graph.nodes:
            if node.index not in claimed or node.index in skip:
                continue
            follower = next((m for m in graph.nodes if m.op_type == "Add"
                             and node.outputs[0] in m.inputs and m.index in claimed), None)
            if node.op_type == "MatMul" and follower is not None:
                result.append(FusedSubgraph([node.index, follower.index], name=f"{node.name}_add",
                                            op_type="MatMulAdd"))
                skip.add(follower.index)
            else:
                result.append(node.index)
        return result

    def to_device(self, array: np.ndarray) -> DeviceBuffer:
        """Host -> device copy."""
        TestDeviceProvider.copies_in += 1
        return DeviceBuffer(np.array(array, copy=True))

    def to_host(self, value: DeviceBuffer) -> np.ndarray:
        """Device -> host copy."""
        if not isinstance(value, DeviceBuffer):
            raise TypeError(f"to_host expects a DeviceBuffer, got {type(value).__name__}")
        TestDeviceProvider.copies_out += 1
        return np.array(value._data, copy=True)

    def allocate(self, shape: Sequence[int], dtype: np.dtype) -> DeviceBuffer:
        """Allocate device memory."""
        TestDeviceProvider.allocations += 1
        return DeviceBuffer(np.zeros(tuple(shape), dtype=dtype))

    def from_pointer(self, pointer: int, shape: Sequence[int], dtype: np.dtype) -> DeviceBuffer:
        """A buffer handle on this device, viewed with the given shape and type."""
        buffer = DeviceBuffer.table[int(pointer)]
        if buffer.dtype != np.dtype(dtype) or buffer._data.size != int(np.prod(shape)):
            raise ValueError(f"handle {pointer:#x} holds {buffer}, not {dtype}{list(shape)}")
        view = DeviceBuffer.__new__(DeviceBuffer)
        view._data = buffer._data.reshape(tuple(shape))
        view.handle = buffer.handle
        return view

    def data_ptr(self, value: DeviceBuffer) -> int:
        """The buffer's handle."""
        return value.handle

    def copy_into(self, target: DeviceBuffer, value: DeviceBuffer) -> None:
        """Device -> device copy into pre-allocated memory."""
        np.copyto(target._data, value._data)

    @classmethod
    def reset_counters(cls) -> None:
        """Zero the copy and allocation counters."""
        cls.copies_in = cls.copies_out = cls.allocations = 0


kernels = KernelTable()


def _device_kernel(fn):
    def factory(node):
        def compute(*inputs):
            for value in inputs:
                if not isinstance(value, DeviceBuffer):
                    raise TypeError(f"{node.name}: got {type(value).__name__}, not device memory")
            return (DeviceBuffer(fn(*[v._data for v in inputs])),)
        return compute
    return factory


kernels.register("Relu", since=6)(_device_kernel(lambda x: np.maximum(x, 0)))
kernels.register("Add", since=7)(_device_kernel(np.add))
kernels.register("MatMul", since=1)(_device_kernel(np.matmul))


class Plugin:
    """The hook implementations (registered with ``ort.ep.register_plugin``)."""

    @ort.hookimpl
    def ort_register_providers(self, registry: Any) -> None:
        """Register the test device provider above CPU."""
        registry.register(ProviderSpec(name=TestDeviceProvider.name, factory=TestDeviceProvider,
                                       priority=50, device_type=DEVICE))

    @ort.hookimpl
    def ort_register_kernels(self, registry: Any) -> None:
        """Register its kernels."""
        registry.add(TestDeviceProvider.name, kernels)
