"""Profiling (ONNX Runtime's Chrome-trace format), pruned runs, parallel execution and the
BLAS thread bound."""

import json
import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import ort


def _branchy_model():
    """Two independent branches off X joined at the end: A = Relu(X) @ W1, B = Neg(X) @ W2,
    Z = A + B; C = Sigmoid(X) is a second output that only needs its own branch."""
    rng = np.random.default_rng(0)
    w1 = onnx.numpy_helper.from_array(rng.standard_normal((8, 8)).astype(np.float32), "W1")
    w2 = onnx.numpy_helper.from_array(rng.standard_normal((8, 8)).astype(np.float32), "W2")
    nodes = [helper.make_node("Relu", ["X"], ["r"], name="relu"),
             helper.make_node("MatMul", ["r", "W1"], ["A"], name="mm1"),
             helper.make_node("Neg", ["X"], ["n"], name="neg"),
             helper.make_node("MatMul", ["n", "W2"], ["B"], name="mm2"),
             helper.make_node("Add", ["A", "B"], ["Z"], name="add"),
             helper.make_node("Sigmoid", ["X"], ["C"], name="sig")]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 8])],
        [helper.make_tensor_value_info("Z", TensorProto.FLOAT, ["N", 8]),
         helper.make_tensor_value_info("C", TensorProto.FLOAT, ["N", 8])], [w1, w2])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)


def _session(**options):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep all 6 nodes
    for key, value in options.items():
        setattr(so, key, value)
    return ort.InferenceSession(_branchy_model().SerializeToString(), so,
                                providers=["CPUExecutionProvider"])


X = np.random.default_rng(1).standard_normal((4, 8)).astype(np.float32)


def test_profile_file_matches_onnxruntimes_format(tmp_path):
    sess = _session(enable_profiling=True, profile_file_prefix=str(tmp_path / "prof" / "run"))
    assert sess.get_profiling_start_time_ns() > 0
    sess.run(None, {"X": X})
    sess.run(None, {"X": X})
    path = sess.end_profiling()
    assert os.path.basename(path).startswith("run_") and path.endswith(".json")
    assert sess.end_profiling() == ""
    events = json.load(open(path, encoding="utf-8"))
    assert isinstance(events, list)
    for event in events:
        assert set(event) == {"cat", "pid", "tid", "dur", "ts", "ph", "name", "args"}
        assert event["ph"] == "X"
    names = [e["name"] for e in events if e["cat"] == "Session"]
    assert names.count("model_run") == 2 and names.count("SequentialExecutor::Execute") == 2
    assert "model_loading_uri" in names and "session_initialization" in names
    nodes = [e for e in events if e["cat"] == "Node"]
    assert len(nodes) == 2 * 6  # one event per executed node per run
    mm1 = next(e for e in nodes if e["name"] == "mm1_kernel_time")
    assert mm1["args"]["op_name"] == "MatMul"
    assert mm1["args"]["provider"] == "CPUExecutionProvider"
    assert mm1["args"]["input_type_shape"] == [{"float": [4, 8]}, {"float": [8, 8]}]
    assert mm1["args"]["output_type_shape"] == [{"float": [4, 8]}]
    assert mm1["args"]["parameter_size"] == str(8 * 8 * 4)
    sess.run(None, {"X": X})  # runs after end_profiling are not recorded and do not fail


def test_profiling_off_gives_empty_name():
    sess = _session()
    assert sess.end_profiling() == "" and sess.get_profiling_start_time_ns() == 0


def test_only_execute_path_to_fetches_runs_only_the_needed_nodes(tmp_path):
    sess = _session(enable_profiling=True, profile_file_prefix=str(tmp_path / "p"))
    ro = ort.RunOptions()
    ro.only_execute_path_to_fetches = True
    (c,) = sess.run(["C"], {"X": X}, ro)
    np.testing.assert_allclose(c, 1 / (1 + np.exp(-X)), rtol=1e-6)
    events = json.load(open(sess.end_profiling(), encoding="utf-8"))
    assert [e["name"] for e in events if e["cat"] == "Node"] == ["sig_kernel_time"]


def test_parallel_mode_gives_the_same_outputs():
    want = _session().run(None, {"X": X})
    sess = _session(execution_mode=ort.ExecutionMode.ORT_PARALLEL, inter_op_num_threads=3)
    for _ in range(20):
        got = sess.run(None, {"X": X})
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-6)


def test_parallel_mode_reports_the_failing_node_and_stays_usable():
    sess = _session(execution_mode=ort.ExecutionMode.ORT_PARALLEL)
    with pytest.raises(ort.InvalidArgument):
        sess.run(None, {"X": np.ones((4, 7), np.float32)})  # fixed dim 8 violated
    model = _branchy_model()
    model.graph.input[0].type.tensor_type.shape.dim[1].dim_param = "K"
    so = ort.SessionOptions()
    so.execution_mode = ort.ExecutionMode.ORT_PARALLEL
    loose = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    with pytest.raises(ort.Fail, match="running MatMul node"):
        loose.run(None, {"X": np.ones((4, 7), np.float32)})
    assert loose.run(None, {"X": X})[0].shape == (4, 8)


def test_parallel_mode_terminate():
    sess = _session(execution_mode=ort.ExecutionMode.ORT_PARALLEL)
    ro = ort.RunOptions()
    ro.terminate = True
    with pytest.raises(ort.Fail, match="terminate flag"):
        sess.run(None, {"X": X}, ro)


def test_intra_op_threads_bound_blas_during_the_run_only():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    seen = []
    sess = _session(intra_op_num_threads=1)
    blas = threadpoolctl.ThreadpoolController().select(user_api="blas")
    before = [lib.get_num_threads() for lib in blas.lib_controllers]
    original = sess._plan.steps[0].compute

    def spy(*args):
        seen.append([lib.get_num_threads() for lib in blas.lib_controllers])
        return original(*args)

    sess._plan.steps[0].compute = spy
    sess.run(None, {"X": X})
    assert seen and all(n == 1 for n in seen[0])
    assert [lib.get_num_threads() for lib in blas.lib_controllers] == before


def test_run_tag_and_verbose_run_logging(caplog):
    sess = _session()
    ro = ort.RunOptions()
    ro.run_tag = "batch-7"
    assert ro.logid == "batch-7"
    with caplog.at_level("INFO", logger="ort"):
        sess.run(None, {"X": X}, ro)
    assert "batch-7" not in caplog.text  # default severity 2 (warning): nothing logged
    ro.log_severity_level = 0
    with caplog.at_level("INFO", logger="ort"):
        sess.run(None, {"X": X}, ro)
    assert "run 'batch-7' of graph 'g': 6 step(s)" in caplog.text


def test_dlpack_round_trips_with_numpy():
    sess = _session()
    x = ort.OrtValue.from_dlpack(X)
    (z, _) = sess.run_with_ort_values(None, {"X": x})
    back = np.from_dlpack(z)
    np.testing.assert_allclose(back, sess.run(None, {"X": X})[0], rtol=1e-6)
    assert np.shares_memory(np.from_dlpack(x), X)  # zero-copy both ways on the CPU
    assert x.__dlpack_device__() == (1, 0)


def test_dlpack_round_trips_with_torch():
    torch = pytest.importorskip("torch", reason="torch is not installed here")
    t = torch.arange(32, dtype=torch.float32).reshape(4, 8)
    value = ort.OrtValue.from_dlpack(t)
    assert value.data_ptr() == t.data_ptr()
    (z, _) = _session().run_with_ort_values(None, {"X": value})
    back = torch.from_dlpack(z)
    assert tuple(back.shape) == (4, 8)
