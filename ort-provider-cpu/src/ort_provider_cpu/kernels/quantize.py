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
size). With numba, Q/DQ, input shifting and requantization are single compiled passes
(:mod:`.quant_compiled`); the numpy code stays as the reference and the fallback.
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
from .contrib_quant_common import (center_rows, dynamic_params, exact_product,
                                   requantize_rows)
from .conv import conv as _conv_factory
from .float_work import LOW_PRECISION, work_dtype
from .kernel_args import normalize_axis
from .quant_compiled import (LOOP_INTEGERS, CompiledQLinearConv,
                             dequantize_compiled, qlinear_matmul_operand,
                             quantize_compiled)

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


def _params(node: NodeInfo, qa: Any, x: Any, *params: Any) -> list[Any]:
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
                and out_dtype in LOOP_INTEGERS):
            y = quantize_compiled(where, qa, x, y_scale, y_zero_point, out_dtype,
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
                and x.dtype in LOOP_INTEGERS
                and (x_zero_point is None or x_zero_point.dtype == x.dtype)):
            y = dequantize_compiled(where, qa, x, x_scale, x_zero_point,
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
            y = quantize_compiled(where, per_tensor, x, np.array(scale, _F32),
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


@kernels.register("QLinearMatMul", 10, 20)
@kernels.register("QLinearMatMul", 21)
def qlinear_matmul(node: NodeInfo):
    """QLinearMatMul 10+ (float8 and float16/bfloat16 scales since 21): quantized matmul
    with per-tensor or per-row (a) / per-column (b) scales and zero points."""

    operand = qlinear_matmul_operand(node)

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
        fast = CompiledQLinearConv(node, _centered_weights(np.asarray(consts[1]), w_zp),
                                   lambda xc, w, w_zp: conv(xc, w, w_zp))

    def compute(x, w, x_zero_point=None, w_zero_point=None):
        if fast is not None and x.dtype in _EIGHT_BIT and (
                x_zero_point is None or x_zero_point.size == 1):
            x_zp = 0 if x_zero_point is None else int(x_zero_point.reshape(-1)[0])
            return (fast.integers(np.ascontiguousarray(x), x_zp),)
        x_centered = x.astype(_F64)
        if x_zero_point is not None:
            x_centered = x_centered - x_zero_point.astype(_F64).reshape(())
        return (conv(x_centered, w, w_zero_point).astype(np.int32),)

    return compute


def _compiled_qlinear_conv(node: NodeInfo, fallback) -> CompiledQLinearConv | None:
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
    return CompiledQLinearConv(node, _centered_weights(np.asarray(w), np.asarray(w_zp)),
                               fallback)


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
