"""The tables of ``results.md``: every row, the overhead of a run and of a node, where ort's time
goes, the compiled kernels' compile cost, session creation and peak memory."""

from __future__ import annotations

from typing import Any

from goals import geomean

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


def _create_ratio(results: dict[str, Any]) -> float | None:
    ours, theirs = results["ort"], results.get("onnxruntime")
    if not theirs or not ours.get("session_creation_s") or not theirs.get("session_creation_s"):
        return None
    return ours["session_creation_s"] / theirs["session_creation_s"]


def results_table(reports: list[dict[str, Any]]) -> list[str]:
    """Every measured row: latencies, ratios, throughput, session creation, output check."""
    lines = ["| model | batch | threads | ort ms | onnxruntime ms | reference ms | "
             "ort/onnxruntime | ort/reference | ort items/s | ort create s | "
             "create ort/onnxruntime | outputs agree (max abs diff) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for report in reports:
        results, comparisons = report["results"], report["comparisons"]
        ours = results["ort"]
        name = report["name"] + (" (real)" if report.get("real") else "")
        if ours["status"] != "ok":
            lines.append(f"| {name} | {report['config']['batch']} | "
                         f"{report['config']['threads']} | {ours['status']}: "
                         f"{ours['note'][:80]} | | | | | | | | |")
            continue
        create = _create_ratio(results)
        lines.append(
            f"| {name} | {report['config']['batch']} | {report['config']['threads']} | "
            f"{_fmt_ms(ours)} | "
            f"{_fmt_ms(results.get('onnxruntime'))} | {_fmt_ms(results.get('reference'))} | "
            f"{_fmt_ratio(comparisons.get('onnxruntime'))} | "
            f"{_fmt_ratio(comparisons.get('reference'))} | {ours['throughput']:.1f} | "
            f"{ours['session_creation_s']:.3f} | {'—' if create is None else f'{create:.2f}'} | "
            f"{_fmt_agree(comparisons)} |")
    return lines


def disagreements(reports: list[dict[str, Any]]) -> list[str]:
    """The rows whose outputs differ from onnxruntime's, or where an engine failed."""
    lines = []
    for report in reports:
        label = f"{report['name']} b{report['config']['batch']} t{report['config']['threads']}"
        for engine, result in report["results"].items():
            if engine != "reference" and result["status"] != "ok":
                lines.append(f"- {label}: {engine} {result['status']}: {result['note']}")
        comparison = report["comparisons"].get("onnxruntime")
        if comparison and comparison["outputs_agree"] is False:
            lines.append(f"- {label}: outputs differ from onnxruntime's (max abs diff "
                         f"{comparison['max_abs_diff']:.3g}; {comparison['note']})")
    return lines


def creation_summary(reports: list[dict[str, Any]]) -> str:
    """One line: the geomean of session creation ort / onnxruntime over the rows (each engine's
    session after a warm-up session in the same process)."""
    ratios = [_create_ratio(r["results"]) for r in reports]
    value = geomean(r for r in ratios if r)
    if value is None:
        return ""
    return (f"Session creation, ort / onnxruntime, geomean over {sum(1 for r in ratios if r)} "
            f"rows (every session here is at least the second of its engine in the process): "
            f"{value:.2f}.")


def _s(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def compile_section(costs: dict[str, Any]) -> list[str]:
    """The compiled kernels' cost per model: fresh processes with an empty, then a warm
    ``ORT_CACHE_DIR``, against onnxruntime's session creation in a fresh process."""
    costs = dict(costs)
    numba_import = costs.pop("numba_import_s", None)
    if not costs:
        return []
    lines = ["## Compile cost of the compiled kernels and session creation (fresh processes)", "",
             "Each figure is a fresh interpreter: `cold` starts with an empty `ORT_CACHE_DIR` "
             "(every loop the model uses is compiled by numba), `warm` with the cache `cold` "
             "filled. `1st`/`2nd`: the process's first and second session of the model (the "
             "first includes loading the loops, the second only session creation). numba "
             "import, compile and load are `ort_provider_cpu.jit.compile_seconds()` of the "
             "process. Ratio: ort's second session (warm) / onnxruntime's second session.", "",
             f"numba's import alone, in a fresh interpreter after numpy: {_s(numba_import)} s.", "",
             "| model | cold 1st s | cold 2nd s | numba import s | compile s (loops) | "
             "warm 1st s | warm 2nd s | load s (loops) | onnxruntime 1st s | "
             "onnxruntime 2nd s | 2nd session ort/onnxruntime |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, figures in costs.items():
        cold, warm, theirs = figures["cold"], figures["warm"], figures["onnxruntime"]
        problems = [f"{k}: {v['error']}" for k, v in (("cold", cold), ("warm", warm),
                                                      ("onnxruntime", theirs)) if "error" in v]
        if problems:
            lines.append(f"| {name} | " + "; ".join(problems)[:200] + " |" + " |" * 9)
            continue
        cold_jit, warm_jit = cold.get("jit") or {}, warm.get("jit") or {}
        ratio = warm["create_s"][-1] / theirs["create_s"][-1]
        lines.append(
            f"| {name} | {_s(cold['create_s'][0])} | {_s(cold['create_s'][-1], 3)} | "
            f"{_s(cold_jit.get('import_s'))} | {_s(cold_jit.get('compile_s'))} "
            f"({cold_jit.get('compiled', 0)}) | {_s(warm['create_s'][0])} | "
            f"{_s(warm['create_s'][-1], 3)} | {_s(warm_jit.get('load_s'), 3)} "
            f"({warm_jit.get('loaded', 0)}) | {_s(theirs['create_s'][0], 3)} | "
            f"{_s(theirs['create_s'][-1], 3)} | {ratio:.2f} |")
    return lines + [""]


def memory_section(memory: dict[str, Any]) -> list[str]:
    """Peak resident set per engine, each alone in a fresh process."""
    if not memory:
        return []
    lines = ["## Peak memory (each engine alone in a fresh process: one session, a few runs)", "",
             "`VmHWM` of the process (peak resident set), and `VmRSS` after importing the engine "
             "and loading the inputs, before the session (the baseline).", "",
             "| model | ort peak MB | ort baseline MB | onnxruntime peak MB | "
             "onnxruntime baseline MB | peak ort/onnxruntime | above baseline ort/onnxruntime |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for label, figures in memory.items():
        ours, theirs = figures["ort"], figures["onnxruntime"]
        if "error" in ours or "error" in theirs or not ours.get("peak_mb"):
            lines.append(f"| {label} | {ours.get('error', '')} {theirs.get('error', '')} |"
                         + " |" * 5)
            continue
        above = ((ours["peak_mb"] - ours["baseline_mb"])
                 / max(theirs["peak_mb"] - theirs["baseline_mb"], 1e-9))
        lines.append(f"| {label} | {ours['peak_mb']:.0f} | {ours['baseline_mb']:.0f} | "
                     f"{theirs['peak_mb']:.0f} | {theirs['baseline_mb']:.0f} | "
                     f"{figures['ratio']:.2f} | {above:.2f} |")
    return lines + [""]


def _fit_overhead(points: list[tuple[int, float]]) -> tuple[float, float]:
    """(fixed µs, µs per node) of a least-squares line through (nodes, median ms) points."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    slope = (sum((x - mean_x) * (y - mean_y) for x, y in points)
             / sum((x - mean_x) ** 2 for x, _ in points))
    return (mean_y - slope * mean_x) * 1e3, slope * 1e3


def overhead_section(reports: list[dict[str, Any]], threads: int = 1) -> list[str]:
    """The fixed cost of a run and the cost of a node, from the Relu chains at batch 1 (at
    ``threads`` intra-op threads)."""
    points: dict[str, list[tuple[int, float]]] = {}
    for report in reports:
        nodes = CHAINS.get(report["name"])
        if nodes is None or report["config"]["batch"] != 1 or report["config"]["threads"] != threads:
            continue
        for engine, result in report["results"].items():
            if result["status"] == "ok" and engine in ("ort", "onnxruntime"):
                points.setdefault(engine, []).append((nodes, result["median_ms"]))
    if len(points.get("ort", [])) < 2:
        return []
    fixed, per_node = _fit_overhead(points["ort"])
    lines = [f"## Overhead per run and per node (Relu chains of 1/10/30 nodes, batch 1, {threads} thread)", "",
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


def profile_section(reports: list[dict[str, Any]], top: int = 6, threads: int = 1) -> list[str]:
    lines = []
    for report in reports:
        profile = report.get("profile")
        if not profile or report["config"]["threads"] != threads:
            continue
        ops = ", ".join(f"{row['op_type']} {row['percent']:.0f}%"
                        for row in profile["op_types"][:top])
        lines.append(f"- **{report['name']}** (batch {report['config']['batch']}, "
                     f"{profile['run_ms']:.1f} ms/run profiled, "
                     f"{profile['outside_kernels_ms']:.1f} ms outside kernels): {ops}")
    return lines


