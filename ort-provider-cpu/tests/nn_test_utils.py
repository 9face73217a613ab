"""Defaults of the nn kernel tests over ``ort.testing``: inputs and outputs named in dicts, a
tolerance per float type, outputs that are tensors, and one random stream for the sample data."""

from __future__ import annotations

from typing import Any

import numpy as np

from ort.testing import assert_outputs_match, expected_outputs, node_model, run_ort

RNG = np.random.default_rng(0)
FLOAT_TYPES = [np.float32, np.float64, np.float16]


def rand(shape: tuple[int, ...], dtype: Any = np.float32, low: float = -1.0, high: float = 1.0):
    """Return uniform random values of ``shape`` cast to ``dtype``."""
    return RNG.uniform(low, high, size=shape).astype(dtype)


def make_model(op: str, inputs: dict[str, np.ndarray | None], outputs: dict[str, Any],
               opset: int, initializers: tuple[str, ...] = (), **attrs: Any):
    """A one-node model and its feeds (:func:`ort.testing.node_model`). ``inputs`` maps names to
    sample arrays (None: omitted), ``outputs`` names to numpy dtypes (None: omitted); the inputs
    named in ``initializers`` become constants."""
    return node_model(op, list(inputs.values()), attrs, opset=opset,
                      constants=[i for i, name in enumerate(inputs) if name in initializers],
                      outputs=[dtype is not None for dtype in outputs.values()],
                      output_types=[dtype for dtype in outputs.values() if dtype is not None])


def tolerance(dtype: Any) -> dict[str, float]:
    """Return assert_allclose tolerances suited to ``dtype``."""
    if np.dtype(dtype) == np.float16:
        return {"rtol": 1e-2, "atol": 1e-2}
    if np.dtype(dtype) == np.float64:
        return {"rtol": 1e-7, "atol": 1e-9}
    return {"rtol": 1e-4, "atol": 1e-5}


def check(op: str, inputs: dict[str, np.ndarray | None], outputs: dict[str, Any], opset: int, *,
          oracle: str = "onnxruntime", oracle_opset: int | None = None,
          initializers: tuple[str, ...] = (), tol: dict[str, float] | None = None,
          **attrs: Any) -> list[np.ndarray]:
    """Run the one-node model on ours, then on ``oracle`` (:func:`ort.testing.expected_outputs`)
    and assert the outputs match within ``tol`` (default: the first input's type's tolerance).
    ``oracle_opset``: stamp the oracle's model with this opset instead (for versions the oracle
    lacks or gets wrong that behave like a newer one)."""
    model, feeds = make_model(op, inputs, outputs, opset, initializers, **attrs)
    ours = run_ort(model, feeds)
    if oracle_opset is not None:
        model, _ = make_model(op, inputs, outputs, oracle_opset, initializers, **attrs)
    expected = expected_outputs(model, feeds, oracle)
    first = next(v for v in inputs.values() if v is not None)
    assert_outputs_match(ours, expected, **(tol or tolerance(first.dtype)))
    return ours
