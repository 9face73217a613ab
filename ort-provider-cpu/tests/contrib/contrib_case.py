"""One contrib-op conformance case: a one-node model run on ort and on onnxruntime.

A case module (``cases_<family>.py`` beside this file) lists ``CASES``, each a :class:`Case`.
``test_contrib_conformance.py`` runs every case and checks, against onnxruntime:
- the outputs (dtype, shape and values within ``rtol``/``atol``);
- the outputs' ``NodeArg`` type, and their shape wherever onnxruntime infers a fixed one (the
  op's declared schema is what gives ort these);
- that the feeds were not modified.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ort.testing import node_model

MS = "com.microsoft"


@dataclass
class Case:
    """A one-node model of ``domain:op_type`` with sample inputs.

    ``name`` is unique within its family and starts with the op type
    (``"QuickGelu_alpha"``). ``inputs``: one array per input, None for an omitted optional one.
    ``constants``: input indices made initializers (onnxruntime needs some weights constant).
    ``outputs``: how many outputs the node lists, or a flag per output (False: omitted).
    ``check_shapes``: compare inferred output shapes with onnxruntime's (set False only with a
    comment saying why the shape cannot be inferred statically). ``output_types``: numpy dtypes
    declaring the graph outputs' types (for outputs onnxruntime's inference leaves untyped).
    ``input_shapes=False`` declares the inputs without shapes (inference from types alone)."""

    name: str
    op_type: str
    inputs: Sequence[Any]
    attrs: Mapping[str, Any] = field(default_factory=dict)
    domain: str = MS
    domain_opset: int = 1
    opset: int = 21
    outputs: int | Sequence[bool] = 1
    constants: Collection[int] = ()
    rtol: float = 1e-5
    atol: float = 1e-6
    check_shapes: bool = True
    output_types: Sequence[Any] | None = None
    input_shapes: bool = True

    def model(self):
        """The (model, feeds) pair of this case."""
        return node_model(self.op_type, self.inputs, self.attrs, outputs=self.outputs,
                          domain="" if self.domain in ("", "ai.onnx") else self.domain,
                          opset=self.opset, domain_opset=self.domain_opset,
                          constants=self.constants, name=self.name,
                          output_types=self.output_types, input_shapes=self.input_shapes)


def rng(seed: int = 0) -> np.random.Generator:
    """The random generator cases draw sample data from (fixed seeds: cases are reproducible)."""
    return np.random.default_rng(seed)
