"""The element types cupy arrays hold on the device (no strings, bfloat16, float8, int4: nodes
with such inputs or outputs run on the next provider)."""

from __future__ import annotations

import numpy as np

__all__ = ["DEVICE_TYPE_NAMES", "DEVICE_DTYPES"]

DEVICE_TYPE_NAMES = frozenset({
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float", "double",
})
DEVICE_DTYPES = frozenset(np.dtype(t) for t in (
    np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
    np.float16, np.float32, np.float64,
))
