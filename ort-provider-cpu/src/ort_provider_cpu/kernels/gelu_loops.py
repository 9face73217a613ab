"""Compiled loops of GELU (see :mod:`.erf_gelu`, whose numpy functions stay the reference and
the fallback): one pass over the array instead of numpy's fifteen.

:func:`gelu_erf_run` evaluates :mod:`.erf_gelu`'s erf(z) = tanh(z P(z^2)) and
:func:`gelu_tanh_run` the tanh approximation of GELU; both compute tanh with
:func:`.rational.tanh32` (Eigen's and MLAS's rational approximation, a few float32 ulp from
tanh) so that LLVM vectorizes the whole loop: numba's ``math.tanh`` is a scalar libm call.
Multiply-adds may fuse (``fastmath={"contract"}``): about twice as fast, within the
approximation's error.
"""

from __future__ import annotations

import numpy as np

from ..jit import compiled
from .rational import tanh32

__all__ = ["gelu_erf_run", "gelu_tanh_run"]


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
        y[k] = x * (half + half * tanh32(p))


@compiled(fastmath={"contract"})
def gelu_tanh_run(y):
    """y <- 0.5 y (1 + tanh(sqrt(2/pi) (y + 0.044715 y^3))) in place (1-D float32),
    as :func:`.erf_gelu.fast_gelu_inplace` computes it."""
    half = y.dtype.type(0.5)
    k1 = y.dtype.type(np.sqrt(2 / np.pi))
    k3 = y.dtype.type(0.044715 * np.sqrt(2 / np.pi))
    for k in range(y.shape[0]):
        x = y[k]
        y[k] = x * (half + half * tanh32(x * (k1 + k3 * x * x)))
