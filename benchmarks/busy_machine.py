"""ort and onnxruntime on a busy machine: one model's run time with the CPUs idle, then beside
processes that keep every core busy, at the session's default threads (one per core).

Multi-threaded runtimes suffer when other processes hold the cores: a thread that spins while
it waits for a descheduled peer burns the scheduler slice the peer needs. onnxruntime spins
briefly; OpenBLAS's threads spin long (ort holds numpy's BLAS to one thread during runs for
that reason), and ort's own intra-op pool spins up to 2 ms but stops spinning while its
workers come late (``ort_provider_cpu.intra_op``). Issue 16 asks that ort degrade no worse
than onnxruntime::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/busy_machine.py \\
        .bench_models/mobilenetv2.onnx --runs 30

prints, per engine, the median ms idle and busy and the slowdown, then ort / onnxruntime.
Inputs are random, symbolic dims 1 (``--dim name=size`` to set one).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from typing import Any

import numpy as np
from ab_compare import median_run_ms

_HOG = "while True: pass"


def _feeds(session: Any, dims: dict[str, int]) -> dict[str, np.ndarray]:
    """Random inputs for every input of ``session`` (symbolic dims from ``dims``, else 1)."""
    rng = np.random.default_rng(0)
    feeds = {}
    for arg in session.get_inputs():
        shape = [d if isinstance(d, int) and d >= 0 else dims.get(str(d), 1) for d in arg.shape]
        if "float" in arg.type:
            feeds[arg.name] = rng.random(shape, dtype=np.float32)
        else:
            feeds[arg.name] = np.ones(shape, np.int64)
    return feeds


def main(argv: list[str] | None = None) -> int:
    """Measure and print; the exit code is 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--hogs", type=int, default=os.cpu_count() or 1,
                        help="busy processes (default: one per CPU)")
    parser.add_argument("--dim", action="append", default=[], metavar="NAME=SIZE")
    args = parser.parse_args(argv)
    dims = {k: int(v) for k, v in (d.split("=", 1) for d in args.dim)}

    import onnxruntime

    import ort

    sessions = {
        "ort": ort.InferenceSession(args.model, providers=["CPUExecutionProvider"]),
        "onnxruntime": onnxruntime.InferenceSession(args.model,
                                                    providers=["CPUExecutionProvider"]),
    }
    feeds = _feeds(sessions["ort"], dims)
    idle = {name: median_run_ms(s, feeds, args.runs) for name, s in sessions.items()}
    hogs = [subprocess.Popen([sys.executable, "-c", _HOG]) for _ in range(args.hogs)]
    try:
        time.sleep(0.5)
        busy = {name: median_run_ms(s, feeds, args.runs) for name, s in sessions.items()}
    finally:
        for hog in hogs:
            hog.kill()
    print(f"{os.path.basename(args.model)}, default threads, {args.hogs} busy processes on "
          f"{os.cpu_count()} CPUs, median of {args.runs} runs")
    print(f"{'engine':<12} {'idle ms':>9} {'busy ms':>9} {'slowdown':>9}")
    for name in sessions:
        print(f"{name:<12} {idle[name]:9.2f} {busy[name]:9.2f} {busy[name] / idle[name]:8.2f}x")
    print(f"ort / onnxruntime: idle {idle['ort'] / idle['onnxruntime']:.2f}, "
          f"busy {busy['ort'] / busy['onnxruntime']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
