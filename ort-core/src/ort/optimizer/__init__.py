"""Graph optimization at session creation, by ``SessionOptions.graph_optimization_level``.

Passes rewrite an ``onnx.ModelProto`` (so ``optimized_model_filepath`` can save the result as a
valid ONNX file) and are registered per level with :func:`register_pass`:

* ``ORT_ENABLE_BASIC`` (1): semantics-preserving cleanups that need no special kernel
  (constant folding, dead-node and identity elimination, common subexpressions, Conv+BN
  folding).
* ``ORT_ENABLE_EXTENDED`` (2): fusions into ops the session's first-choice provider has a
  kernel for (``context.has_kernel``), e.g. ``com.microsoft:FusedConv``; fusing into an op
  only a later provider runs would take nodes away from the user's first choice.
* ``ORT_ENABLE_ALL`` (99): everything above (layout rewrites are not done by ort).

Every pass keeps the graph's inputs, outputs and overridable initializers, and outputs at
every level equal level 0's within floating-point tolerance.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from onnx import ModelProto

from ..detached import DetachedTensors

__all__ = ["OptimizerContext", "OptimizationPass", "register_pass", "passes_for", "optimize_model"]


@dataclass
class OptimizerContext:
    """What passes may ask of the session.

    Attributes:
        has_kernel: ``(domain, op_type, since_version) -> bool``: whether the session's
            first-choice provider can run that op (fusions only produce ops it runs).
        evaluate: runs a model without inputs and returns its outputs (constant folding uses
            the session's own kernels); None disables folding.
        keep: names that must survive unchanged (graph inputs, outputs, overridable
            initializers); filled in by :func:`optimize_model`.
        detached: where large initializers the passes create keep their data (the
            session's :class:`ort.detached.DetachedTensors`); None embeds the data.
    """

    has_kernel: Callable[[str, str, int], bool]
    evaluate: Callable[[ModelProto], list[np.ndarray]] | None = None
    keep: set[str] = field(default_factory=set)
    detached: DetachedTensors | None = None
    #: the graph index shared by passes while none changes the model
    #: (see :meth:`ort.optimizer.patterns.GraphView.of`)
    cached_view: Any = None


#: A pass: rewrites the model in place; returns whether it changed anything.
OptimizationPass = Callable[[ModelProto, OptimizerContext], bool]

_PASSES: list[tuple[int, str, OptimizationPass]] = []


def register_pass(level: int, name: str) -> Callable[[OptimizationPass], OptimizationPass]:
    """Decorator: run the pass at ``level`` and above, in registration order."""

    def decorate(fn: OptimizationPass) -> OptimizationPass:
        _PASSES.append((int(level), name, fn))
        return fn

    return decorate


def passes_for(level: int) -> list[tuple[str, OptimizationPass]]:
    """The passes that run at ``level``, in order."""
    return [(name, fn) for pass_level, name, fn in _PASSES if pass_level <= int(level)]


def optimize_model(model: ModelProto, level: int, context: OptimizerContext,
                   disabled: set[str] | None = None, max_rounds: int = 4) -> ModelProto:
    """Return an optimized copy of ``model`` (``model`` itself at level 0); passes named in
    ``disabled`` are skipped. Passes repeat until none changes the graph (at most
    ``max_rounds`` rounds)."""
    selected = [(n, fn) for n, fn in passes_for(level) if n not in (disabled or set())]
    if not selected:
        return model
    optimized = ModelProto()
    optimized.CopyFrom(model)
    graph = optimized.graph
    context.keep = ({i.name for i in graph.input} | {o.name for o in graph.output})
    for _ in range(max_rounds):
        changed = False
        for _name, fn in selected:
            if fn(optimized, context):
                changed = True
                context.cached_view = None  # the model changed: index it afresh
        if not changed:
            break
    context.cached_view = None  # the view refers back to the context: no cycle left behind
    return optimized


# the passes register in this order (the order they run in each round)
from . import basic, constant_folding, cse, conv_folding  # noqa: E402,F401  (level 1)
from . import attention_fusion, fusions  # noqa: E402,F401  (level 2)
