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
