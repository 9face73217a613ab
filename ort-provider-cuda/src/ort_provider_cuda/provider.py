"""The CUDA execution provider: device memory as cupy arrays, one stream per provider instance.

Every kernel of this provider runs inside :meth:`CUDAExecutionProvider.scope`: the provider's
device is current, its stream is cupy's current stream (so every cupy call of the kernel is
queued on it) and allocations come from its memory pool. Copies run on the legacy default
stream (``do_copy_in_default_stream=1``, with a blocking kernel stream ordered against it) or on
the provider's own stream.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import ModuleType
from typing import Any, ClassVar

import numpy as np

from ort.ep import CompileContext, ExecutionProvider, FusedSubgraph, Graph, KernelLookup

from .dtypes import DEVICE_DTYPES
from .options import OPTION_NAMES, CudaOptions, parse_options

__all__ = ["CUDAExecutionProvider", "memory_pool"]

logger = logging.getLogger("ort.cuda")

_POOLS: dict[tuple[int, int, int | None, str], Any] = {}
_POOLS_LOCK = threading.Lock()


def memory_pool(cupy: ModuleType, device_id: int, limit: int | None, strategy: str) -> Any:
    """The process-wide ``cupy.cuda.MemoryPool`` of one device and memory setting (created on
    first use; sessions with equal settings share it and its limit)."""
    key = (id(cupy), device_id, limit, strategy)
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            with cupy.cuda.Device(device_id):
                pool = cupy.cuda.MemoryPool()
                if limit is not None:
                    pool.set_limit(size=limit)
            _POOLS[key] = pool
        return pool


def _allocator(pool: Any, strategy: str) -> Callable[[int], Any]:
    """The allocation function for ``cupy.cuda.using_allocator``."""
    if strategy == "kSameAsRequested":
        return pool.malloc

    def next_power_of_two(size: int) -> Any:
        return pool.malloc(size if size <= 512 else 1 << (int(size) - 1).bit_length())

    return next_power_of_two


class CUDAExecutionProvider(ExecutionProvider):
    """Runs nodes with cupy on one NVIDIA GPU.

    Options (all strings, as in ONNX Runtime; see :class:`~ort_provider_cuda.options.
    CudaOptions`): ``device_id``, ``gpu_mem_limit``, ``arena_extend_strategy``,
    ``cudnn_conv_algo_search``, ``do_copy_in_default_stream``, ``enable_cuda_graph``.
    """

    name: ClassVar[str] = "CUDAExecutionProvider"
    device_type: ClassVar[str] = "cuda"
    known_options: ClassVar[frozenset[str] | None] = OPTION_NAMES

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self.settings: CudaOptions = parse_options(options)
        super().__init__(options)
        import cupy  # imported here, never at ort import time

        self._cupy = cupy
        count = int(cupy.cuda.runtime.getDeviceCount())
        device_id = self.settings.device_id
        if device_id >= count:
            raise ValueError(f"device_id {device_id} is out of range: {count} CUDA device(s) "
                             f"are visible (device_id 0..{count - 1})")
        default_copies = self.settings.copies_on_default_stream
        with cupy.cuda.Device(device_id):
            # a blocking stream is ordered against the legacy default stream the copies use
            self.stream = cupy.cuda.Stream(non_blocking=not default_copies)
        self._copy_stream = cupy.cuda.Stream.null if default_copies else self.stream
        self.pool = memory_pool(cupy, device_id, self.settings.gpu_mem_limit,
                                self.settings.arena_extend_strategy)
        self._malloc = _allocator(self.pool, self.settings.arena_extend_strategy)
        self._capture = threading.local()  # the private allocator of a CUDA graph capture
        self._constants: dict[int, tuple[weakref.ref, Any]] = {}  # id(host) -> (ref, device)
        self.declined: dict[str, str] = {}  # node name -> why get_capability left it
        self.graph_disabled_reason: str | None = None
        self.graph_runners: list[Any] = []  # CudaGraphRunner of each CUDA-graph unit

    # -- running kernels ---------------------------------------------------------------------
    @property
    def xp(self) -> ModuleType:
        """cupy: the kernels compute with it."""
        return self._cupy

    @contextlib.contextmanager
    def scope(self, stream: Any = None) -> Iterator[None]:
        """Make this provider's device, stream (or ``stream``) and allocator current."""
        cupy = self._cupy
        malloc = getattr(self._capture, "malloc", None) or self._malloc
        with cupy.cuda.Device(self.device.index), self.stream if stream is None else stream, \
                cupy.cuda.using_allocator(malloc):
            yield

    @contextlib.contextmanager
    def capturing_allocations(self, malloc: Callable[[int], Any]) -> Iterator[None]:
        """Route this thread's allocations by kernels of this provider to ``malloc`` (the
        private pool of a CUDA graph capture)."""
        previous = getattr(self._capture, "malloc", None)
        self._capture.malloc = malloc
        try:
            yield
        finally:
            self._capture.malloc = previous

    # -- partitioning ------------------------------------------------------------------------
    def get_capability(self, graph: Graph, lookup: KernelLookup) -> list[Any]:
        """Claim the nodes with a kernel whose values cupy can hold; with
        ``enable_cuda_graph=1`` claim the whole graph as one CUDA-graph unit when possible."""
        from .kernels import decline_reason

        claimed: list[int] = []
        for node in graph.nodes:
            kernel = lookup(node)
            if kernel is None:
                continue
            reason = decline_reason(graph, node)
            if reason is not None:
                self.declined[node.name] = reason
                logger.debug("%s declines %s: %s", self.name, node.describe(), reason)
                continue
            claimed.append(node.index)
        if self.settings.enable_cuda_graph and graph.inputs:  # not constant-folding graphs
            from .graph import whole_graph_claim

            whole, why = whole_graph_claim(self, graph, claimed, lookup)
            if whole is not None:
                return [whole]
            self.graph_disabled_reason = why
            logger.warning("%s: CUDA graph disabled for graph '%s': %s", self.name,
                           graph.name, why)
        return claimed

    def compile(self, graph: Graph, fused: FusedSubgraph, inputs: list[str],
                outputs: list[str], context: CompileContext) -> Callable[..., Any]:
        """The CUDA-graph unit becomes a :class:`~ort_provider_cuda.graph.CudaGraphRunner`;
        other groups run with the default nested plan."""
        from .graph import GRAPH_OP, compile_graph_runner

        if fused.op_type == GRAPH_OP:
            return compile_graph_runner(self, graph, fused, inputs, outputs, context)
        return super().compile(graph, fused, inputs, outputs, context)

    def share_constants(self, arrays: Sequence[np.ndarray]) -> None:
        """Upload each of ``arrays`` at most once: later :meth:`to_device` calls with the same
        (read-only) array object return the first copy. Used for the weights a CUDA graph unit
        and the session's plan both upload."""
        for array in arrays:
            if isinstance(array, np.ndarray):
                self._constants.setdefault(id(array), (weakref.ref(array), None))

    # -- memory and copies -------------------------------------------------------------------
    def to_device(self, array: np.ndarray) -> Any:
        """Copy a host array to this GPU (synchronously: the caller may reuse ``array``)."""
        if array is None or isinstance(array, self._cupy.ndarray):
            return array
        shared = self._constants.get(id(array))
        if shared is not None and shared[0]() is array and shared[1] is not None:
            return shared[1]
        with self.scope(self._copy_stream):
            value = self._cupy.asarray(array, blocking=True)
        if shared is not None and shared[0]() is array:
            self._constants[id(array)] = (shared[0], value)
        return value

    def to_host(self, value: Any) -> np.ndarray:
        """Copy a device array to a new host array (waits for the work producing it)."""
        if value is None or isinstance(value, np.ndarray):
            return value
        self._wait_for_other_streams()
        with self._cupy.cuda.Device(self.device.index):
            return self._cupy.asnumpy(value, stream=self._copy_stream)

    def allocate(self, shape: Sequence[int], dtype: np.dtype) -> Any:
        """Allocate an uninitialized array on this GPU."""
        with self.scope():
            return self._cupy.empty(tuple(int(d) for d in shape), dtype=np.dtype(dtype))

    def synchronize(self) -> None:
        """Wait for all work queued on this provider's device (any stream: values bound to
        an IOBinding may come from another session's stream)."""
        self._cupy.cuda.Device(self.device.index).synchronize()

    def from_pointer(self, pointer: int, shape: Sequence[int], dtype: np.dtype) -> Any:
        """Wrap foreign device memory (e.g. a torch CUDA tensor's ``data_ptr()``) without
        copying; the caller keeps it alive."""
        cupy = self._cupy
        dtype = np.dtype(dtype)
        if dtype not in DEVICE_DTYPES:
            raise ValueError(f"{self.name} cannot hold {dtype} values on the device")
        count = int(np.prod(shape, dtype=np.int64)) if len(shape) else 1
        if pointer == 0 and count:
            raise ValueError("buffer_ptr is a null pointer")
        with cupy.cuda.Device(self.device.index):
            memory = cupy.cuda.UnownedMemory(int(pointer), count * dtype.itemsize, owner=None,
                                             device_id=self.device.index)
            return cupy.ndarray(tuple(shape), dtype=dtype,
                                memptr=cupy.cuda.MemoryPointer(memory, 0))

    def data_ptr(self, value: Any) -> int:
        """The device address of a cupy array."""
        return int(value.data.ptr)

    def copy_into(self, target: Any, value: Any) -> None:
        """Copy on the device into a pre-allocated array (an IOBinding output)."""
        self._wait_for_other_streams()
        with self.scope(self._copy_stream):
            self._cupy.copyto(target, value)

    def _wait_for_other_streams(self) -> None:
        """Copies on the legacy default stream wait for every blocking stream by themselves;
        on a non-blocking stream, wait for the device, since the value may come from another
        provider instance's stream (an OrtValue made by IOBinding)."""
        if self._copy_stream is not self._cupy.cuda.Stream.null:
            self.synchronize()

    def provider_options(self) -> dict[str, str]:
        """Every option with the value in effect (ONNX Runtime reports them all)."""
        return self.settings.reported()
