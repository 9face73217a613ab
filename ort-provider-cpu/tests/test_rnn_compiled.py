"""The compiled recurrent loops (RNN, GRU, LSTM) against the numpy kernels and onnxruntime.

Every case runs three ways: ort with its compiled loops (the default), ort with
``compiled_kernels=0`` (the numpy time loop) and onnxruntime (where it has the feature; layout=1
is compared with the numpy path only). Shapes are odd on purpose: hidden sizes that are not a
multiple of the loops' four-row unrolling, batch entries of different lengths (zero among them),
both directions, weights as initializers (prepared once) and as feeds (prepared per call).
"""

from __future__ import annotations

import numpy as np
import ort
import pytest
from ort.testing import (assert_outputs_match, node_model, run_onnxruntime,
                         run_ort)
from ort_provider_cpu.jit import numba_available
from single_node import make_model

pytestmark = pytest.mark.skipif(not numba_available(), reason="numba is not installed")

GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
N_OUT = {"RNN": 2, "GRU": 2, "LSTM": 3}
NUMPY = [("CPUExecutionProvider", {"compiled_kernels": "0"})]


def recurrent_inputs(op, seq=6, batch=3, size=5, hidden=5, dirs=1, lens=None, init_h=False,
                     init_c=False, peep=False, bias=True, dtype=np.float32, layout=0, seed=0):
    """The positional inputs of an RNN/GRU/LSTM node (None: omitted), weights scaled so that
    long sequences neither saturate nor blow up."""
    rng = np.random.default_rng(seed)
    gates = GATES[op]

    def normal(*shape, scale=1.0):
        return (rng.normal(size=shape) * scale).astype(dtype)

    x = normal(batch, seq, size) if layout else normal(seq, batch, size)
    state = (batch, dirs, hidden) if layout else (dirs, batch, hidden)
    inputs = [
        x, normal(dirs, gates * hidden, size, scale=size ** -0.5),
        normal(dirs, gates * hidden, hidden, scale=hidden ** -0.5),
        normal(dirs, 2 * gates * hidden, scale=0.3) if bias else None,
        None if lens is None else np.array(lens, np.int32),
        normal(*state) if init_h else None,
    ]
    if op == "LSTM":
        inputs += [normal(*state) if init_c else None,
                   normal(dirs, 3 * hidden, scale=0.5) if peep else None]
    while inputs[-1] is None:
        inputs.pop()
    return inputs


def run_three(op, inputs, attrs, const=(1, 2, 3, 7), outputs=None, oracle=True, options=None,
              rtol=1e-4, atol=1e-5):
    """Run ours compiled, ours numpy and (when ``oracle``) onnxruntime; assert they agree and
    return the compiled outputs."""
    hidden = inputs[2].shape[-1]
    attrs = {"hidden_size": hidden, **attrs}
    const = tuple(i for i in const if i < len(inputs) and inputs[i] is not None)
    n_out = N_OUT[op] if outputs is None else outputs
    model, feeds = make_model(op, inputs, attrs, 22, n_out, const=const)
    compiled = run_ort(model, feeds, options=options)
    reference = run_ort(model, feeds, providers=NUMPY)
    assert_outputs_match(compiled, reference, rtol, atol)
    if oracle:
        assert_outputs_match(compiled, run_onnxruntime(model, feeds), rtol, atol)
    return compiled


def loop_used(op):
    """Whether the compiled loop of ``op`` was prepared (a session chose it)."""
    from ort_provider_cpu.kernels import rnn_loops

    return bool(rnn_loops._LOOPS[op]._signatures)


CASES = [
    # (attrs, input options)
    ({}, {}),
    ({}, {"bias": False, "batch": 1, "seq": 1}),
    ({}, {"hidden": 1, "size": 1}),
    ({}, {"hidden": 7, "size": 3, "batch": 4, "init_h": True, "init_c": True}),
    ({"direction": "reverse"}, {"init_h": True, "init_c": True}),
    ({"direction": "reverse"}, {"lens": [6, 0, 2], "init_h": True, "init_c": True}),
    ({}, {"lens": [3, 6, 0], "init_h": True}),
    ({}, {"lens": [0, 0, 0], "init_h": True, "init_c": True}),
    ({"direction": "bidirectional"}, {"dirs": 2}),
    ({"direction": "bidirectional"}, {"dirs": 2, "lens": [6, 1, 0], "init_h": True,
                                      "init_c": True, "hidden": 6}),
    ({"direction": "bidirectional", "clip": 0.4}, {"dirs": 2, "lens": [4, 6, 2],
                                                   "init_h": True}),
    ({"clip": 0.8}, {"hidden": 9, "init_h": True, "init_c": True}),
    ({}, {"seq": 30, "batch": 2, "hidden": 33, "size": 17}),
    # blocks of four running entries share their reads of R, the rest go one by one
    ({}, {"batch": 9, "hidden": 6, "lens": [6, 6, 6, 6, 3, 6, 6, 6, 0], "init_h": True}),
    ({"direction": "bidirectional"}, {"dirs": 2, "batch": 8, "hidden": 10, "init_h": True}),
]


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1]}")
def test_directions_lengths_states_clip(op, case):
    """Directions, sequence_lens (zero lengths too), initial states, clip, hidden sizes."""
    attrs, options = case
    run_three(op, recurrent_inputs(op, **options), attrs)
    assert loop_used(op)


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
def test_weights_as_feeds(op, direction):
    """W, R, B (and P) fed at run time are prepared per call."""
    dirs = 2 if direction == "bidirectional" else 1
    inputs = recurrent_inputs(op, dirs=dirs, lens=[2, 6, 5], init_h=True, init_c=True,
                              peep=op == "LSTM")
    run_three(op, inputs, {"direction": direction}, const=())


@pytest.mark.parametrize("attrs", [
    {}, {"input_forget": 1}, {"direction": "bidirectional"},
    {"input_forget": 1, "direction": "bidirectional", "clip": 0.6},
])
@pytest.mark.parametrize("const", [(1, 2, 3, 7), ()])
def test_lstm_peepholes_input_forget(attrs, const):
    """LSTM peepholes (constant and fed) and the coupled input/forget gate."""
    dirs = 2 if attrs.get("direction") == "bidirectional" else 1
    inputs = recurrent_inputs("LSTM", dirs=dirs, lens=[4, 6, 1], init_h=True, init_c=True,
                              peep=True)
    run_three("LSTM", inputs, attrs, const=const)


@pytest.mark.parametrize("linear_before_reset", [0, 1])
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
@pytest.mark.parametrize("hidden", [1, 6, 16])
def test_gru_linear_before_reset(linear_before_reset, direction, hidden):
    """GRU's reset gate before (0) and after (1) the recurrence product."""
    dirs = 2 if direction == "bidirectional" else 1
    inputs = recurrent_inputs("GRU", dirs=dirs, hidden=hidden, lens=[3, 6, 0], init_h=True)
    run_three("GRU", inputs, {"linear_before_reset": linear_before_reset,
                              "direction": direction})


ACTIVATIONS = [
    ("RNN", {"activations": ["Relu"]}),
    ("RNN", {"activations": ["Sigmoid"]}),
    ("RNN", {"activations": ["LeakyRelu"], "activation_alpha": [0.3]}),
    ("RNN", {"activations": ["ThresholdedRelu"], "activation_alpha": [0.2]}),
    ("RNN", {"activations": ["Affine"], "activation_alpha": [0.5], "activation_beta": [0.1]}),
    ("RNN", {"activations": ["Softsign"]}),
    ("RNN", {"activations": ["Softplus"]}),
    ("RNN", {"activations": ["Elu"], "activation_alpha": [0.7]}),
    ("RNN", {"activations": ["Tanh", "HardSigmoid"], "activation_alpha": [0.3],
             "activation_beta": [0.4], "direction": "bidirectional"}),
    ("GRU", {"activations": ["HardSigmoid", "ScaledTanh"], "activation_alpha": [0.3, 1.5],
             "activation_beta": [0.6, 0.5]}),
    ("GRU", {"activations": ["Sigmoid", "Relu", "HardSigmoid", "Softsign"],
             "activation_alpha": [0.25], "activation_beta": [0.55],
             "direction": "bidirectional"}),
    ("LSTM", {"activations": ["Sigmoid", "Softsign", "Softplus"]}),
    ("LSTM", {"activations": ["HardSigmoid", "Tanh", "Elu"], "activation_alpha": [0.2, 0.9],
              "activation_beta": [0.5]}),
    ("LSTM", {"activations": ["sigmoid", "tanh", "tanh", "HardSigmoid", "ScaledTanh", "Relu"],
              "direction": "bidirectional", "activation_alpha": [0.3, 1.2],
              "activation_beta": [0.2, 0.7]}),
]


@pytest.mark.parametrize("op, attrs", ACTIVATIONS, ids=lambda v: str(v))
def test_activations(op, attrs):
    """Every activation the ONNX ops name, alpha/beta consumed in order."""
    dirs = 2 if attrs.get("direction") == "bidirectional" else 1
    inputs = recurrent_inputs(op, dirs=dirs, init_h=True, lens=[6, 2, 4])
    run_three(op, inputs, attrs)


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
def test_layout_batch_major(op, direction):
    """layout=1 (batch-major X, states and outputs): compiled equals numpy, and both equal
    onnxruntime's layout-0 result transposed."""
    dirs = 2 if direction == "bidirectional" else 1
    options = dict(dirs=dirs, lens=[5, 0, 3, 6], batch=4, init_h=True, init_c=True)
    batch_major = recurrent_inputs(op, layout=1, **options)
    got = run_three(op, batch_major, {"direction": direction, "layout": 1}, oracle=False)
    # the same random draws in another order: compare through a layout-0 run of them
    time_major = list(batch_major)
    time_major[0] = batch_major[0].transpose(1, 0, 2).copy()
    for i in (5, 6):
        if i < len(batch_major) and batch_major[i] is not None:
            time_major[i] = batch_major[i].transpose(1, 0, 2).copy()
    expected = run_three(op, time_major, {"direction": direction})
    np.testing.assert_allclose(got[0], expected[0].transpose(2, 0, 1, 3), rtol=1e-5, atol=1e-6)
    for value, want in zip(got[1:], expected[1:]):
        np.testing.assert_allclose(value, want.transpose(1, 0, 2), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("outputs", [[False, True, False], [True, False, False],
                                     [False, False, True], [True, False, True]])
@pytest.mark.parametrize("layout", [0, 1])
def test_optional_outputs(outputs, layout):
    """Any subset of Y, Y_h, Y_c."""
    inputs = recurrent_inputs("LSTM", lens=[2, 6, 0], init_c=True, layout=layout)
    model, feeds = make_model("LSTM", inputs, {"hidden_size": 5, "layout": layout}, 22, 3,
                              const=(1, 2, 3))
    full = run_ort(model, feeds, providers=NUMPY)
    model, feeds = make_model("LSTM", inputs, {"hidden_size": 5, "layout": layout}, 22,
                              outputs, const=(1, 2, 3))
    got = run_ort(model, feeds)
    wanted = [full[i] for i, flag in enumerate(outputs) if flag]
    assert_outputs_match(got, wanted, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
def test_float64_is_exact(op):
    """float64 computes exact sigmoid/tanh: compiled and numpy agree to rounding."""
    inputs = recurrent_inputs(op, dtype=np.float64, lens=[6, 3, 0], init_h=True, dirs=2)
    model, feeds = make_model(op, inputs, {"hidden_size": 5, "direction": "bidirectional"},
                              22, N_OUT[op], const=(1, 2, 3))
    compiled = run_ort(model, feeds)
    reference = run_ort(model, feeds, providers=NUMPY)
    for got, want in zip(compiled, reference):
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("op", ["GRU", "LSTM"])
def test_float16_computes_in_float32(op):
    """float16 inputs run the float32 loop and come back float16."""
    inputs = recurrent_inputs(op, dtype=np.float16, init_h=True)
    model, feeds = make_model(op, inputs, {"hidden_size": 5}, 22, N_OUT[op], const=(1, 2, 3))
    compiled = run_ort(model, feeds)
    reference = run_ort(model, feeds, providers=NUMPY)
    for got, want in zip(compiled, reference):
        assert got.dtype == np.float16
        np.testing.assert_allclose(got.astype(np.float32), want.astype(np.float32),
                                   rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("op", ["GRU", "LSTM"])
def test_threads_split_directions_and_batch(op):
    """intra_op_num_threads=2 splits (direction, batch entry) units over threads: same
    results as one thread and as numpy."""
    inputs = recurrent_inputs(op, seq=24, batch=5, size=8, hidden=64, dirs=2,
                              lens=[24, 3, 0, 17, 24], init_h=True, init_c=True)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    threaded = run_three(op, inputs, {"direction": "bidirectional"}, options=options)
    single = ort.SessionOptions()
    single.intra_op_num_threads = 1
    one = run_three(op, inputs, {"direction": "bidirectional"}, options=single, oracle=False)
    for a, b in zip(threaded, one):
        np.testing.assert_array_equal(a, b)


def test_repeated_runs_and_shapes():
    """Plans are cached per shape: runs with other batch/sequence sizes and lengths stay
    right, and a second run of a shape gives the same outputs."""
    model_inputs = recurrent_inputs("LSTM", init_h=True, init_c=True, lens=[6, 2, 4])
    model, _ = node_model("LSTM", model_inputs, {"hidden_size": 5}, opset=22, outputs=3,
                          constants=(1, 2, 3), input_shapes=False)
    session = ort.InferenceSession(model.SerializeToString())
    reference = ort.InferenceSession(model.SerializeToString(), providers=NUMPY)
    names = [i.name for i in session.get_inputs()]
    assert names == ["in0", "in4", "in5", "in6"]
    for seq, batch, seed in [(6, 3, 1), (2, 1, 2), (6, 3, 3), (9, 2, 4), (6, 3, 1)]:
        rng = np.random.default_rng(seed)
        values = {"X": rng.normal(size=(seq, batch, 5)).astype(np.float32),
                  "sequence_lens": rng.integers(0, seq + 1, batch).astype(np.int32),
                  "initial_h": rng.normal(size=(1, batch, 5)).astype(np.float32),
                  "initial_c": rng.normal(size=(1, batch, 5)).astype(np.float32)}
        feeds = dict(zip(names, values.values()))
        assert_outputs_match(session.run(None, feeds), reference.run(None, feeds), 1e-4, 1e-5)


@pytest.mark.parametrize("lens", [[7, 1, 2], [-1, 1, 2]])
def test_sequence_lens_out_of_range(lens):
    """A length outside [0, seq_length] is refused by the compiled path too."""
    inputs = recurrent_inputs("GRU", lens=lens)
    model, feeds = make_model("GRU", inputs, {"hidden_size": 5}, 22, 2, const=(1, 2, 3))
    with pytest.raises(Exception, match="sequence_lens"):
        run_ort(model, feeds)


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
def test_empty_batch_and_sequence(op):
    """batch 0 gives empty outputs; seq_length 0 an empty Y and zero final states."""
    model, feeds = make_model(op, recurrent_inputs(op, batch=0), {"hidden_size": 5}, 22,
                              N_OUT[op], const=(1, 2, 3))
    for out in run_ort(model, feeds):
        assert 0 in out.shape
    model, feeds = make_model(op, recurrent_inputs(op, seq=0, init_h=True), {"hidden_size": 5},
                              22, N_OUT[op], const=(1, 2, 3))
    y, *states = run_ort(model, feeds)
    assert y.shape == (0, 1, 3, 5)
    for state in states:
        np.testing.assert_array_equal(state, np.zeros((1, 3, 5), np.float32))


@pytest.mark.parametrize("compiled", ["1", "0"])
@pytest.mark.parametrize("op,name,shape", [("GRU", "B", (18, 1)), ("LSTM", "B", (1, 23)),
                                           ("LSTM", "P", (1, 17))])
def test_misshapen_bias_or_peepholes_are_refused(compiled, op, name, shape):
    """onnxruntime refuses a B or P of the wrong shape (found by the fuzz suite: the compiled
    path broadcast a transposed B)."""
    from onnx import TensorProto, helper, numpy_helper

    import ort
    from ort.testing import make_model

    gates = 3 if op == "GRU" else 4
    hidden, inputs = 3, 2
    rng = np.random.default_rng(9)
    consts = {"W": (1, gates * hidden, inputs), "R": (1, gates * hidden, hidden),
              "B": (1, 2 * gates * hidden)}
    names = ["X", "W", "R", "B"]
    if op == "LSTM":
        consts["P"] = (1, 3 * hidden)
        names += ["", "", "", "P"]
    consts[name] = shape
    initializers = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), n)
                    for n, s in consts.items()]
    model = make_model([helper.make_node(op, names, ["Y"], hidden_size=hidden)],
                       [helper.make_tensor_value_info("X", TensorProto.FLOAT, [2, 1, inputs])],
                       [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
                       initializers)
    x = {"X": rng.standard_normal((2, 1, inputs)).astype(np.float32)}
    with pytest.raises(ort.OrtError, match=name):
        session = ort.InferenceSession(
            model.SerializeToString(),
            providers=[("CPUExecutionProvider", {"compiled_kernels": compiled})])
        session.run(None, x)
    with pytest.raises(Exception):
        import onnxruntime

        onnxruntime.InferenceSession(model.SerializeToString(),
                                     providers=["CPUExecutionProvider"]).run(None, x)
