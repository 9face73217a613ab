"""CPU kernels: onnxruntime's quantized matrix ops (DynamicQuantizeMatMul, MatMulIntegerToFloat,
QGemm, DynamicQuantizeLSTM, com.microsoft QuantizeLinear/DequantizeLinear).

Semantics follow onnxruntime's contrib operator spec (docs/ContribOperators.md) and its CPU
kernels' observed behaviour; every op is declared to the core in ``SCHEMAS``
(:mod:`.contrib_schema`).

Integer products run in float BLAS (:func:`~.contrib_quant_common.integer_matmul`, and with a
constant B where numba is available :func:`~.contrib_quant_common.exact_product` after one
compiled pass that shifts A, or quantizes it for DynamicQuantizeMatMul): the operands are 8-bit
integers shifted by their zero points, exact in float64 (sums below 2**53, far beyond any
realistic K) and in float32 where a bound keeps every partial sum below 2**24. The float epilogue rounds as onnxruntime's MLAS output processors do: the int32
accumulator is converted to float32, multiplied by the float32 scale product, then the float32
bias is added (one rounding each). Dynamic quantization of a float input
(:func:`~.contrib_quant_common.dynamic_quantize`) is DynamicQuantizeLinear's: uint8, range widened to include 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from onnx import TypeProto
from ort.ep import DeclaredSchema, KernelTable, NodeInfo

from ..jit import compiled_loops_enabled
from . import contrib_quant_lstm, contrib_quant_qdq
from .contrib_quant_common import (IntegerOperand, center_rows, centered,
                                   dynamic_params, dynamic_quantize,
                                   exact_product, integer_matmul,
                                   quantize_centered, quantize_rows, requantize,
                                   requantize_rows, scale_bias_output,
                                   scale_bias_rows)
from .contrib_schema import (FLOAT, MS, declare, elem_type, like_onnx,
                             tensor_type)
from .int8_gemm import VnniMatMul, matmul_fits, vnni_available

kernels = KernelTable()

_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)


def _is_scalar(value: np.ndarray) -> bool:
    """A scalar or a one-element 1-D tensor (onnxruntime's ``IsScalarOr1ElementVector``)."""
    return value.ndim == 0 or (value.ndim == 1 and value.size == 1)


def _b_param_supported(param_shape: tuple[int, ...], b_shape: tuple[int, ...]) -> bool:
    """Whether a scale/zero point of B is one onnxruntime's integer GEMM applies per column:
    a scalar, a 1-D of B's column count (2-D B), or B's shape with the K dim 1."""
    rank, b_rank = len(param_shape), len(b_shape)
    if rank == 0 or (rank == 1 and int(np.prod(param_shape)) == 1):
        return True
    if rank == 1 and b_rank == 2 and param_shape[0] == b_shape[1]:
        return True
    if rank != b_rank or rank <= 1 or param_shape[-2] != 1:
        return False
    return all(param_shape[i] == b_shape[i] for i in range(rank) if i != rank - 2)


def _per_column(param: np.ndarray, b_ndim: int) -> np.ndarray:
    """A supported B parameter shaped to broadcast against the product's (..., M, N)."""
    if param.size == 1:
        return param.reshape(())
    if param.ndim == 1 and b_ndim == 2:
        return param.reshape(1, -1)
    return param


# ---------------------------------------------------------------------------------------
# DynamicQuantizeMatMul, MatMulIntegerToFloat
# ---------------------------------------------------------------------------------------

def _centered_b(where: str, b: np.ndarray, b_zero_point: Any) -> np.ndarray:
    """``B - b_zp`` (float64) with a per-tensor or per-column zero point."""
    b_zp = None
    if b_zero_point is not None:
        if not _b_param_supported(b_zero_point.shape, b.shape):
            raise ValueError(f"{where}: b_zero_point of shape {b_zero_point.shape} must be a "
                             f"scalar or per column of B {b.shape}")
        b_zp = _per_column(b_zero_point, b.ndim)
    return centered(b, b_zp)


def _prepared_b(node: NodeInfo, b_index: int, zp_index: int) -> IntegerOperand | None:
    """``B - b_zp`` computed once when B and its zero point (if any) are constants."""
    consts = node.const_inputs
    b = consts[b_index] if len(consts) > b_index else None
    zp = consts[zp_index] if len(consts) > zp_index else None
    if b is None or (zp is None and node.has_input(zp_index)):
        return None
    return IntegerOperand(_centered_b(node.describe(), np.asarray(b),
                                      None if zp is None else np.asarray(zp)))


def _integer_to_float(where: str, a_q: np.ndarray, a_zero_point: Any, a_scale: np.float32,
                      b: np.ndarray, b_scale: np.ndarray | None, b_zero_point: Any,
                      bias: Any, prepared: IntegerOperand | None = None) -> np.ndarray:
    """``(a_q - a_zp) @ (b - b_zp)`` scaled by ``a_scale * b_scale`` (per tensor or per
    column) plus bias, as float32; ``b_scale`` None means a_scale alone; ``prepared`` is
    ``b - b_zp`` when computed once."""
    b_centered = prepared if prepared is not None else _centered_b(where, b, b_zero_point)
    acc = integer_matmul(centered(a_q, a_zero_point), b_centered)
    multiplier: Any = np.float32(a_scale)
    if b_scale is not None:
        multiplier = np.float32(a_scale) * _per_column(b_scale.astype(_F32), b.ndim)
    return scale_bias_output(acc, multiplier, bias)


def _scale_output(y: np.ndarray, scale: np.ndarray, where: str) -> np.ndarray:
    """Multiply the output by a scale that broadcasts against it (onnxruntime's fallback for
    scale shapes its GEMM does not take per column)."""
    try:
        scaled = (y * scale.astype(_F32)).astype(_F32, copy=False)
    except ValueError:
        scaled = None
    if scaled is None or scaled.shape != y.shape:
        raise ValueError(f"{where}: scale of shape {scale.shape} does not broadcast to the "
                         f"output's shape {y.shape}")
    return scaled


def _check_bias(where: str, bias: Any, n: int) -> None:
    """The bias is 1-D of length N (B's column count)."""
    if bias is not None and (bias.ndim != 1 or bias.shape[0] != n):
        raise ValueError(f"{where}: bias of shape {bias.shape} must be 1-D of length {n}")


_EIGHT_BIT = frozenset(np.dtype(t) for t in (np.uint8, np.int8))


def _column_multiplier(a_scale: Any, b_scale: np.ndarray, n: int) -> np.ndarray | None:
    """``a_scale * b_scale`` in float32, one value or one per column (None for other B
    scale shapes: the numpy kernel handles them)."""
    if b_scale.size == 1:
        return (np.float32(a_scale) * b_scale.astype(_F32).reshape(1))
    if b_scale.ndim == 1 or (b_scale.ndim == 2 and b_scale.shape[0] == 1):
        if b_scale.size == n:
            return np.float32(a_scale) * b_scale.astype(_F32).reshape(-1)
    return None


def _compiled_operand(node: NodeInfo, prepared: IntegerOperand | None) -> IntegerOperand | None:
    """The prepared 2-D B when the compiled kernel may run (else None: numpy)."""
    if prepared is None or prepared.f64.ndim != 2 or not compiled_loops_enabled(node):
        return None
    return prepared


def _vnni_matmul(node: NodeInfo, operand: IntegerOperand | None) -> VnniMatMul | None:
    """The VNNI integer GEMM for a compiled kernel's prepared B (None where the CPU lacks
    VNNI or B's centered values do not fit a signed byte)."""
    if operand is None or not matmul_fits(operand.f64) or not vnni_available():
        return None
    return VnniMatMul(node, operand.f64)


def _float_output(node: NodeInfo, acc: np.ndarray, multiplier: np.ndarray, bias: Any,
                  lead: tuple[int, ...]) -> np.ndarray:
    """The scale-bias stage of a compiled kernel into a fresh float32 output of shape
    ``lead + (N,)``."""
    out = node.empty((acc.shape[0], acc.shape[1]), _F32)
    scale_bias_rows(acc, multiplier, bias, out)
    return out.reshape(lead + (acc.shape[1],))


@kernels.register("DynamicQuantizeMatMul", since=1, domain=MS)
def dynamic_quantize_matmul(node: NodeInfo):
    """DynamicQuantizeMatMul 1+: A (float) quantized to uint8 like DynamicQuantizeLinear, then
    MatMul with quantized B (int8/uint8, per-tensor or per-column scale/zero point) and the
    float result scaled back, plus an optional bias."""
    where = node.describe()
    prepared = _prepared_b(node, 1, 3)
    operand = _compiled_operand(node, prepared)
    vnni = _vnni_matmul(node, operand)

    def compute(a, b, b_scale, b_zero_point=None, bias=None):
        if operand is not None and a.dtype == _F32 and a.ndim >= 1 \
                and a.shape[-1] == operand.f64.shape[0]:
            n = operand.f64.shape[1]
            _check_bias(where, bias, n)
            scale, zero_point = dynamic_params(a)
            multiplier = _column_multiplier(scale, b_scale, n)
            if multiplier is not None and vnni is not None and vnni_available():
                a_q = quantize_rows(a.reshape(-1, a.shape[-1]), scale, zero_point)
                return (vnni(a_q, zero_point, multiplier, bias).reshape(
                    a.shape[:-1] + (n,)),)
            if multiplier is not None:
                a32, a_max, squares = quantize_centered(a.reshape(-1, a.shape[-1]), scale,
                                                        zero_point)
                acc = exact_product(a32, a_max, squares, operand)
                return (_float_output(node, acc, multiplier, bias, a.shape[:-1]),)
        a_q, a_scale, a_zp = dynamic_quantize(a)
        _check_bias(where, bias, b.shape[-1])
        if _b_param_supported(b_scale.shape, b.shape):
            return (_integer_to_float(where, a_q, a_zp, a_scale, b, b_scale, b_zero_point,
                                      bias, prepared),)
        y = _integer_to_float(where, a_q, a_zp, a_scale, b, None, b_zero_point, bias,
                              prepared)
        return (_scale_output(y, b_scale, where),)

    return compute


def _swap_scales(a_scale: np.ndarray, b_scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """onnxruntime swaps MatMulIntegerToFloat's scales when their shapes say the fusion put
    them in the wrong order (a non-scalar A scale must be per row: (..., M, 1))."""
    if not _is_scalar(a_scale):
        if a_scale.ndim == 1 or a_scale.shape[-1] != 1:
            return b_scale, a_scale
    elif not _is_scalar(b_scale):
        if b_scale.ndim > 1 and b_scale.shape[-2] != 1:
            return b_scale, a_scale
    return a_scale, b_scale


@kernels.register("MatMulIntegerToFloat", since=1, domain=MS)
def matmul_integer_to_float(node: NodeInfo):
    """MatMulIntegerToFloat 1+: ``(A - a_zp) @ (B - b_zp) * a_scale * b_scale + bias`` with
    int8/uint8 A and B, per-tensor A parameters and per-tensor or per-column B parameters;
    the output has the scales' float type (float16 computed in float32, rounded once)."""
    where = node.describe()
    prepared = _prepared_b(node, 1, 5)
    operand = _compiled_operand(node, prepared)
    vnni = _vnni_matmul(node, operand)

    def compute(a, b, a_scale, b_scale, a_zero_point=None, b_zero_point=None, bias=None):
        out_dtype = a_scale.dtype
        a_scale, b_scale = _swap_scales(a_scale, b_scale)
        if a_zero_point is not None and not _is_scalar(a_zero_point):
            raise ValueError(f"{where}: a_zero_point must be a scalar or 1-element tensor, "
                             f"got shape {a_zero_point.shape}")
        _check_bias(where, bias, b.shape[-1])
        if (operand is not None and a.dtype in _EIGHT_BIT and out_dtype == _F32
                and a.ndim >= 1 and a.shape[-1] == operand.f64.shape[0] and _is_scalar(a_scale)
                and b_scale.dtype == _F32):
            multiplier = _column_multiplier(a_scale.reshape(-1)[0], b_scale,
                                            operand.f64.shape[1])
            if multiplier is not None:
                a_zp = 0 if a_zero_point is None else int(a_zero_point.reshape(-1)[0])
                if vnni is not None and vnni_available():
                    y = vnni(np.ascontiguousarray(a.reshape(-1, a.shape[-1])), a_zp,
                             multiplier, bias)
                    return (y.reshape(a.shape[:-1] + (y.shape[1],)),)
                a32, a_max, squares = center_rows(a.reshape(-1, a.shape[-1]), a_zp)
                acc = exact_product(a32, a_max, squares, operand)
                return (_float_output(node, acc, multiplier, bias, a.shape[:-1]),)
        a_scalar = _is_scalar(a_scale)
        a_s = np.float32(a_scale.reshape(-1)[0]) if a_scalar else np.float32(1)
        b_supported = _b_param_supported(b_scale.shape, b.shape)
        y = _integer_to_float(where, a, a_zero_point, a_s, b, b_scale if b_supported else None,
                              b_zero_point, bias, prepared)
        if not a_scalar:
            y = _scale_output(y, a_scale, where)
        if not b_supported:
            y = _scale_output(y, b_scale, where)
        return (y.astype(out_dtype, copy=False),)

    return compute


# ---------------------------------------------------------------------------------------
# QGemm
# ---------------------------------------------------------------------------------------

def _prepared_qgemm_b(node: NodeInfo, trans_b: bool) -> IntegerOperand | None:
    """QGemm's ``B' - b_zp`` computed once when B and b_zero_point are constants of valid
    shapes (others are checked, and fail, at run time)."""
    consts = node.const_inputs
    b, zp = (consts[i] if len(consts) > i else None for i in (3, 5))
    if b is None or zp is None:
        return None
    b2, zp = (np.asarray(b).T if trans_b else np.asarray(b)), np.asarray(zp)
    if b2.ndim != 2:
        return None
    if zp.size == 1 and zp.ndim <= 1:
        return IntegerOperand(centered(b2, zp.reshape(())))
    if zp.ndim == 1 and zp.shape[0] == b2.shape[1]:
        return IntegerOperand(centered(b2, zp))
    return None


@kernels.register("QGemm", since=1, domain=MS)
def qgemm(node: NodeInfo):
    """QGemm 1+: quantized Gemm ``alpha * a_scale * b_scale * ((A' - a_zp)(B' - b_zp) + C)``
    with int32 C; requantized with y_scale/y_zero_point when y_scale is given, else float."""
    where = node.describe()
    trans_a = bool(node.attrs.get("transA", 0))
    trans_b = bool(node.attrs.get("transB", 0))
    alpha = np.float32(node.attrs.get("alpha", 1.0))
    prepared = _prepared_qgemm_b(node, trans_b)
    operand = _compiled_operand(node, prepared)

    def compute(a, a_scale, a_zero_point, b, b_scale, b_zero_point, c=None, y_scale=None,
                y_zero_point=None):
        for name, value in (("a_scale", a_scale), ("a_zero_point", a_zero_point)):
            if not _is_scalar(value):
                raise ValueError(f"{where}: {name} must be a scalar or 1-element tensor, got "
                                 f"shape {value.shape}")
        a2 = a.T if trans_a else a
        b2 = b.T if trans_b else b
        if a2.ndim != 2 or b2.ndim != 2 or a2.shape[1] != b2.shape[0]:
            raise ValueError(f"{where}: A {a.shape} (transA={int(trans_a)}) and B {b.shape} "
                             f"(transB={int(trans_b)}) do not multiply")
        n = b2.shape[1]
        for name, value in (("b_scale", b_scale), ("b_zero_point", b_zero_point)):
            if not (value.ndim == 0 or (value.ndim == 1 and value.shape[0] in (1, n))):
                raise ValueError(f"{where}: {name} must be a scalar or 1-D of size 1 or {n}, "
                                 f"got shape {value.shape}")
        if b_scale.shape != b_zero_point.shape:
            raise ValueError(f"{where}: b_scale {b_scale.shape} and b_zero_point "
                             f"{b_zero_point.shape} must have the same shape")
        b_zp = b_zero_point.reshape(()) if b_zero_point.size == 1 else b_zero_point
        scales = alpha * np.float32(a_scale.reshape(-1)[0]) * b_scale.astype(_F32).reshape(-1)
        if y_scale is not None:
            scales = scales / np.float32(y_scale.reshape(-1)[0])
        if (operand is not None and a2.dtype in _EIGHT_BIT
                and (c is None or (c.dtype == np.int32 and c.shape in ((n,), (1, n))))
                and (y_zero_point is None or y_zero_point.dtype in _EIGHT_BIT)):
            a32, a_max, squares = center_rows(a2, int(a_zero_point.reshape(-1)[0]))
            acc = exact_product(a32, a_max, squares, operand)
            if y_zero_point is None:
                if c is not None:
                    acc = acc + c.reshape(-1).astype(_F64)
                return (_float_output(node, acc, scales, None, (acc.shape[0],)),)
            out = node.empty(acc.shape, y_zero_point.dtype)
            return (requantize_rows(acc, c, scales, int(y_zero_point.reshape(-1)[0]), out),)
        b_centered = prepared if prepared is not None else centered(b2, b_zp)
        acc = integer_matmul(centered(a2, a_zero_point), b_centered)
        if c is not None:
            acc = acc + c.astype(_F64)
        scales = scales.reshape(()) if scales.size == 1 else scales
        if y_zero_point is None:
            return (scale_bias_output(acc, scales),)
        return (requantize(acc, scales, int(y_zero_point.reshape(-1)[0]),
                           y_zero_point.dtype),)

    return compute


# ---------------------------------------------------------------------------------------
# schemas
# ---------------------------------------------------------------------------------------

def _as_float(tp: TypeProto | None) -> TypeProto | None:
    """``tp`` with its element type replaced by float (for ONNX's float-only shape rules)."""
    if tp is None or elem_type(tp) is None:
        return None
    out = TypeProto()
    out.CopyFrom(tp)
    out.tensor_type.elem_type = FLOAT
    return out


def _typed_like(op_type: str, picks: tuple[int, ...], keep: tuple[str, ...], output: Any):
    """Inference: ONNX ``op_type``'s output shape from inputs ``picks`` (taken as float) and
    attributes ``keep``, with the element type ``output(types, attrs)`` gives."""
    onnx_infer = like_onnx(op_type, 13)

    def infer(types: Sequence[TypeProto | None], attrs: Mapping[str, Any]):
        element = output(types, attrs)
        if not element:
            return [None]
        floats = [_as_float(types[i]) if i < len(types) else None for i in picks]
        shaped = onnx_infer(floats, {k: v for k, v in attrs.items() if k in keep})[0]
        if shaped is None:
            return [tensor_type(element)]
        shaped.tensor_type.elem_type = element
        return [shaped]

    return infer


def _qgemm_output(types: Sequence[TypeProto | None], attrs: Mapping[str, Any]) -> int | None:
    """QGemm's output type: y_zero_point's when given, else float."""
    if len(types) > 8 and types[8] is not None:
        return elem_type(types[8])
    return FLOAT


SCHEMAS: list[DeclaredSchema] = [
    declare("DynamicQuantizeMatMul", inputs=(3, 5),
            infer=_typed_like("MatMul", (0, 1), (), lambda t, a: elem_type(t[0]))),
    declare("MatMulIntegerToFloat", inputs=(4, 7),
            infer=_typed_like("MatMul", (0, 1), (), lambda t, a: elem_type(t[2]))),
    declare("QGemm", inputs=(6, 9), attributes={"alpha": 1.0, "transA": 0, "transB": 0},
            infer=_typed_like("Gemm", (0, 3), ("transA", "transB"), _qgemm_output)),
]

kernels.extend(contrib_quant_qdq.kernels)
kernels.extend(contrib_quant_lstm.kernels)
SCHEMAS += contrib_quant_qdq.SCHEMAS
SCHEMAS += contrib_quant_lstm.SCHEMAS
