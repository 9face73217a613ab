"""Contrib ops onnxruntime has no CPU kernel for (so the conformance table lists their cases
as expected oracle failures): each such case is checked here against a numpy reference
written from the op's spec, so the kernels are tested in CI all the same."""

from __future__ import annotations

import math

import cases_fusions
import cases_qlinear
import numpy as np
import pytest

import ort

_ERF = np.vectorize(math.erf)


def _gelu(x):
    return 0.5 * x * (1 + _ERF(x / math.sqrt(2)))


def _fast_gelu(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def _softmax_from(x, axis):
    rows = x.reshape(int(np.prod(x.shape[:axis])), -1)
    e = np.exp(rows - rows.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).reshape(x.shape)


def _float_reference(case):
    x = [np.asarray(v, np.float64) for v in case.inputs]
    if case.op_type == "BiasAdd":
        return x[0] + x[1] + x[2]
    if case.op_type == "BiasSplitGelu":
        y = x[0] + x[1]
        half = y.shape[-1] // 2
        return y[..., :half] * _gelu(y[..., half:])
    if case.op_type == "BiasSoftmax":
        # the bias broadcasts over the data (inner: (B,1,..), outer: (1,N,..))
        return _softmax_from(x[0] + x[1], int(case.attrs["axis"]))
    if case.op_type == "GemmFastGelu":
        y = x[0] @ x[1]
        return _fast_gelu(y + x[2] if len(x) > 2 else y)
    raise AssertionError(case.op_type)


def _reduce_mean_reference(case):
    q, scale, zero, y_scale, y_zero = case.inputs
    axes = tuple(case.attrs["axes"])
    mean = (q.astype(np.float64) - float(zero)).mean(axis=axes,
                                                     keepdims=bool(case.attrs["keepdims"]))
    info = np.iinfo(q.dtype)
    values = np.rint(mean * float(scale) / float(y_scale)) + float(y_zero)
    return np.clip(values, info.min, info.max).astype(q.dtype)


FLOAT_CASES = [c for c in cases_fusions.CASES
               if c.op_type in ("BiasAdd", "BiasSplitGelu", "BiasSoftmax", "GemmFastGelu")]
REDUCE_CASES = [c for c in cases_qlinear.CASES if c.op_type == "QLinearReduceMean"]


def _run(case):
    model, feeds = case.model()
    return ort.InferenceSession(model.SerializeToString()).run(None, feeds)[0]


@pytest.mark.parametrize("case", FLOAT_CASES, ids=[c.name for c in FLOAT_CASES])
def test_float_contrib_op_matches_numpy(case):
    got = _run(case)
    want = _float_reference(case)
    assert got.dtype == np.asarray(case.inputs[0]).dtype and got.shape == want.shape
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=max(case.rtol, 1e-5),
                               atol=max(case.atol, 1e-5))


@pytest.mark.parametrize("case", REDUCE_CASES, ids=[c.name for c in REDUCE_CASES])
def test_qlinear_reduce_mean_matches_numpy(case):
    got = _run(case)
    want = _reduce_mean_reference(case)
    assert got.dtype == want.dtype and got.shape == want.shape
    # the kernel scales in float32, this reference in float64: a rounding tie may land one
    # quantization step apart
    assert np.abs(got.astype(np.int32) - want.astype(np.int32)).max() <= 1
