"""CPU kernels: the ai.onnx.ml support vector machines, SVMClassifier and SVMRegressor, with
LINEAR, POLY, RBF and SIGMOID kernels computed in float32 as ONNX Runtime computes them. The
classifier votes one-vs-one between classes (or scores a linear SVM when it has no support
vectors), couples Platt-scaled pairwise probabilities as libsvm does when prob_a/prob_b are
given, and fills a two-class model's score columns by ONNX Runtime's rules.
"""

from __future__ import annotations

import numpy as np

from ort.ep import KernelTable, NodeInfo

from .ml_common import (
    ML, _F32, _as_float32, _class_labels, _exp, _fail, _first_argmax, _floats, _ints, _logistic,
    _post_transform, _probit, _row_sum, _rows, _transform, _transform_single,
)

kernels = KernelTable()


class _SvmKernel:
    """An SVM kernel between input rows and a set of vectors, in float32 as ONNX Runtime."""

    def __init__(self, node: NodeInfo, forced_linear: bool) -> None:
        name = node.attrs.get("kernel_type", "LINEAR")
        if name not in ("LINEAR", "POLY", "RBF", "SIGMOID"):
            raise _fail(node, f"kernel_type must be LINEAR, POLY, RBF or SIGMOID, got {name!r}")
        params = _floats(node, "kernel_params")
        if params and len(params) < 3:
            raise _fail(node, "kernel_params must hold gamma, coef0 and degree")
        self.name = "LINEAR" if forced_linear else name
        self.gamma, self.coef0, self.degree = (_F32(p) for p in (params or [0.0, 0.0, 0.0])[:3])

    def __call__(self, x: np.ndarray, vectors: np.ndarray, constant: float = 0.0) -> np.ndarray:
        """Kernel values [N, len(vectors)]; ``constant`` is added by the LINEAR kernel."""
        if self.name == "RBF":
            return self._rbf(x, vectors)
        dot = (x @ vectors.T).astype(_F32)
        if self.name == "LINEAR":
            return dot + _F32(constant) if constant else dot
        value = self.gamma * dot + self.coef0
        with np.errstate(invalid="ignore", over="ignore"):
            if self.name == "SIGMOID":
                return np.tanh(value.astype(np.float64)).astype(_F32)
            if self.degree == 2:  # ONNX Runtime (Eigen) squares and cubes by multiplying
                return value * value
            if self.degree == 3:
                return value * value * value
            return np.power(value.astype(np.float64), float(self.degree)).astype(_F32)

    def _rbf(self, x: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        """exp(-gamma * |x - v|^2) with the squares summed feature by feature in float32, as
        ONNX Runtime does (the kernel values then match it exactly)."""
        out = np.empty((x.shape[0], vectors.shape[0]), dtype=_F32)
        step = max(1, 4_000_000 // max(1, vectors.size))
        with np.errstate(over="ignore"):
            for start in range(0, x.shape[0], step):  # chunks bound the [n, V, F] temporary
                diff = x[start:start + step, None, :] - vectors[None, :, :]
                squared = _row_sum(diff * diff)[..., 0]
                out[start:start + step] = _exp(-self.gamma * squared)
        return out


def _multiclass_probability(pairwise: np.ndarray) -> np.ndarray:
    """libsvm's pairwise coupling (ONNX Runtime's multiclass_probability) for every row.

    ``pairwise[n, i, j]`` is the probability of class i against class j; returns [N, K].
    """
    n, k, _ = pairwise.shape
    r = pairwise.astype(_F32)
    rt2 = np.swapaxes(r, 1, 2) ** 2  # rt2[n, i, j] = r[n, j, i]^2
    eye = np.eye(k, dtype=bool)
    q = np.where(eye, _F32(0), -np.swapaxes(r, 1, 2) * r).astype(_F32)
    q[:, eye] = np.where(eye[None], _F32(0), rt2).sum(axis=2)
    p = np.full((n, k), _F32(1) / _F32(k), dtype=_F32)
    eps = _F32(0.005) / _F32(k)
    active = np.ones(n, dtype=bool)
    for _ in range(100):
        qp = np.einsum("nij,nj->ni", q, p).astype(_F32)
        pqp = np.einsum("ni,ni->n", p, qp).astype(_F32)
        active &= np.abs(qp - pqp[:, None]).max(axis=1) >= eps
        if not active.any():
            break
        a = active[:, None]
        for i in range(k):
            with np.errstate(divide="ignore", invalid="ignore"):
                diff = ((-qp[:, i] + pqp) / q[:, i, i]).astype(_F32)
                p_i = p[:, i] + diff
                new_pqp = (pqp + diff * (diff * q[:, i, i] + _F32(2) * qp[:, i])) \
                    / (_F32(1) + diff) / (_F32(1) + diff)
                new_qp = (qp + diff[:, None] * q[:, i, :]) / (_F32(1) + diff[:, None])
                new_p = p.copy()
                new_p[:, i] = p_i
                new_p = new_p / (_F32(1) + diff[:, None])
            p = np.where(a, new_p, p).astype(_F32)
            qp = np.where(a, new_qp, qp).astype(_F32)
            pqp = np.where(active, new_pqp, pqp).astype(_F32)
    return p


@kernels.register("SVMClassifier", 1, domain=ML)
def svm_classifier(node: NodeInfo):
    """SVMClassifier 1+: one-vs-one SVC votes (or linear SVM scores) per class, with optional
    Platt probabilities (prob_a/prob_b) coupled across the class pairs."""
    labels = _class_labels(node, "classlabels_ints")
    if labels is None:
        raise _fail(node, "one of classlabels_strings and classlabels_ints is required")
    classes = len(labels)
    per_class = _ints(node, "vectors_per_class")
    vectors = int(sum(per_class))
    coefficients = np.asarray(_floats(node, "coefficients"), dtype=_F32)
    rho = np.asarray(_floats(node, "rho"), dtype=_F32)
    prob_a = np.asarray(_floats(node, "prob_a"), dtype=_F32)
    prob_b = np.asarray(_floats(node, "prob_b"), dtype=_F32)
    transform = _post_transform(node)
    if coefficients.size == 0:
        raise _fail(node, "coefficients are empty")
    if len(prob_a) != len(prob_b):
        raise _fail(node, "prob_a and prob_b must have the same size")
    svc = vectors > 0
    kernel = _SvmKernel(node, forced_linear=not svc)
    pairs = classes * (classes - 1) // 2
    all_positive = bool((coefficients >= 0).all())
    with_proba = svc and len(prob_a) > 0
    if svc:
        if len(per_class) != classes:
            raise _fail(node, "vectors_per_class must have one entry per class label")
        support = np.asarray(_floats(node, "support_vectors"), dtype=_F32)
        features = support.size // vectors
        support = support[:vectors * features].reshape(vectors, features)
        if coefficients.size < (classes - 1) * vectors:
            raise _fail(node, "coefficients must hold (classes - 1) * vectors values")
        if len(rho) < pairs or (with_proba and len(prob_a) < pairs):
            raise _fail(node, "rho (and prob_a/prob_b) need one value per class pair")
        pair_matrix, winners, losers = _svc_pairs(per_class, coefficients, vectors)
    else:
        features = coefficients.size // classes
        weights = coefficients[:classes * features].reshape(classes, features)
        if len(rho) < 1:
            raise _fail(node, "rho must have at least one value")

    def compute(x):
        rows = _as_float32(_rows(node, x))
        if rows.shape[1] != features:
            raise _fail(node, f"expected {features} features, got {rows.shape[1]}")
        if not svc:
            scores = kernel(rows, weights, float(rho[0]))
            top = _first_argmax(scores)
            y = labels[top]
            if pairs == 1:
                best = scores[np.arange(len(top)), top]
                positive = (best >= 0.5) if all_positive else (best > 0)
                y = np.where(positive, labels[1], y).astype(labels.dtype)
            if classes == 1:
                return y, _transform_single(scores, transform)
            return y, _transform(scores, transform)
        kernel_values = kernel(rows, support).astype(np.float64)
        pair_scores = (kernel_values @ pair_matrix + rho[:pairs]).astype(_F32)
        positive = pair_scores > 0
        votes = positive.astype(np.int64) @ winners + (~positive).astype(np.int64) @ losers
        y = labels[np.argmax(votes, axis=1)]
        if with_proba:
            proba = _pairwise_probabilities(pair_scores, prob_a[:pairs], prob_b[:pairs],
                                            classes)
            return y, _transform(_multiclass_probability(proba), transform)
        if classes > 2:
            return y, _transform(pair_scores, transform)
        return y, _svc_binary_scores(pair_scores[:, 0], transform)

    return compute


def _svc_pairs(per_class: list[int], coefficients: np.ndarray,
               vectors: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the [vectors, pairs] matrix that turns kernel values into one-vs-one scores, and
    the [pairs, classes] one-hot matrices of each pair's first and second class."""
    classes = len(per_class)
    starts = np.concatenate([[0], np.cumsum(per_class)]).astype(int)
    coef = coefficients[:(classes - 1) * vectors].reshape(classes - 1, vectors)
    pairs = [(i, j) for i in range(classes - 1) for j in range(i + 1, classes)]
    matrix = np.zeros((vectors, len(pairs)), dtype=np.float64)
    winners = np.zeros((len(pairs), classes), dtype=np.int64)
    losers = np.zeros((len(pairs), classes), dtype=np.int64)
    for p, (i, j) in enumerate(pairs):
        span_i = slice(starts[i], starts[i + 1])
        span_j = slice(starts[j], starts[j + 1])
        matrix[span_i, p] = coef[j - 1, span_i]
        matrix[span_j, p] = coef[i, span_j]
        winners[p, i] = 1
        losers[p, j] = 1
    return matrix, winners, losers


def _pairwise_probabilities(scores: np.ndarray, prob_a: np.ndarray, prob_b: np.ndarray,
                            classes: int) -> np.ndarray:
    """Platt-scaled pairwise probabilities [N, K, K] (r[i, j] = P(i | i or j))."""
    value = _F32(1) - _logistic(scores * prob_a + prob_b)
    value = np.clip(value, _F32(1e-7), _F32(1) - _F32(1e-7)).astype(_F32)
    out = np.zeros((scores.shape[0], classes, classes), dtype=_F32)
    p = 0
    for i in range(classes - 1):
        for j in range(i + 1, classes):
            out[:, i, j] = value[:, p]
            out[:, j, i] = _F32(1) - value[:, p]
            p += 1
    return out


def _svc_binary_scores(score: np.ndarray, transform: str) -> np.ndarray:
    """The two score columns of a two-class SVC without probabilities, as ONNX Runtime fills
    them: [-s, s] (NONE), [1-p, p] with p = logistic(s) (LOGISTIC), [1-s, s] (the softmaxes),
    [probit(s), unset] (PROBIT; 0 here)."""
    score = _as_float32(score)
    if transform == "PROBIT":
        return np.stack([_probit(score), np.zeros_like(score)], axis=1)
    if transform == "LOGISTIC":
        score = _logistic(score)
    first = -score if transform == "NONE" else _F32(1) - score
    return np.stack([first, score], axis=1).astype(_F32)


@kernels.register("SVMRegressor", 1, domain=ML)
def svm_regressor(node: NodeInfo):
    """SVMRegressor 1+: kernel values against the support vectors weighted by coefficients,
    plus rho (a linear model when n_supports is 0); one_class maps the sign to +-1. ONNX
    Runtime ignores post_transform here, and so does this kernel."""
    vectors = int(node.attrs.get("n_supports", 0))
    coefficients = np.asarray(_floats(node, "coefficients"), dtype=_F32)
    rho = np.asarray(_floats(node, "rho"), dtype=_F32)
    one_class = bool(node.attrs.get("one_class", 0))
    _post_transform(node)
    if coefficients.size == 0 or len(rho) == 0:
        raise _fail(node, "coefficients and rho must not be empty")
    kernel = _SvmKernel(node, forced_linear=vectors <= 0)
    if vectors > 0:
        support = np.asarray(_floats(node, "support_vectors"), dtype=_F32)
        features = support.size // vectors
        support = support[:vectors * features].reshape(vectors, features)
        if coefficients.size < vectors:
            raise _fail(node, "coefficients must hold one value per support vector")
        weights = coefficients[:vectors].astype(np.float64)
    else:
        features = coefficients.size
        weights = coefficients.reshape(1, -1)

    def compute(x):
        rows = _as_float32(_rows(node, x))
        if rows.shape[1] != features:
            raise _fail(node, f"expected {features} features, got {rows.shape[1]}")
        if vectors > 0:
            # summed in float64: closest to the exact value ONNX Runtime's float32 GEMM
            # approximates (the terms can be large and cancel)
            y = (kernel(rows, support).astype(np.float64) @ weights)[:, None] + rho[0]
        else:
            y = kernel(rows, weights, float(rho[0]))
        y = y.astype(_F32)
        if one_class:
            y = np.where(y > 0, _F32(1), _F32(-1))
        return (y,)

    return compute
