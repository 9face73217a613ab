"""Recurrent kernels (RNN, GRU, LSTM) against onnxruntime.

onnxruntime lacks layout=1 and GRU before opset 7, so those cases are checked against the same
model in layout 0 / at a newer opset run on onnxruntime.
"""

from __future__ import annotations

import numpy as np
import pytest
from single_node import make_model

import ort
from ort.testing import assert_outputs_match, run_onnxruntime, run_ort

RNG = np.random.default_rng(7)
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
N_OUT = {"RNN": 2, "GRU": 2, "LSTM": 3}


def rnn_inputs(op, seq=5, batch=3, size=4, hidden=3, dirs=1, lens=None, init_h=False,
               init_c=False, peep=False, bias=True, dtype=np.float32):
    """Return the positional inputs of an RNN/GRU/LSTM node (None: omitted)."""
    gates = GATES[op]

    def normal(*shape):
        return RNG.normal(size=shape).astype(dtype)

    inputs = [
        normal(seq, batch, size), normal(dirs, gates * hidden, size),
        normal(dirs, gates * hidden, hidden), normal(dirs, 2 * gates * hidden) if bias else None,
        None if lens is None else np.array(lens, np.int32),
        normal(dirs, batch, hidden) if init_h else None,
    ]
    if op == "LSTM":
        inputs += [normal(dirs, batch, hidden) if init_c else None,
                   normal(dirs, 3 * hidden) if peep else None]
    while inputs[-1] is None:
        inputs.pop()
    return inputs


def compare(op, inputs, attrs, opset=22, oracle_opset=None, n_out=None, rtol=1e-4, atol=1e-5):
    """Run ours at ``opset`` and onnxruntime at ``oracle_opset`` (default: the same)."""
    n_out = N_OUT[op] if n_out is None else n_out
    attrs = {"hidden_size": 3, **attrs}  # onnxruntime requires it
    model, feeds = make_model(op, inputs, attrs, opset, n_out)
    oracle, _ = make_model(op, inputs, attrs, oracle_opset or opset, n_out)
    expected = run_onnxruntime(oracle, feeds)
    actual = run_ort(model, feeds)
    assert_outputs_match(actual, expected, rtol, atol)
    return actual


CASES = [
    # (attrs, input options)
    ({}, {}),
    ({}, {"bias": False}),
    ({"direction": "reverse"}, {"init_h": True, "init_c": True}),
    ({"direction": "reverse"}, {"lens": [5, 3, 2], "init_h": True}),
    ({"direction": "bidirectional"}, {"dirs": 2, "lens": [5, 3, 1], "init_h": True,
                                      "init_c": True}),
    ({"direction": "bidirectional"}, {"dirs": 2, "lens": [4, 0, 2], "init_h": True,
                                      "init_c": True}),
    ({"clip": 0.5}, {"init_h": True, "init_c": True}),
    ({"direction": "bidirectional", "clip": 0.7}, {"dirs": 2}),
    ({}, {"seq": 1, "batch": 1}),
]


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1]}")
def test_directions_lengths_clip(op, case):
    """Every direction, sequence_lens with padding (and zero length), initial states, clip."""
    attrs, options = case
    compare(op, rnn_inputs(op, **options), {"hidden_size": 3, **attrs})


@pytest.mark.parametrize("attrs", [{}, {"input_forget": 1},
                                   {"input_forget": 1, "direction": "bidirectional"}])
def test_lstm_peepholes_input_forget(attrs):
    """LSTM peepholes P and the coupled input/forget gate."""
    dirs = 2 if attrs.get("direction") == "bidirectional" else 1
    inputs = rnn_inputs("LSTM", dirs=dirs, lens=[3, 5, 1], init_h=True, init_c=True, peep=True)
    compare("LSTM", inputs, attrs)


@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
def test_gru_linear_before_reset(direction):
    """GRU with the reset gate applied after the recurrence product."""
    dirs = 2 if direction == "bidirectional" else 1
    inputs = rnn_inputs("GRU", dirs=dirs, lens=[2, 5, 3], init_h=True)
    compare("GRU", inputs, {"linear_before_reset": 1, "direction": direction})


ACTIVATIONS = [
    ("RNN", {"activations": ["Relu"]}),
    ("RNN", {"activations": ["LeakyRelu"]}),
    ("RNN", {"activations": ["LeakyRelu"], "activation_alpha": [0.3]}),
    ("RNN", {"activations": ["Tanh", "LeakyRelu"], "activation_alpha": [0.3],
             "direction": "bidirectional"}),
    ("GRU", {"activations": ["Tanh", "LeakyRelu"], "activation_alpha": [0.3]}),
    ("GRU", {"activations": ["HardSigmoid", "LeakyRelu"], "activation_alpha": [0.3, 0.1],
             "activation_beta": [0.6]}),
    ("GRU", {"activations": ["HardSigmoid", "Affine"], "activation_alpha": [0.3, 0.5],
             "activation_beta": [0.6, 0.2]}),
    ("GRU", {"activations": ["Sigmoid", "ScaledTanh"], "activation_alpha": [1.5],
             "activation_beta": [0.5]}),
    ("GRU", {"activations": ["Sigmoid", "ThresholdedRelu"], "activation_alpha": [0.2]}),
    ("GRU", {"activations": ["Sigmoid", "Elu"]}),
    ("LSTM", {"activations": ["Sigmoid", "Softsign", "Softplus"]}),
    ("LSTM", {"activations": ["sigmoid", "tanh", "tanh", "HardSigmoid", "Elu", "Relu"],
              "direction": "bidirectional", "activation_alpha": [0.3, 0.4],
              "activation_beta": [0.2]}),
]


@pytest.mark.parametrize("op, attrs", ACTIVATIONS, ids=lambda v: str(v))
def test_activations(op, attrs):
    """Activation functions with alpha/beta consumed in order by the functions that take them."""
    dirs = 2 if attrs.get("direction") == "bidirectional" else 1
    compare(op, rnn_inputs(op, dirs=dirs, init_h=True), attrs)


def test_activation_spec_defaults():
    """Affine/ScaledTanh/ThresholdedRelu without alpha/beta use the ONNX op defaults
    (onnxruntime uses 0 there, so compare with explicit values instead)."""
    inputs = rnn_inputs("RNN")
    for act, alpha, beta in [("Affine", 1.0, 0.0), ("ScaledTanh", 1.0, 1.0),
                             ("ThresholdedRelu", 1.0, None)]:
        explicit = {"activations": [act], "activation_alpha": [alpha], "hidden_size": 3}
        if beta is not None:
            explicit["activation_beta"] = [beta]
        model, feeds = make_model("RNN", inputs, {"activations": [act], "hidden_size": 3}, 22, 2)
        got = run_ort(model, feeds)
        model, feeds = make_model("RNN", inputs, explicit, 22, 2)
        want = run_onnxruntime(model, feeds)
        assert_outputs_match(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op, opset, oracle", [
    ("RNN", 1, 7), ("RNN", 7, 7), ("RNN", 14, 14),
    ("GRU", 1, 7), ("GRU", 3, 7), ("GRU", 7, 7), ("GRU", 14, 14),
    ("LSTM", 1, 7), ("LSTM", 7, 7), ("LSTM", 14, 14),
])
def test_versions(op, opset, oracle):
    """Every schema version (onnxruntime starts at 7: older ones compare with opset 7)."""
    inputs = rnn_inputs(op, lens=[5, 2, 4], init_h=True, init_c=True)
    compare(op, inputs, {"direction": "reverse"}, opset=opset, oracle_opset=oracle)


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
def test_layout_batch_major(op, direction):
    """layout=1 (batch-major X, initial states and outputs) equals layout 0 transposed."""
    dirs = 2 if direction == "bidirectional" else 1
    inputs = rnn_inputs(op, dirs=dirs, lens=[5, 2, 3], init_h=True, init_c=True)
    attrs = {"direction": direction}
    expected = compare(op, inputs, attrs)
    batch_major = list(inputs)
    batch_major[0] = inputs[0].transpose(1, 0, 2).copy()
    for i in (5, 6):
        if i < len(inputs) and inputs[i] is not None:
            batch_major[i] = inputs[i].transpose(1, 0, 2).copy()
    attrs = {**attrs, "layout": 1, "hidden_size": 3}
    model, feeds = make_model(op, batch_major, attrs, 22, N_OUT[op])
    actual = run_ort(model, feeds)
    np.testing.assert_allclose(actual[0], expected[0].transpose(2, 0, 1, 3), rtol=1e-6)
    for got, want in zip(actual[1:], expected[1:]):
        np.testing.assert_allclose(got, want.transpose(1, 0, 2), rtol=1e-6)


@pytest.mark.parametrize("outputs", [["", "h"], ["y"], ["", "", "c"]])
def test_optional_outputs(outputs):
    """Only some outputs requested."""
    inputs = rnn_inputs("LSTM", init_c=True)
    model, feeds = make_model("LSTM", inputs, {"hidden_size": 3}, 22, 3)
    full = run_onnxruntime(model, feeds)
    model, feeds = make_model("LSTM", inputs, {"hidden_size": 3}, 22, [bool(o) for o in outputs])
    got = run_ort(model, feeds)
    wanted = [full[i] for i, name in enumerate(outputs) if name]
    assert_outputs_match(got, wanted, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float64, np.float16])
@pytest.mark.parametrize("op", ["GRU", "LSTM"])
def test_dtypes(op, dtype):
    """float64 is computed natively, float16 in float32 then rounded."""
    inputs = rnn_inputs(op, dtype=np.float32, init_h=True)
    model, feeds = make_model(op, inputs, {"hidden_size": 3}, 22, N_OUT[op])
    expected = run_onnxruntime(model, feeds)
    cast = [None if v is None or v.dtype != np.float32 else v.astype(dtype) for v in inputs]
    cast = [c if c is not None else v for c, v in zip(cast, inputs)]
    model, feeds = make_model(op, cast, {"hidden_size": 3}, 22, N_OUT[op])
    actual = run_ort(model, feeds)
    tol = 1e-2 if dtype == np.float16 else 1e-4
    for got, want in zip(actual, expected):
        assert got.dtype == dtype
        np.testing.assert_allclose(got.astype(np.float32), want, rtol=tol, atol=tol)


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
def test_empty_batch_and_sequence(op):
    """batch 0 gives empty outputs; seq_length 0 gives an empty Y and zero final states."""
    model, feeds = make_model(op, rnn_inputs(op, batch=0), {"hidden_size": 3}, 22, N_OUT[op])
    for out in run_ort(model, feeds):
        assert 0 in out.shape
    model, feeds = make_model(op, rnn_inputs(op, seq=0), {"hidden_size": 3}, 22, N_OUT[op])
    y, *states = run_ort(model, feeds)
    assert y.shape == (0, 1, 3, 3)
    for state in states:
        assert state.shape == (1, 3, 3)


@pytest.mark.parametrize("attrs", [
    {"direction": "sideways"}, {"activations": ["Cube"]}, {"hidden_size": 5},
    {"activations": ["Tanh", "Tanh", "Tanh"]}, {"layout": 2}, {"hidden_size": 0},
])
def test_invalid_attributes(attrs):
    """Invalid attributes fail (at session creation or, for shape mismatches, at run)."""
    model, feeds = make_model("RNN", rnn_inputs("RNN"), {"hidden_size": 3, **attrs}, 22, 2)
    with pytest.raises(Exception, match="RNN"):
        run_ort(model, feeds)


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
def test_missing_hidden_size_is_refused_like_onnxruntime(op):
    """ONNX has hidden_size optional; onnxruntime's kernels require it (Fail at session
    creation), and its verdict is the rule."""
    model, _ = make_model(op, rnn_inputs(op), {}, 22, N_OUT[op])
    with pytest.raises(ort.Fail, match="hidden_size attribute must be given"):
        ort.InferenceSession(model.SerializeToString())
