"""The BLAS thread bound of intra_op_num_threads: set for runs only, restored afterwards, even
when runs of sessions with different bounds interleave on several threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import ort
from ort.runtime.threads import BlasThreadLimit, blas_thread_controls
from ort.testing import make_model

threadpoolctl = pytest.importorskip("threadpoolctl")


def _blas_counts():
    return [lib.get_num_threads()
            for lib in threadpoolctl.ThreadpoolController().select(user_api="blas").lib_controllers]


def _matmul_session(threads):
    w = numpy_helper.from_array(np.ones((64, 64), np.float32), "W")
    model = make_model([helper.make_node("MatMul", ["X", "W"], ["Y"])],
                       [helper.make_tensor_value_info("X", TensorProto.FLOAT, [64, 64])],
                       [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [64, 64])], [w])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(model.SerializeToString(), options)


def test_controls_are_found_once_and_read_what_threadpoolctl_reads():
    controls = blas_thread_controls()
    assert controls is blas_thread_controls()
    assert [c.get() for c in controls] == _blas_counts()


def test_limit_sets_during_and_restores_after():
    before = _blas_counts()
    limit = BlasThreadLimit(1)
    assert limit.active and not BlasThreadLimit(0).active
    with limit:
        assert all(n == 1 for n in _blas_counts())
        with BlasThreadLimit(1):  # nested: nothing to restore until the outer one ends
            pass
        assert all(n == 1 for n in _blas_counts())
    assert _blas_counts() == before


def test_concurrent_runs_of_different_bounds_leave_the_count_as_it_was():
    before = _blas_counts()
    sessions = [_matmul_session(1), _matmul_session(2)]
    x = np.ones((64, 64), np.float32)
    failures = []

    def worker(index):
        try:
            for _ in range(150):
                np.testing.assert_allclose(sessions[index % 2].run(None, {"X": x})[0], 64.0)
        except Exception as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    assert _blas_counts() == before


class _ThreadsSeenPlugin:
    """Declares test.threads:Probe (identity) and records NodeInfo.intra_op_threads."""

    seen: list[int] = []

    @ort.hookimpl
    def ort_register_schemas(self, registry):
        registry.declare(ort.ep.DeclaredSchema(
            op_type="Probe", domain="test.threads", min_inputs=1, max_inputs=1,
            min_outputs=1, max_outputs=1, infer=lambda types, attrs: [types[0]]))

    @ort.hookimpl
    def ort_register_kernels(self, registry):
        table = ort.ep.KernelTable()

        @table.register("Probe", since=1, domain="test.threads")
        def probe(node):
            self.seen.append(node.intra_op_threads)
            return lambda x: (x,)

        registry.add("CPUExecutionProvider", table)


@pytest.mark.parametrize("threads", [0, 1, 3])
def test_kernels_see_the_sessions_intra_op_threads(threads):
    import ort.ep

    plugin = _ThreadsSeenPlugin()
    plugin.seen = []
    ort.ep.register_plugin(plugin, "threads-probe")
    try:
        model = make_model([helper.make_node("Probe", ["X"], ["Y"], domain="test.threads")],
                           [helper.make_tensor_value_info("X", TensorProto.FLOAT, [2])],
                           [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2])],
                           opsets={"": 17, "test.threads": 1})
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        ort.InferenceSession(model.SerializeToString(), options)
    finally:
        ort.ep.unregister_plugin("threads-probe")
    assert plugin.seen == [threads]


class _BlasCountPlugin:
    """Declares test.blas:MatMulProbe and test.blas:Probe (identities) whose kernels record the
    BLAS thread counts they run under (the first may call BLAS by its name, the second not)."""

    seen: list[list[int]] = []

    @ort.hookimpl
    def ort_register_schemas(self, registry):
        for op_type in ("MatMulProbe", "Probe"):
            registry.declare(ort.ep.DeclaredSchema(
                op_type=op_type, domain="test.blas", min_inputs=1, max_inputs=1,
                min_outputs=1, max_outputs=1, infer=lambda types, attrs: [types[0]]))

    @ort.hookimpl
    def ort_register_kernels(self, registry):
        table = ort.ep.KernelTable()

        def probe(node):
            def compute(x):
                self.seen.append(_blas_counts())
                return (x,)
            return compute

        table.register("MatMulProbe", since=1, domain="test.blas")(probe)
        table.register("Probe", since=1, domain="test.blas")(probe)

        registry.add("CPUExecutionProvider", table)


def _probe_counts(op_type, threads):
    """BLAS thread counts seen inside a run of one ``op_type`` probe node."""
    import ort.ep

    plugin = _BlasCountPlugin()
    plugin.seen = []
    ort.ep.register_plugin(plugin, "blas-probe")
    try:
        model = make_model([helper.make_node(op_type, ["X"], ["Y"], domain="test.blas")],
                           [helper.make_tensor_value_info("X", TensorProto.FLOAT, [2])],
                           [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2])],
                           opsets={"": 17, "test.blas": 1})
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(model.SerializeToString(), options)
        session.run(None, {"X": np.ones(2, np.float32)})
    finally:
        ort.ep.unregister_plugin("blas-probe")
    return plugin.seen


@pytest.mark.parametrize("threads", [0, 1, 2])
def test_runs_hold_blas_to_one_thread_whatever_intra_op_threads_say(threads):
    """OpenBLAS's spinning threads make a busy machine many times slower; providers split
    work over their own threads instead (ort.runtime.threads)."""
    before = _blas_counts()
    seen = _probe_counts("MatMulProbe", threads)
    assert seen and all(n == 1 for n in seen[0])
    assert _blas_counts() == before


def test_runs_of_models_without_blas_ops_leave_blas_alone():
    """Setting and restoring the count costs ~3 µs a run: models whose ops never call BLAS
    (trees, elementwise chains) skip it."""
    before = _blas_counts()
    assert _probe_counts("Probe", 0) == [before]
    assert ort.runtime.may_call_blas(make_model(
        [helper.make_node("If", ["C"], ["Y"], then_branch=helper.make_graph(
            [helper.make_node("MatMul", ["A", "A"], ["Z"])], "t", [],
            [helper.make_tensor_value_info("Z", TensorProto.FLOAT, None)]),
            else_branch=helper.make_graph([], "e", [], []))],
        [helper.make_tensor_value_info("C", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)]))


def test_a_blas_loaded_after_the_first_session_is_held_too():
    """scipy (imported by scikit-learn, say) loads a second OpenBLAS after ort found numpy's:
    sessions created afterwards hold it to one thread as well."""
    import subprocess
    import sys
    import textwrap

    pytest.importorskip("scipy.linalg")
    script = textwrap.dedent("""
        import numpy as np
        from onnx import TensorProto, helper
        import ort
        from ort.runtime.threads import blas_thread_controls
        from ort.testing import make_model
        model = make_model([helper.make_node("MatMul", ["X", "X"], ["Y"])],
                           [helper.make_tensor_value_info("X", TensorProto.FLOAT, [2, 2])],
                           [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2, 2])])
        feed = {"X": np.ones((2, 2), np.float32)}
        ort.InferenceSession(model.SerializeToString()).run(None, feed)
        first = len(blas_thread_controls())
        import scipy.linalg  # a second OpenBLAS
        session = ort.InferenceSession(model.SerializeToString())
        controls = blas_thread_controls()
        step = session._plan.steps[0]
        seen = []
        original = step.compute
        step.compute = lambda *a: (seen.append([c.get() for c in controls]), original(*a))[1]
        session.run(None, feed)
        print(first, len(controls), seen[0])
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    first, found, counts = done.stdout.split(" ", 2)
    if int(found) == int(first):
        pytest.skip("scipy shares numpy's BLAS here")
    assert set(eval(counts)) == {1}
