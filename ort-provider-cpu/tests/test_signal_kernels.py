"""Signal kernels (DFT, STFT, MelWeightMatrix, window functions) against onnxruntime, and
onnx's reference evaluator where onnxruntime deviates from the spec."""

from __future__ import annotations

import numpy as np
import pytest
from single_node import check, make_model

from ort.testing import assert_outputs_match, run_onnxruntime, run_ort, run_reference

RNG = np.random.default_rng(3)


def scalar(value, dtype=np.int64):
    """A 0-d integer input."""
    return np.array(value, dtype)


def compare(op, inputs, attrs, opset, oracle="ort", rtol=1e-4, atol=1e-4):
    """Run ours and the oracle (onnxruntime or the reference evaluator); compare."""
    model, feeds = make_model(op, inputs, attrs, opset)
    expected = (run_onnxruntime if oracle == "ort" else run_reference)(model, feeds)
    actual = run_ort(model, feeds)
    assert_outputs_match(actual, expected, rtol, atol)
    return actual


# --------------------------------------------------------------------------------------------
# DFT
# --------------------------------------------------------------------------------------------

DFT_SHAPES = [(2, 8, 1), (2, 8, 2), (3, 6, 5, 1), (3, 6, 5, 2)]
DFT_MODES = [(0, 0), (1, 0), (0, 1), (1, 1)]  # (inverse, onesided)


def dft_cases():
    """Yield (shape, axis, inverse, onesided) for every valid combination."""
    for shape in DFT_SHAPES:
        rank = len(shape)
        for axis in [a for a in range(-rank, rank - 1) if a != -1]:
            for inverse, onesided in DFT_MODES:
                complex_input = shape[-1] == 2
                if onesided and complex_input != bool(inverse):
                    continue  # RFFT needs real input, IRFFT complex input
                yield shape, axis, inverse, onesided


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("length", [None, 4, 7, 12])
@pytest.mark.parametrize("case", list(dft_cases()), ids=str)
def test_dft(case, length, dtype):
    """DFT 20 (axis input) and 17 (axis attribute): every axis, (inverse) (one-sided),
    dft_length shorter or longer than the axis."""
    shape, axis, inverse, onesided = case
    x = RNG.normal(size=shape).astype(dtype)
    dft_length = None if length is None else scalar(length)
    # onnxruntime's IRFFT ignores the spec for an explicit dft_length: use the reference there
    oracle = "ref" if inverse and onesided and length is not None else "ort"
    attrs = {"inverse": inverse, "onesided": onesided}
    compare("DFT", [x, dft_length, scalar(axis)], attrs, 20, oracle)
    if axis != 0:  # ort's opset-17 schema check rejects axis 0 (the batch axis)
        compare("DFT", [x, dft_length], {**attrs, "axis": axis}, 17, oracle)


def test_dft_defaults():
    """DFT 20 defaults to the last signal axis, DFT 17 to axis 1."""
    x = RNG.normal(size=(2, 5, 6, 2)).astype(np.float32)
    compare("DFT", [x], {}, 20)
    compare("DFT", [x], {}, 17)


@pytest.mark.parametrize("dtype", [np.float16])
def test_dft_half(dtype):
    """float16 is transformed in single precision and rounded."""
    x = RNG.normal(size=(2, 8, 2)).astype(dtype)
    model, feeds = make_model("DFT", [x], {"axis": 1}, 17)
    (got,) = run_ort(model, feeds)
    model, _ = make_model("DFT", [x.astype(np.float32)], {"axis": 1}, 17)
    (want,) = run_onnxruntime(model, {"in0": x.astype(np.float32)})
    assert got.dtype == dtype
    np.testing.assert_allclose(got.astype(np.float32), want, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("inputs, attrs", [
    ([np.zeros((2, 8, 2), np.float32)], {"onesided": 1}),
    ([np.zeros((2, 8, 1), np.float32)], {"onesided": 1, "inverse": 1}),
    ([np.zeros((2, 8, 3), np.float32)], {}),
    ([np.zeros((2, 8, 1), np.float32), None, scalar(-1)], {}),
    ([np.zeros((2, 8, 1), np.float32), None, scalar(2)], {}),
    ([np.zeros((2, 8, 1), np.float32), scalar(0)], {}),
])
def test_dft_invalid(inputs, attrs):
    """Complex RFFT / real IRFFT input, a bad last dim, the complex axis, a zero length."""
    model, feeds = make_model("DFT", inputs, attrs, 20)
    with pytest.raises(Exception, match="DFT"):
        run_ort(model, feeds)


# --------------------------------------------------------------------------------------------
# STFT
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 64, 1), (2, 50, 1), (2, 50, 2)])
@pytest.mark.parametrize("step", [1, 7])
@pytest.mark.parametrize("frame, window", [(16, None), (None, 16), (16, 16), (15, None)])
@pytest.mark.parametrize("onesided", [0, 1])
def test_stft(dtype, shape, step, frame, window, onesided):
    """Frames from frame_length and/or window, one- and two-sided, real and complex signals."""
    signal = RNG.normal(size=shape).astype(dtype)
    win = None if window is None else RNG.random(window).astype(dtype)
    frame_length = None if frame is None else scalar(frame)
    compare("STFT", [signal, scalar(step), win, frame_length], {"onesided": onesided}, 17)


def test_stft_default_frame_is_whole_signal():
    """Without window and frame_length the frame is the whole signal (onnxruntime rejects
    this; the reference follows the spec)."""
    signal = RNG.normal(size=(2, 20, 1)).astype(np.float32)
    (got,) = compare("STFT", [signal, scalar(3)], {}, 17, oracle="ref")
    assert got.shape == (2, 1, 11, 2)


@pytest.mark.parametrize("inputs", [
    [np.zeros((2, 8, 1), np.float32), scalar(0), None, scalar(4)],
    [np.zeros((2, 8, 1), np.float32), scalar(2), None, scalar(9)],
    [np.zeros((2, 8, 1), np.float32), scalar(2), np.ones(4, np.float32), scalar(5)],
    [np.zeros((8, 1), np.float32), scalar(2), None, scalar(4)],
])
def test_stft_invalid(inputs):
    """Zero step, frame longer than the signal, window/frame_length mismatch, bad rank."""
    model, feeds = make_model("STFT", inputs, {}, 17)
    with pytest.raises(Exception, match="STFT"):
        run_ort(model, feeds)


# --------------------------------------------------------------------------------------------
# MelWeightMatrix and windows
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    (8, 16, 8192, 0.0, 4096.0), (10, 256, 16000, 20.0, 8000.0), (40, 512, 22050, 0.0, 11025.0),
    (3, 33, 1000, 100.0, 400.0), (12, 64, 8000, 300.0, 3000.0),
])
@pytest.mark.parametrize("output_datatype", [1, 11, 7, 2])
@pytest.mark.parametrize("int_type", [np.int32, np.int64])
def test_mel_weight_matrix(args, output_datatype, int_type):
    """Triangular filter banks for several ranges, output and input types."""
    bins, length, rate, low, high = args
    inputs = [scalar(bins, int_type), scalar(length, int_type), scalar(rate, int_type),
              np.array(low, np.float32), np.array(high, np.float32)]
    check("MelWeightMatrix", inputs, {"output_datatype": output_datatype}, 17)


def test_mel_weight_matrix_invalid():
    """An upper edge beyond the Nyquist bins and a bad output type fail."""
    inputs = [scalar(8), scalar(16), scalar(8000), np.array(0, np.float32),
              np.array(7000, np.float32)]
    model, feeds = make_model("MelWeightMatrix", inputs, {}, 17)
    with pytest.raises(Exception, match="MelWeightMatrix"):
        run_ort(model, feeds)
    inputs[-1] = np.array(4000, np.float32)
    model, feeds = make_model("MelWeightMatrix", inputs, {"output_datatype": 8}, 17)
    with pytest.raises(Exception, match="MelWeightMatrix"):
        run_ort(model, feeds)


@pytest.mark.parametrize("op", ["HannWindow", "HammingWindow", "BlackmanWindow"])
@pytest.mark.parametrize("size", [0, 1, 2, 5, 64])
@pytest.mark.parametrize("periodic", [0, 1])
@pytest.mark.parametrize("output_datatype", [1, 11, 7, 2, 3])
def test_windows(op, size, periodic, output_datatype):
    """Periodic/symmetric windows of every size (1 symmetric is NaN) and output type; integer
    outputs keep the exact peak of 1."""
    attrs = {"periodic": periodic, "output_datatype": output_datatype}
    compare(op, [scalar(size, np.int32)], attrs, 17, atol=1e-6)


@pytest.mark.parametrize("op", ["HannWindow", "BlackmanWindow"])
def test_windows_half_types(op):
    """float16 and bfloat16 outputs round the float64 window."""
    model, feeds = make_model(op, [scalar(16)], {}, 17)
    (want,) = run_onnxruntime(model, feeds)
    for element_type in (10, 16):
        model, feeds = make_model(op, [scalar(16)], {"output_datatype": element_type}, 17)
        (got,) = run_ort(model, feeds)
        np.testing.assert_allclose(got.astype(np.float32), want, atol=1e-2)


def test_window_invalid_type():
    """A non-numeric output_datatype fails at session creation."""
    model, feeds = make_model("HannWindow", [scalar(4)], {"output_datatype": 8}, 17)
    with pytest.raises(Exception, match="HannWindow"):
        run_ort(model, feeds)
