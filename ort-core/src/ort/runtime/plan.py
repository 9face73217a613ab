"""The execution plan: what the compiler produces and the executor runs.

Every value of the graph gets a slot index. Slot 0 always holds None (omitted optional inputs
read it); slot 1 swallows omitted optional outputs. A :class:`Step` is a bound compute function
with its input and output slots and the slots to release after it (values dropped right after
their last use). A run fills a fresh value list (:meth:`Plan.new_values`, constants in place)
with the feeds and runs the steps over it (:func:`ort.runtime.executor.execute`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..ep import ExecutionProvider
from ..ir import Graph
from .partition import Partition

__all__ = ["Plan", "Step", "NONE_SLOT", "DISCARD_SLOT", "COPY_OPS"]

NONE_SLOT = 0
DISCARD_SLOT = 1
#: The op types of the copy steps the compiler inserts between devices.
COPY_OPS = ("MemcpyFromHost", "MemcpyToHost")


class Step:
    """One bound node (or device copy): ``compute(*values[inputs])`` fills ``values[outputs]``.

    Attributes:
        compute: the kernel's compute function (a tuple of results, one per output).
        inputs, outputs: value slots.
        single_input, single_output: the slot when there is exactly one input (output), else
            None: the step loop's fast path for the common one-in, one-out node.
        frees: slots released after this step (their last use in plan order).
        label: ``(op_type, node name)`` for profiles and error messages.
        provider: the name of the provider running it.
        node_index: the node's index in the graph (-1 for copies).
        parameter_bytes: bytes of constant inputs (profiling's ``parameter_size``).
    """

    __slots__ = ("compute", "inputs", "outputs", "single_input", "single_output", "frees",
                 "label", "provider", "node_index", "parameter_bytes")

    def __init__(self, compute: Callable[..., Sequence[Any]], inputs: list[int],
                 outputs: list[int], label: tuple[str, str], provider: str = "",
                 node_index: int = -1, parameter_bytes: int = 0) -> None:
        self.compute = compute
        self.inputs = inputs
        self.outputs = outputs
        self.single_input = inputs[0] if len(inputs) == 1 else None
        self.single_output = outputs[0] if len(outputs) == 1 else None
        self.frees: list[int] = []
        self.label = label
        self.provider = provider
        self.node_index = node_index
        self.parameter_bytes = parameter_bytes


class Plan:
    """A graph compiled for running: slots, bound steps, copies and lifetimes.

    Attributes:
        graph, partition: what was compiled and how its nodes were assigned.
        steps: the steps in run order.
        slots: value name -> slot.
        input_slots: graph input (and overridable initializer) name -> slot.
        output_slots: graph output name -> slot.
        output_location: graph output name -> the provider holding it (None: host memory).
    """

    def __init__(self, graph: Graph, partition: Partition, steps: list[Step],
                 slots: dict[str, int], template: list[Any],
                 input_slots: dict[str, int], output_slots: dict[str, int],
                 output_location: dict[str, ExecutionProvider | None]) -> None:
        self.graph = graph
        self.partition = partition
        self.steps = steps
        self.slots = slots
        self.input_slots = input_slots
        self.output_slots = output_slots
        self.output_location = output_location
        self._template = template
        self._pruned: dict[tuple[str, ...], list[Step]] = {}
        #: what the executor works out once per plan (its scheduling of step lists)
        self.executor_memo: dict[Any, Any] = {}

    def new_values(self) -> list[Any]:
        """A fresh value list with constants in place, ready to receive feeds."""
        return list(self._template)

    def host_output(self, name: str, value: Any) -> Any:
        """Bring an output value to host memory."""
        location = self.output_location.get(name)
        return value if location is None else location.to_host(value)

    def steps_for(self, output_names: Sequence[str]) -> list[Step]:
        """The steps needed to compute ``output_names`` only (``only_execute_path_to_fetches``),
        computed once per set of names; values are still released after their last use in the
        full plan, which is never earlier than in the pruned one."""
        key = tuple(output_names)
        chosen = self._pruned.get(key)
        if chosen is None:
            needed = {self.output_slots[n] for n in output_names}
            chosen = []
            for step in reversed(self.steps):
                if any(slot in needed for slot in step.outputs):
                    chosen.append(step)
                    needed.update(step.inputs)
            chosen.reverse()
            self._pruned[key] = chosen
        return chosen

    def copy_labels(self) -> list[str]:
        """The names of the device copies the compiler inserted."""
        return [step.label[1] for step in self.steps if step.label[0] in COPY_OPS]
