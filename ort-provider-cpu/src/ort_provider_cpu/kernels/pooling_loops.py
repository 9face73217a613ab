"""Compiled loops of the pooling kernels (see :mod:`ort_provider_cpu.jit`): 2-D MaxPool (with
and without Indices), AveragePool and GlobalAveragePool over planes (one image's channel) of a
C-contiguous (planes, H, W) array, and com.microsoft's quantized pools (NhwcMaxPool,
QLinearAveragePool, QLinearGlobalAveragePool). 1-D pooling runs them with H = 1.

Padding is handled inside the loops: a window tap that falls outside the image is skipped, so
no padded copy is made. Window geometry (output size, begin padding, ceil_mode) comes from
:func:`~ort_provider_cpu.kernels.windows.window_geometry`; AveragePool's divisors (with or
without count_include_pad) from the kernel's plan. MaxPool and AveragePool reduce the window's
rows first (a running max or sum over contiguous input rows, which vectorizes), then the
columns of that row buffer. Every loop takes ``start, stop``: the planes it handles, so that a
kernel can split the planes over the intra-op threads.

NaN: MaxPool skips NaN as ``numpy.fmax`` does (a window of NaN only gives NaN), as the numpy
kernel; with Indices, the first tap holding the maximum (row-major) wins, as in onnxruntime.
"""

from __future__ import annotations

import numpy as np

from ..jit import compiled


@compiled()
def max_pool_2d(x, out, kh, kw, sh, sw, dh, dw, top, left, start, stop):
    """MaxPool of planes ``[start, stop)``: ``out[p, i, j]`` is the max of the ``kh x kw``
    window at ``(i * sh - top, j * sw - left)`` with dilations ``(dh, dw)``, taps outside
    the image skipped (-inf where none is inside)."""
    height, width = x.shape[1], x.shape[2]
    out_h, out_w = out.shape[1], out.shape[2]
    row = np.empty(width, x.dtype)
    lowest = -np.inf
    # output columns whose windows lie inside the image: [inner_lo, inner_hi)
    inner_lo = min(out_w, (left + sw - 1) // sw)
    last = width - 1 - (kw - 1) * dw + left
    inner_hi = max(inner_lo, min(out_w, last // sw + 1 if last >= 0 else 0))
    for p in range(start, stop):
        for i in range(out_h):
            h0 = i * sh - top
            first = True
            for a in range(kh):
                h = h0 + a * dh
                if h < 0 or h >= height:
                    continue
                if first:
                    for w in range(width):
                        row[w] = x[p, h, w]
                    first = False
                else:
                    for w in range(width):
                        row[w] = np.fmax(row[w], x[p, h, w])
            if first:  # the window's rows are all padding
                for w in range(width):
                    row[w] = lowest
            # windows inside the image: 2 or 3 taps unrolled, else one tap at a time over
            # all of them
            o = out[p, i]
            if kw == 3:
                for j in range(inner_lo, inner_hi):
                    w = j * sw - left
                    o[j] = np.fmax(np.fmax(row[w], row[w + dw]), row[w + 2 * dw])
            elif kw == 2:
                for j in range(inner_lo, inner_hi):
                    w = j * sw - left
                    o[j] = np.fmax(row[w], row[w + dw])
            else:
                for j in range(inner_lo, inner_hi):
                    o[j] = row[j * sw - left]
                for b in range(1, kw):
                    offset = b * dw - left
                    for j in range(inner_lo, inner_hi):
                        o[j] = np.fmax(o[j], row[j * sw + offset])
            for j in range(out_w):
                if inner_lo <= j < inner_hi:
                    continue
                w0 = j * sw - left
                best = lowest
                taken = False
                for b in range(kw):
                    w = w0 + b * dw
                    if w < 0 or w >= width:
                        continue
                    best = np.fmax(best, row[w]) if taken else row[w]
                    taken = True
                out[p, i, j] = best


@compiled()
def max_pool_2d_indices(x, out, indices, kh, kw, sh, sw, dh, dw, top, left, stride_h,
                        stride_w, start, stop):
    """MaxPool of planes ``[start, stop)`` with Indices: as :func:`max_pool_2d`, and
    ``indices[p, i, j]`` is the flat input index ``p * H * W + h * stride_h + w * stride_w``
    of the first tap (row-major) holding the maximum (of the window's first tap where no
    tap is inside)."""
    height, width = x.shape[1], x.shape[2]
    out_h, out_w = out.shape[1], out.shape[2]
    plane = height * width
    for p in range(start, stop):
        base = p * plane
        for i in range(out_h):
            h0 = i * sh - top
            for j in range(out_w):
                w0 = j * sw - left
                best = -np.inf
                where = base + h0 * stride_h + w0 * stride_w
                taken = False
                for a in range(kh):
                    h = h0 + a * dh
                    if h < 0 or h >= height:
                        continue
                    for b in range(kw):
                        w = w0 + b * dw
                        if w < 0 or w >= width:
                            continue
                        v = x[p, h, w]
                        if not taken or v > best or (best != best and v == v):
                            best = v
                            where = base + h * stride_h + w * stride_w
                            taken = True
                out[p, i, j] = best
                indices[p, i, j] = where


@compiled()
def average_pool_2d(x, out, counts, kh, kw, sh, sw, dh, dw, top, left, start, stop):
    """AveragePool of planes ``[start, stop)``: the sum (in X's type) of each window's taps
    inside the image divided by ``counts[i, j]`` (the tap count the node divides by)."""
    height, width = x.shape[1], x.shape[2]
    out_h, out_w = out.shape[1], out.shape[2]
    row = np.empty(width, x.dtype)
    # output columns whose windows lie inside the image: [inner_lo, inner_hi)
    inner_lo = min(out_w, (left + sw - 1) // sw)
    last = width - 1 - (kw - 1) * dw + left
    inner_hi = max(inner_lo, min(out_w, last // sw + 1 if last >= 0 else 0))
    for p in range(start, stop):
        for i in range(out_h):
            h0 = i * sh - top
            for w in range(width):
                row[w] = 0
            for a in range(kh):
                h = h0 + a * dh
                if h < 0 or h >= height:
                    continue
                for w in range(width):
                    row[w] += x[p, h, w]
            o = out[p, i]
            if kw == 3:
                for j in range(inner_lo, inner_hi):
                    w = j * sw - left
                    o[j] = row[w] + row[w + dw] + row[w + 2 * dw]
            elif kw == 2:
                for j in range(inner_lo, inner_hi):
                    w = j * sw - left
                    o[j] = row[w] + row[w + dw]
            else:
                for j in range(inner_lo, inner_hi):
                    o[j] = row[j * sw - left]
                for b in range(1, kw):
                    offset = b * dw - left
                    for j in range(inner_lo, inner_hi):
                        o[j] += row[j * sw + offset]
            for j in range(out_w):
                if inner_lo <= j < inner_hi:
                    continue
                w0 = j * sw - left
                out[p, i, j] = 0
                for b in range(kw):
                    w = w0 + b * dw
                    if 0 <= w < width:
                        out[p, i, j] += row[w]
            for j in range(out_w):
                out[p, i, j] /= counts[i, j]


@compiled(fastmath={"reassoc", "contract", "nsz"})
def global_average(x, out, start, stop):
    """GlobalAveragePool of rows ``[start, stop)`` of the (planes, size) array ``x``: each
    row's mean (summed in float64) into ``out[p]``."""
    size = x.shape[1]
    for p in range(start, stop):
        total = 0.0
        for k in range(size):
            total += x[p, k]
        out[p] = total / size


# --------------------------------------------------------------------------------------------
# quantized pools (com.microsoft QLinearAveragePool, QLinearGlobalAveragePool, NhwcMaxPool)
# --------------------------------------------------------------------------------------------


@compiled()
def max_pool_nhwc(x, out, kh, kw, sh, sw, dh, dw, top, left, lowest, start, stop):
    """MaxPool of the (N, H, W, C) array ``x`` into (N, Ho, Wo, C) ``out``, output rows
    ``[start, stop)`` of the N * Ho: a running max over the window's taps inside the image,
    all channels at once (``lowest`` where no tap is inside)."""
    height, width, channels = x.shape[1], x.shape[2], x.shape[3]
    out_h, out_w = out.shape[1], out.shape[2]
    for q in range(start, stop):
        n, i = q // out_h, q % out_h
        h0 = i * sh - top
        for j in range(out_w):
            w0 = j * sw - left
            taken = False
            for a in range(kh):
                h = h0 + a * dh
                if h < 0 or h >= height:
                    continue
                for b in range(kw):
                    w = w0 + b * dw
                    if w < 0 or w >= width:
                        continue
                    if taken:
                        for c in range(channels):
                            v = x[n, h, w, c]
                            out[n, i, j, c] = v if v > out[n, i, j, c] else out[n, i, j, c]
                    else:
                        for c in range(channels):
                            out[n, i, j, c] = x[n, h, w, c]
                        taken = True
            if not taken:
                for c in range(channels):
                    out[n, i, j, c] = lowest


@compiled()
def qlinear_average_pool_2d(x, out, counts, kh, kw, sh, sw, top, left, x_scale, x_zero,
                            y_scale, y_zero, low, high, start, stop):
    """QLinearAveragePool of planes ``[start, stop)`` of the quantized (planes, H, W) ``x``,
    as onnxruntime computes it: each tap inside the image dequantized to float32
    (``x_scale * (x - x_zero)``) and summed in float32 in row-major tap order, divided by
    ``counts[i, j]``, then ``round_half_even(mean / y_scale + y_zero)`` saturated to
    ``[low, high]``."""
    height, width = x.shape[1], x.shape[2]
    out_h, out_w = out.shape[1], out.shape[2]
    zero_point = np.float32(y_zero)
    for p in range(start, stop):
        for i in range(out_h):
            h0 = i * sh - top
            for j in range(out_w):
                w0 = j * sw - left
                total = np.float32(0.0)
                for a in range(kh):
                    h = h0 + a
                    if h < 0 or h >= height:
                        continue
                    for b in range(kw):
                        w = w0 + b
                        if 0 <= w < width:
                            total += x_scale * np.float32(np.int32(x[p, h, w]) - x_zero)
                value = total / counts[i, j] / y_scale + zero_point
                rounded = np.rint(np.float64(value))
                if not abs(rounded) < 2147483648.0:  # MLAS: NaN, beyond int32 -> INT32_MIN
                    rounded = -2147483648.0
                out[p, i, j] = min(max(rounded, low), high)


@compiled()
def qlinear_global_average(x, out, x_zero, scale, y_zero, low, high, start, stop):
    """QLinearGlobalAveragePool of rows ``[start, stop)`` of the quantized (planes, size)
    ``x`` (MLAS' integer path): ``round_half_even(float32(sum - x_zero * size) * scale) +
    y_zero`` saturated to ``[low, high]``, ``scale`` being x_scale / (y_scale * size) in
    float32."""
    size = x.shape[1]
    for p in range(start, stop):
        total = 0
        for k in range(size):
            total += np.int64(x[p, k])
        value = np.float32(total - x_zero * size) * scale
        rounded = np.rint(np.float64(value)) + y_zero
        if not abs(rounded) < 2147483648.0:  # MLAS: NaN, beyond int32 -> INT32_MIN
            rounded = -2147483648.0
        out[p] = min(max(rounded, low), high)
