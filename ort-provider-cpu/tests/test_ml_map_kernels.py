"""ZipMap, DictVectorizer and CastMap against onnxruntime, with map and seq(map) values going in
and out of the session as dicts and lists of dicts."""

import numpy as np
import onnxruntime
import pytest
from onnx import TensorProto, helper

import ort
from ort.testing import assert_outputs_match, make_model, run_ort

ML = "ai.onnx.ml"


def _map_type(key, value):
    return helper.make_map_type_proto(key, helper.make_tensor_type_proto(value, None))


def _model(node, inputs, outputs):
    """The serialized one-node model (opset 13, ai.onnx.ml 1, IR 8)."""
    return make_model([node], inputs, outputs, opset=13, opsets={ML: 1},
                      ir_version=8).SerializeToString()


def _both(model, feeds):
    """Ours and onnxruntime's outputs (the sessions are made here: both must declare the same
    inputs and outputs)."""
    ours = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    theirs = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    assert [(a.name, a.type) for a in ours.get_inputs() + ours.get_outputs()] == \
        [(a.name, a.type) for a in theirs.get_inputs() + theirs.get_outputs()]
    return ours.run(None, feeds), theirs.run(None, feeds)


@pytest.mark.parametrize("labels", [{"classlabels_int64s": [0, 1, 7]},
                                    {"classlabels_strings": ["a", "b", "c"]}])
@pytest.mark.parametrize("shape", [(4, 3), (3,), (0, 3)])
def test_zipmap(labels, shape):
    key = TensorProto.INT64 if "classlabels_int64s" in labels else TensorProto.STRING
    node = helper.make_node("ZipMap", ["x"], ["z"], domain=ML, **labels)
    model = _model(node, [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
                   [helper.make_value_info("z", helper.make_sequence_type_proto(
                       _map_type(key, TensorProto.FLOAT)))])
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    ours, theirs = _both(model, {"x": x})
    assert_outputs_match(ours, theirs, rtol=0, atol=0)
    assert all(type(v) is float for row in ours[0] for v in row.values())


def test_zipmap_with_wrong_column_count_is_an_error():
    node = helper.make_node("ZipMap", ["x"], ["z"], domain=ML, classlabels_int64s=[0, 1])
    model = _model(node, [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
                   [helper.make_value_info("z", helper.make_sequence_type_proto(
                       _map_type(TensorProto.INT64, TensorProto.FLOAT)))])
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    with pytest.raises(ort.Fail, match="must have 2 columns"):
        sess.run(None, {"x": np.ones((1, 3), np.float32)})


def test_zipmap_needs_exactly_one_label_attribute():
    node = helper.make_node("ZipMap", ["x"], ["z"], domain=ML)
    model = _model(node, [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
                   [helper.make_value_info("z", helper.make_sequence_type_proto(
                       _map_type(TensorProto.INT64, TensorProto.FLOAT)))])
    with pytest.raises(ort.InvalidGraph, match="exactly one of"):
        ort.InferenceSession(model, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("key,vocab,value_type,feed", [
    (TensorProto.STRING, {"string_vocabulary": ["a", "c", "b", "z"]}, TensorProto.FLOAT,
     {"a": 4.0, "c": 8.0}),
    (TensorProto.INT64, {"int64_vocabulary": [5, 3, 1]}, TensorProto.FLOAT,
     {5: 1.5, 7: 2.0, 1: 3}),
])
def test_dict_vectorizer(key, vocab, value_type, feed):
    node = helper.make_node("DictVectorizer", ["x"], ["y"], domain=ML, **vocab)
    model = _model(node, [helper.make_value_info("x", _map_type(key, value_type))],
                   [helper.make_tensor_value_info("y", value_type, None)])
    ours, theirs = _both(model, {"x": feed})
    assert isinstance(ours[0], np.ndarray), type(ours[0])
    assert_outputs_match(ours, theirs, rtol=0, atol=0)


def test_dict_vectorizer_int64_values():
    """onnxruntime's Python API types every dict value as float, so it cannot feed
    map(string, tensor(int64)); the spec's answer is checked instead."""
    node = helper.make_node("DictVectorizer", ["x"], ["y"], domain=ML, string_vocabulary=["x", "y"])
    model = _model(node, [helper.make_value_info("x", _map_type(TensorProto.STRING, TensorProto.INT64))],
                   [helper.make_tensor_value_info("y", TensorProto.INT64, None)])
    (y,) = run_ort(model, {"x": {"y": 3}})
    assert y.dtype == np.int64 and y.tolist() == [[0, 3]]


def test_map_feed_with_wrong_key_type_is_refused_and_session_survives():
    node = helper.make_node("DictVectorizer", ["x"], ["y"], domain=ML, int64_vocabulary=[1, 2])
    model = _model(node, [helper.make_value_info("x", _map_type(TensorProto.INT64, TensorProto.FLOAT))],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    for bad in ({"1": 1.0}, {1.5: 1.0}, [1, 2], {1: "a"}):
        with pytest.raises(ort.InvalidArgument, match="map\\(int64,tensor\\(float\\)\\)"):
            sess.run(None, {"x": bad})
    np.testing.assert_array_equal(sess.run(None, {"x": {np.int64(2): 5}})[0], [[0, 5]])


@pytest.mark.parametrize("cast_to,map_form,max_map,out_type", [
    ("TO_FLOAT", "DENSE", 1, TensorProto.FLOAT),
    ("TO_FLOAT", "SPARSE", 6, TensorProto.FLOAT),
    ("TO_INT64", "DENSE", 1, TensorProto.INT64),
    ("TO_STRING", "DENSE", 1, TensorProto.STRING),
])
def test_cast_map_float_values(cast_to, map_form, max_map, out_type):
    node = helper.make_node("CastMap", ["x"], ["y"], domain=ML, cast_to=cast_to,
                            map_form=map_form, max_map=max_map)
    model = _model(node, [helper.make_value_info("x", _map_type(TensorProto.INT64, TensorProto.FLOAT))],
                   [helper.make_tensor_value_info("y", out_type, None)])
    ours, theirs = _both(model, {"x": {3: 8.5, 1: 4.0, 0: -2.25}})
    assert isinstance(ours[0], np.ndarray), type(ours[0])
    assert_outputs_match(ours, theirs, rtol=0, atol=0)


def test_cast_map_string_values():
    """onnxruntime's Python API cannot even feed map(int64, string); ort can."""
    node = helper.make_node("CastMap", ["x"], ["y"], domain=ML, cast_to="TO_FLOAT",
                            map_form="SPARSE", max_map=3)
    model = _model(node, [helper.make_value_info("x", _map_type(TensorProto.INT64, TensorProto.STRING))],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(sess.run(None, {"x": {2: "7.5", 0: "2"}})[0], [[2, 0, 7.5]])
    with pytest.raises(ort.Fail, match="outside the SPARSE range"):
        sess.run(None, {"x": {5: "1"}})


def test_seq_of_maps_ortvalue():
    node = helper.make_node("ZipMap", ["x"], ["z"], domain=ML, classlabels_int64s=[0, 1])
    model = _model(node, [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
                   [helper.make_value_info("z", helper.make_sequence_type_proto(
                       _map_type(TensorProto.INT64, TensorProto.FLOAT)))])
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    (value,) = sess.run_with_ort_values(None, {"x": np.ones((1, 2), np.float32)})
    assert value.data_type() == "seq(map(int64,tensor(float)))"
    assert not value.is_tensor() and not value.is_tensor_sequence()
    with pytest.raises(ort.InvalidArgument, match="Only OrtValues that are Tensors"):
        value.numpy()
