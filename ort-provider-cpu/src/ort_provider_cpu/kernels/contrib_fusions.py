"""CPU kernels: onnxruntime's fused float ops (FusedMatMul, QuickGelu, SimplifiedLayerNormalization,
SkipSimplifiedLayerNormalization, EmbedLayerNormalization, LayerNormalization below opset 17,
BiasAdd, BiasSplitGelu, BiasSoftmax, GemmFastGelu).

Semantics follow onnxruntime's contrib operator spec (docs/ContribOperators.md) and its CPU
kernels' observed behaviour; every op is declared to the core in ``SCHEMAS``
(:mod:`.contrib_schema`).
"""

from __future__ import annotations

from ort.ep import DeclaredSchema, KernelTable

kernels = KernelTable()

#: The contrib ops of this module, declared to the core.
SCHEMAS: list[DeclaredSchema] = []
