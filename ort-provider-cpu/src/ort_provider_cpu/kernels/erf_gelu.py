"""Numerics of erf and GELU shared by the CPU kernels (and the CUDA provider's numpy path):
no kernels here.

* :func:`erf` / :func:`erf_float64`: numpy has no erf; evaluated in float64 from a Taylor series
  (|x| < 1.5) and a continued fraction for erfc (|x| >= 1.5), to float64 or float32 accuracy.
* :func:`gelu_inplace`: exact GELU of a float32 array, with erf(z) = tanh(z P(z^2)) over
  cache-sized chunks.
* :func:`fast_gelu_inplace`: the tanh approximation of GELU, in place.

Used by the Erf kernel (``unary_math``), Gelu (``activations``) and the com.microsoft Gelu
family (``fused``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..jit import compiled_loops_enabled

__all__ = ["erf", "erf_float64", "fast_gelu_inplace", "gelu_inplace", "gelu_loops"]

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_SQRT_PI = math.sqrt(math.pi)


# ---------------------------------------------------------------------------------------
# erf: a Taylor series for |x| < 1.5, a continued fraction for erfc for |x| >= 1.5
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


def erf_float64(xp, x, accuracy: str):
    """Return erf of a float64 array to ``accuracy`` (``"double"`` or ``"single"``): a
    Taylor series for |x| < 1.5, else 1 - erfc by a continued fraction (|x| >= 6: +-1). NaN
    propagates through the series."""
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
        return erf_float64(xp, x, "double")
    return erf_float64(xp, x.astype(np.float64), "single").astype(x.dtype)


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
_ERF_TANH_FLOATS = tuple(float(c) for c in _ERF_TANH_POLY)
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


def gelu_loops(node) -> tuple[Any, Any]:
    """The compiled (exact, tanh-form) GELU loops of :mod:`.gelu_loops` for float32 (their
    rational tanh is float32-accurate: float64 keeps numpy) where ``node`` may use compiled
    loops, else (None, None): pass them to :func:`gelu_inplace` / :func:`fast_gelu_inplace`."""
    if not compiled_loops_enabled(node):
        return None, None
    from . import gelu_loops as loops

    exact = loops.gelu_erf_run.prepare((np.float32, 1), *([float] * len(_ERF_TANH_POLY)))
    return exact, loops.gelu_tanh_run.prepare((np.float32, 1))


def _compiled_target(xp, y, loop) -> bool:
    """Whether ``loop`` runs on ``y``: given, numpy, C-contiguous, not empty."""
    return loop is not None and xp is np and y.flags.c_contiguous and y.size > 0


def gelu_inplace(xp, y, loop=None) -> None:
    """y <- 0.5 y (1 + erf(y / sqrt 2)) for a fresh float32 array ``y`` (``loop``: the
    compiled exact loop of :func:`gelu_loops`, one pass instead of fifteen)."""
    if _compiled_target(xp, y, loop):
        loop(y.reshape(-1), *_ERF_TANH_FLOATS)
        return
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


def fast_gelu_inplace(xp, y, loop=None) -> None:
    """y <- 0.5 y (1 + tanh(sqrt(2/pi) (y + 0.044715 y^3))) for a fresh float32 (or float64)
    array ``y`` (``loop``: the compiled tanh-form loop of :func:`gelu_loops`)."""
    if _compiled_target(xp, y, loop) and y.dtype == np.float32:
        loop(y.reshape(-1))
        return
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
