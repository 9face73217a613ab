"""Parity of ``ort`` with onnxruntime on the generated test models.

The models come from ``tests/models/generate.py`` (ResNet-style CNN, BERT-style encoder, MLP).
For each one, both runtimes get the same random inputs and must agree to ``rtol=1e-4``,
``atol=1e-5``; their ``get_inputs()`` / ``get_outputs()`` metadata must match exactly.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import ort

onnxruntime = pytest.importorskip("onnxruntime")

RTOL = 1e-4
ATOL = 1e-5
PROVIDERS = ["CPUExecutionProvider"]


def _load_generator():
    """Import ``tests/models/generate.py`` by path, whatever ``sys.path`` looks like."""
    name = "ort_tests_models_generate"
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).resolve().parent / "models" / "generate.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


generate = _load_generator()


# ------------------------------------------------------------------------------------------
# fixtures and input builders
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_bytes() -> dict[str, bytes]:
    """Serialized models with symbolic batch/seq dims, built once per module."""
    return {name: model.SerializeToString() for name, model in generate.all_models().items()}


def _image_feeds(batch: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"input": rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)}


def _mlp_feeds(batch: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"input": rng.standard_normal((batch, 20)).astype(np.float32)}


def _bert_feeds(batch: int, seq: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random token ids and types, and a padding mask with zeros in every row."""
    input_ids = rng.integers(0, 100, size=(batch, seq), dtype=np.int64)
    token_type_ids = rng.integers(0, 2, size=(batch, seq), dtype=np.int64)
    lengths = rng.integers(1, seq, size=batch)  # at least one real token, at least one pad
    attention_mask = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int64)
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "token_type_ids": token_type_ids,
    }


def _sessions(model: bytes):
    """The same model in ort and in onnxruntime."""
    ours = ort.InferenceSession(model, providers=PROVIDERS)
    reference = onnxruntime.InferenceSession(model, providers=PROVIDERS)
    return ours, reference


def _node_args(args) -> list[tuple]:
    """``NodeArg`` metadata as comparable tuples."""
    return [(arg.name, arg.type, list(arg.shape)) for arg in args]


def _assert_same_metadata(ours, reference) -> None:
    assert _node_args(ours.get_inputs()) == _node_args(reference.get_inputs())
    assert _node_args(ours.get_outputs()) == _node_args(reference.get_outputs())


def _assert_same_outputs(ours, reference, feeds, output_names=None) -> None:
    expected = reference.run(output_names, feeds)
    actual = ours.run(output_names, feeds)
    assert len(actual) == len(expected)
    names = output_names or [arg.name for arg in reference.get_outputs()]
    for name, got, want in zip(names, actual, expected):
        got = np.asarray(got)
        assert got.dtype == want.dtype, name
        assert got.shape == want.shape, name
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=name)


# ------------------------------------------------------------------------------------------
# metadata
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["resnet_cnn", "bert_encoder", "mlp"])
def test_metadata_matches_onnxruntime(model_bytes, name):
    ours, reference = _sessions(model_bytes[name])
    _assert_same_metadata(ours, reference)


def test_metadata_symbolic_dims(model_bytes):
    ours = ort.InferenceSession(model_bytes["resnet_cnn"], providers=PROVIDERS)
    (inp,) = ours.get_inputs()
    assert inp.name == "input"
    assert inp.type == "tensor(float)"
    assert inp.shape == ["batch", 3, 32, 32]
    (out,) = ours.get_outputs()
    assert (out.name, out.type, out.shape) == ("logits", "tensor(float)", ["batch", 10])

    bert = ort.InferenceSession(model_bytes["bert_encoder"], providers=PROVIDERS)
    assert [(a.name, a.type, a.shape) for a in bert.get_inputs()] == [
        ("input_ids", "tensor(int64)", ["batch", "seq"]),
        ("attention_mask", "tensor(int64)", ["batch", "seq"]),
        ("token_type_ids", "tensor(int64)", ["batch", "seq"]),
    ]
    assert [(a.name, a.type, a.shape) for a in bert.get_outputs()] == [
        ("last_hidden_state", "tensor(float)", ["batch", "seq", 64]),
        ("pooler_output", "tensor(float)", ["batch", 64]),
    ]


def test_metadata_fixed_dims():
    model = generate.bert_encoder(batch=2, seq=8).SerializeToString()
    ours, reference = _sessions(model)
    _assert_same_metadata(ours, reference)
    assert ours.get_inputs()[0].shape == [2, 8]
    assert ours.get_outputs()[0].shape == [2, 8, 64]


# ------------------------------------------------------------------------------------------
# numerical parity
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch", [1, 3])
def test_resnet_cnn_parity(model_bytes, batch):
    ours, reference = _sessions(model_bytes["resnet_cnn"])
    feeds = _image_feeds(batch, np.random.default_rng(100 + batch))
    _assert_same_outputs(ours, reference, feeds)


@pytest.mark.parametrize("batch", [1, 3])
def test_mlp_parity(model_bytes, batch):
    ours, reference = _sessions(model_bytes["mlp"])
    feeds = _mlp_feeds(batch, np.random.default_rng(200 + batch))
    _assert_same_outputs(ours, reference, feeds)
    probabilities = ours.run(None, feeds)[0]
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("seq", [8, 16])
@pytest.mark.parametrize("batch", [1, 3])
def test_bert_encoder_parity(model_bytes, batch, seq):
    ours, reference = _sessions(model_bytes["bert_encoder"])
    feeds = _bert_feeds(batch, seq, np.random.default_rng(300 + 10 * batch + seq))
    assert (feeds["attention_mask"] == 0).any()
    _assert_same_outputs(ours, reference, feeds)


def test_bert_encoder_output_subset(model_bytes):
    """Requesting only some outputs, by name and in another order."""
    ours, reference = _sessions(model_bytes["bert_encoder"])
    feeds = _bert_feeds(2, 8, np.random.default_rng(7))
    _assert_same_outputs(ours, reference, feeds, ["pooler_output"])
    _assert_same_outputs(ours, reference, feeds, ["pooler_output", "last_hidden_state"])


def test_bert_encoder_mask_matters(model_bytes):
    """Padding positions must not leak into the real tokens' outputs."""
    ours = ort.InferenceSession(model_bytes["bert_encoder"], providers=PROVIDERS)
    feeds = _bert_feeds(1, 8, np.random.default_rng(11))
    feeds["attention_mask"][:] = [[1, 1, 1, 1, 1, 0, 0, 0]]
    changed = {k: v.copy() for k, v in feeds.items()}
    changed["input_ids"][0, 5:] = (changed["input_ids"][0, 5:] + 1) % 100
    before = ours.run(["last_hidden_state"], feeds)[0]
    after = ours.run(["last_hidden_state"], changed)[0]
    np.testing.assert_allclose(before[:, :5], after[:, :5], rtol=RTOL, atol=ATOL)


# ------------------------------------------------------------------------------------------
# loading from files
# ------------------------------------------------------------------------------------------


class _FsPath:
    """A minimal ``os.PathLike`` that is not a ``pathlib.Path``."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def __fspath__(self) -> str:
        return str(self._path)


def test_load_from_path_and_pathlike(model_bytes, tmp_path):
    path = tmp_path / "mlp.onnx"
    path.write_bytes(model_bytes["mlp"])
    feeds = _mlp_feeds(2, np.random.default_rng(5))
    expected = onnxruntime.InferenceSession(str(path), providers=PROVIDERS).run(None, feeds)

    for source in (str(path), path, _FsPath(path)):
        assert isinstance(source, (str, os.PathLike))
        session = ort.InferenceSession(source, providers=PROVIDERS)
        assert _node_args(session.get_inputs()) == [("input", "tensor(float)", ["batch", 20])]
        (got,) = session.run(None, feeds)
        np.testing.assert_allclose(got, expected[0], rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", ["resnet_cnn", "bert_encoder", "mlp"])
def test_a_discarded_session_is_freed_without_the_cycle_collector(name):
    """Kernels keep their NodeInfo and the optimizer keeps a view of its context: neither may
    refer back to the plan or the session, or big models pile up until a gc run."""
    import gc
    import weakref

    model = getattr(generate, name)()
    enabled = gc.isenabled()
    gc.disable()
    try:
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        session_ref, plan_ref = weakref.ref(sess), weakref.ref(sess._plan)
        del sess
        assert session_ref() is None and plan_ref() is None
    finally:
        if enabled:
            gc.enable()
