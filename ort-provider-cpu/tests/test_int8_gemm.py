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
from compiled_checks import qlinear_conv_inputs, three_way
from ort.testing import node_model

pytest.importorskip("numba")

from ort_provider_cpu.kernels import int8_gemm  # noqa: E402

pytestmark = pytest.mark.skipif(not int8_gemm.vnni_available(),
                                reason="this CPU has no AVX-512 VNNI (or ORT_CPU_VNNI=0)")

RNG = np.random.default_rng(8)
U8, I8 = np.uint8, np.int8


def _inputs(x_shape, w_shape, x_dtype=U8, w_dtype=I8, per_channel=True, bias=True):
    """QLinearConv inputs; uint8 weights get zero point 128 (centered, a signed byte)."""
    return qlinear_conv_inputs(RNG, x_shape, w_shape, x_dtype, w_dtype, per_channel, bias,
                               128 if w_dtype == U8 else 0)


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

    def spy(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
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
    # 1x1 kernels packed from the planes: odd channels and positions, signed X, per tensor
    dict(x=(2, 5, 7, 9), w=(70, 5, 1, 1), attrs={}, x_dtype=I8),
    dict(x=(1, 12, 23, 17), w=(6, 12, 1, 1), attrs={}, per_channel=False),
    dict(x=(1, 7, 3, 3), w=(3, 7, 1, 1), attrs={}, x_dtype=I8, bias=False),
    dict(x=(1, 8, 9, 9), w=(16, 8, 1, 1), attrs={"strides": [2, 2]}),  # rows, not planes
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


@pytest.mark.parametrize("w_zp", [0, 178, 255])
def test_uint8_weights_far_from_128_are_shifted(w_zp, vnni_calls):
    """uint8 weights with zero point 0 center to 0..255, with 178 to -178..77: each channel is
    shifted into a signed byte and the shift's share added back from the windows' sums."""
    inputs = _inputs((1, 5, 8, 8), (6, 5, 3, 3), w_dtype=U8)
    inputs[5] = np.full(6, w_zp, U8)
    got, want, _, _ = _run(inputs, {"pads": [1, 1, 1, 1]})
    np.testing.assert_array_equal(got, want)
    inputs = _inputs((1, 5, 7, 9), (6, 5, 1, 1), w_dtype=U8)  # 1x1: from the planes
    inputs[5] = np.full(6, w_zp, U8)
    got, want, _, _ = _run(inputs, {})
    np.testing.assert_array_equal(got, want)
    assert vnni_calls and all(vnni_calls)


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
    assert int8_gemm.fits(w + 200, 1)  # one value per channel: shifted
    spread = w.copy()
    spread[0, 0, 0, 0], spread[0, 0, 0, 1] = -200, 100  # spans more than a byte
    assert not int8_gemm.fits(spread, 1)
    assert not int8_gemm.fits(np.zeros((4, 2, 3, 3, 3), np.int64), 1)


@pytest.fixture
def vnni_matmuls(monkeypatch):
    """Count VnniMatMul calls."""
    calls = []
    original = int8_gemm.VnniMatMul.__call__

    def spy(self, *args):
        calls.append(1)
        return original(self, *args)

    monkeypatch.setattr(int8_gemm.VnniMatMul, "__call__", spy)
    return calls


def _check_ms(op, inputs, constants, threads=(1,)):
    """A com.microsoft node's outputs equal bit for bit on the compiled path (each thread
    count), the numpy kernels and onnxruntime."""
    model, feeds = node_model(op, inputs, domain="com.microsoft", constants=constants)
    three_way(model, feeds, rtol=0, atol=0, threads=threads)


@pytest.mark.parametrize("a_dtype,rows,k,n", [(U8, 300, 70, 130), (I8, 5, 33, 7),
                                               (U8, 1, 768, 64)])
def test_vnni_matmul_integer_to_float(a_dtype, rows, k, n, vnni_matmuls):
    """Rows over several chunks, K not a multiple of 4, N over several column blocks, signed A
    (read with its top bit flipped), per-column scales and a bias: bit for bit."""
    info = np.iinfo(a_dtype)
    a = RNG.integers(info.min, int(info.max) + 1, (rows, k)).astype(a_dtype)
    b = RNG.integers(-128, 128, (k, n)).astype(I8)
    inputs = [a, b, np.array(0.02, np.float32), RNG.uniform(0.001, 0.01, n).astype(np.float32),
              np.array(9 if a_dtype == U8 else -4, a_dtype), np.zeros(n, I8),
              RNG.standard_normal(n).astype(np.float32)]
    _check_ms("MatMulIntegerToFloat", inputs, (1, 2, 3, 4, 5, 6))
    assert vnni_matmuls


@pytest.mark.parametrize("threads", [1, 2])
def test_vnni_dynamic_quantize_matmul(threads, monkeypatch, vnni_matmuls):
    monkeypatch.setattr(int8_gemm, "MIN_MACS_PER_PIECE", 1)  # rows split over the threads
    a = (RNG.standard_normal((2, 300, 48)) * 3).astype(np.float32)
    b = RNG.integers(-128, 128, (48, 80)).astype(I8)
    inputs = [a, b, RNG.uniform(0.001, 0.01, 80).astype(np.float32), np.zeros(80, I8),
              RNG.standard_normal(80).astype(np.float32)]
    _check_ms("DynamicQuantizeMatMul", inputs, (1, 2, 3, 4), (threads,))
    assert vnni_matmuls


@pytest.mark.parametrize("b_zp", [0, 200])
def test_vnni_matmul_with_shifted_uint8_weights(b_zp, vnni_matmuls):
    """uint8 B far from zero point 128: columns shifted into a signed byte, the shift's share
    added back from the rows' sums."""
    a = RNG.integers(0, 256, (40, 37)).astype(U8)
    b = RNG.integers(0, 256, (37, 70)).astype(U8)
    inputs = [a, b, np.array(0.02, np.float32), RNG.uniform(0.001, 0.01, 70).astype(np.float32),
              np.array(9, U8), np.full(70, b_zp, U8), RNG.standard_normal(70).astype(np.float32)]
    _check_ms("MatMulIntegerToFloat", inputs, (1, 2, 3, 4, 5, 6))
    assert vnni_matmuls


def test_matmul_fits_needs_columns_within_a_byte():
    assert int8_gemm.matmul_fits(np.full((8, 3), -128.0))
    assert int8_gemm.matmul_fits(np.full((8, 3), 255.0))  # shifted
    spread = np.zeros((8, 3))
    spread[0, 0], spread[1, 0] = -200, 100
    assert not int8_gemm.matmul_fits(spread)
    assert not int8_gemm.matmul_fits(np.zeros((2, 8, 3)))


@pytest.mark.parametrize("kernel", [(3, 3), (1, 1)])
@pytest.mark.parametrize("x_dtype,w_dtype,w_zp", [(U8, I8, 0), (I8, I8, 0), (U8, U8, 178)])
def test_vnni_conv_integer(x_dtype, w_dtype, w_zp, kernel, vnni_calls):
    """ConvInteger's int32 sums on the same path (no requantizing), shifted uint8 weights
    (onnxruntime's dynamic quantizer's U8U8) included."""
    info = np.iinfo(x_dtype)
    x = RNG.integers(info.min, int(info.max) + 1, (2, 5, 9, 8)).astype(x_dtype)
    winfo = np.iinfo(w_dtype)
    w = RNG.integers(winfo.min, int(winfo.max) + 1, (6, 5) + kernel).astype(w_dtype)
    attrs = {"pads": [1, 0, 1, 2], "strides": [1, 2]} if kernel == (3, 3) else {}
    model, feeds = node_model("ConvInteger", [x, w, np.array(7, x_dtype),
                                              np.array(w_zp, w_dtype)],
                              attrs, constants=(1, 2, 3))
    data = model.SerializeToString()
    got = ort.InferenceSession(data).run(None, feeds)[0]
    want = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"]).run(
        None, feeds)[0]
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, want)
    assert vnni_calls and all(vnni_calls)
