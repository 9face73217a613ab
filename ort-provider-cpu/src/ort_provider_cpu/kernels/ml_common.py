"""Helpers shared by the ai.onnx.ml kernel modules (``ml_features``, ``ml_encoders``,
``ml_linear``, ``ml_svm``, ``ml_trees``): attribute readers, errors naming the node, class labels
and the post transforms NONE, LOGISTIC, SOFTMAX, SOFTMAX_ZERO and PROBIT. Scores follow ONNX
Runtime's CPU kernels exactly where the spec is vague: the post transforms are computed in
float32 with ONNX Runtime's formulas (its PROBIT uses an approximate inverse erf) and a single
score only gets PROBIT; where ONNX Runtime computes in plain C loops the arithmetic is
reproduced bit for bit: exp is rounded from float64 (as C's expf, unlike numpy's float32 exp)
and sums run left to right.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ort.ep import NodeInfo

#: The domain every ml_* kernel module registers its ops in.
ML = "ai.onnx.ml"
_F32 = np.float32
_FLT_MAX = np.finfo(np.float32).max
_TRANSFORMS = ("NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO", "PROBIT")


def _ints(node: NodeInfo, name: str) -> list[int]:
    """Return an INTS attribute as a list (empty when absent)."""
    return [int(v) for v in node.attrs.get(name) or []]


def _int_array(node: NodeInfo, name: str) -> np.ndarray:
    """An INTS attribute as an int64 array (empty when absent)."""
    return np.asarray(node.attrs.get(name) or [], dtype=np.int64)


def _floats(node: NodeInfo, name: str) -> list[float]:
    """Return a FLOATS attribute as a list (empty when absent)."""
    return [float(v) for v in node.attrs.get(name) or []]


def _fail(node: NodeInfo, message: str) -> ValueError:
    """Return a ValueError naming the node."""
    return ValueError(f"{node.describe()}: {message}")


def _post_transform(node: NodeInfo) -> str:
    """Return the validated ``post_transform`` attribute (a string before TreeEnsemble 5)."""
    name = node.attrs.get("post_transform", "NONE")
    if name not in _TRANSFORMS:
        raise _fail(node, f"post_transform must be one of {', '.join(_TRANSFORMS)}, got {name!r}")
    return name


def _rows(node: NodeInfo, x: np.ndarray) -> np.ndarray:
    """View a [F] or [N, F] input as [N, F] (a 1-D input is one row); reject other ranks."""
    if x.ndim == 1:
        return x.reshape(1, -1)
    if x.ndim != 2:
        raise _fail(node, f"input must be [F] or [N, F], got shape {list(x.shape)}")
    return x


def _as_float32(x: np.ndarray) -> np.ndarray:
    """Return ``x`` as float32 (ONNX Runtime casts every input type to float for these ops)."""
    return x if x.dtype == _F32 else x.astype(_F32)


def _exp(x: np.ndarray) -> np.ndarray:
    """float32 exp rounded from float64: C's expf (what ONNX Runtime calls) is correctly
    rounded nearly always, numpy's float32 exp is 1 ulp off for a third of the inputs.
    Callers whose inputs can be large and positive silence overflow warnings."""
    return np.exp(x.astype(np.float64)).astype(_F32)


def _row_sum(x: np.ndarray) -> np.ndarray:
    """Sums over the last axis, added left to right in x's type (as a C loop does; numpy's
    pairwise sum rounds differently from 8 columns on)."""
    if x.shape[-1] < 8:  # numpy adds fewer than 8 values in order too
        return x.sum(axis=-1, keepdims=True)
    return np.cumsum(x, axis=-1)[..., -1:]


def _logistic(x: np.ndarray) -> np.ndarray:
    """ONNX Runtime's ComputeLogistic, in float32."""
    x = _as_float32(x)
    with np.errstate(over="ignore"):
        v = _F32(1) / (_F32(1) + _exp(-np.abs(x)))
    return np.where(x < 0, _F32(1) - v, v)


def _probit(x: np.ndarray) -> np.ndarray:
    """ONNX Runtime's ComputeProbit: sqrt(2) * erfinv(2x - 1) with its approximate erfinv."""
    x = _as_float32(x) * _F32(2) - _F32(1)
    sign = np.where(x < 0, _F32(-1), _F32(1))
    with np.errstate(divide="ignore", invalid="ignore"):
        log = np.log(((_F32(1) - x) * (_F32(1) + x)).astype(np.float64)).astype(_F32)
        v = _F32(2) / (_F32(np.pi) * _F32(0.147)) + _F32(0.5) * log
        v2 = _F32(1) / _F32(0.147) * log
        v3 = -v + np.sqrt(v * v - v2)
        return (_F32(np.sqrt(2)) * sign * np.sqrt(v3)).astype(_F32)


def _row_max(z: np.ndarray) -> np.ndarray:
    """Row maxima ignoring NaN, never below -FLT_MAX (ONNX Runtime's softmax start value)."""
    return np.fmax.reduce(z, axis=-1, keepdims=True, initial=-_FLT_MAX)


def _softmax(z: np.ndarray) -> np.ndarray:
    """Row softmax in float32."""
    z = _as_float32(z)
    with np.errstate(over="ignore", invalid="ignore"):
        e = _exp(z - _row_max(z))
        return e / _row_sum(e)


def _softmax_zero(z: np.ndarray) -> np.ndarray:
    """Row softmax that leaves (near) zero scores at zero, in float32."""
    z = _as_float32(z)
    top = _row_max(z)
    nonzero = np.abs(z) > _F32(1e-7)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        e = np.where(nonzero, _exp(z - top), z * _exp(-top))
        total = _row_sum(np.where(nonzero, e, _F32(0)))
        return (e / total).astype(_F32, copy=False)


def _transform(z: np.ndarray, name: str) -> np.ndarray:
    """Apply a post transform to scores with two or more columns."""
    if name == "LOGISTIC":
        return _logistic(z)
    if name == "SOFTMAX":
        return _softmax(z)
    if name == "SOFTMAX_ZERO":
        return _softmax_zero(z)
    if name == "PROBIT":
        return _probit(z)
    return _as_float32(z)


def _transform_single(z: np.ndarray, name: str) -> np.ndarray:
    """Post transform of a single score column: ONNX Runtime applies PROBIT only."""
    return _probit(z) if name == "PROBIT" else _as_float32(z)


def _string_array(values: Sequence[str]) -> np.ndarray:
    """Return a 1-D object array of ``values``."""
    out = np.empty(len(values), dtype=object)
    out[...] = list(values)
    return out


def _class_labels(node: NodeInfo, ints_name: str) -> np.ndarray | None:
    """Return the class labels (object array of strings or int64 array), or None."""
    strings = node.attrs.get("classlabels_strings")
    if strings:
        return _string_array(list(strings))
    ints = node.attrs.get(ints_name)
    if ints:
        return np.asarray(ints, dtype=np.int64)
    return None


def _first_argmax(scores: np.ndarray) -> np.ndarray:
    """Index of the first maximum of each row (NaN never wins, as a ``>`` scan does)."""
    return np.argmax(np.fmax(scores, -np.inf), axis=1)
