"""Devices and memory: where a value lives (``OrtDevice``, ``OrtMemoryInfo``) and the kinds of
allocators and memory ONNX Runtime's API names; plus the host allocator contract through which
kernels take large outputs from a session's arena (:meth:`ort.ep.NodeInfo.empty`).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

__all__ = ["OrtDevice", "OrtAllocatorType", "OrtMemType", "OrtMemoryInfo", "HostAllocator"]


@dataclass(frozen=True)
class OrtDevice:
    """A device: its type name (``'cpu'``, ``'cuda'``, or a third-party name) and index.

    Mirrors ``onnxruntime.OrtDevice``: :meth:`make`, :meth:`device_type`, :meth:`device_id`.
    """

    type_name: str = "cpu"
    index: int = 0
    vendor_id: int = 0

    #: ONNX Runtime's numeric device types (``C.OrtDevice.cpu()`` etc.).
    _TYPE_CODES: ClassVar[dict[str, int]] = {"cpu": 0, "cuda": 1, "gpu": 1, "fpga": 2, "npu": 3}

    @staticmethod
    def make(ort_device_name: str, device_id: int = 0, vendor_id: int = -1) -> OrtDevice:
        """Build a device from its name (``'cpu'``, ``'cuda'``, ...) and index."""
        return OrtDevice(str(ort_device_name).lower(), int(device_id), max(int(vendor_id), 0))

    def device_type(self) -> int:
        """Return ONNX Runtime's numeric device type (0 CPU, 1 GPU, 2 FPGA, 3 NPU, 4 other)."""
        return self._TYPE_CODES.get(self.type_name, 4)

    def device_id(self) -> int:
        """Return the device index."""
        return self.index

    def device_vendor_id(self) -> int:
        """Return the PCI vendor id (0 when unknown)."""
        return self.vendor_id

    def device_mem_type(self) -> int:
        """Return the memory type (0: default device memory)."""
        return 0

    @property
    def is_host(self) -> bool:
        """Whether the device's memory is the host's (numpy arrays)."""
        return self.type_name == "cpu"

    def __str__(self) -> str:
        return f"{self.type_name}:{self.index}"


class OrtAllocatorType(enum.IntEnum):
    """Kinds of allocator (``onnxruntime.OrtAllocatorType``)."""

    INVALID = -1
    ORT_DEVICE_ALLOCATOR = 0
    ORT_ARENA_ALLOCATOR = 1


class OrtMemType(enum.IntEnum):
    """Memory kinds of a device (``onnxruntime.OrtMemType``)."""

    CPU_INPUT = -2
    CPU_OUTPUT = -1
    CPU = -1
    DEFAULT = 0


@dataclass(frozen=True)
class OrtMemoryInfo:
    """Where an allocation lives (``onnxruntime.OrtMemoryInfo(name, alloc_type, id,
    mem_type)``): ``name`` is ``'Cpu'``, ``'Cuda'`` or a provider's device name."""

    name: str = "Cpu"
    alloc_type: OrtAllocatorType = OrtAllocatorType.ORT_ARENA_ALLOCATOR
    id: int = 0
    mem_type: OrtMemType = OrtMemType.DEFAULT

    @property
    def device(self) -> OrtDevice:
        """The device this memory belongs to."""
        return OrtDevice(self.name.lower(), int(self.id))


class HostAllocator(Protocol):
    """Memory a host provider's kernels may allocate large outputs from (the session's arena,
    ``SessionOptions.enable_cpu_mem_arena``)."""

    #: requests smaller than this are served by numpy directly
    min_bytes: int

    def empty(self, shape: Sequence[int], dtype: Any) -> Any:
        """An uninitialized C-ordered array of ``shape`` and ``dtype``."""
