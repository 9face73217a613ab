"""CPU kernels: elementwise arithmetic, comparison, logic, bitwise and activation ops.

Most ops share a shape, so their registrations are generated from tables by small
factory-makers: ``_BINARY`` (two inputs, numpy broadcasting, legacy ``broadcast``/``axis``
attributes before opset 7), ``_UNARY`` (one input, one ufunc-like function) and ``_variadic_factory``
(Sum/Mean/Max/Min). Ops with attributes or special semantics have their own factories.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import ml_dtypes
import numpy as np

from ort.ep import KernelTable, NodeInfo

kernels = KernelTable()

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_SQRT_PI = math.sqrt(math.pi)
# Types numpy computes poorly in (or not at all); composite formulas run in float32 for them.
_LOW_PRECISION = frozenset(np.dtype(t) for t in (np.float16, ml_dtypes.bfloat16))


# ---------------------------------------------------------------------------------------
# erf: numpy has no erf; evaluated in float64 from a Taylor series (|x| < 1.5) and a
# continued fraction for erfc (|x| >= 1.5).
# ---------------------------------------------------------------------------------------

def _taylor_coefficients(count: int) -> list[float]:
    """Return the coefficients c_k of erf(x) = 2/sqrt(pi) * x * sum c_k x^(2k)."""
    return [(-1.0) ** k / (math.factorial(k) * (2 * k + 1)) for k in range(count)]


_ERF_TERMS = {  # (Taylor terms, continued-fraction depth) per accuracy target
    "double": (_taylor_coefficients(26), 90),
    "single": (_taylor_coefficients(18), 32),
}


def _exp_minus_square(xp, x):
    """Return exp(-x*x) for float64 x >= 0 without the rounding error of x*x (split x)."""
    hi = (x.view(xp.int64) & xp.int64(~((1 << 28) - 1))).view(xp.float64)
    lo = x - hi
    return xp.exp(-hi * hi) * xp.exp(-(hi + x) * lo)


def _erf_float64(xp, x, accuracy: str):
    """Return erf of a float64 array: a Taylor series for |x| < 1.5, else 1 - erfc by a
    continued fraction (|x| >= 6: +-1). NaN propagates through the series."""
    coefficients, depth = _ERF_TERMS[accuracy]
    xs = xp.clip(x, -1.5, 1.5)
    x2 = xs * xs
    out = xp.full_like(xs, coefficients[-1])
    for c in coefficients[-2::-1]:  # Horner, in place on our own temporary
        out *= x2
        out += c
    out *= xs
    out *= _TWO_OVER_SQRT_PI
    large = xp.abs(x) >= 1.5
    if large.any():
        xl = x[large]
        al = xp.minimum(xp.abs(xl), 6.0)
        frac = al.copy()
        for k in range(depth, 0, -1):  # backward recurrence, in place on our own temporary
            xp.divide(0.5 * k, frac, out=frac)
            frac += al
        erfc = _exp_minus_square(xp, al) / (_SQRT_PI * frac)
        out[large] = xp.copysign(xp.where(al < 6.0, 1.0 - erfc, 1.0), xl)
    return out


def erf(xp, x):
    """Return erf(x) elementwise in x's dtype, accurate to float64 (or float32) rounding."""
    if x.dtype == np.float64:
        return _erf_float64(xp, x, "double")
    return _erf_float64(xp, x.astype(np.float64), "single").astype(x.dtype)


# ---------------------------------------------------------------------------------------
# GELU in float32: erf(z) = tanh(z * P(z^2)) for |z| <= 4 (P of degree 6, fitted to erf;
# |error| < 6e-8 in exact arithmetic, ~1.5e-7 in float32, about what a float32 erf gives).
# z is clipped to +-4.1, where z P(z^2) (still increasing) is past 10 and numpy's tanh
# returns exactly +-1, as erf does in float32. Evaluated in place over cache-sized chunks.
# ---------------------------------------------------------------------------------------

_ERF_TANH_POLY = tuple(np.float32(c) for c in (
    1.1283797025680542, 0.10276547819375992, -0.00018438295228406787,
    -0.0006257202476263046, 8.971287024905905e-05, -5.985740699543385e-06,
    1.589632603327118e-07,
))
_GELU_CHUNK = 1 << 16  # elements per chunk: the chunk and its temporaries stay in cache


def _chunks(y, size: int):
    """Yield consecutive flat chunks (views) of ``y``, or ``y`` itself when it is not
    C-contiguous."""
    if not y.flags.c_contiguous:
        yield y
        return
    flat = y.reshape(-1)
    for start in range(0, flat.size, max(size, 1)):
        yield flat[start:start + size]


def gelu_inplace(xp, y) -> None:
    """y <- 0.5 y (1 + erf(y / sqrt 2)) for a fresh float32 array ``y``."""
    size = min(y.size, _GELU_CHUNK) if y.flags.c_contiguous else y.size
    buffers = [xp.empty(size, y.dtype) for _ in range(3)]
    top = len(_ERF_TANH_POLY) - 1
    for x in _chunks(y, size):
        z, s, p = (b[:x.size].reshape(x.shape) for b in buffers)
        xp.multiply(x, np.float32(1 / math.sqrt(2)), out=z)
        xp.clip(z, np.float32(-4.1), np.float32(4.1), out=z)
        xp.multiply(z, z, out=s)
        xp.multiply(s, _ERF_TANH_POLY[top], out=p)
        p += _ERF_TANH_POLY[top - 1]
        for c in _ERF_TANH_POLY[top - 2::-1]:
            p *= s
            p += c
        p *= z
        xp.tanh(p, out=p)
        p += np.float32(1)
        p *= np.float32(0.5)
        x *= p


def fast_gelu_inplace(xp, y) -> None:
    """y <- 0.5 y (1 + tanh(sqrt(2/pi) (y + 0.044715 y^3))) for a fresh float32 (or float64)
    array ``y``."""
    k = y.dtype.type(math.sqrt(2 / math.pi))
    k3 = y.dtype.type(0.044715 * math.sqrt(2 / math.pi))
    size = min(y.size, _GELU_CHUNK) if y.flags.c_contiguous else y.size
    t_buf = xp.empty(size, y.dtype)
    for x in _chunks(y, size):
        t = t_buf[:x.size].reshape(x.shape)
        xp.multiply(x, x, out=t)
        t *= k3
        t += k
        t *= x
        xp.tanh(t, out=t)
        t += y.dtype.type(1)
        t *= y.dtype.type(0.5)
        x *= t


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------

def _low_precision_safe(xp, fn: Callable) -> Callable:
    """Wrap a float formula so float16/bfloat16 inputs are computed in float32 and rounded."""

    def compute(x):
        if x.dtype in _LOW_PRECISION:
            return (xp.asarray(fn(x.astype(np.float32))).astype(x.dtype),)
        return (xp.asarray(fn(x)),)

    return compute


def _legacy_broadcast(node: NodeInfo, fn: Callable) -> Callable:
    """Wrap a binary function with the ``broadcast``/``axis`` semantics of opset < 7:
    with ``broadcast=1`` and ``axis`` set, B's dims align with A's starting at ``axis``."""
    xp = node.xp
    if not node.attrs.get("broadcast", 0) or "axis" not in node.attrs:
        return lambda a, b: (xp.asarray(fn(a, b)),)
    axis = int(node.attrs["axis"])

    def compute(a, b):
        start = axis + a.ndim if axis < 0 else axis
        trailing = a.ndim - start - b.ndim
        if start < 0 or trailing < 0:
            raise ValueError(
                f"{node.describe()}: cannot broadcast {b.shape} into {a.shape} at axis {axis}"
            )
        return (xp.asarray(fn(a, b.reshape(b.shape + (1,) * trailing))),)

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


# ---------------------------------------------------------------------------------------
# binary ops
# ---------------------------------------------------------------------------------------

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


def _make_div(node: NodeInfo) -> Callable:
    """Return the Div function of a node, picked by its element type."""
    xp = node.xp
    return _dispatch_on_dtype(node, 0, lambda dt: _divide_for(xp, dt))


def _int_power(xp, base, exponent):
    """Return base**exponent for integer arrays as C++ ``(T)std::pow``: negative exponents
    give 0 except for bases 1 and -1."""
    result = xp.power(base, xp.abs(exponent))
    negative = exponent < 0
    if negative.any():
        unit = (base == 1) | (base == -1)
        result = xp.where(negative & ~unit, 0, result)
    return result


def _make_pow(node: NodeInfo) -> Callable:
    """Return the Pow function: the result keeps the base's dtype whatever the exponent's."""
    xp = node.xp

    def power(base, exponent):
        if base.dtype.kind in "iu" and exponent.dtype.kind in "iu":
            result = _int_power(xp, base, exponent)
        elif base.dtype in _LOW_PRECISION:
            result = xp.power(base.astype(np.float32), exponent)
        elif base.dtype.kind == "f" and exponent.dtype.kind in "iu":
            result = xp.power(base, exponent.astype(base.dtype))
        else:
            result = xp.power(base, exponent)
        if result.dtype != base.dtype:
            result = result.astype(base.dtype)
        return result

    return power


def _low_precision_in_float32(xp, fn: Callable) -> Callable:
    """Wrap a binary float function so float16/bfloat16 operands are computed in float32."""

    def compute(a, b):
        if a.dtype in _LOW_PRECISION:
            return fn(a.astype(np.float32), b.astype(np.float32)).astype(a.dtype)
        return fn(a, b)

    return compute


def _make_mod(node: NodeInfo) -> Callable:
    """Return the Mod function: ``fmod=1`` is C fmod (sign of dividend), ``fmod=0`` takes the
    sign of the divisor (floor division; integers only before opset 28)."""
    xp = node.xp
    fmod = int(node.attrs.get("fmod", 0))
    if fmod not in (0, 1):
        raise ValueError(f"{node.describe()}: fmod must be 0 or 1, got {fmod}")
    dtype = node.input_dtypes[0]
    floats_need_fmod = node.since_version < 28
    if floats_need_fmod and not fmod and dtype is not None and np.dtype(dtype).kind not in "iu":
        raise ValueError(f"{node.describe()}: fmod must be 1 for floating point inputs")
    if fmod:
        return _low_precision_in_float32(xp, xp.fmod)
    # numpy's remainder has the special cases of Mod-28: signed zeros take the divisor's
    # sign, x = +-inf or y = 0 give NaN, y = +-inf returns x or y by sign.
    return _low_precision_in_float32(xp, xp.remainder)


def _make_bitshift(node: NodeInfo) -> Callable:
    """Return the BitShift function for the ``direction`` attribute (LEFT or RIGHT)."""
    xp = node.xp
    direction = node.attrs.get("direction", "")
    if direction == "LEFT":
        return xp.left_shift
    if direction == "RIGHT":
        return xp.right_shift
    raise ValueError(f"{node.describe()}: direction must be 'LEFT' or 'RIGHT', got {direction!r}")


def _make_equal(node: NodeInfo) -> Callable:
    """Return the Equal function (strings compare as Python str)."""
    return node.xp.equal


def _ufunc(name: str) -> Callable[[NodeInfo], Callable]:
    """Return a maker that looks up ufunc ``name`` in the node's array namespace."""
    return lambda node: getattr(node.xp, name)


def _make_prelu(node: NodeInfo) -> Callable:
    """Return the PRelu function: x if x >= 0 else slope * x (slope broadcast to x)."""
    xp = node.xp
    return lambda x, slope: xp.where(x < 0, x * slope, x).astype(x.dtype, copy=False)


def _make_prelu_legacy(node: NodeInfo) -> Callable:
    """Return the PRelu function of opsets 1-6: a one-element slope is shared, a 1-D slope
    of length C applies per channel (axis 1); other slopes broadcast numpy-style."""
    prelu = _make_prelu(node)
    where = node.describe()

    def compute(x, slope):
        if slope.size == 1:
            slope = slope.reshape(())
        elif slope.ndim == 1 and x.ndim >= 2 and slope.shape[0] == x.shape[1]:
            slope = slope.reshape((-1,) + (1,) * (x.ndim - 2))
        elif np.broadcast_shapes(slope.shape, x.shape) != x.shape:
            raise ValueError(f"{where}: slope of shape {slope.shape} does not fit X {x.shape}")
        return prelu(x, slope)

    return compute


#: op -> (function maker, [(since, until, legacy broadcast attributes)])
_BINARY: dict[str, tuple[Callable[[NodeInfo], Callable], list[tuple[int, int | None, bool]]]] = {}
_LEGACY_THEN_MODERN = [(1, 6, True), (7, None, False)]
for _op, _maker in (
    ("Add", _ufunc("add")),
    ("Sub", _ufunc("subtract")),
    ("Mul", _ufunc("multiply")),
    ("Div", _make_div),
    ("Pow", _make_pow),
    ("Equal", _make_equal),
    ("Less", _ufunc("less")),
    ("Greater", _ufunc("greater")),
    ("And", _ufunc("logical_and")),
    ("Or", _ufunc("logical_or")),
    ("Xor", _ufunc("logical_xor")),
):
    _BINARY[_op] = (_maker, _LEGACY_THEN_MODERN)
for _op, _maker, _since in (
    ("LessOrEqual", _ufunc("less_equal"), 12),
    ("GreaterOrEqual", _ufunc("greater_equal"), 12),
    ("BitShift", _make_bitshift, 11),
    ("BitwiseAnd", _ufunc("bitwise_and"), 18),
    ("BitwiseOr", _ufunc("bitwise_or"), 18),
    ("BitwiseXor", _ufunc("bitwise_xor"), 18),
):
    _BINARY[_op] = (_maker, [(_since, None, False)])
_BINARY["Mod"] = (_make_mod, [(10, 12, False), (13, 27, False), (28, None, False)])
_BINARY["PRelu"] = (_make_prelu, [(7, 8, False), (9, 15, False), (16, None, False)])


#: Binary ops whose result has the operands' (common) numeric dtype, computed into an
#: output from the session's arena when it is large.
_ARENA_UFUNCS = {"Add": "add", "Sub": "subtract", "Mul": "multiply"}


def _binary_factory(maker: Callable[[NodeInfo], Callable], legacy: bool):
    """Return a kernel factory for a binary op computed by ``maker(node)(a, b)``."""

    def factory(node: NodeInfo):
        fn = maker(node)
        if legacy:
            return _legacy_broadcast(node, fn)
        xp = node.xp
        ufunc_name = _ARENA_UFUNCS.get(node.op_type) if xp is np else None
        if ufunc_name is not None:
            return _arena_binary(node, getattr(np, ufunc_name))

        def compute(a, b):
            return (xp.asarray(fn(a, b)),)

        return compute

    factory.__doc__ = f"Prepare a binary elementwise node ({'legacy broadcast' if legacy else 'numpy broadcasting'})."
    return factory


def _arena_binary(node: NodeInfo, ufunc: np.ufunc) -> Callable:
    """Return the compute of a numpy binary ufunc whose large outputs come from the
    session's arena (:meth:`NodeInfo.empty`)."""

    pooled = node.pooled_min_bytes

    def compute(a, b):
        if pooled is not None and (a.nbytes >= pooled or b.nbytes >= pooled) \
                and a.dtype == b.dtype and a.dtype.kind in "fiu":
            out = node.empty(np.broadcast_shapes(a.shape, b.shape), a.dtype)
            return (ufunc(a, b, out=out),)
        return (np.asarray(ufunc(a, b)),)

    return compute


for _op, (_maker, _ranges) in _BINARY.items():
    for _since, _until, _legacy in _ranges:
        kernels.register(_op, _since, _until)(_binary_factory(_maker, _legacy))
for _since, _until in ((1, 5), (6, 6)):  # PRelu before opset 7: per-channel slope
    kernels.register("PRelu", _since, _until)(_binary_factory(_make_prelu_legacy, False))


# ---------------------------------------------------------------------------------------
# variadic ops
# ---------------------------------------------------------------------------------------

def _variadic_factory(ufunc_name: str, mean: bool):
    """Return a factory folding all inputs with a binary ufunc (Mean divides by the count)."""

    def factory(node: NodeInfo):
        xp = node.xp
        fold = getattr(xp, ufunc_name)

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

    factory.__doc__ = f"Prepare a variadic {ufunc_name} node."
    return factory


for _op, _ufunc_name in (("Sum", "add"), ("Mean", "add"), ("Max", "maximum"), ("Min", "minimum")):
    kernels.register(_op, 1)(_variadic_factory(_ufunc_name, _op == "Mean"))


# ---------------------------------------------------------------------------------------
# unary ops
# ---------------------------------------------------------------------------------------

def _sigmoid(xp):
    """Return an overflow-free logistic function."""

    def sigmoid(x):
        e = xp.exp(-xp.abs(x))
        r = 1 / (1 + e)
        return xp.where(x >= 0, r, e * r)

    return sigmoid


def _softplus(xp):
    """Return log(1 + exp(x)) without overflow."""
    return lambda x: xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))


def _attr(node: NodeInfo, name: str, default: float) -> float:
    """Return float attribute ``name`` of a node (``default`` when absent)."""
    return float(node.attrs.get(name, default))


#: op -> (first version, maker(node) -> fn(x) that is low-precision safe, composite?)
_UNARY: dict[str, tuple[int, Callable[[NodeInfo], Callable], bool]] = {}
for _op, _name, _since in (
    ("Sqrt", "sqrt", 1), ("Exp", "exp", 1), ("Log", "log", 1), ("Neg", "negative", 1),
    ("Abs", "absolute", 1), ("Floor", "floor", 1), ("Ceil", "ceil", 1), ("Tanh", "tanh", 1),
    ("Round", "rint", 11), ("Sign", "sign", 9), ("Sin", "sin", 7), ("Cos", "cos", 7),
    ("Tan", "tan", 7), ("Asin", "arcsin", 7), ("Acos", "arccos", 7), ("Atan", "arctan", 7),
    ("Sinh", "sinh", 9), ("Cosh", "cosh", 9), ("Asinh", "arcsinh", 9), ("Acosh", "arccosh", 9),
    ("Atanh", "arctanh", 9), ("IsNaN", "isnan", 9), ("Not", "logical_not", 1),
    ("BitwiseNot", "invert", 18), ("Reciprocal", "reciprocal", 1),
):
    _UNARY[_op] = (_since, _ufunc(_name), False)

_UNARY.update({
    "Relu": (1, lambda node: lambda x: node.xp.maximum(x, x.dtype.type(0)), False),
    "Sigmoid": (1, lambda node: _sigmoid(node.xp), True),
    "Softplus": (1, lambda node: _softplus(node.xp), True),
    "Softsign": (1, lambda node: lambda x: x / (1 + node.xp.abs(x)), True),
    "Erf": (9, lambda node: lambda x: erf(node.xp, x), False),
    "Mish": (18, lambda node: (lambda sp: lambda x: x * node.xp.tanh(sp(x)))(_softplus(node.xp)), True),
    "HardSwish": (14, lambda node: lambda x: x * node.xp.clip(x / 6 + 0.5, 0, 1), True),
})


def _leaky_relu(node: NodeInfo) -> Callable:
    """LeakyRelu: x if x >= 0 else alpha * x."""
    alpha = _attr(node, "alpha", 0.01)
    return lambda x: node.xp.where(x >= 0, x, x * alpha)


def _elu(node: NodeInfo) -> Callable:
    """Elu: x if x > 0 else alpha * (exp(x) - 1)."""
    alpha, xp = _attr(node, "alpha", 1.0), node.xp
    return lambda x: xp.where(x > 0, x, alpha * xp.expm1(xp.minimum(x, 0)))


def _selu(node: NodeInfo) -> Callable:
    """Selu: gamma * (x if x > 0 else alpha * (exp(x) - 1))."""
    alpha = _attr(node, "alpha", 1.67326319217681884765625)
    gamma = _attr(node, "gamma", 1.05070102214813232421875)
    xp = node.xp
    return lambda x: gamma * xp.where(x > 0, x, alpha * xp.expm1(xp.minimum(x, 0)))


def _hard_sigmoid(node: NodeInfo) -> Callable:
    """HardSigmoid: max(0, min(1, alpha * x + beta))."""
    alpha, beta, xp = _attr(node, "alpha", 0.2), _attr(node, "beta", 0.5), node.xp
    return lambda x: xp.clip(alpha * x + beta, 0, 1)


def _thresholded_relu(node: NodeInfo) -> Callable:
    """ThresholdedRelu: x if x > alpha else 0."""
    alpha, xp = _attr(node, "alpha", 1.0), node.xp
    return lambda x: xp.where(x > alpha, x, 0)


def _celu(node: NodeInfo) -> Callable:
    """Celu: max(0, x) + min(0, alpha * (exp(x / alpha) - 1))."""
    alpha, xp = _attr(node, "alpha", 1.0), node.xp
    if alpha == 0:
        raise ValueError(f"{node.describe()}: alpha must not be 0")
    return lambda x: xp.maximum(x, 0) + xp.minimum(0, alpha * xp.expm1(xp.minimum(x, 0) / alpha))


def _gelu(node: NodeInfo) -> Callable:
    """Gelu: 0.5 x (1 + erf(x / sqrt 2)), or the tanh approximation."""
    approximate, xp = node.attrs.get("approximate", "none"), node.xp
    if approximate == "none":
        def exact(x):
            if x.dtype == np.float32:
                y = xp.array(x, copy=True)
                gelu_inplace(xp, y)
                return y
            wide = x.astype(np.float64)  # erf is evaluated in float64 anyway
            accuracy = "double" if x.dtype == np.float64 else "single"
            scaled_erf = _erf_float64(xp, wide * (1 / math.sqrt(2)), accuracy)
            return (0.5 * wide * (1 + scaled_erf)).astype(x.dtype)
        return exact
    if approximate == "tanh":
        def tanh_form(x):
            y = xp.array(x, copy=True)
            fast_gelu_inplace(xp, y)
            return y
        return tanh_form
    raise ValueError(f"{node.describe()}: approximate must be 'none' or 'tanh', got {approximate!r}")


def _is_inf(node: NodeInfo) -> Callable:
    """IsInf with detect_negative / detect_positive."""
    xp = node.xp
    negative = bool(node.attrs.get("detect_negative", 1))
    positive = bool(node.attrs.get("detect_positive", 1))
    if negative and positive:
        return xp.isinf
    if positive:
        return lambda x: xp.isposinf(x) if x.dtype.kind == "f" else xp.zeros(x.shape, bool)
    if negative:
        return lambda x: xp.isneginf(x) if x.dtype.kind == "f" else xp.zeros(x.shape, bool)
    return lambda x: xp.zeros(x.shape, dtype=bool)


_UNARY.update({
    "LeakyRelu": (1, _leaky_relu, True),
    "Elu": (1, _elu, True),
    "Selu": (1, _selu, True),
    "HardSigmoid": (1, _hard_sigmoid, True),
    "ThresholdedRelu": (10, _thresholded_relu, True),
    "Celu": (12, _celu, True),
    "Gelu": (20, _gelu, True),
    "IsInf": (10, _is_inf, False),
})


def _unary_factory(maker: Callable[[NodeInfo], Callable], composite: bool):
    """Return a kernel factory for a one-input op computed by ``maker(node)(x)``."""

    def factory(node: NodeInfo):
        fn = maker(node)
        xp = node.xp
        if composite:
            return _low_precision_safe(xp, fn)

        def compute(x):
            return (xp.asarray(fn(x)),)

        return compute

    factory.__doc__ = "Prepare a unary elementwise node."
    return factory


for _op, (_since, _maker, _composite) in _UNARY.items():
    kernels.register(_op, _since)(_unary_factory(_maker, _composite))


# ---------------------------------------------------------------------------------------
# Where, Clip, Identity
# ---------------------------------------------------------------------------------------

@kernels.register("Where", 9)
def where(node: NodeInfo):
    """Where(condition, X, Y): X where condition else Y, broadcasting all three."""
    xp = node.xp

    def compute(condition, x, y):
        return (xp.where(condition, x, y),)

    return compute


def _clip_with_bounds(node: NodeInfo, low: float, high: float):
    """Return a compute clipping to constant bounds (computed in the input dtype)."""
    xp = node.xp

    def compute(x):
        return (xp.minimum(xp.maximum(x, x.dtype.type(low)), x.dtype.type(high)),)

    return compute


@kernels.register("Clip", 1, 10)
def clip_attributes(node: NodeInfo):
    """Clip 1-10: bounds from the ``min``/``max`` attributes."""
    low = float(node.attrs.get("min", -3.4028234663852886e38))
    high = float(node.attrs.get("max", 3.4028234663852886e38))
    return _clip_with_bounds(node, low, high)


@kernels.register("Clip", 11)
def clip_inputs(node: NodeInfo):
    """Clip 11+: bounds from the optional ``min``/``max`` inputs (absent: unbounded)."""
    xp = node.xp
    has_min, has_max = node.has_input(1), node.has_input(2)

    def compute(x, low=None, high=None):
        out = x
        if low is not None:
            out = xp.maximum(out, low.astype(x.dtype, copy=False).reshape(()))
        if high is not None:
            out = xp.minimum(out, high.astype(x.dtype, copy=False).reshape(()))
        if out is x:
            out = x.copy()
        return (out,)

    if not has_min and not has_max:
        return lambda x, *rest: (x.copy(),)
    return compute


@kernels.register("Shrink", 9)
def shrink(node: NodeInfo):
    """Shrink 9+: x + bias where x < -lambd, x - bias where x > lambd, else 0 (computed in
    float64 for integers and float32 for float16/bfloat16, then cast back)."""
    xp = node.xp
    lambd = float(node.attrs.get("lambd", 0.5))
    bias = float(node.attrs.get("bias", 0.0))

    def compute(x):
        wide = x.astype(np.float32 if x.dtype in _LOW_PRECISION else np.float64)
        out = xp.where(wide < -lambd, wide + bias, xp.where(wide > lambd, wide - bias, 0))
        if x.dtype.kind in "iu":
            out = xp.trunc(out)  # C++ static_cast truncates toward zero
        return (out.astype(x.dtype),)

    return compute


@kernels.register("Identity", 1)
def identity(node: NodeInfo):
    """Identity: the input itself (kernels never write to their outputs' inputs)."""

    def compute(x):
        return (x,)

    return compute
