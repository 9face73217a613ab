"""CPU kernels: the ai.onnx.ml linear models, LinearClassifier and LinearRegressor: scores
X @ coefficients^T + intercepts in float32, then the post transform (see ``ml_common``); a
classifier labels the top class, and one with a single score column labels and fills its two
score columns the way ONNX Runtime does.
"""

from __future__ import annotations

import numpy as np

from ort.ep import KernelTable, NodeInfo

from .ml_common import (
    ML, _F32, _as_float32, _class_labels, _fail, _first_argmax, _floats, _logistic, _post_transform,
    _probit, _rows, _transform, _transform_single,
)

kernels = KernelTable()


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

    def compute(x):
        rows = _as_float32(_rows(node, x))
        features = rows.shape[1]
        if coefficients.size < classes * features:
            raise _fail(node, f"coefficients size ({coefficients.size}) is less than classes "
                              f"({classes}) * features ({features})")
        weights = coefficients[:classes * features].reshape(classes, features)
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

    def compute(x):
        rows = _as_float32(_rows(node, x) if x.ndim else x.reshape(1, 1))
        features = rows.shape[1]
        if coefficients.size != targets * features:
            raise _fail(node, f"coefficients size ({coefficients.size}) is not targets "
                              f"({targets}) * features ({features})")
        y = rows @ coefficients.reshape(targets, features).T
        if use_intercepts:
            y = y + intercepts
        y = y.astype(_F32)
        return (_transform(y, transform) if targets > 1 else _transform_single(y, transform),)

    return compute
