"""Compiled loops of the 8-bit integer GEMM on AVX-512 VNNI (see :mod:`.int8_gemm`, which
decides when they apply and is the only importer of this module).

Unlike the other ``*_loops`` modules, this one imports numba (and llvmlite) at import time: it
gives numba a 16 x int32 vector type and three intrinsics over it, so that a plain numba loop
can keep its accumulators in vector registers and issue ``vpdpbusd`` (four unsigned-by-signed
byte products summed into each 32-bit lane, exact, no saturation):

* ``_zero()``: a vector of zeros;
* ``_dot4(acc, a, i, b, j)``: ``acc + a[i:i+64] . (b[j:j+4] as one int32, broadcast)``, ``a``
  unsigned bytes (four per lane), ``b`` signed bytes;
* ``_store(c, k, v)``: ``c[k:k+16] = v`` (int32).

:mod:`.int8_gemm` imports this module only after checking that the CPU has AVX-512 VNNI and
that numba compiles for this CPU, so ``import ort`` still imports no numba, and no other CPU
ever sees these instructions.

Layouts (:func:`conv_rows`, one image of a quantized Conv): the image as rows of channels
(H, W, C padded to a multiple of 4), from which each chunk of :data:`CHUNK_ROWS` output
positions gets its rows of A (im2col's transpose, K ordered (kh, kw, c)) packed as
``[positions/16][K/4][16][4]`` unsigned bytes, so that one 64-byte load holds four consecutive
k of sixteen positions; W is row-major signed bytes (:func:`pack_weights`), four of whose bytes
are broadcast to every lane; the int32 result is channels x positions, so requantizing it
into Y (channels, positions) reads and writes contiguous runs. The kernel computes four
channels by two vectors of sixteen positions at a time (eight accumulators).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model

from ..jit import compiled

__all__ = ["CHUNK_ROWS", "conv_rows", "matmul_rows", "pack_weights", "to_rows"]

#: output columns (channels) a MatMul finishes at a time (their int32 block stays in cache)
_COLUMN_BLOCK = 64
#: rows of A a loop builds, multiplies and requantizes at a time (A, C and the output block
#: stay in the core's cache)
CHUNK_ROWS = 256

_VECTOR = ir.VectorType(ir.IntType(32), 16)
_I32 = ir.IntType(32)
_I64 = ir.IntType(64)


class _Int32x16(types.Type):
    """numba's type of a 16 x int32 vector held in a register."""

    def __init__(self) -> None:
        super().__init__(name="Int32x16")


_int32x16 = _Int32x16()


@register_model(_Int32x16)
class _Int32x16Model(models.PrimitiveModel):
    """The LLVM vector type <16 x i32>."""

    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _VECTOR)


def _element_pointer(context, builder, array_type, array, index, element):
    """A pointer of LLVM type ``element*`` to ``array``'s item ``index`` (no bounds check)."""
    data = context.make_array(array_type)(context, builder, array).data
    size = context.get_abi_sizeof(context.get_data_type(array_type.dtype))
    address = builder.add(builder.ptrtoint(data, _I64),
                          builder.mul(index, ir.Constant(_I64, size)))
    return builder.inttoptr(address, element.as_pointer())


@intrinsic
def _zero(typingctx):
    """A vector of sixteen int32 zeros."""
    def codegen(context, builder, signature, args):
        return ir.Constant(_VECTOR, [0] * 16)
    return _int32x16(), codegen


@intrinsic
def _dot4(typingctx, acc, a, i, b, j):
    """``acc`` plus, in each lane, the dot product of the lane's four unsigned bytes of
    ``a[i:i+64]`` and the four signed bytes ``b[j:j+4]`` (one int32, broadcast):
    ``vpdpbusd`` with a broadcast memory operand."""
    def codegen(context, builder, signature, args):
        total, a_array, a_index, b_array, b_index = args
        values = builder.load(_element_pointer(context, builder, signature.args[1], a_array,
                                               a_index, _VECTOR), align=1)
        word = builder.load(_element_pointer(context, builder, signature.args[3], b_array,
                                             b_index, _I32), align=1)
        lanes = builder.insert_element(ir.Constant(_VECTOR, None), word, ir.Constant(_I32, 0))
        lanes = builder.shuffle_vector(lanes, ir.Constant(_VECTOR, None),
                                       ir.Constant(_VECTOR, [0] * 16))
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(_VECTOR, [_VECTOR, _VECTOR, _VECTOR]),
            "llvm.x86.avx512.vpdpbusd.512")
        return builder.call(function, [total, values, lanes])
    return _int32x16(acc, a, types.int64, b, types.int64), codegen


@intrinsic
def _store(typingctx, c, k, vector):
    """``c[k:k+16] = vector`` (``c`` an int32 array)."""
    def codegen(context, builder, signature, args):
        array, index, value = args
        builder.store(value, _element_pointer(context, builder, signature.args[0], array, index,
                                              _VECTOR), align=4)
        return context.get_dummy_value()
    return types.void(c, types.int64, _int32x16), codegen


_FLOATS = ir.VectorType(ir.FloatType(), 16)
_BYTES = ir.VectorType(ir.IntType(8), 16)


def _splat(builder, value, vector_type):
    """``value`` in every lane of a vector of ``vector_type``."""
    lanes = builder.insert_element(ir.Constant(vector_type, None), value, ir.Constant(_I32, 0))
    return builder.shuffle_vector(lanes, ir.Constant(vector_type, None),
                                  ir.Constant(_VECTOR, [0] * 16))


@intrinsic
def _requantize_store(typingctx, y, k, acc, offset, scale, zero_point, low, high):
    """``y[k:k+16] = clip(rint(float32(acc + offset) * scale) + zero_point, low, high)``, one
    8-bit value per lane (``y`` uint8 or int8; ``offset`` int32, the rest float32): the
    scalar requantize loop of :func:`conv_rows`, bit for bit, sixteen lanes at a time."""
    def codegen(context, builder, signature, args):
        array, index, vector, off, factor, zp, lo, hi = args
        values = builder.sitofp(builder.add(vector, _splat(builder, off, _VECTOR)), _FLOATS)
        values = builder.fmul(values, _splat(builder, factor, _FLOATS))
        unary = ir.FunctionType(_FLOATS, [_FLOATS])
        binary = ir.FunctionType(_FLOATS, [_FLOATS, _FLOATS])
        values = builder.call(cgutils.get_or_insert_function(
            builder.module, unary, "llvm.rint.v16f32"), [values])
        values = builder.fadd(values, _splat(builder, zp, _FLOATS))
        values = builder.call(cgutils.get_or_insert_function(
            builder.module, binary, "llvm.maxnum.v16f32"), [values, _splat(builder, lo, _FLOATS)])
        values = builder.call(cgutils.get_or_insert_function(
            builder.module, binary, "llvm.minnum.v16f32"), [values, _splat(builder, hi, _FLOATS)])
        packed = builder.trunc(builder.fptosi(values, _VECTOR), _BYTES)
        builder.store(packed, _element_pointer(context, builder, signature.args[0], array, index,
                                               _BYTES), align=1)
        return context.get_dummy_value()
    return types.void(y, types.int64, _int32x16, types.int32, types.float32, types.float32,
                      types.float32, types.float32), codegen


def pack_weights(w: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Signed bytes ``w`` (M, K) as a flat row-major (M rounded up to 4) x (K rounded up to
    4) array, zeros in the padding; returns (packed, padded M, padded K)."""
    m, k = w.shape
    mq, kp = -(-m // 4) * 4, -(-k // 4) * 4
    padded = np.zeros((mq, kp), np.int8)
    padded[:m, :k] = w
    return padded.reshape(-1), mq, kp


@njit(nogil=True, cache=True, inline="always")
def _block(a, x0, steps, w, w0, kp):
    """The products of four channels (W's rows from ``w0``, ``kp`` apart) by two vectors of
    sixteen positions (A's packed rows from ``x0`` and ``x0 + steps * 64``): eight int32x16
    accumulators, summed over K with ``vpdpbusd``."""
    x1 = x0 + steps * 64
    w1 = w0 + kp
    w2 = w1 + kp
    w3 = w2 + kp
    c00 = _zero()
    c01 = _zero()
    c10 = _zero()
    c11 = _zero()
    c20 = _zero()
    c21 = _zero()
    c30 = _zero()
    c31 = _zero()
    for s in range(steps):
        o = s * 4
        a0 = x0 + s * 64
        a1 = x1 + s * 64
        c00 = _dot4(c00, a, a0, w, w0 + o)
        c01 = _dot4(c01, a, a1, w, w0 + o)
        c10 = _dot4(c10, a, a0, w, w1 + o)
        c11 = _dot4(c11, a, a1, w, w1 + o)
        c20 = _dot4(c20, a, a0, w, w2 + o)
        c21 = _dot4(c21, a, a1, w, w2 + o)
        c30 = _dot4(c30, a, a0, w, w3 + o)
        c31 = _dot4(c31, a, a1, w, w3 + o)
    return c00, c01, c10, c11, c20, c21, c30, c31


@njit(nogil=True, cache=True)
def _gemm_chunk(a, steps, w, kp, m_lo, m_hi, c, count):
    """``c[m, q] = sum over k of a[q, k] * w[m, k]`` for channels ``[m_lo, m_hi)`` (multiples
    of 4) and the first ``count`` positions q of a chunk (rounded up to 32): ``a`` packed as
    [CHUNK_ROWS/16][K/4][16][4] unsigned bytes, ``w`` (channels x ``kp``) signed bytes, ``c``
    (channels x ``CHUNK_ROWS``) int32. Four channels by two vectors of sixteen positions at a
    time: eight accumulators."""
    span = steps * 64
    vectors = -(-count // 32) * 2
    for m0 in range(m_lo, m_hi, 4):
        for v in range(0, vectors, 2):
            c00, c01, c10, c11, c20, c21, c30, c31 = _block(a, v * span, steps, w, m0 * kp,
                                                            kp)
            at = m0 * CHUNK_ROWS + v * 16
            _store(c, at, c00)
            _store(c, at + 16, c01)
            _store(c, at + CHUNK_ROWS, c10)
            _store(c, at + CHUNK_ROWS + 16, c11)
            _store(c, at + 2 * CHUNK_ROWS, c20)
            _store(c, at + 2 * CHUNK_ROWS + 16, c21)
            _store(c, at + 3 * CHUNK_ROWS, c30)
            _store(c, at + 3 * CHUNK_ROWS + 16, c31)


@njit(nogil=True, cache=True)
def _finish_partial(y, at, positions, c0, c1, first, rows, spill, offsets, multiplier, m0,
                    zp, lo, hi):
    """The last, partial vectors of one to four channels from ``m0`` (``rows``) into ``y``:
    ``first`` valid lanes in ``c0`` (then ``first - 16`` in ``c1``), through ``spill``."""
    per_channel = multiplier.shape[0] > 1
    for r in range(rows):
        offset = offsets[m0 + r]
        scale = multiplier[m0 + r] if per_channel else multiplier[0]
        for half in range(2):
            count = min(16, first - 16 * half)
            if count <= 0:
                continue
            vector = c0[r] if half == 0 else c1[r]
            _store(spill, 0, vector)
            base = at + r * positions + 16 * half
            for q in range(count):
                v = np.rint(np.float32(spill[q] + offset) * scale) + zp
                y[base + q] = np.int32(min(max(v, lo), hi))


@njit(nogil=True, cache=True)
def _gemm_requantized(a, steps, w, kp, m, count, offsets, multiplier, zp, lo, hi, y,
                      positions, q0, spill):
    """:func:`_gemm_chunk` for the ``m`` real channels, each accumulator requantized straight
    from its register into ``y`` (the image's planes, flat; this chunk's first position
    ``q0``): ``offsets`` (int32, per channel) is the bias minus X's zero point's share, a
    one-element ``multiplier`` is per tensor. No int32 block goes through memory."""
    span = steps * 64
    vectors = -(-count // 32) * 2
    per_channel = multiplier.shape[0] > 1
    for m0 in range(0, m, 4):
        s0 = multiplier[m0] if per_channel else multiplier[0]
        s1 = multiplier[min(m0 + 1, m - 1)] if per_channel else s0
        s2 = multiplier[min(m0 + 2, m - 1)] if per_channel else s0
        s3 = multiplier[min(m0 + 3, m - 1)] if per_channel else s0
        o0 = offsets[m0]
        o1 = offsets[min(m0 + 1, m - 1)]
        o2 = offsets[min(m0 + 2, m - 1)]
        o3 = offsets[min(m0 + 3, m - 1)]
        for v in range(0, vectors, 2):
            c00, c01, c10, c11, c20, c21, c30, c31 = _block(a, v * span, steps, w, m0 * kp,
                                                            kp)
            first = count - v * 16
            at = m0 * positions + q0 + v * 16
            rows = min(4, m - m0)
            if first < 32:  # the chunk's last positions
                _finish_partial(y, at, positions, (c00, c10, c20, c30), (c01, c11, c21, c31),
                                first, rows, spill, offsets, multiplier, m0, zp, lo, hi)
                continue
            # intrinsics, not calls: a call passing y would count references on every block
            _requantize_store(y, at, c00, o0, s0, zp, lo, hi)
            _requantize_store(y, at + 16, c01, o0, s0, zp, lo, hi)
            if rows > 1:
                at += positions
                _requantize_store(y, at, c10, o1, s1, zp, lo, hi)
                _requantize_store(y, at + 16, c11, o1, s1, zp, lo, hi)
            if rows > 2:
                at += positions
                _requantize_store(y, at, c20, o2, s2, zp, lo, hi)
                _requantize_store(y, at + 16, c21, o2, s2, zp, lo, hi)
            if rows > 3:
                at += positions
                _requantize_store(y, at, c30, o3, s3, zp, lo, hi)
                _requantize_store(y, at + 16, c31, o3, s3, zp, lo, hi)


@compiled()
def to_rows(x, flip, pitch, out):
    """``out[p * pitch + c] = x[c, p] ^ flip``: one image's planes (C, H*W) of 8-bit integers
    as rows of ``pitch`` >= C bytes (``flip`` 128 turns signed bytes into unsigned ones
    shifted by 128, 0 leaves unsigned ones), in blocks of positions so the writes stay in
    cache. Few channels (numpy's transposing copy is faster from about 8)."""
    channels, positions = x.shape
    for p0 in range(0, positions, 64):
        p1 = min(p0 + 64, positions)
        for c in range(channels):
            for p in range(p0, p1):
                out[p * pitch + c] = np.uint8(x[c, p]) ^ np.uint8(flip)


@njit(nogil=True, cache=True)
def _pack_rows(xt32, height, width, c4, kh, kw, sh, sw, dh, dw, top, left, out_w, fill, steps,
               a32, q0, q1):
    """The rows of A of output positions ``[q0, q1)`` in :func:`_gemm_chunk`'s packed layout,
    four channels (one int32 word) at a time: position p's tap (i, j) reads the word run of
    ``xt32`` (the image as rows of ``4 * c4`` channels) at its input position, or ``fill``
    (four zero-point bytes) outside the image. Indices are unsigned (numba's negative-index
    checks stop LLVM from vectorizing)."""
    sixteen = np.uint64(16)
    four = np.uint64(4)
    channels = c4 * 4
    for p in range(q0, q1):
        oh = p // out_w
        ow = p - oh * out_w
        lane = np.uint64((p - q0) % 16)
        block = np.uint64((p - q0) // 16) * np.uint64(steps)
        for i in range(kh):
            ih = oh * sh - top + i * dh
            inside_h = 0 <= ih < height
            for j in range(kw):
                iw = ow * sw - left + j * dw
                inside = inside_h and 0 <= iw < width
                s4 = np.uint64((ih * width + iw) * c4) if inside else np.uint64(0)
                first = (block + np.uint64((i * kw + j) * channels) // four) * sixteen + lane
                for c in range(np.uint64(c4)):
                    a32[first + c * sixteen] = xt32[s4 + c] if inside else fill


@njit(nogil=True, cache=True)
def _pack_planes(x, positions, channels, steps, flip, a32, q0, q1):
    """The rows of A of positions ``[q0, q1)`` of a 1x1 Conv with unit strides and no
    padding, in :func:`_gemm_chunk`'s packed layout, read from the image's planes ``x`` (C *
    H*W bytes, flat) themselves: each word is four channels' bytes of one position (XOR
    ``flip``), so sixteen words are four contiguous loads and one contiguous store, and the
    image needs no transposed copy. Channels past C and positions past the image read 0."""
    sixteen = np.uint64(16)
    upos = np.uint64(positions)
    blocks = (q1 - q0 + 15) // 16
    for b in range(blocks):
        base = np.uint64(q0 + b * 16)
        full = q0 + b * 16 + 16 <= positions
        for j in range(steps):
            c = np.uint64(4 * j)
            out = (np.uint64(b) * np.uint64(steps) + np.uint64(j)) * sixteen
            if full and 4 * j + 4 <= channels:
                r0 = c * upos + base
                r1 = r0 + upos
                r2 = r1 + upos
                r3 = r2 + upos
                for lane in range(sixteen):
                    a32[out + lane] = (np.uint32(x[r0 + lane]) | (np.uint32(x[r1 + lane]) << 8)
                                       | (np.uint32(x[r2 + lane]) << 16)
                                       | (np.uint32(x[r3 + lane]) << 24)) ^ flip
                continue
            for lane in range(sixteen):
                word = np.uint32(0)
                p = base + lane
                if p < upos:
                    for t in range(4):
                        if 4 * j + t < channels:
                            word |= np.uint32(x[(c + np.uint64(t)) * upos + p]) << (8 * t)
                    word ^= flip
                a32[out + lane] = word


@compiled()
def conv_rows(xt, height, width, channels, kh, kw, sh, sw, dh, dw, top, left, out_w, x_zp,
              kp, w, mq, m, comp, multiplier, y_zp, low, high, raw, shift, ones_row, k_zp,
              y, r0, r1, planes, real_channels, flip):
    """Output positions ``[r0, r1)`` of one image of an 8-bit Conv (one group) by VNNI,
    ``CHUNK_ROWS`` positions at a time: their rows of A are built from ``xt`` (the image as
    (H, W, C) unsigned bytes, flat, ``channels`` a multiple of 4: the caller pads them, with
    zero weights), K ordered (kh, kw, c) and padding read as ``x_zp`` (:func:`_pack_rows`);
    multiplied by W (see :func:`pack_weights`); and requantized into ``y`` (the image's M
    planes, flat): ``clip(rint(float32(acc + comp[m]) * multiplier[m]) + y_zp, low, high)``,
    where ``comp`` (float64, exact) holds the int32 bias minus ``x_zp`` times the channel's
    weight sum, so that ``acc + comp`` is MLAS's int32 accumulator plus bias. A one-element
    multiplier is per tensor. With ``raw``, ``y`` (int32) gets ``acc + comp`` itself
    (ConvInteger).

    Weights whose centered values span a signed byte only after a shift ``d`` per channel
    (uint8 weights with a zero point far from 128) come shifted, with ``shift`` holding ``d``
    and W's row ``ones_row`` all ones (at the real channels): that row's sums minus ``k_zp``
    (K times X's zero point) are the window's sums of ``x - x_zp``, and ``d`` times them is
    added back, exactly, in float64. An empty ``shift`` means no shift.

    With ``planes`` (a 1x1 kernel, unit strides, no padding), ``xt`` is the image's planes
    themselves (``real_channels`` planes of H*W bytes, flat), read by :func:`_pack_planes`
    with each byte XOR ``flip`` (128 for signed bytes)."""
    steps = kp // 4
    per_channel = multiplier.shape[0] > 1
    a = np.zeros(CHUNK_ROWS * kp, np.uint8)
    acc = np.empty(mq * CHUNK_ROWS, np.int32)
    a32 = a.view(np.uint32)
    xt32 = xt[: xt.shape[0] // 4 * 4].view(np.uint32)
    fill = np.uint32(x_zp) * np.uint32(0x01010101)
    flip32 = np.uint32(flip) * np.uint32(0x01010101)
    positions = y.shape[0] // m
    lo = np.float32(low)
    hi = np.float32(high)
    yzp = np.float32(y_zp)
    shifted = shift.shape[0] > 0
    window = np.zeros(CHUNK_ROWS, np.float64)
    # the common case requantizes from the registers (see _gemm_requantized)
    direct = not shifted and not raw
    offsets = np.empty(m, np.int32)
    for k in range(m):
        offsets[k] = np.int32(comp[k])
    spill = np.empty(16, np.int32)
    for q0 in range(r0, r1, CHUNK_ROWS):
        q1 = min(q0 + CHUNK_ROWS, r1)
        if planes:
            _pack_planes(xt, height * width, real_channels, steps, flip32, a32, q0, q1)
        else:
            _pack_rows(xt32, height, width, channels // 4, kh, kw, sh, sw, dh, dw, top, left,
                       out_w, fill, steps, a32, q0, q1)
        if direct:
            _gemm_requantized(a, steps, w, kp, m, q1 - q0, offsets, multiplier, yzp, lo, hi,
                              y, positions, q0, spill)
            continue
        _gemm_chunk(a, steps, w, kp, 0, mq, acc, q1 - q0)
        count = np.uint64(q1 - q0)
        if shifted:
            ones = np.uint64(ones_row * CHUNK_ROWS)
            for q in range(count):
                window[q] = np.float64(acc[ones + q]) - k_zp
        for k in range(m):
            extra = comp[k]
            scale = multiplier[k] if per_channel else multiplier[0]
            at = np.uint64(k * CHUNK_ROWS)
            to = np.uint64(k * positions + q0)
            if shifted:
                d = shift[k]
                if raw:
                    for q in range(count):
                        y[to + q] = np.float64(acc[at + q]) + extra + d * window[q]
                    continue
                for q in range(count):
                    total = np.float64(acc[at + q]) + extra + d * window[q]
                    v = np.rint(np.float32(total) * scale) + yzp
                    v = v if v >= lo else lo
                    v = v if v <= hi else hi
                    y[to + q] = v
                continue
            if raw:
                offset = np.int32(extra)
                for q in range(count):
                    y[to + q] = acc[at + q] + offset
                continue
            # MLAS's int32 accumulator plus bias, then float32: exact as the float64 sum
            # (comp is an integer there), and the loop vectorizes in 32-bit lanes
            offset = np.int32(extra)
            for q in range(count):
                v = np.rint(np.float32(acc[at + q] + offset) * scale) + yzp
                v = min(max(v, lo), hi)
                y[to + q] = np.int32(v)


@compiled()
def matmul_rows(a_rows, kp, w, mq, n, comp, multiplier, bias, shift, k_zp, y, r0, r1):
    """Rows ``[r0, r1)`` of an 8-bit MatMul with a float32 output by VNNI, ``CHUNK_ROWS`` rows
    at a time: ``y[r, c] = float32(A[r] . W[c] + comp[c]) * multiplier[c] (+ bias[c])``, MLAS's
    scale-bias output (``comp``, float64 and exact, holds minus A's zero point times the
    column's weight sum). ``a_rows`` is A (rows x ``kp``, unsigned bytes, ``kp`` a multiple
    of 4), flat; a one-element multiplier is per tensor; an empty bias is none. Shifted
    weights as in :func:`conv_rows`: ``shift`` per column (empty: none), W's row ``n`` all
    ones, ``k_zp`` K times A's zero point."""
    steps = kp // 4
    per_column = multiplier.shape[0] > 1
    with_bias = bias.shape[0] > 0
    a = np.zeros(CHUNK_ROWS * kp, np.uint8)
    acc = np.empty(mq * CHUNK_ROWS, np.int32)
    a32 = a.view(np.uint32)
    rows32 = a_rows.view(np.uint32)
    total = a_rows.shape[0] // kp
    un = np.uint64(n)
    shifted = shift.shape[0] > 0
    window = np.zeros(CHUNK_ROWS, np.float64)
    for q0 in range(r0, r1, CHUNK_ROWS):
        q1 = min(q0 + CHUNK_ROWS, r1)
        _pack_rows(rows32, 1, total, steps, 1, 1, 1, 1, 1, 1, 0, 0, total, np.uint32(0),
                   steps, a32, q0, q1)
        if shifted:  # the row of ones first: every block below reads its sums
            ones = n // 4 * 4
            _gemm_chunk(a, steps, w, kp, ones, ones + 4, acc, q1 - q0)
            for q in range(q1 - q0):
                window[q] = np.float64(acc[n * CHUNK_ROWS + q]) - k_zp
        # blocks of channels, so that the block of C the rows read across stays in cache
        for m0 in range(0, mq, _COLUMN_BLOCK):
            m1 = min(m0 + _COLUMN_BLOCK, mq)
            _gemm_chunk(a, steps, w, kp, m0, m1, acc, q1 - q0)
            last = np.uint64(min(m1, n))
            for q in range(q1 - q0):
                to = np.uint64(q0 + q) * un
                extra_row = window[q]
                for c in range(np.uint64(m0), last):
                    scale = multiplier[c] if per_column else multiplier[0]
                    total_c = np.float64(acc[c * np.uint64(CHUNK_ROWS) + np.uint64(q)]) + comp[c]
                    if shifted:
                        total_c += shift[c] * extra_row
                    v = np.float32(total_c) * scale
                    if with_bias:
                        v += bias[c]
                    y[to + c] = v
