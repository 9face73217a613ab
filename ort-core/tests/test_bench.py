"""``ort bench``: figures, JSON, comparisons, feeds, the BLAS header and argument errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from ort.tools import bench
from ort.tools.cli import main

pytest.importorskip("ort_provider_cpu")


def _tiny_model() -> onnx.ModelProto:
    """Embedding lookup + mask + a float branch: exercises every feed rule."""
    table = numpy_helper.from_array(
        np.random.default_rng(0).standard_normal((50, 4)).astype(np.float32), "table")
    weight = numpy_helper.from_array(np.full((4, 3), 0.5, np.float32), "weight")
    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["emb"], axis=0),
        helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["maskf", "axes"], ["mask3"]),
        helper.make_node("Mul", ["emb", "mask3"], ["masked"]),
        helper.make_node("ReduceMean", ["masked"], ["pooled"], axes=[1], keepdims=0),
        helper.make_node("Add", ["pooled", "x"], ["summed"]),
        helper.make_node("MatMul", ["summed", "weight"], ["mm"]),
        helper.make_node("Relu", ["mm"], ["y"]),
    ]
    axes = numpy_helper.from_array(np.array([2], np.int64), "axes")
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64,
                                       ["batch", "sequence"]),
         helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        [table, weight, axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # loadable by older onnxruntime releases too
    return model


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "tiny.onnx"
    onnx.save(_tiny_model(), str(path))
    return str(path)


def test_bench_prints_figures(model_path, capsys):
    assert main(["bench", model_path, "--runs", "3", "--warmup", "1", "--batch", "2"]) == 0
    out = capsys.readouterr().out
    for text in ("blas:", "cpu:", "median ms", "p90 ms", "items/s", "create s",
                 "input_ids [2, 128] int64", "x [2, 4] float32"):
        assert text in out, text
    ort_line = next(line for line in out.splitlines() if line.startswith("ort" + " " * 9))
    assert ort_line.split()[-1] == "3"


def test_json_has_expected_keys(model_path, tmp_path, capsys):
    target = tmp_path / "out.json"
    assert main(["bench", model_path, "--runs", "2", "--dim", "sequence=7",
                 "--json", str(target)]) == 0
    report = json.loads(target.read_text())
    assert set(report) >= {"config", "environment", "inputs", "results", "comparisons"}
    assert report["inputs"]["input_ids"] == {"shape": [1, 7], "dtype": "int64"}
    ours = report["results"]["ort"]
    assert ours["status"] == "ok" and ours["runs"] == 2 and len(ours["times_ms"]) == 2
    for key in ("median_ms", "p90_ms", "throughput", "session_creation_s"):
        assert ours[key] > 0
    assert {"blas", "warnings", "cpu"} <= set(report["environment"])
    assert report["config"]["threads"] == 1
    assert "results written to" in capsys.readouterr().out


def test_compare_onnxruntime_and_reference(model_path, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    target = tmp_path / "cmp.json"
    assert main(["bench", model_path, "--runs", "2", "--batch", "3",
                 "--compare", "onnxruntime,reference", "--json", str(target)]) == 0
    out = capsys.readouterr().out
    assert "ort/onnxruntime:" in out and "ort/reference:" in out
    assert "outputs agree" in out and "DIFFER" not in out
    report = json.loads(target.read_text())
    for engine in ("onnxruntime", "reference"):
        assert report["results"][engine]["status"] == "ok"
        comparison = report["comparisons"][engine]
        assert comparison["outputs_agree"] is True and comparison["ratio"] > 0
        assert comparison["max_abs_diff"] < 1e-4


def test_reference_skipped_over_its_limit(model_path, capsys):
    assert main(["bench", model_path, "--runs", "1", "--compare", "reference",
                 "--reference-limit", "1e-9"]) == 0
    assert "reference    skipped:" in capsys.readouterr().out


def test_profile_prints_op_types(model_path, capsys):
    assert main(["bench", model_path, "--runs", "2", "--profile"]) == 0
    out = capsys.readouterr().out
    assert "ort profile:" in out and "op type" in out and "MatMul" in out


@pytest.mark.parametrize("args, message", [
    (["--runs", "0"], "--runs must be at least 1"),
    (["--batch", "0"], "--batch must be at least 1"),
    (["--dim", "sequence"], "--dim must look like NAME=SIZE"),
    (["--dim", "sequence=abc"], "--dim must look like NAME=SIZE"),
    (["--compare", "tensorflow"], "unknown engine(s) tensorflow"),
    (["--providers", "NoSuchExecutionProvider"], "unknown provider(s)"),
    (["--optimization-level", "3"], "invalid choice"),
])
def test_bad_arguments(model_path, capsys, args, message):
    with pytest.raises(SystemExit) as raised:
        main(["bench", model_path, *args])
    assert raised.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_model(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["bench", str(tmp_path / "nope.onnx")])
    assert "model file not found" in capsys.readouterr().err


def test_feeds_follow_metadata():
    model = _tiny_model()
    feeds = bench.make_feeds(bench.model_inputs(model), model, {"sequence": 16}, batch=4)
    assert feeds["input_ids"].shape == (4, 16) and feeds["input_ids"].dtype == np.int64
    assert feeds["input_ids"].min() >= 0 and feeds["input_ids"].max() < 50
    assert feeds["input_ids"].max() > 9          # drawn from the whole vocabulary
    assert (feeds["attention_mask"] == 1).all()
    assert feeds["x"].shape == (4, 4) and feeds["x"].dtype == np.float32
    assert bench.resolve_shape([None, "seq_len", "other", 5], {}, 3) == [3, 128, 1, 5]
    assert bench.resolve_shape([1, "batch_size", 64], {}, 3) == [1, 3, 64]


def test_coretype_warning():
    avx512 = {"sse2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq",
              "avx512cd"}
    warning = bench.coretype_warning({"OPENBLAS_CORETYPE": "Haswell"}, avx512)
    assert warning and "AVX2/FMA" in warning and "AVX-512" in warning
    assert bench.coretype_warning({"OPENBLAS_CORETYPE": "SkylakeX"}, avx512) is None
    assert bench.coretype_warning({}, avx512) is None
    assert bench.coretype_warning({"OPENBLAS_CORETYPE": "Haswell"}, {"sse2", "avx2", "fma"}) \
        is None
    assert bench.openblas_choice(avx512) == "SkylakeX"
    assert bench.openblas_choice({"sse2", "avx", "avx2", "fma"}) == "Haswell"
    assert bench.cpu_isa_level(set()) is None


def test_outputs_agree_reports_differences():
    a = [np.array([1.0, 2.0], np.float32), np.array([1, 2], np.int64)]
    assert bench.outputs_agree(a, a)[:2] == (True, 0.0)
    agree, worst, note = bench.outputs_agree(a, [a[0] + 0.5, np.array([1, 3])])
    assert not agree and worst == pytest.approx(1.0) and "1 of 2 values differ" in note
    assert not bench.outputs_agree(a, a[:1])[0]


def test_python_dash_m(model_path):
    done = subprocess.run([sys.executable, "-m", "ort", "bench", model_path, "--runs", "1",
                           "--warmup", "0"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "median ms" in done.stdout


def test_feeds_file_gives_the_inputs(model_path, tmp_path, capsys):
    feeds = {"input_ids": np.arange(10, dtype=np.int64).reshape(2, 5),
             "attention_mask": np.ones((2, 5), np.int64),
             "x": np.full((2, 4), 0.25, np.float32)}
    np.savez(tmp_path / "feeds.npz", **feeds)
    target = tmp_path / "out.json"
    assert main(["bench", model_path, "--runs", "1", "--feeds", str(tmp_path / "feeds.npz"),
                 "--json", str(target)]) == 0
    assert "input_ids [2, 5] int64" in capsys.readouterr().out
    assert json.loads(target.read_text())["inputs"]["x"] == {"shape": [2, 4],
                                                             "dtype": "float32"}


def test_feeds_file_missing(model_path, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["bench", model_path, "--feeds", str(tmp_path / "nope.npz")])
    assert "--feeds: file not found" in capsys.readouterr().err


def test_run_bench_takes_feeds(model_path):
    feeds = {"input_ids": np.zeros((3, 2), np.int64), "attention_mask": np.ones((3, 2), np.int64),
             "x": np.ones((3, 4), np.float32)}
    lines: list[str] = []
    report = bench.run_bench(bench.BenchConfig(model=model_path, runs=1, warmup=0,
                                               progress=False),
                             out=lines.append, header=False, feeds=feeds)
    assert report["inputs"]["x"]["shape"] == [3, 4]
    assert not any(line.startswith("cpu:") for line in lines)


# The benchmark scripts (benchmarks/ in the repository: run_all.py's goal table, the real-model
# manifest, the fresh-process worker). Nothing here downloads or times anything.
BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture()
def benchmarks_on_path(monkeypatch):
    if not (BENCHMARKS / "goals.py").exists():
        pytest.skip("the repository's benchmarks folder is not here")
    monkeypatch.syspath_prepend(str(BENCHMARKS))


def _report(name, batch, threads, ratio, real=False):
    return {"name": name, "real": real, "config": {"batch": batch, "threads": threads},
            "results": {}, "comparisons": {"onnxruntime": {"ratio": ratio}}}


def test_goal_table_geomean_per_group(benchmarks_on_path):
    import goals

    reports = [_report("resnet18", 1, 1, 2.0), _report("mobilenetv2", 1, 1, 0.5),
               _report("resnet18", 1, 2, 4.0), _report("magika", 1, 1, 3.0, real=True),
               _report("tiny_vad", 1, 1, None)]
    lines = goals.goal_table(reports, [1, 2], {"resnet18 b8": {"ratio": 1.2, "detail": "x"}})
    cnn = next(line for line in lines if line.startswith("| CNNs, batch 1 |"))
    cells = [c.strip() for c in cnn.strip("|").split("|")]
    assert cells[1:5] == ["1.3", "1.00", "met", "2/3"]        # geomean of 2.0 and 0.5
    assert cells[5:8] == ["4.00", "**NOT met**", "1/3"]
    assert cells[-1] == "resnet18 b1 2.00"
    real = next(line for line in lines if line.startswith("| real-model set"))
    assert "| 3.00 | **NOT met** | 1/1 |" in real
    recurrent = next(line for line in lines if line.startswith("| small recurrent"))
    assert "| — | — | 0/3 |" in recurrent                      # no ratio: not counted
    assert any(line.startswith("| peak RSS resnet18 b8 | 1.5 | 1.20 | met |") for line in lines)
    assert goals.geomean([]) is None and goals.geomean([2.0, 8.0]) == pytest.approx(4.0)


def test_real_model_manifest_is_complete(benchmarks_on_path):
    import real_models

    manifest = real_models.load_manifest()
    assert len(manifest["models"]) >= 10
    names = [entry["name"] for entry in manifest["models"]]
    assert len(set(names)) == len(names)
    for entry in manifest["models"]:
        wheel = manifest["wheels"][entry["package"]]
        assert "==" in entry["package"] and wheel["file"].endswith(".whl")
        for digest in (wheel["sha256"], entry["sha256"]):
            assert len(digest) == 64 and int(digest, 16) >= 0
        assert entry["path"].endswith(".onnx") and entry["inputs"] and entry["what"]
        assert wheel["license"]
    assert [e["name"] for e in real_models.entries(manifest, quick=True)]
    with pytest.raises(ValueError, match="unknown real model"):
        real_models.entries(manifest, ["no_such_model"])


def test_real_model_feeds_follow_the_manifest(benchmarks_on_path, tmp_path):
    import real_models

    graph = helper.make_graph(
        [helper.make_node("Cast", ["ids"], ["idf"], to=TensorProto.FLOAT),
         helper.make_node("Add", ["x", "idf"], ["y"])], "feeds",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4]),
         helper.make_tensor_value_info("ids", TensorProto.INT32, ["n", 4]),
         helper.make_tensor_value_info("sr", TensorProto.INT64, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4])])
    path = tmp_path / "feeds.onnx"
    onnx.save(helper.make_model(graph), str(path))
    entry = {"name": "feeds", "inputs": {"x": {"shape": [2, 4], "low": 0.0, "high": 1.0},
                                         "ids": {"shape": [2, 4], "high": 257},
                                         "sr": {"value": 16000, "shape": []}}}
    feeds = real_models.make_feeds(entry, path)
    assert feeds["x"].dtype == np.float32 and (feeds["x"] >= 0).all() and (feeds["x"] < 1).all()
    assert feeds["ids"].dtype == np.int32 and feeds["ids"].max() < 257
    assert feeds["sr"].shape == () and feeds["sr"].dtype == np.int64 and feeds["sr"] == 16000
    np.testing.assert_array_equal(real_models.make_feeds(entry, path)["x"], feeds["x"])
    del entry["inputs"]["sr"]
    with pytest.raises(ValueError, match="no shape for input"):
        real_models.make_feeds(entry, path)


def test_isolated_worker_reports_creation_and_memory(benchmarks_on_path, model_path, tmp_path):
    import isolated

    feeds = tmp_path / "feeds.npz"
    np.savez(feeds, input_ids=np.zeros((1, 3), np.int64),
             attention_mask=np.ones((1, 3), np.int64), x=np.ones((1, 4), np.float32))
    figures = isolated.run_worker(model_path, feeds, "ort", sessions=2, runs=1)
    assert "error" not in figures, figures
    assert len(figures["create_s"]) == 2 and all(t > 0 for t in figures["create_s"])
    if figures["peak_mb"] is not None:      # /proc is there
        assert figures["peak_mb"] >= figures["baseline_mb"] > 0
    assert "error" in isolated.run_worker(str(tmp_path / "missing.onnx"), feeds, "ort")


def test_fetch_checks_hashes_without_downloading(benchmarks_on_path, tmp_path, capsys):
    import hashlib
    import zipfile

    import fetch_real_models

    payload = b"not really onnx"
    wheels = tmp_path / "cache" / "wheels"
    wheels.mkdir(parents=True)
    with zipfile.ZipFile(wheels / "pkg-1.0-py3-none-any.whl", "w") as archive:
        archive.writestr("pkg/model.onnx", payload)
    wheel_hash = fetch_real_models.sha256_of(wheels / "pkg-1.0-py3-none-any.whl")
    manifest = {"wheels": {"pkg==1.0": {"file": "pkg-1.0-py3-none-any.whl",
                                         "sha256": wheel_hash, "license": "MIT"}}}
    entry = {"name": "tiny", "package": "pkg==1.0", "path": "pkg/model.onnx",
             "sha256": hashlib.sha256(payload).hexdigest()}
    cache = tmp_path / "cache"
    assert fetch_real_models.fetch(cache, [entry], manifest) == []
    assert (cache / "tiny.onnx").read_bytes() == payload
    assert fetch_real_models.fetch(cache, [entry], manifest) == []     # present, hash ok
    assert "present, hash ok" in capsys.readouterr().out
    (cache / "tiny.onnx").unlink()
    bad = dict(entry, sha256="0" * 64)
    assert fetch_real_models.fetch(cache, [bad], manifest) == ["tiny"]
    assert not (cache / "tiny.onnx").exists() and not list(cache.glob("*.part"))
    assert "FAILED" in capsys.readouterr().out
