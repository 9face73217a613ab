"""Helpers for the kernels that compute in a work precision (attention, normalization, pooling,
resize, rnn, losses, fused ops, ...): float16 and bfloat16 inputs are computed in float32 while
float64 stays float64 (:func:`wide_work_dtype` also widens 32- and 64-bit integers to float64), results are rounded back to the input type where the ONNX reference rounds them, the
``softmax_precision``/``stash_type`` attributes name dtypes, and the sigmoid does not overflow.
They hold no kernels; those modules import them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ml_dtypes
import numpy as np

from ort.ep import NodeInfo

# ONNX TensorProto element types that softmax_precision / stash_type may name.
_PRECISION_DTYPES = {
    1: np.dtype(np.float32),
    10: np.dtype(np.float16),
    11: np.dtype(np.float64),
    16: np.dtype(ml_dtypes.bfloat16),
}


#: The float types kernels compute in float32 (their own precision loses too much).
LOW_PRECISION = frozenset(np.dtype(t) for t in (np.float16, ml_dtypes.bfloat16))


def work_dtype(dtype: Any) -> np.dtype:
    """Return the dtype to compute in: float64 stays, every other float type uses float32."""
    return np.dtype(np.float64) if np.dtype(dtype) == np.float64 else np.dtype(np.float32)


def wide_work_dtype(dtype: Any) -> np.dtype:
    """Return the float dtype to compute in: float64 for float64 and wide integers, else
    float32 (float16, bfloat16, float32, narrow integers)."""
    dtype = np.dtype(dtype)
    if dtype == np.float64 or (dtype.kind in "iu" and dtype.itemsize >= 4):
        return np.dtype(np.float64)
    return np.dtype(np.float32)


def widest(*dtypes: Any) -> np.dtype:
    """Return the widest work dtype of ``dtypes`` (float64 if any is float64)."""
    return max((work_dtype(d) for d in dtypes), key=lambda d: d.itemsize)


def is_low_precision(dtype: Any) -> bool:
    """Return whether ``dtype`` is narrower than float32 (float16, bfloat16)."""
    return np.dtype(dtype).itemsize < 4


def rounding(dtype: Any) -> Callable[[Any], Any]:
    """Return a function that rounds work-precision values to ``dtype`` and back (identity
    when ``dtype`` is float32 or wider)."""
    dtype = np.dtype(dtype)
    if not is_low_precision(dtype):
        return lambda a: a
    return lambda a: a.astype(dtype).astype(np.float32)


def precision_attr(node: NodeInfo, name: str, default: int | None) -> np.dtype | None:
    """Return the dtype named by the TensorProto-type attribute ``name`` (None if absent)."""
    value = node.attrs.get(name, default)
    if value is None:
        return None
    dtype = _PRECISION_DTYPES.get(int(value))
    if dtype is None:
        raise ValueError(
            f"{node.describe()}: {name}={value} is not one of {sorted(_PRECISION_DTYPES)} "
            "(FLOAT, FLOAT16, DOUBLE, BFLOAT16)"
        )
    return dtype


def sigmoid(xp: Any, z: Any) -> Any:
    """Return the logistic sigmoid of ``z`` without overflow for large ``|z|``."""
    e = xp.exp(-xp.abs(z))
    return xp.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(z.dtype, copy=False)

