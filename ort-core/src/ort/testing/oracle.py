"""Comparing ort with an oracle: onnxruntime (the reference on real models) or onnx's
``ReferenceEvaluator`` (the reference on the spec).

onnxruntime is a test-only dependency: it is imported when an oracle run needs it, never by
``import ort`` or ``import ort.testing`` (install it with ``pip install 'ort-core[testing]'``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from onnx import ModelProto

from ..api import InferenceSession, SessionOptions
from .models import node_model

__all__ = ["ORACLES", "run_ort", "run_onnxruntime", "run_reference", "expected_outputs",
           "assert_outputs_match", "assert_matches_onnxruntime", "check_node"]

#: The oracles :func:`expected_outputs` knows.
ORACLES = ("onnxruntime", "reference")


def _serialized(model: ModelProto | bytes) -> bytes:
    return model if isinstance(model, bytes) else model.SerializeToString()


def run_ort(model: ModelProto | bytes, feeds: Mapping[str, Any],
            providers: Sequence[Any] | None = None,
            options: SessionOptions | None = None) -> list[Any]:
    """Run ``model`` once on ort (default provider list: the CPU provider)."""
    session = InferenceSession(_serialized(model), options,
                               providers=list(providers or ["CPUExecutionProvider"]))
    return session.run(None, dict(feeds))


def _onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the onnxruntime oracle needs onnxruntime: "
                          "pip install 'ort-core[testing]'") from exc
    return onnxruntime


def run_onnxruntime(model: ModelProto | bytes, feeds: Mapping[str, Any],
                    providers: Sequence[str] = ("CPUExecutionProvider",),
                    options: Any = None) -> list[Any]:
    """Run ``model`` once on onnxruntime (with ``options``, an ``onnxruntime.SessionOptions``;
    by default one that silences its warnings)."""
    onnxruntime = _onnxruntime()
    if options is None:
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
    session = onnxruntime.InferenceSession(_serialized(model), options,
                                           providers=list(providers))
    return session.run(None, dict(feeds))


def run_reference(model: ModelProto | bytes, feeds: Mapping[str, Any]) -> list[Any]:
    """Run ``model`` once on onnx's ``ReferenceEvaluator``."""
    from onnx.reference import ReferenceEvaluator

    proto = model if isinstance(model, ModelProto) else ModelProto.FromString(model)
    return list(ReferenceEvaluator(proto).run(None, dict(feeds)))


def expected_outputs(model: ModelProto | bytes, feeds: Mapping[str, Any],
                     oracle: str = "onnxruntime") -> list[Any]:
    """The oracle's outputs. ``"onnxruntime"`` falls back to the reference evaluator where
    onnxruntime has no kernel for the op, version or type (``NotImplemented``) or refuses a
    graph the spec allows (``InvalidGraph``)."""
    if oracle not in ORACLES:
        raise ValueError(f"unknown oracle {oracle!r}; use one of {ORACLES}")
    if oracle == "reference":
        return run_reference(model, feeds)
    errors = _onnxruntime().capi.onnxruntime_pybind11_state
    try:
        return run_onnxruntime(model, feeds)
    except (errors.NotImplemented, errors.InvalidGraph):
        return run_reference(model, feeds)


def _same_float8_bytes(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    # onnxruntime returns float8 tensors as raw uint8 bytes; compare ort's as bytes too
    if want.dtype == np.uint8 and got.dtype != np.uint8 and got.dtype.itemsize == 1 \
            and got.dtype.kind == "V":
        return got.view(np.uint8)
    return got


def assert_outputs_match(actual: Sequence[Any], expected: Sequence[Any], rtol: float = 1e-5,
                         atol: float = 1e-6, what: str = "output") -> None:
    """Assert that ``actual`` (ort's outputs) equals ``expected`` (the oracle's) output by
    output: tensors must be numpy arrays of the expected dtype, shape and values (floats within
    ``rtol``/``atol``, NaNs equal; others exactly), sequences are lists compared item by item,
    maps key by key (scalar values by value), empty optionals None."""
    assert len(actual) == len(expected), f"{len(actual)} {what}s, expected {len(expected)}"
    for index, (got, want) in enumerate(zip(actual, expected)):
        label = f"{what} {index}"
        if want is None or got is None:
            assert got is None and want is None, f"{label}: {got!r} vs {want!r}"
        elif isinstance(want, dict):
            assert isinstance(got, dict) and set(got) == set(want), f"{label}: keys differ"
            for key in want:
                assert_outputs_match([got[key]], [want[key]], rtol, atol, f"{label}[{key!r}]")
        elif isinstance(want, (list, tuple)):
            assert isinstance(got, list), f"{label}: {type(got).__name__}, expected a list"
            assert_outputs_match(got, want, rtol, atol, f"{label} item")
        elif isinstance(want, np.ndarray):
            assert isinstance(got, np.ndarray), f"{label}: {type(got).__name__}, expected a " \
                "numpy array"
            _assert_tensor(got, want, rtol, atol, label)
        elif isinstance(want, (str, bytes)):
            assert got == want, f"{label}: {got!r} != {want!r}"
        else:  # a scalar (a map's value): its Python type says nothing of the element type
            np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want, np.float64),
                                       rtol=rtol, atol=atol, equal_nan=True, err_msg=label)


def _assert_tensor(got: np.ndarray, want: np.ndarray, rtol: float, atol: float,
                   label: str) -> None:
    got = _same_float8_bytes(got, want)
    assert got.shape == want.shape, f"{label}: shape {got.shape}, expected {want.shape}"
    if want.dtype == object or got.dtype == object:
        assert got.dtype == want.dtype, f"{label}: dtype {got.dtype}, expected {want.dtype}"
        assert got.tolist() == want.tolist(), f"{label}: {got!r} != {want!r}"
        return
    assert got.dtype == want.dtype, f"{label}: dtype {got.dtype}, expected {want.dtype}"
    if got.dtype.kind in "fcV":
        np.testing.assert_allclose(got.astype(np.float64 if got.dtype.kind != "c" else got.dtype),
                                   want.astype(np.float64 if want.dtype.kind != "c"
                                               else want.dtype),
                                   rtol=rtol, atol=atol, equal_nan=True, err_msg=label)
    else:
        np.testing.assert_array_equal(got, want, err_msg=label)


def assert_matches_onnxruntime(model: ModelProto | bytes, feeds: Mapping[str, Any], *,
                               providers: Sequence[Any] | None = None, rtol: float = 1e-5,
                               atol: float = 1e-6, oracle: str = "onnxruntime",
                               options: SessionOptions | None = None) -> list[Any]:
    """Run ``model`` on ort (with ``providers``) and on ``oracle``; assert the outputs match
    (:func:`assert_outputs_match`) and return ort's."""
    expected = expected_outputs(model, feeds, oracle)
    actual = run_ort(model, feeds, providers, options)
    assert_outputs_match(actual, expected, rtol, atol)
    return actual


def check_node(op_type: str, inputs: Sequence[Any], attrs: Mapping[str, Any] | None = None, *,
               rtol: float = 1e-5, atol: float = 1e-6, oracle: str = "onnxruntime",
               providers: Sequence[Any] | None = None, **model_options: Any) -> list[Any]:
    """Build a one-node model (:func:`ort.testing.node_model`; ``model_options`` go there),
    run it on ort and on ``oracle`` and assert the outputs match; return ort's."""
    model, feeds = node_model(op_type, inputs, attrs, **model_options)
    return assert_matches_onnxruntime(model, feeds, providers=providers, rtol=rtol, atol=atol,
                                      oracle=oracle)
