"""The compiled-loop machinery (ort_provider_cpu.jit) and the intra-op threads
(ort_provider_cpu.intra_op): caching where the user's cache lives, the numpy fallback without
numba, the switches, and work splitting."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from ort_provider_cpu import intra_op, jit

numba = pytest.importorskip("numba", reason="numba is a dependency of ort-provider-cpu")

_LOOP_MODULE = textwrap.dedent("""
    from ort_provider_cpu.jit import compiled


    @compiled()
    def sum_rows(x, out):
        for i in range(x.shape[0]):
            total = 0.0
            for j in range(x.shape[1]):
                total += x[i, j]
            out[i] = total
""")


def _run_script(tmp_path, source: str, **env: str) -> dict:
    """Run ``source`` in a fresh interpreter and return the JSON its last line prints."""
    import json

    script = tmp_path / "loops_script.py"
    script.write_text(source)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          env=dict(os.environ, **env), timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def loop_module():
    """A loops module written into the package folder for the test (numba's cache is placed
    in ort's cache directory only for the package's own files), removed afterwards."""
    path = os.path.join(os.path.dirname(jit.__file__), "_test_sum_rows_loops.py")
    with open(path, "w") as handle:
        handle.write(_LOOP_MODULE)
    yield "ort_provider_cpu._test_sum_rows_loops"
    os.remove(path)


def test_loop_compiles_then_loads_from_the_user_cache(tmp_path, loop_module):
    script = textwrap.dedent(f"""
        import json
        import numpy as np
        from ort_provider_cpu.jit import compile_seconds, cache_directory
        from {loop_module} import sum_rows
        run = sum_rows.prepare((np.float32, 2), (np.float32, 1))
        out = np.empty(3, np.float32)
        run(np.arange(12, dtype=np.float32).reshape(3, 4), out)
        print(json.dumps({{"out": out.tolist(), "stats": compile_seconds(),
                          "cache": cache_directory()}}))
    """)
    cache = tmp_path / "cache"
    first = _run_script(tmp_path, script, ORT_CACHE_DIR=str(cache))
    assert first["out"] == [6.0, 22.0, 38.0]
    assert first["stats"]["compiled"] == 1 and first["stats"]["loaded"] == 0
    assert first["cache"] == str(cache / "numba")
    assert any(name.endswith(".nbi") for _, _, files in os.walk(cache) for name in files)
    second = _run_script(tmp_path, script, ORT_CACHE_DIR=str(cache))
    assert second["out"] == first["out"]
    assert second["stats"]["loaded"] == 1 and second["stats"]["compiled"] == 0


def test_unwritable_cache_directory_falls_back(tmp_path, loop_module):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    script = textwrap.dedent(f"""
        import json
        import numpy as np
        from {loop_module} import sum_rows
        run = sum_rows.prepare((np.float64, 2), (np.float64, 1))
        out = np.empty(2)
        run(np.ones((2, 5)), out)
        print(json.dumps({{"out": out.tolist()}}))
    """)
    assert _run_script(tmp_path, script, ORT_CACHE_DIR=str(blocker))["out"] == [5.0, 5.0]


def test_without_numba_sessions_run_numpy_kernels_and_warn_once(tmp_path):
    script = textwrap.dedent("""
        import json, sys, warnings
        sys.modules["numba"] = None  # import numba raises ImportError
        import numpy as np
        import onnx
        from onnx import TensorProto, helper
        import ort
        from ort_provider_cpu.jit import compiled_loops_enabled
        node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2])
        graph = helper.make_graph([node], "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            enabled = [compiled_loops_enabled(), compiled_loops_enabled()]
            sess = ort.InferenceSession(model.SerializeToString())
            y = sess.run(None, {"x": np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)})[0]
        numba_warnings = [str(w.message) for w in caught if "numba" in str(w.message)]
        print(json.dumps({"enabled": enabled, "y": y.ravel().tolist(),
                          "warnings": numba_warnings}))
    """)
    result = _run_script(tmp_path, script)
    assert result["enabled"] == [False, False]
    assert result["y"] == [5.0, 7.0, 13.0, 15.0]
    assert len(result["warnings"]) == 1
    assert "numpy kernels" in result["warnings"][0] and "pip install numba" in result["warnings"][0]


class _Node:
    def __init__(self, xp=np, options=None):
        self.xp = xp
        self.provider = type("P", (), {"options": options or {}})()


def test_switches_select_the_numpy_kernels(monkeypatch):
    assert jit.compiled_loops_enabled(_Node())
    assert not jit.compiled_loops_enabled(_Node(options={"compiled_kernels": "0"}))
    assert not jit.compiled_loops_enabled(_Node(xp=object()))  # cupy: never compiled loops
    monkeypatch.setenv(jit.ENV_SWITCH, "0")
    assert not jit.compiled_loops_enabled(_Node())
    assert jit.compiled_loops_enabled(_Node(options={"compiled_kernels": "1"}))


def test_provider_option_is_accepted_and_reported():
    import onnx
    from onnx import TensorProto, helper

    import ort

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    sess = ort.InferenceSession(model.SerializeToString(),
                                providers=[("CPUExecutionProvider", {"compiled_kernels": "0"})])
    assert sess.get_provider_options()["CPUExecutionProvider"] == {"compiled_kernels": "0"}


def test_split_work_covers_every_unit_once_on_several_threads():
    hits = np.zeros(1000, np.int64)
    threads_seen = set()

    def work(start, stop):
        threads_seen.add(threading.get_ident())
        hits[start:stop] += 1

    intra_op.split_work(work, 1000, 4, min_work=10)
    assert (hits == 1).all()
    assert threading.get_ident() in threads_seen and len(threads_seen) > 1


def test_split_work_stays_on_the_calling_thread_for_one_thread_or_little_work():
    threads_seen = []
    intra_op.split_work(lambda a, b: threads_seen.append((threading.get_ident(), a, b)), 100, 1)
    intra_op.split_work(lambda a, b: threads_seen.append((threading.get_ident(), a, b)), 100, 8,
                        min_work=60)
    intra_op.split_work(lambda a, b: threads_seen.append((threading.get_ident(), a, b)), 0, 8)
    assert threads_seen == [(threading.get_ident(), 0, 100)] * 2


def test_split_work_raises_a_pieces_error_after_all_pieces_end():
    finished = []

    def work(start, stop):
        if start > 0:
            raise ValueError(f"piece {start}")
        finished.append(start)

    with pytest.raises(ValueError, match="piece"):
        intra_op.split_work(work, 40, 4)
    assert finished == [0]


@pytest.fixture
def fresh_pool(monkeypatch):
    """A pool of its own for one test (its threads outlive it, idle and unused)."""
    monkeypatch.setattr(intra_op, "_idle", [])
    monkeypatch.setattr(intra_op, "_created", 0)


def _pieces_cover(total=400, threads=3, pause=0.0):
    hits = np.zeros(total, np.int64)

    def work(start, stop):
        if pause and start > 0:
            time.sleep(pause)
        hits[start:stop] += 1

    intra_op.split_work(work, total, threads)
    return bool((hits == 1).all())


def test_spinning_workers_that_fell_asleep_are_woken(fresh_pool, monkeypatch):
    """With spins this short, workers sleep between calls and callers sleep waiting for a
    slow piece: every piece still runs once, every call returns."""
    if intra_op._spin_wait() is None:
        pytest.skip("numba is not available: the pool sleeps on locks")
    monkeypatch.setattr(intra_op, "_spins", 20)
    for round_ in range(20):
        assert _pieces_cover(pause=0.02 if round_ % 5 == 0 else 0.0)
        time.sleep(0.002)  # past the workers' spins: they sleep
    with pytest.raises(ValueError, match="piece"):
        intra_op.split_work(lambda a, b: (_ for _ in ()).throw(ValueError(f"piece {a}"))
                            if a else None, 40, 3)
    assert _pieces_cover()


def test_late_workers_make_the_pool_stop_spinning_for_a_while(monkeypatch):
    """A worker that was spinning but had not seen its piece when the caller finished its
    own means other processes hold the CPUs: after STRIKES such hand-offs in a row, waits
    stop spinning for QUIET_SECONDS; a hand-off on time clears the strikes."""
    spin = intra_op._spin_wait()
    if spin is None:
        pytest.skip("numba is not available: the pool sleeps on locks")
    monkeypatch.setattr(intra_op, "_quiet_until", 0.0)
    monkeypatch.setattr(intra_op, "_quiet_for", intra_op.QUIET_SECONDS)
    monkeypatch.setattr(intra_op, "_strikes", 0)
    worker = object.__new__(intra_op._Worker)  # no thread: the flags say what happened
    worker._spin, worker._flags, worker._asleep, worker.error = spin, np.zeros(40, np.int64), \
        False, None

    def hand_off(seen: bool, own: float = 1e-3) -> None:
        worker._sequence = worker._flags[intra_op._DONE] = worker._sequence + 1 \
            if hasattr(worker, "_sequence") else 1
        worker._flags[intra_op._SEEN] = worker._sequence if seen else worker._sequence - 1
        intra_op._judge_hand_off(own, False, [worker])
        worker.wait()

    hand_off(False)
    hand_off(False)
    hand_off(True)  # on time: the count starts again
    hand_off(False)
    hand_off(False, own=1e-6)  # the caller's piece was too short to tell
    assert intra_op._spin_budget() > 0
    hand_off(False)
    assert intra_op._spin_budget() > 0
    hand_off(False)
    assert intra_op._spin_budget() == 0
    monkeypatch.setattr(intra_op, "_quiet_until", time.monotonic() - 1)
    assert intra_op._spin_budget() == intra_op._spins


def test_a_caller_kept_off_the_cpu_quiets_the_pool(monkeypatch):
    """A caller whose own piece got under DESCHEDULED of a CPU (its thread's CPU time against
    the wall clock: here a sleep) counts a strike; STRIKES in a row stop the spinning."""
    if intra_op._spin_wait() is None:
        pytest.skip("numba is not available: the pool sleeps on locks")
    monkeypatch.setattr(intra_op, "_quiet_until", 0.0)
    monkeypatch.setattr(intra_op, "_quiet_for", intra_op.QUIET_SECONDS)
    monkeypatch.setattr(intra_op, "_strikes", 0)
    for _ in range(intra_op.STRIKES):
        assert intra_op._spin_budget() > 0
        intra_op.split_work(lambda a, b: time.sleep(0.002), 2, 2)
    assert intra_op._spin_budget() == 0


def test_without_numba_the_pool_sleeps_on_locks(fresh_pool, monkeypatch):
    monkeypatch.setattr(intra_op, "_spin", False)
    for _ in range(10):
        assert _pieces_cover(pause=0.001)
    assert all(worker._spin is None for worker in intra_op._idle)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX")
def test_split_work_in_a_forked_child():
    intra_op.split_work(lambda a, b: None, 100, 4)  # the parent's pool exists
    script = textwrap.dedent("""
        import os, numpy as np
        from ort_provider_cpu import intra_op
        intra_op.split_work(lambda a, b: None, 100, 4)
        pid = os.fork()
        if pid == 0:
            hits = np.zeros(100)
            def work(a, b):
                hits[a:b] += 1
            intra_op.split_work(work, 100, 4)
            os._exit(0 if (hits == 1).all() else 3)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.stdout.strip() == "0", done.stderr


def test_resolve_threads():
    assert intra_op.resolve_threads(3) == 3
    assert intra_op.resolve_threads(0) == intra_op.core_count() >= 1
