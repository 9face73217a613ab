"""CPU kernels: onnxruntime's QOperator-format element-wise, pooling and reduction ops
(QLinearAdd, QLinearMul, QLinearSigmoid, QLinearLeakyRelu, QLinearSoftmax, QLinearConcat,
QLinearAveragePool, QLinearGlobalAveragePool, QLinearWhere, QLinearReduceMean, NhwcMaxPool).

Semantics follow onnxruntime's contrib operator spec (docs/ContribOperators.md) and its CPU
kernels' observed behaviour; every op is declared to the core in ``SCHEMAS``
(:mod:`.contrib_schema`).

Quantized values are uint8 or int8 with per-tensor float32 scales and zero points (a scalar
or a one-element 1-D tensor; an omitted zero point is 0). The results are bit-exact with
onnxruntime's CPU kernels, whose rounding this module mirrors:

- QLinearAdd requantizes in float32 with fused multiply-adds (MLAS' AVX2 kernel): the
  order of the two operands' terms depends on how onnxruntime's broadcaster walks the
  inputs (:func:`_a_is_constant`, :func:`_span`);
- QLinearMul multiplies the zero-point-shifted integers exactly and scales the product once;
- QLinearSigmoid, QLinearLeakyRelu and QLinearConcat map each of the 256 codes through a
  lookup table built from float32 dequantized values (Sigmoid through MLAS' rational
  logistic approximation), requantized half to even;
- QLinearSoftmax uses onnxruntime's table of shifted exponentials and its float32 running
  sums (:mod:`.contrib_qlinear_softmax`).

The pooling ops and QLinearReduceMean live in :mod:`.contrib_qlinear_pool`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from onnx import TypeProto
from ort.ep import DeclaredSchema, KernelTable, NodeInfo

from ..jit import compiled_loops_enabled
from . import contrib_qlinear_pool, contrib_qlinear_softmax, quant_loops
from .contrib_qlinear_common import (F32, QUANT_RANGES, broadcast_dims,
                                     check_quant_dtype, codes_of, fma32,
                                     lookup, quantize_mlas, saturate_cvt,
                                     scalar_param, zero_point)
from .contrib_schema import MS, REQUIRED, declare, dims, elem_type, tensor_type
from .kernel_args import normalize_axis

kernels = KernelTable()

#: The contrib ops of this module, declared to the core.
SCHEMAS: list[DeclaredSchema] = []


# --------------------------------------------------------------------------------------------
# QLinearAdd, QLinearMul
# --------------------------------------------------------------------------------------------


def _a_is_constant(a_shape: tuple[int, ...], b_shape: tuple[int, ...]) -> bool:
    """Whether onnxruntime's broadcaster treats A as the constant of each span (then the
    kernel gets B's span first): A is rank 0, or A is 1 in the innermost dim where the
    output is not (the innermost dim at all where both are 1 throughout)."""
    if not a_shape:
        return True
    if not b_shape:
        return a_shape[-1] == 1
    rank = min(len(a_shape), len(b_shape))
    for index in range(rank):
        a, b = a_shape[-1 - index], b_shape[-1 - index]
        if max(a, b) == 1 and index + 1 < rank:
            continue
        return a == 1
    return False  # pragma: no cover (rank >= 1 returns in the loop)


def _span(a_shape: tuple[int, ...], b_shape: tuple[int, ...]) -> int:
    """The span length of onnxruntime's broadcaster: the product of the innermost output dims
    (size-1 dims skipped) while each input keeps varying (or keeps being broadcast)."""
    rank = max(len(a_shape), len(b_shape))
    a_full = (1,) * (rank - len(a_shape)) + tuple(a_shape)
    b_full = (1,) * (rank - len(b_shape)) + tuple(b_shape)
    spans = []
    for full in (a_full, b_full):
        count, mode = 1, None
        for index in range(rank - 1, -1, -1):
            largest = max(a_full[index], b_full[index])
            if largest == 1:
                continue
            varying = full[index] > 1
            if mode is not None and varying != mode:
                break
            mode = varying
            count *= largest
        spans.append(count)
    return min(spans)


def _qlinear_add(p: Any, sp: float, zp: int, q: Any, sq: float, zq: int, sc: float, zc: int,
                 p_first: bool) -> Any:
    """MLAS' AVX2 QLinearAdd of P (its first operand) and Q: the float32 result before
    rounding, ``p * rp + (q * rq + fixed)`` with each step a fused multiply-add (ratios
    ``r = scale / C_scale``, ``fixed = C_zp - (rp * P_zp + rq * Q_zp)``). With ``p_first``
    (the kernel's scalar-P template: a span of one element) P's term is folded into the
    constant part first instead."""
    rp, rq = F32(F32(sp) / F32(sc)), F32(F32(sq) / F32(sc))
    # (float)zc - (rp * zp + rq * zq), the inner sum contracted into one fused multiply-add
    fixed = F32(F32(zc) - fma32(rp, F32(zp), F32(rq * F32(zq))))
    pf, qf = p.astype(F32), q.astype(F32)
    if p_first:
        return fma32(qf, rq, fma32(pf, rp, fixed))
    return fma32(pf, rp, fma32(qf, rq, fixed))


def _compiled_add(node: NodeInfo, a: Any, sa: float, za: int, b: Any, sb: float, zb: int,
                  sc: float, zc: int, dtype: np.dtype) -> Any:
    """QLinearAdd of same-shape A and B (more than one element) in one compiled pass, with
    :func:`_qlinear_add`'s arithmetic (A first)."""
    rp, rq = F32(F32(sa) / F32(sc)), F32(F32(sb) / F32(sc))
    fixed = F32(F32(zc) - fma32(rp, F32(za), F32(rq * F32(zb))))
    loop = quant_loops.qlinear_add_same.prepare((dtype, 1), (dtype, 1), F32, F32, F32, int,
                                                int, (dtype, 1))
    low, high = QUANT_RANGES[dtype]
    out = node.empty(a.shape, dtype)
    loop(np.ascontiguousarray(a).reshape(-1), np.ascontiguousarray(b).reshape(-1), rp, rq,
         fixed, low, high, out.reshape(-1))
    return out


def _binary_factory(node: NodeInfo, op: str) -> Callable[..., tuple]:
    """QLinearAdd / QLinearMul: C = quantize(op(dequantize(A), dequantize(B)))."""
    where = node.describe()
    use_loop = op == "Add" and compiled_loops_enabled(node)

    def compute(a, a_scale, a_zero_point, b, b_scale, b_zero_point=None, c_scale=None,
                c_zero_point=None):
        dtype = check_quant_dtype(where, a.dtype)
        if b.dtype != dtype:
            raise ValueError(f"{where}: A is {dtype} but B is {b.dtype}; both must have one type")
        sa, sb, sc = (scalar_param(where, n, v) for n, v in
                      (("A_scale", a_scale), ("B_scale", b_scale), ("C_scale", c_scale)))
        za, zb, zc = (zero_point(where, n, v, dtype) for n, v in
                      (("A_zero_point", a_zero_point), ("B_zero_point", b_zero_point),
                       ("C_zero_point", c_zero_point)))
        try:
            shape = np.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            raise ValueError(f"{where}: A {a.shape} and B {b.shape} do not broadcast") from None
        if 0 in shape:
            return (np.empty(shape, dtype),)
        if use_loop and a.shape == b.shape and a.size > 1:
            return (_compiled_add(node, a, sa, za, b, sb, zb, sc, zc, dtype),)
        if op == "Mul":
            ratio = F32(F32(F32(sa) * F32(sb)) / F32(sc))
            product = (a.astype(np.int32) - za) * (b.astype(np.int32) - zb)
            values = product.astype(F32) * ratio + F32(zc)
        else:
            span = _span(tuple(a.shape), tuple(b.shape))
            # onnxruntime passes B's span first where A is the constant of each span
            if _a_is_constant(tuple(a.shape), tuple(b.shape)):
                values = _qlinear_add(b, sb, zb, a, sa, za, sc, zc, span == 1)
            else:
                values = _qlinear_add(a, sa, za, b, sb, zb, sc, zc, span == 1)
        return (np.array(np.broadcast_to(saturate_cvt(values, dtype), shape), order="C"),)

    return compute


@kernels.register("QLinearAdd", since=1, domain=MS)
def qlinear_add(node: NodeInfo) -> Callable[..., tuple]:
    """QLinearAdd 1+: C = quantize(dequantize(A) + dequantize(B)) with broadcasting."""
    return _binary_factory(node, "Add")


@kernels.register("QLinearMul", since=1, domain=MS)
def qlinear_mul(node: NodeInfo) -> Callable[..., tuple]:
    """QLinearMul 1+: C = quantize(dequantize(A) * dequantize(B)) with broadcasting."""
    return _binary_factory(node, "Mul")


# --------------------------------------------------------------------------------------------
# lookup-table activations: QLinearSigmoid, QLinearLeakyRelu
# --------------------------------------------------------------------------------------------

#: MLAS' logistic approximation (Eigen's): clamp to [-18, 18], p(x) / q(x) + 1/2.
_LOGISTIC_ALPHA = tuple(F32(v) for v in (4.37031012579801e-11, 1.15627324459942e-07,
                                         6.08574864600143e-05, 8.51377133304701e-03,
                                         2.48287947061529e-01))
_LOGISTIC_BETA = tuple(F32(v) for v in (6.10247389755681e-13, 5.76102136993427e-09,
                                        6.29106785017040e-06, 1.70198817374094e-03,
                                        1.16817656904453e-01, 9.93151921023180e-01))


def mlas_logistic(x: Any) -> Any:
    """MLAS' float32 logistic (its FMA kernel): a rational approximation clamped to [0, 1]."""
    v = np.clip(x.astype(F32), F32(-18), F32(18))
    square = v * v
    p = np.full_like(v, _LOGISTIC_ALPHA[0])
    for coefficient in _LOGISTIC_ALPHA[1:]:
        p = fma32(p, square, coefficient)
    p = p * v
    q = np.full_like(v, _LOGISTIC_BETA[0])
    for coefficient in _LOGISTIC_BETA[1:]:
        q = fma32(q, square, coefficient)
    return np.clip(p / q + F32(0.5), F32(0), F32(1))


def build_table(where: str, dtype: np.dtype, x_scale: Any, x_zero_point: Any, y_scale: Any,
                y_zero_point: Any, transform: Callable[[Any], Any]) -> Any:
    """onnxruntime's 256-entry table for an element-wise op on quantized values: each code
    dequantized in float32, transformed, requantized (half to even) to ``dtype``; indexed by
    the code's byte."""
    xs, ys = scalar_param(where, "X_scale", x_scale), scalar_param(where, "Y_scale", y_scale)
    xz = zero_point(where, "X_zero_point", x_zero_point, dtype)
    yz = zero_point(where, "Y_zero_point", y_zero_point, dtype)
    dequantized = F32(xs) * (codes_of(dtype) - xz).astype(F32)
    return quantize_mlas(transform(dequantized), ys, yz, dtype)


def _table_factory(node: NodeInfo, transform: Callable[[Any], Any]) -> Callable[..., tuple]:
    """A lookup-table op; the table is built once when the scales and zero points are
    constant (as onnxruntime does), else per run."""
    where = node.describe()
    consts = list(node.const_inputs) + [None] * 5
    fixed = {}
    dtype0 = node.input_dtypes[0] if node.input_dtypes else None
    if dtype0 is not None and consts[1] is not None and consts[3] is not None \
            and (consts[2] is not None or not node.has_input(2)) \
            and (consts[4] is not None or not node.has_input(4)):
        dtype = check_quant_dtype(where, np.dtype(dtype0))
        fixed[dtype] = build_table(where, dtype, consts[1], consts[2], consts[3], consts[4],
                                   transform)

    def compute(x, x_scale, x_zero_point=None, y_scale=None, y_zero_point=None):
        dtype = check_quant_dtype(where, x.dtype)
        table = fixed.get(dtype)
        if table is None:
            table = build_table(where, dtype, x_scale, x_zero_point, y_scale, y_zero_point,
                                transform)
        return (lookup(table, x),)

    return compute


@kernels.register("QLinearSigmoid", since=1, domain=MS)
def qlinear_sigmoid(node: NodeInfo) -> Callable[..., tuple]:
    """QLinearSigmoid 1+: Y = quantize(sigmoid(dequantize(X))) via a 256-entry table."""
    return _table_factory(node, mlas_logistic)


@kernels.register("QLinearLeakyRelu", since=1, domain=MS)
def qlinear_leaky_relu(node: NodeInfo) -> Callable[..., tuple]:
    """QLinearLeakyRelu 1+: Y = quantize(leaky_relu(dequantize(X), alpha)) via a table."""
    alpha = F32(node.attrs.get("alpha", 0.01))
    return _table_factory(node, lambda v: np.where(v >= 0, v, alpha * v).astype(F32))


# --------------------------------------------------------------------------------------------
# QLinearConcat
# --------------------------------------------------------------------------------------------


@kernels.register("QLinearConcat", since=1, domain=MS)
def qlinear_concat(node: NodeInfo) -> Callable[..., tuple]:
    """QLinearConcat 1+: inputs (Y_scale, Y_zero_point, then (X, X_scale, X_zero_point) per
    tensor) concatenated along ``axis``; each X is requantized to Y's scale and zero point
    through a 256-entry table (copied as is where its parameters equal Y's)."""
    where = node.describe()
    if "axis" not in node.attrs or node.attrs["axis"] is None:
        raise ValueError(f"{where}: attribute axis is required")
    axis = int(node.attrs["axis"])
    count = len(node.input_names)
    if count < 5 or (count - 2) % 3:
        raise ValueError(f"{where}: inputs must be Y_scale, Y_zero_point and one or more "
                         f"(X, X_scale, X_zero_point) triples, got {count} inputs")

    def compute(y_scale, y_zero_point, *triples):
        dtype = check_quant_dtype(where, y_zero_point.dtype)
        ys = scalar_param(where, "Y_scale", y_scale)
        yz = zero_point(where, "Y_zero_point", y_zero_point, dtype)
        parts = []
        for k in range(0, len(triples), 3):
            x, x_scale, x_zero_point = triples[k:k + 3]
            if x_scale.dtype != F32:
                raise ValueError(f"{where}: scale of input {k // 3} is {x_scale.dtype}, "
                                 f"must be float")
            if x_zero_point is None or x_zero_point.dtype != dtype or x.dtype != dtype:
                raise ValueError(f"{where}: input {k // 3} and its zero point must be {dtype} "
                                 f"like Y_zero_point")
            xs = scalar_param(where, "X_scale", x_scale)
            xz = zero_point(where, "X_zero_point", x_zero_point, dtype)
            if F32(xs) == F32(ys) and xz == yz:
                parts.append(x)
            else:
                table = build_table(where, dtype, x_scale, x_zero_point, y_scale,
                                    y_zero_point, lambda v: v)
                parts.append(lookup(table, x))
        rank = parts[0].ndim
        ax = normalize_axis(node, axis, rank)
        for k, part in enumerate(parts):
            if part.ndim != rank or part.shape[:ax] != parts[0].shape[:ax] \
                    or part.shape[ax + 1:] != parts[0].shape[ax + 1:]:
                raise ValueError(f"{where}: input {k} of shape {part.shape} does not match "
                                 f"input 0 of shape {parts[0].shape} outside axis {axis}")
        return (np.concatenate(parts, axis=ax),)

    return compute


# --------------------------------------------------------------------------------------------
# QLinearWhere
# --------------------------------------------------------------------------------------------


@kernels.register("QLinearWhere", since=1, domain=MS)
def qlinear_where(node: NodeInfo) -> Callable[..., tuple]:
    """QLinearWhere 1+: Z = where(condition, X, Y), X and Y requantized to Z's scale and
    zero point through 256-entry tables (copied as is where their parameters equal Z's)."""
    where = node.describe()

    def compute(condition, x, x_scale, x_zero_point, y, y_scale, y_zero_point, z_scale,
                z_zero_point):
        dtype = check_quant_dtype(where, x.dtype)
        if y.dtype != dtype:
            raise ValueError(f"{where}: X is {dtype} but Y is {y.dtype}")
        zs = scalar_param(where, "z_scale", z_scale)
        zz = zero_point(where, "z_zero_point", z_zero_point, dtype)
        values = []
        for name, v, s, z in (("x", x, x_scale, x_zero_point), ("y", y, y_scale, y_zero_point)):
            vs = scalar_param(where, f"{name}_scale", s)
            vz = zero_point(where, f"{name}_zero_point", z, dtype)
            if F32(vs) == F32(zs) and vz == zz:
                values.append(v)
            else:
                values.append(lookup(build_table(where, dtype, s, z, z_scale, z_zero_point,
                                                  lambda t: t), v))
        try:
            return (np.where(condition, values[0], values[1]).astype(dtype, copy=False),)
        except ValueError:
            raise ValueError(f"{where}: condition {condition.shape}, X {x.shape} and Y "
                             f"{y.shape} do not broadcast") from None

    return compute


# --------------------------------------------------------------------------------------------
# schemas
# --------------------------------------------------------------------------------------------


def _like(index: int, shape_of: Callable[[Sequence[TypeProto | None], Mapping[str, Any]],
                                          list | None] | None = None):
    """Inference: input ``index``'s element type, the shape from ``shape_of`` (or input
    ``index``'s)."""

    def infer(types, attrs):
        element = elem_type(types[index]) if index < len(types) else None
        if shape_of is None:
            shape = dims(types[index]) if index < len(types) else None
        else:
            try:
                shape = shape_of(types, attrs)
            except (IndexError, KeyError, TypeError, ValueError):
                shape = None
        return [tensor_type(element, shape)]

    return infer


def _concat_shape(types, attrs):
    """QLinearConcat's output shape: the inputs' shapes concatenated along axis."""
    shapes = [dims(types[k]) for k in range(2, len(types), 3)]
    if any(s is None for s in shapes) or not shapes:
        return None
    rank = len(shapes[0])
    ax = int(attrs["axis"])
    ax = ax + rank if ax < 0 else ax
    out = list(shapes[0])
    total: int | None = 0
    for shape in shapes:
        if len(shape) != rank:
            return None
        d = shape[ax]
        total = total + d if isinstance(total, int) and isinstance(d, int) else None
        for i in range(rank):
            if i != ax and not isinstance(out[i], int) and isinstance(shape[i], int):
                out[i] = shape[i]
    out[ax] = total
    return out


_BINARY_INPUTS = (7, 8)

SCHEMAS = [
    declare("QLinearAdd", inputs=_BINARY_INPUTS,
            infer=_like(0, lambda t, a: broadcast_dims(dims(t[0]), dims(t[3])))),
    declare("QLinearMul", inputs=_BINARY_INPUTS,
            infer=_like(0, lambda t, a: broadcast_dims(dims(t[0]), dims(t[3])))),
    declare("QLinearSigmoid", inputs=(4, 5), infer=_like(0)),
    declare("QLinearLeakyRelu", inputs=(4, 5), attributes={"alpha": 0.01}, infer=_like(0)),
    declare("QLinearConcat", inputs=(5, None), attributes={"axis": REQUIRED},
            infer=_like(1, _concat_shape)),
    declare("QLinearWhere", inputs=9,
            infer=_like(1, lambda t, a: broadcast_dims(
                broadcast_dims(dims(t[0]), dims(t[1])), dims(t[4])))),
]

for _module in (contrib_qlinear_softmax, contrib_qlinear_pool):
    kernels.extend(_module.kernels)
    SCHEMAS += _module.SCHEMAS

