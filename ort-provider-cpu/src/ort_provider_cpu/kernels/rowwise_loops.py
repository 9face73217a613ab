"""Compiled loops of the row-wise ops: Softmax/LogSoftmax and the layer normalizations
(LayerNormalization, SimplifiedLayerNormalization, RMSNormalization and com.microsoft's Skip
forms), one row at a time while it is in cache (see :mod:`ort_provider_cpu.jit`).

Every loop takes ``start, stop``: the rows it handles, so that a kernel can split a tensor's
rows over the intra-op threads (:func:`ort_provider_cpu.intra_op.split_work`).

Numerics, as onnxruntime's CPU kernels compute them:

* float32 softmax uses an exp of its own (Cody-Waite range reduction and a degree-7
  polynomial, ~1 ulp, as MLAS' vectorized exp; libm's scalar ``expf`` would take 4x as long)
  and sums in float32 vector lanes (MLAS does too); the row is then multiplied by 1 / sum.
  exp(t) below float32's normal range (t < -87.34) is 0.
  float64 uses libm's exp. NaN anywhere in a row makes the whole row NaN (as numpy's path);
* the normalizations accumulate their statistics in float64 (onnxruntime's float32 sum of x
  and x^2 is a little less exact: both agree to float32 rounding), two passes over the row
  (mean, then centred squares), and write ``(x - mean) * inv_std * scale + bias`` in X's type.

The loops are compiled with ``reassoc``/``contract``/``nsz`` only: sums vectorize, while
NaN and infinity still propagate as IEEE says.
"""

from __future__ import annotations

import math

import numpy as np

from ..jit import compiled

#: fast-math flags of these loops: vectorized sums, IEEE NaN/inf kept
ROW_FLAGS = {"reassoc", "contract", "nsz"}


@compiled(fastmath=ROW_FLAGS)
def softmax_rows_f32(x, out, start, stop, log):
    """Softmax (``log``: LogSoftmax) of rows ``[start, stop)`` of the float32 (rows, width)
    array ``x`` into ``out`` (which may be ``x``)."""
    width = x.shape[1]
    for r in range(start, stop):
        # row max in eight accumulators (a single running max does not vectorize)
        a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = x[r, 0]
        j = 0
        while j + 8 <= width:
            v = x[r, j]
            a0 = v if v > a0 else a0
            v = x[r, j + 1]
            a1 = v if v > a1 else a1
            v = x[r, j + 2]
            a2 = v if v > a2 else a2
            v = x[r, j + 3]
            a3 = v if v > a3 else a3
            v = x[r, j + 4]
            a4 = v if v > a4 else a4
            v = x[r, j + 5]
            a5 = v if v > a5 else a5
            v = x[r, j + 6]
            a6 = v if v > a6 else a6
            v = x[r, j + 7]
            a7 = v if v > a7 else a7
            j += 8
        peak = max(max(max(a0, a1), max(a2, a3)), max(max(a4, a5), max(a6, a7)))
        for k in range(j, width):
            v = x[r, k]
            peak = v if v > peak else peak
        total = np.float32(0.0)
        for k in range(width):
            t = x[r, k] - peak
            if log:
                out[r, k] = t
            # exp(t) for t <= 0: t = n ln2 + f, |f| <= ln2 / 2, exp(t) = 2^n * p(f)
            tiny = t < np.float32(-87.33654)  # below float32's normal range: 0
            c = t if not tiny else np.float32(-87.33654)
            n = np.rint(c * np.float32(1.4426950408889634))
            f = c - n * np.float32(0.693145751953125) - n * np.float32(1.428606765330187e-06)
            p = np.float32(1.9841269841269841e-04)
            p = p * f + np.float32(1.3888888888888889e-03)
            p = p * f + np.float32(8.3333333333333332e-03)
            p = p * f + np.float32(4.1666666666666664e-02)
            p = p * f + np.float32(1.6666666666666666e-01)
            p = p * f + np.float32(0.5)
            p = p * f + np.float32(1.0)
            p = p * f + np.float32(1.0)
            scale = np.int32((np.int32(n) + np.int32(127)) << np.int32(23)).view(np.float32)
            e = p * scale if not tiny else np.float32(0.0)
            if not log:
                out[r, k] = e
            total += e
        if log:
            shift = np.float32(math.log(total))
            for k in range(width):
                out[r, k] -= shift
        else:
            inverse = np.float32(1.0) / total
            for k in range(width):
                out[r, k] *= inverse


@compiled(fastmath=ROW_FLAGS)
def softmax_rows_exact(x, out, start, stop, log):
    """Softmax (``log``: LogSoftmax) of rows ``[start, stop)`` of the (rows, width) array
    ``x`` into ``out`` with libm's exp (float64)."""
    width = x.shape[1]
    for r in range(start, stop):
        a0 = a1 = a2 = a3 = x[r, 0]
        j = 0
        while j + 4 <= width:
            v = x[r, j]
            a0 = v if v > a0 else a0
            v = x[r, j + 1]
            a1 = v if v > a1 else a1
            v = x[r, j + 2]
            a2 = v if v > a2 else a2
            v = x[r, j + 3]
            a3 = v if v > a3 else a3
            j += 4
        peak = max(max(a0, a1), max(a2, a3))
        for k in range(j, width):
            v = x[r, k]
            peak = v if v > peak else peak
        total = 0.0
        for k in range(width):
            t = x[r, k] - peak
            e = math.exp(t)
            out[r, k] = t if log else e
            total += e
        if log:
            shift = math.log(total)
            for k in range(width):
                out[r, k] -= shift
        else:
            inverse = 1.0 / total
            for k in range(width):
                out[r, k] *= inverse


@compiled(fastmath=ROW_FLAGS)
def layer_norm_rows(x, scale, bias, out, mean, inv_std, start, stop, epsilon, simplified):
    """LayerNormalization of rows ``[start, stop)`` of the (rows, width) array ``x`` into
    ``out`` (may be ``x``): ``(x - mean) * inv_std * scale + bias`` with statistics in float64;
    ``simplified`` is RMS normalization (no mean, no bias: ``x * inv_std * scale``). Writes
    each row's mean (0 when simplified) and 1 / sqrt(var + epsilon) into ``mean``/``inv_std``
    (of X's type)."""
    width = x.shape[1]
    for r in range(start, stop):
        centre = 0.0
        if not simplified:
            total = 0.0
            for k in range(width):
                total += x[r, k]
            centre = total / width
        squares = 0.0
        for k in range(width):
            d = x[r, k] - centre
            squares += d * d
        inverse = 1.0 / math.sqrt(squares / width + epsilon)
        mean[r] = centre  # rounded to X's type: the values the row is normalized with
        inv_std[r] = inverse
        m = mean[r]
        s = inv_std[r]
        if simplified:
            for k in range(width):
                out[r, k] = x[r, k] * s * scale[k]
        else:
            for k in range(width):
                out[r, k] = (x[r, k] - m) * s * scale[k] + bias[k]


@compiled(fastmath=ROW_FLAGS)
def skip_layer_norm_rows(x, skip, bias, gamma, beta, out, summed, mean, inv_std, start, stop,
                         epsilon, simplified, want_sum):
    """com.microsoft SkipLayerNormalization (``simplified``: SkipSimplifiedLayerNormalization)
    of rows ``[start, stop)``: ``t = x + skip + bias`` (skip row ``r % len(skip)``: a skip
    without the batch broadcasts), ``summed[r] = t`` when ``want_sum``, then ``t`` normalized
    into ``out`` as :func:`layer_norm_rows` does with ``gamma``/``beta``."""
    width = x.shape[1]
    skip_rows = skip.shape[0]
    for r in range(start, stop):
        sr = r % skip_rows
        for k in range(width):
            out[r, k] = x[r, k] + skip[sr, k] + bias[k]
        if want_sum:
            for k in range(width):
                summed[r, k] = out[r, k]
        centre = 0.0
        if not simplified:
            total = 0.0
            for k in range(width):
                total += out[r, k]
            centre = total / width
        squares = 0.0
        for k in range(width):
            d = out[r, k] - centre
            squares += d * d
        inverse = 1.0 / math.sqrt(squares / width + epsilon)
        mean[r] = centre  # rounded to X's type: the values the row is normalized with
        inv_std[r] = inverse
        m = mean[r]
        s = inv_std[r]
        if simplified:
            for k in range(width):
                out[r, k] = out[r, k] * s * gamma[k]
        else:
            for k in range(width):
                out[r, k] = (out[r, k] - m) * s * gamma[k] + beta[k]
