"""Run ``ort bench`` over the benchmark model set and write ``benchmarks/results.md`` + JSON.

    python benchmarks/make_models.py .bench_models
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/run_all.py .bench_models

Each model runs at batch 1 and 8 (``--batches``) on ort, onnxruntime and onnx's
ReferenceEvaluator (``--compare``), all in this process, single-threaded (``--threads``), with
ort's per-op-type profile at the largest batch. The reference evaluator is skipped where one
run takes longer than ``--reference-limit`` seconds.

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
import sys
import time
from pathlib import Path
from typing import Any

from ort.tools import bench

HERE = Path(__file__).resolve().parent
MODELS = ("resnet18", "mobilenetv2", "bert_base", "gpt2_small", "mlp", "tiny_vad",
          "random_forest", "logistic_regression", "gradient_boosting", "relu_chain_1",
          "relu_chain_10", "relu_chain_30",
          # quantized and fused with onnxruntime's tools (benchmarks/make_contrib_models.py)
          "bert_base_dynamic_u8s8", "bert_base_fused", "gpt2_small_int4", "resnet18_qdq_u8s8",
          "mobilenetv2_qdq", "resnet18_qop", "mobilenetv2_extended")
#: Timed runs per model (the big ones take seconds per run on one thread).
RUNS = {"resnet18": 5, "mobilenetv2": 10, "bert_base": 3, "gpt2_small": 5, "mlp": 20,
        "tiny_vad": 200, "random_forest": 200, "logistic_regression": 2000,
        "gradient_boosting": 1000, "relu_chain_1": 5000, "relu_chain_10": 5000,
        "relu_chain_30": 3000, "bert_base_dynamic_u8s8": 3, "bert_base_fused": 3,
        "gpt2_small_int4": 10, "resnet18_qdq_u8s8": 10, "mobilenetv2_qdq": 10, "resnet18_qop": 10,
        "mobilenetv2_extended": 10}
#: The chains whose batch-1 latencies give the fixed cost of a run and the cost of a node.
CHAINS = {"relu_chain_1": 1, "relu_chain_10": 10, "relu_chain_30": 30}
#: The overhead goals (architecture issue): per node, and fixed cost against onnxruntime's.
NODE_GOAL_US, FIXED_GOAL_RATIO = 1.0, 1.5


def _fmt_ms(result: dict[str, Any] | None) -> str:
    if result is None:
        return "—"
    if result["status"] != "ok":
        first = result["times_ms"][0] / 1e3 if result["times_ms"] else None
        return "skipped" + (f" (1 run {first:.0f} s)" if first else "")
    value = result["median_ms"]
    return f"{value:.3f}" if value < 1 else f"{value:.1f}"


def _fmt_ratio(comparison: dict[str, Any] | None) -> str:
    if not comparison or comparison["ratio"] is None:
        return "—"
    return f"{comparison['ratio']:.3g}"


def _fmt_agree(comparisons: dict[str, Any]) -> str:
    parts = []
    for engine, short in (("onnxruntime", "ortx"), ("reference", "ref")):
        c = comparisons.get(engine)
        if c is None or c["outputs_agree"] is None:
            continue
        mark = "yes" if c["outputs_agree"] else "**NO**"
        parts.append(f"{short} {mark} ({c['max_abs_diff']:.1g})")
    return ", ".join(parts) or "—"


def results_table(reports: list[dict[str, Any]]) -> list[str]:
    lines = ["| model | batch | ort ms | onnxruntime ms | reference ms | ort/onnxruntime | "
             "ort/reference | ort items/s | ort create s | outputs agree (max abs diff) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for report in reports:
        results, comparisons = report["results"], report["comparisons"]
        ours = results["ort"]
        lines.append(
            f"| {report['name']} | {report['config']['batch']} | {_fmt_ms(ours)} | "
            f"{_fmt_ms(results.get('onnxruntime'))} | {_fmt_ms(results.get('reference'))} | "
            f"{_fmt_ratio(comparisons.get('onnxruntime'))} | "
            f"{_fmt_ratio(comparisons.get('reference'))} | {ours['throughput']:.1f} | "
            f"{ours['session_creation_s']:.2f} | {_fmt_agree(comparisons)} |")
    return lines


def _fit_overhead(points: list[tuple[int, float]]) -> tuple[float, float]:
    """(fixed µs, µs per node) of a least-squares line through (nodes, median ms) points."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    slope = (sum((x - mean_x) * (y - mean_y) for x, y in points)
             / sum((x - mean_x) ** 2 for x, _ in points))
    return (mean_y - slope * mean_x) * 1e3, slope * 1e3


def overhead_section(reports: list[dict[str, Any]]) -> list[str]:
    """The fixed cost of a run and the cost of a node, from the Relu chains at batch 1."""
    points: dict[str, list[tuple[int, float]]] = {}
    for report in reports:
        nodes = CHAINS.get(report["name"])
        if nodes is None or report["config"]["batch"] != 1:
            continue
        for engine, result in report["results"].items():
            if result["status"] == "ok" and engine in ("ort", "onnxruntime"):
                points.setdefault(engine, []).append((nodes, result["median_ms"]))
    if len(points.get("ort", [])) < 2:
        return []
    fixed, per_node = _fit_overhead(points["ort"])
    lines = ["## Overhead per run and per node (Relu chains of 1/10/30 nodes, batch 1)", "",
             "| engine | fixed µs per run | µs per node |", "|---|---:|---:|",
             f"| ort | {fixed:.2f} | {per_node:.3f} |"]
    verdict = [f"per node {per_node:.2f} µs (goal ≤ {NODE_GOAL_US:g}: "
               f"{'met' if per_node <= NODE_GOAL_US else 'NOT met'})"]
    if len(points.get("onnxruntime", [])) >= 2:
        their_fixed, their_node = _fit_overhead(points["onnxruntime"])
        lines.append(f"| onnxruntime | {their_fixed:.2f} | {their_node:.3f} |")
        ratio = fixed / their_fixed
        verdict.append(f"fixed cost {ratio:.2f}x onnxruntime's (goal ≤ {FIXED_GOAL_RATIO:g}x: "
                       f"{'met' if ratio <= FIXED_GOAL_RATIO else 'NOT met'})")
    return lines + ["", "Goals: " + "; ".join(verdict) + ".", ""]


def profile_section(reports: list[dict[str, Any]], top: int = 6) -> list[str]:
    lines = []
    for report in reports:
        profile = report.get("profile")
        if not profile:
            continue
        ops = ", ".join(f"{row['op_type']} {row['percent']:.0f}%"
                        for row in profile["op_types"][:top])
        lines.append(f"- **{report['name']}** (batch {report['config']['batch']}, "
                     f"{profile['run_ms']:.1f} ms/run profiled, "
                     f"{profile['outside_kernels_ms']:.1f} ms outside kernels): {ops}")
    return lines


#: Per-run times kept in results.json for each engine (the small models run thousands of times:
#: their full lists would be megabytes of history).
TIMES_KEPT = 50


def _trim_times(reports: list[dict[str, Any]]) -> None:
    """Keep the first :data:`TIMES_KEPT` per-run times of each engine (medians and
    percentiles are computed already)."""
    for report in reports:
        for result in report["results"].values():
            result["times_ms"] = result["times_ms"][:TIMES_KEPT]


def _load_average() -> str:
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:  # not available on this platform
        return "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models_dir", type=Path, nargs="?", default=Path(".bench_models"),
                        help="where make_models.py wrote the models (default .bench_models)")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated names")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--compare", default="onnxruntime,reference")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=None,
                        help="timed runs per engine (default: per model, see RUNS)")
    parser.add_argument("--reference-limit", type=float, default=bench.REFERENCE_LIMIT_S)
    parser.add_argument("--no-profile", action="store_true",
                        help="skip ort's per-op-type profile at the largest batch")
    parser.add_argument("--output", type=Path, default=HERE / "results.md")
    parser.add_argument("--json", type=Path, default=HERE / "results.json")
    args = parser.parse_args(argv)

    env = bench.environment_report()
    header = bench.format_header(env)
    print("\n".join(header))
    if os.environ.get("OPENBLAS_CORETYPE") or os.environ.get("OPENBLAS_L2_SIZE"):
        print("NOTE: these figures are meant to be taken with OPENBLAS_CORETYPE and "
              "OPENBLAS_L2_SIZE unset (env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ...)")
    load_start = _load_average()
    batches = [int(b) for b in args.batches.split(",") if b]
    compare = [c for c in args.compare.split(",") if c]
    reports: list[dict[str, Any]] = []
    started = time.perf_counter()
    for name in [m for m in args.models.split(",") if m]:
        path = args.models_dir / f"{name}.onnx"
        if not path.exists():
            print(f"\n== {name}: {path} not found, skipped (run benchmarks/make_models.py"
                  " or make_contrib_models.py)")
            continue
        for batch in batches:
            print(f"\n== {name} batch {batch}")
            runs = args.runs or RUNS.get(name, 10)
            config = bench.BenchConfig(
                model=str(path), batch=batch, runs=runs, warmup=1, threads=args.threads,
                compare=compare, profile=not args.no_profile and batch == max(batches),
                profile_runs=max(1, min(runs, 3)), reference_limit_s=args.reference_limit)
            report = bench.run_bench(config, header=False)
            report["name"] = name
            reports.append(report)
            sys.stdout.flush()
    elapsed = time.perf_counter() - started
    load = (f"Load average (1 min) {load_start} at the start, {_load_average()} at the end, on "
            f"{os.cpu_count()} cpus: anything above ~1 means other processes shared the CPU and "
            "the figures are noisier.")

    lines = ["# ort benchmark results", "",
             "Generated by `benchmarks/run_all.py` (models from `benchmarks/make_models.py` and "
             "`make_contrib_models.py`, random weights). Latencies are medians in milliseconds, "
             f"one thread per engine (`--threads {args.threads}`), all engines in one process on "
             "the same inputs; "
             "ratios are ort / other (above 1: ort is slower). Outputs agree = allclose at "
             f"rtol {bench.RTOL:g}, atol {bench.ATOL:g} against ort's outputs.", "",
             "Environment (meant to be taken with OPENBLAS_CORETYPE unset):", "", "```",
             *header, "```", "", load, "", *results_table(reports), ""]
    lines += overhead_section(reports)
    profile = profile_section(reports)
    if profile:
        lines += ["## Where ort's time goes (ort's profiler, share of run time by op type)",
                  "", *profile, ""]
    lines.append(f"Total time {elapsed / 60:.1f} min.")
    args.output.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _trim_times(reports)
    args.json.write_text(json.dumps({"environment": env, "reports": reports}, indent=1,
                                    default=bench.jsonable) + "\n", encoding="utf-8")
    print("\n" + "\n".join(results_table(reports)))
    print(f"\nwrote {args.output} and {args.json} ({elapsed / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
