"""The execution-provider contract: the base class every provider (CPU, CUDA, third party) extends.

A provider is created per session from its registered :class:`~ort.ep.ProviderSpec`
factory. At session creation core asks it which nodes it takes (:meth:`ExecutionProvider.
get_capability`), prepares kernels for those nodes with the provider's array namespace ``xp``,
and uses the provider's copy functions where a value crosses from one device to another.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, ClassVar

import numpy as np

from ..ir import Graph, Node
from .compile import CompileContext
from .device import HostAllocator, OrtDevice
from .kernels import KernelDef

__all__ = ["ExecutionProvider", "FusedSubgraph", "KernelLookup"]

#: ``lookup(node)`` returns the kernel a provider registered for a node, or None.
KernelLookup = Callable[[Node], KernelDef | None]


@dataclass
class FusedSubgraph:
    """A group of nodes a provider claims as one unit (``get_capability`` may return these
    beside plain node indices); the provider's ``compile`` turns it into one compute function.

    Attributes:
        node_indices: the member nodes.
        name: the fused node's name (default ``<provider>_fused_<n>``).
        op_type: a label for reports and profiles.
    """

    node_indices: list[int]
    name: str = ""
    op_type: str = "FusedSubgraph"


class ExecutionProvider:
    """Base class of execution providers.

    Subclasses set :attr:`name` (``'FooExecutionProvider'``) and, for devices other than the
    host, :attr:`device_type` and the copy methods. The default :meth:`get_capability` claims
    every node for which the provider registered a kernel, as ONNX Runtime's kernel-registry
    providers do; override it to refuse nodes (e.g. shapes a device runs badly).

    Values in device memory may be of any array type (cupy arrays for CUDA) but must expose
    ``shape`` and ``dtype``; they reach the host only through :meth:`to_host`.
    """

    #: The provider's name as users write it in ``providers=[...]``.
    name: ClassVar[str] = ""
    #: The device type the provider's memory lives on.
    device_type: ClassVar[str] = "cpu"
    #: Option names the provider accepts in ``provider_options``; None accepts any.
    known_options: ClassVar[frozenset[str] | None] = None
    #: Host providers: the session's memory arena (``SessionOptions.enable_cpu_mem_arena``),
    #: which :meth:`ort.ep.NodeInfo.empty` allocates from; None on devices or when off.
    host_arena: HostAllocator | None = None

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self.options: dict[str, str] = {str(k): str(v) for k, v in (options or {}).items()}
        if self.known_options is not None:
            unknown = sorted(set(self.options) - self.known_options)
            if unknown:
                raise ValueError(
                    f"{self.name} does not know the option(s) {unknown}; "
                    f"known options: {sorted(self.known_options)}"
                )
        self.device = OrtDevice(self.device_type, int(self.options.get("device_id", 0)))

    @property
    def xp(self) -> ModuleType:
        """The array namespace kernels of this provider compute with (numpy by default)."""
        return np

    def get_capability(self, graph: Graph, lookup: KernelLookup) -> list[int | FusedSubgraph]:
        """Return what of ``graph`` this provider will run: node indices, and/or
        :class:`FusedSubgraph` groups to run as one unit through :meth:`compile`.

        ``lookup(node)`` gives the kernel this provider registered for a node, or None. Nodes
        already taken by a provider earlier in the user's priority list are not offered, and a
        group any of whose nodes is taken is dropped.
        """
        return [node.index for node in graph.nodes if lookup(node) is not None]

    def compile(self, graph: Graph, fused: FusedSubgraph, inputs: list[str],
                outputs: list[str], context: CompileContext) -> Callable[..., Any]:
        """Turn a claimed :class:`FusedSubgraph` into one compute function of the values named
        ``inputs`` returning those named ``outputs``.

        The default runs the member nodes with this provider's own kernels as a nested plan
        made by the session's compiler (``context``): one step for the partitioner, profiler
        and copy logic. A provider with a graph compiler (a JIT, a vendor library) overrides
        it."""
        # every input, constants included, arrives already in this provider's memory (the
        # outer plan copies constants once at session creation), so nothing is copied twice
        body = context.compile_nodes(graph, fused.node_indices, inputs, outputs, provider=self,
                                     name=fused.name or "fused")

        def compute(*values: Any) -> tuple[Any, ...]:
            return tuple(body.run(values, to_host=False))

        return compute

    def to_device(self, array: np.ndarray) -> Any:
        """Copy a host array into this provider's device memory (identity on the host)."""
        return array

    def to_host(self, value: Any) -> np.ndarray:
        """Copy a value from this provider's device memory to a host numpy array."""
        return value

    def allocate(self, shape: Sequence[int], dtype: np.dtype) -> Any:
        """Allocate an uninitialized array on this provider's device."""
        return self.xp.empty(tuple(shape), dtype=dtype)

    def synchronize(self) -> None:
        """Wait until work queued on the device has finished (no-op on the host)."""

    def from_pointer(self, pointer: int, shape: Sequence[int], dtype: np.dtype) -> Any:
        """Wrap memory this provider's device owns at address ``pointer`` as an array of
        ``shape`` and ``dtype``, without copying or taking ownership (IOBinding's raw
        ``buffer_ptr``). The host implementation reads process memory through ctypes."""
        dtype = np.dtype(dtype)
        count = int(np.prod(shape, dtype=np.int64)) if len(shape) else 1
        if pointer == 0 and count:
            raise ValueError("buffer_ptr is a null pointer")
        if count == 0:
            return np.empty(tuple(shape), dtype=dtype)
        buffer = (ctypes.c_char * (count * dtype.itemsize)).from_address(int(pointer))
        return np.frombuffer(buffer, dtype=dtype, count=count).reshape(tuple(shape))

    def data_ptr(self, value: Any) -> int:
        """The address of the first element of a value in this provider's memory."""
        return int(value.__array_interface__["data"][0])

    def copy_into(self, target: Any, value: Any) -> None:
        """Copy ``value`` into ``target``, both in this provider's memory and of one shape
        (pre-allocated IOBinding outputs)."""
        self.xp.copyto(target, value)

    def provider_options(self) -> dict[str, str]:
        """Return the options in effect, as ``get_provider_options()`` reports them."""
        return dict(self.options)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} on {self.device}>"
