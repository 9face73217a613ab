"""What optimizer passes may ask of the session that optimizes a model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from onnx import ModelProto

from ..ir import WeightStore

__all__ = ["OptimizerContext", "OptimizationPass"]


@dataclass
class OptimizerContext:
    """What passes may ask of the session.

    Attributes:
        has_kernel: ``(domain, op_type, since_version) -> bool``: whether the session's
            first-choice provider can run that op (fusions only produce ops it runs).
        evaluate: runs a model without inputs and returns its outputs (constant folding uses
            the session's own kernels through its compiler); None disables folding.
        keep: names that must survive unchanged (graph inputs, outputs, overridable
            initializers); filled in by :func:`ort.optimizer.optimize_model`.
        weights: where large initializers the passes create keep their data (the session's
            :class:`~ort.ir.WeightStore`); None embeds the data.
        reserved_names: names new values must not take besides the graph's own: those of
            the outer scopes while a subgraph is optimized (a new name must not shadow them).
    """

    has_kernel: Callable[[str, str, int], bool]
    evaluate: Callable[[ModelProto], list[np.ndarray]] | None = None
    keep: set[str] = field(default_factory=set)
    weights: WeightStore | None = None
    reserved_names: frozenset[str] | set[str] = frozenset()
    #: the graph index shared by passes while none changes the model
    #: (see :meth:`ort.optimizer.view.GraphView.of`)
    cached_view: Any = None


#: A pass: rewrites the model in place; returns whether it changed anything.
OptimizationPass = Callable[[ModelProto, OptimizerContext], bool]
