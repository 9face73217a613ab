"""The Conv kernel's compiled paths (numba loops of :mod:`.conv_loops`; the numpy code in
:mod:`.conv` stays the reference and fallback): depthwise convolutions with padding read in
the loop, the GEMM path's im2col and epilogue, Winograd F(2x2, 3x3), and which shapes take
them. :class:`ConvLoops` holds one node's prepared loops, activation and intra-op threads."""

from __future__ import annotations

import math

from collections.abc import Callable
from typing import Any

import numpy as np
from ort.ep import NodeInfo

from ..intra_op import resolve_threads, split_work
from ..threaded_gemm import matmul_into, pieces_for
from . import conv_loops
from .windows import (Scratch, WindowAttrs, WindowGeometry, give_padded,
                      padded_input, phase_layout)

__all__ = ["ConvLoops", "LOOP_DTYPES", "MIN_LOOP_ROW", "MIN_PIECE_OUTPUTS", "WINOGRAD_MIN_TILES",
           "WINOGRAD_TILES", "conv_gemm_compiled", "depthwise_loop_args", "direct_fits",
           "direct_weights", "product_finished", "winograd_fits", "winograd_weights"]

LOOP_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
#: output rows the compiled im2col copies at least (shorter ones: numpy's strided copy). 1:
#: measured on ResNet's 7x7 and 14x14 stages, the compiled copy is as fast as numpy's, and
#: the compiled path splits its chunks over the intra-op threads (numpy's path does not)
MIN_LOOP_ROW = 1
#: outputs one thread's piece of a compiled loop computes at least (a hand-off costs about 20
#: µs, see :mod:`ort_provider_cpu.intra_op`)
MIN_PIECE_OUTPUTS = 1 << 15
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _activation_params(name: str, params: dict[str, float]) -> tuple[float, float]:
    """The two parameters the loops take for activation ``name`` (FusedConv's defaults)."""
    if name == "Clip":
        return float(params.get("min", -_FLOAT32_MAX)), float(params.get("max", _FLOAT32_MAX))
    if name == "LeakyRelu":
        return float(params.get("alpha", 0.01)), 0.0
    if name == "HardSigmoid":
        return float(params.get("alpha", 0.2)), float(params.get("beta", 0.5))
    return 0.0, 0.0


class ConvLoops:
    """The compiled loops one Conv node runs (:mod:`.conv_loops`), the activation they apply
    (as a code and two parameters) and the node's intra-op threads."""

    def __init__(self, node: NodeInfo, activation: tuple[str, dict[str, float]] | None) -> None:
        name, params = activation if activation is not None else ("", {})
        code = conv_loops.activation_code(name)
        #: whether the loops apply the activation (else the caller's ``activate`` does)
        self.covers_activation = code is not None
        self.code = code or 0
        self.a0, self.a1 = _activation_params(name, params)
        self.threads = resolve_threads(node.intra_op_threads)
        self._no_bias = {dt: np.zeros(1, dt) for dt in LOOP_DTYPES}
        self._loops: dict[tuple[str, np.dtype], Callable[..., Any]] = {}

    def prepare(self, dtype: np.dtype, depthwise: bool, winograd: bool = False) -> None:
        """Load or compile the loops a Conv of ``dtype`` runs (so the first run does not)."""
        if dtype not in LOOP_DTYPES:
            return
        if depthwise:
            self.depthwise_loop(dtype)
            return
        self.im2col_loop(dtype)
        self.epilogue_loop(dtype)
        if winograd:
            self.winograd_loops(dtype)

    def depthwise_loop(self, dtype: np.dtype) -> Callable[..., Any]:
        """:func:`conv_loops.depthwise_conv2d` for ``dtype``."""
        key = ("depthwise", dtype)
        loop = self._loops.get(key)
        if loop is None:
            ints = (np.int64, 2)
            loop = self._loops[key] = conv_loops.depthwise_conv2d.prepare(
                (dtype, 4), (dtype, 2), (dtype, 1), (dtype, 4), (dtype, 4), ints,
                (np.int64, 1), int, int, int, int, int, bool, bool, int, float, float, float, int,
                int)
        return loop

    def direct_loop(self, dtype: np.dtype) -> Callable[..., Any]:
        """:func:`conv_loops.direct_conv2d` for ``dtype``."""
        key = ("direct", dtype)
        loop = self._loops.get(key)
        if loop is None:
            loop = self._loops[key] = conv_loops.direct_conv2d.prepare(
                (dtype, 4), (dtype, 5), (dtype, 1), (dtype, 4), (dtype, 4), (dtype, 1),
                *([int] * 6), bool, bool, int, float, float)
        return loop

    def direct(self, wa: WindowAttrs, geo: WindowGeometry, wt: Any, x: Any, y: Any,
               bias: Any, z: Any, activate: Callable[[Any], Any] | None) -> None:
        """A small 1-D or 2-D Conv in one compiled call (:func:`conv_loops.direct_conv2d`)
        with ``wt`` from :func:`direct_weights`; bias, Z and the activation included."""
        n, c = x.shape[:2]
        m = y.shape[1]
        one_d = x.ndim == 3
        x4 = np.ascontiguousarray(x).reshape((n, c) + (1,) * one_d + x.shape[2:])
        y4 = y.reshape((n, m) + (1,) * one_d + y.shape[2:])
        z4 = y4 if z is None else np.ascontiguousarray(z).reshape(y4.shape)
        bias_arr, has_bias = self.bias(bias, y.dtype)
        code, a0, a1 = self.activation(activate)
        (sh, sw), (dh, dw) = (1,) * one_d + wa.strides, (1,) * one_d + wa.dilations
        top, left = (0,) * one_d + geo.pads_begin
        acc = np.empty(wt.shape[-1], y.dtype)
        self.direct_loop(y.dtype)(x4, wt, bias_arr, z4, y4, acc, sh, sw, dh, dw, top, left,
                                  has_bias, z is not None, code, a0, a1)
        if activate is not None and not self.covers_activation:
            activate(y)

    def direct_call(self, wa: WindowAttrs, geo: WindowGeometry, wt: Any,
                    x_shape: tuple[int, ...], y_shape: tuple[int, ...],
                    activate: Callable[[Any], Any] | None,
                    empty: Callable[..., Any]) -> Callable[[Any, Any], Any]:
        """:meth:`direct` bound to one X shape: ``call(x, bias) -> Y`` (a fresh Y from
        ``empty``) with everything that depends only on the shapes worked out once."""
        dtype = wt.dtype
        n, c = x_shape[:2]
        m = y_shape[1]
        one_d = len(x_shape) == 3
        x4_shape = (n, c) + (1,) * one_d + tuple(x_shape[2:])
        y4_shape = (n, m) + (1,) * one_d + tuple(y_shape[2:])
        (sh, sw), (dh, dw) = (1,) * one_d + wa.strides, (1,) * one_d + wa.dilations
        top, left = (0,) * one_d + geo.pads_begin
        code, a0, a1 = self.activation(activate)
        finish = activate if activate is not None and not self.covers_activation else None
        loop = self.direct_loop(dtype)
        no_bias = self._no_bias[dtype]
        width = wt.shape[-1]

        def call(x: Any, bias: Any) -> Any:
            y = empty(y_shape, dtype)
            y4 = y.reshape(y4_shape)
            has_bias = bias is not None
            bias_arr = np.ascontiguousarray(bias, dtype) if has_bias else no_bias
            loop(np.ascontiguousarray(x).reshape(x4_shape), wt, bias_arr, y4, y4,
                 np.empty(width, dtype), sh, sw, dh, dw, top, left, has_bias, False, code, a0,
                 a1)
            if finish is not None:
                finish(y)
            return y

        return call

    def im2col_loop(self, dtype: np.dtype) -> Callable[..., Any]:
        """:func:`conv_loops.im2col_rows` for ``dtype``."""
        key = ("im2col", dtype)
        loop = self._loops.get(key)
        if loop is None:
            loop = self._loops[key] = conv_loops.im2col_rows.prepare(
                (dtype, 3), (dtype, 2), *([int] * 12))
        return loop

    def epilogue_loop(self, dtype: np.dtype) -> Callable[..., Any]:
        """:func:`conv_loops.epilogue_rows` for ``dtype``."""
        key = ("epilogue", dtype)
        loop = self._loops.get(key)
        if loop is None:
            flat = (dtype, 1)
            loop = self._loops[key] = conv_loops.epilogue_rows.prepare(
                flat, int, int, flat, int, int, flat, flat, int, int, bool, bool, int, float,
                float)
        return loop

    def winograd_loops(self, dtype: np.dtype) -> tuple[Callable[..., Any], Callable[..., Any]]:
        """:func:`conv_loops.winograd_input` and :func:`conv_loops.winograd_output`."""
        key = ("winograd", dtype)
        loops = self._loops.get(key)
        if loops is None:
            loops = self._loops[key] = (
                conv_loops.winograd_input.prepare((dtype, 4), (dtype, 3), *([int] * 5)),
                conv_loops.winograd_output.prepare(
                    (dtype, 3), (dtype, 4), (dtype, 1), (dtype, 4), *([int] * 5), bool,
                    bool, int, float, float))
        return loops

    def winograd(self, plan: Any, u: Any, x: Any, y: Any, bias: Any, z: Any,
                 activate: Callable[[Any], Any] | None, scratch: Scratch) -> None:
        """3x3 Conv as Winograd F(2x2, 3x3): input tiles transformed (compiled), 16 GEMMs
        (16, M, C) @ (16, C, tiles) by numpy's batched matmul (on (C, 16, tiles) buffers), the
        output transform with bias, Z and activation (compiled), chunks of images at a time.
        With several threads, a chunk whose tiles make wide enough GEMMs is split into pieces
        of tile rows (one image) or of images, each transformed, multiplied and finished on
        one thread; other chunks split the 16 GEMMs over the threads."""
        geo = plan.geo
        tiles_h, tiles_w, per_chunk = plan.winograd
        n, c = x.shape[:2]
        m = y.shape[1]
        dtype = y.dtype
        into, out = self.winograd_loops(dtype)
        rows, cols = 2 * tiles_h - geo.out_shape[0], 2 * tiles_w - geo.out_shape[1]
        tiled = WindowGeometry(geo.in_shape, geo.out_shape, geo.pads_begin, geo.pads_end,
                               (rows, cols))
        xpad = padded_input(np, x, tiled, scratch, 0)
        bias_arr, has_bias = self.bias(bias, dtype)
        code, a0, a1 = self.activation(activate)
        z4 = y if z is None else np.ascontiguousarray(z)

        def run(n0: int, n1: int, i0: int, i1: int, threads: int) -> None:
            """Tile rows ``[i0, i1)`` of images ``[n0, n1)``, the GEMMs over ``threads``."""
            count = (n1 - n0) * (i1 - i0) * tiles_w
            v = scratch.take((c, 16, count), dtype)
            mo = scratch.take((m, 16, count), dtype)
            try:
                into(xpad, v, n0, n1, i0, i1, tiles_w)
                matmul_into(u, v.transpose(1, 0, 2), mo.transpose(1, 0, 2), threads)
                out(mo, y, bias_arr, z4, n0, n1, i0, i1, tiles_w, has_bias, z is not None,
                    code, a0, a1)
            finally:
                scratch.give(v)
                scratch.give(mo)

        for n0 in range(0, n, per_chunk):
            n1 = min(n, n0 + per_chunk)
            tiles = (n1 - n0) * tiles_h * tiles_w
            pieces = min(pieces_for(16 * m * c * tiles, self.threads),
                         tiles // WINOGRAD_PIECE_TILES)
            if pieces > 1 and n1 - n0 > 1:
                split_work(lambda a, b: run(n0 + a, n0 + b, 0, tiles_h, 1), n1 - n0, pieces)
            elif pieces > 1 and tiles_h > 1:
                split_work(lambda a, b: run(n0, n1, a, b, 1), tiles_h, pieces)
            else:
                run(n0, n1, 0, tiles_h, self.threads)
        give_padded(scratch, xpad, tiled, 0)
        if activate is not None and not self.covers_activation:
            activate(y)

    def activation(self, activate: Callable[[Any], Any] | None) -> tuple[int, float, float]:
        """(code, a0, a1) the loops apply for a chunk finished with ``activate``."""
        if activate is None or not self.covers_activation:
            return 0, 0.0, 0.0
        return self.code, self.a0, self.a1

    def bias(self, bias: Any, dtype: np.dtype) -> tuple[Any, bool]:
        """(bias array for the loops, whether there is a bias)."""
        if bias is None:
            return self._no_bias[dtype], False
        return np.ascontiguousarray(bias), True

    def depthwise(self, plan: Any, wm: Any, x: Any, y: Any, bias: Any, z: Any,
                  activate: Callable[[Any], Any] | None) -> None:
        """Depthwise Conv into ``y`` with the compiled loop, images x channels split over the
        intra-op threads; then bias, Z and the activation."""
        n, c = x.shape[:2]
        x4 = np.ascontiguousarray(x).reshape((n, c) + (1,) * (4 - x.ndim) + x.shape[2:])
        y4 = y.reshape((n, c) + (1,) * (4 - y.ndim) + y.shape[2:])
        z4 = y4 if z is None else np.ascontiguousarray(z).reshape(y4.shape)
        weights = np.ascontiguousarray(wm.reshape(c, -1))
        bias_arr, has_bias = self.bias(bias, y.dtype)
        code, a0, a1 = self.activation(activate)
        copies, taps, rows, columns, phases, sh, sw = plan.depthwise_args
        loop = self.depthwise_loop(y.dtype)

        def work(start: int, stop: int) -> None:
            loop(x4, weights, bias_arr, z4, y4, copies, taps, rows, columns, phases, sh, sw,
                 has_bias, z is not None, code, a0, a1, 0.0, start, stop)

        plane = max(1, y4.shape[2] * y4.shape[3])
        split_work(work, n * c, self.threads, max(1, MIN_PIECE_OUTPUTS // plane))
        if activate is not None and not self.covers_activation:
            activate(y)


#: Winograd F(2x2, 3x3) for 3x3 convolutions with unit strides and dilations, one group and
#: at least this many input and output channels and 2x2 output tiles in all (fewer tiles make
#: GEMMs too thin for BLAS); tiles per chunk of images
WINOGRAD_MIN_CHANNELS = 16
WINOGRAD_MIN_TILES = 32
WINOGRAD_TILES = 2048
#: tiles a thread's piece of a Winograd chunk holds at least (fewer make the GEMMs too thin:
#: such chunks split their 16 GEMMs over the threads instead)
WINOGRAD_PIECE_TILES = 64
_WINOGRAD_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])


def winograd_fits(wa: WindowAttrs, geo: WindowGeometry, n: int, c: int, m: int,
                   group: int) -> bool:
    """Whether Conv runs as Winograd F(2x2, 3x3) (see :data:`WINOGRAD_MIN_CHANNELS`)."""
    if wa.kernel != (3, 3) or wa.strides != (1, 1) or wa.dilations != (1, 1) or group != 1:
        return False
    if c < WINOGRAD_MIN_CHANNELS or m < WINOGRAD_MIN_CHANNELS or any(geo.extra_end):
        return False
    tiles = n * (-(-geo.out_shape[0] // 2)) * (-(-geo.out_shape[1] // 2))
    return tiles >= WINOGRAD_MIN_TILES


#: multiply-adds up to which a Conv of at most DIRECT_MAX_POSITIONS output positions (all
#: images) runs as one direct compiled call (im2col, GEMM and epilogue cost 20-30 µs in
#: calls; numpy's 1-D path 40 µs for a 128-input dot product). The direct loop works
#: position by position, vectorized over output channels (about 5 ns per position, input
#: channel and tap): measured against the GEMM path, it won at 1-9 positions (a VAD's
#: Conv1d, squeeze-excitation 1x1s at 1x1) and lost 1.5-6x from 144 (PP-OCR's classifier:
#: 3 -> 8 channels over 2304 positions took 235 µs against 50)
DIRECT_MAX_MACS = 1 << 19
DIRECT_MAX_POSITIONS = 32


def direct_fits(wa: WindowAttrs, geo: WindowGeometry, n: int, c: int, m: int,
                group: int) -> bool:
    """Whether Conv runs as :func:`conv_loops.direct_conv2d` (1-D/2-D, small)."""
    if len(wa.kernel) not in (1, 2):
        return False
    positions = n * math.prod(geo.out_shape)
    macs = m * positions * (c // group) * math.prod(wa.kernel)
    return macs <= DIRECT_MAX_MACS and positions <= DIRECT_MAX_POSITIONS


def direct_weights(w: Any, group: int, dtype: np.dtype) -> Any:
    """W (M, C/G, *kernel) as (G, C/G, KH, KW, M/G) in ``dtype`` (1-D kernels as KH = 1)."""
    m, cg = w.shape[:2]
    kernel = (1,) * (4 - w.ndim) + tuple(w.shape[2:])
    w5 = w.reshape((group, m // group, cg) + kernel)
    return np.ascontiguousarray(w5.transpose(0, 2, 3, 4, 1).astype(dtype, copy=False))


def winograd_weights(wm: Any, w_shape: tuple[int, ...]) -> Any:
    """U = G g G^T of every 3x3 filter g, as (16, M, C) in W's compute dtype (computed in
    float64)."""
    m, c = w_shape[:2]
    g = wm.reshape(m, c, 3, 3).astype(np.float64)
    u = np.einsum("ij,mcjk,lk->ilmc", _WINOGRAD_G, g, _WINOGRAD_G)
    return np.ascontiguousarray(u.reshape(16, m, c).astype(wm.dtype))


def depthwise_loop_args(geo: WindowGeometry, wa: WindowAttrs) -> tuple:
    """The :func:`conv_loops.depthwise_conv2d` arguments describing the windows: copies into
    the stride phases, the taps' offsets, plane rows and columns, phases, strides (1-D
    windows as 2-D ones of one row)."""
    if len(wa.kernel) == 1:
        geo = WindowGeometry((1,) + geo.in_shape, (1,) + geo.out_shape, (0,) + geo.pads_begin,
                             (0,) + geo.pads_end, (0,) + geo.extra_end)
        wa = WindowAttrs((1,) + wa.kernel, (1,) + wa.strides, (1,) + wa.dilations,
                         (0, wa.pads[0], 0, wa.pads[1]), wa.auto_pad, wa.ceil_mode)
    layout = phase_layout(geo, wa)
    rows, columns = layout.plane
    copies = np.array([(phase, r.start, r.stop - r.start, c.start, c.stop - c.start,
                        x_rows.start, x_cols.start)
                       for phase, r, c, x_rows, x_cols in layout.copies], np.int64).reshape(-1, 7)
    taps = np.array([phase * rows * columns + offset for phase, offset in layout.taps],
                    np.int64)
    return (copies, taps, rows, columns, layout.phases) + wa.strides


def product_finished(w: Any, cols: Any, out: Any, threads: int,
                     complete: Callable[[int, int, int, int], Any]) -> None:
    """``out = w @ cols`` (2-D; ``out`` may be a view with a row pitch), then
    ``complete(r0, r1, c0, c1)`` on the block of rows ``[r0, r1)`` and columns ``[c0, c1)``
    each thread computed, split over up to ``threads`` threads by rows of W (or, for few rows,
    columns of ``cols``) as :func:`~ort_provider_cpu.threaded_gemm.matmul_into` splits. Each
    thread finishes its own block while it is in its core's cache: finishing a split product
    on one thread read half of it from the other core's cache (a 144x24 by 24x3136 pointwise
    Conv took 1.6x its one-thread time at two threads here)."""
    m, width = out.shape
    pieces = pieces_for(m * w.shape[1] * width, threads)

    def rows(r0: int, r1: int) -> None:
        np.matmul(w[r0:r1], cols, out=out[r0:r1])
        complete(r0, r1, 0, width)

    def columns(c0: int, c1: int) -> None:
        np.matmul(w, cols[:, c0:c1], out=out[:, c0:c1])
        complete(0, m, c0, c1)

    if pieces > 1 and m >= 16 * pieces:
        split_work(rows, m, pieces)
    elif pieces > 1 and width >= 16 * pieces:
        split_work(columns, width, pieces)
    else:
        rows(0, m)


def conv_gemm_compiled(loops: ConvLoops, plan: Any, wa: WindowAttrs, wm: Any, x: Any,
                        y: Any, bias: Any, z: Any, activate: Callable[[Any], Any] | None,
                        scratch: Scratch) -> None:
    """2-D Conv by im2col and GEMM as :func:`_conv_gemm`, with compiled loops building the
    columns straight from X (padding written as zeros, no padded copy) and finishing each
    chunk (bias, Z, activation) in one pass."""
    geo = plan.geo
    n, c = x.shape[:2]
    group, mg = wm.shape[:2]
    m, cg = group * mg, c // group
    out_w = geo.out_shape[1]
    positions = geo.out_shape[0] * out_w
    (kh, kw), (sh, sw), (dh, dw) = wa.kernel, wa.strides, wa.dilations
    top, left = geo.pads_begin
    x = np.ascontiguousarray(x)
    dtype = y.dtype
    im2col = loops.im2col_loop(dtype)
    epilogue = loops.epilogue_loop(dtype)
    bias_arr, has_bias = loops.bias(bias, dtype)
    code, a0, a1 = loops.activation(activate)
    finish = activate if activate is not None and not loops.covers_activation else None
    y_flat = y.reshape(-1)
    y3 = y.reshape(n, m, positions)
    z_flat = y_flat if z is None else np.ascontiguousarray(z).reshape(-1)
    has_z = z is not None
    def epilogue_into(src: Any, s_off: int, s_pitch: int, d_off: int, r0: int, r1: int,
                      columns: int) -> None:
        """Bias, Z and activation of rows ``[r0, r1)`` (output channels) of a block."""
        epilogue(src, s_off, s_pitch, y_flat, d_off, positions, z_flat,
                 bias_arr[r0:r1] if has_bias else bias_arr, r1 - r0, columns, has_bias, has_z,
                 code, a0, a1)

    if plan.pointwise and group == 1 and len(plan.chunks) == n and finish is None:
        # 1x1: one GEMM per image straight from X, each block finished where it was computed;
        # several images go to the threads whole where the work pays for the hand-off
        x3 = x.reshape(n, c, positions)
        w0 = wm[0]

        def images(i0: int, i1: int, threads: int = 1) -> None:
            for i in range(i0, i1):
                offset = i * m * positions

                def complete(r0: int, r1: int, c0: int, c1: int, offset: int = offset) -> None:
                    at = offset + r0 * positions + c0
                    epilogue_into(y_flat, at, positions, at, r0, r1, c1 - c0)

                product_finished(w0, x3[i], y3[i], threads, complete)

        pieces = pieces_for(n * m * positions * c, loops.threads)
        if n > 1 and pieces > 1:
            split_work(images, n, pieces)
        else:
            images(0, n, loops.threads)
        return
    k = cg * kh * kw

    def run_chunk(n0: int, n1: int, r0: int, r1: int, cols_buf: Any, out_buf: Any,
                  threads: int) -> None:
        """im2col, GEMM and epilogue of one chunk, its GEMM over ``threads`` threads."""
        images = n1 - n0
        width = (r1 - r0) * out_w
        if plan.pointwise and images == 1:
            cols = x[n0].reshape(group, cg, positions)[:, :, r0 * out_w:r1 * out_w]
        elif plan.pointwise:  # whole images side by side
            cols = cols_buf[: group * k * images * width].reshape(group, k, images * width)
            for i in range(images):
                np.copyto(cols[:, :, i * width:(i + 1) * width],
                          x[n0 + i].reshape(group, cg, positions))
        else:
            cols = cols_buf[: group * k * images * width].reshape(group, k, images * width)
            for i in range(images):
                for g in range(group):
                    im2col(x[n0 + i, g * cg:(g + 1) * cg], cols[g], i * width, out_w, kh, kw,
                           sh, sw, dh, dw, top, left, r0, r1)
        if images == 1:
            out = y3[n0][:, r0 * out_w:r1 * out_w]
            offset = n0 * m * positions + r0 * out_w
            if group == 1 and finish is None:

                def complete(q0: int, q1: int, c0: int, c1: int) -> None:
                    at = offset + q0 * positions + c0
                    epilogue_into(y_flat, at, positions, at, q0, q1, c1 - c0)

                product_finished(wm[0], cols[0], out, threads, complete)
                return
            for g in range(group):
                matmul_into(wm[g], cols[g], out[g * mg:(g + 1) * mg], threads)
            epilogue(y_flat, offset, positions, y_flat, offset, positions, z_flat, bias_arr, m,
                     width, has_bias, has_z, code, a0, a1)
        else:
            product = out_buf[: m * images * width].reshape(m, images * width)
            if group == 1 and finish is None:

                def complete(q0: int, q1: int, c0: int, c1: int) -> None:
                    for i in range(c0 // width, -(-c1 // width)):
                        lo, hi = max(c0, i * width), min(c1, (i + 1) * width)
                        epilogue_into(out_buf, q0 * images * width + lo, images * width,
                                      (n0 + i) * m * positions + q0 * positions + lo - i * width,
                                      q0, q1, hi - lo)

                product_finished(wm[0], cols[0], product, threads, complete)
                return
            for g in range(group):
                matmul_into(wm[g], cols[g], product[g * mg:(g + 1) * mg], threads)
            out = y3[n0:n1]
            for i in range(images):
                epilogue(out_buf, i * width, images * width, y_flat, (n0 + i) * m * positions,
                         positions, z_flat, bias_arr, m, width, has_bias, has_z, code, a0, a1)
        if finish is not None:
            finish(out)

    def run_chunks(c0: int, c1: int, threads: int = 1) -> None:
        """Chunks ``[c0, c1)`` of the plan with buffers of their own (pieces of the chunks run
        on several threads at once)."""
        cols_buf = scratch.take((plan.cols_size,), dtype) if plan.cols_size else None
        out_buf = scratch.take((plan.out_size,), dtype) if plan.out_size else None
        try:
            for chunk in plan.chunks[c0:c1]:
                run_chunk(*chunk, cols_buf, out_buf, threads)
        finally:
            if cols_buf is not None:
                scratch.give(cols_buf)
            if out_buf is not None:
                scratch.give(out_buf)

    count = len(plan.chunks)
    pieces = pieces_for(n * m * positions * k, loops.threads)
    if count >= 2 and pieces > 1 and finish is None:
        # whole chunks per thread: each builds, multiplies and finishes its own columns (a
        # chunk's GEMM alone is often too small to split)
        split_work(run_chunks, count, pieces)
    else:
        run_chunks(0, count, loops.threads)
