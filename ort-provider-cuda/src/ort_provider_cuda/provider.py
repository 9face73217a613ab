"""The CUDA execution provider: device memory as cupy arrays, one stream per session."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any, ClassVar

import numpy as np

from ort.provider import ExecutionProvider

__all__ = ["CUDAExecutionProvider"]


class CUDAExecutionProvider(ExecutionProvider):
    """Runs nodes with cupy on one NVIDIA GPU.

    Options: ``device_id`` (int, default 0) and ``gpu_mem_limit`` (bytes; caps cupy's memory
    pool for this process).
    """

    name: ClassVar[str] = "CUDAExecutionProvider"
    device_type: ClassVar[str] = "cuda"
    known_options: ClassVar[frozenset[str] | None] = frozenset({"device_id", "gpu_mem_limit"})

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        import cupy  # imported here, never at ort import time

        self._cupy = cupy
        self._cuda_device = cupy.cuda.Device(self.device.index)
        with self._cuda_device:
            self._stream = cupy.cuda.Stream(non_blocking=True)
            limit = self.options.get("gpu_mem_limit")
            if limit is not None:
                cupy.get_default_memory_pool().set_limit(size=int(limit))

    @property
    def xp(self) -> ModuleType:
        """cupy: the kernels shared with the CPU provider compute with it."""
        return self._cupy

    def to_device(self, array: np.ndarray) -> Any:
        """Copy a host array to this GPU."""
        with self._cuda_device:
            return self._cupy.asarray(array)

    def to_host(self, value: Any) -> np.ndarray:
        """Copy a device array to a host numpy array."""
        with self._cuda_device:
            return self._cupy.asnumpy(value)

    def allocate(self, shape: Sequence[int], dtype: np.dtype) -> Any:
        """Allocate an uninitialized array on this GPU."""
        with self._cuda_device:
            return self._cupy.empty(tuple(shape), dtype=dtype)

    def synchronize(self) -> None:
        """Wait for the GPU work queued by this provider."""
        with self._cuda_device:
            self._cupy.cuda.get_current_stream().synchronize()

    def from_pointer(self, pointer: int, shape: Sequence[int], dtype: np.dtype) -> Any:
        """Wrap foreign device memory (e.g. a torch CUDA tensor's ``data_ptr()``) without
        copying; the caller keeps it alive."""
        cupy = self._cupy
        dtype = np.dtype(dtype)
        count = int(np.prod(shape, dtype=np.int64)) if len(shape) else 1
        memory = cupy.cuda.UnownedMemory(int(pointer), count * dtype.itemsize, owner=None,
                                         device_id=self.device.index)
        return cupy.ndarray(tuple(shape), dtype=dtype, memptr=cupy.cuda.MemoryPointer(memory, 0))

    def data_ptr(self, value: Any) -> int:
        """The device address of a cupy array."""
        return int(value.data.ptr)

    def copy_into(self, target: Any, value: Any) -> None:
        """Copy on the device into a pre-allocated array."""
        with self._cuda_device:
            self._cupy.copyto(target, value)
