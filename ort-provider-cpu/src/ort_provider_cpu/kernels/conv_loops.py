"""Compiled loops of the Conv kernels (see :mod:`ort_provider_cpu.jit`; :mod:`.conv_compiled`
calls them): the depthwise convolution with its padding handled in the loop, the direct
convolution of small convs, the im2col copy,
the epilogue (bias, FusedConv's Z and activation in one pass) and the Winograd F(2x2, 3x3)
input and output transforms.

Loops that finish outputs take the activation as a code (:data:`ACTIVATIONS`) and two
parameters; the depthwise loop works on a range ``[start, stop)`` of images x channels so that
:func:`~ort_provider_cpu.intra_op.split_work` can hand pieces of one call to threads. Indices
are unsigned where they can be (numba's negative-index checks stop LLVM from vectorizing).
Nothing here imports numba: the functions are plain Python until a kernel prepares them.
"""

from __future__ import annotations

import math

import numpy as np

from ..jit import compiled, compiled_helper

__all__ = ["ACTIVATIONS", "activation_code", "activation_copy", "depthwise_conv2d", "direct_conv2d", "epilogue_rows",
           "im2col_rows", "winograd_input", "winograd_output"]

#: activation name -> code the loops take (parameters: Clip min/max, LeakyRelu alpha,
#: HardSigmoid alpha/beta)
ACTIVATIONS = {"": 0, "Identity": 0, "Relu": 1, "Clip": 2, "LeakyRelu": 3, "Sigmoid": 4,
               "HardSigmoid": 5, "Tanh": 6, "HardSwish": 7}
#: activations numpy's vectorized exp and tanh compute faster than a scalar loop (3-12 ns a
#: value here): the kernels apply them with numpy after the loop
_NUMPY_FASTER = ("Sigmoid", "Tanh")


def activation_code(name: str) -> int | None:
    """The loops' code of FusedConv's activation ``name`` (None: the kernel applies it with
    numpy after the loop)."""
    return None if name in _NUMPY_FASTER else ACTIVATIONS.get(name)


@compiled_helper
def _activate(v, act, a0, a1):
    """Activation ``act`` (see :data:`ACTIVATIONS`) of one value, in its type; NaN stays NaN
    as in numpy's kernels."""
    zero = type(v)(0)
    one = type(v)(1)
    if act == 1:
        return zero if v < zero else v
    if act == 2:
        lo = type(v)(a0)
        hi = type(v)(a1)
        if v < lo:
            v = lo
        if v > hi:
            v = hi
        return v
    if act == 3:
        return v * type(v)(a0) if v < zero else v
    if act == 4:
        e = math.exp(-abs(v))
        r = one / (one + e)
        return r * e if v < zero else r
    if act == 5:
        v = v * type(v)(a0) + type(v)(a1)
        if v < zero:
            v = zero
        if v > one:
            v = one
        return v
    if act == 6:
        return math.tanh(v)
    if act == 7:
        g = v / type(v)(6) + type(v)(0.5)
        if g < zero:
            g = zero
        if g > one:
            g = one
        return v * g
    return v


@compiled_helper
def _activate_run(v, lo, hi, act, a0, a1):
    """v[lo:hi] = act(v[lo:hi]) in place (v 1-D): one loop per activation, so that the
    piecewise-linear ones vectorize."""
    if act == 1:
        for k in range(lo, hi):
            v[k] = _activate(v[k], 1, a0, a1)
    elif act == 2:
        for k in range(lo, hi):
            v[k] = _activate(v[k], 2, a0, a1)
    elif act == 3:
        for k in range(lo, hi):
            v[k] = _activate(v[k], 3, a0, a1)
    elif act == 4:
        for k in range(lo, hi):
            v[k] = _activate(v[k], 4, a0, a1)
    elif act == 5:
        for k in range(lo, hi):
            v[k] = _activate(v[k], 5, a0, a1)
    elif act == 6:
        for k in range(lo, hi):
            v[k] = _activate(v[k], 6, a0, a1)
    elif act == 7:
        for k in range(lo, hi):
            v[k] = _activate(v[k], 7, a0, a1)


@compiled()
def activation_copy(x, y, act, a0, a1):
    """``y = act(x)`` for 1-D arrays of one length (the piecewise-linear activations the
    standalone activation kernels run in one pass: Clip, LeakyRelu, HardSigmoid, HardSwish;
    one loop per activation so that each vectorizes)."""
    n = x.shape[0]
    if act == 2:
        for k in range(n):
            y[k] = _activate(x[k], 2, a0, a1)
    elif act == 3:
        for k in range(n):
            y[k] = _activate(x[k], 3, a0, a1)
    elif act == 5:
        for k in range(n):
            y[k] = _activate(x[k], 5, a0, a1)
    elif act == 7:
        for k in range(n):
            y[k] = _activate(x[k], 7, a0, a1)
    else:
        for k in range(n):
            y[k] = _activate(x[k], act, a0, a1)


@compiled_helper
def _paired_columns(copies, k):
    """Whether copies k and k+1 fill two column phases from the same input rows, starting at
    neighbouring columns (stride 2: one pass can read both)."""
    if k + 1 >= copies.shape[0]:
        return False
    return (copies[k + 1, 1] == copies[k, 1] and copies[k + 1, 2] == copies[k, 2]
            and copies[k + 1, 5] == copies[k, 5] and abs(copies[k + 1, 6] - copies[k, 6]) == 1
            and abs(copies[k + 1, 4] - copies[k, 4]) <= 1)


@compiled_helper
def _fill_phases(xf, xbase, buf, copies, plane, plane_cols, width, sh, sw):
    """Copy one plane of X (flat ``xf`` from ``xbase``) into its stride phases in ``buf``,
    as :func:`depthwise_conv2d`'s ``copies`` say."""
    uw = np.uint64(plane_cols)
    usw = np.uint64(sw)
    one = np.uint64(1)
    two = np.uint64(2)
    k = 0
    while k < copies.shape[0]:
        if sw == 2 and _paired_columns(copies, k):
            # stride 2: phases k and k+1 take the even and odd columns of the same input
            # rows, one pass reads both (LLVM deinterleaves with shuffles, not gathers)
            e = k if copies[k, 6] < copies[k + 1, 6] else k + 1
            o = 2 * k + 1 - e
            de = np.uint64(copies[e, 0] * plane + copies[e, 1] * plane_cols + copies[e, 3])
            do = np.uint64(copies[o, 0] * plane + copies[o, 1] * plane_cols + copies[o, 3])
            ce = copies[e, 4]
            co = copies[o, 4]
            both = np.uint64(min(ce, co))
            src = xbase + np.uint64(copies[e, 5] * width + copies[e, 6])
            for r in range(copies[k, 2]):
                d1 = de + np.uint64(r) * uw
                d2 = do + np.uint64(r) * uw
                s = src + np.uint64(r * sh * width)
                for q in range(both):
                    buf[d1 + q] = xf[s + two * q]
                    buf[d2 + q] = xf[s + two * q + one]
                if ce > co:
                    buf[d1 + both] = xf[s + two * both]
                elif co > ce:
                    buf[d2 + both] = xf[s + two * both + one]
            k += 2
            continue
        dst = np.uint64(copies[k, 0] * plane + copies[k, 1] * plane_cols + copies[k, 3])
        cols = np.uint64(copies[k, 4])
        src = xbase + np.uint64(copies[k, 5] * width + copies[k, 6])
        for r in range(copies[k, 2]):
            d = dst + np.uint64(r) * uw
            s = src + np.uint64(r * sh * width)
            if sw == 1:
                for q in range(cols):
                    buf[d + q] = xf[s + q]
            else:
                for q in range(cols):
                    buf[d + q] = xf[s + q * usw]
        k += 1


@compiled_helper
def _sum_taps(buf, ext, taps, weights, c, run):
    """``ext[q] = sum over taps t of weights[c, t] * buf[taps[t] + q]`` for q < ``run``: nine
    taps summed in registers, others in one pass each."""
    tap_count = taps.shape[0]
    if tap_count == 9:
        t0, t1, t2 = np.uint64(taps[0]), np.uint64(taps[1]), np.uint64(taps[2])
        t3, t4, t5 = np.uint64(taps[3]), np.uint64(taps[4]), np.uint64(taps[5])
        t6, t7, t8 = np.uint64(taps[6]), np.uint64(taps[7]), np.uint64(taps[8])
        w0, w1, w2 = weights[c, 0], weights[c, 1], weights[c, 2]
        w3, w4, w5 = weights[c, 3], weights[c, 4], weights[c, 5]
        w6, w7, w8 = weights[c, 6], weights[c, 7], weights[c, 8]
        for q in range(run):
            ext[q] = (w0 * buf[t0 + q] + w1 * buf[t1 + q] + w2 * buf[t2 + q]
                      + w3 * buf[t3 + q] + w4 * buf[t4 + q] + w5 * buf[t5 + q]
                      + w6 * buf[t6 + q] + w7 * buf[t7 + q] + w8 * buf[t8 + q])
    else:
        t = np.uint64(taps[0])
        wv = weights[c, 0]
        for q in range(run):
            ext[q] = wv * buf[t + q]
        for k in range(1, tap_count):
            t = np.uint64(taps[k])
            wv = weights[c, k]
            for q in range(run):
                ext[q] += wv * buf[t + q]


@compiled_helper
def _phase_buffers(phases, plane, run, pad, like):
    """:func:`depthwise_conv2d`'s work buffers in ``like``'s type: the stride phases of one
    plane (``phases * plane`` values, ``pad`` wherever no copy writes) and one run of sums."""
    return np.full(phases * plane, pad, like.dtype), np.empty(run, like.dtype)


@compiled()
def depthwise_conv2d(x, weights, bias, z, y, copies, taps, plane_rows, plane_cols, phases, sh,
                     sw, has_bias, has_z, act, a0, a1, pad, start, stop):
    """Depthwise 2-D convolution of units ``[start, stop)`` (unit = image * C + channel):
    ``y[i, c] = act(conv(x[i, c]) + bias[c] + z[i, c])``, padding read as ``pad`` (0; the
    quantized Conv's X zero point, with integer X converted to Y's float type as it is read).

    x (N, C, H, W), y and z (N, C, Ho, Wo), all C-contiguous (z only read when ``has_z``);
    ``weights`` (C, T) the taps' weights. The loop follows
    :class:`~ort_provider_cpu.kernels.windows.PhaseLayout`: each plane of X is copied into the
    zero-padded stride phases (``phases`` planes of ``plane_rows`` x ``plane_cols``) as
    ``copies`` says (rows of (phase, first plane row, rows, first plane column, columns,
    first input row, first input column)); tap t then reads, for every output position, one
    contiguous run starting at ``taps[t]`` of the phases, Ho rows of ``plane_cols`` values of
    which the first Wo are real. Nine taps (3x3) are summed in registers, others in one pass
    each; the epilogue keeps the real columns. Indices are unsigned: numba's negative-index
    checks would stop LLVM from vectorizing."""
    channels, height, width = x.shape[1], x.shape[2], x.shape[3]
    out_h, out_w = y.shape[2], y.shape[3]
    plane = plane_rows * plane_cols
    run = np.uint64(out_h * plane_cols)
    buf, ext = _phase_buffers(phases, plane, out_h * plane_cols, pad, y)
    xf = x.reshape(x.size)
    yf = y.reshape(y.size)
    zf = z.reshape(z.size)
    uw = np.uint64(plane_cols)
    for unit in range(start, stop):
        c = unit % channels
        _fill_phases(xf, np.uint64(unit * height * width), buf, copies, plane, plane_cols,
                     width, sh, sw)
        _sum_taps(buf, ext, taps, weights, c, run)
        b = bias[c] if has_bias else y.dtype.type(0)
        ybase = np.uint64(unit * out_h * out_w)
        uow = np.uint64(out_w)
        for oh in range(np.uint64(out_h)):
            e = oh * uw
            o = ybase + oh * uow
            if has_z:
                for q in range(uow):
                    yf[o + q] = ext[e + q] + b + zf[o + q]
            else:
                for q in range(uow):
                    yf[o + q] = ext[e + q] + b
        _activate_run(yf, ybase, ybase + np.uint64(out_h * out_w), act, a0, a1)


@compiled()
def depthwise_requantized(x, weights, bias, multiplier, y_zp, low, high, y, copies, taps,
                          plane_rows, plane_cols, phases, sh, sw, pad, start, stop):
    """:func:`depthwise_conv2d` of 8-bit ``x`` (padding read as ``pad``, X's zero point) with
    float32 centered ``weights``, each output requantized as it is written: ``y[i, c] =
    clip(rint((conv + bias[c]) * multiplier[c]) + y_zp, low, high)`` (``y`` 8-bit; the sums
    are exact integers in float32, which the caller checks, so this is MLAS's requantization
    of its int32 accumulator plus bias, bit for bit)."""
    channels, height, width = x.shape[1], x.shape[2], x.shape[3]
    out_h, out_w = y.shape[2], y.shape[3]
    plane = plane_rows * plane_cols
    run = np.uint64(out_h * plane_cols)
    buf, ext = _phase_buffers(phases, plane, out_h * plane_cols, pad, weights)
    xf = x.reshape(x.size)
    yf = y.reshape(y.size)
    uw = np.uint64(plane_cols)
    uow = np.uint64(out_w)
    zp = np.float32(y_zp)
    lo = np.float32(low)
    hi = np.float32(high)
    for unit in range(start, stop):
        c = unit % channels
        _fill_phases(xf, np.uint64(unit * height * width), buf, copies, plane, plane_cols,
                     width, sh, sw)
        _sum_taps(buf, ext, taps, weights, c, run)
        b = bias[c]
        scale = multiplier[c]
        ybase = np.uint64(unit * out_h * out_w)
        for oh in range(np.uint64(out_h)):
            e = oh * uw
            o = ybase + oh * uow
            for q in range(uow):
                v = np.rint((ext[e + q] + b) * scale) + zp
                yf[o + q] = np.int32(min(max(v, lo), hi))


@compiled()
def epilogue_rows(src, s_off, s_pitch, dst, d_off, d_pitch, z, bias, rows, columns, has_bias,
                  has_z, act, a0, a1):
    """For r < rows, k < columns: ``dst[d_off + r*d_pitch + k] = act(src[s_off + r*s_pitch + k]
    + bias[r] + z[d_off + r*d_pitch + k])`` (flat C-contiguous arrays; z, laid out as dst,
    only read when ``has_z``): Conv's bias, FusedConv's Z and activation in one pass over a
    GEMM result. ``src`` may be ``dst`` with the same offsets (in place); LLVM's vectorized
    loops would fall back to scalar ones on the overlap, so that case reads ``dst`` only."""
    n = np.uint64(columns)
    in_place = src is dst and s_off == d_off and s_pitch == d_pitch
    for r in range(rows):
        b = bias[r] if has_bias else dst.dtype.type(0)
        s = np.uint64(s_off + r * s_pitch)
        d = np.uint64(d_off + r * d_pitch)
        if in_place:
            if has_z:
                for k in range(n):
                    dst[d + k] = dst[d + k] + b + z[d + k]
            elif has_bias:
                for k in range(n):
                    dst[d + k] = dst[d + k] + b
        elif has_z:
            for k in range(n):
                dst[d + k] = src[s + k] + b + z[d + k]
        else:
            for k in range(n):
                dst[d + k] = src[s + k] + b
        _activate_run(dst, d, d + n, act, a0, a1)


@compiled()
def im2col_rows(x, cols, col0, out_w, kh_, kw_, sh, sw, dh, dw, top, left, row0, row1):
    """im2col columns of one image (or group of it) for output rows ``[row0, row1)`` of width
    ``out_w``: ``cols[(c, kh, kw), col0 + (oh - row0) * out_w + ow] = x[c, oh*sh - top + kh*dh,
    ow*sw - left + kw*dw]``, zero outside x (no padded copy). x (C, H, W) and cols
    (C * KH * KW, columns) C-contiguous."""
    channels, height, width = x.shape
    total = np.uint64(cols.shape[1])
    xf = x.reshape(x.size)
    cf = cols.reshape(cols.size)
    usw = np.uint64(sw)
    uow = np.uint64(out_w)
    for c in range(channels):
        for kh in range(kh_):
            for kw in range(kw_):
                r = np.uint64((c * kh_ + kh) * kw_ + kw)
                off = kw * dw - left
                lo = (-off + sw - 1) // sw if off < 0 else 0
                hi = (width - 1 - off) // sw + 1 if width - 1 - off >= 0 else 0
                lo = np.uint64(min(lo, out_w))
                hi = np.uint64(max(lo, min(hi, out_w)))
                for oh in range(row0, row1):
                    d = r * total + np.uint64(col0 + (oh - row0) * out_w)
                    ih = oh * sh - top + kh * dh
                    if ih < 0 or ih >= height:
                        for q in range(uow):
                            cf[d + q] = 0
                        continue
                    for q in range(lo):
                        cf[d + q] = 0
                    s = np.uint64((c * height + ih) * width + lo * sw + off)
                    if sw == 1:
                        for q in range(hi - lo):
                            cf[d + lo + q] = xf[s + q]
                    else:
                        for q in range(hi - lo):
                            cf[d + lo + q] = xf[s + q * usw]
                    for q in range(hi, uow):
                        cf[d + q] = 0


@compiled()
def winograd_input(xpad, v, n0, n1, i0, i1, tiles_w):
    """Winograd F(2x2, 3x3) input transform of tile rows ``[i0, i1)`` of images ``[n0, n1)``:
    for every channel c and 2x2 output tile t (images, tile rows, tile columns), the 4x4
    patch d of the zero-padded input at rows 2i.., columns 2j.. becomes ``v[c, xi, t] =
    (B^T d B)[xi]``. xpad (N, C, 2*tiles_h + 2, 2*tiles_w + 2) and v (C, 16, tiles)
    C-contiguous (the GEMM reads it as (16, C, tiles): 16 planes C * tiles apart would be a
    multiple of 4 KiB apart for common shapes, and the 16 streams would thrash the same cache
    sets)."""
    channels = xpad.shape[1]
    per_image = (i1 - i0) * tiles_w
    for c in range(channels):
        for n in range(n0, n1):
            for i in range(i0, i1):
                r0 = xpad[n, c, 2 * i]
                r1 = xpad[n, c, 2 * i + 1]
                r2 = xpad[n, c, 2 * i + 2]
                r3 = xpad[n, c, 2 * i + 3]
                t0 = np.uint64((n - n0) * per_image + (i - i0) * tiles_w)
                for j in range(np.uint64(tiles_w)):
                    b = j * np.uint64(2)
                    # rows: B^T d (t_k = combinations of the patch rows), per column q
                    a0 = r0[b] - r2[b]
                    a1 = r0[b + 1] - r2[b + 1]
                    a2 = r0[b + 2] - r2[b + 2]
                    a3 = r0[b + 3] - r2[b + 3]
                    b0 = r1[b] + r2[b]
                    b1 = r1[b + 1] + r2[b + 1]
                    b2 = r1[b + 2] + r2[b + 2]
                    b3 = r1[b + 3] + r2[b + 3]
                    c0 = r2[b] - r1[b]
                    c1 = r2[b + 1] - r1[b + 1]
                    c2 = r2[b + 2] - r1[b + 2]
                    c3 = r2[b + 3] - r1[b + 3]
                    d0 = r1[b] - r3[b]
                    d1 = r1[b + 1] - r3[b + 1]
                    d2 = r1[b + 2] - r3[b + 2]
                    d3 = r1[b + 3] - r3[b + 3]
                    t = t0 + j
                    # columns: (.) B
                    v[c, 0, t] = a0 - a2
                    v[c, 1, t] = a1 + a2
                    v[c, 2, t] = a2 - a1
                    v[c, 3, t] = a1 - a3
                    v[c, 4, t] = b0 - b2
                    v[c, 5, t] = b1 + b2
                    v[c, 6, t] = b2 - b1
                    v[c, 7, t] = b1 - b3
                    v[c, 8, t] = c0 - c2
                    v[c, 9, t] = c1 + c2
                    v[c, 10, t] = c2 - c1
                    v[c, 11, t] = c1 - c3
                    v[c, 12, t] = d0 - d2
                    v[c, 13, t] = d1 + d2
                    v[c, 14, t] = d2 - d1
                    v[c, 15, t] = d1 - d3


@compiled()
def winograd_output(mo, y, bias, z, n0, n1, i0, i1, tiles_w, has_bias, has_z, act, a0, a1):
    """Winograd F(2x2, 3x3) output transform of tile rows ``[i0, i1)`` of images ``[n0, n1)``:
    ``y[n, m, 2i.., 2j..] = act((A^T M A) + bias[m] + z[n, m, 2i.., 2j..])`` with M the 16
    GEMM results ``mo[m, :, t]`` of the tile, cropped to y's odd last row or column. mo (M,
    16, tiles) (the GEMM writes it as (16, M, tiles)), y and z (N, M, Ho, Wo) C-contiguous (z
    only read when ``has_z``)."""
    out_c, out_h, out_w = y.shape[1], y.shape[2], y.shape[3]
    per_image = (i1 - i0) * tiles_w
    full_w = out_w // 2
    yf = y.reshape(y.size)
    zf = z.reshape(z.size)
    first = np.uint64(2 * i0 * out_w)
    end = np.uint64(min(2 * i1, out_h) * out_w)
    for m in range(out_c):
        b = bias[m] if has_bias else y.dtype.type(0)
        for n in range(n0, n1):
            plane = np.uint64((n * out_c + m) * out_h * out_w)
            for i in range(i0, i1):
                t0 = np.uint64((n - n0) * per_image + (i - i0) * tiles_w)
                row0 = plane + np.uint64(2 * i * out_w)
                second = 2 * i + 1 < out_h
                row1 = row0 + np.uint64(out_w if second else 0)
                for j in range(np.uint64(tiles_w)):
                    t = t0 + j
                    p0 = mo[m, 0, t] + mo[m, 1, t] + mo[m, 2, t]
                    p1 = mo[m, 4, t] + mo[m, 5, t] + mo[m, 6, t]
                    p2 = mo[m, 8, t] + mo[m, 9, t] + mo[m, 10, t]
                    p3 = mo[m, 12, t] + mo[m, 13, t] + mo[m, 14, t]
                    q0 = mo[m, 1, t] - mo[m, 2, t] - mo[m, 3, t]
                    q1 = mo[m, 5, t] - mo[m, 6, t] - mo[m, 7, t]
                    q2 = mo[m, 9, t] - mo[m, 10, t] - mo[m, 11, t]
                    q3 = mo[m, 13, t] - mo[m, 14, t] - mo[m, 15, t]
                    y00 = p0 + p1 + p2 + b
                    y01 = q0 + q1 + q2 + b
                    y10 = p1 - p2 - p3 + b
                    y11 = q1 - q2 - q3 + b
                    col = j * np.uint64(2)
                    if j < full_w:
                        if has_z:
                            y00 += zf[row0 + col]
                            y01 += zf[row0 + col + np.uint64(1)]
                            if second:
                                y10 += zf[row1 + col]
                                y11 += zf[row1 + col + np.uint64(1)]
                        if second:
                            yf[row1 + col] = y10
                            yf[row1 + col + np.uint64(1)] = y11
                        yf[row0 + col] = y00
                        yf[row0 + col + np.uint64(1)] = y01
                    else:  # the last column of an odd width
                        if has_z:
                            y00 += zf[row0 + col]
                            if second:
                                y10 += zf[row1 + col]
                        if second:
                            yf[row1 + col] = y10
                        yf[row0 + col] = y00
            _activate_run(yf, plane + first, plane + end, act, a0, a1)


@compiled()
def direct_conv2d(x, wt, bias, z, y, acc, sh, sw, dh, dw, top, left, has_bias, has_z, act,
                  a0, a1):
    """A small Conv in one call, vectorized over output channels: for each output position,
    ``acc[0:M/G] = bias + sum over (c, kh, kw) of x[n, c, ih, iw] * wt[g, c, kh, kw, :]``
    (taps in the padding skipped), then Z and the activation. x (N, C, H, W), y and z
    (N, M, OH, OW), wt (G, C/G, KH, KW, M/G) C-contiguous; acc is M/G scratch. For convs too
    small for im2col and a GEMM to pay for their calls (a 1-D conv over 9 positions)."""
    n_images, channels, height, width = x.shape
    m_total, out_h, out_w = y.shape[1], y.shape[2], y.shape[3]
    groups, cg, kh_n, kw_n, mg = wt.shape
    plane = out_h * out_w
    yf = y.reshape(y.size)
    zf = z.reshape(z.size)
    for n in range(n_images):
        for g in range(groups):
            for oh in range(out_h):
                for ow in range(out_w):
                    for j in range(mg):
                        acc[j] = bias[g * mg + j] if has_bias else acc.dtype.type(0)
                    for cc in range(cg):
                        c = g * cg + cc
                        for kh in range(kh_n):
                            ih = oh * sh - top + kh * dh
                            if ih < 0 or ih >= height:
                                continue
                            for kw in range(kw_n):
                                iw = ow * sw - left + kw * dw
                                if iw < 0 or iw >= width:
                                    continue
                                v = x[n, c, ih, iw]
                                for j in range(mg):
                                    acc[j] += v * wt[g, cc, kh, kw, j]
                    base = (n * m_total + g * mg) * plane + oh * out_w + ow
                    for j in range(mg):
                        value = acc[j]
                        if has_z:
                            value += zf[base + j * plane]
                        yf[base + j * plane] = _activate(value, act, a0, a1)
