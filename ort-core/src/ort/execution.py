"""The execution plan: kernels bound once, a flat run loop over value slots.

Every value of the graph gets a slot index. Slot 0 always holds None (omitted optional inputs
read it); slot 1 swallows omitted optional outputs. A step is ``(compute, input_slots,
output_slots, slots_to_free)``; running the plan is one loop over steps, and a value is dropped
right after its last use. Where a value crosses devices, a copy step is inserted once per value
and device (constants are copied once, at plan time).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import onnx

from .errors import Fail, InvalidGraph, OrtError
from .errors import NotImplemented as OrtNotImplemented
from .graph import Graph, attribute_value
from .kernels import NodeInfo
from .partition import Assignment, Partition, op_schema, schema_version
from .provider import ExecutionProvider

__all__ = ["ExecutionPlan", "Terminated", "node_attributes", "run_terminate_check",
           "check_terminate"]

_NONE_SLOT = 0
_DISCARD_SLOT = 1


def node_attributes(graph: Graph, assignment: Assignment) -> dict[str, Any]:
    """The node's attributes as Python values, with the op schema's defaults filled in."""
    node = assignment.node
    attrs: dict[str, Any] = {}
    schema = op_schema(graph, node)
    if schema is not None:
        for name, spec in schema.attributes.items():
            default = spec.default_value
            if default is not None and default.type != onnx.AttributeProto.UNDEFINED:
                attrs[name] = attribute_value(default)
    for attr in node.attributes:
        if attr.ref_attr_name:
            raise InvalidGraph(
                f"{node.describe()} uses attribute reference '{attr.ref_attr_name}' outside a function"
            )
        attrs[attr.name] = attribute_value(attr)
    return attrs


_RUN_STATE = threading.local()


class run_terminate_check:  # noqa: N801 - used as a context manager, like a function
    """While a run is in progress on this thread, let nested plans (Loop/Scan bodies, function
    bodies) see its ``RunOptions.terminate`` check."""

    def __init__(self, terminate: Callable[[], bool] | None) -> None:
        self.terminate = terminate

    def __enter__(self) -> None:
        self.previous = getattr(_RUN_STATE, "terminate", None)
        _RUN_STATE.terminate = self.terminate

    def __exit__(self, *exc: Any) -> None:
        _RUN_STATE.terminate = self.previous


def check_terminate() -> None:
    """Raise :class:`Terminated` if the run in progress on this thread was asked to stop."""
    terminate = getattr(_RUN_STATE, "terminate", None)
    if terminate is not None and terminate():
        raise Terminated()


class Terminated(Fail):
    """A run stopped because ``RunOptions.terminate`` was set (ONNX Runtime's message)."""

    def __init__(self) -> None:
        super().__init__("Exiting due to terminate flag being set to true.")


def _index_of(steps: Sequence[Any], step: Any) -> int:
    """The position of ``step`` in ``steps`` (0 when unknown) for error messages."""
    for position, candidate in enumerate(steps):
        if candidate is step:
            return position
    return 0


class _Step:
    __slots__ = ("compute", "inputs", "outputs", "frees", "label", "provider", "node_index",
                 "parameter_bytes")

    def __init__(self, compute: Callable[..., Sequence[Any]], inputs: list[int],
                 outputs: list[int], label: tuple[str, str], provider: str = "",
                 node_index: int = -1) -> None:
        self.compute = compute
        self.inputs = inputs
        self.outputs = outputs
        self.frees: list[int] = []
        self.label = label  # (op_type, node name)
        self.provider = provider
        self.node_index = node_index
        self.parameter_bytes = 0  # bytes of constant inputs (profiling's parameter_size)


class ExecutionPlan:
    """A graph compiled for running: slots, bound kernels, copies and lifetimes."""

    def __init__(self, graph: Graph, part: Partition,
                 input_locations: Mapping[str, ExecutionProvider] | None = None) -> None:
        """``input_locations`` names inputs fed in a provider's device memory (IOBinding);
        the others are fed in host memory."""
        self.graph = graph
        self.partition = part
        plan = weakref.ref(self)  # kernels keep their NodeInfo: no reference cycle to the plan
        self._subgraph_compiler = lambda proto: plan()._compile_subgraph(proto)
        self.slots: dict[str, int] = {"": _NONE_SLOT}
        self._slot_count = 2
        self._location: dict[int, ExecutionProvider | None] = {}  # None: host memory
        self._template: list[Any] = [None, None]
        self._copies: dict[tuple[int, str], int] = {}
        self.steps: list[_Step] = []

        overridable = {vi.name for vi in graph.overridable}
        self._constants = {n for n in graph.initializers if n not in overridable}
        placed = dict(input_locations or {})
        for vi in graph.inputs:
            self._location[self._slot(vi.name)] = placed.get(vi.name)
        for name, value in graph.initializers.items():
            slot = self._slot(name)
            self._template[slot] = value
            self._location[slot] = placed.get(name)
        for name in graph.outer_scope:
            self._location[self._slot(name)] = None

        for assignment in part.assignments:
            self._add_node(assignment)

        self.output_slots: dict[str, int] = {}
        self.output_location: dict[str, ExecutionProvider | None] = {}
        for vi in graph.outputs:
            if vi.name not in self.slots:
                raise InvalidGraph(
                    f"This is an invalid model. Graph output '{vi.name}' is not produced by any node, "
                    "input or initializer"
                )
            slot = self.slots[vi.name]
            self.output_slots[vi.name] = slot
            self.output_location[vi.name] = self._location.get(slot)
        self.input_slots = {vi.name: self.slots[vi.name] for vi in graph.inputs}
        self.input_slots.update({vi.name: self.slots[vi.name] for vi in graph.overridable})
        self._compute_lifetimes()

    # -- building -----------------------------------------------------------------------------
    def _slot(self, name: str) -> int:
        slot = self.slots.get(name)
        if slot is None:
            slot = self._slot_count
            self._slot_count += 1
            self.slots[name] = slot
            self._template.append(None)
        return slot

    def _read(self, name: str, provider: ExecutionProvider, host: bool) -> int:
        """Slot holding ``name`` where ``provider`` (or the host) can read it; adds a copy."""
        slot = self.slots[name]
        source = self._location.get(slot)  # None: host memory
        want_host = host or provider.device.is_host
        if want_host and source is None:
            return slot
        if not want_host and source is not None and source.device == provider.device:
            return slot
        target_key = "host" if want_host else str(provider.device)
        key = (slot, target_key)
        if key in self._copies:
            return self._copies[key]
        copy_slot = self._slot(f"{name}@{target_key}")
        self._location[copy_slot] = None if want_host else provider
        self._copies[key] = copy_slot
        to_host = source.to_host if source is not None else None
        to_device = None if want_host else provider.to_device

        def copy(value: Any, _to_host=to_host, _to_device=to_device) -> tuple[Any]:
            if _to_host is not None:
                value = _to_host(value)
            if _to_device is not None:
                value = _to_device(value)
            return (value,)

        if name in self._constants and self._template[slot] is not None:
            self._template[copy_slot] = copy(self._template[slot])[0]
        else:
            label = ("MemcpyToHost" if want_host else "MemcpyFromHost", f"copy_{name}")
            provider_name = source.name if want_host and source is not None else provider.name
            self.steps.append(_Step(copy, [slot], [copy_slot], label, provider_name))
        return copy_slot

    def _add_node(self, assignment: Assignment) -> None:
        graph, node, provider, kernel = self.graph, assignment.node, assignment.provider, assignment.kernel
        host_inputs = set(kernel.host_inputs)
        shape_only = set(kernel.shape_only_inputs)
        input_slots = []
        for i, name in enumerate(node.inputs):
            if not name:
                input_slots.append(_NONE_SLOT)
                continue
            if name not in self.slots:
                raise InvalidGraph(f"{node.describe()} reads '{name}', which is never produced")
            if i in shape_only:  # only .shape/.dtype are read: no copy from any device
                input_slots.append(self.slots[name])
                continue
            input_slots.append(self._read(name, provider, i in host_inputs))
        implicit = [name for name in node.implicit_inputs if name in self.slots]
        input_slots.extend(self._read(name, provider, True) for name in implicit)
        info = NodeInfo(
            name=node.name,
            op_type=node.op_type,
            domain=node.domain,
            opset=graph.opset_of(node.domain) or 1,
            since_version=schema_version(graph, node),
            attrs=node_attributes(graph, assignment),
            input_names=list(node.inputs),
            output_names=list(node.outputs),
            input_dtypes=[graph.dtype_of(n) if n else None for n in node.inputs],
            output_dtypes=[graph.dtype_of(n) if n else None for n in node.outputs],
            input_shapes=[graph.shape_of(n) if n else None for n in node.inputs],
            output_shapes=[graph.shape_of(n) if n else None for n in node.outputs],
            const_inputs=[
                graph.initializers.get(n) if n in self._constants else None for n in node.inputs
            ],
            xp=provider.xp,
            provider=provider,
            graph=graph,
            implicit_input_names=implicit,
            subgraph_compiler=self._subgraph_compiler,
        )
        try:
            compute = kernel.factory(info)
        except OrtError:
            raise
        except NotImplementedError as exc:
            raise OrtNotImplemented(f"{info.describe()} ({provider.name}): {exc}") from exc
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            text = str(exc)  # kernels name the node themselves; name it once
            where = "" if text.startswith(info.describe()) else f"{info.describe()}: "
            raise InvalidGraph(f"This is an invalid model. {where}{text}") from exc
        except Exception as exc:
            raise Fail(f"Preparing {info.describe()} on {provider.name} failed: {exc}") from exc
        output_slots = []
        for name in node.outputs:
            if not name:
                output_slots.append(_DISCARD_SLOT)
                continue
            slot = self._slot(name)
            self._location[slot] = None if provider.device.is_host else provider
            output_slots.append(slot)
        step = _Step(compute, input_slots, output_slots, (node.op_type, node.name),
                     provider.name, node.index)
        step.parameter_bytes = sum(int(getattr(v, "nbytes", 0)) for v in info.const_inputs
                                   if v is not None)
        self.steps.append(step)

    def _compile_subgraph(self, proto: onnx.GraphProto) -> Any:
        from .subgraph import compile_subgraph

        part = self.partition
        return compile_subgraph(proto, self.graph, part.providers, part.registry)

    def _compute_lifetimes(self) -> None:
        keep = set(self.output_slots.values()) | {_NONE_SLOT, _DISCARD_SLOT}
        last_use: dict[int, int] = {}
        for position, step in enumerate(self.steps):
            for slot in step.inputs:
                last_use[slot] = position
            for slot in step.outputs:
                last_use.setdefault(slot, position)
        for slot, position in last_use.items():
            if slot not in keep:
                self.steps[position].frees.append(slot)
        # unused optional outputs land in the discard slot: clear it after every step using it
        for step in self.steps:
            if _DISCARD_SLOT in step.outputs:
                step.frees.append(_DISCARD_SLOT)

    # -- running ------------------------------------------------------------------------------
    def new_values(self) -> list[Any]:
        """A fresh value list with constants in place, ready to receive feeds."""
        return list(self._template)

    def execute(self, values: list[Any], terminate: Callable[[], bool] | None = None,
                steps: Sequence[_Step] | None = None) -> None:
        """Run every step (or only ``steps``, a subset in plan order) over ``values`` (a list
        from :meth:`new_values` with feeds set)."""
        steps = self.steps if steps is None else steps
        step = None
        try:
            for step in steps:
                results = step.compute(*[values[i] for i in step.inputs])
                outputs = step.outputs
                if len(outputs) == 1:
                    values[outputs[0]] = results[0]
                else:
                    for slot, result in zip(outputs, results):
                        values[slot] = result
                for slot in step.frees:
                    values[slot] = None
                if terminate is not None and terminate():
                    raise Terminated()
        except Terminated:
            raise
        except Exception as exc:
            raise self._run_error(_index_of(steps, step), exc, steps) from exc

    def execute_profiled(self, values: list[Any], profiler: Any,
                         terminate: Callable[[], bool] | None = None,
                         steps: Sequence[_Step] | None = None) -> None:
        """Like :meth:`execute`, recording one profiler event per step."""
        steps = self.steps if steps is None else steps
        position = 0
        try:
            for position, step in enumerate(steps):
                inputs = [values[i] for i in step.inputs]
                start = profiler.now_us()
                results = step.compute(*inputs)
                end = profiler.now_us()
                op_type, name = step.label
                profiler.node_event(name, op_type, step.provider, step.node_index, inputs,
                                    list(results), step.parameter_bytes, start, end)
                for slot, result in zip(step.outputs, results):
                    values[slot] = result
                for slot in step.frees:
                    values[slot] = None
                if terminate is not None and terminate():
                    raise Terminated()
        except Terminated:
            raise
        except Exception as exc:
            raise self._run_error(position, exc, steps) from exc

    def steps_for(self, output_names: Sequence[str]) -> list[_Step]:
        """The steps needed to compute ``output_names`` only (``only_execute_path_to_fetches``);
        values are still freed after their last use in the full plan, which is never earlier
        than in the pruned one."""
        needed = {self.output_slots[n] for n in output_names}
        chosen: list[_Step] = []
        for step in reversed(self.steps):
            if any(slot in needed for slot in step.outputs):
                chosen.append(step)
                needed.update(step.inputs)
        chosen.reverse()
        return chosen

    def execute_parallel(self, values: list[Any], pool: Any,
                         terminate: Callable[[], bool] | None = None) -> None:
        """Run independent steps concurrently on ``pool`` (a ``ThreadPoolExecutor``); a step
        starts once every step producing its inputs has finished (``ORT_PARALLEL``)."""
        import concurrent.futures as futures

        steps = self.steps
        producer = {slot: i for i, step in enumerate(steps) for slot in step.outputs
                    if slot != _DISCARD_SLOT}
        waiting = [0] * len(steps)
        dependents: list[list[int]] = [[] for _ in steps]
        consumers: dict[int, int] = {}
        for i, step in enumerate(steps):
            for slot in set(step.inputs):
                consumers[slot] = consumers.get(slot, 0) + 1
                source = producer.get(slot)
                if source is not None:
                    waiting[i] += 1
                    dependents[source].append(i)
        keep = set(self.output_slots.values())

        def run(i: int) -> int:
            step = steps[i]
            results = step.compute(*[values[s] for s in step.inputs])
            for slot, result in zip(step.outputs, results):
                if slot != _DISCARD_SLOT:
                    values[slot] = result
            return i

        running = {pool.submit(run, i): i for i in range(len(steps)) if waiting[i] == 0}
        current = 0
        try:
            while running:
                done, _ = futures.wait(running, return_when=futures.FIRST_COMPLETED)
                for future in done:
                    current = i = running.pop(future)
                    future.result()
                    for slot in set(steps[i].inputs):
                        consumers[slot] -= 1
                        if consumers[slot] == 0 and slot not in keep and slot in producer:
                            values[slot] = None
                    if terminate is not None and terminate():
                        raise Terminated()
                    for j in dependents[i]:
                        waiting[j] -= 1
                        if waiting[j] == 0:
                            running[pool.submit(run, j)] = j
        except Terminated:
            futures.wait(running)
            raise
        except Exception as exc:
            futures.wait(running)
            raise self._run_error(current, exc) from exc

    def _run_error(self, position: int, exc: BaseException,
                   steps: Sequence[_Step] | None = None) -> Fail:
        op_type, name = (self.steps if steps is None else steps)[position].label
        text = exc.message if isinstance(exc, OrtError) else f"{type(exc).__name__}: {exc}"
        return Fail(
            f"Non-zero status code returned while running {op_type} node. Name:'{name}' "
            f"Status Message: {text}"
        )

    def host_output(self, name: str, value: Any) -> Any:
        """Bring an output value to host memory."""
        location = self.output_location.get(name)
        return value if location is None else location.to_host(value)

