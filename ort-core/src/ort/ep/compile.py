"""The compiler as providers and kernels see it.

The runtime has one compiler: it partitions a graph over the session's providers and binds
every node's kernel into a plan. It compiles the model, and it compiles every nested graph the
same way: If/Loop/Scan bodies, ONNX function bodies, graphs evaluated for constant folding, and
the node groups a provider claims as one unit. Providers and kernels reach it only through the
:class:`CompileContext` they are handed (``ExecutionProvider.compile``, ``NodeInfo.context``),
never by importing the runtime, and get back a :class:`CompiledGraph` to run.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
from onnx import GraphProto, TypeProto

from ..ir import Graph

__all__ = ["CompileContext", "CompiledGraph"]


class CompiledGraph(Protocol):
    """A graph compiled into a plan, runnable many times (from any thread).

    Attributes:
        input_names, output_names: its formal inputs and outputs, in order.
        outer_names: the names it reads from enclosing graphs.
        input_types, output_types: the declared ``TypeProto`` of each input and output where
            known (None otherwise); kernels use them to shape what they feed (a scalar or a
            one-element vector) and empty results (a Loop that runs zero iterations).
    """

    input_names: list[str]
    output_names: list[str]
    outer_names: list[str]
    input_types: list[TypeProto | None]
    output_types: list[TypeProto | None]

    def output_dtype(self, index: int) -> np.dtype | None:
        """The element dtype of tensor output ``index``, if the model declares it."""

    def run(self, inputs: Sequence[Any], outer: Mapping[str, Any] | None = None,
            to_host: bool = True) -> list[Any]:
        """Run once with ``inputs`` bound to the formal inputs (in order) and ``outer`` (name
        -> value) to the outer-scope values it reads; return the outputs in host memory (or
        where they were computed, with ``to_host=False``). A run in progress that is asked to
        terminate stops here too."""


class CompileContext(ABC):
    """The session's compiler, handed to providers (``ExecutionProvider.compile``) and to
    kernel factories (``NodeInfo.context``)."""

    #: the session's providers (:class:`~ort.ep.ExecutionProvider`), in priority order
    providers: Sequence[Any]
    #: the most bytes one output may take (the session config entry
    #: ``session.max_output_bytes``); None: the machine's memory (:mod:`ort.ep.limits`)
    max_output_bytes: int | None = None
    #: the session's ``SessionOptions.intra_op_num_threads`` (0: the provider's default, one
    #: thread per core); kernels read it through ``NodeInfo.intra_op_threads``
    intra_op_threads: int = 0

    @abstractmethod
    def compile_subgraph(self, body: GraphProto, parent: Graph) -> CompiledGraph:
        """Compile ``body`` as a subgraph of ``parent`` (a graph attribute such as a Loop
        body, or a graph a kernel built from ``parent``'s nodes) over the session's
        providers; its formal inputs are fed in host memory."""

    @abstractmethod
    def compile_nodes(self, graph: Graph, node_indices: Sequence[int], inputs: Sequence[str],
                      outputs: Sequence[str], *, provider: Any,
                      constants: Sequence[str] = (), name: str = "fused") -> CompiledGraph:
        """Compile ``graph``'s nodes ``node_indices`` into a unit run by ``provider`` (an
        :class:`~ort.ep.ExecutionProvider`) alone
        (with its own kernels, unfused) from the values ``inputs`` to the values ``outputs``.

        The unit's formal inputs are ``inputs`` except ``constants`` (initializers of
        ``graph``, which the unit holds itself), fed in ``provider``'s memory; its outputs stay
        there (``run(..., to_host=False)``)."""
