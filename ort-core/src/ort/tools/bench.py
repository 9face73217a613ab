"""``ort bench``: a model's latency and throughput on ort, optionally beside others.

onnxruntime and onnx's ``ReferenceEvaluator`` (``--compare``) are measured in the same process
on the same inputs.

What is measured, per engine: session creation (load + optimize + kernel setup), then
``--warmup`` untimed runs, then ``--runs`` timed runs of ``run(None, feeds)``; the report gives
the median and p90 latency, throughput (``batch / median`` items per second) and, for every
comparison, the ratio ``ort / other`` of the medians (above 1: ort is slower) and whether the
outputs agree (``allclose`` at rtol 1e-3, atol 1e-4, with the largest absolute difference).

Threads: ``--threads N`` (default 1) is ``SessionOptions.intra_op_num_threads`` for ort and for
onnxruntime; the reference evaluator runs under a BLAS limit of ``N`` threads. The reference
evaluator is skipped with a note when one run takes longer than ``REFERENCE_LIMIT_S`` seconds,
and runs at most as many times as fit in that budget.

The header tells which BLAS numpy uses (threadpoolctl: internal API, version, core type,
threads) and warns when ``OPENBLAS_CORETYPE`` forces OpenBLAS onto kernels for an older
instruction set than this CPU has. Nothing here ever changes the environment: OpenBLAS reads
that variable once, when the library loads, and has no call to switch kernels afterwards.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import platform
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

DESCRIPTION = ("measure a model's session creation, latency and throughput on ort, optionally "
               "beside onnxruntime and onnx's ReferenceEvaluator with output checks")

__all__ = [
    "BenchConfig", "EngineResult", "blas_info", "cpu_isa_level", "coretype_warning",
    "make_feeds", "outputs_agree", "run_bench", "main",
]

ENGINES = ("ort", "onnxruntime", "reference")
COMPARABLE = ENGINES[1:]
REFERENCE_LIMIT_S = 60.0
RTOL, ATOL = 1e-3, 1e-4
DEFAULT_SEQUENCE = 128
#: Substrings of symbolic dim names that mean "sequence length" (default DEFAULT_SEQUENCE).
SEQUENCE_WORDS = ("seq", "sequence", "length", "len", "token", "time")
LEVELS = {0: "ORT_DISABLE_ALL", 1: "ORT_ENABLE_BASIC", 2: "ORT_ENABLE_EXTENDED",
          99: "ORT_ENABLE_ALL"}

# OpenBLAS x86-64 core types by the instruction set their kernels use: 0 SSE, 1 AVX,
# 2 AVX2/FMA, 3 AVX-512. Names as OPENBLAS_CORETYPE and openblas_get_corename spell them.
_CORETYPE_LEVEL = {
    "prescott": 0, "core2": 0, "penryn": 0, "dunnington": 0, "nehalem": 0, "atom": 0,
    "opteron": 0, "opteron_sse3": 0, "barcelona": 0, "bobcat": 0, "nano": 0, "katmai": 0,
    "coppermine": 0, "northwood": 0, "banias": 0, "athlon": 0,
    "sandybridge": 1, "bulldozer": 1, "piledriver": 1,
    "haswell": 2, "zen": 2, "steamroller": 2, "excavator": 2, "skylake": 2,
    "skylakex": 3, "cooperlake": 3, "sapphirerapids": 3,
}
_LEVEL_NAMES = {0: "SSE", 1: "AVX", 2: "AVX2/FMA", 3: "AVX-512"}


# --- environment ------------------------------------------------------------------------------

def blas_info() -> list[dict[str, Any]]:
    """numpy's BLAS libraries as threadpoolctl sees them (numpy must be imported first)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover - a dependency of ort-core
        return []
    keys = ("internal_api", "version", "architecture", "num_threads", "threading_layer",
            "filepath")
    return [{k: info.get(k) for k in keys} for info in threadpool_info()
            if info.get("user_api") == "blas"]


def cpu_flags(path: str = "/proc/cpuinfo") -> set[str]:
    """The CPU feature flags of the first processor in ``/proc/cpuinfo`` (empty elsewhere)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith(("flags", "Features")):
                    return set(line.partition(":")[2].split())
    except OSError:
        pass
    return set()


def cpu_model(path: str = "/proc/cpuinfo") -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_isa_level(flags: set[str]) -> int | None:
    """The best x86 vector level the CPU has (see ``_LEVEL_NAMES``); None when unknown."""
    if not flags or "sse2" not in flags:
        return None
    if {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"} <= flags:
        return 3
    if {"avx2", "fma"} <= flags:
        return 2
    return 1 if "avx" in flags else 0


def openblas_choice(flags: set[str]) -> str | None:
    """The x86 core type a dynamic OpenBLAS build picks for these flags, by instruction set.

    Its own detection (``get_coretype`` in OpenBLAS's dynamic.c) goes by vendor and model and
    falls back on these same feature tests; AVX-512 CPUs with bf16 may get Cooperlake, which
    builds such as numpy's wheels serve with the SkylakeX kernels."""
    level = cpu_isa_level(flags)
    if level is None:
        return None
    return {3: "SkylakeX", 2: "Haswell", 1: "Sandybridge", 0: "Nehalem"}[level]


def coretype_warning(environ: dict[str, str] | os._Environ, flags: set[str]) -> str | None:
    """A warning when ``OPENBLAS_CORETYPE`` forces kernels older than this CPU supports."""
    forced = environ.get("OPENBLAS_CORETYPE")
    if not forced:
        return None
    forced_level = _CORETYPE_LEVEL.get(forced.strip().lower())
    cpu_level = cpu_isa_level(flags)
    if forced_level is None or cpu_level is None or forced_level >= cpu_level:
        return None
    return (f"OPENBLAS_CORETYPE={forced} forces OpenBLAS onto {_LEVEL_NAMES[forced_level]} "
            f"kernels; this CPU has {_LEVEL_NAMES[cpu_level]} (OpenBLAS would pick "
            f"{openblas_choice(flags)}). Matrix products may be slower than they can be; "
            "unset it for representative figures (e.g. `env -u OPENBLAS_CORETYPE ort bench "
            "...`). ort never changes it for you.")


def environment_report() -> dict[str, Any]:
    """Versions, CPU, BLAS and the BLAS-related environment variables, for the header/JSON."""
    import onnx

    from .._version import __version__

    flags = cpu_flags()
    variables = {k: v for k, v in sorted(os.environ.items())
                 if k.startswith(("OPENBLAS_", "GOTO", "MKL_", "BLIS_"))
                 or k in ("OMP_NUM_THREADS",)}
    warnings = [w for w in (coretype_warning(os.environ, flags),) if w]
    level = cpu_isa_level(flags)
    return {
        "python": platform.python_version(), "numpy": np.__version__, "onnx": onnx.__version__,
        "ort": __version__, "platform": platform.platform(), "cpu": cpu_model(),
        "cpu_count": os.cpu_count(), "cpu_isa": None if level is None else _LEVEL_NAMES[level],
        "openblas_would_pick": openblas_choice(flags), "blas": blas_info(),
        "blas_environment": variables, "warnings": warnings,
    }


def format_header(env: dict[str, Any]) -> list[str]:
    lines = [f"ort {env['ort']}  numpy {env['numpy']}  onnx {env['onnx']}  "
             f"python {env['python']}",
             f"cpu: {env['cpu']} ({env['cpu_count']} cpus, {env['cpu_isa'] or 'ISA unknown'})"]
    for lib in env["blas"] or [{}]:
        if not lib:
            lines.append("blas: none found by threadpoolctl")
            continue
        lines.append(f"blas: {lib['internal_api']} {lib['version']}  core type "
                     f"{lib['architecture']}  threads {lib['num_threads']}  "
                     f"({Path(lib['filepath'] or '?').name})")
    if env["blas_environment"]:
        lines.append("environment: " + " ".join(f"{k}={v}"
                                                for k, v in env["blas_environment"].items()))
    lines += [f"WARNING: {w}" for w in env["warnings"]]
    return lines


# --- inputs -----------------------------------------------------------------------------------

def _is_sequence_dim(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SEQUENCE_WORDS)


def resolve_shape(shape: Sequence[Any], dims: dict[str, int], batch: int) -> list[int]:
    """Concrete sizes for one input: ``dims`` by name, else batch for the leading/"batch" dims,
    else DEFAULT_SEQUENCE for sequence-like names, else 1."""
    resolved = []
    for axis, dim in enumerate(shape):
        if isinstance(dim, (int, np.integer)) and dim >= 0:
            resolved.append(int(dim))
        elif dim and str(dim) in dims:
            resolved.append(dims[str(dim)])
        elif axis == 0 or (dim and "batch" in str(dim).lower()):
            resolved.append(batch)
        elif dim and _is_sequence_dim(str(dim)):
            resolved.append(DEFAULT_SEQUENCE)
        else:
            resolved.append(1)
    return resolved


def _vocab_sizes(model: Any) -> dict[str, int]:
    """Graph inputs used as Gather indices into an initializer table: input -> table rows."""
    if model is None:
        return {}
    tables = {t.name: (list(t.dims)[0] if t.dims else 0) for t in model.graph.initializer}
    sizes: dict[str, int] = {}
    for node in model.graph.node:
        if node.op_type == "Gather" and len(node.input) > 1 and node.input[0] in tables:
            axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
            if axis == 0 and tables[node.input[0]] > 0:
                sizes.setdefault(node.input[1], tables[node.input[0]])
    return sizes


@dataclass
class InputSpec:
    """A graph input as ``NodeArg`` describes it (name, "tensor(float)", shape)."""

    name: str
    type: str
    shape: list[Any]


def model_inputs(model: Any) -> list[InputSpec]:
    """The graph inputs of an ``onnx.ModelProto`` that are not initializers."""
    from ..types import ELEMENT_TYPE_NAMES

    initializers = {t.name for t in model.graph.initializer}
    specs = []
    for value in model.graph.input:
        if value.name in initializers:
            continue
        kind = value.type.WhichOneof("value")
        if kind != "tensor_type":
            specs.append(InputSpec(value.name, kind or "unknown", []))
            continue
        tensor = value.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                 for d in tensor.shape.dim]
        element = ELEMENT_TYPE_NAMES.get(tensor.elem_type, "undefined")
        specs.append(InputSpec(value.name, f"tensor({element})", shape))
    return specs


def make_feeds(inputs: Sequence[Any], model: Any = None, dims: dict[str, int] | None = None,
               batch: int = 1, seed: int = 0) -> dict[str, np.ndarray]:
    """Random feeds from input metadata (``NodeArg``s). Float: standard normal; int inputs
    indexing an embedding table (a Gather on an initializer): ids below its row count;
    names with "mask": all ones; other ints: 0..9; bool: random."""
    from ..types import ELEMENT_TYPE_NAMES, np_dtype_of

    dims = dims or {}
    rng = np.random.default_rng(seed)
    element_types = {name: code for code, name in ELEMENT_TYPE_NAMES.items()}
    vocab = _vocab_sizes(model)
    feeds: dict[str, np.ndarray] = {}
    for arg in inputs:
        element = arg.type[len("tensor("):-1] if arg.type.startswith("tensor(") else None
        dtype = np_dtype_of(element_types[element]) if element in element_types else None
        if dtype is None or dtype.kind not in "fiub":
            raise ValueError(f"input {arg.name!r} has type {arg.type}: ort bench makes random "
                             "numeric tensors only")
        shape = resolve_shape(list(arg.shape or []), dims, batch)
        if dtype.kind == "f":
            feeds[arg.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind == "b":
            feeds[arg.name] = rng.integers(0, 2, shape).astype(bool)
        elif "mask" in arg.name.lower():
            feeds[arg.name] = np.ones(shape, dtype)
        else:
            high = vocab.get(arg.name, 10)
            feeds[arg.name] = rng.integers(0, high, shape).astype(dtype)
    return feeds


# --- measuring --------------------------------------------------------------------------------

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


def _measure_session(module: Any, name: str, config: BenchConfig,
                     feeds: dict[str, np.ndarray], providers: list[str] | None
                     ) -> tuple[EngineResult, list[Any] | None]:
    """Create a session of ``module`` (ort or onnxruntime) and time it."""
    result = EngineResult(name, version=getattr(module, "__version__", ""))
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


def _measure_reference(model: Any, config: BenchConfig, feeds: dict[str, np.ndarray]
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


# --- profiling --------------------------------------------------------------------------------

def profile_op_types(config: BenchConfig, feeds: dict[str, np.ndarray],
                     providers: list[str] | None) -> dict[str, Any]:
    """Per-op-type kernel time from ort's own profiler over ``config.profile_runs`` runs."""
    import ort

    with tempfile.TemporaryDirectory(prefix="ort-bench-") as folder:
        options = _session_options(ort, config)
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(folder, "profile")
        session = ort.InferenceSession(config.model, options, providers=providers)
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

    import ort

    session = ort.InferenceSession(config.model, _session_options(ort, config),
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


# --- the whole benchmark ----------------------------------------------------------------------

def _onnxruntime_providers(module: Any, requested: list[str] | None) -> list[str]:
    available = module.get_available_providers()
    chosen = [p for p in requested or [] if p in available]
    return chosen or ["CPUExecutionProvider"]


def run_bench(config: BenchConfig, out: Callable[[str], None] = print,
              header: bool = True) -> dict[str, Any]:
    """Measure ``config`` and print the report line by line through ``out`` (the environment
    header too unless ``header`` is false); returns the results as a JSON-able dict."""
    import onnx

    import ort

    env = environment_report()
    if header:
        for line in format_header(env):
            out(line)
    ort.get_available_providers()  # loads the plugins outside the session-creation timing
    model = onnx.load(config.model)
    feeds = make_feeds(model_inputs(model), model, config.dims, config.batch, config.seed)
    out(f"model: {config.model}  batch {config.batch}  threads {config.threads}  "
        f"optimization level {config.optimization_level}  runs {config.runs} "
        f"(warmup {config.warmup})")
    out("inputs: " + ", ".join(f"{k} {list(v.shape)} {v.dtype}" for k, v in feeds.items()))

    results: dict[str, EngineResult] = {}
    outputs: dict[str, list[Any] | None] = {}
    results["ort"], outputs["ort"] = _measure_session(ort, "ort", config, feeds,
                                                      config.providers)
    for engine in config.compare:
        try:
            if engine == "onnxruntime":
                import onnxruntime

                results[engine], outputs[engine] = _measure_session(
                    onnxruntime, engine, config, feeds,
                    _onnxruntime_providers(onnxruntime, config.providers))
            else:
                results[engine], outputs[engine] = _measure_reference(model, config, feeds)
        except Exception as error:  # report and go on with the other engines
            results[engine] = EngineResult(engine, status="error",
                                           note=f"{type(error).__name__}: {error}")
            outputs[engine] = None
    comparisons = {}
    for engine in config.compare:
        comparison: dict[str, Any] = {"ratio": None, "outputs_agree": None,
                                      "max_abs_diff": None, "note": ""}
        theirs = results[engine]
        if theirs.median_ms and results["ort"].median_ms:
            comparison["ratio"] = results["ort"].median_ms / theirs.median_ms
        if outputs[engine] is not None:
            agree, worst, note = outputs_agree(outputs["ort"], outputs[engine])
            comparison.update(outputs_agree=agree, max_abs_diff=worst, note=note)
        comparisons[engine] = comparison
    del model

    for line in format_results(results, comparisons, config.batch):
        out(line)
    report: dict[str, Any] = {
        "config": asdict(config), "environment": env,
        "inputs": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in feeds.items()},
        "results": {k: asdict(v) for k, v in results.items()}, "comparisons": comparisons,
    }
    if config.profile:
        report["profile"] = profile_op_types(config, feeds, config.providers)
        for line in format_profile(report["profile"]):
            out(line)
    if config.profile_python:
        report["profile_python"] = profile_python(config, feeds, config.providers)
        out(report["profile_python"])
    return report


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def format_results(results: dict[str, EngineResult], comparisons: dict[str, dict[str, Any]],
                   batch: int) -> list[str]:
    lines = [f"{'engine':<12} {'median ms':>10} {'p90 ms':>10} {'items/s':>10} "
             f"{'create s':>9} {'runs':>5}"]
    for name, r in results.items():
        if r.status != "ok":
            lines.append(f"{name:<12} {r.status}: {r.note}")
            continue
        throughput = "-" if r.throughput is None else f"{r.throughput:.1f}"
        lines.append(f"{name:<12} {_ms(r.median_ms):>10} {_ms(r.p90_ms):>10} "
                     f"{throughput:>10} {r.session_creation_s:>9.2f} {r.runs:>5}"
                     + (f"  ({r.note})" if r.note else ""))
    for name, c in comparisons.items():
        parts = [f"ort/{name}:"]
        if c["ratio"] is not None:
            slower = "ort slower" if c["ratio"] > 1 else "ort faster"
            parts.append(f"{c['ratio']:.2f}x ({slower})")
        else:
            parts.append("no ratio")
        if c["outputs_agree"] is not None:
            parts.append(("outputs agree" if c["outputs_agree"] else "OUTPUTS DIFFER")
                         + f" (max abs diff {c['max_abs_diff']:.3g})")
            if c["note"]:
                parts.append(f"[{c['note']}]")
        lines.append(" ".join(parts))
    return lines


def format_profile(profile: dict[str, Any], top: int = 15) -> list[str]:
    lines = [f"ort profile: {profile['run_ms']:.2f} ms per run, kernels "
             f"{profile['kernel_ms']:.2f} ms, outside kernels {profile['outside_kernels_ms']:.2f} "
             f"ms ({profile['runs']} runs)",
             f"  {'op type':<28} {'ms/run':>9} {'%':>6} {'calls/run':>10}"]
    for row in profile["op_types"][:top]:
        lines.append(f"  {row['op_type']:<28} {row['ms_per_run']:>9.2f} {row['percent']:>6.1f} "
                     f"{row['calls_per_run']:>10.0f}")
    return lines


# --- command line -----------------------------------------------------------------------------

def add_arguments(parser: Any) -> None:
    """The ``ort bench`` arguments (for cli.py's subparser)."""
    parser.add_argument("model", help="path to an .onnx model")
    parser.add_argument("--batch", type=int, default=1,
                        help="size of the batch dims (leading symbolic dims; default 1)")
    parser.add_argument("--dim", action="append", default=[], metavar="NAME=SIZE",
                        help="size of a symbolic dim (repeatable); sequence-like dims "
                        f"default to {DEFAULT_SEQUENCE}, others to 1")
    parser.add_argument("--providers", default=None, metavar="P1,P2",
                        help="ort providers, comma-separated (default: ort's default)")
    parser.add_argument("--runs", type=int, default=10, help="timed runs (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first (default 2)")
    parser.add_argument("--threads", type=int, default=1,
                        help="intra_op_num_threads for every engine (default 1)")
    parser.add_argument("--compare", default="", metavar="onnxruntime,reference",
                        help="also measure these engines in this process and compare outputs")
    parser.add_argument("--json", default=None, metavar="FILE", help="write all results here")
    parser.add_argument("--optimization-level", type=int, default=99, choices=sorted(LEVELS),
                        help="graph optimization level for ort and onnxruntime (default 99)")
    parser.add_argument("--profile", action="store_true",
                        help="also print ort's time per op type (from ort's profiler)")
    parser.add_argument("--profile-python", action="store_true",
                        help="also print a cProfile of ort's runs (top functions by own time)")
    parser.add_argument("--reference-limit", type=float, default=REFERENCE_LIMIT_S,
                        metavar="SECONDS", help="skip the reference evaluator when one run "
                        f"takes longer (default {REFERENCE_LIMIT_S:.0f})")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def config_from_args(args: Any, error: Callable[[str], Any]) -> BenchConfig:
    """Validate parsed arguments; ``error`` (``parser.error``) reports what is wrong."""
    if not os.path.isfile(args.model):
        error(f"model file not found: {args.model}")
    for flag, value, low in (("--batch", args.batch, 1), ("--runs", args.runs, 1),
                             ("--warmup", args.warmup, 0), ("--threads", args.threads, 0)):
        if value < low:
            error(f"{flag} must be at least {low}, got {value}")
    dims: dict[str, int] = {}
    for item in args.dim:
        name, sep, value = item.partition("=")
        if not sep or not name or not value.strip().isdigit() or int(value) < 1:
            error(f"--dim must look like NAME=SIZE with a positive SIZE, got {item!r}")
        dims[name] = int(value)
    compare = _split(args.compare)
    unknown = [c for c in compare if c not in COMPARABLE]
    if unknown:
        error(f"--compare: unknown engine(s) {', '.join(unknown)}; choose from "
              f"{', '.join(COMPARABLE)}")
    if "onnxruntime" in compare:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            error("--compare onnxruntime needs onnxruntime installed (pip install onnxruntime)")
    providers = _split(args.providers) or None
    if providers:
        from ..api import get_all_providers

        known = set(get_all_providers())
        missing = [p for p in providers if p not in known]
        if missing:
            error(f"--providers: unknown provider(s) {', '.join(missing)}; installed: "
                  f"{', '.join(sorted(known))}")
    return BenchConfig(model=args.model, batch=args.batch, dims=dims, providers=providers,
                       runs=args.runs, warmup=args.warmup, threads=args.threads,
                       compare=list(dict.fromkeys(compare)),
                       optimization_level=args.optimization_level, profile=args.profile,
                       profile_python=args.profile_python, progress=not args.no_progress,
                       reference_limit_s=args.reference_limit)


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def command(args: Any, error: Callable[[str], Any]) -> int:
    """Run ``ort bench`` from parsed arguments."""
    config = config_from_args(args, error)
    try:
        report = run_bench(config)
    except ValueError as failure:
        error(str(failure))
        return 2
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=_jsonable) + "\n",
                                   encoding="utf-8")
        print(f"results written to {args.json}")
    return 0


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)


def main(argv: Iterable[str] | None = None) -> int:
    """``python -m ort.tools.bench``: the same as ``ort bench``."""
    import argparse

    parser = argparse.ArgumentParser(prog="ort bench", description=DESCRIPTION)
    add_arguments(parser)
    args = parser.parse_args(list(argv) if argv is not None else None)
    return command(args, parser.error)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
