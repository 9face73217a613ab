"""8-bit integer products on AVX-512 VNNI: quantized convolutions with exact int32 sums at two
to four times float32 BLAS's speed on CPUs that have the instructions (Intel since Cascade
Lake, AMD since Zen 4).

The quantized kernels (:mod:`.quantize`, through :class:`~.quant_compiled.CompiledQLinearConv`)
otherwise compute integer products with float32 BLAS, which is exact but no faster than a
float model, while onnxruntime's MLAS uses VNNI or AMX. :func:`vnni_available` says whether
this CPU and this numba can run :mod:`.int8_loops`; :class:`VnniConv` runs one QLinearConv
with it. Measured here (one thread, 512 x 512 x 512): 185 GMAC/s against float32 sgemm's 68.

X may be unsigned or signed bytes: signed ones are read with their top bit flipped (``x + 128``
as unsigned bytes, the zero point too), which leaves ``x - x_zp`` unchanged. W's centered
values (``w - w_zp``) must fit a signed byte, as they do for int8 weights with a zero zero
point (onnxruntime's quantizer's default) and for uint8 weights with zero point 128.
``ORT_CPU_VNNI=0`` turns the path off (the float32 BLAS path then runs).
"""

from __future__ import annotations

import os
import platform
from typing import Any

import numpy as np
from ort.ep import NodeInfo

from ..intra_op import resolve_threads, split_work
from ..jit import numba_available
from ..threaded_gemm import MIN_MACS_PER_PIECE
from .windows import read_window_attrs, window_geometry

__all__ = ["ENV_SWITCH", "VnniConv", "VnniMatMul", "fits", "matmul_fits", "vnni_available"]

#: environment variable that, set to 0, turns the VNNI path off
ENV_SWITCH = "ORT_CPU_VNNI"
_available: bool | None = None
#: from this many channels numpy's blocked transposing copy turns an image into rows faster
#: than :func:`.int8_loops.to_rows` (2-3x at 16-96 channels; slower at 3)
_NUMPY_TRANSPOSE_CHANNELS = 8


def vnni_available() -> bool:
    """Whether the VNNI loops can run: an x86-64 CPU with AVX-512 F, BW and VNNI, numba
    compiling for this very CPU (``NUMBA_CPU_NAME``/``NUMBA_CPU_FEATURES`` unset), and
    ``ORT_CPU_VNNI`` not ``"0"`` (read every call; the CPU check runs once)."""
    global _available
    if os.environ.get(ENV_SWITCH, "1") == "0":
        return False
    if _available is None:
        _available = _check_cpu()
    return _available


def _check_cpu() -> bool:
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    if os.environ.get("NUMBA_CPU_NAME") or os.environ.get("NUMBA_CPU_FEATURES"):
        return False
    if not numba_available():
        return False
    from llvmlite import binding

    features = binding.get_host_cpu_features()
    return all(features.get(name, False) for name in ("avx512f", "avx512bw", "avx512vnni"))


def fits(centered: np.ndarray, group: int) -> bool:
    """Whether a Conv with these centered weights (``w - w_zp``, (M, C/group, *kernel)) can
    run on :class:`VnniConv`: one group, a 1-D or 2-D kernel, each channel's values spanning
    at most a byte's range (then shifted into a signed byte), and sums that cannot overflow
    int32."""
    if group != 1 or centered.ndim not in (3, 4) or not centered.size:
        return False
    k = int(np.prod(centered.shape[1:]))
    rows = centered.reshape(centered.shape[0], -1)
    return bool((rows.max(axis=1) - rows.min(axis=1)).max() <= 255 and k * 255 * 255 < 2 ** 31)


def byte_shifts(rows: np.ndarray) -> np.ndarray:
    """Per row of centered weights, the shift ``d`` that brings the row into a signed byte
    (0 where it is already there)."""
    high = rows.max(axis=1).astype(np.int64)
    low = rows.min(axis=1).astype(np.int64)
    return np.where((low >= -128) & (high <= 127), 0, high - 127)


def _packed_weights(rows: np.ndarray, real: np.ndarray) -> tuple:
    """Centered weights ``rows`` (M, K; int, laid out as the kernel reads them, zeros where
    ``real`` (K,) is False) for :mod:`.int8_loops`: each row shifted into a signed byte where
    it needs (its real columns only), plus a row of ones over the real columns when any is
    (see :func:`.int8_loops.conv_rows`). Returns (packed, padded M, padded K, the shifted
    rows' sums as float64, the shifts as float64 or an empty array)."""
    m = rows.shape[0]
    shifts = byte_shifts(rows[:, real])
    shifted = rows - shifts[:, None] * real
    if shifts.any():
        shifted = np.concatenate([shifted, real[None].astype(shifted.dtype)])
    packed, mq, kp = _int8_loops().pack_weights(shifted.astype(np.int8))
    sums = shifted[:m].sum(axis=1).astype(np.float64)
    return packed, mq, kp, sums, shifts.astype(np.float64) if shifts.any() else _NO_SHIFT


def _int8_loops():
    """:mod:`.int8_loops`, imported on first use (it imports numba)."""
    from . import int8_loops

    return int8_loops


class VnniConv:
    """One QLinearConv (one group, 1-D or 2-D, constant W) on :mod:`.int8_loops`: each image
    is turned into rows of channels once, then output positions in pieces over the intra-op
    threads, each building its rows of A, multiplying them by the packed W and requantizing
    them into Y while they are in cache."""

    def __init__(self, node: NodeInfo, centered: np.ndarray) -> None:
        self.loops = _int8_loops()
        self.node = node
        m, c = centered.shape[:2]
        kernel = tuple(centered.shape[2:])
        self.kernel2 = (1,) * (2 - len(kernel)) + kernel
        self.window = read_window_attrs(node, kernel, pooling=False)
        # channels padded to a multiple of 4 (zero weights) so that rows of A are built four
        # bytes at a time; K ordered (kh, kw, c): a tap's channels are contiguous in a row
        self.pitch = -(-c // 4) * 4
        padded = np.zeros((m + 1, self.pitch) + kernel, np.int64)  # the last row: real columns
        padded[:m, :c] = centered
        padded[m, :c] = 1
        taps_last = padded.reshape(m + 1, self.pitch, -1).transpose(0, 2, 1).reshape(m + 1, -1)
        self.packed, self.mq, self.kp, self.sums, self.shift = _packed_weights(
            taps_last[:m], taps_last[m] == 1)
        self.k_real = c * int(np.prod(kernel))
        self.m, self.channels, self.k = m, c, taps_last.shape[1]
        self.threads = resolve_threads(node.intra_op_threads)
        self.geometries: dict[tuple, Any] = {}
        self._to_rows: dict[np.dtype, Any] = {}
        self._conv: dict[np.dtype, Any] = {}

    def _loops_for(self, x_dtype: np.dtype, y_dtype: np.dtype) -> tuple[Any, Any]:
        to_rows = self._to_rows.get(x_dtype)
        if to_rows is None:
            to_rows = self._to_rows[x_dtype] = self.loops.to_rows.prepare(
                (x_dtype, 2), int, int, (np.uint8, 1))
        conv = self._conv.get(y_dtype)
        if conv is None:
            conv = self._conv[y_dtype] = self.loops.conv_rows.prepare(
                (np.uint8, 1), *([int] * 14), (np.int8, 1), int, int, (np.float64, 1),
                (np.float32, 1), int, int, int, bool, (np.float64, 1), int, float,
                (y_dtype, 1), int, int, bool, int, int)
        return to_rows, conv

    def integers(self, x: Any, x_zp: int) -> Any:
        """ConvInteger's int32 Y (``x - x_zp`` convolved with the centered W) of the 8-bit
        ``x``, or None where X's shape does not fit."""
        return self(x, x_zp, _ONE, _NO_BIAS_I32, _INT32_OUTPUT, 0, 0, raw=True)

    def __call__(self, x: Any, x_zp: int, multiplier: Any, bias: Any, y_zero_point: Any,
                 low: int, high: int, raw: bool = False) -> Any:
        """Y (requantized to ``y_zero_point``'s type; with ``raw``, the int32 sums) of the
        8-bit ``x``, or None where X's shape does not fit (the caller's path runs)."""
        if x.ndim != len(self.window.kernel) + 2 or x.shape[1] != self.channels:
            return None
        n = x.shape[0]
        spatial = tuple(x.shape[2:])
        geo = self.geometries.get(spatial)
        if geo is None:
            geo = self.geometries[spatial] = window_geometry(self.node, self.window, spatial)
        pad = 2 - len(spatial)
        height, width = (1,) * pad + spatial
        out_h, out_w = (1,) * pad + tuple(geo.out_shape)
        (sh, sw), (dh, dw) = (1,) * pad + self.window.strides, (1,) * pad + self.window.dilations
        top, left = (0,) * pad + tuple(geo.pads_begin)
        out = self.node.empty((n, self.m) + tuple(geo.out_shape), y_zero_point.dtype)
        positions = out_h * out_w
        if not out.size:
            return out
        flip = 128 if x.dtype == np.int8 else 0
        zp = x_zp + flip
        comp = -float(zp) * self.sums
        if bias.shape[0] == self.m:
            comp = comp + bias.astype(np.float64)
        to_rows, conv = self._loops_for(x.dtype, out.dtype)
        kh, kw = self.kernel2
        # a 1x1 kernel with unit strides and no padding packs its rows from the planes
        from_planes = self.kernel2 == (1, 1) and (sh, sw) == (1, 1) and not geo.padded
        planes = np.ascontiguousarray(x).reshape(n, self.channels, height * width)
        y = out.reshape(n, -1)
        y_zp = int(y_zero_point.reshape(()))
        # pieces sized as float BLAS's: packing and requantizing make a VNNI multiply-add cost
        # about as much (sized for 3x as many, 3136-position layers were never split)
        rows = max(self.loops.CHUNK_ROWS,
                   MIN_MACS_PER_PIECE // max(1, self.k * self.m))
        if not from_planes:
            xt = np.zeros(height * width * self.pitch, np.uint8)  # padded channels stay 0
            rows_view = xt.reshape(height * width, self.pitch)[:, :self.channels]
        for i in range(n):
            if from_planes:
                xt = planes[i].reshape(-1).view(np.uint8)
            elif self.channels >= _NUMPY_TRANSPOSE_CHANNELS:
                if flip:
                    np.bitwise_xor(planes[i].view(np.uint8).T, np.uint8(flip), out=rows_view)
                else:
                    np.copyto(rows_view, planes[i].T)
            else:
                to_rows(planes[i], flip, self.pitch, xt)
            image = y[i]

            def work(r0: int, r1: int, image: Any = image) -> None:
                conv(xt, height, width, self.pitch, kh, kw, sh, sw, dh, dw, top, left,
                     out_w, zp, self.kp, self.packed, self.mq, self.m, comp, multiplier, y_zp,
                     low, high, raw, self.shift, self.m, float(self.k_real * zp), image, r0,
                     r1, from_planes, self.channels, flip)

            split_work(work, positions, self.threads, rows)
        return out


def matmul_fits(centered_b: np.ndarray) -> bool:
    """Whether a MatMul with these centered weights (``B - b_zp``, (K, N)) can run on
    :class:`VnniMatMul`: 2-D, each column spanning at most a byte's range (shifted into a
    signed byte where needed), sums that cannot overflow int32."""
    if centered_b.ndim != 2 or not centered_b.size:
        return False
    spans = centered_b.max(axis=0) - centered_b.min(axis=0)
    return bool(spans.max() <= 255 and centered_b.shape[0] * 255 * 255 < 2 ** 31)


class VnniMatMul:
    """An 8-bit MatMul with a constant B (centered values in a signed byte) and a float32
    output (MLAS's scale-bias output: DynamicQuantizeMatMul, MatMulIntegerToFloat) on
    :mod:`.int8_loops`: rows of A in pieces over the intra-op threads, each packing its rows,
    multiplying them and scaling them into Y in cache."""

    def __init__(self, node: NodeInfo, centered_b: np.ndarray) -> None:
        self.loops = _int8_loops()
        self.node = node
        self.k, self.n = centered_b.shape
        self.packed, self.mq, self.kp, self.sums, self.shift = _packed_weights(
            centered_b.T.astype(np.int64), np.ones(self.k, bool))
        self.threads = resolve_threads(node.intra_op_threads)
        self.loop = self.loops.matmul_rows.prepare(
            (np.uint8, 1), int, (np.int8, 1), int, int, (np.float64, 1), (np.float32, 1),
            (np.float32, 1), (np.float64, 1), float, (np.float32, 1), int, int)

    def __call__(self, a: Any, a_zp: int, multiplier: Any, bias: Any) -> Any:
        """``float32((a - a_zp) @ B) * multiplier + bias`` as a fresh float32 (rows, N) array
        for 2-D 8-bit ``a`` (signed bytes are read with their top bit flipped)."""
        rows = a.shape[0]
        flip = 128 if a.dtype == np.int8 else 0
        a_u8 = a.view(np.uint8)
        if flip or self.kp != self.k or not a_u8.flags.c_contiguous:
            padded = np.zeros((rows, self.kp), np.uint8)
            if flip:
                np.bitwise_xor(a_u8, np.uint8(flip), out=padded[:, :self.k])
            else:
                padded[:, :self.k] = a_u8
            a_u8 = padded
        comp = -float(a_zp + flip) * self.sums
        bias32 = (_NO_BIAS if bias is None
                  else np.ascontiguousarray(bias, dtype=np.float32).reshape(-1))
        multiplier = np.ascontiguousarray(multiplier, dtype=np.float32).reshape(-1)
        out = self.node.empty((rows, self.n), np.float32)
        if not out.size:
            return out
        flat_a, flat_y = a_u8.reshape(-1), out.reshape(-1)
        pieces = max(self.loops.CHUNK_ROWS,
                     MIN_MACS_PER_PIECE // max(1, self.k * self.n))

        def work(r0: int, r1: int) -> None:
            self.loop(flat_a, self.kp, self.packed, self.mq, self.n, comp, multiplier, bias32,
                      self.shift, float(self.k * (a_zp + flip)), flat_y, r0, r1)

        split_work(work, rows, self.threads, pieces)
        return out


_NO_BIAS = np.empty(0, np.float32)
_ONE = np.ones(1, np.float32)
_NO_BIAS_I32 = np.empty(0, np.int32)
_INT32_OUTPUT = np.zeros((), np.int32)  # ConvInteger: "requantized" to int32, zero point 0
_NO_SHIFT = np.empty(0, np.float64)
