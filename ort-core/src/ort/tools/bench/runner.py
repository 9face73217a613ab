"""The whole benchmark: every engine on the same inputs in one process, the comparison and
the printed report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import numpy as np

from ... import api
from ..._version import __version__
from ..inputs import make_feeds, model_inputs
from .environment import environment_report, format_header
from .measure import (
    BenchConfig, EngineResult, measure_reference, measure_session, outputs_agree,
    profile_op_types, profile_python,
)

__all__ = ["run_bench", "load_feeds", "format_results", "format_profile"]


def _onnxruntime_providers(module: Any, requested: list[str] | None) -> list[str]:
    available = module.get_available_providers()
    chosen = [p for p in requested or [] if p in available]
    return chosen or ["CPUExecutionProvider"]


def load_feeds(path: str) -> dict[str, np.ndarray]:
    """The inputs saved in an ``.npz`` file (``numpy.savez``), by input name."""
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def run_bench(config: BenchConfig, out: Callable[[str], None] = print,
              header: bool = True, feeds: dict[str, np.ndarray] | None = None
              ) -> dict[str, Any]:
    """Measure ``config`` and print the report line by line through ``out`` (the environment
    header too unless ``header`` is false); returns the results as a JSON-able dict. The
    inputs are ``feeds`` where given, else ``config.feeds_file``'s, else random ones made from
    the model's input metadata."""
    import onnx

    env = environment_report()
    if header:
        for line in format_header(env):
            out(line)
    api.get_available_providers()  # loads the plugins outside the session-creation timing
    model = onnx.load(config.model)
    if feeds is None and config.feeds_file:
        feeds = load_feeds(config.feeds_file)
    if feeds is None:
        feeds = make_feeds(model_inputs(model), model, config.dims, config.batch, config.seed)
    out(f"model: {config.model}  batch {config.batch}  threads {config.threads}  "
        f"optimization level {config.optimization_level}  runs {config.runs} "
        f"(warmup {config.warmup})")
    out("inputs: " + ", ".join(f"{k} {list(v.shape)} {v.dtype}" for k, v in feeds.items()))

    results: dict[str, EngineResult] = {}
    outputs: dict[str, list[Any] | None] = {}
    results["ort"], outputs["ort"] = measure_session(api, "ort", config, feeds,
                                                     config.providers, __version__)
    for engine in config.compare:
        try:
            if engine == "onnxruntime":
                import onnxruntime

                results[engine], outputs[engine] = measure_session(
                    onnxruntime, engine, config, feeds,
                    _onnxruntime_providers(onnxruntime, config.providers))
            else:
                results[engine], outputs[engine] = measure_reference(model, config, feeds)
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
    """The report's table: one line per engine, then one per comparison."""
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
    """The report's lines for ort's per-op-type profile (:func:`profile_op_types`)."""
    lines = [f"ort profile: {profile['run_ms']:.2f} ms per run, kernels "
             f"{profile['kernel_ms']:.2f} ms, outside kernels {profile['outside_kernels_ms']:.2f} "
             f"ms ({profile['runs']} runs)",
             f"  {'op type':<28} {'ms/run':>9} {'%':>6} {'calls/run':>10}"]
    for row in profile["op_types"][:top]:
        lines.append(f"  {row['op_type']:<28} {row['ms_per_run']:>9.2f} {row['percent']:>6.1f} "
                     f"{row['calls_per_run']:>10.0f}")
    return lines
