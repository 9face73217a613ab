"""``enable_cuda_graph=1``: the whole model captured once into a CUDA graph, then replayed.

How it works: when every node of a graph runs on CUDA, :func:`whole_graph_claim` claims the
graph as one unit and :func:`compile_graph_runner` has the session's compiler plan it as a
nested unit whose kernels run on the provider's stream. The resulting :class:`CudaGraphRunner` runs that plan normally the
first time it sees a set of input shapes (a warm-up: kernel caches fill, cupy compiles its
kernels, cuBLAS sets up), captures it with ``Stream.begin_capture``/``end_capture`` the second
time, and from then on copies the inputs into the captured input buffers, launches the graph
and returns copies of the captured outputs.

``provider`` below is always the :class:`~ort_provider_cuda.provider.CUDAExecutionProvider`
(which imports this module, so it is typed by its base class here): the runner uses its
``xp``, ``stream``, ``scope``, ``capturing_allocations``, ``share_constants``, ``declined`` and
``graph_runners``.

Constraints (the same as ONNX Runtime's, checked where possible):

* every node must run on CUDA (no CPU fallback, no shape computations kept on the host): else
  the graph is not claimed and the session runs normally, with a warning saying why;
* host inputs of kernels (Reshape's shape, Slice's starts, ...) must be constants: a
  device-to-host copy cannot be captured;
* kernels must not synchronize with the host (``.get()``, ``bool(array)``, boolean masks,
  data-dependent output shapes) nor copy host memory to the device while capturing: such a
  capture fails, the runner logs why and keeps running that shape without a graph;
* shapes are static per captured graph: each new set of input shapes is warmed up and captured
  separately (at most :data:`MAX_GRAPHS`; beyond that, runs are not captured);
* a captured graph replays the kernels with the values of the capture's host-side decisions:
  kernels whose host logic depends on input *values* (not shapes) would replay stale choices,
  which is why host reads of device data are refused above;
* runs of one session are serialized while a graph is captured or replayed;
* inputs and outputs cost one device-to-device copy each per run (the captured buffers belong
  to the graph, so callers' buffers are never written behind their backs).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from ort.ep import CompileContext, ExecutionProvider, FusedSubgraph, Graph, KernelLookup

__all__ = ["GRAPH_OP", "MAX_GRAPHS", "CudaGraphRunner", "whole_graph_claim",
           "compile_graph_runner"]

logger = logging.getLogger("ort.cuda")

#: The op_type of the fused unit that stands for a captured graph.
GRAPH_OP = "CUDAGraph"
#: How many input-shape signatures one session captures at most.
MAX_GRAPHS = 8


def whole_graph_claim(provider: ExecutionProvider, graph: Graph, claimed: Sequence[int],
                      lookup: KernelLookup) -> tuple[FusedSubgraph | None, str]:
    """The whole graph as one CUDA-graph unit, or None and the reason it cannot be one."""
    if not graph.nodes:
        return None, "the graph has no nodes"
    taken = set(claimed)
    left = [node for node in graph.nodes if node.index not in taken]
    if left:
        unclaimed = "no CUDA kernel, or kept on the host"
        names = ", ".join(f"{n.describe()} ({provider.declined.get(n.name, unclaimed)})"
                          for n in left[:5])
        return None, f"{len(left)} node(s) do not run on CUDA: {names}"
    for node in graph.nodes:
        kernel = lookup(node)
        for index in kernel.host_inputs:
            name = node.inputs[index] if index < len(node.inputs) else ""
            if name and name not in graph.initializers:
                return None, (f"{node.describe()} reads its host input '{name}' from a value "
                              "computed at run time; a device-to-host copy cannot be captured")
    for value in graph.inputs:
        if value.type.WhichOneof("value") != "tensor_type":
            return None, f"graph input '{value.name}' is not a tensor"
    provider.share_constants(list(graph.initializers.values()))
    return FusedSubgraph(list(range(len(graph.nodes))), name=f"{GRAPH_OP}_{graph.name}",
                         op_type=GRAPH_OP), ""


def compile_graph_runner(provider: ExecutionProvider, graph: Graph, fused: FusedSubgraph,
                         inputs: list[str], outputs: list[str],
                         context: CompileContext) -> CudaGraphRunner:
    """Compile the unit's nodes on ``provider`` with the session's compiler (weights shared
    with the session's plan, not uploaded twice) and wrap the result in a
    :class:`CudaGraphRunner`."""
    constants = [name for name in inputs if name in graph.initializers]
    unit = context.compile_nodes(graph, fused.node_indices, inputs, outputs, provider=provider,
                                 constants=constants, name=fused.name)
    positions = [inputs.index(name) for name in unit.input_names]

    def run(*values: Any) -> tuple[Any, ...]:
        return tuple(unit.run(values, to_host=False))

    return CudaGraphRunner(provider, run, positions, fused.name)


class _Captured:
    """One captured graph: its input buffers, outputs and private memory pool."""

    def __init__(self, graph: Any, inputs: list[Any], outputs: tuple[Any, ...],
                 pool: Any) -> None:
        self.graph = graph
        self.inputs = inputs
        self.outputs = outputs
        self.pool = pool


class CudaGraphRunner:
    """The compute function of a CUDA-graph unit (see the module docstring).

    Attributes:
        captures: graphs captured so far; replays: graph launches.
        failures: input-shape signature -> why its capture failed (it then runs uncaptured).
    """

    def __init__(self, provider: ExecutionProvider, eager: Callable[..., tuple],
                 positions: list[int], name: str) -> None:
        self._provider = provider
        self._eager = eager
        self._positions = positions
        self._name = name
        self._lock = threading.Lock()
        self._states: dict[tuple, Any] = {}  # signature -> "warm" | _Captured | failure text
        self._warned_full = False
        self.captures = 0
        self.replays = 0
        self.failures: dict[tuple, str] = {}
        provider.graph_runners.append(self)

    def __call__(self, *values: Any) -> tuple[Any, ...]:
        fed = [values[i] for i in self._positions]
        key = tuple((tuple(v.shape), v.dtype.str) for v in fed)
        with self._lock:
            state = self._states.get(key)
            if state is None:
                if len(self._states) >= MAX_GRAPHS:
                    if not self._warned_full:
                        self._warned_full = True
                        logger.warning("%s: %d input shapes captured already; shape %s runs "
                                       "without a CUDA graph", self._name, MAX_GRAPHS, key)
                    return self._eager(*fed)
                outputs = self._eager(*fed)  # warm-up run
                self._states[key] = "warm"
                return outputs
            if state == "warm":
                state = self._states[key] = self._capture(key, fed)
            if isinstance(state, str):
                return self._eager(*fed)
            return self._replay(state, fed)

    def _capture(self, key: tuple, fed: list[Any]) -> _Captured | str:
        provider = self._provider
        cupy = provider.xp
        pool = cupy.cuda.MemoryPool()  # graph memory is never handed to anyone else
        stream = provider.stream
        with provider.capturing_allocations(pool.malloc), provider.scope():
            buffers = [cupy.empty_like(v) for v in fed]
            for buffer, value in zip(buffers, fed):
                cupy.copyto(buffer, value)
            stream.begin_capture()
            try:
                outputs = self._eager(*buffers)
            except Exception as exc:  # a kernel synchronized, copied host memory, ...
                _end_capture_quietly(stream)
                reason = f"{type(exc).__name__}: {exc}"
                self.failures[key] = reason
                logger.warning("%s: CUDA graph capture failed for input shapes %s; running "
                               "without a graph: %s", self._name, key, reason)
                return reason
            graph = stream.end_capture()
        self.captures += 1
        logger.info("%s: captured a CUDA graph for input shapes %s", self._name, key)
        return _Captured(graph, buffers, outputs, pool)

    def _replay(self, captured: _Captured, fed: list[Any]) -> tuple[Any, ...]:
        provider = self._provider
        cupy = provider.xp
        with provider.scope():
            for buffer, value in zip(captured.inputs, fed):
                cupy.copyto(buffer, value)
            captured.graph.launch(stream=provider.stream)
            self.replays += 1
            # the next replay overwrites the captured outputs: hand out copies
            return tuple(None if out is None else out.copy() for out in captured.outputs)


def _end_capture_quietly(stream: Any) -> None:
    """End a capture that failed (CUDA reports the invalidated capture here)."""
    try:
        stream.end_capture()
    except Exception as exc:  # noqa: BLE001 - the original failure is what matters
        logger.debug("ending a failed capture: %s", exc)
