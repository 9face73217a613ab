"""CPU kernels: quantization (QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear,
QLinearMatMul, QLinearConv, ConvInteger) and BitCast.

Quantized types are numpy integers and ml_dtypes' narrow types (int4/uint4/int2/uint2, float8,
float4e2m1). A scale or zero point applies per tensor (scalar or one element), per axis (1-D
along ``axis``) or per block (same rank as the input, ``block_size`` elements per scale along
``axis``); :func:`_expand_param` turns it into an array that broadcasts against the input.
Rounding to integers is half to even (``rint``); integer results saturate to the type's range,
float8 results saturate to the largest finite value when ``saturate`` is set.

Integer products (QLinearMatMul, QLinearConv, ConvInteger) run in float BLAS on the operands
shifted by their zero points: float32 where a bound proves every partial sum an exact integer
below 2**24 (:mod:`.contrib_quant_common`), float64 otherwise (exact far beyond any realistic
size). Where numba is available (:func:`~ort_provider_cpu.jit.compiled_loops_enabled`), the
8/16-bit QuantizeLinear/DequantizeLinear/DynamicQuantizeLinear of float32 data, the shifting
of QLinearConv's and QLinearMatMul's inputs and their requantization (MLAS's: float32
multiplier, half to even, zero point, saturation) are single compiled passes
(:mod:`.quant_loops`), and a depthwise QLinearConv is one pass of its own; the numpy code
stays as the reference and the fallback.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import ml_dtypes
import numpy as np
from onnx import TensorProto
from ort.ep import KernelTable, NodeInfo, np_dtype_of

from ..jit import compiled_loops_enabled
from . import quant_loops
from .contrib_quant_common import (IntegerOperand, center_rows, dynamic_params,
                                   exact_product, requantize_rows)
from .conv import conv as _conv_factory
from .conv import conv_kernel
from .float_work import LOW_PRECISION, work_dtype
from .kernel_args import normalize_axis
from .windows import Scratch, read_window_attrs, window_geometry

kernels = KernelTable()

_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_E8M0 = np.dtype(ml_dtypes.float8_e8m0fnu)
_EIGHT_BIT = frozenset(np.dtype(t) for t in (np.uint8, np.int8))

#: Integer quantized types -> their saturation range.
_INTEGER_RANGES: dict[np.dtype, tuple[int, int]] = {
    np.dtype(np.uint8): (0, 255),
    np.dtype(np.int8): (-128, 127),
    np.dtype(np.uint16): (0, 65535),
    np.dtype(np.int16): (-32768, 32767),
    np.dtype(ml_dtypes.uint4): (0, 15),
    np.dtype(ml_dtypes.int4): (-8, 7),
    np.dtype(ml_dtypes.uint2): (0, 3),
    np.dtype(ml_dtypes.int2): (-2, 1),
}
#: float8 types with an overflow behavior chosen by ``saturate``.
_FLOAT8 = frozenset(np.dtype(t) for t in (
    ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e4m3fnuz,
    ml_dtypes.float8_e5m2, ml_dtypes.float8_e5m2fnuz,
))
#: Narrow float types without infinity or NaN: the conversion itself saturates.
_SATURATING_FLOATS = frozenset(
    np.dtype(getattr(ml_dtypes, name))
    for name in ("float4_e2m1fn", "float6_e2m3fn", "float6_e3m2fn")
    if hasattr(ml_dtypes, name)
)
_QUANTIZED = frozenset(_INTEGER_RANGES) | _FLOAT8 | _SATURATING_FLOATS
#: Scale types division/multiplication can run in (others, e.g. int32 or e8m0, use float32).
_ARITHMETIC_FLOATS = frozenset(
    np.dtype(t) for t in (np.float16, np.float32, np.float64, ml_dtypes.bfloat16)
)


# ---------------------------------------------------------------------------------------
# shared helpers
# ---------------------------------------------------------------------------------------

def _dtype_attr(node: NodeInfo, name: str) -> np.dtype | None:
    """Return the dtype named by an element-type attribute (0 or absent: None)."""
    code = int(node.attrs.get(name, 0) or 0)
    if code == 0:
        return None
    try:
        return np_dtype_of(code)
    except ValueError as error:
        raise ValueError(f"{node.describe()}: {name}: {error}") from None


def _input_dtype(node: NodeInfo, index: int) -> np.dtype | None:
    """Return the dtype of input ``index`` when known at session creation."""
    if not node.has_input(index) or index >= len(node.input_dtypes):
        return None
    dtype = node.input_dtypes[index]
    return None if dtype is None else np.dtype(dtype)


def _arithmetic_dtype(dtype: np.dtype) -> np.dtype:
    """Return the float type arithmetic on values of ``dtype`` runs in."""
    return dtype if dtype in _ARITHMETIC_FLOATS else _F32


def _expand_param(where: str, param: Any, shape: tuple[int, ...], axis: int,
                  block_size: int) -> Any:
    """Return a scale or zero point shaped to broadcast against an input of ``shape``:
    per tensor (scalar or one element), per axis (1-D of length ``shape[axis]``) or
    blocked (``block_size > 0``, same rank, ``ceil(shape[axis] / block_size)`` along axis)."""
    if param.size == 1:
        return param.reshape(())
    rank = len(shape)
    ax = normalize_axis(where, axis, rank)
    if not block_size:
        if param.ndim != 1 or param.shape[0] != shape[ax]:
            raise ValueError(
                f"{where}: scale/zero point of shape {param.shape} must be a scalar or 1-D of "
                f"length {shape[ax]} (input shape {shape}, axis {axis})"
            )
        return param.reshape((1,) * ax + (-1,) + (1,) * (rank - ax - 1))
    expected = shape[:ax] + (-(-shape[ax] // block_size),) + shape[ax + 1:]
    if param.shape != expected:
        raise ValueError(
            f"{where}: blocked scale/zero point of shape {param.shape} does not match input "
            f"shape {shape} with axis {axis} and block_size {block_size} (expected {expected})"
        )
    expanded = np.repeat(param, block_size, axis=ax)
    if expanded.shape[ax] != shape[ax]:
        expanded = expanded[(slice(None),) * ax + (slice(0, shape[ax]),)]
    return expanded


def _saturate_cast(values: Any, dtype: np.dtype, saturate: bool = True) -> Any:
    """Round float ``values`` into quantized ``dtype``: integers half to even and clipped to
    the type's range (NaN -> the type's minimum, as onnxruntime); float8 clipped to +-max when ``saturate`` (else overflow
    gives NaN/inf as the type has); float4/float6 saturate by themselves."""
    limits = _INTEGER_RANGES.get(dtype)
    if limits is not None:
        rounded = np.rint(values)
        if rounded.dtype.kind == "f":
            rounded = np.where(np.isnan(rounded), limits[0], rounded)
        clipped = np.clip(rounded, limits[0], limits[1])
        return clipped.astype(np.int32).astype(dtype)
    if values.dtype in LOW_PRECISION:
        values = values.astype(_F32)
    if dtype in _FLOAT8 and saturate:
        limit = float(ml_dtypes.finfo(dtype).max)
        values = np.clip(values, -limit, limit)
    return values.astype(dtype)


def _quantized_output_dtype(node: NodeInfo, zero_point_index: int, default: np.dtype | None):
    """Return the fixed output dtype of a quantizing node: the zero point's type when known,
    else ``output_dtype``, else ``default``; None when it depends on a runtime zero point."""
    output_dtype = _dtype_attr(node, "output_dtype")
    zp_dtype = _input_dtype(node, zero_point_index)
    if output_dtype is not None and zp_dtype is not None and output_dtype != zp_dtype:
        raise ValueError(
            f"{node.describe()}: output_dtype {output_dtype} differs from the zero point "
            f"type {zp_dtype}"
        )
    chosen = zp_dtype if zp_dtype is not None else output_dtype
    if chosen is None and not node.has_input(zero_point_index):
        chosen = default
    if chosen is not None and chosen not in _QUANTIZED:
        raise ValueError(f"{node.describe()}: {chosen} is not a quantized type")
    return chosen


# ---------------------------------------------------------------------------------------
# QuantizeLinear / DequantizeLinear
# ---------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class _QuantAttrs:
    """Granularity attributes of a QuantizeLinear/DequantizeLinear node."""

    axis: int
    block_size: int
    per_tensor_only: bool


def _quant_attrs(node: NodeInfo) -> _QuantAttrs:
    """Read axis (13+) and block_size (21+) of a Q/DQ node; version 10 is per tensor only."""
    block_size = int(node.attrs.get("block_size", 0) or 0)
    if block_size < 0:
        raise ValueError(f"{node.describe()}: block_size must be >= 0, got {block_size}")
    return _QuantAttrs(int(node.attrs.get("axis", 1)), block_size, node.since_version < 13)


def _params(node: NodeInfo, qa: _QuantAttrs, x: Any, *params: Any) -> list[Any]:
    """Return the scale/zero point inputs expanded to broadcast against x (None stays)."""
    where = node.describe()
    out = []
    for p in params:
        if p is None:
            out.append(None)
            continue
        if qa.per_tensor_only and p.size != 1:
            raise ValueError(f"{where}: scale and zero point must be scalars, got {p.shape}")
        out.append(_expand_param(where, p, x.shape, qa.axis, qa.block_size))
    return out


#: Integer types the compiled Q/DQ loops take (the others run numpy).
_LOOP_INTEGERS = frozenset(np.dtype(t) for t in (np.uint8, np.int8, np.uint16, np.int16))


def _block_view(where: str, qa: _QuantAttrs, shape: tuple[int, ...], param: Any,
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


def _quantize_compiled(where: str, qa: _QuantAttrs, x: Any, scale: Any, zero_point: Any,
                       out_dtype: np.dtype, out: Any) -> Any | None:
    """QuantizeLinear of float32 ``x`` with float32 scales into an 8/16-bit integer type in
    one compiled pass (None where the view does not apply)."""
    if zero_point is None:
        zero_point = np.zeros(scale.shape, out_dtype)
    view = _block_view(where, qa, x.shape, scale, zero_point)
    if view is None:
        return None
    dims, scale3, zp3, block = view
    low, high = _INTEGER_RANGES[out_dtype]
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


def _dequantize_compiled(where: str, qa: _QuantAttrs, x: Any, scale: Any, zero_point: Any,
                         out: Any) -> Any | None:
    """DequantizeLinear of an 8/16-bit integer ``x`` with float32 scales into float32 in one
    compiled pass (None where the view does not apply)."""
    if zero_point is None:
        zero_point = np.zeros(scale.shape, x.dtype)
    view = _block_view(where, qa, x.shape, scale, zero_point)
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


def _quantize_factory(node: NodeInfo):
    """QuantizeLinear (all versions): y = saturate(round(x / y_scale) + y_zero_point)."""
    qa = _quant_attrs(node)
    saturate = bool(node.attrs.get("saturate", 1))
    precision = _dtype_attr(node, "precision")
    if precision is not None and precision not in _ARITHMETIC_FLOATS:
        raise ValueError(f"{node.describe()}: precision must be a float type, got {precision}")
    fixed_dtype = _quantized_output_dtype(node, 2, np.dtype(np.uint8))
    where = node.describe()
    use_loop = compiled_loops_enabled(node)

    def compute(x, y_scale, y_zero_point=None):
        out_dtype = fixed_dtype if fixed_dtype is not None else y_zero_point.dtype
        if y_zero_point is not None and y_zero_point.dtype != out_dtype:
            raise ValueError(f"{where}: zero point type {y_zero_point.dtype} != {out_dtype}")
        if (use_loop and x.dtype == _F32 and y_scale.dtype == _F32 and precision is None
                and out_dtype in _LOOP_INTEGERS):
            y = _quantize_compiled(where, qa, x, y_scale, y_zero_point, out_dtype,
                                   node.empty(x.shape, out_dtype))
            if y is not None:
                return (y,)
        if (x.dtype == _F32 and y_scale.dtype == _F32 and y_scale.ndim == 0
                and precision is None and out_dtype in _NUMPY_INTEGERS
                and (y_zero_point is None or y_zero_point.ndim == 0)):
            return (_quantize_per_tensor(x, y_scale, y_zero_point, out_dtype),)
        scale, zero_point = _params(node, qa, x, y_scale, y_zero_point)
        cdt = precision if precision is not None else _arithmetic_dtype(scale.dtype)
        ratio = x.astype(cdt, copy=False) / scale.astype(cdt, copy=False)
        ratio = ratio.astype(work_dtype(cdt), copy=False)
        if out_dtype in _INTEGER_RANGES:
            ratio = np.rint(ratio)
        if zero_point is not None:
            ratio = ratio + zero_point.astype(ratio.dtype)
        return (np.asarray(_saturate_cast(ratio, out_dtype, saturate)),)

    return compute


#: The quantized integer types numpy casts to directly (sub-byte ones go through int32).
_NUMPY_INTEGERS = frozenset(np.dtype(t) for t in (np.uint8, np.int8, np.uint16, np.int16))


def _quantize_per_tensor(x: Any, scale: Any, zero_point: Any, dtype: np.dtype) -> Any:
    """QuantizeLinear of float32 ``x`` with one float32 scale and zero point into an integer
    type in four in-place passes (the general path takes a dozen): the same values, rounded
    half to even, saturated, NaN to the type's minimum."""
    low, high = _INTEGER_RANGES[dtype]
    ratio = np.divide(x, scale.reshape(()), out=np.empty(x.shape, _F32))  # 0-d stays an array
    np.rint(ratio, out=ratio)
    if zero_point is not None:
        ratio += np.float32(zero_point.reshape(()))
    np.clip(ratio, low, high, out=ratio)
    if ratio.size and np.isnan(ratio.min()):  # min is NaN when any value is
        ratio[np.isnan(ratio)] = low
    return ratio.astype(dtype)


def _dequantize_factory(node: NodeInfo):
    """DequantizeLinear (all versions): y = (x - x_zero_point) * x_scale; computed once
    where all its inputs are constants (a weight no fusion took)."""
    qa = _quant_attrs(node)
    output_dtype = _dtype_attr(node, "output_dtype")
    if output_dtype is not None and output_dtype not in _ARITHMETIC_FLOATS:
        raise ValueError(f"{node.describe()}: output_dtype must be a float type")
    where = node.describe()
    use_loop = compiled_loops_enabled(node)

    def compute(x, x_scale, x_zero_point=None, empty=node.empty):
        out_dtype = output_dtype if output_dtype is not None else x_scale.dtype
        if out_dtype not in _ARITHMETIC_FLOATS:
            out_dtype = _F32  # e.g. an e8m0 scale without output_dtype
        if (use_loop and out_dtype == _F32 and x_scale.dtype == _F32
                and x.dtype in _LOOP_INTEGERS
                and (x_zero_point is None or x_zero_point.dtype == x.dtype)):
            y = _dequantize_compiled(where, qa, x, x_scale, x_zero_point,
                                     empty(x.shape, _F32))
            if y is not None:
                return (y,)
        scale, zero_point = _params(node, qa, x, x_scale, x_zero_point)
        cdt = work_dtype(out_dtype)
        if x.dtype.kind in "iu" and x.dtype.itemsize <= 2:
            shifted = x.astype(np.int32)
            if zero_point is not None:
                shifted = shifted - zero_point.astype(np.int32)
            shifted = shifted.astype(cdt)
        else:  # int32 (no zero point in practice), float8, float4 and friends
            shifted = x.astype(cdt)
            if zero_point is not None:
                shifted = shifted - zero_point.astype(cdt)
        return ((shifted * scale.astype(cdt)).astype(out_dtype, copy=False),)

    consts = list(node.const_inputs) + [None] * 3
    constant = all(consts[i] is not None or not node.has_input(i) for i in range(3))
    if not constant or consts[0] is None or getattr(node, "xp", np) is not np:
        return compute  # (a device provider reusing this kernel keeps its own arrays)
    value = compute(*(None if c is None else np.asarray(c) for c in consts[:3]),
                    empty=np.empty)[0]  # not the arena: the value outlives every run

    def constant_compute(x, x_scale, x_zero_point=None):
        return (value.copy(),)

    return constant_compute


for _since, _until in ((10, 12), (13, 18), (19, 20), (21, 22), (23, 23), (24, 24), (25, 27),
                       (28, None)):
    kernels.register("QuantizeLinear", _since, _until)(_quantize_factory)
    kernels.register("DequantizeLinear", _since, _until)(_dequantize_factory)


@kernels.register("DynamicQuantizeLinear", 11)
def dynamic_quantize_linear(node: NodeInfo):
    """DynamicQuantizeLinear 11+: uint8 quantization with scale and zero point from the data
    range (widened to include 0); outputs y, y_scale, y_zero_point."""

    use_loop = compiled_loops_enabled(node)
    per_tensor = _QuantAttrs(1, 0, True)
    where = node.describe()

    def compute(x):
        if use_loop and x.dtype == _F32:
            scale, zero_point = dynamic_params(x)
            y = _quantize_compiled(where, per_tensor, x, np.array(scale, _F32),
                                   np.array(zero_point, np.uint8), np.dtype(np.uint8),
                                   node.empty(x.shape, np.uint8))
            return y, np.array(scale, dtype=np.float32), np.array(zero_point, dtype=np.uint8)
        low = min(0.0, float(x.min())) if x.size else 0.0
        high = max(0.0, float(x.max())) if x.size else 0.0
        scale = np.float32(1.0) if high == low else np.float32(np.float32(high - low) / 255)
        zero_point = np.rint(np.clip(np.float32(0 - np.float32(low) / scale), 0, 255))
        ratio = np.rint(x.astype(np.float32) / scale) + zero_point
        y = _saturate_cast(ratio, np.dtype(np.uint8))
        return y, np.array(scale, dtype=np.float32), np.array(zero_point, dtype=np.uint8)

    return compute


# ---------------------------------------------------------------------------------------
# QLinearMatMul, QLinearConv, ConvInteger
# ---------------------------------------------------------------------------------------

def _centered(x: Any, zero_point: Any | None, rows: bool) -> Any:
    """Return x - zero_point as float64; a 1-D per-row zero point (``rows``) is a column."""
    centered = x.astype(_F64)
    if zero_point is None:
        return centered
    zp = zero_point.astype(_F64)
    if rows and zp.ndim == 1 and zp.size > 1:
        zp = zp.reshape(-1, 1)
    return centered - zp


def _multiplier(*scales: Any) -> Any:
    """Return a_scale * b_scale / y_scale in the scales' own type, as float64."""
    a, b, y = scales
    cdt = _arithmetic_dtype(a.dtype)
    a, b, y = (s.astype(cdt, copy=False) for s in (a, b, y))
    return ((a * b) / y).astype(_F64)


def _qlinear_matmul_operand(node: NodeInfo) -> IntegerOperand | None:
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


@kernels.register("QLinearMatMul", 10, 20)
@kernels.register("QLinearMatMul", 21)
def qlinear_matmul(node: NodeInfo):
    """QLinearMatMul 10+ (float8 and float16/bfloat16 scales since 21): quantized matmul
    with per-tensor or per-row (a) / per-column (b) scales and zero points."""

    operand = _qlinear_matmul_operand(node)

    def compute(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point):
        if (operand is not None and a.dtype in _EIGHT_BIT and a.ndim >= 2
                and a.shape[-1] == operand.f64.shape[0] and y_zero_point is not None
                and y_zero_point.dtype in _EIGHT_BIT and y_zero_point.size == 1
                and a_scale.size == 1 and (a_zero_point is None or a_zero_point.size == 1)
                and a_scale.dtype == b_scale.dtype == y_scale.dtype == _F32
                and b_scale.size in (1, operand.f64.shape[1]) and y_scale.size == 1):
            a_zp = 0 if a_zero_point is None else int(a_zero_point.reshape(()))
            a32, a_max, squares = center_rows(a.reshape(-1, a.shape[-1]), a_zp)
            acc = exact_product(a32, a_max, squares, operand)
            multiplier = (np.float32(a_scale.reshape(())) * b_scale.reshape(-1)
                          ) / np.float32(y_scale.reshape(()))
            out = node.empty(acc.shape, y_zero_point.dtype)
            requantize_rows(acc, None, multiplier, int(y_zero_point.reshape(())), out)
            return (out.reshape(a.shape[:-1] + (acc.shape[1],)),)
        acc = np.matmul(_centered(a, a_zero_point, True), _centered(b, b_zero_point, False))
        a_s = a_scale.reshape(-1, 1) if a_scale.ndim == 1 and a_scale.size > 1 else a_scale
        if a_s.dtype == b_scale.dtype == y_scale.dtype == _F32 and y_scale.size == 1:
            # as MLAS requantizes: float32 multiplier and float32 product, then rounded
            multiplier = (a_s * b_scale) / y_scale.reshape(())
            values = np.rint(acc.astype(_F32) * multiplier.astype(_F32)).astype(_F64)
        else:
            values = acc * _multiplier(a_s, b_scale, y_scale)
        if y_zero_point is not None:
            values = values + y_zero_point.astype(_F64)
        out_dtype = y_zero_point.dtype if y_zero_point is not None else a.dtype
        return (np.asarray(_saturate_cast(values, out_dtype)),)

    return compute


def _integer_conv(node: NodeInfo, w_index: int, zp_index: int) -> Callable[[Any, Any], Any]:
    """Return conv(x_centered, w) -> the exact integer result (float32 or float64 holding
    integers) of the float Conv kernel on the zero-point-shifted weights (prepared once when W
    and its zero point are constant). float32 convolution (twice as fast) is used when
    ``K * max|x| * max|w| < 2**24`` bounds every partial sum (K: the weights per output),
    float64 otherwise (exact far beyond 8-bit ranges)."""
    consts = node.const_inputs
    const_w = consts[w_index] if len(consts) > w_index else None
    const_zp = consts[zp_index] if len(consts) > zp_index else None
    prepared = prepared32 = None
    w_max = 0.0
    if const_w is not None and (const_zp is not None or not node.has_input(zp_index)):
        prepared = _centered_weights(np.asarray(const_w), const_zp)
        prepared32 = prepared.astype(np.float32)
        w_max = float(np.abs(prepared).max()) if prepared.size else 0.0

    def conv_of(dtype: np.dtype, weights: Any) -> Callable[..., Any]:
        conv_node = dataclasses.replace(
            node, op_type="Conv", domain="", input_names=["x", "w"],
            const_inputs=[None, weights], input_dtypes=[dtype, dtype],
            input_shapes=[None, None])
        return _conv_factory(conv_node)

    conv64 = conv_of(_F64, prepared)
    conv32 = conv_of(np.dtype(np.float32), prepared32)

    def run(x_centered, w, w_zero_point):
        if prepared is not None:
            weights, weights32, largest = prepared, prepared32, w_max
        else:
            weights = _centered_weights(w, w_zero_point)
            weights32, largest = None, float(np.abs(weights).max()) if weights.size else 0.0
        per_output = int(np.prod(weights.shape[1:])) if weights.ndim > 1 else 1
        x_max = float(np.abs(x_centered).max()) if x_centered.size else 0.0
        if per_output * x_max * largest < 2 ** 24:
            if weights32 is None:
                weights32 = weights.astype(np.float32)
            return conv32(x_centered.astype(np.float32), weights32)[0]
        return conv64(x_centered, weights)[0]

    return run


def _centered_weights(w: Any, zero_point: Any | None) -> Any:
    """Return W - w_zero_point as float64 (a 1-D zero point is per output channel)."""
    centered = w.astype(_F64)
    if zero_point is None:
        return centered
    zp = zero_point.astype(_F64)
    if zp.ndim == 1 and zp.size > 1:
        zp = zp.reshape((-1,) + (1,) * (w.ndim - 1))
    return centered - zp.reshape(()) if zp.size == 1 else centered - zp


def _per_channel(value: Any, rank: int) -> Any:
    """Return a scalar or a per-output-channel 1-D value shaped to broadcast over NCHW..."""
    if value.size == 1:
        return value.reshape(())
    return value.reshape((-1,) + (1,) * (rank - 2))


@kernels.register("ConvInteger", 10)
def conv_integer(node: NodeInfo):
    """ConvInteger 10+: Conv of (x - x_zero_point) and (w - w_zero_point) in int32."""
    conv = _integer_conv(node, 1, 3)
    fast = None
    consts = list(node.const_inputs) + [None] * 4
    if (compiled_loops_enabled(node) and consts[1] is not None
            and np.asarray(consts[1]).dtype in _EIGHT_BIT
            and (consts[3] is not None or not node.has_input(3))):
        w_zp = None if consts[3] is None else np.asarray(consts[3])
        fast = _CompiledQLinearConv(node, np.asarray(consts[1]), w_zp,
                                    lambda xc, w, w_zp: conv(xc, w, w_zp))

    def compute(x, w, x_zero_point=None, w_zero_point=None):
        if fast is not None and x.dtype in _EIGHT_BIT and (
                x_zero_point is None or x_zero_point.size == 1):
            x_zp = 0 if x_zero_point is None else int(x_zero_point.reshape(-1)[0])
            acc = fast.accumulate(np.ascontiguousarray(x), x_zp)
            out = node.empty(acc.shape, np.int32)
            np.copyto(out, acc, casting="unsafe")
            return (out,)
        x_centered = x.astype(_F64)
        if x_zero_point is not None:
            x_centered = x_centered - x_zero_point.astype(_F64).reshape(())
        return (conv(x_centered, w, w_zero_point).astype(np.int32),)

    return compute


#: float32 sums of integer products are exact while every partial sum stays below this
#: (a hair under 2**24, for the rounding of the bound's own float64 arithmetic)
EXACT_F32 = float(2 ** 24) * (1 - 1e-9)


class _CompiledQLinearConv:
    """QLinearConv with a constant int8/uint8 W in three passes: X minus its zero point as
    float32 (one compiled pass, which also sums the squares per position), the float32 Conv
    kernel (im2col + BLAS, exact: see :meth:`exact_in_f32`), and one compiled requantizing
    pass (int32 bias, float32 multiplier per channel, half to even, zero point, saturation),
    as MLAS does. Where float32 cannot be shown exact the float64 Conv runs instead."""

    def __init__(self, node: NodeInfo, w: np.ndarray, w_zero_point: Any, fallback) -> None:
        centered = _centered_weights(w, w_zero_point)
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
        # depthwise 2-D: one compiled pass of int32 sums (9 or so taps: no GEMM to win)
        self.depthwise = None
        if (centered.ndim == 4 and group > 1 and centered.shape[:2] == (group, 1)
                and self.taps * 255 * max(self.w_max, 1) < EXACT_F32):
            self.window = read_window_attrs(node, centered.shape[2:], pooling=False)
            self.depthwise = centered[:, 0].astype(_F32)
            self.geometries: dict[tuple, Any] = {}
        self.fallback = fallback
        self.scratch = Scratch(np)
        self.node = node
        self.loops: dict[tuple, tuple] = {}
        self.no_bias = np.empty(0, np.int32)

    def exact_in_f32(self, x_max: float, largest_squares: float) -> bool:
        """Whether every partial sum of the float32 Conv is an exact integer: each output sums
        ``K`` products of X and W; its absolute sum is at most ``K * max|x| * max|w|`` and,
        by Cauchy-Schwarz, at most ``sqrt(taps * max_p sum_c x[c, p]**2) * max_m |W_m|``."""
        simple = self.per_output * x_max * self.w_max
        norms = np.sqrt(self.taps * largest_squares) * self.w_norm
        return min(simple, norms) < EXACT_F32

    def loops_for(self, x_dtype: np.dtype, y_dtype: np.dtype) -> tuple:
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
        """The depthwise pass (None where x does not fit: the GEMM path runs)."""
        if x.ndim != 4 or x.shape[1] != self.depthwise.shape[0]:
            return None
        geo = self.geometries.get(x.shape[2:])
        if geo is None:
            geo = self.geometries[x.shape[2:]] = window_geometry(self.node, self.window,
                                                                 x.shape[2:])
        loop = quant_loops.depthwise_qconv.prepare(
            (x.dtype, 4), int, (_F32, 3), (np.int32, 1), (_F32, 1), int, int, int,
            ("tuple", int, 2), ("tuple", int, 2), ("tuple", int, 2), (y_zero_point.dtype, 4))
        channels = x.shape[1]
        if bias.shape[0] != channels:
            bias = np.zeros(channels, np.int32)
        if multiplier.shape[0] != channels:
            multiplier = np.full(channels, multiplier[0], _F32)
        out = self.node.empty(x.shape[:2] + geo.out_shape, y_zero_point.dtype)
        low, high = _INTEGER_RANGES[y_zero_point.dtype]
        if out.size:
            loop(x, x_zp, self.depthwise, bias, multiplier, int(y_zero_point.reshape(())), low,
                 high, tuple(self.window.strides), tuple(geo.pads_begin),
                 tuple(self.window.dilations), out)
        return out

    def accumulate(self, x, x_zp: int, center=None):
        """The exact integer Conv of ``x - x_zp`` and the centered W: float32 where
        :meth:`exact_in_f32` holds, else float64."""
        if center is None:
            center = quant_loops.center_planes.prepare((x.dtype, 3), int, (_F32, 3), (_F64, 2))
        low, high = _INTEGER_RANGES[x.dtype]
        n, c = x.shape[:2]
        positions = int(np.prod(x.shape[2:])) if x.ndim > 2 else 1
        centered = self.scratch.take(x.shape, _F32)
        squares = self.scratch.take((n, positions), _F64)
        largest = center(x.reshape(n, c, positions), x_zp,
                         centered.reshape(n, c, positions), squares) if x.size else 0.0
        x_max = float(max(x_zp - low, high - x_zp))
        if self.exact_in_f32(x_max, largest):
            acc = self.conv32(centered, self.weights)
        else:
            acc = self.fallback(centered.astype(_F64), None, None)
        self.scratch.give(squares)
        self.scratch.give(centered)
        return acc

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
        center, requant32, requant64 = self.loops_for(x.dtype, y_zero_point.dtype)
        acc = self.accumulate(x, int(x_zero_point.reshape(())), center)
        requant = requant32 if acc.dtype == _F32 else requant64
        multiplier = ((np.float32(x_scale.reshape(())) * w_scale.astype(_F32).reshape(-1))
                      / np.float32(y_scale.reshape(()))).astype(_F32)
        bias = self.no_bias if b is None else np.ascontiguousarray(b, dtype=np.int32).reshape(-1)
        y_low, y_high = _INTEGER_RANGES[y_zero_point.dtype]
        out = self.node.empty(acc.shape, y_zero_point.dtype)
        if out.size:
            m = acc.shape[1]
            requant(acc.reshape(acc.shape[0], m, -1), bias, multiplier,
                    int(y_zero_point.reshape(())), y_low, y_high, out.reshape(out.shape[0], m, -1))
        return out


def _compiled_qlinear_conv(node: NodeInfo, fallback) -> _CompiledQLinearConv | None:
    """The compiled QLinearConv of a node with a constant 8-bit W and W zero point (None
    where it does not apply: the numpy kernel runs)."""
    if not compiled_loops_enabled(node):
        return None
    consts = list(node.const_inputs) + [None] * 9
    w, w_zp = consts[3], consts[5]
    if w is None or np.asarray(w).dtype not in _EIGHT_BIT or w_zp is None:
        return None
    x_dtype = _input_dtype(node, 0)
    if x_dtype is not None and x_dtype not in _EIGHT_BIT:
        return None
    return _CompiledQLinearConv(node, np.asarray(w), np.asarray(w_zp), fallback)


@kernels.register("QLinearConv", 10)
def qlinear_conv(node: NodeInfo):
    """QLinearConv 10+: quantized Conv with int32 bias and per-tensor or per-output-channel
    weight scale/zero point, requantized to y's type."""
    conv = _integer_conv(node, 3, 5)
    fast = _compiled_qlinear_conv(node, lambda xc, w, w_zp: conv(xc, w, w_zp))

    def compute(x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point,
                b=None):
        if (fast is not None and x.dtype in _EIGHT_BIT and y_zero_point.dtype in _EIGHT_BIT
                and x_scale.dtype == w_scale.dtype == y_scale.dtype == _F32
                and x_scale.size == 1 and x_zero_point.size == 1 and y_scale.size == 1
                and y_zero_point.size == 1 and w_scale.size in (1, w.shape[0])):
            return (fast(x, x_scale, x_zero_point, w_scale, y_scale, y_zero_point, b),)
        x_centered = x.astype(_F64) - x_zero_point.astype(_F64).reshape(())
        acc = conv(x_centered, w, w_zero_point)
        if b is not None:
            acc = acc + _per_channel(b.astype(_F64), acc.ndim)
        w_s = _per_channel(w_scale, acc.ndim)
        if x_scale.dtype == w_scale.dtype == y_scale.dtype == np.float32:
            # as ONNX Runtime requantizes: float32 multiplier x_scale * w_scale / y_scale,
            # float32 product, rounded half to even (float64 here moves rounding ties)
            f32 = np.float32
            multiplier = (x_scale.reshape(()).astype(f32) * w_s.astype(f32)) / y_scale.reshape(())
            values = np.rint(acc.astype(f32) * multiplier.astype(f32)).astype(_F64)
        else:
            values = acc * _multiplier(x_scale.reshape(()), w_s, y_scale.reshape(()))
        values = values + y_zero_point.astype(_F64).reshape(())
        return (np.asarray(_saturate_cast(values, y_zero_point.dtype)),)

    return compute


# ---------------------------------------------------------------------------------------
# BitCast
# ---------------------------------------------------------------------------------------

#: Bit widths of the types narrower than their numpy storage byte.
_SUB_BYTE_BITS = {
    np.dtype(t): bits for t, bits in (
        (ml_dtypes.int4, 4), (ml_dtypes.uint4, 4), (ml_dtypes.float4_e2m1fn, 4),
        (ml_dtypes.int2, 2), (ml_dtypes.uint2, 2),
    )
}


def _bit_width(dtype: np.dtype) -> int:
    """Return the ONNX bit width of an element type."""
    return _SUB_BYTE_BITS.get(dtype, dtype.itemsize * 8)


def _check_bitcast(where: str, src: np.dtype, dst: np.dtype) -> None:
    """Raise ValueError unless ``src`` can be reinterpreted as ``dst``."""
    if src == np.dtype(object) or dst == np.dtype(object):
        raise ValueError(f"{where}: BitCast does not support strings")
    if _bit_width(src) != _bit_width(dst):
        raise ValueError(
            f"{where}: cannot reinterpret {src} ({_bit_width(src)} bits) as {dst} "
            f"({_bit_width(dst)} bits)"
        )


@kernels.register("BitCast", 26)
def bit_cast(node: NodeInfo):
    """BitCast 26+: reinterpret the bits of each element as the type ``to`` (same width)."""
    to = node.attrs.get("to")
    if to is None:
        raise ValueError(f"{node.describe()}: the 'to' attribute is required")
    if int(to) == TensorProto.STRING:
        raise ValueError(f"{node.describe()}: BitCast does not support strings")
    try:
        dst = np_dtype_of(int(to))
    except ValueError as error:
        raise ValueError(f"{node.describe()}: {error}") from None
    where = node.describe()
    known = _input_dtype(node, 0)
    if known is not None:
        _check_bitcast(where, known, dst)
    mask = (1 << _SUB_BYTE_BITS[dst]) - 1 if dst in _SUB_BYTE_BITS else None

    def compute(x):
        if known is None:
            _check_bitcast(where, x.dtype, dst)
        if x.dtype == dst:
            return (x.copy(),)
        raw = x if x.flags.c_contiguous else x.copy()  # (ascontiguousarray makes 0-d 1-d)
        if dst == np.bool_:
            return (raw.view(np.uint8) != 0,)
        if mask is not None:
            return ((raw.view(np.uint8) & np.uint8(mask)).view(dst),)
        return (raw.view(dst).copy(),)

    return compute
