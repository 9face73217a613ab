"""Helpers shared by the QOperator-format kernels of :mod:`.contrib_qlinear`: per-tensor
scale and zero point reading, MLAS' float32 requantization (half to even, saturating), fused
multiply-add in float32, 256-entry lookup tables, and broadcast shape inference.

No kernels are registered here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

F32 = np.float32
F64 = np.float64

#: The quantized types of these ops and their ranges.
QUANT_RANGES: dict[np.dtype, tuple[int, int]] = {
    np.dtype(np.uint8): (0, 255),
    np.dtype(np.int8): (-128, 127),
}

_INT32_LIMIT = 2.0 ** 31


def check_quant_dtype(where: str, dtype: np.dtype) -> np.dtype:
    """``dtype`` when it is uint8 or int8, else ValueError."""
    dtype = np.dtype(dtype)
    if dtype not in QUANT_RANGES:
        raise ValueError(f"{where}: quantized tensors must be uint8 or int8, got {dtype}")
    return dtype


def scalar_param(where: str, name: str, value: Any) -> float:
    """A per-tensor scale: a float scalar or one-element 1-D tensor, as a Python float that
    round-trips through float32."""
    if value is None:
        raise ValueError(f"{where}: {name} is required")
    value = np.asarray(value)
    if value.size != 1 or value.ndim > 1:
        raise ValueError(f"{where}: {name} must be a scalar or a 1-D tensor of one element, "
                         f"got shape {value.shape}")
    return float(F32(value.reshape(())))


def zero_point(where: str, name: str, value: Any, dtype: np.dtype) -> int:
    """A per-tensor zero point (0 when omitted) of the quantized ``dtype``, as an int."""
    if value is None:
        return 0
    value = np.asarray(value)
    if value.size != 1 or value.ndim > 1:
        raise ValueError(f"{where}: {name} must be a scalar or a 1-D tensor of one element, "
                         f"got shape {value.shape}")
    if value.dtype != dtype:
        raise ValueError(f"{where}: {name} is {value.dtype}, must be {dtype} like the data")
    return int(value.reshape(()))


def fma32(a: Any, b: Any, c: Any) -> Any:
    """float32 ``a * b + c`` rounded once (a fused multiply-add; the product of two float32
    values is exact in float64, so only the sum rounds before the float32 rounding)."""
    return (np.asarray(a, dtype=F64) * F64(b) + np.asarray(c, dtype=F64)).astype(F32)


def saturate_cvt(values: Any, dtype: np.dtype) -> Any:
    """float32 values to ``dtype`` as MLAS does: rounded half to even to int32 (NaN and values
    outside int32 become INT32_MIN), then saturated to ``dtype``'s range."""
    low, high = QUANT_RANGES[np.dtype(dtype)]
    rounded = np.rint(np.asarray(values, dtype=F64))
    rounded = np.where(np.abs(rounded) < _INT32_LIMIT, rounded, -_INT32_LIMIT)
    return np.clip(rounded, low, high).astype(dtype)


def quantize_mlas(values: Any, scale: float, zero: int, dtype: np.dtype) -> Any:
    """MLAS' QuantizeLinear of float32 ``values``: saturate(round_half_even(v / scale) + zp)."""
    ratio = np.asarray(values, dtype=F32) / F32(scale)
    low, high = QUANT_RANGES[np.dtype(dtype)]
    return np.clip(np.rint(ratio.astype(F64)) + zero, low, high).astype(dtype)


def codes_of(dtype: np.dtype) -> Any:
    """The 256 values of ``dtype`` ordered by their byte (int32): index ``i`` holds the value
    whose bits are ``i``."""
    return np.arange(256, dtype=np.uint8).view(dtype).astype(np.int32)


def lookup(table: Any, x: Any) -> Any:
    """``table[byte of x]`` for a uint8/int8 ``x`` (a fresh array of the table's type)."""
    return table[np.asarray(x).view(np.uint8)]  # same item size: any layout, any rank


def broadcast_dims(a: Sequence[Any] | None, b: Sequence[Any] | None) -> list[Any] | None:
    """The multidirectional broadcast of two inferred shapes (ints, symbols or None)."""
    if a is None or b is None:
        return None
    rank = max(len(a), len(b))
    a = [1] * (rank - len(a)) + list(a)
    b = [1] * (rank - len(b)) + list(b)
    out: list[Any] = []
    for x, y in zip(a, b):
        if x == 1:
            out.append(y)
        elif y == 1 or x == y:
            out.append(x)
        elif isinstance(x, int) and not isinstance(y, int):
            out.append(x)
        elif isinstance(y, int) and not isinstance(x, int):
            out.append(y)
        else:
            out.append(None)
    return out
