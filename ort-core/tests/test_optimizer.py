"""The optimizer framework and the basic passes: outputs at every level equal level 0's, the
graph only shrinks, and ``optimized_model_filepath`` saves a valid model."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import ort
from ort.optimizer import OptimizerContext, optimize_model, passes_for


def _model():
    nodes = [
        helper.make_node("Identity", ["x"], ["x1"]),
        helper.make_node("Add", ["x1", "bias"], ["a"]),
        helper.make_node("Identity", ["a"], ["a1"]),
        helper.make_node("Relu", ["a1"], ["y"]),
        helper.make_node("Neg", ["x"], ["unused"]),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
        [onnx.numpy_helper.from_array(np.arange(3, dtype=np.float32), "bias"),
         onnx.numpy_helper.from_array(np.ones(3, np.float32), "never_read")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)


def _session(model, level, **options):
    so = ort.SessionOptions()
    so.graph_optimization_level = level
    for key, value in options.items():
        setattr(so, key, value)
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("level", list(ort.GraphOptimizationLevel))
def test_every_level_gives_level_0_outputs(level):
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    want = _session(_model(), ort.GraphOptimizationLevel.ORT_DISABLE_ALL).run(None, {"x": x})
    got = _session(_model(), level).run(None, {"x": x})
    np.testing.assert_allclose(got[0], want[0], rtol=1e-6)


def test_basic_level_removes_identities_dead_nodes_and_unread_initializers(tmp_path):
    path = tmp_path / "opt.onnx"
    _session(_model(), ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
             optimized_model_filepath=str(path))
    saved = onnx.load(str(path))
    onnx.checker.check_model(saved)
    assert [n.op_type for n in saved.graph.node] == ["Add", "Relu"]
    assert [t.name for t in saved.graph.initializer] == ["bias"]


def test_level_0_saves_the_model_unchanged(tmp_path):
    path = tmp_path / "opt.onnx"
    _session(_model(), ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
             optimized_model_filepath=str(path))
    assert len(onnx.load(str(path)).graph.node) == 5


def test_disabled_optimizers_are_skipped():
    so = ort.SessionOptions()
    so.optimized_model_filepath = ""
    sess = ort.InferenceSession(_model().SerializeToString(), so,
                                providers=["CPUExecutionProvider"],
                                disabled_optimizers=["IdentityElimination"])
    assert "Identity" in [n.op_type for n in sess._optimized_model.graph.node]


def test_identity_feeding_a_graph_output_or_subgraph_is_kept():
    then_g = helper.make_graph([helper.make_node("Neg", ["i"], ["t"])], "t", [],
                               [helper.make_tensor_value_info("t", TensorProto.FLOAT, None)])
    nodes = [helper.make_node("Identity", ["x"], ["i"]),
             helper.make_node("Identity", ["x"], ["y"]),
             helper.make_node("If", ["c"], ["z"], then_branch=then_g, else_branch=then_g)]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2]),
                     helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2]),
         helper.make_tensor_value_info("z", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    context = OptimizerContext(has_kernel=lambda *a: True)
    optimized = optimize_model(model, 1, context)
    assert [n.op_type for n in optimized.graph.node] == ["Identity", "Identity", "If"]
    assert [name for name, _ in passes_for(0)] == []


# ------------------------------------------------------------------------------------------
# level 1: constant folding, common subexpressions, Conv folding
# ------------------------------------------------------------------------------------------

from collections import Counter  # noqa: E402

from onnx import numpy_helper  # noqa: E402

BASIC = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
F = TensorProto.FLOAT


def _graph_model(nodes, inputs, outputs, inits=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=9)


def _init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def _ops(sess_or_model):
    model = getattr(sess_or_model, "_optimized_model", sess_or_model)
    return Counter(n.op_type for n in model.graph.node)


def _same_outputs(model, feeds, level=BASIC, rtol=1e-5, atol=1e-6):
    """Run at level 0 and ``level``; assert equal outputs; return the optimized session."""
    want = _session(model, ort.GraphOptimizationLevel.ORT_DISABLE_ALL).run(None, feeds)
    sess = _session(model, level)
    for got, expected in zip(sess.run(None, feeds), want):
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol)
    onnx.checker.check_model(sess._optimized_model)
    return sess


def test_constant_folding_folds_unsqueeze_reshape_cast_chains():
    nodes = [helper.make_node("Unsqueeze", ["c", "axes"], ["u"]),
             helper.make_node("Reshape", ["u", "shape"], ["r"]),
             helper.make_node("Cast", ["r"], ["f"], to=F),
             helper.make_node("Mul", ["f", "two"], ["m"]),
             helper.make_node("Add", ["x", "m"], ["y"])]
    model = _graph_model(
        nodes, [helper.make_tensor_value_info("x", F, [2, 3])],
        [helper.make_tensor_value_info("y", F, [2, 3])],
        [_init("c", np.arange(6, dtype=np.int64)), _init("axes", np.array([0])),
         _init("shape", np.array([2, 3])), _init("two", np.float32(2))])
    sess = _same_outputs(model, {"x": np.ones((2, 3), np.float32)})
    assert _ops(sess) == {"Add": 1}
    folded = {t.name: numpy_helper.to_array(t) for t in sess._optimized_model.graph.initializer}
    np.testing.assert_array_equal(folded["m"], 2 * np.arange(6, dtype=np.float32).reshape(2, 3))


def test_constant_folding_turns_constant_nodes_feeding_nodes_into_initializers():
    nodes = [helper.make_node("Constant", [], ["c"], value_floats=[1.0, 2.0, 3.0]),
             helper.make_node("Neg", ["c"], ["n"]),
             helper.make_node("Add", ["x", "n"], ["y"])]
    model = _graph_model(nodes, [helper.make_tensor_value_info("x", F, [3])],
                         [helper.make_tensor_value_info("y", F, [3])])
    sess = _same_outputs(model, {"x": np.ones(3, np.float32)})
    assert _ops(sess) == {"Add": 1}


def _unfoldable_model(op_node, extra_inits=(), extra_inputs=()):
    nodes = [op_node, helper.make_node("Add", ["x", op_node.output[0]], ["y"])]
    return _graph_model(nodes, [helper.make_tensor_value_info("x", F, None)] + list(extra_inputs),
                        [helper.make_tensor_value_info("y", F, None)], extra_inits)


@pytest.mark.parametrize("case", ["random", "huge", "graph_input", "overridable", "subgraph"])
def test_constant_folding_leaves_what_it_must_not_fold(case):
    inits, inputs, feeds = [], [], {"x": np.ones((2, 2), np.float32)}
    if case == "random":
        node = helper.make_node("RandomNormal", [], ["r"], shape=[2, 2], seed=1.0)
    elif case == "huge":  # 2M elements: never materialized
        node = helper.make_node("ConstantOfShape", ["s"], ["r"],
                                value=helper.make_tensor("v", F, [1], [0.0]))
        inits = [_init("s", np.array([2048, 1024], np.int64))]
        feeds = {"x": np.ones((2048, 1024), np.float32)}
    elif case == "graph_input":
        node = helper.make_node("Neg", ["z"], ["r"])
        inputs = [helper.make_tensor_value_info("z", F, [2, 2])]
        feeds["z"] = np.ones((2, 2), np.float32)
    elif case == "overridable":
        node = helper.make_node("Neg", ["w"], ["r"])
        inits = [_init("w", np.ones((2, 2), np.float32))]
        inputs = [helper.make_tensor_value_info("w", F, [2, 2])]
    else:
        branch = helper.make_graph([helper.make_node("Neg", ["k"], ["o"])], "b", [],
                                   [helper.make_tensor_value_info("o", F, None)])
        node = helper.make_node("If", ["cond"], ["r"], then_branch=branch, else_branch=branch)
        inits = [_init("cond", np.array(True)), _init("k", np.ones((2, 2), np.float32))]
    model = _unfoldable_model(node, inits, inputs)
    sess = _session(model, BASIC)
    assert node.op_type in _ops(sess)
    if case != "random":
        want = _session(model, ort.GraphOptimizationLevel.ORT_DISABLE_ALL).run(None, feeds)
        np.testing.assert_allclose(sess.run(None, feeds)[0], want[0])


def test_constant_folding_keeps_nodes_producing_graph_outputs():
    nodes = [helper.make_node("Neg", ["c"], ["y"])]
    model = _graph_model(nodes, [], [helper.make_tensor_value_info("y", F, [2])],
                         [_init("c", np.ones(2, np.float32))])
    sess = _same_outputs(model, {})
    assert _ops(sess) == {"Neg": 1}


def test_shape_of_a_static_value_folds_and_a_symbolic_one_does_not():
    nodes = [helper.make_node("Shape", ["x"], ["sx"], start=1),
             helper.make_node("Shape", ["z"], ["sz"]),
             helper.make_node("Concat", ["sx", "sz"], ["y"], axis=0)]
    model = _graph_model(nodes, [helper.make_tensor_value_info("x", F, [2, 3, 4]),
                                 helper.make_tensor_value_info("z", F, ["n"])],
                         [helper.make_tensor_value_info("y", TensorProto.INT64, [3])])
    sess = _same_outputs(model, {"x": np.zeros((2, 3, 4), np.float32),
                                 "z": np.zeros(5, np.float32)})
    assert _ops(sess) == {"Shape": 1, "Concat": 1}


def test_constant_folding_skips_nodes_the_evaluation_rejects():
    session = _session(_model(), ort.GraphOptimizationLevel.ORT_DISABLE_ALL)

    def evaluate(model):
        if any(n.op_type == "Neg" for n in model.graph.node):
            raise RuntimeError("no kernel")
        return session._evaluate_constant(model)

    nodes = [helper.make_node("Neg", ["c"], ["n"]), helper.make_node("Abs", ["c"], ["a"]),
             helper.make_node("Sum", ["x", "n", "a"], ["y"])]
    model = _graph_model(nodes, [helper.make_tensor_value_info("x", F, [2])],
                         [helper.make_tensor_value_info("y", F, [2])],
                         [_init("c", np.array([1.0, -2.0], np.float32))])
    context = OptimizerContext(has_kernel=lambda *a: True, evaluate=evaluate)
    optimized = optimize_model(model, 1, context)
    assert sorted(n.op_type for n in optimized.graph.node) == ["Neg", "Sum"]


def test_cse_merges_equal_nodes_and_equal_small_constants():
    nodes = [helper.make_node("Add", ["x", "one_a"], ["a"]),
             helper.make_node("Add", ["x", "one_b"], ["b"]),
             helper.make_node("Relu", ["a"], ["ra"]), helper.make_node("Relu", ["b"], ["rb"]),
             helper.make_node("LeakyRelu", ["a"], ["la"], alpha=0.1),
             helper.make_node("LeakyRelu", ["a"], ["lb"], alpha=0.2),
             helper.make_node("Sum", ["ra", "rb", "la", "lb"], ["y"])]
    model = _graph_model(nodes, [helper.make_tensor_value_info("x", F, [4])],
                         [helper.make_tensor_value_info("y", F, [4])],
                         [_init("one_a", np.float32(1)), _init("one_b", np.float32(1))])
    sess = _same_outputs(model, {"x": np.linspace(-2, 2, 4, dtype=np.float32)})
    assert _ops(sess) == {"Add": 1, "Relu": 1, "LeakyRelu": 2, "Sum": 1}


def test_cse_keeps_random_nodes_and_duplicates_that_are_graph_outputs():
    nodes = [helper.make_node("RandomUniformLike", ["x"], ["r1"]),
             helper.make_node("RandomUniformLike", ["x"], ["r2"]),
             helper.make_node("Neg", ["x"], ["n1"]), helper.make_node("Neg", ["x"], ["y"]),
             helper.make_node("Sum", ["r1", "r2", "n1"], ["s"])]
    model = _graph_model(nodes, [helper.make_tensor_value_info("x", F, [3])],
                         [helper.make_tensor_value_info("s", F, [3]),
                          helper.make_tensor_value_info("y", F, [3])])
    sess = _session(model, BASIC)
    assert _ops(sess) == {"RandomUniformLike": 2, "Neg": 2, "Sum": 1}


def test_shape_input_merge_lets_cse_merge_shapes_of_equally_shaped_values():
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Neg", ["x"], ["b"]),
             helper.make_node("Shape", ["a"], ["sa"]), helper.make_node("Shape", ["b"], ["sb"]),
             helper.make_node("Add", ["sa", "sb"], ["y"])]
    model = _graph_model(nodes, [helper.make_tensor_value_info("x", F, ["n", 3])],
                         [helper.make_tensor_value_info("y", TensorProto.INT64, [2])])
    sess = _same_outputs(model, {"x": np.zeros((4, 3), np.float32)})
    assert _ops(sess)["Shape"] == 1


def _conv_model(tail, bias=True, conv_consumers=1, rng=np.random.default_rng(3)):
    """x -> Conv -> ``tail`` nodes reading 'c' (and writing 'y')."""
    inits = [_init("W", rng.standard_normal((4, 3, 3, 3)).astype(np.float32))]
    conv_inputs = ["x", "W"]
    if bias:
        inits.append(_init("B", rng.standard_normal(4).astype(np.float32)))
        conv_inputs.append("B")
    nodes = [helper.make_node("Conv", conv_inputs, ["c"], pads=[1, 1, 1, 1])] + tail
    outputs = [helper.make_tensor_value_info("y", F, None)]
    if conv_consumers > 1:
        outputs.append(helper.make_tensor_value_info("c", F, None))
    return nodes, inits, outputs


def _bn_stats(rng=np.random.default_rng(4)):
    return [_init("scale", rng.uniform(0.5, 1.5, 4).astype(np.float32)),
            _init("beta", rng.standard_normal(4).astype(np.float32)),
            _init("mean", rng.standard_normal(4).astype(np.float32)),
            _init("var", rng.uniform(0.5, 2, 4).astype(np.float32))]


X_IMAGE = np.random.default_rng(5).standard_normal((2, 3, 6, 6)).astype(np.float32)


@pytest.mark.parametrize("bias", [True, False])
def test_conv_bn_folds_into_the_conv(bias):
    bn = helper.make_node("BatchNormalization", ["c", "scale", "beta", "mean", "var"], ["y"],
                          epsilon=1e-3)
    nodes, inits, outputs = _conv_model([bn], bias)
    model = _graph_model(nodes, [helper.make_tensor_value_info("x", F, [2, 3, 6, 6])], outputs,
                         inits + _bn_stats())
    sess = _same_outputs(model, {"x": X_IMAGE}, rtol=1e-4, atol=1e-5)
    assert _ops(sess) == {"Conv": 1}
    assert len(sess._optimized_model.graph.initializer) == 2


def test_conv_bn_is_kept_when_the_conv_output_is_read_elsewhere():
    bn = helper.make_node("BatchNormalization", ["c", "scale", "beta", "mean", "var"], ["y"])
    nodes, inits, outputs = _conv_model([bn], conv_consumers=2)
    model = _graph_model(nodes, [helper.make_tensor_value_info("x", F, [2, 3, 6, 6])], outputs,
                         inits + _bn_stats())
    assert _ops(_session(model, BASIC)) == {"Conv": 1, "BatchNormalization": 1}


@pytest.mark.parametrize("op,shape,fold", [("Mul", (4, 1, 1), True), ("Add", (1, 4, 1, 1), True),
                                           ("Add", (), True), ("Mul", (1, 1, 1, 6), False),
                                           ("Add", (2, 4, 1, 1), False)])
def test_conv_add_and_mul_by_per_channel_constants_fold(op, shape, fold):
    rng = np.random.default_rng(6)
    nodes, inits, outputs = _conv_model([helper.make_node(op, ["c", "k"], ["y"])])
    inits.append(_init("k", rng.uniform(0.5, 1.5, shape).astype(np.float32)))
    model = _graph_model(nodes, [helper.make_tensor_value_info("x", F, [2, 3, 6, 6])], outputs,
                         inits)
    sess = _same_outputs(model, {"x": X_IMAGE}, rtol=1e-4, atol=1e-5)
    assert _ops(sess) == ({"Conv": 1} if fold else {"Conv": 1, op: 1})


def test_a_pass_that_trips_over_the_model_is_a_typed_error_naming_it(monkeypatch):
    """An unexpected exception inside a pass is Fail naming the pass and the way out, never a
    raw KeyError/IndexError from the optimizer's internals."""
    import ort.optimizer as optimizer

    def broken(model, context):
        raise KeyError("value 'x' has no producer")

    monkeypatch.setattr(optimizer, "PASSES", ((1, "BrokenPass", broken),))
    model = helper.make_model(
        helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])]),
        opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(ort.Fail, match="pass BrokenPass: KeyError.*ORT_DISABLE_ALL"):
        optimizer.optimize_model(model, 1, optimizer.OptimizerContext(has_kernel=lambda *a: True))
