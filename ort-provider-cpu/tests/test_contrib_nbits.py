"""MatMulNBits on the models onnxruntime's own 4-bit quantizer writes.

``onnxruntime.quantization.matmul_nbits_quantizer.MatMulNBitsQuantizer`` turns a MatMul with a
constant weight into MatMulNBits (RTN by default, HQQ with float zero points); ort must run the
result and match onnxruntime. Skipped where the quantizer (or onnxruntime) is unavailable.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import ort
from ort.testing import node_model

onnxruntime = pytest.importorskip("onnxruntime", reason="onnxruntime is the oracle here")
nbits_quantizer = pytest.importorskip(
    "onnxruntime.quantization.matmul_nbits_quantizer",
    reason="onnxruntime's MatMulNBitsQuantizer (needs onnx_ir) is unavailable", exc_type=ImportError)


def _matmul_model(k: int, n: int, seed: int = 0):
    """A model ``Y = X @ W + b`` (MatMul then Add, W and b constant) and a feed for it."""
    r = np.random.default_rng(seed)
    weight = r.standard_normal((k, n)).astype(np.float32)
    bias = r.standard_normal(n).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["X", "W"], ["XW"], name="matmul"),
             helper.make_node("Add", ["XW", "b"], ["Y"], name="add")]
    graph = helper.make_graph(
        nodes, "mm", [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["batch", 5, k])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["batch", 5, n])],
        [numpy_helper.from_array(weight, "W"), numpy_helper.from_array(bias, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    feed = {"X": r.standard_normal((2, 5, k)).astype(np.float32)}
    return model, feed


def _quantize(model, algo_config=None, **options):
    quantizer = nbits_quantizer.MatMulNBitsQuantizer(model, algo_config=algo_config, **options)
    quantizer.process()
    return quantizer.model.model


def _run_both(model, feed):
    data = model.SerializeToString()
    so = onnxruntime.SessionOptions()
    so.log_severity_level = 3
    expected = onnxruntime.InferenceSession(data, so, providers=["CPUExecutionProvider"]).run(
        None, feed)[0]
    actual = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, feed)[0]
    return actual, expected


@pytest.mark.parametrize("bits,block_size,symmetric,accuracy_level", [
    (4, 32, False, None), (4, 32, True, None), (4, 128, False, None), (4, 16, False, 4),
    (4, 64, True, 4), (8, 32, False, None), (8, 64, True, 4),
])
def test_quantizer_rtn_model_runs_and_matches(bits, block_size, symmetric, accuracy_level):
    model, feed = _matmul_model(k=96, n=24)
    float_y = _run_both(model, feed)[1]
    quantized = _quantize(model, bits=bits, block_size=block_size, is_symmetric=symmetric,
                          accuracy_level=accuracy_level)
    ops = [node.op_type for node in quantized.graph.node]
    assert "MatMulNBits" in ops, ops
    actual, expected = _run_both(quantized, feed)
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4)
    # and the quantized model still roughly computes the float model (4-bit RTN of normal
    # weights moves outputs by up to ~10% of their range; 8-bit with int8 A by ~1%)
    scale = np.abs(float_y).max()
    assert np.abs(actual - float_y).max() < (0.2 if bits == 4 else 0.03) * scale


def test_quantizer_hqq_model_with_float_zero_points():
    pytest.importorskip("torch", reason="the HQQ quantizer needs torch")
    model, feed = _matmul_model(k=128, n=16, seed=3)
    config = nbits_quantizer.HQQWeightOnlyQuantConfig(block_size=64, bits=4)
    quantized = _quantize(model, algo_config=config)
    nodes = [node for node in quantized.graph.node if node.op_type == "MatMulNBits"]
    assert nodes, [node.op_type for node in quantized.graph.node]
    actual, expected = _run_both(quantized, feed)
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4)


def _embedding_model(vocab: int, width: int, n: int, seed: int = 5):
    """A model ``Y = Gather(E, ids) @ W`` (embedding, then a projection) and a feed for it."""
    r = np.random.default_rng(seed)
    table = r.standard_normal((vocab, width)).astype(np.float32)
    weight = r.standard_normal((width, n)).astype(np.float32)
    nodes = [helper.make_node("Gather", ["E", "ids"], ["H"], axis=0, name="embed"),
             helper.make_node("MatMul", ["H", "W"], ["Y"], name="proj")]
    graph = helper.make_graph(
        nodes, "embed", [helper.make_tensor_value_info("ids", TensorProto.INT64, ["b", "s"])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["b", "s", n])],
        [numpy_helper.from_array(table, "E"), numpy_helper.from_array(weight, "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    feed = {"ids": np.array([[1, vocab - 1, 0], [7, 7, 3]], np.int64)}
    return model, feed


@pytest.mark.parametrize("symmetric", [False, True])
def test_quantizer_gather_model_runs_and_matches(symmetric):
    model, feed = _embedding_model(vocab=40, width=64, n=12)
    quantized = _quantize(model, bits=4, block_size=32, is_symmetric=symmetric,
                          op_types_to_quantize=("MatMul", "Gather"),
                          quant_axes=(("MatMul", 0), ("Gather", 1)))
    ops = sorted(node.op_type for node in quantized.graph.node)
    assert ops == ["GatherBlockQuantized", "MatMulNBits"], ops
    actual, expected = _run_both(quantized, feed)
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4)


def _nbits_session(attrs, inputs, constants=(1, 2)):
    model, feeds = node_model("MatMulNBits", inputs, attrs, domain="com.microsoft",
                              constants=constants)
    return ort.InferenceSession(model.SerializeToString(),
                                providers=["CPUExecutionProvider"]), feeds


def test_matmul_nbits_rejects_bad_weights():
    a = np.ones((2, 32), np.float32)
    b = np.zeros((4, 1, 16), np.uint8)
    scales = np.ones((4, 1), np.float32)
    with pytest.raises(ort.errors.OrtError, match="bits=3"):
        _nbits_session({"K": 32, "N": 4, "bits": 3, "block_size": 32}, [a, b, scales])
    with pytest.raises(ort.errors.OrtError, match="expected \\(N, k_blocks, blob_size\\)"):
        _nbits_session({"K": 32, "N": 4, "bits": 4, "block_size": 16}, [a, b, scales])
    session, feeds = _nbits_session({"K": 32, "N": 4, "bits": 4, "block_size": 32},
                                    [a, b, scales])
    (y,) = session.run(None, feeds)
    np.testing.assert_array_equal(y, np.full((2, 4), -8.0 * 32, np.float32))


def test_matmul_bnb4_float16_computes_in_float32():
    """onnxruntime's CPU MatMulBnb4 takes float A only; ort also runs float16 A (computed in
    float32, rounded once), which must equal the float32 result rounded."""
    r = np.random.default_rng(9)
    b = r.integers(0, 256, 8 * 32 // 2, dtype=np.uint8)
    absmax = (0.5 + r.random(8 * 32 // 16)).astype(np.float16)  # exact in both types
    a = r.standard_normal((3, 32)).astype(np.float16)
    attrs = {"K": 32, "N": 8, "block_size": 16, "quant_type": 1}
    outputs = []
    for dtype in (np.float32, np.float16):
        model, feeds = node_model("MatMulBnb4", [a.astype(dtype), b, absmax.astype(dtype)],
                                  attrs, domain="com.microsoft", constants=(1, 2))
        session = ort.InferenceSession(model.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
        outputs.append(session.run(None, feeds)[0])
    assert outputs[1].dtype == np.float16
    np.testing.assert_array_equal(outputs[1], outputs[0].astype(np.float16))
