"""A/B: this checkout's ort against another checkout's, on the same models, interleaved.

    git worktree add /tmp/ort-old <revision>
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \\
        python benchmarks/ab_compare.py /tmp/ort-old .bench_models --models resnet18,relu_chain_1

For each model, round after round, one process runs the other checkout's ort (its ``src``
folders first on ``PYTHONPATH``) and one runs this checkout's: each creates a session
(``--threads`` intra-op threads, default 1), warms up and times runs of ``run(None, feeds)``
on the same random inputs. Alternating the two spreads the machine's noise over both. The
table gives each side's median over rounds of the per-round median latency and session
creation time, and new / old (below 1: this checkout is faster).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = ("ort-core/src", "ort-provider-cpu/src")
#: Timed runs per round (the big models take seconds per run on one thread).
RUNS = {"resnet18": 5, "mobilenetv2": 10, "bert_base": 3, "gpt2_small": 5, "mlp": 20,
        "tiny_vad": 300, "random_forest": 300, "logistic_regression": 3000,
        "gradient_boosting": 2000, "relu_chain_1": 5000, "relu_chain_10": 5000,
        "relu_chain_30": 3000}


def _worker(model: str, feeds_path: str, runs: int, threads: int) -> None:
    """Time one engine in this process and print JSON (used through ``--worker``)."""
    import numpy as np

    import ort

    with np.load(feeds_path) as data:
        feeds = {name: data[name] for name in data.files}
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    ort.get_available_providers()
    start = time.perf_counter()
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    created = time.perf_counter() - start
    print(json.dumps({"median_ms": median_run_ms(session, feeds, runs), "create_s": created}))


def median_run_ms(session, feeds: dict, runs: int) -> float:
    """The median of ``runs`` timed ``session.run(None, feeds)`` in ms, after
    ``max(2, runs // 10)`` untimed ones (also used by ``busy_machine.py``)."""
    for _ in range(max(2, runs // 10)):
        session.run(None, feeds)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feeds)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def _feeds_file(model: Path, batch: int, folder: Path) -> Path:
    """The model's random inputs (this checkout's ``ort bench`` feeds), saved for both sides."""
    import numpy as np
    import onnx

    from ort.tools.inputs import make_feeds, model_inputs

    proto = onnx.load(str(model), load_external_data=False)
    path = folder / f"{model.stem}.npz"
    np.savez(path, **make_feeds(model_inputs(proto), proto, batch=batch))
    return path


def _measure(checkout: Path, model: Path, feeds: Path, runs: int, threads: int) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(str(checkout / s) for s in SOURCES)
    env["PYTHONWARNINGS"] = "ignore"
    code = [sys.executable, str(Path(__file__).resolve()), "--worker", str(model), str(feeds),
            str(runs), str(threads)]
    result = subprocess.run(code, env=env, capture_output=True, text=True, check=True,
                            cwd=checkout)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path, help="the other checkout (its root folder)")
    parser.add_argument("models_dir", type=Path, help="where make_models.py wrote the models")
    parser.add_argument("--models", default=",".join(RUNS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args(argv)
    new = HERE.parent
    rows = []
    folder = Path(tempfile.mkdtemp(prefix="ort-ab-"))
    for name in [m for m in args.models.split(",") if m]:
        model = args.models_dir / f"{name}.onnx"
        if not model.exists():
            print(f"{name}: {model} not found, skipped")
            continue
        runs = RUNS.get(name, 10)
        feeds = _feeds_file(model, args.batch, folder)
        sides: dict[str, list[dict]] = {"old": [], "new": []}
        for _ in range(args.rounds):
            for side, checkout in (("old", args.old), ("new", new)):
                sides[side].append(_measure(checkout.resolve(), model.resolve(), feeds, runs,
                                            args.threads))
        old_ms = statistics.median(r["median_ms"] for r in sides["old"])
        new_ms = statistics.median(r["median_ms"] for r in sides["new"])
        old_s = statistics.median(r["create_s"] for r in sides["old"])
        new_s = statistics.median(r["create_s"] for r in sides["new"])
        rows.append((name, old_ms, new_ms, old_s, new_s))
        print(f"{name:<20} run {old_ms:9.4f} -> {new_ms:9.4f} ms ({new_ms / old_ms:5.2f}x)  "
              f"create {old_s:6.3f} -> {new_s:6.3f} s ({new_s / old_s:5.2f}x)", flush=True)
    print("\n| model | old ms | new ms | new/old | old create s | new create s | new/old |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, old_ms, new_ms, old_s, new_s in rows:
        print(f"| {name} | {old_ms:.4f} | {new_ms:.4f} | {new_ms / old_ms:.2f} | {old_s:.3f} | "
              f"{new_s:.3f} | {new_s / old_s:.2f} |")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _worker(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
        sys.exit(0)
    sys.exit(main())
