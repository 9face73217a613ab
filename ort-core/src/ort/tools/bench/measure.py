"""Measuring one engine: session creation, warm-up, timed runs, output agreement, and ort's
per-op-type profile."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ... import api

__all__ = ["ENGINES", "COMPARABLE", "REFERENCE_LIMIT_S", "RTOL", "ATOL", "LEVELS",
           "BenchConfig", "EngineResult", "measure_session", "measure_reference",
           "outputs_agree", "profile_op_types", "profile_python"]

ENGINES = ("ort", "onnxruntime", "reference")
COMPARABLE = ENGINES[1:]
REFERENCE_LIMIT_S = 60.0
RTOL, ATOL = 1e-3, 1e-4
LEVELS = {0: "ORT_DISABLE_ALL", 1: "ORT_ENABLE_BASIC", 2: "ORT_ENABLE_EXTENDED",
          99: "ORT_ENABLE_ALL"}


@dataclass
class BenchConfig:
    """What ``ort bench`` was asked to do."""

    model: str
    batch: int = 1
    dims: dict[str, int] = field(default_factory=dict)
    providers: list[str] | None = None
    runs: int = 10
    warmup: int = 2
    threads: int = 1
    compare: list[str] = field(default_factory=list)
    optimization_level: int = 99
    profile: bool = False
    profile_runs: int | None = None     # runs profiled (default: runs)
    profile_python: bool = False
    progress: bool = True
    reference_limit_s: float = REFERENCE_LIMIT_S
    seed: int = 0
    feeds_file: str | None = None   # an .npz of the inputs (instead of random ones)


@dataclass
class EngineResult:
    """One engine's figures (times in milliseconds, creation in seconds)."""

    engine: str
    version: str = ""
    status: str = "ok"          # ok | skipped | error
    note: str = ""
    providers: list[str] = field(default_factory=list)
    session_creation_s: float | None = None
    runs: int = 0
    median_ms: float | None = None
    p90_ms: float | None = None
    mean_ms: float | None = None
    min_ms: float | None = None
    throughput: float | None = None
    times_ms: list[float] = field(default_factory=list)

    def summarize(self, times_s: Sequence[float], batch: int) -> None:
        """Fill in the latency statistics and throughput from per-run times in seconds."""
        self.times_ms = [t * 1e3 for t in times_s]
        self.runs = len(times_s)
        self.median_ms = statistics.median(self.times_ms)
        self.p90_ms = float(np.percentile(self.times_ms, 90))
        self.mean_ms = statistics.fmean(self.times_ms)
        self.min_ms = min(self.times_ms)
        self.throughput = batch / (self.median_ms / 1e3) if self.median_ms > 0 else math.inf


class _Timeout(Exception):
    pass


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise ``_Timeout`` in the main thread after ``seconds`` (no-op where SIGALRM is not
    usable). numpy calls in progress finish first, so the limit is approximate."""
    usable = (hasattr(signal, "setitimer") and seconds > 0
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise _Timeout()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _progress(total: int, label: str, enabled: bool) -> Callable[[], None] | Any:
    """An object with ``update()`` and ``close()``: tqdm when installed, else a plain bar."""
    if enabled:
        try:
            from tqdm import tqdm
        except ImportError:
            pass
        else:
            return tqdm(total=total, desc=label, unit="run", file=sys.stderr, leave=False,
                        disable=None)
    return _PlainBar(total, label, enabled and sys.stderr.isatty())


class _PlainBar:
    """The fallback progress bar (stderr, only on a terminal)."""

    def __init__(self, total: int, label: str, enabled: bool) -> None:
        self.total, self.label, self.enabled, self.done = total, label, enabled, 0

    def update(self, count: int = 1) -> None:
        self.done += count
        if self.enabled:
            width = 30
            filled = width * self.done // max(self.total, 1)
            sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] "
                             f"{self.done}/{self.total}")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\r" + " " * (len(self.label) + 45) + "\r")
            sys.stderr.flush()


def _timed_runs(run: Callable[[], Any], runs: int, label: str, progress: bool) -> list[float]:
    bar = _progress(runs, label, progress)
    times = []
    try:
        for _ in range(runs):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
            bar.update(1)
    finally:
        bar.close()
    return times


def _session_options(module: Any, config: BenchConfig) -> Any:
    options = module.SessionOptions()
    options.intra_op_num_threads = config.threads
    options.graph_optimization_level = getattr(module.GraphOptimizationLevel,
                                               LEVELS[config.optimization_level])
    return options


def measure_session(module: Any, name: str, config: BenchConfig,
                    feeds: dict[str, np.ndarray], providers: list[str] | None,
                    version: str = "") -> tuple[EngineResult, list[Any] | None]:
    """Create a session of ``module`` (ort's API or onnxruntime) and time it."""
    result = EngineResult(name, version=version or getattr(module, "__version__", ""))
    start = time.perf_counter()
    session = module.InferenceSession(config.model, _session_options(module, config),
                                      providers=providers)
    result.session_creation_s = time.perf_counter() - start
    result.providers = list(session.get_providers())
    outputs = None
    for _ in range(max(config.warmup, 1)):
        outputs = session.run(None, feeds)
    times = _timed_runs(lambda: session.run(None, feeds), config.runs, name, config.progress)
    result.summarize(times, config.batch)
    return result, outputs


def measure_reference(model: Any, config: BenchConfig, feeds: dict[str, np.ndarray]
                      ) -> tuple[EngineResult, list[Any] | None]:
    """onnx's ReferenceEvaluator: one timed first run decides whether to go on."""
    import onnx
    from onnx.reference import ReferenceEvaluator
    from threadpoolctl import threadpool_limits

    result = EngineResult("reference", version=f"onnx {onnx.__version__}")
    limit = config.reference_limit_s
    start = time.perf_counter()
    evaluator = ReferenceEvaluator(model)
    result.session_creation_s = time.perf_counter() - start
    limits = (threadpool_limits(config.threads, user_api="blas") if config.threads > 0
              else contextlib.nullcontext())
    with limits:
        start = time.perf_counter()
        try:
            with _time_limit(limit):
                outputs = evaluator.run(None, feeds)
        except _Timeout:
            result.status = "skipped"
            result.note = f"one run did not finish within {limit:.0f} s"
            return result, None
        first = time.perf_counter() - start
        if first > limit:
            result.status = "skipped"
            result.note = f"one run took {first:.1f} s > {limit:.0f} s"
            result.times_ms = [first * 1e3]
            return result, outputs
        runs = max(1, min(config.runs, int(limit / max(first, 1e-9))))
        if runs < config.runs:
            result.note = f"{runs} of {config.runs} runs ({limit:.0f} s budget)"
        times = _timed_runs(lambda: evaluator.run(None, feeds), runs, "reference",
                            config.progress)
    result.summarize(times, config.batch)
    return result, outputs


def outputs_agree(ours: Sequence[Any], theirs: Sequence[Any], rtol: float = RTOL,
                  atol: float = ATOL) -> tuple[bool, float | None, str]:
    """(agree, max abs difference, note) for two output lists (NaNs equal each other)."""
    if len(ours) != len(theirs):
        return False, None, f"{len(ours)} outputs vs {len(theirs)}"
    agree, worst, notes = True, 0.0, []
    for index, (a, b) in enumerate(zip(ours, theirs)):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            agree = False
            notes.append(f"output {index}: shape {list(a.shape)} vs {list(b.shape)}")
            continue
        if a.dtype.kind in "fc" or b.dtype.kind in "fc":
            a64, b64 = a.astype(np.float64), b.astype(np.float64)
            if not np.allclose(a64, b64, rtol=rtol, atol=atol, equal_nan=True):
                agree = False
                notes.append(f"output {index} differs")
            finite = np.isfinite(a64) & np.isfinite(b64)
            if finite.any():
                worst = max(worst, float(np.max(np.abs(a64[finite] - b64[finite]))))
        elif a.dtype.kind in "iub" and b.dtype.kind in "iub":
            differ = a.astype(np.int64) != b.astype(np.int64)
            if differ.any():
                agree = False
                notes.append(f"output {index}: {int(differ.sum())} of {a.size} values differ")
                worst = max(worst, float(np.max(np.abs(a.astype(np.int64) - b.astype(np.int64)))))
        elif not np.array_equal(a, b):
            agree = False
            notes.append(f"output {index} differs")
    return agree, worst, "; ".join(notes)


def profile_op_types(config: BenchConfig, feeds: dict[str, np.ndarray],
                     providers: list[str] | None) -> dict[str, Any]:
    """Per-op-type kernel time from ort's own profiler over ``config.profile_runs`` runs."""
    with tempfile.TemporaryDirectory(prefix="ort-bench-") as folder:
        options = _session_options(api, config)
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(folder, "profile")
        session = api.InferenceSession(config.model, options, providers=providers)
        for _ in range(max(config.warmup, 1)):
            session.run(None, feeds)
        wanted = config.profile_runs or config.runs
        _timed_runs(lambda: session.run(None, feeds), wanted, "profile", config.progress)
        with open(session.end_profiling(), encoding="utf-8") as handle:
            events = json.load(handle)
    runs = [e for e in events if e.get("name") == "model_run"]
    skip = max(len(runs) - wanted, 0)
    start_us = runs[skip]["ts"] if skip < len(runs) else 0
    measured_runs = runs[skip:]
    per_op: dict[str, dict[str, float]] = {}
    for event in events:
        if event.get("cat") != "Node" or event.get("ts", 0) < start_us:
            continue
        op = event.get("args", {}).get("op_name", "?")
        entry = per_op.setdefault(op, {"total_ms": 0.0, "calls": 0})
        entry["total_ms"] += event.get("dur", 0) / 1e3
        entry["calls"] += 1
    run_total_ms = sum(e.get("dur", 0) for e in measured_runs) / 1e3
    kernel_total_ms = sum(v["total_ms"] for v in per_op.values())
    count = max(len(measured_runs), 1)
    ops = sorted(({"op_type": op, "ms_per_run": v["total_ms"] / count,
                   "calls_per_run": v["calls"] / count,
                   "percent": 100.0 * v["total_ms"] / run_total_ms if run_total_ms else 0.0}
                  for op, v in per_op.items()), key=lambda row: -row["ms_per_run"])
    return {"runs": len(measured_runs), "run_ms": run_total_ms / count,
            "kernel_ms": kernel_total_ms / count,
            "outside_kernels_ms": (run_total_ms - kernel_total_ms) / count, "op_types": ops}


def profile_python(config: BenchConfig, feeds: dict[str, np.ndarray],
                   providers: list[str] | None, top: int = 25) -> str:
    """cProfile of ``config.runs`` ort runs: the top functions by own time, as text."""
    import cProfile
    import pstats

    session = api.InferenceSession(config.model, _session_options(api, config),
                                   providers=providers)
    for _ in range(max(config.warmup, 1)):
        session.run(None, feeds)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(config.runs):
        session.run(None, feeds)
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(top)
    return text.getvalue()
