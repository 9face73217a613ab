"""Compiled loops of GELU (see :mod:`.erf_gelu`, whose numpy functions stay the reference and
the fallback): one pass over the array instead of numpy's fifteen.

:func:`gelu_erf_run` evaluates :mod:`.erf_gelu`'s erf(z) = tanh(z P(z^2)) and
:func:`gelu_tanh_run` the tanh approximation of GELU; both compute tanh with a rational
approximation (the odd 13/6 one of Eigen's ``ptanh``, a few float32 ulp from tanh) so that LLVM
vectorizes the whole loop: numba's ``math.tanh`` is a scalar libm call. Multiply-adds may
fuse (``fastmath={"contract"}``): about twice as fast, within the approximation's error.
"""

from __future__ import annotations

import numpy as np

from ..jit import compiled, compiled_helper

__all__ = ["gelu_erf_run", "gelu_tanh_run"]


@compiled_helper
def _tanh(x):
    """tanh(x) in x's type by a rational approximation (clamped where float32 tanh is ±1;
    below 4e-4 in magnitude, x itself); NaN stays NaN."""
    one = type(x)(1)
    limit = type(x)(7.90531110763549805)
    small = abs(x) < type(x)(0.0004)
    v = limit if x > limit else x
    v = -limit if v < -limit else v
    v2 = v * v
    p = type(x)(-2.76076847742355e-16)
    p = p * v2 + type(x)(2.00018790482477e-13)
    p = p * v2 + type(x)(-8.60467152213735e-11)
    p = p * v2 + type(x)(5.12229709037114e-08)
    p = p * v2 + type(x)(1.48572235717979e-05)
    p = p * v2 + type(x)(6.37261928875436e-04)
    p = p * v2 + type(x)(4.89352455891786e-03)
    p = p * v
    q = type(x)(1.19825839466702e-06)
    q = q * v2 + type(x)(1.18534705686654e-04)
    q = q * v2 + type(x)(2.26843463243900e-03)
    q = q * v2 + type(x)(4.89352518554385e-03)
    r = p / q
    r = one if r > one else r
    r = -one if r < -one else r
    return x if small else r


@compiled(fastmath={"contract"})
def gelu_erf_run(y, c0, c1, c2, c3, c4, c5, c6):
    """y <- 0.5 y (1 + erf(y / sqrt 2)) in place (1-D float32), erf(z) = tanh(z P(z^2)) with
    z clamped to [-4.1, 4.1] and P's coefficients ``c0`` (lowest) to ``c6``, as
    :func:`.erf_gelu.gelu_inplace` computes it (scalars, unrolled: a loop over an array of
    them kept LLVM from vectorizing)."""
    t = y.dtype.type
    half = t(0.5)
    scale = t(1 / np.sqrt(2))
    bound = t(4.1)
    a0, a1, a2, a3, a4, a5, a6 = t(c0), t(c1), t(c2), t(c3), t(c4), t(c5), t(c6)
    for k in range(y.shape[0]):
        x = y[k]
        z = x * scale
        z = bound if z > bound else z
        z = -bound if z < -bound else z
        s = z * z
        p = ((((((a6 * s + a5) * s + a4) * s + a3) * s + a2) * s + a1) * s + a0) * z
        y[k] = x * (half + half * _tanh(p))


@compiled(fastmath={"contract"})
def gelu_tanh_run(y):
    """y <- 0.5 y (1 + tanh(sqrt(2/pi) (y + 0.044715 y^3))) in place (1-D float32),
    as :func:`.erf_gelu.fast_gelu_inplace` computes it."""
    half = y.dtype.type(0.5)
    k1 = y.dtype.type(np.sqrt(2 / np.pi))
    k3 = y.dtype.type(0.044715 * np.sqrt(2 / np.pi))
    for k in range(y.shape[0]):
        x = y[k]
        y[k] = x * (half + half * _tanh(x * (k1 + k3 * x * x)))
