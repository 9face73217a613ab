"""Loss kernels (SoftmaxCrossEntropyLoss, NegativeLogLikelihoodLoss) against onnxruntime, every
version, reduction, weighting and ignore_index form, over 2-D to 5-D inputs."""

from __future__ import annotations

import numpy as np
import pytest
from single_node import check, make_model, rand

import ort
from ort.testing import run_ort

RNG = np.random.default_rng(3)
SHAPES = [(4, 5), (3, 5, 6), (2, 4, 3, 2), (2, 3, 2, 2, 2)]
REDUCTIONS = ["none", "sum", "mean"]


def expect_error(op, inputs, attrs, opset, match):
    """Session creation (ValueError) or the run (ort.OrtError) fails with ``match``."""
    model, feeds = make_model(op, inputs, attrs, opset)
    with pytest.raises((ValueError, ort.OrtError), match=match):
        run_ort(model, feeds)


def labels_for(shape, ignore_index=None, classes=None):
    """Random labels for scores of ``shape``; about a third are ``ignore_index`` if given."""
    classes = shape[1] if classes is None else classes
    target_shape = (shape[0],) + tuple(shape[2:])
    labels = RNG.integers(0, classes, size=target_shape).astype(np.int64)
    if ignore_index is not None:
        labels[RNG.random(target_shape) < 0.35] = ignore_index
        labels.flat[0] = 0  # keep at least one counted label
    return labels


def attrs_of(reduction, ignore_index):
    """Node attributes; ``reduction=None`` relies on the default (mean)."""
    attrs = {} if reduction is None else {"reduction": reduction}
    if ignore_index is not None:
        attrs["ignore_index"] = ignore_index
    return attrs


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduction", REDUCTIONS + [None])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore_index", [None, 1, -1, 100])
def test_nll_loss(shape, reduction, weighted, ignore_index):
    """NegativeLogLikelihoodLoss-22: reductions, weights, in/out-of-range and negative
    ignore_index, N-d inputs."""
    inputs = [rand(shape), labels_for(shape, ignore_index)]
    if weighted:
        inputs.append(rand((shape[1],), np.float32, 0.1, 2.0))
    check("NegativeLogLikelihoodLoss", inputs, attrs_of(reduction, ignore_index), 22)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduction", REDUCTIONS + [None])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore_index", [None, 2, -5])
@pytest.mark.parametrize("log_prob", [False, True])
def test_softmax_cross_entropy(shape, reduction, weighted, ignore_index, log_prob):
    """SoftmaxCrossEntropyLoss-13 with and without the log_prob output."""
    inputs = [rand(shape, np.float32, -4, 4), labels_for(shape, ignore_index)]
    if weighted:
        inputs.append(rand((shape[1],), np.float32, 0.1, 2.0))
    check("SoftmaxCrossEntropyLoss", inputs, attrs_of(reduction, ignore_index), 13,
          n_outputs=2 if log_prob else 1)


@pytest.mark.parametrize("op,opset", [("NegativeLogLikelihoodLoss", 12),
                                      ("NegativeLogLikelihoodLoss", 13),
                                      ("SoftmaxCrossEntropyLoss", 12)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_loss_older_versions(op, opset, reduction):
    """The earlier schema versions behave the same."""
    shape = (3, 4, 2)
    inputs = [rand(shape), labels_for(shape, 0), rand((4,), np.float32, 0.5, 1.5)]
    check(op, inputs, attrs_of(reduction, 0), opset)


@pytest.mark.parametrize("op", ["NegativeLogLikelihoodLoss", "SoftmaxCrossEntropyLoss"])
@pytest.mark.parametrize("dtype", [np.float16, np.float64])
@pytest.mark.parametrize("target_type", [np.int32, np.int64])
def test_loss_types(op, dtype, target_type):
    """float16 (computed in float32) and float64 scores, int32 and int64 labels."""
    shape = (3, 5, 2)
    inputs = [rand(shape, dtype), labels_for(shape, 3).astype(target_type),
              rand((5,), dtype, 0.5, 1.5)]
    tol = 2e-3 if dtype == np.float16 else 1e-10
    opset = 22 if op == "NegativeLogLikelihoodLoss" else 13
    check(op, inputs, attrs_of("mean", 3), opset, oracle="reference", rtol=tol, atol=tol)


def test_loss_large_logits_are_finite():
    """LogSoftmax is computed stably: huge logits give finite log-probabilities."""
    scores = np.array([[1000.0, 0.0, -1000.0], [5.0, 5.0, 5.0]], np.float32)
    model, feeds = make_model("SoftmaxCrossEntropyLoss", [scores, np.array([2, 0])],
                              {"reduction": "none"}, 13, 2)
    loss, log_prob = run_ort(model, feeds)
    np.testing.assert_allclose(loss, [2000.0, np.log(3.0)], rtol=1e-6)
    assert np.isfinite(log_prob).all()


def test_loss_empty_batch_none():
    """An empty batch with reduction none gives an empty loss."""
    model, feeds = make_model("NegativeLogLikelihoodLoss",
                              [np.zeros((0, 3), np.float32), np.zeros((0,), np.int64)],
                              {"reduction": "none"}, 22)
    assert run_ort(model, feeds)[0].shape == (0,)


@pytest.mark.parametrize("op", ["NegativeLogLikelihoodLoss", "SoftmaxCrossEntropyLoss"])
@pytest.mark.parametrize("case,match", [
    ("reduction", "reduction"), ("label_range", "target"), ("negative_label", "target"),
    ("shape", "shape|rank"),
])
def test_loss_errors(op, case, match):
    """An unknown reduction, labels outside [0, C) that are not ignore_index, bad shapes."""
    scores, labels = rand((3, 4)), np.array([0, 1, 2])
    attrs = {"reduction": "max"} if case == "reduction" else {}
    if case == "label_range":
        labels = np.array([0, 4, 1])
    elif case == "negative_label":
        labels, attrs = np.array([0, -2, 1]), {"ignore_index": -1}
    elif case == "shape":
        labels = np.array([[0, 1, 2]])
    opset = 22 if op == "NegativeLogLikelihoodLoss" else 13
    expect_error(op, [scores, labels], attrs, opset, match=match)
