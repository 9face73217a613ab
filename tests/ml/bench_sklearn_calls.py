"""Per-call ``run`` latency of ort and onnxruntime on small scikit-learn models.

Not a test (pytest does not collect ``bench_*`` files). Run::

    python tests/ml/bench_sklearn_calls.py [--calls 2000] [--profile]

Models, each timed with a warm session in this one process (median of ``--calls`` calls):

* iris LogisticRegression, default conversion (ZipMap output: a list of dicts), one row;
* a 100-tree RandomForestClassifier (default depth) on iris, ``zipmap=False``, batch 1 and 8.

onnxruntime runs with ``intra_op_num_threads = 1``. ``--profile`` adds a cProfile of ort's
calls for each model (top functions by total time).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import time
from collections.abc import Callable

import numpy as np
import onnxruntime
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

import ort

PROVIDERS = ["CPUExecutionProvider"]


def _models() -> list[tuple[str, bytes, list[int]]]:
    """(name, serialized model, batch sizes) of the benchmarked models."""
    x, y = load_iris(return_X_y=True)
    x = x.astype(np.float32)
    types = [("X", FloatTensorType([None, 4]))]
    logistic = LogisticRegression(max_iter=500).fit(x, y)
    forest = RandomForestClassifier(n_estimators=100, random_state=0).fit(x, y)
    return [
        ("LogisticRegression (ZipMap)",
         convert_sklearn(logistic, initial_types=types).SerializeToString(), [1]),
        ("RandomForestClassifier 100 trees (zipmap=False)",
         convert_sklearn(forest, initial_types=types,
                         options={id(forest): {"zipmap": False}}).SerializeToString(), [1, 8]),
    ]


def _median_call(run: Callable[[], object], calls: int) -> float:
    """Median seconds of one call, after a few warm-up calls."""
    for _ in range(20):
        run()
    times = []
    clock = time.perf_counter
    for _ in range(calls):
        start = clock()
        run()
        times.append(clock() - start)
    return statistics.median(times)


def _profile(run: Callable[[], object], calls: int, top: int = 15) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        run()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    x = load_iris(return_X_y=True)[0].astype(np.float32)
    print(f"{'model':50} {'batch':>5} {'ort us':>9} {'onnxruntime us':>15} {'ratio':>7}")
    for name, model, batches in _models():
        ours = ort.InferenceSession(model, providers=PROVIDERS)
        theirs = onnxruntime.InferenceSession(model, options, providers=PROVIDERS)
        for batch in batches:
            feeds = {"X": x[::7][:batch].copy()}
            ours_s = _median_call(lambda: ours.run(None, feeds), args.calls)
            theirs_s = _median_call(lambda: theirs.run(None, feeds), args.calls)
            print(f"{name:50} {batch:5d} {ours_s * 1e6:9.1f} {theirs_s * 1e6:15.1f} "
                  f"{ours_s / theirs_s:7.1f}")
            if args.profile:
                print(_profile(lambda: ours.run(None, feeds), args.calls))


if __name__ == "__main__":
    main()
