"""Products split over the intra-op threads (ort_provider_cpu.threaded_gemm) equal numpy's."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from ort_provider_cpu import intra_op, threaded_gemm
from ort_provider_cpu.threaded_gemm import matmul_into


@pytest.fixture
def pieces_seen(monkeypatch):
    """Record how many threads each product's pieces ran on."""
    seen = []
    original = intra_op.split_work

    def recording(work, total, threads, min_work=1):
        idents = set()

        def traced(start, stop):
            idents.add(threading.get_ident())
            return work(start, stop)

        original(traced, total, threads, min_work)
        seen.append(len(idents))

    monkeypatch.setattr(threaded_gemm, "split_work", recording)
    return seen


@pytest.mark.parametrize("m,k,n", [(512, 256, 300), (8, 1024, 4096), (3, 5, 7), (1, 4096, 2048)])
def test_2d_products_equal_numpys(m, k, n, pieces_seen):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    out = np.empty((m, n), np.float32)
    assert matmul_into(a, b, out, 2) is out
    np.testing.assert_allclose(out, a @ b, rtol=1e-5, atol=1e-4)
    if m * n * k >= 2 * threaded_gemm.MIN_MACS_PER_PIECE and max(m, n) >= 32:
        assert pieces_seen == [2]  # the work really was split
    else:
        assert pieces_seen in ([], [1])


def test_transposed_operands_and_float64():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((300, 700)).T  # Fortran-ordered view
    b = rng.standard_normal((300, 400))
    out = np.empty((700, 400))
    matmul_into(a, b, out, 3)
    np.testing.assert_allclose(out, a @ b, rtol=1e-12)


def test_stacked_products_split_the_stack(pieces_seen, monkeypatch):
    monkeypatch.setattr(threaded_gemm, "MIN_MACS_PER_PIECE", 1 << 20)  # 25M MACs: two pieces
    rng = np.random.default_rng(2)
    a = rng.standard_normal((2, 12, 128, 64)).astype(np.float32)
    b = rng.standard_normal((2, 12, 64, 128)).astype(np.float32)
    out = np.empty((2, 12, 128, 128), np.float32)
    matmul_into(a, b, out, 2)
    np.testing.assert_allclose(out, a @ b, rtol=1e-5, atol=1e-4)
    assert pieces_seen == [2]


def test_stack_times_matrix_and_broadcast_stacks():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((4, 256, 512)).astype(np.float32)
    w = rng.standard_normal((512, 384)).astype(np.float32)
    out = np.empty((4, 256, 384), np.float32)
    matmul_into(a, w, out, 2)
    np.testing.assert_allclose(out, a @ w, rtol=1e-5, atol=1e-4)
    b = rng.standard_normal((1, 512, 64)).astype(np.float32)  # broadcast stack: numpy's path
    out = np.empty((4, 256, 64), np.float32)
    matmul_into(a, b, out, 2)
    np.testing.assert_allclose(out, a @ b, rtol=1e-5, atol=1e-4)


def test_non_contiguous_output_is_written_in_place():
    rng = np.random.default_rng(4)
    a = rng.standard_normal((3, 256, 512)).astype(np.float32)
    b = rng.standard_normal((3, 512, 256)).astype(np.float32)
    base = np.zeros((3, 256, 512), np.float32)
    out = base[:, :, ::2]
    matmul_into(a, b, out, 2)
    np.testing.assert_allclose(base[:, :, ::2], a @ b, rtol=1e-5, atol=1e-4)
    assert not base[:, :, 1::2].any()


def test_matmul_node_with_two_threads_equals_one():
    from onnx import TensorProto, helper, numpy_helper

    import ort
    from ort.testing import make_model

    rng = np.random.default_rng(5)
    w = rng.standard_normal((1024, 1024)).astype(np.float32)
    model = make_model([helper.make_node("MatMul", ["X", "W"], ["Y"])],
                       [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["n", 1024])],
                       [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["n", 1024])],
                       [numpy_helper.from_array(w, "W")])
    x = rng.standard_normal((256, 1024)).astype(np.float32)
    results = []
    for threads in (1, 2):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(model.SerializeToString(), options)
        results.append(session.run(None, {"X": x})[0])
    np.testing.assert_allclose(results[1], results[0], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(results[0], x @ w, rtol=1e-5, atol=1e-3)


def test_attention_nodes_with_two_threads_equal_one():
    """com.microsoft Attention (projection and both head products split) and ONNX Attention."""
    from onnx import TensorProto, helper, numpy_helper

    import ort
    from ort.testing import make_model

    rng = np.random.default_rng(6)
    hidden, heads = 256, 4
    w = numpy_helper.from_array(rng.standard_normal((hidden, 3 * hidden)).astype(np.float32)
                                * 0.05, "W")
    bias = numpy_helper.from_array(np.zeros(3 * hidden, np.float32), "B")
    contrib = make_model(
        [helper.make_node("Attention", ["X", "W", "B"], ["Y"], domain="com.microsoft",
                          num_heads=heads)],
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [2, 256, hidden])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)], [w, bias],
        opsets={"": 17, "com.microsoft": 1})
    onnx_attention = make_model(
        [helper.make_node("Attention", ["Q", "K", "V"], ["Y"])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 8, 256, 64])
         for n in ("Q", "K", "V")],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)], opset=23)
    feeds = [{"X": rng.standard_normal((2, 256, hidden)).astype(np.float32)},
             {n: rng.standard_normal((2, 8, 256, 64)).astype(np.float32) for n in "QKV"}]
    for model, feed in zip((contrib, onnx_attention), feeds):
        results = []
        for threads in (1, 2):
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            session = ort.InferenceSession(model.SerializeToString(), options)
            results.append(session.run(None, feed)[0])
        np.testing.assert_allclose(results[1], results[0], rtol=1e-5, atol=1e-5)


def test_stacked_products_with_strided_operands(pieces_seen):
    """Winograd's 16 GEMMs run on transposed views of its buffers."""
    rng = np.random.default_rng(7)
    u = rng.standard_normal((16, 64, 64)).astype(np.float32)
    v = rng.standard_normal((64, 16, 900)).astype(np.float32)
    m = np.zeros((64, 16, 1000), np.float32)
    matmul_into(u, v.transpose(1, 0, 2), m.transpose(1, 0, 2)[:, :, :900], 2)
    np.testing.assert_allclose(m.transpose(1, 0, 2)[:, :, :900], u @ v.transpose(1, 0, 2),
                               rtol=1e-5, atol=1e-4)
    assert not m[:, :, 900:].any() and pieces_seen == [2]


@pytest.mark.parametrize("kernel,stride,group,channels", [
    (3, 1, 1, 64),    # Winograd
    (3, 2, 1, 64),    # im2col chunks
    (1, 1, 1, 128),   # pointwise
    (3, 1, 64, 64),   # depthwise
])
def test_conv_with_two_threads_equals_one(kernel, stride, group, channels):
    from onnx import TensorProto, helper, numpy_helper

    import ort
    from ort.testing import make_model

    rng = np.random.default_rng(8)
    w = rng.standard_normal((channels, channels // group, kernel, kernel)).astype(np.float32)
    model = make_model(
        [helper.make_node("Conv", ["X", "W"], ["Y"], pads=[kernel // 2] * 4,
                          strides=[stride, stride], group=group)],
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [2, channels, 40, 40])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w * 0.1, "W")])
    x = rng.standard_normal((2, channels, 40, 40)).astype(np.float32)
    results = []
    for threads, compiled in ((1, "1"), (2, "1"), (2, "0")):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(
            model.SerializeToString(), options,
            providers=[("CPUExecutionProvider", {"compiled_kernels": compiled})])
        results.append(session.run(None, {"X": x})[0])
    np.testing.assert_allclose(results[1], results[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(results[2], results[0], rtol=1e-4, atol=1e-4)


def test_panelled_products_split_their_panels(pieces_seen, monkeypatch):
    """Few rows times a constant weight (an MLP at batch 8) go through panels: those split
    over the threads too."""
    from ort_provider_cpu import skinny_gemm

    monkeypatch.setattr(skinny_gemm, "split_work", threaded_gemm.split_work)
    monkeypatch.setattr(skinny_gemm, "panels_pay", lambda: True)
    rng = np.random.default_rng(10)
    a = rng.standard_normal((8, 1024)).astype(np.float32)
    b = rng.standard_normal((1024, 4096)).astype(np.float32)
    got = skinny_gemm.PanelledWeight(b).product(a, 2)
    np.testing.assert_allclose(got, a @ b, rtol=1e-5, atol=1e-4)
    assert pieces_seen == [2]


@pytest.mark.parametrize("rows", [(3, 40), (1, 1)])
def test_fused_matmul_with_a_constant_transposed_weight_splits_and_matches(rows, pieces_seen,
                                                                         monkeypatch):
    """FusedMatMul (a tied LM head: B = W^T, a constant) runs on the intra-op threads, W^T
    laid out once, and equals onnxruntime at one and two threads."""
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    import ort
    from ort.testing import make_model

    monkeypatch.setattr(threaded_gemm, "MIN_MACS_PER_PIECE", 1)
    rng = np.random.default_rng(8)
    w = rng.standard_normal((96, 32)).astype(np.float32)
    model = make_model(
        [helper.make_node("FusedMatMul", ["X", "W"], ["Y"], domain="com.microsoft",
                          transB=1, alpha=0.5)],
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["b", "s", 32])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["b", "s", 96])],
        [numpy_helper.from_array(w, "W")],
        opsets={"": 17, "com.microsoft": 1})
    data = model.SerializeToString()
    x = rng.standard_normal(rows + (32,)).astype(np.float32)
    want = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"]).run(
        None, {"X": x})[0]
    for threads in (1, 2):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(data, options)
        for _ in range(2):  # the second run reuses the prepared W^T
            np.testing.assert_allclose(session.run(None, {"X": x})[0], want, rtol=1e-5,
                                       atol=1e-5)
    assert pieces_seen and max(pieces_seen) == 2
