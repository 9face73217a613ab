"""The one step loop: RunOptions.terminate reaches every nested plan on every thread, and
profiling and pruned runs work in every execution mode."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import ort
from ort.testing import make_model

ITERATIONS = np.array(5_000_000, np.int64)  # minutes of work if terminate were ignored


def _counting_body():
    """A Loop body adding one to a float carried value."""
    return helper.make_graph(
        [helper.make_node("Identity", ["c"], ["c_out"]),
         helper.make_node("Add", ["v", "one"], ["v_out"])], "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("c", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v", TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info("c_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [])])


def _inputs():
    return [helper.make_tensor_value_info("M", TensorProto.INT64, []),
            helper.make_tensor_value_info("v0", TensorProto.FLOAT, [])]


ONE = numpy_helper.from_array(np.array(1, np.float32), "one")


def _two_loops():
    """Two independent Loops: under ORT_PARALLEL each runs on a worker thread."""
    nodes = [helper.make_node("Loop", ["M", "", "v0"], ["a"], body=_counting_body(), name="la"),
             helper.make_node("Loop", ["M", "", "v0"], ["b"], body=_counting_body(), name="lb"),
             helper.make_node("Add", ["a", "b"], ["w"], name="sum")]
    return make_model(nodes, _inputs(), [helper.make_tensor_value_info("w", TensorProto.FLOAT, [])],
                      [ONE], opset=17)


def _loop_inside_if():
    """If(cond) whose then-branch runs a long Loop (a plan nested two deep)."""
    then_branch = helper.make_graph(
        [helper.make_node("Loop", ["M", "", "v0"], ["t"], body=_counting_body())], "then", [],
        [helper.make_tensor_value_info("t", TensorProto.FLOAT, [])])
    else_branch = helper.make_graph(
        [helper.make_node("Identity", ["v0"], ["e"])], "else", [],
        [helper.make_tensor_value_info("e", TensorProto.FLOAT, [])])
    nodes = [helper.make_node("Greater", ["M", "zero"], ["cond"]),
             helper.make_node("If", ["cond"], ["w"], then_branch=then_branch,
                              else_branch=else_branch)]
    zero = numpy_helper.from_array(np.array(0, np.int64), "zero")
    return make_model(nodes, _inputs(), [helper.make_tensor_value_info("w", TensorProto.FLOAT, [])],
                      [ONE, zero], opset=17)


def _terminated_within(session, run_options, seconds):
    """Set ``terminate`` 0.1 s into a run; assert the run fails with ONNX Runtime's message
    within ``seconds``, then that the session still runs."""
    timer = threading.Timer(0.1, lambda: setattr(run_options, "terminate", True))
    started = time.perf_counter()
    timer.start()
    try:
        with pytest.raises(ort.Fail, match="terminate flag"):
            session.run(None, {"M": ITERATIONS, "v0": np.array(0, np.float32)}, run_options)
    finally:
        timer.cancel()
    assert time.perf_counter() - started < seconds
    run_options.terminate = False
    out = session.run(None, {"M": np.array(3, np.int64), "v0": np.array(0, np.float32)},
                      run_options)
    return out


@pytest.mark.parametrize("mode", [ort.ExecutionMode.ORT_SEQUENTIAL,
                                  ort.ExecutionMode.ORT_PARALLEL])
def test_terminate_stops_loops_on_every_thread(mode):
    options = ort.SessionOptions()
    options.execution_mode = mode
    options.inter_op_num_threads = 2
    session = ort.InferenceSession(_two_loops().SerializeToString(), options)
    (w,) = _terminated_within(session, ort.RunOptions(), seconds=10)
    assert w == 6.0


def test_terminate_stops_a_loop_inside_an_if_branch():
    session = ort.InferenceSession(_loop_inside_if().SerializeToString())
    (w,) = _terminated_within(session, ort.RunOptions(), seconds=10)
    assert w == 3.0


def test_terminate_under_load_stops_only_the_runs_it_was_set_for():
    """Four concurrent long runs of one ORT_PARALLEL session, eight Loops for two workers (so
    steps of some runs wait in the pool's queue behind other runs' Loops): terminating two
    stops those two at once, queued or not, and leaves the others running; then the others
    stop too and the session still runs."""
    options = ort.SessionOptions()
    options.execution_mode = ort.ExecutionMode.ORT_PARALLEL
    options.inter_op_num_threads = 2
    session = ort.InferenceSession(_two_loops().SerializeToString(), options)
    run_options = [ort.RunOptions() for _ in range(4)]
    outcomes: dict[int, str] = {}

    def long_run(index):
        try:
            session.run(None, {"M": ITERATIONS, "v0": np.array(0, np.float32)},
                        run_options[index])
            outcomes[index] = "finished"
        except ort.Fail as exc:
            outcomes[index] = "terminated" if "terminate flag" in str(exc) else str(exc)

    threads = [threading.Thread(target=long_run, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    run_options[0].terminate = run_options[2].terminate = True
    started = time.perf_counter()
    threads[0].join(10)
    threads[2].join(10)
    assert outcomes.get(0) == outcomes.get(2) == "terminated"
    assert 1 not in outcomes and 3 not in outcomes  # still running
    run_options[1].terminate = run_options[3].terminate = True
    for thread in threads:
        thread.join(10)
    assert time.perf_counter() - started < 20
    assert outcomes == {i: "terminated" for i in range(4)}
    (w,) = session.run(None, {"M": np.array(3, np.int64), "v0": np.array(0, np.float32)})
    assert w == 6.0


def _branchy_session(tmp_path, mode):
    nodes = [helper.make_node("Relu", ["X"], ["r"], name="relu"),
             helper.make_node("Neg", ["X"], ["n"], name="neg"),
             helper.make_node("Sigmoid", ["X"], ["s"], name="sig"),
             helper.make_node("Add", ["r", "n"], ["a"], name="add"),
             helper.make_node("Mul", ["a", "s"], ["Z"], name="mul")]
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [4, 8])
    model = make_model(nodes, [x], [helper.make_tensor_value_info("Z", TensorProto.FLOAT, [4, 8]),
                                    helper.make_tensor_value_info("s", TensorProto.FLOAT, [4, 8])])
    options = ort.SessionOptions()
    options.execution_mode = mode
    options.inter_op_num_threads = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.enable_profiling = True
    options.profile_file_prefix = str(tmp_path / "profile")
    return ort.InferenceSession(model.SerializeToString(), options)


def test_profiling_together_with_parallel_execution(tmp_path):
    session = _branchy_session(tmp_path, ort.ExecutionMode.ORT_PARALLEL)
    x = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)
    want = (np.maximum(x, 0) - x) / (1 + np.exp(-x))
    for _ in range(3):
        np.testing.assert_allclose(session.run(None, {"X": x})[0], want, rtol=1e-6)
    events = json.load(open(session.end_profiling(), encoding="utf-8"))
    nodes = [e for e in events if e["cat"] == "Node"]
    assert sorted(e["name"] for e in nodes) == sorted(
        f"{n}_kernel_time" for n in ("relu", "neg", "sig", "add", "mul") for _ in range(3))
    session_events = [e["name"] for e in events if e["cat"] == "Session"]
    assert session_events.count("ParallelExecutor::Execute") == 3
    assert session_events.count("model_run") == 3
    assert all(e["args"]["provider"] == "CPUExecutionProvider" for e in nodes)


@pytest.mark.parametrize("mode", [ort.ExecutionMode.ORT_SEQUENTIAL,
                                  ort.ExecutionMode.ORT_PARALLEL])
def test_pruned_runs_in_every_mode(tmp_path, mode):
    session = _branchy_session(tmp_path, mode)
    options = ort.RunOptions()
    options.only_execute_path_to_fetches = True
    x = np.ones((4, 8), np.float32)
    (s,) = session.run(["s"], {"X": x}, options)
    np.testing.assert_allclose(s, 1 / (1 + np.exp(-x)), rtol=1e-6)
    events = json.load(open(session.end_profiling(), encoding="utf-8"))
    assert [e["name"] for e in events if e["cat"] == "Node"] == ["sig_kernel_time"]


def test_nested_plans_are_not_profiled_twice(tmp_path):
    """A Loop's step covers its body: the body's nodes get no events of their own."""
    options = ort.SessionOptions()
    options.enable_profiling = True
    options.profile_file_prefix = str(tmp_path / "p")
    session = ort.InferenceSession(_two_loops().SerializeToString(), options)
    session.run(None, {"M": np.array(4, np.int64), "v0": np.array(0, np.float32)})
    events = json.load(open(session.end_profiling(), encoding="utf-8"))
    names = sorted(e["name"] for e in events if e["cat"] == "Node")
    assert names == ["la_kernel_time", "lb_kernel_time", "sum_kernel_time"]
