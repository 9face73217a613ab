"""ai.onnx.preview.training optimizers (Adagrad, Adam, Momentum) against onnx's reference
evaluator (onnxruntime has no kernels for this domain)."""

from __future__ import annotations

import numpy as np
import ort
import pytest
from onnx import helper

from ort.testing import assert_outputs_match, make_model, run_ort, run_reference

DOMAIN = "ai.onnx.preview.training"
RNG = np.random.default_rng(5)
STATE_INPUTS = {"Adagrad": ("X", "G", "H"), "Adam": ("X", "G", "V", "H"),
                "Momentum": ("X", "G", "V")}
STATE_OUTPUTS = {"Adagrad": ("X", "H"), "Adam": ("X", "V", "H"), "Momentum": ("X", "V")}


def optimizer_model(op, shapes, attrs, dtype=np.float32):
    """Return (model, feeds) of one optimizer node updating tensors of ``shapes``."""
    names = ["R", "T"] + [f"{kind}{i}" for kind in STATE_INPUTS[op] for i in range(len(shapes))]
    outputs = [f"{kind}{i}_new" for kind in STATE_OUTPUTS[op] for i in range(len(shapes))]
    feeds = {"R": np.array(0.1, dtype), "T": np.array(0, np.int64)}
    for kind in STATE_INPUTS[op]:
        for i, shape in enumerate(shapes):
            values = RNG.normal(size=shape)
            feeds[f"{kind}{i}"] = (np.abs(values) if kind == "H" else values).astype(dtype)
    node = helper.make_node(op, names, outputs, domain=DOMAIN, **attrs)
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    inputs = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
              for n, v in feeds.items()]
    model = make_model([node], inputs,
                       [helper.make_tensor_value_info(o, elem, None) for o in outputs],
                       opset=21, opsets={DOMAIN: 1}, ir_version=10)
    return model, feeds


def compare(model, feeds, rtol=1e-5):
    """Run ours and the reference; compare every output (at the wider of the two types: the
    reference's Adam returns float64 state for float32 inputs)."""
    actual, expected = run_ort(model, feeds), run_reference(model, feeds)
    assert len(actual) == len(expected)
    widened = [got.astype(np.result_type(got.dtype, want.dtype))
               for got, want in zip(actual, expected)]
    assert_outputs_match(widened, expected, rtol=rtol, atol=1e-6)
    return actual


SHAPES = [[(3,)], [(2, 3)], [(1,), (2, 2), (0, 3)]]


@pytest.mark.parametrize("shapes", SHAPES, ids=str)
@pytest.mark.parametrize("step", [0, 3])
@pytest.mark.parametrize("attrs", [{}, {"norm_coefficient": 0.01, "decay_factor": 0.1,
                                        "epsilon": 1e-3}])
def test_adagrad(shapes, step, attrs):
    """Adagrad with defaults and with every attribute, one or several tensors."""
    model, feeds = optimizer_model("Adagrad", shapes, attrs)
    feeds["T"] = np.array(step, np.int64)
    compare(model, feeds)


@pytest.mark.parametrize("shapes", SHAPES, ids=str)
@pytest.mark.parametrize("step", [0, 1, 4])
@pytest.mark.parametrize("attrs", [
    {}, {"norm_coefficient": 0.01, "norm_coefficient_post": 0.02, "alpha": 0.8, "beta": 0.5,
         "epsilon": 1e-2},
])
def test_adam(shapes, step, attrs):
    """Adam with and without bias correction (T > 0 / T = 0), post-update regularization."""
    model, feeds = optimizer_model("Adam", shapes, attrs)
    feeds["T"] = np.array(step, np.int64)
    compare(model, feeds, rtol=1e-4)


@pytest.mark.parametrize("shapes", SHAPES, ids=str)
@pytest.mark.parametrize("step", [0, 2])
@pytest.mark.parametrize("mode", ["standard", "nesterov"])
def test_momentum(shapes, step, mode):
    """Standard and Nesterov momentum; beta is replaced by 1 at T = 0."""
    attrs = {"alpha": 0.9, "beta": 0.3, "norm_coefficient": 0.02, "mode": mode}
    model, feeds = optimizer_model("Momentum", shapes, attrs)
    feeds["T"] = np.array(step, np.int64)
    compare(model, feeds)


@pytest.mark.parametrize("op", ["Adagrad", "Adam", "Momentum"])
def test_double(op):
    """float64 tensors keep their type."""
    attrs = {"alpha": 0.9, "beta": 0.3, "norm_coefficient": 0.0, "mode": "standard"}
    model, feeds = optimizer_model(op, [(4,)], attrs if op == "Momentum" else {}, np.float64)
    actual = run_ort(model, feeds)
    assert all(got.dtype == np.float64 for got in actual)
    assert_outputs_match(actual, run_reference(model, feeds), rtol=1e-12, atol=0)


@pytest.mark.parametrize("op, attrs", [
    ("Momentum", {"alpha": 0.9, "beta": 0.3, "norm_coefficient": 0.0, "mode": "heavy"}),
    ("Momentum", {"alpha": 0.9, "beta": 0.3, "mode": "standard"}),
])
def test_invalid_attributes(op, attrs):
    """An unknown mode or a missing required attribute fails at session creation."""
    model, _ = optimizer_model(op, [(2,)], attrs)
    with pytest.raises(Exception, match=op):
        ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def test_wrong_input_count():
    """Inputs that do not split into whole tensor groups are rejected."""
    model, _ = optimizer_model("Adagrad", [(2,)], {})
    del model.graph.node[0].input[-1]
    del model.graph.input[-1]
    with pytest.raises(Exception, match="Adagrad"):
        ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
