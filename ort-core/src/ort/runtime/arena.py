"""A host memory arena: large kernel outputs reuse buffers nobody holds any more.

A fresh numpy array of several megabytes comes from ``mmap`` (always above 32 MB) or from
heap pages glibc has given back, so every run page-faults it in again (MobileNetV2 at batch 8:
3456 faults per run). ONNX Runtime avoids it with its CPU arena
(``SessionOptions.enable_cpu_mem_arena``, on by default); this is ort's version of it. Only
outputs of :data:`MIN_BYTES` and more are taken: glibc serves smaller ones from cache-warm
heap memory, and pooling them measured 1-3% slower (MobileNetV2 and ResNet-18 at batch 1),
while pooling the large ones gave 5-10% at batch 8 (MobileNetV2, the GPT-style decoder).

Kernels ask for outputs with :meth:`ort.ep.NodeInfo.empty`. The arena hands out views of
buffers it keeps, and knows a buffer is free again when nothing but the arena refers to it:
every view numpy makes of a buffer (a reshape, a slice, an output the caller still holds, an
``OrtValue``) keeps a reference to it. So values freed by the executor are reused later in the
same run and in the next runs, while anything the caller kept stays untouched.

Unlike ONNX Runtime's arena, which only grows, this one is bounded (``limit_bytes``; buffers
no view uses are dropped to make room) and trims buffers that went unused for two runs, so a
session that once saw a large input does not hold that memory forever.
"""

from __future__ import annotations

import math
import sys
import threading
from collections.abc import Sequence

import numpy as np

__all__ = ["HostArena", "arena_supported"]

#: Outputs smaller than this come from numpy's allocator (glibc reuses warm heap memory).
MIN_BYTES = 1 << 22
#: Default bound on the bytes an arena keeps.
DEFAULT_LIMIT = 4 << 30


def _size_class(nbytes: int) -> int:
    """``nbytes`` rounded up to one of 8 steps per power of two (at most 12.5% slack)."""
    step = 1 << max(nbytes.bit_length() - 4, 12)
    return -(-nbytes // step) * step


def _unreferenced_count() -> int:
    """What ``sys.getrefcount`` reports, in :meth:`HostArena._take`'s loop, for a buffer only
    the arena holds (measured, not assumed, so interpreter changes cannot make it lie)."""
    buffers = [np.empty(16, dtype=np.uint8)]
    for buffer in reversed(buffers):
        return sys.getrefcount(buffer)
    raise AssertionError("unreachable")


def arena_supported() -> bool:
    """Whether reference counts tell reliably that a buffer is free: CPython with the GIL
    (free-threaded builds defer some reference counting)."""
    gil = getattr(sys, "_is_gil_enabled", None)
    return sys.implementation.name == "cpython" and (gil is None or gil())


def _remove(pool: list[np.ndarray], buffer: np.ndarray) -> None:
    """Remove ``buffer`` from ``pool`` by identity (``list.remove`` would compare arrays
    element by element)."""
    for i, held in enumerate(pool):
        if held is buffer:
            del pool[i]
            return


class HostArena:
    """Reusable host buffers for kernel outputs of at least :data:`MIN_BYTES`, thread-safe
    (an :class:`ort.ep.HostAllocator`)."""

    #: requests below this are served by numpy directly
    min_bytes = MIN_BYTES

    def __init__(self, limit_bytes: int = DEFAULT_LIMIT) -> None:
        self.limit_bytes = int(limit_bytes)
        self._classes: dict[int, list[np.ndarray]] = {}
        self._last_use: dict[int, int] = {}  # id(buffer) -> run count at its last use
        self._bytes = 0
        self._runs = 0
        self._lock = threading.Lock()
        self._free_count = _unreferenced_count()

    @property
    def bytes_held(self) -> int:
        """Bytes of the buffers the arena keeps."""
        return self._bytes

    def empty(self, shape: Sequence[int], dtype: np.dtype | type) -> np.ndarray:
        """An uninitialized C-ordered array of ``shape`` and ``dtype``, from a free buffer of
        the arena when it is large enough to be worth it."""
        dtype = np.dtype(dtype)
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes < MIN_BYTES or dtype.hasobject:
            return np.empty(shape, dtype=dtype)
        buffer = self._take(_size_class(nbytes))
        if buffer is None:
            return np.empty(shape, dtype=dtype)
        return buffer[:nbytes].view(dtype).reshape(shape)

    def _take(self, size: int) -> np.ndarray | None:
        with self._lock:
            pool = self._classes.setdefault(size, [])
            # the buffer taken last that is free again is the likeliest to be in cache
            for buffer in reversed(pool):
                if sys.getrefcount(buffer) <= self._free_count:
                    self._last_use[id(buffer)] = self._runs
                    if buffer is not pool[-1]:
                        _remove(pool, buffer)
                        pool.append(buffer)
                    return buffer
            if self._bytes + size > self.limit_bytes and not self._evict(size):
                return None
            buffer = np.empty(size, dtype=np.uint8)
            pool.append(buffer)
            self._bytes += size
            self._last_use[id(buffer)] = self._runs
            return buffer

    def _evict(self, needed: int) -> bool:
        """Drop free buffers, least recently used first, until ``needed`` bytes fit."""
        free = [(self._last_use[id(b)], size, b) for size, pool in self._classes.items()
                for b in pool if sys.getrefcount(b) <= self._free_count]
        free.sort(key=lambda entry: entry[0])
        for _, size, buffer in free:
            if self._bytes + needed <= self.limit_bytes:
                break
            self._drop(size, buffer)
        return self._bytes + needed <= self.limit_bytes

    def _drop(self, size: int, buffer: np.ndarray) -> None:
        _remove(self._classes[size], buffer)
        del self._last_use[id(buffer)]
        self._bytes -= size

    def end_run(self) -> None:
        """Count a finished run and drop free buffers unused for the last two runs (runs are
        counted only while the arena holds buffers: with none, there is nothing to age)."""
        if not self._last_use:  # small models never reach the arena: no lock on their runs
            return
        with self._lock:
            self._runs += 1
            stale = self._runs - 2
            if not any(use < stale for use in self._last_use.values()):
                return
            for size, pool in list(self._classes.items()):
                for buffer in list(pool):
                    if self._last_use[id(buffer)] < stale and \
                            sys.getrefcount(buffer) <= self._free_count + 1:
                        self._drop(size, buffer)
