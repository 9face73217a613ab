"""Shared helpers of the quantized contrib kernels (:mod:`.contrib_quant` and
:mod:`.contrib_quant_lstm`): onnxruntime's dynamic uint8 quantization, exact integer GEMM in
float64 BLAS and MLAS's float32 output processors."""

from __future__ import annotations

from typing import Any

import numpy as np

_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_U8 = np.dtype(np.uint8)


# ---------------------------------------------------------------------------------------

def dynamic_quantize(x: np.ndarray) -> tuple[np.ndarray, np.float32, int]:
    """Quantize float ``x`` to uint8 as onnxruntime's dynamic quantization does; return
    ``(x_quantized, scale, zero_point)``: range [min(x, 0), max(x, 0)], float32 scale
    ``(max - min) / 255`` (1 for an all-zero range), zero point ``rint(clip(-min / scale))``,
    values ``clip(rint(x / scale) + zero_point, 0, 255)``."""
    x = np.asarray(x, dtype=_F32)
    low = min(np.float32(0), x.min()) if x.size else np.float32(0)
    high = max(np.float32(0), x.max()) if x.size else np.float32(0)
    scale = np.float32(1) if high == low else np.float32((high - low) / np.float32(255))
    zero_point = int(np.rint(np.clip(np.float32(0) - low / scale, 0, 255)))
    q = np.rint(x / scale)
    q += zero_point
    np.clip(q, 0, 255, out=q)
    return q.astype(_U8), scale, zero_point


def centered(x: np.ndarray, zero_point: Any = None) -> np.ndarray:
    """``x - zero_point`` as float64 (exact for 8/16-bit integers); the zero point is a scalar
    or an array that broadcasts against ``x``."""
    out = x.astype(_F64)
    if zero_point is not None:
        zp = np.asarray(zero_point)
        out -= zp.astype(_F64).reshape(()) if zp.size == 1 else zp.astype(_F64)
    return out


class IntegerOperand:
    """The right operand of :func:`integer_matmul` prepared once (constant weights, or a
    recurrence matrix reused every step): integers as float64, their float32 copy (made on
    first use) and their largest magnitude."""

    def __init__(self, values: np.ndarray) -> None:
        self.f64 = np.asarray(values, dtype=_F64)
        self.max = float(np.abs(self.f64).max()) if self.f64.size else 0.0
        self._f32: np.ndarray | None = None

    @property
    def f32(self) -> np.ndarray:
        """The operand as float32 (exact: 8/16-bit integers)."""
        if self._f32 is None:
            self._f32 = self.f64.astype(_F32)
        return self._f32


def integer_matmul(a: np.ndarray, b: np.ndarray | IntegerOperand) -> np.ndarray:
    """The exact matrix product (numpy ``matmul`` semantics) of two float64 arrays holding
    integers, as float64. float64 BLAS is exact while sums stay below 2**53; float32 BLAS (twice
    as fast, half the memory traffic) is used when ``K * max|a| * max|b| < 2**24``, which
    bounds every partial sum, and over slices of K that each keep that bound (at most
    :data:`MAX_F32_SLICES` of them, summed in float64) when the whole K does not."""
    operand = b if isinstance(b, IntegerOperand) else IntegerOperand(b)
    k = a.shape[-1] if a.ndim else 0
    if not (k and a.size and operand.f64.size):
        return np.matmul(a, operand.f64)
    if a.ndim > 2 and operand.f64.ndim == 2:  # one GEMM over all rows, not one per batch
        flat = integer_matmul(a.reshape(-1, k), operand)
        return flat.reshape(a.shape[:-1] + (flat.shape[-1],))
    per_term = float(np.abs(a).max()) * operand.max
    if per_term * k < 2 ** 24:
        return np.matmul(a.astype(_F32), operand.f32).astype(_F64)
    step = int((2 ** 24 - 1) // per_term) if per_term else k
    if step >= 1 and -(-k // step) <= MAX_F32_SLICES and operand.f64.ndim == 2:
        a32 = a.astype(_F32)
        total = None
        for start in range(0, k, step):
            part = np.matmul(a32[..., start:start + step], operand.f32[start:start + step])
            total = part.astype(_F64) if total is None else total + part
        return total
    return np.matmul(a, operand.f64)


#: Float32 GEMMs over slices of K that :func:`integer_matmul` prefers to one float64 GEMM.
MAX_F32_SLICES = 4


def scale_bias_output(acc: np.ndarray, multiplier: Any, bias: Any = None) -> np.ndarray:
    """MLAS's scale-bias output processor: ``float32(acc) * multiplier + bias`` in float32."""
    out = acc.astype(_F32)
    out *= np.asarray(multiplier, dtype=_F32)
    if bias is not None:
        out += np.asarray(bias, dtype=_F32)
    return out


def requantize(values: np.ndarray, multiplier: Any, zero_point: int, dtype: np.dtype
               ) -> np.ndarray:
    """MLAS's requantize output processor: ``float32(acc) * multiplier`` (float32), rounded half
    to even, plus the zero point, saturated to ``dtype`` (uint8 or int8)."""
    info = np.iinfo(dtype)
    scaled = values.astype(_F32) * np.asarray(multiplier, dtype=_F32)
    q = np.rint(np.clip(scaled, info.min - zero_point, info.max - zero_point))
    q += zero_point
    return q.astype(dtype)
