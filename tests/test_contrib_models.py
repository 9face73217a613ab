"""ort against onnxruntime on the contrib-model set of ``tests/contrib_models/``.

The set (made by ``tests/contrib_models/generate.py``, committed) holds small float models and
the models onnxruntime's own tools derive from them: offline-optimized graphs, transformer
fusions, dynamic and static quantization, 4-bit weights; in short, the ``com.microsoft`` ops
real users bring. Each ``<family>/<name>.onnx`` has its sample feeds in ``<name>.npz``.

For every model, ort (``ort.InferenceSession(path, providers=["CPUExecutionProvider"])``) and
onnxruntime run the sample feeds and must agree:

* float models: ``rtol=1e-4``, ``atol=1e-4`` (times the output's magnitude where it is over 1);
  models converted to float16: ``2e-3`` for both;
* models that quantize activations (QuantizeLinear, DynamicQuantizeLinear, QLinear*,
  MatMulInteger, ConvInteger, the com.microsoft quantized ops, MatMulNBits at accuracy level
  4): first node by node, each node of the model run alone on ort with the inputs onnxruntime
  computed for it (every intermediate made a graph output on a copy of the model, one
  onnxruntime run at ORT_DISABLE_ALL): integer outputs must be equal, float outputs within
  ``rtol=1e-4``, ``atol=1e-5`` (times the magnitude). End to end they may then differ by one
  quantization step (upstream float noise may move a rounding): the scale of the
  DequantizeLinear making an output, or, for outputs computed in float from dynamically
  quantized products, 1/64 of the output's largest magnitude.

Models expected to fail now are listed in ``tests/contrib_models/expected_outcomes.txt`` as
``<family>/<name>.onnx <one-line reason>``; they are strict xfails (a listed model that passes
fails the run). ``python tests/test_contrib_models.py --update`` rewrites the file from a fresh
run (reasons such as ``NotImplemented: com.microsoft:MatMulNBits`` are written from the
failure; edit them where a better one is known). ``python tests/test_contrib_models.py
--summary`` runs every model and prints passed/total per family and ort's time over
onnxruntime's per model (median of 20 runs, one thread on both).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import ModelProto, ValueInfoProto, helper, numpy_helper

import ort
from ort.testing import assert_outputs_match, tensor_type_of

ROOT = Path(__file__).resolve().parent / "contrib_models"
EXPECTED = ROOT / "expected_outcomes.txt"
PROVIDERS = ["CPUExecutionProvider"]
#: Folder -> the family's name in the summary.
FAMILIES = {"float": "float", "optimized": "offline-optimized",
            "fusions": "transformer fusions", "dynamic": "dynamic quantization",
            "static": "static quantization", "nbits": "4-bit"}
FLOAT_RTOL, FLOAT_ATOL = 1e-4, 1e-4
NODE_RTOL, NODE_ATOL = 1e-4, 1e-5
#: Models computing in float16: a couple of float16 steps (2**-10 relative) of slack.
FLOAT16_RTOL, FLOAT16_ATOL = 2e-3, 2e-3
#: Ops whose presence makes a model "activation-quantized" (node-by-node check, one step e2e).
QUANTIZED_OPS = frozenset({
    "QuantizeLinear", "DynamicQuantizeLinear", "MatMulInteger", "ConvInteger", "QLinearConv",
    "QLinearMatMul", "QGemm", "QAttention", "QEmbedLayerNormalization", "DynamicQuantizeMatMul",
    "DynamicQuantizeLSTM", "MatMulIntegerToFloat", "QLinearAdd", "QLinearMul",
    "QLinearSigmoid", "QLinearLeakyRelu", "QLinearAveragePool", "QLinearGlobalAveragePool",
    "QLinearConcat", "QLinearSoftmax", "QLinearWhere", "QLinearReduceMean"})
#: Outputs computed in float from dynamically quantized products may move by this fraction
#: of their largest magnitude (one step of an 8-bit activation, with some propagation).
DYNAMIC_STEP = 1 / 64


def model_paths() -> list[str]:
    """Every committed model as ``<family>/<name>.onnx``, in family order."""
    order = list(FAMILIES)
    paths = [p.relative_to(ROOT).as_posix() for p in ROOT.glob("*/*.onnx")]
    return sorted(paths, key=lambda p: (order.index(p.split("/")[0]), p))


def read_expected() -> dict[str, str]:
    """The expected-failure file as ``{model path: reason}``."""
    if not EXPECTED.exists():
        return {}
    listed = {}
    for line in EXPECTED.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            path, _, reason = line.partition(" ")
            listed[path] = reason.strip()
    return listed


def sample_feeds(path: str) -> dict[str, np.ndarray]:
    """The sample inputs saved beside a model."""
    with np.load(ROOT / path.replace(".onnx", ".npz")) as data:
        return {name: data[name] for name in data.files}


def is_quantized(model: ModelProto) -> bool:
    """Whether the model quantizes activations (its nodes are checked one by one)."""
    for node in model.graph.node:
        if node.op_type in QUANTIZED_OPS:
            return True
        if node.op_type == "MatMulNBits" and any(
                a.name == "accuracy_level" and a.i == 4 for a in node.attribute):
            return True
    return False


def is_float16(model: ModelProto) -> bool:
    """Whether the model holds float16 weights (the float16 tolerance applies)."""
    return any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer)


def _onnxruntime() -> Any:
    import onnxruntime

    return onnxruntime


#: Session config entries onnxruntime runs a model with, where its default changes the
#: computation the model describes. At its default level 4, onnxruntime rewrites an int4
#: DequantizeLinear + MatMul into MatMulNBits that rounds the activations to int8 (~1e-3 off
#: the float graph); ort computes the graph as written, which onnxruntime does at level 0.
ORACLE_CONFIG: dict[str, dict[str, str]] = {
    path: {"session.qdq_matmulnbits_accuracy_level": "0"}
    for path in ("nbits/mlp_b32_qdq.onnx", "nbits/llama_b32_qdq.onnx")
}


def oracle_options(path: str | None = None) -> Any:
    """onnxruntime's session options as the oracle: one thread, because some of its quantized
    kernels (DynamicQuantizeLSTM) quantize each thread's block of the batch separately, so
    their results depend on the thread count; with one thread they are deterministic. A
    model's :data:`ORACLE_CONFIG` entries are added."""
    options = _onnxruntime().SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    for key, value in ORACLE_CONFIG.get(path or "", {}).items():
        options.add_session_config_entry(key, value)
    return options


def _level(name: str) -> Any:
    return getattr(_onnxruntime().GraphOptimizationLevel, name)


# ------------------------------------------------------------------------------------------
# node by node
# ------------------------------------------------------------------------------------------


def intermediates(model: ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
    """Every value onnxruntime computes for ``feeds`` (each node as written: ORT_DISABLE_ALL),
    with the feeds themselves, by name."""
    copy = ModelProto()
    copy.CopyFrom(model)
    declared = {o.name for o in copy.graph.output}
    for node in copy.graph.node:
        for name in node.output:
            if name and name not in declared:
                copy.graph.output.append(ValueInfoProto(name=name))
                declared.add(name)
    options = oracle_options()
    options.graph_optimization_level = _level("ORT_DISABLE_ALL")
    session = _onnxruntime().InferenceSession(copy.SerializeToString(), options,
                                              providers=PROVIDERS)
    names = [o.name for o in session.get_outputs()]
    values = dict(zip(names, session.run(None, feeds)))
    values.update(feeds)
    return values


def node_alone(model: ModelProto, node: onnx.NodeProto,
               values: dict[str, Any]) -> tuple[ModelProto, dict[str, np.ndarray]]:
    """A model of ``node`` alone, its constant inputs (initializers, Constant outputs) kept as
    initializers and the others fed onnxruntime's values."""
    initializers = {t.name: t for t in model.graph.initializer}
    constants = {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
    inputs, inits, feeds = [], [], {}
    for name in dict.fromkeys(node.input):
        if not name:
            continue
        if name in initializers:
            inits.append(initializers[name])
        elif name in constants:
            inits.append(numpy_helper.from_array(np.asarray(values[name]), name))
        else:
            value = np.asarray(values[name])
            feeds[name] = value
            inputs.append(helper.make_tensor_value_info(name, tensor_type_of(value.dtype),
                                                        value.shape))
    outputs = [helper.make_empty_tensor_value_info(n) for n in node.output if n]
    graph = helper.make_graph([node], "node", inputs, outputs, initializer=inits)
    alone = helper.make_model(graph, opset_imports=list(model.opset_import),
                              ir_version=model.ir_version)
    return alone, feeds


def _close(got: np.ndarray, want: np.ndarray, rtol: float, atol: float) -> str | None:
    """None when ``got`` matches ``want`` (floats within tolerance times the magnitude, others
    exactly), else what differs."""
    got = np.asarray(got)
    if got.dtype != want.dtype or got.shape != want.shape:
        return f"{got.dtype}{list(got.shape)}, expected {want.dtype}{list(want.shape)}"
    if want.dtype.kind == "f":
        scale = max(1.0, float(np.max(np.abs(want), initial=0.0)))
        diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
        bad = diff > atol * scale + rtol * np.abs(want.astype(np.float64))
        bad &= ~(np.isnan(got) & np.isnan(want))
    else:
        diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
        bad = got != want
    if bad.any():
        return f"{int(bad.sum())}/{bad.size} values differ, max |diff| {float(diff.max()):.3g}"
    return None


def check_nodes(model: ModelProto, values: dict[str, Any]) -> list[str]:
    """Run each node alone on ort with onnxruntime's inputs; the nodes that differ (or fail),
    as ``name (op): what``."""
    problems = []
    for node in model.graph.node:
        if node.op_type == "Constant":
            continue
        alone, feeds = node_alone(model, node, values)
        label = f"{node.name or node.output[0]} ({node.op_type})"
        try:
            got = ort.InferenceSession(alone.SerializeToString(), providers=PROVIDERS).run(
                None, feeds)
        except Exception as error:  # noqa: BLE001 - every failure is a finding here
            problems.append(f"{label}: {type(error).__name__}: {_first_line(error)}")
            continue
        for name, value in zip([n for n in node.output if n], got):
            what = _close(value, np.asarray(values[name]), NODE_RTOL, NODE_ATOL)
            if what:
                problems.append(f"{label} output {name}: {what}")
    return problems


def missing_ops(model: ModelProto, values: dict[str, Any]) -> list[str]:
    """``domain:op`` of every op type ort has no kernel for (one node of each run alone)."""
    missing, seen = [], set()
    for node in model.graph.node:
        key = f"{node.domain or 'ai.onnx'}:{node.op_type}"
        if key in seen or node.op_type == "Constant":
            continue
        seen.add(key)
        alone, _ = node_alone(model, node, values)
        try:
            ort.InferenceSession(alone.SerializeToString(), providers=PROVIDERS)
        except ort.errors.NotImplemented:
            missing.append(key)
        except Exception:  # noqa: BLE001 - only missing kernels are collected here
            pass
    return missing


# ------------------------------------------------------------------------------------------
# one model
# ------------------------------------------------------------------------------------------


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "message", None) or error)
    return (text.strip().splitlines() or [""])[0][:300]


def output_steps(model: ModelProto, values: dict[str, Any]) -> dict[str, float]:
    """The quantization step of each graph output: its DequantizeLinear's largest scale, or
    DYNAMIC_STEP of its largest magnitude where it is computed in float."""
    producers = {o: n for n in model.graph.node for o in n.output}
    initializers = {t.name: t for t in model.graph.initializer}
    steps = {}
    for output in model.graph.output:
        node = producers.get(output.name)
        if node is not None and node.op_type == "DequantizeLinear":
            scale = node.input[1]
            value = (numpy_helper.to_array(initializers[scale]) if scale in initializers
                     else values[scale])
            steps[output.name] = float(np.max(np.abs(value)))
        else:
            steps[output.name] = DYNAMIC_STEP * float(np.max(np.abs(values[output.name]),
                                                             initial=0.0))
    return steps


def check_model(path: str) -> None:
    """Run one model on ort and onnxruntime and assert they agree (see the module doc)."""
    model = onnx.load(str(ROOT / path))
    feeds = sample_feeds(path)
    names = [o.name for o in model.graph.output]
    expected = _onnxruntime().InferenceSession(str(ROOT / path), oracle_options(path),
                                               providers=PROVIDERS).run(None, feeds)
    try:
        session = ort.InferenceSession(str(ROOT / path), providers=PROVIDERS)
    except ort.errors.NotImplemented as error:
        missing = missing_ops(model, intermediates(model, feeds))
        raise ort.errors.NotImplemented(
            f"NotImplemented: {', '.join(missing) or _first_line(error)}") from error
    quantized = is_quantized(model)
    if quantized:
        values = intermediates(model, feeds)
        problems = check_nodes(model, values)
        assert not problems, f"{len(problems)} nodes differ: " + "; ".join(problems[:8])
    actual = session.run(None, feeds)
    assert len(actual) == len(expected), f"{len(actual)} outputs, expected {len(expected)}"
    if not quantized:
        rtol, atol = (FLOAT16_RTOL, FLOAT16_ATOL) if is_float16(model) else (FLOAT_RTOL,
                                                                             FLOAT_ATOL)
        for name, got, want in zip(names, actual, expected):
            scale = max(1.0, float(np.max(np.abs(want), initial=0.0)))
            assert_outputs_match([got], [want], rtol=rtol, atol=atol * scale, what=name)
        return
    steps = output_steps(model, dict(values, **dict(zip(names, expected))))
    for name, got, want in zip(names, actual, expected):
        assert_outputs_match([got], [want], rtol=0.0, atol=steps[name] * 1.001 + 1e-6,
                             what=f"{name} (one step: {steps[name]:.3g})")


def failure_reason(path: str) -> str | None:
    """None when the model passes, else a one-line reason for the expected file."""
    try:
        check_model(path)
    except AssertionError as error:
        return f"Mismatch: {' '.join(str(error).split())}"[:240]
    except Exception as error:  # noqa: BLE001 - any failure is recorded
        text = _first_line(error)
        if text.startswith("NotImplemented: "):
            return text
        return f"{type(error).__name__}: {text}"[:240]
    return None


# ------------------------------------------------------------------------------------------
# pytest
# ------------------------------------------------------------------------------------------


def _xfail(reason: str) -> Any:
    """A strict xfail that only a failure of the listed kind satisfies (a missing kernel must
    raise NotImplemented, a mismatch AssertionError; another error fails the test)."""
    raises = {"NotImplemented:": ort.errors.NotImplemented, "Mismatch:": AssertionError}.get(
        reason.split(" ")[0])
    return pytest.mark.xfail(strict=True, reason=reason, raises=raises)


def _params() -> list[Any]:
    listed = read_expected()
    return [pytest.param(p, id=p, marks=_xfail(listed[p])) if p in listed
            else pytest.param(p, id=p) for p in model_paths()]


@pytest.mark.parametrize("path", _params())
def test_contrib_model(path: str) -> None:
    pytest.importorskip("onnxruntime")
    check_model(path)


def test_expected_file_lists_only_existing_models() -> None:
    stale = sorted(set(read_expected()) - set(model_paths()))
    assert not stale, f"expected_outcomes.txt lists models that do not exist: {stale}"


def test_every_model_has_its_sample_feeds() -> None:
    """Each model's ``.npz`` holds exactly its graph inputs, and every family has models."""
    assert {p.split("/")[0] for p in model_paths()} == set(FAMILIES)
    for path in model_paths():
        model = onnx.load(str(ROOT / path), load_external_data=False)
        initializers = {t.name for t in model.graph.initializer}
        inputs = {i.name for i in model.graph.input if i.name not in initializers}
        assert set(sample_feeds(path)) == inputs, path


def test_node_by_node_check_finds_a_wrong_node() -> None:
    """The node check is not vacuous: a node whose recorded output is off by one is named."""
    pytest.importorskip("onnxruntime")
    path = "dynamic/mlp_u8.onnx"
    model = onnx.load(str(ROOT / path))
    values = intermediates(model, sample_feeds(path))
    node = next(n for n in model.graph.node if n.op_type == "MatMulInteger")
    values[node.output[0]] = values[node.output[0]] + 1
    problems = check_nodes(model, values)
    assert any(f"({node.op_type}) output {node.output[0]}" in p for p in problems), problems


# ------------------------------------------------------------------------------------------
# main: --update, --summary
# ------------------------------------------------------------------------------------------


def update_expected() -> None:
    """Rewrite the expected-failure file from a fresh run of every model."""
    lines = ["# Contrib models expected to fail now: <model path> <one-line reason>.",
             "# Written by `python tests/test_contrib_models.py --update`; strict xfail.",
             "# NotImplemented reasons are rewritten each time; a Mismatch reason edited by hand",
             "# is kept while the model still mismatches."]
    old = read_expected()
    for path in model_paths():
        reason = failure_reason(path)
        if reason and reason.startswith("Mismatch:") and old.get(path, "").startswith(
                "Mismatch:"):
            reason = old[path]
        print(f"{path}: {reason or 'passes'}")
        if reason:
            lines.append(f"{path} {reason}")
    EXPECTED.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _median_time(run, repeat: int = 20) -> float:
    run()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def summary() -> None:
    """Run every model; print passed/total per family and ort/onnxruntime time per model."""
    counts: dict[str, list[int]] = {family: [0, 0] for family in FAMILIES}
    ratios: dict[str, list[float]] = {family: [] for family in FAMILIES}
    for path in model_paths():
        family = path.split("/")[0]
        counts[family][1] += 1
        reason = failure_reason(path)
        if reason:
            print(f"{path:44s} FAIL  {reason[:100]}")
            continue
        counts[family][0] += 1
        feeds = sample_feeds(path)
        ours_options = ort.SessionOptions()
        ours_options.intra_op_num_threads = 1
        theirs_options = _onnxruntime().SessionOptions()
        theirs_options.intra_op_num_threads = 1
        ours = ort.InferenceSession(str(ROOT / path), ours_options, providers=PROVIDERS)
        theirs = _onnxruntime().InferenceSession(str(ROOT / path), theirs_options,
                                                 providers=PROVIDERS)
        t_ours = _median_time(lambda: ours.run(None, feeds))
        t_theirs = _median_time(lambda: theirs.run(None, feeds))
        ratios[family].append(t_ours / t_theirs)
        print(f"{path:44s} pass  ort {t_ours * 1e3:8.3f} ms  onnxruntime "
              f"{t_theirs * 1e3:7.3f} ms  ratio {t_ours / t_theirs:7.1f}x")
    print()
    for family, (passed, total) in counts.items():
        median = f"median ratio {statistics.median(ratios[family]):.1f}x" \
            if ratios[family] else ""
        print(f"{FAMILIES[family]:22s} {passed:3d}/{total:<3d} passed  {median}")
    passed = sum(c[0] for c in counts.values())
    total = sum(c[1] for c in counts.values())
    print(f"{'all':22s} {passed:3d}/{total:<3d} passed")


def main(argv: list[str] | None = None) -> None:
    """``--update``: rewrite the expected file; ``--summary``: counts and time ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--update", action="store_true", help="rewrite expected_outcomes.txt")
    group.add_argument("--summary", action="store_true", help="pass counts and time ratios")
    args = parser.parse_args(argv)
    if args.update:
        update_expected()
    else:
        summary()


if __name__ == "__main__":
    sys.exit(main())
