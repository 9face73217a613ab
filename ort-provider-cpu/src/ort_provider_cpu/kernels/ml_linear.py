"""CPU kernels: the ai.onnx.ml linear models, LinearClassifier and LinearRegressor: scores
X @ coefficients^T + intercepts in float32, then the post transform (see ``ml_common``); a
classifier labels the top class, and one with a single score column labels and fills its two
score columns the way ONNX Runtime does.
"""

from __future__ import annotations

import numpy as np

from ort.ep import KernelTable, NodeInfo

from ..jit import compiled_loops_enabled
from . import ml_loops
from .ml_common import (
    ML, _F32, _TRANSFORMS, _as_float32, _class_labels, _fail, _first_argmax, _floats, _logistic,
    _post_transform, _probit, _rows, _transform, _transform_single,
)

kernels = KernelTable()

_NO_HAS = np.zeros((0, 0), dtype=np.bool_)
_NO_TOP = np.zeros(0, dtype=np.int64)
_NO_WEIGHTS = np.zeros((0, 0), dtype=_F32)
# Up to this many multiply-adds a call, and features, the compiled loop computes the scores
# itself (one call, no BLAS overhead, the same sums as a GEMM kernel, which splits longer
# rows into blocks); above, BLAS's matrix product is faster.
_LOOP_PRODUCT_LIMIT = 1 << 13
_LOOP_FEATURE_LIMIT = 128


def _finish_loop(node: NodeInfo):
    """``ml_loops.finish_rows`` for float32 scores (the product, intercepts, post transform
    and top class), or None where compiled loops are off."""
    if not compiled_loops_enabled(node):
        return None
    return ml_loops.finish_rows.prepare((_F32, 2), (np.bool_, 2), (_F32, 1), bool, int,
                                        (_F32, 2), (np.int64, 1), (_F32, 2), (_F32, 2), int)


def _consts(intercepts: np.ndarray) -> np.ndarray:
    """``finish_rows``'s constants: divisor 1, then the intercepts."""
    return np.concatenate([[1.0], intercepts]).astype(_F32)


def _linear_compiled(finish, rows: np.ndarray, weights: np.ndarray, consts: np.ndarray,
                     code: int, top: np.ndarray = _NO_TOP) -> np.ndarray:
    """Post-transformed float32 scores of float32 ``rows`` (``consts``: :func:`_consts`) by
    the compiled finish; ``top``, when not empty, gets each row's first top score's index."""
    count = weights.shape[0]
    out = np.empty((rows.shape[0], count), dtype=_F32)
    if rows.size * count <= _LOOP_PRODUCT_LIMIT and rows.shape[1] <= _LOOP_FEATURE_LIMIT:
        # the loop reads a row's scores before it writes its outputs: out holds both
        finish(out, _NO_HAS, consts, True, code, out, top, np.ascontiguousarray(rows),
               weights, -1)
    else:
        scores = rows @ weights.T
        finish(scores, _NO_HAS, consts, True, code, out, top, _NO_WEIGHTS, _NO_WEIGHTS, -1)
    return out


def _weights_by_features(node: NodeInfo, coefficients: np.ndarray, count: int, exact: bool):
    """A function giving the [count, features] weight matrix for an input's feature count
    (checked and cached per count); ``exact``: the coefficients must be exactly count *
    features (LinearRegressor), else at least (LinearClassifier)."""
    cache: dict[int, np.ndarray] = {}

    def weights(features: int) -> np.ndarray:
        matrix = cache.get(features)
        if matrix is None:
            if exact and coefficients.size != count * features:
                raise _fail(node, f"coefficients size ({coefficients.size}) is not targets "
                                  f"({count}) * features ({features})")
            if coefficients.size < count * features:
                raise _fail(node, f"coefficients size ({coefficients.size}) is less than "
                                  f"classes ({count}) * features ({features})")
            matrix = cache[features] = coefficients[:count * features].reshape(count, features)
        return matrix

    return weights


@kernels.register("LinearClassifier", 1, domain=ML)
def linear_classifier(node: NodeInfo):
    """LinearClassifier 1+: scores X @ coefficients^T + intercepts; the label is the top class,
    or for one score the positive label when the score is > 0 (scores [1-s, s] when two labels
    are given)."""
    coefficients = np.asarray(_floats(node, "coefficients"), dtype=_F32)
    intercepts = np.asarray(_floats(node, "intercepts"), dtype=_F32)
    transform = _post_transform(node)
    labels = _class_labels(node, "classlabels_ints")
    classes = len(intercepts)
    if classes == 0:
        raise _fail(node, "intercepts must not be empty")
    if classes == 1 and labels is not None and len(labels) != 2:
        raise _fail(node, f"binary classification needs exactly 2 class labels, got "
                          f"{len(labels)}")
    if classes > 1 and (labels is None or len(labels) < classes):
        raise _fail(node, f"{classes} classes need as many class labels")
    if coefficients.size % classes:  # onnxruntime refuses it when the session is created
        raise _fail(node, f"coefficients size ({coefficients.size}) is not a multiple of the "
                          f"number of classes ({classes}, the intercepts' count)")
    two_columns = classes == 1 and labels is not None  # binary scores become [1-s, s]
    if classes == 1 and labels is None:
        labels = np.array([0, 1], dtype=np.int64)

    weights_for = _weights_by_features(node, coefficients, classes, exact=False)
    finish = _finish_loop(node) if classes > 1 else None
    code = _TRANSFORMS.index(transform)
    consts = _consts(intercepts)

    # labels 0..classes-1: the top class index is the label
    identity = labels.dtype == np.int64 and np.array_equal(labels, np.arange(len(labels)))

    def compute(x):
        rows = _as_float32(x if x.ndim == 2 else _rows(node, x))
        weights = weights_for(rows.shape[1])
        if finish is not None:
            top = np.empty(rows.shape[0], dtype=np.int64)
            z = _linear_compiled(finish, rows, weights, consts, code, top)
            return (top if identity else labels[top]), z
        scores = (rows @ weights.T + intercepts).astype(_F32, copy=False)
        if classes > 1:
            return labels[_first_argmax(scores)], _transform(scores, transform)
        score = scores[:, 0]
        y = np.where(score > 0, labels[1], labels[0]).astype(labels.dtype)
        if not two_columns:
            return y, _transform_single(scores, transform)
        if transform == "PROBIT":  # ONNX Runtime writes N probits then leaves the rest unset
            z = np.full((len(score), 2), np.nan, dtype=_F32)
            z.reshape(-1)[:len(score)] = _probit(score)
            return y, z
        if transform == "LOGISTIC":
            score = _logistic(score)
        return y, np.stack([_F32(1) - score, score], axis=1).astype(_F32)

    return compute


@kernels.register("LinearRegressor", 1, domain=ML)
def linear_regressor(node: NodeInfo):
    """LinearRegressor 1+: X @ coefficients^T + intercepts per target, then post_transform
    (a single target only gets PROBIT)."""
    coefficients = np.asarray(_floats(node, "coefficients"), dtype=_F32)
    intercepts = np.asarray(_floats(node, "intercepts"), dtype=_F32)
    targets = int(node.attrs.get("targets", 1))
    transform = _post_transform(node)
    if targets < 1:
        raise _fail(node, f"targets must be positive, got {targets}")
    use_intercepts = len(intercepts) == targets
    weights_for = _weights_by_features(node, coefficients, targets, exact=True)
    finish = _finish_loop(node)
    # one target: PROBIT only (as ONNX Runtime)
    code = _TRANSFORMS.index(transform if targets > 1 or transform == "PROBIT" else "NONE")

    consts = _consts(intercepts if use_intercepts else np.zeros(0, dtype=_F32))

    def compute(x):
        rows = _as_float32(_rows(node, x) if x.ndim else x.reshape(1, 1))
        weights = weights_for(rows.shape[1])
        if finish is not None:
            return (_linear_compiled(finish, rows, weights, consts, code),)
        y = rows @ weights.T
        if use_intercepts:
            y = y + intercepts
        y = y.astype(_F32, copy=False)
        return (_transform(y, transform) if targets > 1 else _transform_single(y, transform),)

    return compute
