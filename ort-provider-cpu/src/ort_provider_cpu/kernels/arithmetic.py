"""CPU kernels: binary and variadic arithmetic, comparison, logic and bitwise ops, and Where.

Binary ops broadcast numpy-style; before opset 7, Add/Sub/Mul/Div/Pow/Equal/Less/Greater/And/
Or/Xor take the legacy ``broadcast``/``axis`` attributes instead (:func:`_binary` picks by the
node's schema version). Large Add/Sub/Mul outputs come from the session's arena
(:meth:`NodeInfo.empty`). Sum/Mean/Max/Min fold any number of inputs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from ort.ep import KernelTable, NodeInfo

from .float_work import LOW_PRECISION

kernels = KernelTable()

# Types numpy computes poorly in (or not at all): Pow and Mod compute them in float32.


# ---------------------------------------------------------------------------------------
# compute builders
# ---------------------------------------------------------------------------------------

def _binary(node: NodeInfo, fn: Callable, arena_ufunc: np.ufunc | None = None) -> Callable:
    """Return the compute of a binary op computed by ``fn(a, b)``: with the legacy
    ``broadcast``/``axis`` semantics before opset 7, else numpy broadcasting; a numpy
    ``arena_ufunc`` (Add/Sub/Mul) computes large outputs into arena memory."""
    if node.since_version < 7:
        return _legacy_broadcast(node, fn)
    if arena_ufunc is not None and node.xp is np:
        return _arena_binary(node, arena_ufunc)
    asarray = node.xp.asarray

    def compute(a, b):
        return (asarray(fn(a, b)),)

    return compute


def _legacy_broadcast(node: NodeInfo, fn: Callable) -> Callable:
    """Return the compute of ``fn(a, b)`` with the ``broadcast``/``axis`` semantics of
    opset < 7: with ``broadcast=1`` and ``axis`` set, B's dims align with A's starting at
    ``axis``; otherwise numpy broadcasting."""
    asarray = node.xp.asarray
    if not node.attrs.get("broadcast", 0) or "axis" not in node.attrs:
        def plain(a, b):
            return (asarray(fn(a, b)),)

        return plain
    axis = int(node.attrs["axis"])

    def compute(a, b):
        start = axis + a.ndim if axis < 0 else axis
        trailing = a.ndim - start - b.ndim
        if start < 0 or trailing < 0:
            raise ValueError(
                f"{node.describe()}: cannot broadcast {b.shape} into {a.shape} at axis {axis}"
            )
        return (asarray(fn(a, b.reshape(b.shape + (1,) * trailing))),)

    return compute


def _arena_binary(node: NodeInfo, ufunc: np.ufunc) -> Callable:
    """Return the compute of a numpy binary ufunc whose large outputs come from the
    session's arena (:meth:`NodeInfo.empty`)."""
    pooled = node.pooled_min_bytes
    asarray = np.asarray

    def compute(a, b):
        if pooled is not None and (a.nbytes >= pooled or b.nbytes >= pooled) \
                and a.dtype == b.dtype and a.dtype.kind in "fiu":
            out = node.empty(np.broadcast_shapes(a.shape, b.shape), a.dtype)
            return (ufunc(a, b, out=out),)
        return (asarray(ufunc(a, b)),)

    return compute


def _dispatch_on_dtype(node: NodeInfo, index: int, pick: Callable) -> Callable:
    """Return ``pick(dtype)`` for the dtype of input ``index`` when known at session
    creation, else a function choosing per call from the runtime dtype of that input."""
    dtype = node.input_dtypes[index] if index < len(node.input_dtypes) else None
    if dtype is not None:
        return pick(np.dtype(dtype))
    cache: dict = {}

    def dynamic(*args):
        dt = args[index].dtype
        fn = cache.get(dt)
        if fn is None:
            fn = cache[dt] = pick(dt)
        return fn(*args)

    return dynamic


def _low_precision_in_float32(xp, fn: Callable) -> Callable:
    """Wrap a binary float function so float16/bfloat16 operands are computed in float32."""

    def compute(a, b):
        if a.dtype in LOW_PRECISION:
            return fn(a.astype(np.float32), b.astype(np.float32)).astype(a.dtype)
        return fn(a, b)

    return compute


# ---------------------------------------------------------------------------------------
# arithmetic
# ---------------------------------------------------------------------------------------

@kernels.register("Add", 1, 6)
@kernels.register("Add", 7)
def add(node: NodeInfo):
    """Add: A + B."""
    return _binary(node, node.xp.add, np.add)


@kernels.register("Sub", 1, 6)
@kernels.register("Sub", 7)
def sub(node: NodeInfo):
    """Sub: A - B."""
    return _binary(node, node.xp.subtract, np.subtract)


@kernels.register("Mul", 1, 6)
@kernels.register("Mul", 7)
def mul(node: NodeInfo):
    """Mul: A * B."""
    return _binary(node, node.xp.multiply, np.multiply)


def _divide_for(xp, dtype: np.dtype) -> Callable:
    """Return the Div function for ``dtype``: true division for floats, C++ truncation
    toward zero for signed integers, floor (= truncation) for unsigned ones."""
    if dtype.kind in "fcV":
        return xp.true_divide
    if dtype.kind == "u":
        return xp.floor_divide

    def truncating(a, b):
        quotient = xp.floor_divide(a, b)
        inexact = (quotient * b != a) & ((a < 0) != (b < 0))
        return quotient + inexact.astype(quotient.dtype)

    return truncating


@kernels.register("Div", 1, 6)
@kernels.register("Div", 7)
def div(node: NodeInfo):
    """Div: A / B; true division for floats, truncation toward zero for integers (C++)."""
    return _binary(node, _dispatch_on_dtype(node, 0, functools.partial(_divide_for, node.xp)))


def _int_power(xp, base, exponent):
    """Return base**exponent for integer arrays as C++ ``(T)std::pow``: negative exponents
    give 0 except for bases 1 and -1."""
    result = xp.power(base, xp.abs(exponent))
    negative = exponent < 0
    if negative.any():
        unit = (base == 1) | (base == -1)
        result = xp.where(negative & ~unit, 0, result)
    return result


@kernels.register("Pow", 1, 6)
@kernels.register("Pow", 7)
def pow_(node: NodeInfo):
    """Pow: base ** exponent; the result keeps the base's dtype whatever the exponent's
    (float16/bfloat16 bases computed in float32)."""
    xp = node.xp

    def power(base, exponent):
        if base.dtype.kind in "iu" and exponent.dtype.kind in "iu":
            result = _int_power(xp, base, exponent)
        elif base.dtype in LOW_PRECISION:
            result = xp.power(base.astype(np.float32), exponent)
        elif base.dtype.kind == "f" and exponent.dtype.kind in "iu":
            result = xp.power(base, exponent.astype(base.dtype))
        else:
            result = xp.power(base, exponent)
        if result.dtype != base.dtype:
            result = result.astype(base.dtype)
        return result

    return _binary(node, power)


@kernels.register("Mod", 10, 12)
@kernels.register("Mod", 13, 27)
@kernels.register("Mod", 28)
def mod(node: NodeInfo):
    """Mod 10+: ``fmod=1`` is C fmod (sign of dividend), ``fmod=0`` takes the sign of the
    divisor (floor division; integers only before opset 28)."""
    xp = node.xp
    fmod = int(node.attrs.get("fmod", 0))
    if fmod not in (0, 1):
        raise ValueError(f"{node.describe()}: fmod must be 0 or 1, got {fmod}")
    dtype = node.input_dtypes[0]
    floats_need_fmod = node.since_version < 28
    if floats_need_fmod and not fmod and dtype is not None and np.dtype(dtype).kind not in "iu":
        raise ValueError(f"{node.describe()}: fmod must be 1 for floating point inputs")
    if fmod:
        return _binary(node, _low_precision_in_float32(xp, xp.fmod))
    # numpy's remainder has the special cases of Mod-28: signed zeros take the divisor's
    # sign, x = +-inf or y = 0 give NaN, y = +-inf returns x or y by sign.
    return _binary(node, _low_precision_in_float32(xp, xp.remainder))


# ---------------------------------------------------------------------------------------
# comparison
# ---------------------------------------------------------------------------------------

@kernels.register("Equal", 1, 6)
@kernels.register("Equal", 7)
def equal(node: NodeInfo):
    """Equal: A == B (strings compare as Python str)."""
    return _binary(node, node.xp.equal)


@kernels.register("Less", 1, 6)
@kernels.register("Less", 7)
def less(node: NodeInfo):
    """Less: A < B."""
    return _binary(node, node.xp.less)


@kernels.register("Greater", 1, 6)
@kernels.register("Greater", 7)
def greater(node: NodeInfo):
    """Greater: A > B."""
    return _binary(node, node.xp.greater)


@kernels.register("LessOrEqual", 12)
def less_or_equal(node: NodeInfo):
    """LessOrEqual 12+: A <= B."""
    return _binary(node, node.xp.less_equal)


@kernels.register("GreaterOrEqual", 12)
def greater_or_equal(node: NodeInfo):
    """GreaterOrEqual 12+: A >= B."""
    return _binary(node, node.xp.greater_equal)


# ---------------------------------------------------------------------------------------
# logic and bitwise
# ---------------------------------------------------------------------------------------

@kernels.register("And", 1, 6)
@kernels.register("And", 7)
def and_(node: NodeInfo):
    """And: logical A and B."""
    return _binary(node, node.xp.logical_and)


@kernels.register("Or", 1, 6)
@kernels.register("Or", 7)
def or_(node: NodeInfo):
    """Or: logical A or B."""
    return _binary(node, node.xp.logical_or)


@kernels.register("Xor", 1, 6)
@kernels.register("Xor", 7)
def xor(node: NodeInfo):
    """Xor: logical A xor B."""
    return _binary(node, node.xp.logical_xor)


@kernels.register("BitShift", 11)
def bit_shift(node: NodeInfo):
    """BitShift 11+: X << Y or X >> Y by the ``direction`` attribute (LEFT or RIGHT)."""
    xp = node.xp
    direction = node.attrs.get("direction", "")
    if direction == "LEFT":
        return _binary(node, xp.left_shift)
    if direction == "RIGHT":
        return _binary(node, xp.right_shift)
    raise ValueError(f"{node.describe()}: direction must be 'LEFT' or 'RIGHT', got {direction!r}")


@kernels.register("BitwiseAnd", 18)
def bitwise_and(node: NodeInfo):
    """BitwiseAnd 18+: A & B."""
    return _binary(node, node.xp.bitwise_and)


@kernels.register("BitwiseOr", 18)
def bitwise_or(node: NodeInfo):
    """BitwiseOr 18+: A | B."""
    return _binary(node, node.xp.bitwise_or)


@kernels.register("BitwiseXor", 18)
def bitwise_xor(node: NodeInfo):
    """BitwiseXor 18+: A ^ B."""
    return _binary(node, node.xp.bitwise_xor)


# ---------------------------------------------------------------------------------------
# variadic ops
# ---------------------------------------------------------------------------------------

def _variadic(node: NodeInfo, fold: Callable, mean: bool = False) -> Callable:
    """Return the compute folding all inputs with the binary ufunc ``fold`` (numpy
    broadcasting); ``mean`` divides by the input count; one input is copied."""
    xp = node.xp

    def compute(*inputs):
        result = inputs[0]
        for other in inputs[1:]:
            result = fold(result, other)
        if mean:
            result = result / result.dtype.type(len(inputs))
        elif len(inputs) == 1:
            result = xp.array(result, copy=True)
        return (xp.asarray(result),)

    return compute


@kernels.register("Sum", 1)
def sum_inputs(node: NodeInfo):
    """Sum: elementwise sum of all inputs."""
    return _variadic(node, node.xp.add)


@kernels.register("Mean", 1)
def mean(node: NodeInfo):
    """Mean: elementwise sum of all inputs divided by their count."""
    return _variadic(node, node.xp.add, mean=True)


@kernels.register("Max", 1)
def max_inputs(node: NodeInfo):
    """Max: elementwise maximum of all inputs."""
    return _variadic(node, node.xp.maximum)


@kernels.register("Min", 1)
def min_inputs(node: NodeInfo):
    """Min: elementwise minimum of all inputs."""
    return _variadic(node, node.xp.minimum)


# ---------------------------------------------------------------------------------------
# selection
# ---------------------------------------------------------------------------------------

@kernels.register("Where", 9)
def where(node: NodeInfo):
    """Where(condition, X, Y): X where condition else Y, broadcasting all three."""
    xp = node.xp

    def compute(condition, x, y):
        return (xp.where(condition, x, y),)

    return compute
