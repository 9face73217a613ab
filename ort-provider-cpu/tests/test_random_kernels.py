"""Random kernels (RandomUniform(Like), RandomNormal(Like), Multinomial, Bernoulli) and
Dropout in training mode: statistics, dtypes, seeds, and the reference's seeded streams."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import ort
import pytest
from onnx import TensorProto
from single_node import make_model

from ort.testing import assert_outputs_match, node_model, run_onnxruntime, run_ort, run_reference

N = 20000  # samples for the statistical checks


def session(model):
    """An ort session on the CPU provider."""
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def generator_model(op, attrs, opset=22):
    """A model of one input-less generator node (RandomUniform/RandomNormal)."""
    return node_model(op, [], attrs, opset=opset)[0]


def run1(model, feeds=None):
    """Run a fresh session once, return the first output."""
    return run_ort(model, feeds or {})[0]


# --------------------------------------------------------------------------------------------
# RandomUniform / RandomNormal (+Like)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("opset", [1, 22])
@pytest.mark.parametrize("dtype, element_type", [
    (np.float32, None), (np.float32, 1), (np.float64, 11), (np.float16, 10),
])
def test_random_uniform_statistics(opset, dtype, element_type):
    """Values lie in [low, high) with the uniform mean; dtype defaults to float."""
    attrs = {"shape": [N // 100, 100], "low": -2.0, "high": 3.0}
    if element_type is not None:
        attrs["dtype"] = element_type
    y = run1(generator_model("RandomUniform", attrs, opset))
    assert y.dtype == dtype and y.shape == (N // 100, 100)
    assert y.min() >= -2.0 and y.max() <= 3.0
    assert abs(float(y.astype(np.float64).mean()) - 0.5) < 0.05
    assert abs(float(y.astype(np.float64).std()) - 5 / np.sqrt(12)) < 0.05


@pytest.mark.parametrize("opset", [1, 22])
@pytest.mark.parametrize("dtype, element_type", [(np.float32, None), (np.float64, 11)])
def test_random_normal_statistics(opset, dtype, element_type):
    """Mean and standard deviation match the attributes."""
    attrs = {"shape": [N], "mean": 1.5, "scale": 0.5}
    if element_type is not None:
        attrs["dtype"] = element_type
    y = run1(generator_model("RandomNormal", attrs, opset))
    assert y.dtype == dtype and y.shape == (N,)
    assert abs(float(y.mean()) - 1.5) < 0.02
    assert abs(float(y.std()) - 0.5) < 0.02


def test_bfloat16_from_opset_22():
    """bfloat16 output is allowed from opset 22 only."""
    y = run1(generator_model("RandomUniform", {"shape": [64], "dtype": 16}, 22))
    assert y.dtype == ml_dtypes.bfloat16
    with pytest.raises(Exception, match="RandomUniform"):
        session(generator_model("RandomUniform", {"shape": [64], "dtype": 16}, 21))


@pytest.mark.parametrize("op", ["RandomUniform", "RandomNormal"])
def test_seed_matches_reference_and_streams(op):
    """A seeded node's first run equals onnx's reference; later runs continue the stream;
    every new session repeats the same sequence; unseeded nodes differ between sessions."""
    model = generator_model(op, {"shape": [3, 4], "seed": 5.0, "dtype": 1})
    expected = run_reference(model, {})[0]
    first = session(model)
    a1, a2 = first.run(None, {})[0], first.run(None, {})[0]
    second = session(model)
    b1, b2 = second.run(None, {})[0], second.run(None, {})[0]
    np.testing.assert_array_equal(a1, expected)
    assert not np.array_equal(a1, a2)
    np.testing.assert_array_equal(a1, b1)
    np.testing.assert_array_equal(a2, b2)
    unseeded = generator_model(op, {"shape": [3, 4]})
    assert not np.array_equal(run1(unseeded), run1(unseeded))


@pytest.mark.parametrize("op", ["RandomUniformLike", "RandomNormalLike"])
@pytest.mark.parametrize("opset", [1, 22])
@pytest.mark.parametrize("x_dtype, element_type, out_dtype", [
    (np.float32, None, np.float32), (np.float64, None, np.float64),
    (np.float16, None, np.float16), (np.int32, 1, np.float32), (np.float32, 11, np.float64),
])
def test_like_ops(op, opset, x_dtype, element_type, out_dtype):
    """Shape copied from the input, dtype from the attribute or the input; seeded output
    equals the reference's."""
    x = np.zeros((4, 0, 3) if x_dtype == np.int32 else (5, 7), x_dtype)
    attrs = {"seed": 3.0}
    if element_type is not None:
        attrs["dtype"] = element_type
    model, feeds = make_model(op, [x], attrs, opset)
    y = run1(model, feeds)
    assert y.dtype == out_dtype and y.shape == x.shape
    if out_dtype != np.float16:
        np.testing.assert_array_equal(y, run_reference(model, feeds)[0])


def test_like_ops_need_float_or_dtype():
    """An integer input without a dtype attribute is rejected."""
    model, feeds = make_model("RandomUniformLike", [np.zeros(3, np.int64)], {}, 22)
    with pytest.raises(Exception, match="RandomUniformLike"):
        run1(model, feeds)


@pytest.mark.parametrize("attrs", [{"shape": [2], "dtype": 6}, {"dtype": 1}])
def test_generator_invalid(attrs):
    """A non-float dtype or a missing shape fails at session creation."""
    with pytest.raises(Exception, match="RandomNormal"):
        session(generator_model("RandomNormal", attrs))


# --------------------------------------------------------------------------------------------
# Multinomial
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("opset", [7, 22])
@pytest.mark.parametrize("element_type, dtype", [(None, np.int32), (6, np.int32),
                                                 (7, np.int64)])
def test_multinomial_frequencies(opset, element_type, dtype):
    """Sample frequencies follow softmax(input) per row; zero-probability classes never
    appear; dtype defaults to int32."""
    probs = np.array([[0.1, 0.2, 0.7, 0.0], [0.25, 0.25, 0.25, 0.25]])
    with np.errstate(divide="ignore"):
        logits = np.log(probs).astype(np.float32) + 3.0
    attrs = {"sample_size": N}
    if element_type is not None:
        attrs["dtype"] = element_type
    model, feeds = make_model("Multinomial", [logits], attrs, opset)
    y = run1(model, feeds)
    assert y.dtype == dtype and y.shape == (2, N)
    for row in range(2):
        freq = np.bincount(y[row], minlength=4) / N
        np.testing.assert_allclose(freq, probs[row], atol=0.02)
    assert not np.any(y[0] == 3)


def test_multinomial_matches_onnxruntime_statistics():
    """Same distribution as onnxruntime's kernel (compared through frequencies; onnxruntime
    registers only Multinomial-7)."""
    logits = np.array([[1.0, -1.0, 0.5]], np.float32)
    model, feeds = make_model("Multinomial", [logits], {"sample_size": N}, 7)
    ours = np.bincount(run1(model, feeds)[0], minlength=3) / N
    theirs = np.bincount(run_onnxruntime(model, feeds)[0][0], minlength=3) / N
    np.testing.assert_allclose(ours, theirs, atol=0.03)


def test_multinomial_seed_and_empty():
    """A seed repeats across sessions; empty batches and sample_size 0 give empty outputs."""
    logits = np.zeros((3, 5), np.float32)
    model, feeds = make_model("Multinomial", [logits], {"sample_size": 8, "seed": 1.0}, 22)
    np.testing.assert_array_equal(run1(model, feeds), run1(model, feeds))
    model, feeds = make_model("Multinomial", [np.zeros((0, 5), np.float32)], {}, 22)
    assert run1(model, feeds).shape == (0, 1)
    model, feeds = make_model("Multinomial", [logits], {"sample_size": 0}, 22)
    assert run1(model, feeds).shape == (3, 0)


def test_multinomial_invalid_dtype():
    """Only int32/int64 outputs are allowed."""
    model, feeds = make_model("Multinomial", [np.zeros((1, 2), np.float32)], {"dtype": 1}, 22)
    with pytest.raises(Exception, match="Multinomial"):
        run1(model, feeds)


# --------------------------------------------------------------------------------------------
# Bernoulli
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("opset", [15, 22])
@pytest.mark.parametrize("x_dtype, element_type, out_dtype", [
    (np.float32, None, np.float32), (np.float64, None, np.float64),
    (np.float32, TensorProto.BOOL, np.bool_), (np.float64, TensorProto.INT64, np.int64),
    (np.float16, TensorProto.UINT8, np.uint8),
])
def test_bernoulli(opset, x_dtype, element_type, out_dtype):
    """Mean follows p; 0 and 1 probabilities are exact; dtype from attribute or input."""
    p = np.concatenate([np.full(N, 0.3), np.zeros(100), np.ones(100)]).astype(x_dtype)
    attrs = {} if element_type is None else {"dtype": element_type}
    model, feeds = make_model("Bernoulli", [p], attrs, opset)
    y = run1(model, feeds)
    assert y.dtype == out_dtype and y.shape == p.shape
    values = y.astype(np.float64)
    assert set(np.unique(values)) <= {0.0, 1.0}
    assert abs(values[:N].mean() - 0.3) < 0.02
    assert not values[N:N + 100].any() and values[N + 100:].all()


def test_bernoulli_seed_matches_reference():
    """A seeded Bernoulli equals the reference evaluator's draw and repeats across sessions."""
    p = np.random.default_rng(0).random((4, 6)).astype(np.float32)
    model, feeds = make_model("Bernoulli", [p], {"seed": 2.0}, 22)
    expected = run_reference(model, feeds)[0]
    np.testing.assert_array_equal(run1(model, feeds), expected)
    np.testing.assert_array_equal(run1(model, feeds), expected)


def test_bernoulli_invalid_probability():
    """Probabilities outside [0, 1] are rejected."""
    model, feeds = make_model("Bernoulli", [np.array([0.5, 1.5], np.float32)], {}, 22)
    with pytest.raises(Exception, match="Bernoulli"):
        run1(model, feeds)


# --------------------------------------------------------------------------------------------
# Dropout (training mode)
# --------------------------------------------------------------------------------------------


def dropout_model(opset, seed, mask=True):
    """Dropout with data, ratio and training_mode inputs (and the mask output)."""
    attrs = {} if seed is None else {"seed": seed}
    x = np.ones((50, 40), np.float32)
    inputs = [x, np.array(0.75, np.float32), np.array(True)]
    return make_model("Dropout", inputs, attrs, opset, 2 if mask else 1)


@pytest.mark.parametrize("opset", [12, 13, 22])
def test_dropout_matches_reference_bit_for_bit(opset):
    """With a seed the mask is RandomState(seed)'s uniform draws >= ratio, exactly as onnx's
    reference (and the backend test data) compute it."""
    model, feeds = dropout_model(opset, seed=7)
    feeds["in0"] = np.random.default_rng(1).normal(size=(50, 40)).astype(np.float32)
    actual = run_ort(model, feeds)
    assert_outputs_match(actual, run_reference(model, feeds), rtol=0, atol=0)


def test_dropout_statistics_and_stream():
    """About ratio of the units drop, survivors scale by 1/(1-ratio); an unseeded node
    differs per session; a seeded one repeats per session and changes between runs."""
    model, feeds = dropout_model(22, seed=None)
    y, mask = session(model).run(None, feeds)
    assert mask.dtype == np.bool_
    assert abs(1 - mask.mean() - 0.75) < 0.03
    np.testing.assert_array_equal(y, np.where(mask, 4.0, 0.0).astype(np.float32))
    assert not np.array_equal(mask, session(model).run(None, feeds)[1])
    model, feeds = dropout_model(22, seed=3)
    sess = session(model)
    first, second = sess.run(None, feeds)[1], sess.run(None, feeds)[1]
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(first, session(model).run(None, feeds)[1])


@pytest.mark.parametrize("ratio, training", [(0.0, True), (0.5, False)])
def test_dropout_identity_cases(ratio, training):
    """Zero ratio or inference mode: identity and an all-true mask."""
    x = np.random.default_rng(2).normal(size=(3, 4)).astype(np.float32)
    model, feeds = make_model("Dropout", [x, np.array(ratio, np.float32),
                                          np.array(training)], {"seed": 1}, 13, 2)
    y, mask = session(model).run(None, feeds)
    np.testing.assert_array_equal(y, x)
    assert mask.all() and mask.dtype == np.bool_


def test_dropout_invalid_ratio():
    """A training ratio of 1 or more is rejected."""
    model, feeds = make_model("Dropout", [np.ones(3, np.float32), np.array(1.0, np.float32),
                                          np.array(True)], {}, 13)
    with pytest.raises(Exception, match="Dropout"):
        session(model).run(None, feeds)

