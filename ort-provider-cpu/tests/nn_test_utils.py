"""Helpers for the nn kernel tests: build one-node models, run them on ort and oracles."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnxruntime
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

RNG = np.random.default_rng(0)
FLOAT_TYPES = [np.float32, np.float64, np.float16]


def rand(shape: tuple[int, ...], dtype: Any = np.float32, low: float = -1.0, high: float = 1.0):
    """Return uniform random values of ``shape`` cast to ``dtype``."""
    return RNG.uniform(low, high, size=shape).astype(dtype)


def make_model(
    op: str,
    inputs: dict[str, np.ndarray | None],
    outputs: dict[str, Any],
    opset: int,
    initializers: dict[str, np.ndarray] | None = None,
    **attrs: Any,
) -> onnx.ModelProto:
    """Return a one-node model. ``inputs`` maps names to sample arrays (None: omitted input,
    name ''), ``outputs`` maps names to numpy dtypes (None: omitted output, name '')."""
    initializers = initializers or {}
    in_names = [name if value is not None else "" for name, value in inputs.items()]
    out_names = [name if dtype is not None else "" for name, dtype in outputs.items()]
    node = helper.make_node(op, in_names, out_names, **attrs)
    graph_inputs = [
        helper.make_tensor_value_info(
            name, helper.np_dtype_to_tensor_dtype(value.dtype), list(value.shape)
        )
        for name, value in inputs.items()
        if value is not None and name not in initializers
    ]
    graph_outputs = [
        helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), None)
        for name, dtype in outputs.items()
        if dtype is not None
    ]
    inits = [numpy_helper.from_array(value, name) for name, value in initializers.items()]
    graph = helper.make_graph([node], "g", graph_inputs, graph_outputs, initializer=inits)
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=10
    )


def feeds_of(model: onnx.ModelProto, inputs: dict[str, np.ndarray | None]) -> dict:
    """Return the feeds for the graph inputs of ``model`` (initializers excluded)."""
    names = {i.name for i in model.graph.input}
    return {k: v for k, v in inputs.items() if k in names}


def run_onnxruntime(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    """Run ``model`` on onnxruntime's CPU provider."""
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # silence the warnings about old opsets
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    return session.run(None, feeds)


def run_reference(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    """Run ``model`` on onnx's reference evaluator."""
    return list(ReferenceEvaluator(model).run(None, feeds))


def run_ours(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    """Run ``model`` on ort's session with the CPU provider."""
    import ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def expected_outputs(model: onnx.ModelProto, feeds: dict, oracle: str) -> list[np.ndarray]:
    """Run ``oracle``; "onnxruntime" falls back to the reference evaluator where onnxruntime
    has no kernel for the op version or type, or fails on its own graph rewrites (it inserts
    opset-incompatible Casts around float16 nodes in opset-1 models)."""
    if oracle == "reference":
        return run_reference(model, feeds)
    errors = onnxruntime.capi.onnxruntime_pybind11_state
    try:
        return run_onnxruntime(model, feeds)
    except (errors.NotImplemented, errors.InvalidGraph):
        return run_reference(model, feeds)


def tolerance(dtype: Any) -> dict[str, float]:
    """Return assert_allclose tolerances suited to ``dtype``."""
    if np.dtype(dtype) == np.float16:
        return {"rtol": 1e-2, "atol": 1e-2}
    if np.dtype(dtype) == np.float64:
        return {"rtol": 1e-7, "atol": 1e-9}
    return {"rtol": 1e-4, "atol": 1e-5}


def check(
    op: str,
    inputs: dict[str, np.ndarray | None],
    outputs: dict[str, Any],
    opset: int,
    *,
    oracle: str = "onnxruntime",
    oracle_opset: int | None = None,
    initializers: tuple[str, ...] = (),
    tol: dict[str, float] | None = None,
    **attrs: Any,
) -> list[np.ndarray]:
    """Build a one-node model, run it on ours and on ``oracle``; assert the outputs match.
    ``oracle_opset``: stamp the oracle's model with this opset instead (for versions the oracle
    lacks or gets wrong that behave like a newer one)."""
    inits = {name: inputs[name] for name in initializers}
    model = make_model(op, inputs, outputs, opset, inits, **attrs)
    feeds = feeds_of(model, inputs)
    ours = run_ours(model, feeds)
    if oracle_opset is not None:
        model = make_model(op, inputs, outputs, oracle_opset, inits, **attrs)
    expected = expected_outputs(model, feeds, oracle)
    assert len(ours) == len(expected)
    first = next(v for v in inputs.values() if v is not None)
    tol = tol or tolerance(first.dtype)
    for got, want in zip(ours, expected):
        want = np.asarray(want)
        assert isinstance(got, np.ndarray)
        assert got.dtype == want.dtype, (got.dtype, want.dtype)
        assert got.shape == want.shape, (got.shape, want.shape)
        if got.dtype.kind in "biu":
            np.testing.assert_array_equal(got, want)
        else:
            np.testing.assert_allclose(
                got.astype(np.float64), want.astype(np.float64), **tol
            )
    return ours
