"""Shared helpers of the quantized contrib kernels (:mod:`.contrib_quant` and
:mod:`.contrib_quant_lstm`): onnxruntime's dynamic uint8 quantization, exact integer GEMM in
float BLAS and MLAS's float32 output processors.

Exact integer GEMM in float BLAS: the product of 8-bit integers shifted by their zero points
is computed by a float32 GEMM of the shifted values (converted once, in the same compiled
pass that shifts them) when every partial sum is provably an integer below ``2**24``,
whatever order BLAS adds in: a partial sum is at most the sum of ``|a_k * b_k|`` over the row
and column, which is at most ``K * max|a| * max|b|`` and, by Cauchy-Schwarz, at most
``|a_row| * |b_column|`` (the products' norms, the row norms summed while converting). Where
neither bound holds, float32 GEMMs over slices of K that each keep the first bound are summed
in float64, or one float64 GEMM runs (exact below ``2**53``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import quant_loops

_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_U8 = np.dtype(np.uint8)


# ---------------------------------------------------------------------------------------

def dynamic_params(x: np.ndarray) -> tuple[np.float32, int]:
    """onnxruntime's dynamic uint8 quantization parameters of float32 ``x``: range
    [min(x, 0), max(x, 0)], float32 scale ``(max - min) / 255`` (1 for an all-zero range),
    zero point ``rint(clip(-min / scale))``."""
    low = min(np.float32(0), x.min()) if x.size else np.float32(0)
    high = max(np.float32(0), x.max()) if x.size else np.float32(0)
    scale = np.float32(1) if high == low else np.float32((high - low) / np.float32(255))
    zero_point = int(np.rint(np.clip(np.float32(0) - low / scale, 0, 255)))
    return scale, zero_point


def dynamic_quantize(x: np.ndarray) -> tuple[np.ndarray, np.float32, int]:
    """Quantize float ``x`` to uint8 as onnxruntime's dynamic quantization does; return
    ``(x_quantized, scale, zero_point)`` (:func:`dynamic_params`), values
    ``clip(rint(x / scale) + zero_point, 0, 255)``."""
    x = np.asarray(x, dtype=_F32)
    scale, zero_point = dynamic_params(x)
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
        #: the largest column norm (over K, the second-to-last axis)
        self.norm = (float(np.sqrt((self.f64 * self.f64).sum(axis=-2).max()))
                     if self.f64.size and self.f64.ndim >= 2 else self.max)
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


#: float32 sums of integers are exact while every partial sum stays below this (a hair under
#: 2**24, for the rounding of the bounds' own float64 arithmetic)
EXACT_F32 = float(2 ** 24) * (1 - 1e-9)
#: float32 GEMMs over slices of K that :func:`exact_product` prefers to one float64 GEMM
MAX_EXACT_SLICES = 8
_EMPTY_I32 = np.empty(0, np.int32)
_EMPTY_F32 = np.empty(0, _F32)


def integer_range(dtype: np.dtype) -> tuple[int, int]:
    """The range of an 8-bit integer type."""
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


def center_rows(a: np.ndarray, zero_point: int) -> tuple[np.ndarray, float, float]:
    """``(a - zero_point)`` of a 2-D 8-bit integer ``a`` as float32 in one compiled pass;
    return it, the largest magnitude its type allows and the largest row sum of squares."""
    a = np.ascontiguousarray(a)
    loop = quant_loops.center_rows.prepare((a.dtype, 2), int, (_F32, 2))
    out = np.empty(a.shape, _F32)
    largest = loop(a, int(zero_point), out) if a.size else 0.0
    low, high = integer_range(a.dtype)
    return out, float(max(zero_point - low, high - zero_point)), largest


def quantize_centered(x: np.ndarray, scale: np.float32, zero_point: int
                      ) -> tuple[np.ndarray, float, float]:
    """DynamicQuantizeLinear of 2-D float32 ``x`` minus its zero point, as float32, in one
    compiled pass; return it, its largest possible magnitude and largest row sum of squares."""
    x = np.ascontiguousarray(x, dtype=_F32)
    loop = quant_loops.quantize_centered_rows.prepare((_F32, 2), _F32, int, (_F32, 2))
    out = np.empty(x.shape, _F32)
    largest = loop(x, np.float32(scale), int(zero_point), out) if x.size else 0.0
    return out, float(max(zero_point, 255 - zero_point)), largest


def quantize_rows(x: np.ndarray, scale: np.float32, zero_point: int) -> np.ndarray:
    """DynamicQuantizeLinear of float32 ``x`` to uint8 in one compiled pass:
    ``clip(rint(x / scale) + zero_point, 0, 255)`` (the integer GEMM's A)."""
    x = np.ascontiguousarray(x, dtype=_F32)
    loop = quant_loops.quantize_run.prepare((_F32, 1), _F32, int, int, int, (_U8, 1))
    out = np.empty(x.shape, _U8)
    if x.size:
        loop(x.reshape(-1), np.float32(scale), int(zero_point), 0, 255, out.reshape(-1))
    return out


def exact_product(a32: np.ndarray, a_max: float, a_squares: float,
                  operand: IntegerOperand) -> np.ndarray:
    """The exact product of 2-D float32 ``a32`` (integers of magnitude at most ``a_max``,
    rows' sums of squares at most ``a_squares``) and a 2-D prepared operand: float32 when
    the bounds of the module docstring hold, else float64."""
    k = a32.shape[-1]
    if not (k and a32.size and operand.f64.size):
        return np.matmul(a32, operand.f32)
    bound = min(k * a_max * operand.max, math.sqrt(a_squares) * operand.norm)
    if bound < EXACT_F32:
        return np.matmul(a32, operand.f32)
    per_term = a_max * operand.max
    step = int(EXACT_F32 // per_term) if per_term else k
    if step >= 1 and -(-k // step) <= MAX_EXACT_SLICES:
        total = np.zeros((a32.shape[0], operand.f64.shape[-1]), _F64)
        for start in range(0, k, step):
            total += np.matmul(a32[:, start:start + step], operand.f32[start:start + step])
        return total
    return np.matmul(a32.astype(_F64), operand.f64)


def scale_bias_rows(acc: np.ndarray, multiplier: np.ndarray, bias: np.ndarray | None,
                    out: np.ndarray) -> np.ndarray:
    """MLAS's scale-bias output stage in one compiled pass: ``out = float32(acc) *
    multiplier + bias`` (multiplier per column or one value; bias per column or None)."""
    loop = quant_loops.scale_rows.prepare((acc.dtype, 2), (_F32, 1), (_F32, 1), (_F32, 2))
    bias = _EMPTY_F32 if bias is None else np.ascontiguousarray(bias, dtype=_F32).reshape(-1)
    if out.size:
        loop(acc, np.ascontiguousarray(multiplier, dtype=_F32).reshape(-1), bias, out)
    return out


def requantize_rows(acc: np.ndarray, bias: np.ndarray | None, multiplier: np.ndarray,
                    zero_point: int, out: np.ndarray) -> np.ndarray:
    """MLAS's requantize output stage in one compiled pass: ``out = saturate(rint(
    float32(acc + bias) * multiplier) + zero_point)`` (bias int32 per column or None,
    multiplier float32 per column or one value)."""
    loop = quant_loops.requantize_rows.prepare((acc.dtype, 2), (np.int32, 1), (_F32, 1), int,
                                               int, int, (out.dtype, 2))
    bias = _EMPTY_I32 if bias is None else np.ascontiguousarray(bias, dtype=np.int32).reshape(-1)
    low, high = integer_range(out.dtype)
    if out.size:
        loop(acc, bias, np.ascontiguousarray(multiplier, dtype=_F32).reshape(-1),
             int(zero_point), low, high, out)
    return out
