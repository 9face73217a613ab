"""Level-1 ``ReshapeFusion`` (computed Reshape targets become constants) and
``CastElimination`` (casts to the type a value has go): what they rewrite, what they leave,
outputs equal to level 0."""

from __future__ import annotations

from collections import Counter

import numpy as np
import ort
import pytest
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT
I64 = TensorProto.INT64
BASIC = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
RNG = np.random.default_rng(5)


def _init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def _model(nodes, inputs, outputs, inits=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _optimized(model, feeds, level=BASIC):
    """The optimized model of a session at ``level``; its outputs must equal level 0's."""
    so = ort.SessionOptions()
    so.graph_optimization_level = level
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    so0 = ort.SessionOptions()
    so0.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    plain = ort.InferenceSession(model.SerializeToString(), so0,
                                 providers=["CPUExecutionProvider"])
    for got, want in zip(sess.run(None, feeds), plain.run(None, feeds)):
        assert got.shape == want.shape
        np.testing.assert_array_equal(got, want)
    return sess._optimized_model


def _ops(model):
    return Counter(n.op_type for n in model.graph.node)


def _target(model):
    reshape = next(n for n in model.graph.node if n.op_type == "Reshape")
    tensor = next(t for t in model.graph.initializer if t.name == reshape.input[1])
    return numpy_helper.to_array(tensor).tolist()


def _dim(source, i, tag):
    """Unsqueeze(Gather(Shape(source), i)) -> u{tag}."""
    return [helper.make_node("Shape", [source], [f"s{tag}"]),
            helper.make_node("Gather", [f"s{tag}", f"i{i}"], [f"d{tag}"], axis=0),
            helper.make_node("Unsqueeze", [f"d{tag}", "axis0"], [f"u{tag}"])]


_DIM_INITS = [_init("i0", np.int64(0)), _init("i1", np.int64(1)), _init("i2", np.int64(2)),
              _init("axis0", np.array([0], np.int64))]


def test_a_view_of_its_own_dims_gets_a_constant_target():
    """x.view(x.size(0), x.size(1), 4, -1)."""
    nodes = _dim("x", 0, "a") + _dim("x", 1, "b") + [
        helper.make_node("Concat", ["ua", "ub", "h", "m1"], ["t"], axis=0),
        helper.make_node("Reshape", ["x", "t"], ["y"])]
    model = _model(nodes, [helper.make_tensor_value_info("x", F, ["B", "S", 16])],
                   [helper.make_tensor_value_info("y", F, None)],
                   _DIM_INITS + [_init("h", np.array([4], np.int64)),
                                 _init("m1", np.array([-1], np.int64))])
    optimized = _optimized(model, {"x": RNG.standard_normal((2, 3, 16)).astype(np.float32)})
    assert _ops(optimized) == {"Reshape": 1}
    assert _target(optimized) == [0, 0, 4, -1]


def test_a_dim_of_another_value_becomes_minus_one_once():
    """y.view(x.size(0), -1)-like: the element read from another value's shape is not the
    data's own dim at that position, so it becomes -1 (the only one)."""
    nodes = _dim("z", 0, "a") + [
        helper.make_node("Concat", ["ua", "c16"], ["t"], axis=0),
        helper.make_node("Reshape", ["x", "t"], ["y"])]
    model = _model(nodes, [helper.make_tensor_value_info("x", F, ["B", 4, 4]),
                           helper.make_tensor_value_info("z", F, ["N", 2])],
                   [helper.make_tensor_value_info("y", F, None)],
                   _DIM_INITS + [_init("c16", np.array([16], np.int64))])
    feeds = {"x": RNG.standard_normal((3, 4, 4)).astype(np.float32),
             "z": RNG.standard_normal((3, 2)).astype(np.float32)}
    optimized = _optimized(model, feeds)
    assert _target(optimized) == [-1, 16]
    assert "Shape" not in _ops(optimized)


def test_two_unknown_elements_or_allowzero_are_left_alone():
    nodes = _dim("z", 0, "a") + _dim("z", 1, "b") + [
        helper.make_node("Concat", ["ua", "ub"], ["t"], axis=0),
        helper.make_node("Reshape", ["x", "t"], ["y"])]
    inputs = [helper.make_tensor_value_info("x", F, ["B", 6]),
              helper.make_tensor_value_info("z", F, ["N", "M"])]
    model = _model(nodes, inputs, [helper.make_tensor_value_info("y", F, None)], _DIM_INITS)
    feeds = {"x": RNG.standard_normal((2, 6)).astype(np.float32),
             "z": RNG.standard_normal((3, 4)).astype(np.float32)}
    assert _ops(_optimized(model, feeds))["Concat"] == 1
    nodes = _dim("x", 0, "a") + [
        helper.make_node("Concat", ["ua", "m1"], ["t"], axis=0),
        helper.make_node("Reshape", ["x", "t"], ["y"], allowzero=1)]
    model = _model(nodes, [inputs[0]], [helper.make_tensor_value_info("y", F, None)],
                   _DIM_INITS + [_init("m1", np.array([-1], np.int64))])
    assert _ops(_optimized(model, {"x": feeds["x"]}))["Concat"] == 1


@pytest.mark.parametrize("source,to,removed", [
    (F, F, True), (I64, I64, True), (TensorProto.BOOL, TensorProto.BOOL, True),
    (F, TensorProto.DOUBLE, False), (I64, TensorProto.INT32, False)])
def test_a_cast_to_the_type_it_has_is_removed(source, to, removed):
    nodes = [helper.make_node("Cast", ["x"], ["c"], to=to),
             helper.make_node("Identity", ["c"], ["y"])]
    model = _model(nodes, [helper.make_tensor_value_info("x", source, [3])],
                   [helper.make_tensor_value_info("y", to, None)])
    value = np.array([1, 0, 2]).astype(helper.tensor_dtype_to_np_dtype(source))
    ops = _ops(_optimized(model, {"x": value}))
    assert ("Cast" not in ops) == removed


def test_a_noop_cast_that_is_a_graph_output_becomes_an_identity():
    model = _model([helper.make_node("Cast", ["x"], ["y"], to=F)],
                   [helper.make_tensor_value_info("x", F, [3])],
                   [helper.make_tensor_value_info("y", F, None)])
    optimized = _optimized(model, {"x": np.ones(3, np.float32)})
    assert _ops(optimized) == {"Identity": 1}


def _stft_halves(noop_first=True, second_start=65, extra_reader=False):
    """torch's ``spec[:, :65]`` and ``spec[:, 65:]`` of a [B, 130, T] value (Silero VAD's
    STFT), each after a Slice that keeps everything (``spec[0:]``)."""
    big = np.iinfo(np.int64).max
    nodes = [helper.make_node("Relu", ["x"], ["spec"])]
    source = "spec"
    if noop_first:
        nodes.append(helper.make_node("Slice", ["spec", "zero", "big", "ax0"], ["all"]))
        source = "all"
    nodes += [helper.make_node("Slice", [source, "zero", "mid", "ax1"], ["re"]),
              helper.make_node("Slice", [source, "mid2", "big", "ax1"], ["im"]),
              helper.make_node("Mul", ["re", "re"], ["re2"]),
              helper.make_node("Mul", ["im", "im"], ["im2"])]
    outputs = [helper.make_tensor_value_info("re2", F, None),
               helper.make_tensor_value_info("im2", F, None)]
    if extra_reader:
        nodes.append(helper.make_node("Neg", [source], ["z"]))
        outputs.append(helper.make_tensor_value_info("z", F, None))
    inits = [_init("zero", np.array([0], np.int64)), _init("big", np.array([big], np.int64)),
             _init("ax0", np.array([0], np.int64)), _init("ax1", np.array([1], np.int64)),
             _init("mid", np.array([65], np.int64)),
             _init("mid2", np.array([second_start], np.int64))]
    return _model(nodes, [helper.make_tensor_value_info("x", F, ["B", 130, 4])], outputs, inits)


def test_slices_tiling_an_axis_become_one_split_and_a_slice_of_everything_goes():
    feeds = {"x": RNG.standard_normal((2, 130, 4)).astype(np.float32)}
    optimized = _optimized(_stft_halves(), feeds, ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED)
    assert _ops(optimized) == {"Relu": 1, "Split": 1, "Mul": 2}
    # the no-op Slice alone at level 1
    assert "Split" not in _ops(_optimized(_stft_halves(), feeds))
    assert _ops(_optimized(_stft_halves(), feeds))["Slice"] == 2


@pytest.mark.parametrize("kw", [{"second_start": 64}, {"second_start": 66},
                                {"extra_reader": True}])
def test_overlapping_gapped_or_shared_slices_stay(kw):
    feeds = {"x": RNG.standard_normal((2, 130, 4)).astype(np.float32)}
    optimized = _optimized(_stft_halves(noop_first=False, **kw), feeds,
                           ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED)
    assert _ops(optimized)["Slice"] == 2 and "Split" not in _ops(optimized)
