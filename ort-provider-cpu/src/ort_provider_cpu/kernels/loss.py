"""CPU kernels: loss functions: SoftmaxCrossEntropyLoss, NegativeLogLikelihoodLoss.

Both take scores of shape (N, C, d1, ..., dk) and class labels of shape (N, d1, ..., dk). A
label equal to ``ignore_index`` (which may be negative or outside [0, C)) contributes nothing:
its loss and its weight are zero, so ``mean`` divides by the summed weights of the labels that
count. float16/bfloat16 are computed in float32 and rounded once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ort.ep import KernelTable, NodeInfo

from .float_work import work_dtype

kernels = KernelTable()

_REDUCTIONS = ("none", "sum", "mean")


def _reduction(node: NodeInfo) -> str:
    """Return the validated ``reduction`` attribute."""
    reduction = node.attrs.get("reduction", "mean")
    if reduction not in _REDUCTIONS:
        raise ValueError(
            f"{node.describe()}: reduction must be one of {_REDUCTIONS}, got {reduction!r}"
        )
    return reduction


def _check_shapes(node: NodeInfo, scores: Any, labels: Any) -> None:
    """Raise ValueError unless scores are (N, C, d...) and labels (N, d...)."""
    if scores.ndim < 2:
        raise ValueError(f"{node.describe()}: input must have rank >= 2, got {scores.shape}")
    expected = (scores.shape[0],) + tuple(scores.shape[2:])
    if tuple(labels.shape) != expected:
        raise ValueError(
            f"{node.describe()}: target shape {labels.shape} does not match input shape "
            f"{scores.shape} (expected {expected})"
        )


def _nll(node: NodeInfo, log_probs: Any, labels: Any, weight: Any, reduction: str,
         ignore_index: int | None) -> Any:
    """Return the negative log-likelihood loss of ``log_probs`` (N, C, d...) in work precision,
    reduced as ``reduction`` says."""
    xp = node.xp
    work = log_probs.dtype
    classes = log_probs.shape[1]
    labels = labels.astype(np.int64, copy=False)
    ignored = None if ignore_index is None else labels == ignore_index
    safe = labels if ignored is None else xp.where(ignored, 0, labels)
    if safe.size and (int(safe.min()) < 0 or int(safe.max()) >= classes):
        raise ValueError(
            f"{node.describe()}: target values must be in [0, {classes}) or equal ignore_index"
        )
    loss = -xp.take_along_axis(log_probs, safe[:, None], axis=1)[:, 0]
    weights = None if weight is None else weight.astype(work)[safe]
    if ignored is not None:
        loss = xp.where(ignored, work.type(0), loss)
        weights = (~ignored).astype(work) if weights is None else xp.where(ignored, 0, weights)
    if weights is not None:
        loss = loss * weights
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if weights is None:
        return loss.mean()
    return loss.sum() / weights.sum()


@kernels.register("NegativeLogLikelihoodLoss", since=12)
def negative_log_likelihood_loss(node: NodeInfo) -> Callable[..., tuple]:
    """NegativeLogLikelihoodLoss 12+: -input[n, target[n, d...], d...] * weight[target],
    reduced by none/sum/mean (mean divides by the summed weights)."""
    reduction = _reduction(node)
    ignore_index = node.attrs.get("ignore_index")

    def compute(x: Any, target: Any, weight: Any = None) -> tuple:
        _check_shapes(node, x, target)
        loss = _nll(node, x.astype(work_dtype(x.dtype)), target, weight, reduction, ignore_index)
        return (node.xp.asarray(loss).astype(x.dtype),)

    return compute


@kernels.register("SoftmaxCrossEntropyLoss", since=12)
def softmax_cross_entropy_loss(node: NodeInfo) -> Callable[..., tuple]:
    """SoftmaxCrossEntropyLoss 12+: NegativeLogLikelihoodLoss of LogSoftmax(scores, axis=1);
    the optional second output is that log-probability tensor."""
    xp = node.xp
    reduction = _reduction(node)
    ignore_index = node.attrs.get("ignore_index")

    def compute(scores: Any, labels: Any, weights: Any = None) -> tuple:
        _check_shapes(node, scores, labels)
        shifted = scores.astype(work_dtype(scores.dtype))
        if shifted.size:
            shifted = shifted - shifted.max(axis=1, keepdims=True)
            shifted = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
        loss = _nll(node, shifted, labels, weights, reduction, ignore_index)
        outputs = (xp.asarray(loss).astype(scores.dtype), shifted.astype(scores.dtype))
        return outputs[: max(node.num_outputs, 1)]

    return compute
