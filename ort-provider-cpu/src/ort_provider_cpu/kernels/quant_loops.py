"""Compiled loops of the quantized kernels (:mod:`.quantize`, :mod:`.contrib_quant`): one pass
each where numpy needs four to a dozen.

* :func:`quantize_blocks` / :func:`dequantize_blocks`: QuantizeLinear / DequantizeLinear of a
  tensor seen as ``(outer, axis, inner)`` with a scale and zero point of shape
  ``(outer or 1, blocks, inner or 1)``; element ``a`` of the axis reads block
  ``a // block`` (per tensor: one block; per axis: block 1).
* :func:`min_max`: the range of a float32 tensor (DynamicQuantizeLinear).
* :func:`center_planes` / :func:`center_rows`: integers minus their zero point as float32,
  the operand of the float BLAS that computes integer products exactly, with the sums of
  squares that bound those products (see :mod:`.contrib_quant_common`).
* :func:`quantize_centered_rows`: DynamicQuantizeLinear's quantization straight into the
  centered float32 operand (DynamicQuantizeMatMul).
* :func:`requantize_planes` / :func:`requantize_rows`: the integer accumulator (plus an int32
  bias), times a float32 multiplier per channel, rounded half to even, plus the zero point,
  saturated: MLAS' requantize output stage.
* :func:`scale_rows`: MLAS' scale-bias output stage (float results).

Rounding is ``np.rint`` (half to even, LLVM's ``rint``), arithmetic in float32 where the
numpy kernels use float32, so both paths give the same bits.
"""

from __future__ import annotations

import numpy as np

from ..jit import compiled


@compiled()
def quantize_run(x, scale, zero_point, low, high, out):
    """out[k] = clip(rint(x[k] / scale) + zero_point, low, high), NaN -> low as onnxruntime
    (float32 arithmetic; written as selects so that LLVM vectorizes it)."""
    zp = np.float32(zero_point)
    lo = np.float32(low)
    hi = np.float32(high)
    for k in range(x.shape[0]):
        v = np.rint(x[k] / scale) + zp
        v = v if v >= lo else lo  # NaN fails the test: low
        v = v if v <= hi else hi
        out[k] = v


@compiled()
def quantize_blocks(x, scale, zero_point, block, low, high, out):
    """QuantizeLinear of ``x`` seen as (outer, axis, inner) with the scale and zero point of
    element ``[o, a, i]`` at ``[o', a // block, i']`` (o' and i' are 0 where the parameter's
    dim is 1): :func:`quantize_run` per run of ``inner`` elements."""
    outer, length, inner = x.shape
    s_outer = scale.shape[0] > 1
    s_inner = scale.shape[2] > 1
    lo = np.float32(low)
    hi = np.float32(high)
    for o in range(outer):
        so = o if s_outer else 0
        for a in range(length):
            b = a // block
            source = x[o, a]
            target = out[o, a]
            if s_inner:
                for i in range(inner):
                    v = np.rint(source[i] / scale[so, b, i]) + np.float32(zero_point[so, b, i])
                    v = v if v >= lo else lo
                    v = v if v <= hi else hi
                    target[i] = v
            else:
                s = scale[so, b, 0]
                z = np.float32(zero_point[so, b, 0])
                for i in range(inner):
                    v = np.rint(source[i] / s) + z
                    v = v if v >= lo else lo
                    v = v if v <= hi else hi
                    target[i] = v


@compiled()
def dequantize_run(x, scale, zero_point, out):
    """out[k] = float32(int32(x[k]) - zero_point) * scale."""
    z = np.int32(zero_point)
    for k in range(x.shape[0]):
        out[k] = np.float32(np.int32(x[k]) - z) * scale


@compiled()
def dequantize_blocks(x, scale, zero_point, block, out):
    """DequantizeLinear of ``x`` seen as (outer, axis, inner): ``float32(int32(x) - zp) *
    scale`` with the parameters of :func:`quantize_blocks`' layout."""
    outer, length, inner = x.shape
    s_outer = scale.shape[0] > 1
    s_inner = scale.shape[2] > 1
    for o in range(outer):
        so = o if s_outer else 0
        for a in range(length):
            b = a // block
            source = x[o, a]
            target = out[o, a]
            if s_inner:
                for i in range(inner):
                    shifted = np.int32(source[i]) - np.int32(zero_point[so, b, i])
                    target[i] = np.float32(shifted) * scale[so, b, i]
            else:
                s = scale[so, b, 0]
                z = np.int32(zero_point[so, b, 0])
                for i in range(inner):
                    target[i] = np.float32(np.int32(source[i]) - z) * s


@compiled(fastmath={"nnan", "ninf", "nsz"})
def min_max(x):
    """(min, max) of a non-empty float32 vector (NaN-free data: the vectorized reduction)."""
    low = x[0]
    high = x[0]
    for v in x:
        low = min(low, v)
        high = max(high, v)
    return low, high


@compiled()
def has_nan(x):
    """Whether a float32 vector holds a NaN."""
    for v in x:
        if v != v:
            return True
    return False


@compiled()
def center_planes(x, zero_point, out, squares):
    """out[n, c, p] = x - zero_point (float32); squares[n, p] = sum over c of out**2;
    return the largest of the squares (bounds any window's sum of squares per tap)."""
    images, channels, positions = x.shape
    largest = 0.0
    for n in range(images):
        for p in range(positions):
            squares[n, p] = 0.0
        for c in range(channels):
            for p in range(positions):
                v = np.float32(np.int32(x[n, c, p]) - zero_point)
                out[n, c, p] = v
                squares[n, p] += np.float64(v * v)
        for p in range(positions):
            largest = max(largest, squares[n, p])
    return largest


@compiled(fastmath={"reassoc"})  # the float64 sums of integer squares are exact in any order
def center_rows(x, zero_point, out):
    """out[r, k] = x - zero_point (float32); return the largest row sum of squares."""
    rows, length = x.shape
    largest = 0.0
    for r in range(rows):
        total = 0.0
        for k in range(length):
            v = np.float32(np.int32(x[r, k]) - zero_point)
            out[r, k] = v
            total += np.float64(v * v)
        largest = max(largest, total)
    return largest


@compiled(fastmath={"reassoc"})  # only the exact float64 sums of squares reorder
def quantize_centered_rows(x, scale, zero_point, out):
    """DynamicQuantizeLinear to uint8 then minus the zero point, as float32:
    out = clip(rint(x / scale) + zp, 0, 255) - zp; return the largest row sum of squares."""
    rows, length = x.shape
    zp = np.float32(zero_point)
    low = -zp
    high = np.float32(255) - zp
    largest = 0.0
    for r in range(rows):
        total = 0.0
        for k in range(length):
            v = np.rint(x[r, k] / scale)
            if v < low:
                v = low
            elif v > high:
                v = high
            out[r, k] = v
            total += np.float64(v * v)
        largest = max(largest, total)
    return largest


@compiled()
def requantize_planes(acc, bias, multiplier, zero_point, low, high, out):
    """out[n, m, p] = clip(rint(float32(acc + bias[m]) * multiplier[m]) + zp, low, high):
    ``acc`` holds exact integers (float32 or float64); an empty ``bias`` is none; a
    one-element multiplier is per tensor. ``acc + bias`` is summed in float64, exact below
    2**53 as the int64 sum is, and vectorizes (the int64 conversions did not: 1.5x slower)."""
    images, channels, positions = acc.shape
    with_bias = bias.shape[0] > 0
    per_channel = multiplier.shape[0] > 1
    for n in range(images):
        for m in range(channels):
            extra = np.float64(bias[m]) if with_bias else np.float64(0)
            scale = multiplier[m] if per_channel else multiplier[0]
            for p in range(positions):
                v = np.rint(np.float32(np.float64(acc[n, m, p]) + extra) * scale) + zero_point
                if v < low:
                    v = low
                elif v > high:
                    v = high
                out[n, m, p] = v


@compiled()
def requantize_rows(acc, bias, multiplier, zero_point, low, high, out):
    """out[r, c] = clip(rint(float32(acc + bias[c]) * multiplier[c]) + zp, low, high) (a
    one-element multiplier is per tensor, an empty bias none)."""
    rows, columns = acc.shape
    with_bias = bias.shape[0] > 0
    per_column = multiplier.shape[0] > 1
    for r in range(rows):
        for c in range(columns):
            extra = np.int64(bias[c]) if with_bias else np.int64(0)
            scale = multiplier[c] if per_column else multiplier[0]
            v = np.rint(np.float32(np.int64(acc[r, c]) + extra) * scale) + zero_point
            if v < low:
                v = low
            elif v > high:
                v = high
            out[r, c] = v


@compiled()
def scale_rows(acc, multiplier, bias, out):
    """out[r, c] = float32(acc[r, c]) * multiplier[c] + bias[c] in float32 (a one-element
    multiplier is per tensor, an empty bias none)."""
    rows, columns = acc.shape
    with_bias = bias.shape[0] > 0
    per_column = multiplier.shape[0] > 1
    for r in range(rows):
        for c in range(columns):
            v = np.float32(acc[r, c]) * (multiplier[c] if per_column else multiplier[0])
            if with_bias:
                v += bias[c]
            out[r, c] = v


@compiled(fastmath={"contract"})
def qlinear_add_same(p, q, rp, rq, fixed, low, high, out):
    """MLAS's QLinearAdd of two same-shape 8-bit vectors: ``p * rp + (q * rq + fixed)``,
    each step a float32 fused multiply-add (``contract`` lets LLVM emit the FMA MLAS uses;
    the numpy kernel emulates it in float64, which rounds the same but for one case in about
    2**29), rounded half to even (NaN and values beyond int32 become INT32_MIN, so the low
    end), saturated."""
    lo = np.float32(low)
    hi = np.float32(high)
    for i in range(p.shape[0]):
        inner = np.float32(q[i]) * rq + fixed
        v = np.rint(np.float32(p[i]) * rp + inner)
        v = v if abs(v) < np.float32(2147483648.0) else lo
        v = v if v >= lo else lo
        v = v if v <= hi else hi
        out[i] = v
