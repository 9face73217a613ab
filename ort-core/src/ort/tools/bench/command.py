"""``ort bench``'s command line: arguments, their checks, and writing the JSON report."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..inputs import DEFAULT_SEQUENCE, parse_dims, split_list
from .measure import COMPARABLE, LEVELS, REFERENCE_LIMIT_S, BenchConfig
from .runner import run_bench

__all__ = ["DESCRIPTION", "add_arguments", "config_from_args", "command", "main"]

DESCRIPTION = ("measure a model's session creation, latency and throughput on ort, optionally "
               "beside onnxruntime and onnx's ReferenceEvaluator with output checks")


def add_arguments(parser: Any) -> None:
    """The ``ort bench`` arguments (for cli.py's subparser)."""
    parser.add_argument("model", help="path to an .onnx model")
    parser.add_argument("--batch", type=int, default=1,
                        help="size of the batch dims (leading symbolic dims; default 1)")
    parser.add_argument("--dim", action="append", default=[], metavar="NAME=SIZE",
                        help="size of a symbolic dim (repeatable); sequence-like dims "
                        f"default to {DEFAULT_SEQUENCE}, others to 1")
    parser.add_argument("--feeds", default=None, metavar="FILE.npz",
                        help="inputs saved with numpy.savez (by input name) instead of "
                        "random ones")
    parser.add_argument("--providers", nargs="+", default=None, metavar="PROVIDER",
                        help="ort providers in priority order, comma- or space-separated "
                        "(default: ort's default)")
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
    try:
        dims = parse_dims(args.dim)
    except ValueError as exc:
        error(str(exc))
    if args.feeds and not os.path.isfile(args.feeds):
        error(f"--feeds: file not found: {args.feeds}")
    compare = split_list(args.compare)
    unknown = [c for c in compare if c not in COMPARABLE]
    if unknown:
        error(f"--compare: unknown engine(s) {', '.join(unknown)}; choose from "
              f"{', '.join(COMPARABLE)}")
    if "onnxruntime" in compare:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            error("--compare onnxruntime needs onnxruntime installed (pip install onnxruntime)")
    providers = split_list(args.providers) or None
    if providers:
        from ...api import get_all_providers

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
                       reference_limit_s=args.reference_limit, feeds_file=args.feeds)


def command(args: Any, error: Callable[[str], Any]) -> int:
    """Run ``ort bench`` from parsed arguments."""
    config = config_from_args(args, error)
    try:
        report = run_bench(config)
    except ValueError as failure:
        error(str(failure))
        return 2
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=jsonable) + "\n",
                                   encoding="utf-8")
        print(f"results written to {args.json}")
    return 0


def jsonable(value: Any) -> Any:
    """JSON for what json cannot write itself: numpy scalars, non-finite floats (null)."""
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
