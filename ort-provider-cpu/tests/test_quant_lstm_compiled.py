"""DynamicQuantizeLSTM's compiled recurrence (kernels/quant_lstm_loops.py) against the numpy
steps (provider option compiled_kernels=0) and onnxruntime (one thread: it quantizes the hidden
state per block of batch rows when it splits the batch over threads): int8 and uint8 weights
(int8 and int16 R), per-tensor and per-column scales, both directions, sequence lengths,
initial states, peepholes, clip, input_forget, other activations, each output alone."""

from __future__ import annotations

import numpy as np
import onnxruntime
import ort
import pytest
from ort.testing import node_model

pytest.importorskip("numba")

from ort_provider_cpu.kernels import contrib_quant_lstm  # noqa: E402

RNG = np.random.default_rng(21)
U8, I8 = np.uint8, np.int8
CONSTANT = (1, 2, 3, 7, 8, 9, 10, 11)


def _inputs(dirs, wtype, per_channel, *, batch=1, hidden=8, seq=6, size=5, seq_lens=None,
            initial=False, peephole=False):
    info = np.iinfo(wtype)
    w = RNG.integers(info.min, int(info.max) + 1, (dirs, size, 4 * hidden)).astype(wtype)
    r = RNG.integers(info.min, int(info.max) + 1, (dirs, hidden, 4 * hidden)).astype(wtype)
    pshape = (dirs, 4 * hidden) if per_channel else (dirs,)
    zp = np.full(pshape, 131 if wtype == U8 else 0, wtype)
    scale = (RNG.random(pshape) * 0.05 + 0.001).astype(np.float32) * np.float32(
        0.5 / np.sqrt(hidden))
    return [RNG.standard_normal((seq, batch, size)).astype(np.float32), w, r,
            (RNG.standard_normal((dirs, 8 * hidden)) * 0.5).astype(np.float32),
            None if seq_lens is None else np.array(seq_lens, np.int32),
            RNG.standard_normal((dirs, batch, hidden)).astype(np.float32) if initial else None,
            RNG.standard_normal((dirs, batch, hidden)).astype(np.float32) if initial else None,
            RNG.standard_normal((dirs, 3 * hidden)).astype(np.float32) if peephole else None,
            scale, zp, scale.copy(), zp.copy()]


@pytest.fixture
def compiled_runs(monkeypatch):
    """Count the directions the compiled recurrence ran."""
    runs = []
    original = contrib_quant_lstm._CompiledSteps.run

    def spy(self, *args):
        runs.append(1)
        return original(self, *args)

    monkeypatch.setattr(contrib_quant_lstm._CompiledSteps, "run", spy)
    return runs


@pytest.mark.parametrize("inputs,attrs,outputs", [
    (_inputs(1, I8, False), {}, 3),
    (_inputs(1, U8, True), {}, 3),  # centered R beyond a signed byte: int16
    (_inputs(2, I8, True, batch=3, seq_lens=[4, 6, 0], initial=True),
     {"direction": "bidirectional"}, 3),
    (_inputs(1, U8, False, batch=2, seq_lens=[2, 5]), {"direction": "reverse"}, 3),
    (_inputs(1, I8, True, peephole=True, initial=True), {"clip": 0.7}, 3),
    (_inputs(1, I8, False), {"input_forget": 1}, 3),
    (_inputs(1, I8, False), {"activations": ["HardSigmoid", "Tanh", "Softsign"],
                             "activation_alpha": [0.3], "activation_beta": [0.4]}, 3),
    (_inputs(2, I8, False, batch=3, seq_lens=[3, 1, 6]), {"direction": "bidirectional"},
     [False, True, True]),
    (_inputs(1, U8, True, hidden=64, seq=9), {}, 1),
])
def test_compiled_recurrence(inputs, attrs, outputs, compiled_runs):
    hidden = inputs[2].shape[1]
    model, feeds = node_model("DynamicQuantizeLSTM", inputs, dict(attrs, hidden_size=hidden),
                              domain="com.microsoft", outputs=outputs, constants=CONSTANT)
    data = model.SerializeToString()
    got = ort.InferenceSession(data).run(None, feeds)
    slow = ort.InferenceSession(
        data, providers=[("CPUExecutionProvider", {"compiled_kernels": "0"})]).run(None, feeds)
    so = onnxruntime.SessionOptions()
    so.intra_op_num_threads = 1
    want = onnxruntime.InferenceSession(data, so, providers=["CPUExecutionProvider"]).run(
        None, feeds)
    assert compiled_runs
    for g, s, w in zip(got, slow, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, s, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)
