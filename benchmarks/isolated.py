"""Figures that need a fresh process: compile cost of the compiled kernels, session creation
from the second session in a process on, and peak memory per engine.

    python benchmarks/isolated.py MODEL.onnx FEEDS.npz --engine ort --sessions 2 --runs 3

The worker (this file run as a script) imports one engine, creates ``--sessions`` sessions of the
model one after the other (timing each), runs the last one ``--runs`` times on the feeds, and
prints one JSON line: the creation times, the resident set before the first session and at its
peak (``VmRSS``/``VmHWM`` from ``/proc/self/status``; None where there is no /proc), and for ort
the compiled kernels' costs (``ort_provider_cpu.jit.compile_seconds()``: numba's import, compiling
and loading from the cache). :func:`compile_cost`, :func:`session_creation` and :func:`peak_memory`
run the worker with the environment each figure needs (an empty ``ORT_CACHE_DIR`` for the
first-ever compile, then the same folder again for the warm cache).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
#: No figure here is worth more than this many seconds of waiting for one worker.
WORKER_TIMEOUT_S = 900


def _status_kib(field: str) -> float | None:
    """A ``/proc/self/status`` field in KiB (VmRSS, VmHWM), None where unreadable."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


def _worker(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    with np.load(args.feeds, allow_pickle=False) as data:
        feeds = {name: data[name] for name in data.files}
    start = time.perf_counter()
    if args.engine == "ort":
        import ort as module

        module.get_available_providers()  # plugin discovery, outside the creation timing
    else:
        import onnxruntime as module
    import_s = time.perf_counter() - start
    baseline_kib = _status_kib("VmRSS")
    creates = []
    session = None
    for _ in range(args.sessions):
        options = module.SessionOptions()
        options.intra_op_num_threads = args.threads
        del session
        start = time.perf_counter()
        session = module.InferenceSession(args.model, options,
                                          providers=["CPUExecutionProvider"])
        creates.append(time.perf_counter() - start)
    for _ in range(args.runs):
        session.run(None, feeds)
    result: dict[str, Any] = {
        "engine": args.engine, "import_s": import_s, "create_s": creates,
        "baseline_mb": None if baseline_kib is None else baseline_kib / 1024,
        "peak_mb": None if _status_kib("VmHWM") is None else _status_kib("VmHWM") / 1024,
    }
    if args.engine == "ort":
        try:
            from ort_provider_cpu import jit
        except ImportError:
            result["jit"] = None
        else:
            result["jit"] = jit.compile_seconds()
    return result


def run_worker(model: Path, feeds: Path, engine: str, *, sessions: int = 2, runs: int = 0,
               threads: int = 1, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run the worker in a fresh interpreter and return its JSON (or ``{"error": ...}``)."""
    command = [sys.executable, str(HERE), str(model), str(feeds), "--engine", engine,
               "--sessions", str(sessions), "--runs", str(runs), "--threads", str(threads)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env,
                              timeout=WORKER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {WORKER_TIMEOUT_S} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"error": f"exit {done.returncode}: {' | '.join(tail)}"}
    return json.loads(lines[-1])


def compile_cost(model: Path, feeds: Path, threads: int = 1) -> dict[str, Any]:
    """ort's session creation in a fresh process with an empty ``ORT_CACHE_DIR`` (every loop
    the model uses is compiled), then in another fresh process with that cache (every loop is
    loaded): each process's first and second session creation and its jit figures."""
    with tempfile.TemporaryDirectory(prefix="ort-bench-cache-") as cache:
        env = dict(os.environ, ORT_CACHE_DIR=cache)
        cold = run_worker(model, feeds, "ort", sessions=2, runs=1, threads=threads, env=env)
        warm = run_worker(model, feeds, "ort", sessions=2, runs=1, threads=threads, env=env)
    return {"cold": cold, "warm": warm}


def numba_import_seconds() -> float | None:
    """Seconds to import numba in a fresh interpreter (numpy imported first, as ort has it);
    None where numba does not import."""
    code = ("import time, numpy; start = time.perf_counter(); import numba; "
            "print(time.perf_counter() - start)")
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=WORKER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return None
    return float(done.stdout.strip()) if done.returncode == 0 and done.stdout.strip() else None


def session_creation(model: Path, feeds: Path, threads: int = 1) -> dict[str, Any]:
    """onnxruntime's first and second session creation in a fresh process (ort's come from
    :func:`compile_cost`'s warm run)."""
    return run_worker(model, feeds, "onnxruntime", sessions=2, runs=1, threads=threads)


def peak_memory(model: Path, feeds: Path, engines: tuple[str, ...] = ("ort", "onnxruntime"),
                runs: int = 3, threads: int = 1) -> dict[str, dict[str, Any]]:
    """Each engine in its own fresh process: one session, ``runs`` runs, the peak resident set
    (and the resident set after imports, before the session)."""
    return {engine: run_worker(model, feeds, engine, sessions=1, runs=runs, threads=threads)
            for engine in engines}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("feeds", help=".npz of the inputs")
    parser.add_argument("--engine", choices=("ort", "onnxruntime"), default="ort")
    parser.add_argument("--sessions", type=int, default=2)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    print(json.dumps(_worker(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
