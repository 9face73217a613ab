"""CPU kernels: onnxruntime's generation ops (GreedySearch, BeamSearch, Sampling), which run a
decoder subgraph in a loop to generate token sequences.

Semantics follow onnxruntime's contrib operator spec (docs/ContribOperators.md) and its CPU
kernels' observed behaviour; every op is declared to the core in ``SCHEMAS``
(:mod:`.contrib_schema`).
"""

from __future__ import annotations

from ort.ep import DeclaredSchema, KernelTable

kernels = KernelTable()

#: The contrib ops of this module, declared to the core.
SCHEMAS: list[DeclaredSchema] = []
