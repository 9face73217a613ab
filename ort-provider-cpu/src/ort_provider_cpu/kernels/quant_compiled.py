"""Compiled paths of :mod:`.quantize`'s kernels (numba loops of :mod:`.quant_loops`):
QuantizeLinear / DequantizeLinear over ``(outer, axis, inner)`` views, QLinearMatMul's prepared
B, and QLinearConv / ConvInteger with a constant W (centering pass, exact float32 Conv,
requantizing pass; depthwise ones through the float Conv's depthwise loop reading the integers
themselves; on CPUs with AVX-512 VNNI, QLinearConv of one group by the integer GEMM of
:mod:`.int8_gemm`). The kernels in :mod:`.quantize` decide when these apply and keep their
numpy code as the reference and fallback."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from ort.ep import NodeInfo

from ..jit import compiled_loops_enabled
from . import quant_loops
from .contrib_quant_common import EXACT_F32, IntegerOperand
from ..intra_op import resolve_threads, split_work
from .conv import conv_kernel
from . import conv_compiled, int8_gemm
from .conv_loops import depthwise_requantized
from .int8_gemm import VnniConv
from .windows import Scratch, read_window_attrs, window_geometry

__all__ = ["LOOP_INTEGERS", "CompiledQLinearConv", "block_view", "dequantize_compiled",
           "qlinear_matmul_operand", "quantize_compiled"]

_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_EIGHT_BIT = frozenset(np.dtype(t) for t in (np.uint8, np.int8))
#: the integer types of the compiled loops and their ranges
_RANGES = {np.dtype(t): (int(np.iinfo(t).min), int(np.iinfo(t).max))
           for t in (np.uint8, np.int8, np.uint16, np.int16)}

#: Integer types the compiled Q/DQ loops take (the others run numpy).
LOOP_INTEGERS = frozenset(np.dtype(t) for t in (np.uint8, np.int8, np.uint16, np.int16))


def block_view(where: str, qa: Any, shape: tuple[int, ...], param: Any,
                zero_point: Any) -> tuple[tuple[int, int, int], Any, Any, int] | None:
    """The ``(outer, axis, inner)`` view of an input of ``shape``, its scale and zero point
    as ``(outer or 1, blocks, inner or 1)`` arrays and the block length, as the compiled
    loops read them (None where the parameters do not fit: the numpy path then runs and
    raises its error)."""
    size = int(np.prod(shape)) if shape else 1
    if param.size == 1:
        return (1, size, 1), param.reshape(1, 1, 1), zero_point.reshape(1, 1, 1), max(size, 1)
    if qa.per_tensor_only or not shape or zero_point.shape != param.shape:
        return None
    rank = len(shape)
    axis = qa.axis + rank if qa.axis < 0 else qa.axis
    if not 0 <= axis < rank:
        return None
    outer, length = int(np.prod(shape[:axis])), shape[axis]
    inner = int(np.prod(shape[axis + 1:]))
    if not qa.block_size:
        if param.ndim != 1 or param.shape[0] != length:
            return None
        return ((outer, length, inner), param.reshape(1, length, 1),
                zero_point.reshape(1, length, 1), 1)
    blocks = -(-length // qa.block_size)
    if param.shape != shape[:axis] + (blocks,) + shape[axis + 1:]:
        return None
    return ((outer, length, inner), param.reshape(outer, blocks, inner),
            zero_point.reshape(outer, blocks, inner), qa.block_size)


def quantize_compiled(where: str, qa: Any, x: Any, scale: Any, zero_point: Any,
                       out_dtype: np.dtype, out: Any) -> Any | None:
    """QuantizeLinear of float32 ``x`` with float32 scales into an 8/16-bit integer type in
    one compiled pass (None where the view does not apply)."""
    if zero_point is None:
        zero_point = np.zeros(scale.shape, out_dtype)
    view = block_view(where, qa, x.shape, scale, zero_point)
    if view is None:
        return None
    dims, scale3, zp3, block = view
    low, high = _RANGES[out_dtype]
    if scale3.size == 1:  # per tensor: one vectorized run
        loop = quant_loops.quantize_run.prepare((_F32, 1), _F32, int, int, int, (out_dtype, 1))
        if out.size:
            loop(np.ascontiguousarray(x).reshape(-1), np.float32(scale3.reshape(())),
                 int(zp3.reshape(())), low, high, out.reshape(-1))
        return out
    loop = quant_loops.quantize_blocks.prepare((_F32, 3), (_F32, 3, "A"), (out_dtype, 3, "A"),
                                               int, int, int, (out_dtype, 3))
    if out.size:
        loop(np.ascontiguousarray(x).reshape(dims), scale3, zp3, block, low, high,
             out.reshape(dims))
    return out


def dequantize_compiled(where: str, qa: Any, x: Any, scale: Any, zero_point: Any,
                         out: Any) -> Any | None:
    """DequantizeLinear of an 8/16-bit integer ``x`` with float32 scales into float32 in one
    compiled pass (None where the view does not apply)."""
    if zero_point is None:
        zero_point = np.zeros(scale.shape, x.dtype)
    view = block_view(where, qa, x.shape, scale, zero_point)
    if view is None:
        return None
    dims, scale3, zp3, block = view
    if scale3.size == 1:  # per tensor: one vectorized run
        run = quant_loops.dequantize_run.prepare((x.dtype, 1), _F32, int, (_F32, 1))
        if out.size:
            run(np.ascontiguousarray(x).reshape(-1), np.float32(scale3.reshape(())),
                int(zp3.reshape(())), out.reshape(-1))
        return out
    loop = quant_loops.dequantize_blocks.prepare((x.dtype, 3), (_F32, 3, "A"),
                                                 (x.dtype, 3, "A"), int, (_F32, 3))
    if out.size:
        loop(np.ascontiguousarray(x).reshape(dims), scale3, zp3, block, out.reshape(dims))
    return out


def qlinear_matmul_operand(node: NodeInfo) -> IntegerOperand | None:
    """``B - b_zero_point`` prepared once for the compiled QLinearMatMul: a constant 2-D
    8-bit B with a constant per-tensor or per-column zero point (else None: numpy)."""
    if not compiled_loops_enabled(node):
        return None
    consts = list(node.const_inputs) + [None] * 8
    b, zp = consts[3], consts[5]
    if b is None or zp is None:
        return None
    b, zp = np.asarray(b), np.asarray(zp)
    if b.ndim != 2 or b.dtype not in _EIGHT_BIT or zp.size not in (1, b.shape[1]):
        return None
    return IntegerOperand(b.astype(_F64) - zp.astype(_F64).reshape(-1))




class CompiledQLinearConv:
    """QLinearConv with a constant int8/uint8 W in three passes: X minus its zero point as
    float32 (one compiled pass, which also sums the squares per position), the float32 Conv
    kernel (im2col + BLAS, exact: see :meth:`exact_in_f32`), and one compiled requantizing
    pass (int32 bias, float32 multiplier per channel, half to even, zero point, saturation),
    as MLAS does. Where float32 cannot be shown exact the float64 Conv runs instead."""

    def __init__(self, node: NodeInfo, centered: np.ndarray, fallback) -> None:
        self.weights = centered.astype(_F32)
        flat = centered.reshape(centered.shape[0], -1)
        self.taps = int(np.prod(centered.shape[2:])) if centered.ndim > 2 else 1
        self.per_output = flat.shape[1]
        self.w_max = float(np.abs(flat).max()) if flat.size else 0.0
        self.w_norm = float(np.sqrt((flat * flat).sum(axis=1).max())) if flat.size else 0.0
        conv_node = dataclasses.replace(
            node, op_type="Conv", domain="", input_names=["x", "w"],
            const_inputs=[None, self.weights], input_dtypes=[_F32, _F32],
            input_shapes=[None, None])
        self.conv32 = conv_kernel(conv_node)
        group = int(node.attrs.get("group", 1))
        # depthwise 2-D: the float depthwise loop over X itself (9 or so taps: no GEMM to win)
        self.depthwise = None
        if (centered.ndim == 4 and group > 1 and centered.shape[:2] == (group, 1)
                and self.taps * 255 * max(self.w_max, 1) < EXACT_F32):
            self.window = read_window_attrs(node, centered.shape[2:], pooling=False)
            self.depthwise = np.ascontiguousarray(centered.reshape(group, -1), _F32)
            self.tap_sums = centered.reshape(group, -1).astype(np.int64).sum(axis=1)
            # the largest |sum of taps| an output can reach before the bias
            self.depthwise_bound = self.taps * 255 * max(self.w_max, 1)
            self.plans: dict[tuple, Any] = {}
            self.threads = resolve_threads(node.intra_op_threads)
        # one group, weights that fit a signed byte, a CPU with AVX-512 VNNI: integer GEMM
        self.vnni = (VnniConv(node, centered)
                     if int8_gemm.fits(centered, group) and int8_gemm.vnni_available() else None)
        self.fallback = fallback
        self.scratch = Scratch(np)
        self.node = node
        self.loops: dict[tuple, tuple] = {}
        self.no_bias = np.empty(0, np.int32)

    def exact_in_f32(self, x_max: float, largest_squares: float,
                     simple_only: bool = False) -> bool:
        """Whether every partial sum of the float32 Conv is an exact integer: each output sums
        ``K`` products of X and W; its absolute sum is at most ``K * max|x| * max|w|`` and,
        by Cauchy-Schwarz, at most ``sqrt(taps * max_p sum_c x[c, p]**2) * max_m |W_m|``
        (``simple_only``: the first bound alone, before the squares are known)."""
        simple = self.per_output * x_max * self.w_max
        if simple_only:
            return simple < EXACT_F32
        norms = np.sqrt(self.taps * largest_squares) * self.w_norm
        return min(simple, norms) < EXACT_F32

    def loops_for(self, x_dtype: np.dtype, y_dtype: np.dtype) -> tuple:
        """The compiled loops (prepared once) for an X of ``x_dtype`` and a Y of ``y_dtype``."""
        key = (x_dtype, y_dtype)
        found = self.loops.get(key)
        if found is None:
            center = quant_loops.center_planes.prepare((x_dtype, 3), int, (_F32, 3), (_F64, 2))
            specs = ((np.int32, 1), (_F32, 1), int, int, int, (y_dtype, 3))
            found = self.loops[key] = (
                center,
                quant_loops.requantize_planes.prepare((_F32, 3), *specs),
                quant_loops.requantize_planes.prepare((_F64, 3), *specs))
        return found

    def run_depthwise(self, x, x_zp: int, multiplier, bias, y_zero_point):
        """The depthwise Conv (None where X does not fit or the bias cannot be folded in
        exactly: the GEMM path runs). :func:`conv_loops.depthwise_requantized` reads X as it
        is, its padding as X's zero point, and sums the centered weights' taps in float32
        (exact: the factory checked ``taps * 255 * max|w| < 2**24``), adding per channel the
        int32 bias minus the zero point's share ``x_zp * sum(w)``, which leaves exactly MLAS's
        int32 accumulator plus bias, and requantizes each output as it writes it. Images x
        channels are split over the intra-op threads."""
        if x.ndim != 4 or x.shape[1] != self.depthwise.shape[0]:
            return None
        plan = self.plans.get(x.shape[2:])
        if plan is None:
            geo = window_geometry(self.node, self.window, x.shape[2:])
            plan = self.plans[x.shape[2:]] = (
                geo, conv_compiled.depthwise_loop_args(geo, self.window))
        geo, (copies, taps, rows, columns, phases, sh, sw) = plan
        n, channels = x.shape[:2]
        folded = -x_zp * self.tap_sums
        if bias.shape[0] == channels:
            folded = folded + bias.astype(np.int64)
        if float(np.abs(folded).max()) + self.depthwise_bound >= EXACT_F32:
            return None
        folded = folded.astype(_F32)
        out_dtype = y_zero_point.dtype
        loop = depthwise_requantized.prepare(
            (x.dtype, 4), (_F32, 2), (_F32, 1), (_F32, 1), int, int, int, (out_dtype, 4),
            (np.int64, 2), (np.int64, 1), int, int, int, int, int, float, int, int)
        if multiplier.shape[0] != channels:
            multiplier = np.full(channels, multiplier[0], _F32)
        out = self.node.empty(x.shape[:2] + geo.out_shape, out_dtype)
        if not out.size:
            return out
        low, high = _RANGES[out_dtype]
        y_zp = int(y_zero_point.reshape(()))

        def work(start: int, stop: int) -> None:
            loop(x, self.depthwise, folded, multiplier, y_zp, low, high, out, copies, taps,
                 rows, columns, phases, sh, sw, float(x_zp), start, stop)

        plane = max(1, out.shape[2] * out.shape[3])
        split_work(work, n * channels, self.threads,
                   max(1, conv_compiled.MIN_PIECE_OUTPUTS // plane))
        return out

    def accumulate(self, x, x_zp: int, center=None):
        """The exact integer Conv of ``x - x_zp`` and the centered W: float32 where
        :meth:`exact_in_f32` holds, else float64."""
        if center is None:
            center = quant_loops.center_planes.prepare((x.dtype, 3), int, (_F32, 3), (_F64, 2))
        low, high = _RANGES[x.dtype]
        n, c = x.shape[:2]
        positions = int(np.prod(x.shape[2:])) if x.ndim > 2 else 1
        centered = self.scratch.take(x.shape, _F32)
        x_max = float(max(x_zp - low, high - x_zp))
        if self.exact_in_f32(x_max, 0.0, simple_only=True):
            # the bound from the ranges alone holds: center without the sums of squares
            if x.size:
                quant_loops.dequantize_run.prepare((x.dtype, 1), _F32, int, (_F32, 1))(
                    x.reshape(-1), np.float32(1), x_zp, centered.reshape(-1))
            exact = True
        else:
            squares = self.scratch.take((n, positions), _F64)
            largest = center(x.reshape(n, c, positions), x_zp,
                             centered.reshape(n, c, positions), squares) if x.size else 0.0
            self.scratch.give(squares)
            exact = self.exact_in_f32(x_max, largest)
        if exact:
            acc = self.conv32(centered, self.weights)
        else:
            acc = self.fallback(centered.astype(_F64), None, None)
        self.scratch.give(centered)
        return acc

    def integers(self, x, x_zp: int):
        """ConvInteger: the int32 Conv of ``x - x_zp`` and the centered W (VNNI where it
        runs, else the exact float Conv converted)."""
        if self.vnni is not None and int8_gemm.vnni_available():
            out = self.vnni.integers(x, x_zp)
            if out is not None:
                return out
        acc = self.accumulate(x, x_zp)
        out = self.node.empty(acc.shape, np.int32)
        np.copyto(out, acc, casting="unsafe")
        return out

    def __call__(self, x, x_scale, x_zero_point, w_scale, y_scale, y_zero_point, b):
        x = np.ascontiguousarray(x)
        if self.depthwise is not None:
            multiplier = ((np.float32(x_scale.reshape(())) * w_scale.astype(_F32).reshape(-1))
                          / np.float32(y_scale.reshape(()))).astype(_F32)
            bias = self.no_bias if b is None else np.ascontiguousarray(b, np.int32).reshape(-1)
            out = self.run_depthwise(x, int(x_zero_point.reshape(())), multiplier, bias,
                                     y_zero_point)
            if out is not None:
                return out
        if self.vnni is not None and int8_gemm.vnni_available():
            multiplier = ((np.float32(x_scale.reshape(())) * w_scale.astype(_F32).reshape(-1))
                          / np.float32(y_scale.reshape(()))).astype(_F32)
            bias = self.no_bias if b is None else np.ascontiguousarray(b, np.int32).reshape(-1)
            low, high = _RANGES[y_zero_point.dtype]
            out = self.vnni(x, int(x_zero_point.reshape(())), multiplier, bias, y_zero_point,
                            low, high)
            if out is not None:
                return out
        center, requant32, requant64 = self.loops_for(x.dtype, y_zero_point.dtype)
        acc = self.accumulate(x, int(x_zero_point.reshape(())), center)
        requant = requant32 if acc.dtype == _F32 else requant64
        multiplier = ((np.float32(x_scale.reshape(())) * w_scale.astype(_F32).reshape(-1))
                      / np.float32(y_scale.reshape(()))).astype(_F32)
        bias = self.no_bias if b is None else np.ascontiguousarray(b, dtype=np.int32).reshape(-1)
        y_low, y_high = _RANGES[y_zero_point.dtype]
        out = self.node.empty(acc.shape, y_zero_point.dtype)
        if out.size:
            m = acc.shape[1]
            requant(acc.reshape(acc.shape[0], m, -1), bias, multiplier,
                    int(y_zero_point.reshape(())), y_low, y_high, out.reshape(out.shape[0], m, -1))
        return out
