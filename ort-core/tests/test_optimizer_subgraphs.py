"""The optimizer runs its passes on If/Loop/Scan bodies too, as onnxruntime does (Silero VAD
keeps its whole network in If branches): fusions inside bodies, outer-scope constants seen as
constants, outer values kept, new names that shadow no outer name, nested bodies, outputs and
the saved model's fused-op counts equal to onnxruntime's."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import ort
import pytest
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT
RNG = np.random.default_rng(7)
ort_rt = pytest.importorskip("onnxruntime")


def _ops(model):
    """Op counts over the model's graph and every subgraph."""
    counts: Counter = Counter()
    graphs = [model.graph]
    while graphs:
        graph = graphs.pop()
        for node in graph.node:
            counts[(f"{node.domain}:" if node.domain else "") + node.op_type] += 1
            for a in node.attribute:
                graphs.extend([a.g] if a.HasField("g") else list(a.graphs))
    return counts


def _init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def _conv_block(prefix, x, out, act_nodes):
    """Conv(x) with a local weight, then the activation nodes ``act_nodes(conv_out, out)``."""
    weight = (RNG.standard_normal((4, 4, 3)) * 0.3).astype(np.float32)
    nodes = [helper.make_node("Constant", [], [f"{prefix}_w"],
                              value=numpy_helper.from_array(weight)),
             helper.make_node("Conv", [x, f"{prefix}_w"], [f"{prefix}_c"], pads=[1, 1])]
    return nodes + act_nodes(f"{prefix}_c", out)


def _relu(value, out):
    return [helper.make_node("Relu", [value], [out])]


def _silu(value, out):
    return [helper.make_node("Sigmoid", [value], [out + "_sig"]),
            helper.make_node("Mul", [value, out + "_sig"], [out])]


def _relu6(value, out):  # bounds from the outer scope's initializers
    return [helper.make_node("Clip", [value, "zero", "six"], [out])]


def _if_model(then_act, else_act, nested=False):
    """y = If(flag) {act(Conv(x))} else {act'(Conv(x))}; with ``nested`` the then-branch holds
    its block inside an If of its own."""
    then_nodes = _conv_block("t", "x", "t_y", then_act)
    if nested:
        inner = helper.make_graph(then_nodes, "inner", [],
                                  [helper.make_tensor_value_info("t_y", F, None)])
        then_nodes = [helper.make_node("If", ["flag"], ["t_y2"], then_branch=inner,
                                       else_branch=inner),
                      helper.make_node("Identity", ["t_y2"], ["t_out"])]
        then_out = "t_out"
    else:
        then_out = "t_y"
    then_graph = helper.make_graph(then_nodes, "then", [],
                                   [helper.make_tensor_value_info(then_out, F, None)])
    else_graph = helper.make_graph(_conv_block("e", "x", "e_y", else_act), "else", [],
                                   [helper.make_tensor_value_info("e_y", F, None)])
    graph = helper.make_graph(
        [helper.make_node("If", ["flag"], ["y"], then_branch=then_graph, else_branch=else_graph)],
        "g", [helper.make_tensor_value_info("x", F, [1, 4, 9]),
              helper.make_tensor_value_info("flag", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", F, None)],
        [_init("zero", np.float32(0.0)), _init("six", np.float32(6.0))])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)


def _sessions(model, tmp_path):
    """(ort session, onnxruntime session), each saving its optimized model into tmp_path."""
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.optimized_model_filepath = str(tmp_path / "ort.onnx")
    ours = ort.InferenceSession(model.SerializeToString(), so,
                                providers=["CPUExecutionProvider"])
    rso = ort_rt.SessionOptions()
    rso.graph_optimization_level = ort_rt.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    rso.optimized_model_filepath = str(tmp_path / "onnxruntime.onnx")
    theirs = ort_rt.InferenceSession(model.SerializeToString(), rso,
                                     providers=["CPUExecutionProvider"])
    return ours, theirs


def _check(model, tmp_path, fused_ops):
    ours, theirs = _sessions(model, tmp_path)
    x = (RNG.standard_normal((1, 4, 9)) * 4).astype(np.float32)
    for flag in (True, False):
        feeds = {"x": x, "flag": np.array(flag)}
        np.testing.assert_allclose(ours.run(None, feeds)[0], theirs.run(None, feeds)[0],
                                   rtol=1e-5, atol=1e-5)
    saved = onnx.load(str(tmp_path / "ort.onnx"))
    onnx.checker.check_model(saved)
    mine, reference = _ops(saved), _ops(onnx.load(str(tmp_path / "onnxruntime.onnx")))
    for op in fused_ops:
        assert mine[op] == reference[op] > 0, (op, mine, reference)
    return mine


def test_if_branches_are_fused_as_onnxruntime_fuses_them(tmp_path):
    ops = _check(_if_model(_relu, _silu), tmp_path, ["com.microsoft:FusedConv",
                                                     "com.microsoft:QuickGelu"])
    assert ops["Relu"] == ops["Sigmoid"] == 0


def test_outer_scope_initializers_are_constants_in_a_branch(tmp_path):
    ops = _check(_if_model(_relu6, _relu6), tmp_path, ["com.microsoft:FusedConv"])
    assert ops["Clip"] == 0
    saved = onnx.load(str(tmp_path / "ort.onnx"))
    # the outer constants are not copied into the bodies
    for branch in saved.graph.node[0].attribute:
        assert not {t.name for t in branch.g.initializer} & {"zero", "six"}


def test_nested_bodies_are_fused(tmp_path):
    ops = _check(_if_model(_relu, _relu, nested=True), tmp_path, ["com.microsoft:FusedConv"])
    assert ops["com.microsoft:FusedConv"] == 3  # the nested If's two branches, the else


def test_outer_values_read_by_a_body_are_kept_and_not_shadowed():
    """A Loop body reading an outer value computed in the main graph: the pass keeps it
    and names nothing new after an outer value."""
    body = helper.make_graph(
        [helper.make_node("Add", ["acc_in", "step"], ["sum"]),
         helper.make_node("Relu", ["sum"], ["acc_out"]),
         helper.make_node("Identity", ["cond_in"], ["cond_out"])],
        "body", [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                 helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
                 helper.make_tensor_value_info("acc_in", F, [3])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_out", F, [3])])
    graph = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["step"]),
         helper.make_node("Loop", ["n", "", "x"], ["y"], body=body)],
        "g", [helper.make_tensor_value_info("x", F, [3]),
              helper.make_tensor_value_info("n", TensorProto.INT64, [])],
        [helper.make_tensor_value_info("y", F, [3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.array([-1.0, 0.5, 2.0], np.float32)
    got = sess.run(None, {"x": x, "n": np.array(3, np.int64)})[0]
    expected = x.copy()
    for _ in range(3):
        expected = np.maximum(expected - x, 0)
    np.testing.assert_allclose(got, expected)


def test_tiny_bodies_are_left_alone():
    from ort.optimizer import OptimizerContext
    from ort.optimizer.subgraphs import MIN_BODY_NODES, optimize_subgraphs

    branch = helper.make_graph([helper.make_node("Identity", ["x"], ["y_b"])], "b", [],
                               [helper.make_tensor_value_info("y_b", F, None)])
    graph = helper.make_graph(
        [helper.make_node("If", ["flag"], ["y"], then_branch=branch, else_branch=branch)],
        "g", [helper.make_tensor_value_info("x", F, [2]),
              helper.make_tensor_value_info("flag", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", F, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    calls = []
    assert MIN_BODY_NODES > 1
    assert not optimize_subgraphs(model, OptimizerContext(has_kernel=lambda *a: True),
                                  lambda m, c: calls.append(m) or False)
    assert calls == []


@pytest.mark.parametrize("outer", ["initializer", "constant_node"])
def test_a_body_slicing_a_large_outer_weight_folds_it(outer, tmp_path):
    """Silero VAD's LSTM cell in an If branch slices the gates out of a main-graph weight
    (256 KiB, above the size the session keeps in its weight store) on every run;
    onnxruntime folds those Slices, and so does ort now: the folded slices are embedded in
    the body (the store serves the main graph only), and the saved model loads anywhere."""
    weight = (RNG.standard_normal((512, 128)) * 0.1).astype(np.float32)
    slices = [helper.make_node("Slice", ["w", f"s{i}", f"e{i}", "ax"], [f"g{i}"])
              for i in range(4)]
    body_nodes = slices + [helper.make_node("Concat", [f"g{i}" for i in (3, 2, 1, 0)], ["wr"],
                                            axis=0),
                           helper.make_node("MatMul", ["x", "wr"], ["b_y"], name="mm")]
    body_inits = ([_init(f"s{i}", np.array([128 * i], np.int64)) for i in range(4)]
                  + [_init(f"e{i}", np.array([128 * (i + 1)], np.int64)) for i in range(4)]
                  + [_init("ax", np.array([0], np.int64))])
    body = helper.make_graph(body_nodes, "b", [], [helper.make_tensor_value_info("b_y", F, None)],
                             body_inits)
    other = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["o_y"])], "o", [],
                              [helper.make_tensor_value_info("o_y", F, None)])
    nodes = [helper.make_node("If", ["flag"], ["y"], then_branch=body, else_branch=other)]
    inits = []
    if outer == "initializer":
        inits.append(_init("w", weight))
    else:
        nodes.insert(0, helper.make_node("Constant", [], ["w"], value=_init("w_v", weight)))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", F, [2, 512]),
                                           helper.make_tensor_value_info("flag",
                                                                         TensorProto.BOOL, [])],
                              [helper.make_tensor_value_info("y", F, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    ours, theirs = _sessions(model, tmp_path)
    x = RNG.standard_normal((2, 512)).astype(np.float32)
    for flag in (True, False):
        feeds = {"x": x, "flag": np.array(flag)}
        np.testing.assert_allclose(ours.run(None, feeds)[0], theirs.run(None, feeds)[0],
                                   rtol=1e-5, atol=1e-5)
    saved = onnx.load(str(tmp_path / "ort.onnx"))
    onnx.checker.check_model(saved)
    assert _ops(saved)["Slice"] == _ops(onnx.load(str(tmp_path / "onnxruntime.onnx")))["Slice"] == 0
    reloaded = ort.InferenceSession(str(tmp_path / "ort.onnx"), providers=["CPUExecutionProvider"])
    feeds = {"x": x, "flag": np.array(True)}
    np.testing.assert_allclose(reloaded.run(None, feeds)[0], theirs.run(None, feeds)[0],
                               rtol=1e-5, atol=1e-5)
