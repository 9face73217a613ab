"""Subgraphs of control-flow nodes (If branches, Loop/Scan/SequenceMap bodies) compiled into
nested execution plans.

A control-flow kernel asks for its subgraph at session creation with
``node.subgraph("body")`` and gets a :class:`Subgraph`: the body partitioned over the same
providers as the session and planned once. Running it binds the body's formal inputs and the
outer-scope values it reads (the node's *implicit inputs*, which the executor passes to the
kernel after its regular inputs) and returns the body's outputs in host memory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

from .graph import Graph, subgraph_free_names

if TYPE_CHECKING:
    from .execution import ExecutionPlan
    from .partition import Partition
    from .provider import ExecutionProvider
    from .registry import Registry

__all__ = ["Subgraph", "compile_subgraph"]


class Subgraph:
    """A compiled subgraph: formal inputs, outputs and outer-scope names, runnable many times.

    Attributes:
        proto: the ``GraphProto``.
        input_names, output_names: the body's formal inputs and outputs, in order.
        outer_names: the names it reads from enclosing graphs.
        output_types: the ``TypeProto`` of each output where known (None otherwise), which
            kernels use to shape empty results (a Loop that runs zero iterations).
        partition: how the body's nodes were assigned to providers.
    """

    def __init__(self, proto: onnx.GraphProto, plan: ExecutionPlan, partition: Partition) -> None:
        self.proto = proto
        self.plan = plan
        self.partition = partition
        self.input_names = [vi.name for vi in proto.input]
        self.output_names = [vi.name for vi in proto.output]
        self.outer_names = sorted(subgraph_free_names(proto))
        self.output_types: list[onnx.TypeProto | None] = [
            plan.graph.value_types.get(name) for name in self.output_names
        ]
        self._input_slots = [plan.slots.get(name) for name in self.input_names]
        self._outer_slots = [(name, plan.slots[name]) for name in self.outer_names
                             if name in plan.slots]
        self._output_slots = [plan.output_slots[name] for name in self.output_names]

    def output_dtype(self, index: int) -> np.dtype | None:
        """The element dtype of tensor output ``index``, if the model declares it."""
        return self.plan.graph.dtype_of(self.output_names[index])

    def run(self, inputs: Sequence[Any], outer: Mapping[str, Any],
            to_host: bool = True) -> list[Any]:
        """Run the body once with ``inputs`` bound to its formal inputs (in order) and
        ``outer`` (name -> value) to the outer-scope values it reads; return its outputs (in
        host memory, or where they were computed with ``to_host=False``)."""
        from .execution import check_terminate

        check_terminate()
        plan = self.plan
        values = plan.new_values()
        for slot, value in zip(self._input_slots, inputs):
            if slot is not None:
                values[slot] = value
        for name, slot in self._outer_slots:
            values[slot] = outer[name]
        plan.execute(values)
        if not to_host:
            return [values[slot] for slot in self._output_slots]
        return [plan.host_output(name, values[slot])
                for name, slot in zip(self.output_names, self._output_slots)]


def compile_subgraph(proto: onnx.GraphProto, parent: Graph, providers: list[ExecutionProvider],
                     registry: Registry,
                     input_locations: Mapping[str, ExecutionProvider] | None = None,
                     fuse: bool = True) -> Subgraph:
    """Partition and plan ``proto`` as a subgraph of ``parent`` over ``providers``
    (``input_locations``: formal inputs fed in a provider's memory rather than the host's)."""
    from .execution import ExecutionPlan
    from .partition import partition

    outer = subgraph_free_names(proto)
    graph = Graph(proto, parent.opsets, outer_scope=outer | parent.outer_scope,
                  value_types={n: t for n, t in parent.value_types.items()},
                  functions=parent.functions)
    part = partition(graph, providers, registry, fuse)
    return Subgraph(proto, ExecutionPlan(graph, part, input_locations), part)
