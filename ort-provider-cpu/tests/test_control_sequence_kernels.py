"""Control flow (If, Loop, Scan, SequenceMap) and Sequence/Optional kernels against onnxruntime,
through the real session: sequences in and out, outer-scope values, nested subgraphs."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import ort
from ort.testing import assert_outputs_match, make_model, run_onnxruntime, run_ort

FLOAT = TensorProto.FLOAT
INT64 = TensorProto.INT64
BOOL = TensorProto.BOOL


def _model(nodes, inputs, outputs, inits=(), opset=18):
    """:func:`ort.testing.make_model` at this module's opset 18 and IR version 9."""
    return make_model(nodes, inputs, outputs, inits, opset=opset, ir_version=9)


def _both(model, feeds):
    return run_ort(model, feeds), run_onnxruntime(model, feeds)


def _assert_same(ours, theirs):
    """Ours match onnxruntime's outputs (:func:`ort.testing.assert_outputs_match`), every
    tensor (in sequences too) an ndarray."""
    assert_outputs_match(ours, theirs, rtol=1e-6, atol=0)
    for got in ours:
        items = got if isinstance(got, list) else [] if got is None else [got]
        assert all(isinstance(item, np.ndarray) for item in items), [type(i) for i in items]


def _tensor(name, elem=FLOAT, shape=None):
    return helper.make_tensor_value_info(name, elem, shape)


def _seq(name, elem=FLOAT):
    return helper.make_tensor_sequence_value_info(name, elem, None)


# -- If ---------------------------------------------------------------------------------------


def _if_model():
    """If(cond): then = x + outer_y (outer scope), else = nested If on x * 2."""
    then_g = helper.make_graph([helper.make_node("Add", ["x", "y"], ["t"])], "then", [],
                               [_tensor("t")])
    inner_then = helper.make_graph([helper.make_node("Mul", ["x", "two"], ["m"])], "it", [],
                                   [_tensor("m")])
    inner_else = helper.make_graph([helper.make_node("Neg", ["y"], ["n"])], "ie", [],
                                   [_tensor("n")])
    else_g = helper.make_graph(
        [helper.make_node("If", ["cond2"], ["e"], then_branch=inner_then, else_branch=inner_else)],
        "else", [], [_tensor("e")])
    node = helper.make_node("If", ["cond"], ["out"], then_branch=then_g, else_branch=else_g)
    two = onnx.numpy_helper.from_array(np.array(2.0, np.float32), "two")
    return _model([node], [_tensor("cond", BOOL, []), _tensor("cond2", BOOL, []),
                           _tensor("x", FLOAT, [3]), _tensor("y", FLOAT, [3])],
                  [_tensor("out")], [two])


@pytest.mark.parametrize("cond,cond2", [(True, True), (False, True), (False, False)])
def test_if_branches_read_outer_scope_and_nest(cond, cond2):
    x = np.array([1, 2, 3], np.float32)
    y = np.array([10, 20, 30], np.float32)
    feeds = {"cond": np.array(cond), "cond2": np.array(cond2), "x": x, "y": y}
    ours, theirs = _both(_if_model(), feeds)
    _assert_same(ours, theirs)
    np.testing.assert_array_equal(x, [1, 2, 3])  # caller's arrays untouched


def test_if_condition_with_two_elements_is_an_error_and_session_survives():
    then_g = helper.make_graph([helper.make_node("Identity", ["x"], ["t"])], "t", [], [_tensor("t")])
    else_g = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "e", [], [_tensor("e")])
    node = helper.make_node("If", ["cond"], ["out"], then_branch=then_g, else_branch=else_g)
    model = _model([node], [_tensor("cond", BOOL, None), _tensor("x", FLOAT, [3])],
                   [_tensor("out")])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.ones(3, np.float32)
    with pytest.raises(ort.Fail, match="exactly one element"):
        sess.run(None, {"cond": np.array([True, False]), "x": x})
    assert sess.run(None, {"cond": np.array([False]), "x": x})[0].tolist() == [-1, -1, -1]


# -- Loop -------------------------------------------------------------------------------------


def _loop_model(with_cond_stop: bool):
    """Loop: acc += x * i (x from the outer scope); scan output acc per step; the body stops
    when acc exceeds a limit if ``with_cond_stop``."""
    nodes = [
        helper.make_node("Cast", ["i"], ["i_f"], to=FLOAT),
        helper.make_node("Mul", ["x", "i_f"], ["xi"]),
        helper.make_node("Add", ["acc_in", "xi"], ["acc_out"]),
        helper.make_node("Identity", ["acc_out"], ["scan_out"]),
    ]
    if with_cond_stop:
        nodes += [helper.make_node("ReduceSum", ["acc_out"], ["total"], keepdims=0),
                  helper.make_node("Less", ["total", "limit"], ["cond_out"])]
    else:
        nodes += [helper.make_node("Identity", ["cond_in"], ["cond_out"])]
    body = helper.make_graph(
        nodes, "body",
        [_tensor("i", INT64, []), _tensor("cond_in", BOOL, []), _tensor("acc_in", FLOAT, [2])],
        [_tensor("cond_out", BOOL, []), _tensor("acc_out", FLOAT, [2]),
         _tensor("scan_out", FLOAT, [2])])
    node = helper.make_node("Loop", ["M", "cond", "acc0"], ["acc", "scans"], body=body)
    limit = onnx.numpy_helper.from_array(np.array(20.0, np.float32), "limit")
    return _model([node], [_tensor("M", INT64, []), _tensor("cond", BOOL, []),
                           _tensor("acc0", FLOAT, [2]), _tensor("x", FLOAT, [2])],
                  [_tensor("acc"), _tensor("scans")], [limit])


@pytest.mark.parametrize("trips", [0, 1, 5])
@pytest.mark.parametrize("with_cond_stop", [False, True])
def test_loop_trip_count_condition_and_scan_outputs(trips, with_cond_stop):
    feeds = {"M": np.array(trips, np.int64), "cond": np.array(True),
             "acc0": np.array([1, 2], np.float32), "x": np.array([1, 3], np.float32)}
    ours, theirs = _both(_loop_model(with_cond_stop), feeds)
    _assert_same(ours, theirs)


def test_loop_with_false_initial_condition_runs_no_iteration():
    feeds = {"M": np.array(5, np.int64), "cond": np.array(False),
             "acc0": np.array([1, 2], np.float32), "x": np.array([1, 3], np.float32)}
    ours, theirs = _both(_loop_model(False), feeds)
    _assert_same(ours, theirs)
    assert ours[1].shape == (0, 2)


def test_loop_builds_a_sequence():
    """Loop 13+: a sequence as loop-carried value (SequenceInsert per iteration)."""
    body = helper.make_graph(
        [helper.make_node("Cast", ["i"], ["f"], to=FLOAT),
         helper.make_node("SequenceInsert", ["s_in", "f"], ["s_out"]),
         helper.make_node("Identity", ["c_in"], ["c_out"])],
        "body", [_tensor("i", INT64, []), _tensor("c_in", BOOL, []), _seq("s_in")],
        [_tensor("c_out", BOOL, []), _seq("s_out")])
    nodes = [helper.make_node("SequenceEmpty", [], ["empty"], dtype=FLOAT),
             helper.make_node("Loop", ["M", "", "empty"], ["seq"], body=body)]
    model = _model(nodes, [_tensor("M", INT64, [])], [_seq("seq")])
    ours, theirs = _both(model, {"M": np.array(4, np.int64)})
    _assert_same(ours, theirs)
    assert [float(v) for v in ours[0]] == [0, 1, 2, 3]


# -- Scan -------------------------------------------------------------------------------------


def _scan_model(opset, **attrs):
    """Cumulative sum over the scan axis; second scan output is the running state * 2."""
    body = helper.make_graph(
        [helper.make_node("Add", ["s_in", "x_t"], ["s_out"]),
         helper.make_node("Mul", ["s_out", "two"], ["y_t"])],
        "body", [_tensor("s_in", FLOAT, [2]), _tensor("x_t", FLOAT, [2])],
        [_tensor("s_out", FLOAT, [2]), _tensor("y_t", FLOAT, [2])])
    two = onnx.numpy_helper.from_array(np.array(2.0, np.float32), "two")
    inputs = ["s0", "xs"] if opset >= 9 else ["", "s0", "xs"]
    node = helper.make_node("Scan", inputs, ["s", "ys"], body=body, num_scan_inputs=1, **attrs)
    return _model([node], [_tensor("s0", FLOAT, None), _tensor("xs", FLOAT, None)],
                  [_tensor("s"), _tensor("ys")], [two], opset=opset)


@pytest.mark.parametrize("attrs,xs_shape", [
    ({}, (4, 2)),
    ({"scan_input_directions": [1]}, (4, 2)),
    ({"scan_input_axes": [1]}, (2, 4)),
    ({"scan_input_axes": [-1], "scan_output_axes": [1]}, (2, 4)),
    ({"scan_output_directions": [1]}, (4, 2)),
])
def test_scan_9_axes_and_directions(attrs, xs_shape):
    xs = np.arange(np.prod(xs_shape), dtype=np.float32).reshape(xs_shape)
    feeds = {"s0": np.array([1, -1], np.float32), "xs": xs}
    ours, theirs = _both(_scan_model(16, **attrs), feeds)
    _assert_same(ours, theirs)


def test_scan_over_an_empty_sequence_returns_the_initial_state():
    """onnxruntime fails here ("Invalid dim0_offset of 0"); the spec's answer is the initial
    state and empty scan outputs."""
    model = _scan_model(16)
    s0 = np.array([1, -1], np.float32)
    state, ys = run_ort(model, {"s0": s0, "xs": np.zeros((0, 2), np.float32)})
    assert state.tolist() == [1, -1] and ys.shape == (0, 2) and ys.dtype == np.float32


def test_scan_8_batches_and_sequence_lens():
    model = _scan_model(8)
    xs = np.arange(24, dtype=np.float32).reshape(3, 4, 2)
    feeds = {"s0": np.zeros((3, 2), np.float32), "xs": xs}
    ours = run_ort(model, feeds)
    np.testing.assert_allclose(ours[0], xs.sum(axis=1))
    np.testing.assert_allclose(ours[1], np.cumsum(xs, axis=1) * 2)


# -- SequenceMap ------------------------------------------------------------------------------


def test_sequence_map_with_sequence_and_tensor_inputs():
    body = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["s"]), helper.make_node("Shape", ["s"], ["shp"])],
        "body", [_tensor("a", FLOAT, None), _tensor("b", FLOAT, None)],
        [_tensor("s", FLOAT, None), _tensor("shp", INT64, None)])
    nodes = [helper.make_node("SequenceMap", ["seq", "bias"], ["sums", "shapes"], body=body)]
    model = _model(nodes, [_seq("seq"), _tensor("bias", FLOAT, [1])],
                   [_seq("sums"), _seq("shapes", INT64)], opset=18)
    seq = [np.ones((2, 3), np.float32), np.arange(4, dtype=np.float32)]
    ours, theirs = _both(model, {"seq": seq, "bias": np.array([5], np.float32)})
    _assert_same(ours, theirs)


# -- Sequence and Optional ops ----------------------------------------------------------------


@pytest.mark.parametrize("position", [None, 0, -1, 2])
def test_sequence_insert_at_erase_length(position):
    pos_inputs = [] if position is None else ["pos"]
    nodes = [
        helper.make_node("SequenceConstruct", ["a", "b"], ["s"]),
        helper.make_node("SequenceInsert", ["s", "c"] + pos_inputs, ["s2"]),
        helper.make_node("SequenceErase", ["s2"] + ([] if position is None else ["zero"]), ["s3"]),
        helper.make_node("SequenceLength", ["s3"], ["n"]),
        helper.make_node("SequenceAt", ["s2", "minus1"], ["last"]),
    ]
    inits = [onnx.numpy_helper.from_array(np.array(0, np.int64), "zero"),
             onnx.numpy_helper.from_array(np.array(-1, np.int64), "minus1")]
    if position is not None:
        inits.append(onnx.numpy_helper.from_array(np.array(position, np.int64), "pos"))
    model = _model(nodes, [_tensor("a", FLOAT, None), _tensor("b", FLOAT, None),
                           _tensor("c", FLOAT, None)],
                   [_seq("s2"), _seq("s3"), _tensor("n", INT64), _tensor("last")], inits)
    feeds = {"a": np.ones(2, np.float32), "b": np.zeros((1, 3), np.float32),
             "c": np.arange(3, dtype=np.float32)}
    ours, theirs = _both(model, feeds)
    _assert_same(ours, theirs)


def test_sequence_at_out_of_bounds_is_an_error_and_session_survives():
    nodes = [helper.make_node("SequenceAt", ["s", "p"], ["x"])]
    model = _model(nodes, [_seq("s"), _tensor("p", INT64, [])], [_tensor("x")])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    seq = [np.ones(2, np.float32)]
    with pytest.raises(ort.Fail, match=r"out of bounds.*\[-1, 0\]"):
        sess.run(None, {"s": seq, "p": np.array(3, np.int64)})
    assert sess.run(None, {"s": seq, "p": np.array(-1, np.int64)})[0].tolist() == [1, 1]


@pytest.mark.parametrize("split,axis,keepdims", [
    (None, 0, 1), (None, 1, 0), (np.array(2, np.int64), 1, 1),
    (np.array([1, 3], np.int64), -1, 1), (np.array([0, 2, 2], np.int64), 1, 0),
])
def test_split_to_sequence_then_concat(split, axis, keepdims):
    inputs = ["x"] + ([] if split is None else ["split"])
    inits = [] if split is None else [onnx.numpy_helper.from_array(split, "split")]
    nodes = [helper.make_node("SplitToSequence", inputs, ["s"], axis=axis, keepdims=keepdims),
             helper.make_node("ConcatFromSequence", ["s"], ["cat"], axis=axis,
                              new_axis=int(split is None and not keepdims)),
             helper.make_node("ConcatFromSequence", ["s"], ["stacked"], axis=0, new_axis=1)]
    if split is not None and split.ndim == 1 and len(set(split.tolist())) > 1:
        nodes = nodes[:2]
    model = _model(nodes, [_tensor("x", FLOAT, [3, 4])],
                   [_seq("s")] + [_tensor(n.output[0]) for n in nodes[1:]], inits)
    ours, theirs = _both(model, {"x": np.arange(12, dtype=np.float32).reshape(3, 4)})
    _assert_same(ours, theirs)


def test_sequence_input_must_be_a_list():
    model = _model([helper.make_node("SequenceLength", ["s"], ["n"])], [_seq("s")],
                   [_tensor("n", INT64)])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    with pytest.raises(ort.InvalidArgument, match="feed a list of arrays"):
        sess.run(None, {"s": np.ones(3, np.float32)})
    assert sess.run(None, {"s": [np.ones(3, np.float32), [1.0, 2.0]]})[0] == 2
    with pytest.raises(ort.InvalidArgument, match="Unexpected input data type"):
        sess.run(None, {"s": [np.ones(3, np.int64)]})


def test_sequence_output_never_aliases_the_callers_arrays():
    model = _model([helper.make_node("Identity", ["s"], ["t"])], [_seq("s")], [_seq("t")],
                   opset=16)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    item = np.ones(3, np.float32)
    out = sess.run(None, {"s": [item]})[0]
    out[0][:] = 7
    assert item.tolist() == [1, 1, 1]


def _optional_model():
    opt_type = helper.make_optional_type_proto(helper.make_tensor_type_proto(FLOAT, None))
    nodes = [helper.make_node("OptionalHasElement", ["o"], ["has"]),
             helper.make_node("Optional", ["x"], ["wrapped"]),
             helper.make_node("OptionalGetElement", ["wrapped"], ["unwrapped"]),
             helper.make_node("Optional", [], ["empty"], type=helper.make_tensor_type_proto(FLOAT, None))]
    return _model(nodes, [helper.make_value_info("o", opt_type), _tensor("x", FLOAT, [2])],
                  [_tensor("has", BOOL), helper.make_value_info("wrapped", opt_type),
                   _tensor("unwrapped"), helper.make_value_info("empty", opt_type)])


@pytest.mark.parametrize("value", [None, np.ones(3, np.float32)])
def test_optional_ops(value):
    feeds = {"o": value, "x": np.array([1, 2], np.float32)}
    ours = run_ort(_optional_model(), feeds)
    assert bool(ours[0]) is (value is not None)
    assert ours[1].tolist() == [1, 2] and ours[2].tolist() == [1, 2]
    assert ours[3] is None


def test_optional_get_element_of_empty_optional_is_an_error():
    opt_type = helper.make_optional_type_proto(helper.make_tensor_type_proto(FLOAT, None))
    model = _model([helper.make_node("OptionalGetElement", ["o"], ["x"])],
                   [helper.make_value_info("o", opt_type)], [_tensor("x")])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    with pytest.raises(ort.Fail, match="optional input is empty"):
        sess.run(None, {"o": None})
    assert sess.run(None, {"o": np.ones(1, np.float32)})[0].tolist() == [1]


def test_sequence_items_are_checked_for_element_type_only_like_onnxruntime():
    """Declared item shapes inside a sequence are not enforced (onnxruntime ignores them)."""
    opt = helper.make_optional_type_proto(
        helper.make_sequence_type_proto(helper.make_tensor_type_proto(FLOAT, ["N"])))
    nodes = [helper.make_node("OptionalHasElement", ["o"], ["h"])]
    model = _model(nodes, [helper.make_value_info("o", opt)], [_tensor("h", BOOL)])
    seq = [np.ones((2, 3), np.float32)]
    for value, expected in ((None, False), (seq, True)):
        ours, theirs = _both(model, {"o": value})
        _assert_same(ours, theirs)
        assert bool(ours[0]) is expected


def test_sequence_ortvalue_round_trip():
    model = _model([helper.make_node("Identity", ["s"], ["t"])], [_seq("s")], [_seq("t")],
                   opset=16)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (out,) = sess.run_with_ort_values(None, {"s": [np.ones(2, np.float32)]})
    assert out.is_tensor_sequence() and not out.is_tensor()
    assert out.data_type() == "seq(tensor(float))"
    (again,) = sess.run_with_ort_values(None, {"s": out})
    assert again.value[0].tolist() == [1, 1]
