"""Large initializers kept beside the model (ort.detached) and models read from a file map."""

import gc

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

import ort
from ort.detached import DETACH_BYTES, DetachedTensors, is_detached, lookup
from ort.graph import tensor_to_array

from core_models import make_model


def _conv_bn_model():
    """Conv (weights above the detach size) + BatchNormalization: level 1 folds the BN into
    new weights, a new large initializer."""
    rng = np.random.default_rng(0)
    c_in, c_out = 64, 64
    w = rng.standard_normal((c_out, c_in, 3, 3)).astype(np.float32) * 0.1
    assert w.nbytes >= DETACH_BYTES
    inits = [numpy_helper.from_array(w, "W")]
    for name, value in (("scale", rng.uniform(0.5, 1.5, c_out)), ("bias", rng.standard_normal(c_out)),
                        ("mean", rng.standard_normal(c_out)), ("var", rng.uniform(0.5, 2, c_out))):
        inits.append(numpy_helper.from_array(value.astype(np.float32), name))
    nodes = [helper.make_node("Conv", ["X", "W"], ["C"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["C", "scale", "bias", "mean", "var"], ["Y"])]
    return make_model(
        nodes, [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, c_in, 8, 8])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)], inits)


def test_stub_round_trip():
    store = DetachedTensors()
    array = np.arange(20000, dtype=np.float32).reshape(100, 200)
    stub = store.stub(array, "w")
    assert is_detached(stub) and stub.dims == [100, 200] and stub.data_type == TensorProto.FLOAT
    assert stub.ByteSize() < 200  # no data inside the protobuf
    assert tensor_to_array(stub) is lookup(stub)
    np.testing.assert_array_equal(tensor_to_array(stub), array)
    assert not tensor_to_array(stub).flags.writeable


def test_stub_without_its_store_fails_loudly():
    store = DetachedTensors()
    stub = store.stub(np.ones(20000, np.float32), "w")
    del store
    gc.collect()
    with pytest.raises(RuntimeError, match="no longer exists"):
        tensor_to_array(stub)


def test_detach_moves_only_large_numeric_tensors():
    graph = _conv_bn_model().graph
    store = DetachedTensors()
    store.detach(graph, tensor_to_array)
    detached = {t.name for t in graph.initializer if is_detached(t)}
    assert detached == {"W"}
    assert len(store) == 1


def test_session_detaches_and_outputs_match_onnxruntime(tmp_path):
    model = _conv_bn_model()
    x = np.random.default_rng(1).standard_normal((1, 64, 8, 8)).astype(np.float32)
    expected = onnxruntime.InferenceSession(model.SerializeToString(),
                                            providers=["CPUExecutionProvider"]).run(None, {"X": x})
    options = ort.SessionOptions()
    saved = tmp_path / "optimized.onnx"
    options.optimized_model_filepath = str(saved)
    path = tmp_path / "model.onnx"
    onnx.save(model, str(path))
    sess = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    assert any(is_detached(t) for t in sess._model.graph.initializer)
    assert any(is_detached(t) for t in sess._optimized_model.graph.initializer)
    np.testing.assert_allclose(sess.run(None, {"X": x})[0], expected[0], rtol=1e-4, atol=1e-4)
    # the saved optimized model carries its data: onnx checks it and onnxruntime runs it
    written = onnx.load(str(saved))
    assert not any(t.data_location == TensorProto.EXTERNAL for t in written.graph.initializer)
    assert [n.op_type for n in written.graph.node] == ["Conv"]  # BN folded into new weights
    onnx.checker.check_model(written)
    rerun = onnxruntime.InferenceSession(str(saved), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(rerun.run(None, {"X": x})[0], expected[0], rtol=1e-4, atol=1e-4)
    # the caller's model is untouched
    assert not any(is_detached(t) for t in model.graph.initializer)


def test_file_map_load_equals_bytes_load(tmp_path):
    model = _conv_bn_model()
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    from_file, _ = ort.loading.load_model(str(path))
    from_bytes, _ = ort.loading.load_model(model.SerializeToString())
    assert from_file == from_bytes
