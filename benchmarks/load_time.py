"""Session creation time against model size: ort and onnxruntime on the same long chains.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/load_time.py
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/load_time.py \\
        --profile --sizes 100000 --shapes relu

Two chain shapes, each at every size N (default 10,000, 30,000 and 100,000 nodes), opset 17,
one float input [1, 16]:

* ``relu``: ``Relu`` N times.
* ``add_relu``: ``Add`` of a [16] initializer (one per Add, so nothing is shared) and ``Relu``,
  alternating, N nodes in all: the fusion, folding and CSE passes have ops to look at.

Each model is serialized once; each runtime then creates ``InferenceSession`` from the bytes
(default ``SessionOptions``, ``CPUExecutionProvider``) ``--repeats`` times, interleaved, and
the table gives the median wall-clock seconds, the median microseconds per node and
ort / onnxruntime, wall clock and (``cpu ratio``) process CPU time, which a busy machine
disturbs less.
Session creation at 100,000 nodes should be linear in N: ort's microseconds per node should
stay flat from 10,000 to 100,000.

``--profile`` creates one ort session per model under cProfile instead and prints the top
functions by cumulative and by own time (``--top``, default 25).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import statistics
import time

import numpy as np
from onnx import TensorProto, helper, numpy_helper

SHAPES = ("relu", "add_relu")
DEFAULT_SIZES = (10_000, 30_000, 100_000)


def chain_model(shape: str, nodes: int) -> bytes:
    """The serialized ``shape`` chain of ``nodes`` nodes."""
    graph_nodes = []
    initializers = []
    previous = "x"
    for i in range(nodes):
        out = f"v{i}" if i < nodes - 1 else "y"
        if shape == "add_relu" and i % 2 == 0:
            bias = f"b{i}"
            initializers.append(numpy_helper.from_array(
                np.full(16, (i % 7) * 0.01 - 0.02, dtype=np.float32), bias))
            graph_nodes.append(helper.make_node("Add", [previous, bias], [out], name=f"n{i}"))
        else:
            graph_nodes.append(helper.make_node("Relu", [previous], [out], name=f"n{i}"))
        previous = out
    graph = helper.make_graph(
        graph_nodes, f"{shape}_{nodes}",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16])],
        initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def _create_ort(data: bytes) -> object:
    import ort

    return ort.InferenceSession(data, providers=["CPUExecutionProvider"])


def _create_onnxruntime(data: bytes) -> object:
    import onnxruntime

    return onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])


RUNTIMES = {"ort": _create_ort, "onnxruntime": _create_onnxruntime}


def _timed(create, data: bytes) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one session creation."""
    gc.collect()
    start, start_cpu = time.perf_counter(), time.process_time()
    session = create(data)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    del session
    return elapsed, cpu


def measure(shapes: list[str], sizes: list[int], repeats: int) -> list[dict]:
    """One row per (shape, size): median seconds of each runtime, per-node microseconds."""
    rows = []
    for shape in shapes:
        for size in sizes:
            data = chain_model(shape, size)
            times: dict[str, list[tuple[float, float]]] = {name: [] for name in RUNTIMES}
            for _ in range(repeats):
                for name, create in RUNTIMES.items():
                    times[name].append(_timed(create, data))
            row = {"shape": shape, "nodes": size}
            for name in RUNTIMES:
                row[name] = statistics.median(wall for wall, _ in times[name])
                row[f"{name} cpu"] = statistics.median(cpu for _, cpu in times[name])
            rows.append(row)
            _print_row(row)
    return rows


def _print_header() -> None:
    print(f"{'chain':<10} {'nodes':>8} {'ort s':>8} {'ort us/node':>12} "
          f"{'onnxrt s':>9} {'onnxrt us/node':>15} {'ort/onnxrt':>11} {'cpu ratio':>10}")


def _print_row(row: dict) -> None:
    ours, theirs, n = row["ort"], row["onnxruntime"], row["nodes"]
    cpu_ratio = row["ort cpu"] / row["onnxruntime cpu"]
    print(f"{row['shape']:<10} {n:>8} {ours:>8.2f} {ours / n * 1e6:>12.1f} "
          f"{theirs:>9.2f} {theirs / n * 1e6:>15.1f} {ours / theirs:>11.2f} {cpu_ratio:>10.2f}",
          flush=True)


def profile(shapes: list[str], sizes: list[int], top: int) -> None:
    """cProfile one ort session creation per model; print the top functions."""
    import ort

    ort.get_available_providers()  # plugin discovery is not part of a session's cost
    for shape in shapes:
        for size in sizes:
            data = chain_model(shape, size)
            profiler = cProfile.Profile()
            profiler.enable()
            session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
            profiler.disable()
            del session
            print(f"\n=== ort, {shape} chain of {size} nodes ===")
            stats = pstats.Stats(profiler).strip_dirs()
            stats.sort_stats("cumulative").print_stats(top)
            stats.sort_stats("tottime").print_stats(top)


def main() -> None:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(str(s) for s in DEFAULT_SIZES),
                        help="comma-separated node counts")
    parser.add_argument("--shapes", default=",".join(SHAPES),
                        help=f"comma-separated chain shapes among {SHAPES}")
    parser.add_argument("--repeats", type=int, default=3, help="sessions per runtime and model")
    parser.add_argument("--profile", action="store_true", help="cProfile ort instead of timing")
    parser.add_argument("--top", type=int, default=25, help="functions to list with --profile")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    shapes = [s for s in args.shapes.split(",") if s]
    unknown = set(shapes) - set(SHAPES)
    if unknown:
        parser.error(f"unknown chain shapes {sorted(unknown)}; choose among {SHAPES}")
    if args.profile:
        profile(shapes, sizes, args.top)
        return
    import ort

    ort.get_available_providers()
    _print_header()
    measure(shapes, sizes, args.repeats)


if __name__ == "__main__":
    main()
