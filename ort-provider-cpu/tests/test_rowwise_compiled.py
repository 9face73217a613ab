"""The compiled row loops (Softmax, LogSoftmax, LayerNormalization, RMS/Simplified and the Skip
layer normalizations) against the numpy kernels (``compiled_kernels=0``) and onnxruntime, on
odd shapes, every axis, optional outputs, float64 and threads that split the rows."""

from __future__ import annotations

import numpy as np
import pytest
from ort.testing import node_model

import compiled_checks
from compiled_checks import run_paths as _run

pytest.importorskip("numba")

RNG = np.random.default_rng(16)
MS = "com.microsoft"


def three_way(model, feeds, rtol=1e-5, atol=1e-6, oracle=True, threads=(1, 2)) -> list:
    """:func:`compiled_checks.three_way` at this file's default tolerance."""
    return compiled_checks.three_way(model, feeds, rtol, atol, oracle, threads)


def _rand(shape, dtype=np.float32, scale=3.0, shift=0.0):
    return (RNG.standard_normal(shape) * scale + shift).astype(dtype)


# --------------------------------------------------------------------------------------------
# Softmax, LogSoftmax
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis", [((3, 5, 7), -1), ((3, 5, 7), 1), ((3, 5, 7), 0),
                                        ((64, 1029), -1), ((2, 300, 130), 1), ((9,), 0),
                                        ((4, 1), -1)])
def test_softmax_13_every_axis(op, dtype, shape, axis):
    x = _rand(shape, dtype, scale=8.0)
    model, feeds = node_model(op, [x], {"axis": axis}, opset=13)
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12,
                                                                      "atol": 1e-14}
    three_way(model, feeds, **tol)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_softmax_before_13_coerces_to_2d(op, axis):
    x = _rand((3, 4, 5, 6), scale=5.0)
    model, feeds = node_model(op, [x], {"axis": axis}, opset=11)
    three_way(model, feeds)


def test_softmax_extremes_and_nan_rows():
    x = _rand((6, 40), scale=30.0)
    x[0, 3] = np.nan  # a NaN makes its row NaN
    x[1] = -1e30  # equal large negatives: uniform
    x[2, :5] = 88.0  # exp of the max's neighbours near overflow
    x[3, 7] = -np.inf  # exp(-inf) = 0
    x[4] = np.linspace(-200, 0, 40)  # deep underflow
    for op in ("Softmax", "LogSoftmax"):
        model, feeds = node_model(op, [x], {"axis": -1}, opset=13)
        got = three_way(model, feeds, rtol=1e-5, atol=1e-6, oracle=False)[0]
        assert np.isnan(got[0]).all() and not np.isnan(got[1:]).any()
        if op == "Softmax":
            np.testing.assert_allclose(got[1], 1 / 40, rtol=1e-6)
            assert got[3, 7] == 0


def test_softmax_exp_is_accurate_over_its_whole_range():
    # one row per value: softmax of [t, 0] is exp(t) / (1 + exp(t)), the exp of t < 0 checked
    t = np.linspace(-87, 0, 20001).astype(np.float32)
    x = np.stack([t, np.zeros_like(t)], axis=1)
    model, feeds = node_model("Softmax", [x], {"axis": -1}, opset=13)
    got = _run(model, feeds, True, 1)[0]
    exact = np.exp(t.astype(np.float64))
    np.testing.assert_allclose(got[:, 0], exact / (1 + exact), rtol=3e-7, atol=0)


def test_softmax_input_is_not_modified():
    x = _rand((3, 50, 4))
    kept = x.copy()
    model, feeds = node_model("Softmax", [x], {"axis": 1}, opset=13)
    three_way(model, feeds)
    np.testing.assert_array_equal(feeds["in0"], kept)


# --------------------------------------------------------------------------------------------
# LayerNormalization (17), with Mean and InvStdDev
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis", [((2, 3, 17), -1), ((2, 3, 17), 1), ((4, 130, 384), -1),
                                        ((5, 33), 0), ((1, 1), -1)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_layer_normalization_outputs(dtype, shape, axis, with_bias):
    x = _rand(shape, dtype, scale=2.0, shift=5.0)
    first = axis % len(shape)
    scale = _rand(shape[first:], dtype, scale=1.0)
    bias = _rand(shape[first:], dtype, scale=1.0) if with_bias else None
    model, feeds = node_model("LayerNormalization", [x, scale, bias],
                              {"axis": axis, "epsilon": 1e-3},
                              opset=17, outputs=3, constants=(1, 2) if with_bias else (1,))
    tol = {"rtol": 2e-5, "atol": 2e-5} if dtype == np.float32 else {"rtol": 1e-10,
                                                                      "atol": 1e-10}
    three_way(model, feeds, **tol)


def test_layer_normalization_scale_broadcast_and_only_y():
    x = _rand((3, 4, 6), shift=-2.0)
    scale = _rand((6,), scale=1.0)  # broadcast to the normalized (4, 6)
    model, feeds = node_model("LayerNormalization", [x, scale], {"axis": 1}, opset=17)
    three_way(model, feeds, rtol=2e-5, atol=2e-5)


def test_layer_normalization_large_mean_keeps_precision():
    # a mean 1e4 times the spread: one-pass E[x^2] - mean^2 in float32 would lose it all
    x = _rand((8, 256), scale=1.0, shift=1e4)
    scale, bias = np.ones(256, np.float32), np.zeros(256, np.float32)
    model, feeds = node_model("LayerNormalization", [x, scale, bias], {}, opset=17,
                              outputs=3, constants=(1, 2))
    got = _run(model, feeds, True, 1)
    exact = x.astype(np.float64)
    centred = exact - exact.mean(axis=1, keepdims=True)
    want = centred / np.sqrt((centred ** 2).mean(axis=1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(got[0], want, rtol=0, atol=2e-3)


# --------------------------------------------------------------------------------------------
# SimplifiedLayerNormalization, RMSNormalization
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis", [((2, 3, 17), -1), ((2, 3, 17), 1), ((4, 130, 384), -1)])
def test_simplified_layer_normalization(dtype, shape, axis):
    x = _rand(shape, dtype, shift=1.0)
    scale = _rand(shape[axis % len(shape):], dtype, scale=1.0)
    model, feeds = node_model("SimplifiedLayerNormalization", [x, scale],
                              {"axis": axis, "epsilon": 1e-4}, opset=17, outputs=2,
                              constants=(1,))
    tol = {"rtol": 2e-5, "atol": 2e-5} if dtype == np.float32 else {"rtol": 1e-10,
                                                                      "atol": 1e-10}
    three_way(model, feeds, oracle=dtype == np.float32, **tol)


@pytest.mark.parametrize("shape,axis", [((2, 3, 17), -1), ((2, 3, 17), 1), ((64, 600), -1)])
def test_rms_normalization(shape, axis):
    x = _rand(shape, shift=1.0)
    scale = _rand(shape[axis % len(shape):], scale=1.0)
    model, feeds = node_model("RMSNormalization", [x, scale], {"axis": axis}, opset=23,
                              constants=(1,), ir_version=11)
    three_way(model, feeds, rtol=2e-5, atol=2e-5, oracle=False)


# --------------------------------------------------------------------------------------------
# SkipLayerNormalization, SkipSimplifiedLayerNormalization (com.microsoft)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("simplified", [False, True])
@pytest.mark.parametrize("x_shape,skip_shape", [((2, 5, 24), (2, 5, 24)), ((3, 7, 16), (7, 16)),
                                                ((3, 7, 16), (1, 7, 16)), ((9, 40), (9, 40)),
                                                ((4, 128, 256), (4, 128, 256))])
@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("outputs", [(True, False, False, False), (True, True, True, True),
                                     (True, False, False, True)])
def test_skip_layer_normalization(simplified, x_shape, skip_shape, with_bias, outputs):
    hidden = x_shape[-1]
    x, skip = _rand(x_shape, shift=1.0), _rand(skip_shape)
    gamma = _rand((hidden,), scale=1.0)
    bias = _rand((hidden,), scale=1.0) if with_bias else None
    if simplified:
        op, inputs = "SkipSimplifiedLayerNormalization", [x, skip, gamma, bias]
        constants = (2, 3) if with_bias else (2,)
    else:
        beta = _rand((hidden,), scale=1.0)
        op, inputs = "SkipLayerNormalization", [x, skip, gamma, beta, bias]
        constants = (2, 3, 4) if with_bias else (2, 3)
    model, feeds = node_model(op, inputs, {"epsilon": 1e-5}, domain=MS, opset=17,
                              outputs=list(outputs), constants=constants)
    three_way(model, feeds, rtol=2e-5, atol=2e-5)



def _node(op: str, dtype=np.float32):
    from ort.ep import NodeInfo

    return NodeInfo("n", op, MS, 1, 1, {}, ["x", "skip", "gamma"], ["y"], [np.dtype(dtype)],
                    [None], [None], [None], [None, None, None])


def test_skip_loop_leaves_a_skip_that_broadcasts_x_to_numpy():
    from ort_provider_cpu.kernels.normalization import compiled_skip_norm

    run = compiled_skip_norm(_node("SkipLayerNormalization"))
    x, gamma = _rand((1, 4, 8)), _rand((8,))
    assert run(x, _rand((3, 4, 8)), gamma, None, None, 1e-5, False, False) is None
    assert run(x, _rand((4, 8), np.float64), gamma, None, None, 1e-5, False, False) is None
    y, mean, inv_std, summed = run(x, _rand((4, 8)), gamma, None, None, 1e-5, False, True)
    assert y.shape == summed.shape == x.shape and mean.shape == inv_std.shape == (1, 4, 1)


def test_row_param_refuses_what_does_not_broadcast():
    from ort_provider_cpu.kernels.normalization import row_param

    assert row_param(np, np.ones((1, 6), np.float32), (6,), np.dtype(np.float32)) is None
    assert row_param(np, np.ones(5, np.float32), (4, 6), np.dtype(np.float32)) is None
    assert row_param(np, np.ones(6, np.float64), (6,), np.dtype(np.float32)) is None
    row = row_param(np, np.arange(6, dtype=np.float32), (4, 6), np.dtype(np.float32))
    assert row.shape == (24,) and row.flags.c_contiguous
