"""Compare the op histograms of ort's and onnxruntime's optimized models.

For each model, both runtimes save their optimized graph (``optimized_model_filepath``) and
the script prints, per op type, how many nodes each kept; lines where the counts differ show
a fusion one runtime made and the other did not.

    python benchmarks/fusion_audit.py /tmp/bm/mobilenetv2.onnx /tmp/models/*.onnx
    python benchmarks/fusion_audit.py --level all MODEL      # onnxruntime's ORT_ENABLE_ALL

``--level extended`` (the default) compares with onnxruntime's ``ORT_ENABLE_EXTENDED``: its
graph has no NCHWc blocked layout, so it lines up with ort's. ``--json FILE`` writes every
histogram. Both runtimes run on one thread with the CPU provider.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile

import onnx

LEVELS = {"basic": 1, "extended": 2, "all": 99}


def histogram(path: str) -> dict[str, int]:
    """Count of nodes per op type (``domain:op`` outside the default domain) of the model at
    ``path``, subgraphs (If/Loop/Scan bodies) included (weights are not loaded)."""
    model = onnx.load(path, load_external_data=False)
    counts: collections.Counter = collections.Counter()
    graphs = [model.graph]
    while graphs:
        graph = graphs.pop()
        for node in graph.node:
            counts[node.op_type if node.domain in ("", "ai.onnx")
                   else f"{node.domain}:{node.op_type}"] += 1
            for attribute in node.attribute:
                graphs.extend([attribute.g] if attribute.HasField("g") else [])
                graphs.extend(attribute.graphs)
    return dict(sorted(counts.items()))


def optimized_histograms(model_path: str, level: str, workdir: str) -> dict[str, dict[str, int]]:
    """{'original', 'onnxruntime', 'ort'}: histograms of the model as given and as each
    runtime saved it at ``level``."""
    import onnxruntime
    import ort

    name = os.path.splitext(os.path.basename(model_path))[0]
    ours_path = os.path.join(workdir, f"{name}.ort.onnx")
    theirs_path = os.path.join(workdir, f"{name}.onnxruntime.onnx")

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = {
        1: onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        2: onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        99: onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL}[LEVELS[level]]
    options.optimized_model_filepath = theirs_path
    options.intra_op_num_threads = 1
    onnxruntime.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel(LEVELS[level])
    options.optimized_model_filepath = ours_path
    options.intra_op_num_threads = 1
    ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
    return {"original": histogram(model_path), "onnxruntime": histogram(theirs_path),
            "ort": histogram(ours_path)}


def differences(hists: dict[str, dict[str, int]]) -> list[tuple[str, int, int, int]]:
    """(op, original, onnxruntime, ort) for each op whose onnxruntime and ort counts differ."""
    ops = sorted(set(hists["original"]) | set(hists["onnxruntime"]) | set(hists["ort"]))
    return [(op, hists["original"].get(op, 0), hists["onnxruntime"].get(op, 0),
             hists["ort"].get(op, 0))
            for op in ops if hists["onnxruntime"].get(op, 0) != hists["ort"].get(op, 0)]


def main(argv: list[str] | None = None) -> int:
    """Print the histogram differences of each model named on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--level", choices=sorted(LEVELS), default="extended")
    parser.add_argument("--json", help="write every histogram to this file")
    args = parser.parse_args(argv)
    report = {}
    with tempfile.TemporaryDirectory() as workdir:
        for path in args.models:
            hists = optimized_histograms(path, args.level, workdir)
            report[path] = hists
            total = {k: sum(v.values()) for k, v in hists.items()}
            print(f"{path}: nodes original {total['original']}, onnxruntime "
                  f"{total['onnxruntime']}, ort {total['ort']}")
            diff = differences(hists)
            if not diff:
                print("    same op histogram")
            for op, original, theirs, ours in diff:
                print(f"    {op:40s} original {original:4d}  onnxruntime {theirs:4d}  "
                      f"ort {ours:4d}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
