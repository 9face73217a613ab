"""Large initializers kept beside the model by the session that loaded it (ort.ir.weights), the
reserved ``ort:`` locations no model may name, and models read from a file map."""

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

import ort
from ort.ir import DETACH_BYTES, WeightStore, load_model, tensor_to_array
from ort.ir.tensors import reserved_location

from ort.testing import make_model


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
    store = WeightStore()
    array = np.arange(20000, dtype=np.float32).reshape(100, 200)
    stub = store.stub(array, "w")
    assert store.is_stub(stub) and stub.dims == [100, 200] and stub.data_type == TensorProto.FLOAT
    assert stub.ByteSize() < 200  # no data inside the protobuf
    assert tensor_to_array(stub, store) is store.resolve(reserved_location(stub))
    np.testing.assert_array_equal(tensor_to_array(stub, store), array)
    assert not tensor_to_array(stub, store).flags.writeable


def test_stub_resolves_only_against_its_own_store():
    store, other = WeightStore(), WeightStore()
    stub = store.stub(np.ones(20000, np.float32), "w")
    other.stub(np.zeros(20000, np.float32), "w")  # same number inside another store
    for wrong in (None, other):
        with pytest.raises(ort.Fail, match="reserved"):
            tensor_to_array(stub, wrong)


def test_detach_moves_only_large_numeric_tensors():
    graph = _conv_bn_model().graph
    store = WeightStore()
    store.detach(graph)
    detached = {t.name for t in graph.initializer if store.is_stub(t)}
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
    assert any(sess._weights.is_stub(t) for t in sess._model.graph.initializer)
    assert any(sess._weights.is_stub(t) for t in sess._optimized_model.graph.initializer)
    np.testing.assert_allclose(sess.run(None, {"X": x})[0], expected[0], rtol=1e-4, atol=1e-4)
    # the saved optimized model carries its data: onnx checks it and onnxruntime runs it
    written = onnx.load(str(saved))
    assert not any(t.data_location == TensorProto.EXTERNAL for t in written.graph.initializer)
    assert [n.op_type for n in written.graph.node] == ["Conv"]  # BN folded into new weights
    onnx.checker.check_model(written)
    rerun = onnxruntime.InferenceSession(str(saved), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(rerun.run(None, {"X": x})[0], expected[0], rtol=1e-4, atol=1e-4)
    # the caller's model is untouched
    assert not any(reserved_location(t) for t in model.graph.initializer)


def test_file_map_load_equals_bytes_load(tmp_path):
    model = _conv_bn_model()
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    from_file, _ = load_model(str(path))
    from_bytes, _ = load_model(model.SerializeToString())
    assert from_file == from_bytes


def _naming(location: str, dims=(64, 64, 3, 3)) -> onnx.ModelProto:
    """The Conv+BN model whose weight claims to live at external ``location``."""
    model = _conv_bn_model()
    weight = model.graph.initializer[0]
    weight.ClearField("raw_data")
    weight.ClearField("float_data")
    del weight.dims[:]
    weight.dims.extend(dims)
    weight.data_location = TensorProto.EXTERNAL
    entry = weight.external_data.add()
    entry.key, entry.value = "location", location
    return model


@pytest.mark.parametrize("location", [
    "ort:detached/0", "ort:detached/1", "ort:weights/0", "ort:weights/00000000deadbeef/0",
    "ort:", "ort:anything", "ort:weights/../../etc/passwd"])
@pytest.mark.parametrize("form", ["bytes", "proto", "file"])
def test_models_cannot_name_internal_weight_locations(location, form, tmp_path):
    """A model naming an internal location is refused with a typed error, in every form it
    can reach a session, and whatever other sessions hold."""
    victim = ort.InferenceSession(_conv_bn_model().SerializeToString())
    assert len(victim._weights) >= 1
    model = _naming(location)
    if form == "bytes":
        source = model.SerializeToString()
    elif form == "proto":
        source = model
    else:
        source = str(tmp_path / "hostile.onnx")
        onnx.save(model, source)
    with pytest.raises(ort.Fail, match="reserved"):
        ort.InferenceSession(source)


def test_another_sessions_stub_location_is_refused():
    """The exact location of a live session's weight, copied into a model, reads nothing."""
    victim = ort.InferenceSession(_conv_bn_model().SerializeToString())
    stolen = next(reserved_location(t) for t in victim._model.graph.initializer
                  if victim._weights.is_stub(t))
    with pytest.raises(ort.Fail, match="reserved"):
        ort.InferenceSession(_naming(stolen).SerializeToString())
    # and below the loader: a graph built with another store cannot read it either
    stub = next(t for t in victim._model.graph.initializer if victim._weights.is_stub(t))
    with pytest.raises(ort.Fail, match="reserved"):
        tensor_to_array(stub, WeightStore())


def _external(name: str, location: str, dims=(64, 64, 3, 3)) -> TensorProto:
    tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=list(dims),
                         data_location=TensorProto.EXTERNAL)
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", location
    return tensor


def _hostile_places(location: str) -> dict[str, onnx.ModelProto]:
    """Every place a model can hold a tensor, each naming ``location``."""
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [64, 64, 3, 3])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)
    cond = helper.make_tensor_value_info("C", TensorProto.BOOL, [])
    places = {"initializer": _naming(location)}
    constant = helper.make_node("Constant", [], ["K"], value=_external("K", location))
    places["constant_value"] = make_model([constant, helper.make_node("Add", ["X", "K"], ["Y"])],
                                          [x], [y])
    branch = helper.make_graph([helper.make_node("Add", ["X", "W"], ["B"])], "branch", [],
                               [helper.make_tensor_value_info("B", TensorProto.FLOAT, None)],
                               [_external("W", location)])
    places["subgraph_initializer"] = make_model(
        [helper.make_node("If", ["C"], ["Y"], then_branch=branch, else_branch=branch)],
        [cond, x], [y])
    sparse = helper.make_sparse_tensor(_external("S", location, dims=(2,)),
                                       helper.make_tensor("Si", TensorProto.INT64, [2], [0, 1]),
                                       [64, 64, 3, 3])
    places["sparse_values"] = make_model([helper.make_node("Add", ["X", "S"], ["Y"])], [x], [y])
    places["sparse_values"].graph.sparse_initializer.append(sparse)
    function = onnx.FunctionProto(name="Steal", domain="evil", input=["A"], output=["Z"])
    function.node.extend([helper.make_node("Constant", [], ["T"], value=_external("T", location)),
                          helper.make_node("Add", ["A", "T"], ["Z"])])
    function.opset_import.append(helper.make_opsetid("", 17))
    places["function_constant"] = make_model([helper.make_node("Steal", ["X"], ["Y"],
                                                               domain="evil")], [x], [y],
                                             opsets={"evil": 1})
    places["function_constant"].functions.append(function)
    return places


@pytest.mark.parametrize("location", [
    "ort:detached/0", "ort:weights/0", "ORT:detached/0", "./ort:detached/0", " ort:detached/0",
    "ort%3Adetached/0", "file:ort:detached/0", "detached/0", "/proc/self/mem", "ort:detached/0\0"])
@pytest.mark.parametrize("place", ["initializer", "constant_value", "subgraph_initializer",
                                   "sparse_values", "function_constant"])
def test_no_form_or_place_of_a_location_reads_another_sessions_weights(place, location,
                                                                       tmp_path, monkeypatch):
    """The security test: a live session holds weights; a model naming them by any location
    form, from any place a tensor can live, is refused with a typed error (never served)."""
    monkeypatch.chdir(tmp_path)  # bytes resolve against the working directory: keep it empty
    victim = ort.InferenceSession(_conv_bn_model().SerializeToString())
    assert len(victim._weights) >= 1
    hostile = _hostile_places(location)[place]
    for source in (hostile.SerializeToString(), hostile):
        with pytest.raises(ort.OrtError):
            ort.InferenceSession(source)
