"""QLinearConv on the AVX-512 VNNI integer GEMM (kernels/int8_gemm.py, int8_loops.py) against
onnxruntime (bit for bit) and the numpy kernels: 1x1, 3x3, 7x7 with strides, padding and
dilations, channel counts that are not multiples of 4, signed and unsigned X, uint8 weights
with a zero point, per-tensor and per-channel scales, several images, positions split over
threads. Skipped where the CPU lacks VNNI (the float32 BLAS path is tested everywhere by
test_quant_compiled.py)."""

from __future__ import annotations

import numpy as np
import onnxruntime
import ort
import pytest
from ort.testing import node_model

pytest.importorskip("numba")

from ort_provider_cpu.kernels import int8_gemm  # noqa: E402

pytestmark = pytest.mark.skipif(not int8_gemm.vnni_available(),
                                reason="this CPU has no AVX-512 VNNI (or ORT_CPU_VNNI=0)")

RNG = np.random.default_rng(8)
U8, I8 = np.uint8, np.int8


def _inputs(x_shape, w_shape, x_dtype=U8, w_dtype=I8, w_zp=0, per_channel=True, bias=True):
    info = np.iinfo(x_dtype)
    x = RNG.integers(info.min, int(info.max) + 1, x_shape).astype(x_dtype)
    winfo = np.iinfo(w_dtype)
    w = RNG.integers(winfo.min, int(winfo.max) + 1, w_shape).astype(w_dtype)
    if w_dtype == U8:  # centered values must fit a signed byte: w - 128 does
        w_zp = 128
    m = w_shape[0]
    scale = (RNG.uniform(0.001, 0.01, m) if per_channel else np.array(0.004)).astype(np.float32)
    w_zero = np.full(scale.shape, w_zp, w_dtype)
    x_zp = np.array(120 if x_dtype == U8 else -7, x_dtype)
    y_zp = np.array(110 if x_dtype == U8 else 3, x_dtype)
    b = RNG.integers(-20000, 20000, m).astype(np.int32) if bias else None
    return [x, np.array(0.03, np.float32), x_zp, w, scale, w_zero, np.array(0.9, np.float32),
            y_zp, b]


def _run(inputs, attrs, threads=1, options=None):
    model, feeds = node_model("QLinearConv", inputs, attrs, opset=17,
                              constants=(1, 2, 3, 4, 5, 6, 7, 8))
    data = model.SerializeToString()
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    providers = [("CPUExecutionProvider", options or {})]
    return (ort.InferenceSession(data, so, providers=providers).run(None, feeds)[0],
            onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"]).run(
                None, feeds)[0], data, feeds)


@pytest.fixture
def vnni_calls(monkeypatch):
    """Count VnniConv calls that produced the output."""
    calls = []
    original = int8_gemm.VnniConv.__call__

    def spy(self, *args):
        out = original(self, *args)
        calls.append(out is not None)
        return out

    monkeypatch.setattr(int8_gemm.VnniConv, "__call__", spy)
    return calls


@pytest.mark.parametrize("case", [
    dict(x=(1, 16, 9, 10), w=(24, 16, 1, 1), attrs={}),
    dict(x=(2, 8, 11, 9), w=(40, 8, 3, 3), attrs={"pads": [1, 1, 1, 1]}),
    dict(x=(1, 3, 23, 21), w=(16, 3, 7, 7), attrs={"pads": [3, 3, 3, 3], "strides": [2, 2]}),
    dict(x=(1, 5, 12, 13), w=(7, 5, 3, 2), attrs={"pads": [0, 1, 2, 0], "strides": [2, 1],
                                                   "dilations": [2, 1]}),
    dict(x=(1, 6, 17), w=(9, 6, 3), attrs={"pads": [1, 1], "strides": [2]}),  # 1-D
    dict(x=(3, 12, 6, 6), w=(33, 12, 3, 3), attrs={"auto_pad": "SAME_UPPER"}, bias=False),
    dict(x=(1, 4, 10, 10), w=(20, 4, 3, 3), attrs={}, x_dtype=I8),
    dict(x=(1, 4, 10, 10), w=(20, 4, 3, 3), attrs={}, w_dtype=U8, per_channel=False),
    dict(x=(1, 64, 5, 5), w=(70, 64, 3, 3), attrs={"pads": [1, 1, 1, 1]}),  # K 576, M 70
    dict(x=(1, 9, 40, 40), w=(5, 9, 1, 1), attrs={}),  # positions over several chunks
])
def test_vnni_conv_matches_onnxruntime_bit_for_bit(case, vnni_calls):
    inputs = _inputs(case["x"], case["w"], case.get("x_dtype", U8), case.get("w_dtype", I8),
                     per_channel=case.get("per_channel", True), bias=case.get("bias", True))
    got, want, data, feeds = _run(inputs, case["attrs"])
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    assert vnni_calls and all(vnni_calls)
    numpy_only = ort.InferenceSession(
        data, providers=[("CPUExecutionProvider", {"compiled_kernels": "0"})]).run(None, feeds)
    np.testing.assert_array_equal(got, numpy_only[0])


@pytest.mark.parametrize("threads", [2, 3])
def test_vnni_conv_positions_split_over_threads(threads, monkeypatch, vnni_calls):
    monkeypatch.setattr(int8_gemm, "MIN_MACS_PER_PIECE", 1)  # pieces of one chunk each
    inputs = _inputs((2, 8, 30, 30), (16, 8, 3, 3))
    got, want, _, _ = _run(inputs, {"pads": [1, 1, 1, 1]}, threads=threads)
    np.testing.assert_array_equal(got, want)
    assert vnni_calls


def test_vnni_conv_saturates_and_extreme_values(vnni_calls):
    x = np.full((1, 32, 6, 6), 255, U8)
    x[0, :, ::2] = 0
    w = np.full((8, 32, 3, 3), 127, I8)
    w[:, ::3] = -128
    inputs = [x, np.array(0.05, np.float32), np.array(0, U8), w, np.full(8, 1e-3, np.float32),
              np.zeros(8, I8), np.array(0.01, np.float32), np.array(128, U8),
              np.array([2 ** 30, -(2 ** 30), 0, 5, -5, 7, 1 << 20, -(1 << 20)], np.int32)]
    got, want, _, _ = _run(inputs, {"pads": [1, 1, 1, 1]})
    np.testing.assert_array_equal(got, want)
    assert vnni_calls


def test_weights_outside_a_signed_byte_take_the_float_path(vnni_calls):
    """uint8 weights with zero point 0 center to 0..255: not a signed byte, so no VNNI."""
    inputs = _inputs((1, 4, 8, 8), (6, 4, 3, 3), w_dtype=U8)
    inputs[5] = np.zeros(6, U8)
    got, want, _, _ = _run(inputs, {})
    np.testing.assert_array_equal(got, want)
    assert not vnni_calls


def test_switched_off_by_the_environment(monkeypatch, vnni_calls):
    monkeypatch.setenv(int8_gemm.ENV_SWITCH, "0")
    assert not int8_gemm.vnni_available()
    got, want, _, _ = _run(_inputs((1, 8, 6, 6), (8, 8, 1, 1)), {})
    np.testing.assert_array_equal(got, want)
    assert not vnni_calls


def test_fits_needs_one_group_and_byte_weights():
    w = np.zeros((4, 2, 3, 3), np.int64)
    assert int8_gemm.fits(w, 1)
    assert not int8_gemm.fits(w, 2)
    assert not int8_gemm.fits(w + 128, 1)
    assert not int8_gemm.fits(np.zeros((4, 2, 3, 3, 3), np.int64), 1)
