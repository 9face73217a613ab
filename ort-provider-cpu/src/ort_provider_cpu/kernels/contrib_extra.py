"""CPU kernels: the rest of onnxruntime's CPU contrib ops that its tools and older exporters
emit (TransposeMatMul, MatMulInteger16, ExpandDims, com.microsoft GatherND/Pad/Unique,
MurmurHash3, MaxpoolWithMask, CropAndResize, QLinearConv, ...) and the experimental ONNX ops
onnxruntime still runs (Affine, Crop, ImageScaler, ParametricSoftplus, Scale, ScaledTanh, ...).

Semantics follow onnxruntime's contrib operator spec (docs/ContribOperators.md) and its CPU
kernels' observed behaviour; every op is declared to the core in ``SCHEMAS``
(:mod:`.contrib_schema`).
"""

from __future__ import annotations

from ort.ep import DeclaredSchema, KernelTable

kernels = KernelTable()

#: The contrib ops of this module, declared to the core.
SCHEMAS: list[DeclaredSchema] = []
