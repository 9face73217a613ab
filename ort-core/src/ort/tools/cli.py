"""The ``ort`` command (also ``python -m ort``).

``ort providers``
    list installed providers, whether each can run here and why not, and broken plugins.
``ort run MODEL [--input NAME=FILE.npy ...] [--dim NAME=SIZE ...] [--providers P ...]``
    run a model once on given inputs (``.npy`` files), random inputs made from its input
    metadata for the others, and print each output's shape, dtype and values.
``ort kernels [OP] [--provider P] [--domain D]``
    which provider implements which op: domain, opset versions, accepted element types.
``ort bench MODEL [--batch N] [--dim NAME=SIZE ...] [--runs N] [--compare onnxruntime,reference]``
    measure session creation, median/p90 latency and throughput, optionally beside onnxruntime
    and onnx's reference evaluator with output checks (``ort bench --help``; see :mod:`ort.tools.bench`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np

__all__ = ["main"]


def _cmd_providers(_: argparse.Namespace) -> int:
    from ..api import get_all_providers, unavailable_providers
    from ..ep import get_registry, plugin_failures

    reasons = unavailable_providers()
    for name in get_all_providers():
        owner = get_registry().provider_owner(name)
        status = "available" if name not in reasons else f"unavailable: {reasons[name]}"
        print(f"{name:<32} (plugin {owner}) {status}")
    for failure in plugin_failures():
        print(f"plugin {failure.plugin!r} failed to {failure.stage}: {failure.error}")
    return 0


def _pairs(items: Sequence[str], what: str) -> dict[str, str]:
    result = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"{what} must look like NAME=VALUE, got {item!r}")
        result[name] = value
    return result


def _cmd_run(args: argparse.Namespace) -> int:
    from ..api import InferenceSession
    from .inputs import make_feeds, parse_dims, split_list

    session = InferenceSession(args.model, providers=split_list(args.providers) or None)
    try:
        dims = parse_dims(args.dim)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    given = {name: np.load(path, allow_pickle=False)
             for name, path in _pairs(args.input, "--input").items()}
    missing = [arg for arg in session.get_inputs() if arg.name not in given]
    try:  # symbolic dims not given with --dim are 1
        feed = make_feeds(missing, dims=dims, batch=1, sequence=1)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    feed.update(given)
    outputs = session.run(None, feed)
    print(f"model: {args.model}  providers: {session.get_providers()}")
    for arg, value in zip(session.get_outputs(), outputs):
        array = np.asarray(value)
        print(f"{arg.name}: shape={list(array.shape)} dtype={array.dtype}")
        with np.printoptions(precision=4, suppress=True, threshold=20, edgeitems=3):
            print(array)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ort`` command."""
    parser = argparse.ArgumentParser(prog="ort", description="ort: ONNX Runtime's API as a plugin framework")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("providers", help="list installed providers and whether they can run here")
    run = sub.add_parser("run", help="run a model once and print its outputs")
    run.add_argument("model", help="path to an .onnx model")
    run.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy")
    run.add_argument("--dim", action="append", default=[], metavar="NAME=SIZE",
                     help="size of a symbolic input dimension (default 1)")
    run.add_argument("--providers", nargs="+", metavar="PROVIDER",
                     help="providers in priority order, comma- or space-separated")
    from . import bench, kernels

    kernels_parser = sub.add_parser(
        "kernels", help="which provider implements which op, opset versions and types")
    kernels.add_arguments(kernels_parser)
    bench_parser = sub.add_parser("bench", help="measure a model's latency and throughput",
                                  description=bench.DESCRIPTION)
    bench.add_arguments(bench_parser)
    args = parser.parse_args(argv)
    if args.command == "bench":
        return bench.command(args, bench_parser.error)
    if args.command == "kernels":
        return kernels.command(args)
    handlers = {"providers": _cmd_providers, "run": _cmd_run}
    return handlers[args.command](args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
