"""``ExampleExecutionProvider``: kernels, a capability rule with fusion, and registration.

Everything a provider distribution needs, in one module:

1. an :class:`ort.ep.ExecutionProvider` subclass (name, device, options, capability, compile);
2. a :class:`ort.ep.KernelTable` of kernel factories;
3. two pluggy hooks, found through the ``ort`` entry point in ``pyproject.toml``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import ort
from ort.ep import (
    CompileContext, ExecutionProvider, FusedSubgraph, KernelTable, NodeInfo, ProviderSpec,
)

FLOATS = ("float", "double")
kernels = KernelTable()


class ExampleExecutionProvider(ExecutionProvider):
    """Host memory, its own kernels for a few float ops, MatMul+Add fused into one step.

    Options: ``fuse_matmul_add`` (``"1"`` default, ``"0"`` to run the two nodes separately).
    """

    name = "ExampleExecutionProvider"
    device_type = "cpu"
    known_options = frozenset({"fuse_matmul_add"})
    #: node names this provider ran, for tests to check (a real provider would not keep this)
    calls: list[str] = []

    def get_capability(self, graph: Any, lookup: Any) -> list[Any]:
        """Claim every node with a kernel here; group MatMul -> Add pairs when fusing."""
        mine = {n.index for n in graph.nodes if lookup(n) is not None}
        if self.options.get("fuse_matmul_add", "1") != "1":
            return sorted(mine)
        readers: dict[str, list[Any]] = {}
        for node in graph.nodes:
            for name in node.inputs:
                readers.setdefault(name, []).append(node)
        claims: list[Any] = []
        taken: set[int] = set()
        for node in graph.nodes:
            if node.index not in mine or node.index in taken:
                continue
            after = readers.get(node.outputs[0], []) if node.op_type == "MatMul" else []
            if len(after) == 1 and after[0].op_type == "Add" and after[0].index in mine:
                claims.append(FusedSubgraph([node.index, after[0].index],
                                            name=f"{node.name}+{after[0].name}",
                                            op_type="ExampleMatMulAdd"))
                taken.add(after[0].index)
            else:
                claims.append(node.index)
        return claims

    def compile(self, graph: Any, fused: FusedSubgraph, inputs: list[str],
                outputs: list[str], context: CompileContext) -> Any:
        """One function for a MatMul -> Add pair: ``a @ b + c`` with the operands in the
        order the pair reads them."""
        matmul, add = (graph.nodes[i] for i in sorted(fused.node_indices))
        a, b = (inputs.index(n) for n in matmul.inputs)
        bias_name = next(n for n in add.inputs if n != matmul.outputs[0])
        c = inputs.index(bias_name)
        name = fused.name

        def compute(*values: Any) -> tuple[Any]:
            ExampleExecutionProvider.calls.append(name)
            return (np.matmul(values[a], values[b]) + values[c],)

        return compute


def _binary(ufunc: Any) -> Any:
    def factory(node: NodeInfo) -> Any:
        def compute(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray]:
            ExampleExecutionProvider.calls.append(node.name)
            return (ufunc(x, y),)
        return compute
    return factory


for _op, _fn in (("Add", np.add), ("Sub", np.subtract), ("Mul", np.multiply)):
    kernels.register(_op, since=7, input_types={0: FLOATS, 1: FLOATS})(_binary(_fn))
kernels.register("MatMul", since=1, input_types={0: FLOATS, 1: FLOATS})(_binary(np.matmul))


@kernels.register("Relu", since=6, input_types={0: FLOATS})
def relu(node: NodeInfo) -> Any:
    """Relu 6+ on floats: max(x, 0)."""

    def compute(x: np.ndarray) -> tuple[np.ndarray]:
        ExampleExecutionProvider.calls.append(node.name)
        return (np.maximum(x, x.dtype.type(0)),)

    return compute


@ort.hookimpl
def ort_register_providers(registry: Any) -> None:
    """Register the provider (priority 10: before CPU in get_available_providers())."""
    registry.register(ProviderSpec(name=ExampleExecutionProvider.name,
                                   factory=ExampleExecutionProvider, priority=10,
                                   core_requires=">=0.1,<0.2"))


@ort.hookimpl
def ort_register_kernels(registry: Any) -> None:
    """Register the provider's kernels."""
    registry.add(ExampleExecutionProvider.name, kernels)
