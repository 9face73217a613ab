"""CPU kernels: activation functions: Relu, LeakyRelu, PRelu, Elu, Selu, Celu, Sigmoid,
HardSigmoid, Softplus, Softsign, Mish, HardSwish, ThresholdedRelu, Gelu, Shrink and Clip.

Each compute function is the formula itself, with the node's attributes (and, where the input
type is known when the session is created, its typed constants) bound in the factory. Composite
formulas compute float16/bfloat16 inputs in float32 and round once
(:func:`_float32_for_low_precision`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ort.ep import KernelTable, NodeInfo

from .erf_gelu import erf_float64, fast_gelu_inplace, gelu_inplace, gelu_loops
from ..jit import compiled_loops_enabled
from .float_work import LOW_PRECISION

kernels = KernelTable()

# Types numpy computes poorly in (or not at all); composite formulas run in float32 for them.


def _input_dtype(node: NodeInfo) -> np.dtype | None:
    """The dtype of the node's first input when known at session creation, else None."""
    dtype = node.input_dtypes[0] if node.input_dtypes else None
    return None if dtype is None else np.dtype(dtype)


def _float32_for_low_precision(node: NodeInfo, compute: Callable) -> Callable:
    """Return ``compute`` (a one-input compute function) itself when the node's input is
    known not to be float16/bfloat16, else a wrapper computing such inputs in float32 and
    rounding the result to the input type."""
    dtype = _input_dtype(node)
    if dtype is not None and dtype not in LOW_PRECISION:
        return compute

    def widened(x):
        if x.dtype in LOW_PRECISION:
            return (compute(x.astype(np.float32))[0].astype(x.dtype),)
        return compute(x)

    return widened


def _attr(node: NodeInfo, name: str, default: float) -> float:
    """Return float attribute ``name`` of a node (``default`` when absent)."""
    return float(node.attrs.get(name, default))


# ---------------------------------------------------------------------------------------
# rectifiers
# ---------------------------------------------------------------------------------------

@kernels.register("Relu", 1)
def relu(node: NodeInfo):
    """Relu: max(x, 0) in x's type."""
    xp = node.xp
    maximum, asarray = xp.maximum, xp.asarray
    dtype = _input_dtype(node)
    if dtype is None:
        def any_type(x):
            return (asarray(maximum(x, x.dtype.type(0))),)

        return any_type
    zero = dtype.type(0)

    def compute(x):
        return (asarray(maximum(x, zero)),)

    return compute


def _one_pass(node: NodeInfo, name: str, params: tuple[float, float],
              numpy_compute: Callable) -> Callable:
    """``numpy_compute`` (the reference), or where the node may use compiled loops, float32 and
    float64 inputs in one compiled pass (:func:`.conv_loops.activation_copy`, FusedConv's
    activation code ``name``; numpy needs three to five passes and temporaries)."""
    if not compiled_loops_enabled(node):
        return numpy_compute
    from . import conv_loops

    code = conv_loops.ACTIVATIONS[name]
    loop_for = _activation_loops(node)

    def compute(x):
        if x.dtype not in _LOOP_FLOATS or not x.size:
            return numpy_compute(x)
        y = node.empty(x.shape, x.dtype)
        loop_for(x.dtype)(np.ascontiguousarray(x).reshape(-1), y.reshape(-1), code, *params)
        return (y,)

    return compute


_LOOP_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _activation_loops(node: NodeInfo) -> Callable[[np.dtype], Callable]:
    """``loop_for(dtype)``: :func:`.conv_loops.activation_copy` prepared for float32 or
    float64 (the node's input type prepared now, not on the first run)."""
    from . import conv_loops

    loops: dict[np.dtype, Callable] = {}

    def loop_for(dtype: np.dtype) -> Callable:
        found = loops.get(dtype)
        if found is None:
            found = loops[dtype] = conv_loops.activation_copy.prepare(
                (dtype, 1), (dtype, 1), int, float, float)
        return found

    known = _input_dtype(node)
    if known in _LOOP_FLOATS:
        loop_for(known)
    return loop_for


def _clip_one_pass(node: NodeInfo, numpy_compute: Callable) -> Callable:
    """Clip 11+ on float32/float64 in one compiled pass into an arena buffer (numpy: two
    passes and two fresh arrays, 20 µs for a MobileNetV3 HardSwish's Clip), bounds read
    from the optional inputs; NaN bounds and other types run ``numpy_compute``."""
    if not compiled_loops_enabled(node):
        return numpy_compute
    from . import conv_loops

    code = conv_loops.ACTIVATIONS["Clip"]
    loop_for = _activation_loops(node)

    def compute(x, low=None, high=None):
        if x.dtype not in _LOOP_FLOATS or not x.size:
            return numpy_compute(x, low, high)
        lo = float(low.astype(x.dtype).reshape(())) if low is not None else -math.inf
        hi = float(high.astype(x.dtype).reshape(())) if high is not None else math.inf
        if math.isnan(lo) or math.isnan(hi):
            return numpy_compute(x, low, high)
        y = node.empty(x.shape, x.dtype)
        loop_for(x.dtype)(np.ascontiguousarray(x).reshape(-1), y.reshape(-1), code, lo, hi)
        return (y,)

    return compute


@kernels.register("LeakyRelu", 1)
def leaky_relu(node: NodeInfo):
    """LeakyRelu: x if x >= 0 else alpha * x."""
    alpha = _attr(node, "alpha", 0.01)
    xp = node.xp
    where, asarray = xp.where, xp.asarray

    def compute(x):
        return (asarray(where(x >= 0, x, x * alpha)),)

    return _float32_for_low_precision(
        node, _one_pass(node, "LeakyRelu", (float(alpha), 0.0), compute))


def _prelu(xp) -> Callable:
    """Return the PRelu function: x if x >= 0 else slope * x (slope broadcast to x)."""

    def prelu(x, slope):
        return xp.where(x < 0, x * slope, x).astype(x.dtype, copy=False)

    return prelu


@kernels.register("PRelu", 7, 8)
@kernels.register("PRelu", 9, 15)
@kernels.register("PRelu", 16)
def prelu(node: NodeInfo):
    """PRelu 7+: x if x >= 0 else slope * x, the slope broadcast numpy-style to x."""
    fn, asarray = _prelu(node.xp), node.xp.asarray

    def compute(x, slope):
        return (asarray(fn(x, slope)),)

    return compute


@kernels.register("PRelu", 1, 5)
@kernels.register("PRelu", 6, 6)
def prelu_legacy(node: NodeInfo):
    """PRelu 1-6: a one-element slope is shared, a 1-D slope of length C applies per channel
    (axis 1); other slopes broadcast numpy-style."""
    fn, asarray = _prelu(node.xp), node.xp.asarray
    where = node.describe()

    def compute(x, slope):
        if slope.size == 1:
            slope = slope.reshape(())
        elif slope.ndim == 1 and x.ndim >= 2 and slope.shape[0] == x.shape[1]:
            slope = slope.reshape((-1,) + (1,) * (x.ndim - 2))
        elif np.broadcast_shapes(slope.shape, x.shape) != x.shape:
            raise ValueError(f"{where}: slope of shape {slope.shape} does not fit X {x.shape}")
        return (asarray(fn(x, slope)),)

    return compute


@kernels.register("ThresholdedRelu", 10)
def thresholded_relu(node: NodeInfo):
    """ThresholdedRelu 10+: x if x > alpha else 0."""
    alpha = _attr(node, "alpha", 1.0)
    xp = node.xp
    where, asarray = xp.where, xp.asarray

    def compute(x):
        return (asarray(where(x > alpha, x, 0)),)

    return _float32_for_low_precision(node, compute)


# ---------------------------------------------------------------------------------------
# exponential units
# ---------------------------------------------------------------------------------------

@kernels.register("Elu", 1)
def elu(node: NodeInfo):
    """Elu: x if x > 0 else alpha * (exp(x) - 1)."""
    alpha = _attr(node, "alpha", 1.0)
    xp = node.xp
    where, expm1, minimum, asarray = xp.where, xp.expm1, xp.minimum, xp.asarray

    def compute(x):
        return (asarray(where(x > 0, x, alpha * expm1(minimum(x, 0)))),)

    return _float32_for_low_precision(node, compute)


@kernels.register("Selu", 1)
def selu(node: NodeInfo):
    """Selu: gamma * (x if x > 0 else alpha * (exp(x) - 1))."""
    alpha = _attr(node, "alpha", 1.67326319217681884765625)
    gamma = _attr(node, "gamma", 1.05070102214813232421875)
    xp = node.xp
    where, expm1, minimum, asarray = xp.where, xp.expm1, xp.minimum, xp.asarray

    def compute(x):
        return (asarray(gamma * where(x > 0, x, alpha * expm1(minimum(x, 0)))),)

    return _float32_for_low_precision(node, compute)


@kernels.register("Celu", 12)
def celu(node: NodeInfo):
    """Celu 12+: max(0, x) + min(0, alpha * (exp(x / alpha) - 1))."""
    alpha = _attr(node, "alpha", 1.0)
    if alpha == 0:
        raise ValueError(f"{node.describe()}: alpha must not be 0")
    xp = node.xp
    maximum, minimum, expm1, asarray = xp.maximum, xp.minimum, xp.expm1, xp.asarray

    def compute(x):
        return (asarray(maximum(x, 0) + minimum(0, alpha * expm1(minimum(x, 0) / alpha))),)

    return _float32_for_low_precision(node, compute)


# ---------------------------------------------------------------------------------------
# sigmoids and smooth rectifiers
# ---------------------------------------------------------------------------------------

@kernels.register("Sigmoid", 1)
def sigmoid(node: NodeInfo):
    """Sigmoid: 1 / (1 + exp(-x)), without overflow."""
    xp = node.xp
    exp, abs_, where, asarray = xp.exp, xp.abs, xp.where, xp.asarray

    def compute(x):
        e = exp(-abs_(x))
        r = 1 / (1 + e)
        return (asarray(where(x >= 0, r, e * r)),)

    return _float32_for_low_precision(node, compute)


@kernels.register("HardSigmoid", 1)
def hard_sigmoid(node: NodeInfo):
    """HardSigmoid: max(0, min(1, alpha * x + beta))."""
    alpha, beta = _attr(node, "alpha", 0.2), _attr(node, "beta", 0.5)
    xp = node.xp
    clip, asarray = xp.clip, xp.asarray

    def compute(x):
        return (asarray(clip(alpha * x + beta, 0, 1)),)

    return _float32_for_low_precision(
        node, _one_pass(node, "HardSigmoid", (float(alpha), float(beta)), compute))


def _softplus(xp, x):
    """Return log(1 + exp(x)) without overflow."""
    return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))


@kernels.register("Softplus", 1)
def softplus(node: NodeInfo):
    """Softplus: log(1 + exp(x)), without overflow."""
    xp = node.xp
    asarray = xp.asarray

    def compute(x):
        return (asarray(_softplus(xp, x)),)

    return _float32_for_low_precision(node, compute)


@kernels.register("Softsign", 1)
def softsign(node: NodeInfo):
    """Softsign: x / (1 + |x|)."""
    xp = node.xp
    abs_, asarray = xp.abs, xp.asarray

    def compute(x):
        return (asarray(x / (1 + abs_(x))),)

    return _float32_for_low_precision(node, compute)


@kernels.register("Mish", 18)
def mish(node: NodeInfo):
    """Mish 18+: x * tanh(softplus(x))."""
    xp = node.xp
    tanh, asarray = xp.tanh, xp.asarray

    def compute(x):
        return (asarray(x * tanh(_softplus(xp, x))),)

    return _float32_for_low_precision(node, compute)


@kernels.register("HardSwish", 14)
def hard_swish(node: NodeInfo):
    """HardSwish 14+: x * max(0, min(1, x / 6 + 0.5))."""
    xp = node.xp
    clip, asarray = xp.clip, xp.asarray

    def compute(x):
        return (asarray(x * clip(x / 6 + 0.5, 0, 1)),)

    return _float32_for_low_precision(node, _one_pass(node, "HardSwish", (0.0, 0.0), compute))


@kernels.register("Gelu", 20)
def gelu(node: NodeInfo):
    """Gelu 20+: 0.5 x (1 + erf(x / sqrt 2)), or the tanh approximation
    (``approximate='tanh'``); float32 in place over cache-sized chunks."""
    approximate = node.attrs.get("approximate", "none")
    xp = node.xp
    asarray = xp.asarray
    exact_loop, tanh_loop = gelu_loops(node)
    if approximate == "none":
        def exact(x):
            if x.dtype == np.float32:
                y = xp.array(x, copy=True)
                gelu_inplace(xp, y, exact_loop)
                return (asarray(y),)
            wide = x.astype(np.float64)  # erf is evaluated in float64 anyway
            accuracy = "double" if x.dtype == np.float64 else "single"
            scaled_erf = erf_float64(xp, wide * (1 / math.sqrt(2)), accuracy)
            return (asarray((0.5 * wide * (1 + scaled_erf)).astype(x.dtype)),)

        return _float32_for_low_precision(node, exact)
    if approximate == "tanh":
        def tanh_form(x):
            y = xp.array(x, copy=True)
            fast_gelu_inplace(xp, y, tanh_loop)
            return (asarray(y),)

        return _float32_for_low_precision(node, tanh_form)
    raise ValueError(
        f"{node.describe()}: approximate must be 'none' or 'tanh', got {approximate!r}"
    )


# ---------------------------------------------------------------------------------------
# Shrink, Clip
# ---------------------------------------------------------------------------------------

@kernels.register("Shrink", 9)
def shrink(node: NodeInfo):
    """Shrink 9+: x + bias where x < -lambd, x - bias where x > lambd, else 0 (computed in
    float64 for integers and float32 for float16/bfloat16, then cast back)."""
    xp = node.xp
    lambd = float(node.attrs.get("lambd", 0.5))
    bias = float(node.attrs.get("bias", 0.0))

    def compute(x):
        wide = x.astype(np.float32 if x.dtype in LOW_PRECISION else np.float64)
        out = xp.where(wide < -lambd, wide + bias, xp.where(wide > lambd, wide - bias, 0))
        if x.dtype.kind in "iu":
            out = xp.trunc(out)  # C++ static_cast truncates toward zero
        return (out.astype(x.dtype),)

    return compute


@kernels.register("Clip", 1, 10)
def clip_attributes(node: NodeInfo):
    """Clip 1-10: bounds from the ``min``/``max`` attributes, in the input's type."""
    low = float(node.attrs.get("min", -3.4028234663852886e38))
    high = float(node.attrs.get("max", 3.4028234663852886e38))
    xp = node.xp
    maximum, minimum = xp.maximum, xp.minimum
    dtype = _input_dtype(node)
    if dtype is None:
        def any_type(x):
            return (minimum(maximum(x, x.dtype.type(low)), x.dtype.type(high)),)

        return any_type
    typed_low, typed_high = dtype.type(low), dtype.type(high)

    def compute(x):
        return (minimum(maximum(x, typed_low), typed_high),)

    return compute


@kernels.register("Clip", 11)
def clip_inputs(node: NodeInfo):
    """Clip 11+: bounds from the optional ``min``/``max`` inputs (absent: unbounded)."""
    xp = node.xp
    has_min, has_max = node.has_input(1), node.has_input(2)

    def compute(x, low=None, high=None):
        out = x
        if low is not None:
            out = xp.maximum(out, low.astype(x.dtype, copy=False).reshape(()))
        if high is not None:  # in place on the fresh maximum: one output array, not two
            bound = high.astype(x.dtype, copy=False).reshape(())
            fresh = out is not x and getattr(out, "ndim", 0) > 0
            out = xp.minimum(out, bound, out=out) if fresh else xp.minimum(out, bound)
        if out is x:
            out = x.copy()
        return (out,)

    def copy(x, *rest):
        return (x.copy(),)

    if not has_min and not has_max:
        return copy
    return _clip_one_pass(node, compute)
