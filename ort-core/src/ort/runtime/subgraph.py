"""Compiled nested graphs: If branches, Loop/Scan/SequenceMap bodies, function bodies and the
node groups providers run as one unit.

The compiler (:mod:`ort.runtime.compiler`) builds a :class:`Subgraph` (the runtime's
:class:`~ort.ep.CompiledGraph`) once at session creation. Running it binds the formal inputs
and the outer-scope values it reads (a control-flow node's *implicit inputs*, which the
executor passes to the kernel after its regular inputs), runs the plan under the state of the
run in progress (so ``RunOptions.terminate`` stops a long Loop) and returns the outputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx

from .executor import current_run, execute
from .plan import Plan

__all__ = ["Subgraph"]


class Subgraph:
    """A compiled graph with formal inputs, outputs and outer-scope names, runnable many times.

    Attributes:
        plan: the compiled plan.
        input_names, output_names: the formal inputs and outputs, in order.
        outer_names: the names it reads from enclosing graphs.
        input_types, output_types: the ``TypeProto`` of each input and output where known
            (None otherwise).
    """

    def __init__(self, plan: Plan, input_names: Sequence[str], output_names: Sequence[str],
                 outer_names: Sequence[str] = ()) -> None:
        self.plan = plan
        self.input_names = list(input_names)
        self.output_names = list(output_names)
        self.outer_names = list(outer_names)
        types = plan.graph.value_types
        self.input_types: list[onnx.TypeProto | None] = [types.get(n) for n in self.input_names]
        self.output_types: list[onnx.TypeProto | None] = [types.get(n) for n in self.output_names]
        self._input_slots = [plan.slots.get(name) for name in self.input_names]
        self._outer_slots = [(name, plan.slots[name]) for name in self.outer_names
                             if name in plan.slots]
        self._output_slots = [plan.output_slots[name] for name in self.output_names]

    @property
    def partition(self) -> Any:
        """How the graph's nodes were assigned to providers."""
        return self.plan.partition

    def output_dtype(self, index: int) -> np.dtype | None:
        """The element dtype of tensor output ``index``, if the model declares it."""
        return self.plan.graph.dtype_of(self.output_names[index])

    def run(self, inputs: Sequence[Any], outer: Mapping[str, Any] | None = None,
            to_host: bool = True) -> list[Any]:
        """Run once with ``inputs`` bound to the formal inputs (in order) and ``outer`` (name
        -> value) to the outer-scope values it reads; return the outputs in host memory, or
        where they were computed with ``to_host=False``."""
        plan = self.plan
        values = plan.new_values()
        for slot, value in zip(self._input_slots, inputs):
            if slot is not None:
                values[slot] = value
        if self._outer_slots:
            for name, slot in self._outer_slots:
                values[slot] = outer[name]  # type: ignore[index]
        execute(plan, values, current_run())
        if not to_host:
            return [values[slot] for slot in self._output_slots]
        return [plan.host_output(name, values[slot])
                for name, slot in zip(self.output_names, self._output_slots)]
