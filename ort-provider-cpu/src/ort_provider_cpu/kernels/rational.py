"""The rational approximations of tanh and of the logistic function that Eigen and
onnxruntime's MLAS use for float32, as compiled helpers the loops call (inlined): only
multiplies, adds and one divide, so loops using them vectorize (numba's ``math.tanh`` and
``math.exp`` are scalar libm calls), a few float32 ulp from the exact functions. Used by the
recurrent loops (:mod:`.rnn_loops`) and GELU (:mod:`.gelu_loops`)."""

from __future__ import annotations

import numpy as np

from ..jit import compiled_helper

__all__ = ["logistic32", "tanh32"]

# float32 constants, so that float32 math stays float32
_F32 = np.float32
_TANH_LIMIT = _F32(9.0)
_TANH_P = (_F32(-2.76076847742355e-16), _F32(2.00018790482477e-13), _F32(-8.60467152213735e-11),
           _F32(5.12229709037114e-08), _F32(1.48572235717979e-05), _F32(6.37261928875436e-04),
           _F32(4.89352455891786e-03))
_TANH_Q = (_F32(1.19825839466702e-06), _F32(1.18534705686654e-04), _F32(2.26843463243900e-03),
           _F32(4.89352518554385e-03))
_LOGISTIC_LIMIT = _F32(18.0)
_LOGISTIC_P = (_F32(4.37031012579801e-11), _F32(1.15627324459942e-07),
               _F32(6.08574864600143e-05), _F32(8.51377133304701e-03),
               _F32(2.48287947061529e-01))
_LOGISTIC_Q = (_F32(6.10247389755681e-13), _F32(5.76102136993427e-09),
               _F32(6.29106785017040e-06), _F32(1.70198817374094e-03),
               _F32(1.16817656904453e-01), _F32(9.93151921023180e-01))
_HALF32, _ZERO32, _ONE32 = _F32(0.5), _F32(0.0), _F32(1.0)
_TP0, _TP1, _TP2, _TP3, _TP4, _TP5, _TP6 = _TANH_P
_TQ0, _TQ1, _TQ2, _TQ3 = _TANH_Q
_LP0, _LP1, _LP2, _LP3, _LP4 = _LOGISTIC_P
_LQ0, _LQ1, _LQ2, _LQ3, _LQ4, _LQ5 = _LOGISTIC_Q


@compiled_helper
def tanh32(value):
    """tanh of a float32 by the rational approximation (NaN stays NaN)."""
    if value < -_TANH_LIMIT:
        value = -_TANH_LIMIT
    if value > _TANH_LIMIT:
        value = _TANH_LIMIT
    x2 = value * value
    p = x2 * _TP0 + _TP1
    p = p * x2 + _TP2
    p = p * x2 + _TP3
    p = p * x2 + _TP4
    p = p * x2 + _TP5
    p = p * x2 + _TP6
    p = p * value
    q = x2 * _TQ0 + _TQ1
    q = q * x2 + _TQ2
    q = q * x2 + _TQ3
    return p / q


@compiled_helper
def logistic32(value):
    """The logistic function of a float32 by the rational approximation, within [0, 1]."""
    if value < -_LOGISTIC_LIMIT:
        value = -_LOGISTIC_LIMIT
    if value > _LOGISTIC_LIMIT:
        value = _LOGISTIC_LIMIT
    x2 = value * value
    p = x2 * _LP0 + _LP1
    p = p * x2 + _LP2
    p = p * x2 + _LP3
    p = p * x2 + _LP4
    p = p * value
    q = x2 * _LQ0 + _LQ1
    q = q * x2 + _LQ2
    q = q * x2 + _LQ3
    q = q * x2 + _LQ4
    q = q * x2 + _LQ5
    result = p / q + _HALF32
    if result < _ZERO32:
        result = _ZERO32
    if result > _ONE32:
        result = _ONE32
    return result
