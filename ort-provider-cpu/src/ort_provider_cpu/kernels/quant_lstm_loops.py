"""Compiled loop of DynamicQuantizeLSTM's recurrence (:mod:`.contrib_quant_lstm` decides when it
applies and keeps its numpy steps as the reference and fallback).

Each step quantizes the previous hidden state dynamically over the whole batch, as onnxruntime
does (float32 scale ``(max(h, 0) - min(h, 0)) / 255``, zero point ``rint(clip(-min / scale))``,
values ``clip(rint(h / scale) + zp, 0, 255)``), multiplies it, minus its zero point, by R (minus
its zero point, held as int8 or int16 so that it stays in cache, summed in float32: every
partial sum is an integer below ``2**24``, which the caller checks), scales the product by ``h_scale * r_scale`` onto ``X·W`` and runs the gates with
:mod:`.rnn_loops`' LSTM cell (its rational sigmoid and tanh, as MLAS's). The bias is added to
the products before the peepholes (the numpy steps add it after them: a rounding apart).
"""

from __future__ import annotations

import numpy as np

from ..jit import compiled
from . import rnn_loops

__all__ = ["dq_lstm_steps", "prepare"]


@compiled()
def dq_lstm_steps(xw, rc, r_scale, bias, has_bias, peep, has_peep, acts, d, clip,
                  input_forget, lengths, steps, h, c, y, want_y):
    """``steps`` LSTM steps of one direction in step order: ``xw`` (steps, batch, 4H) holds
    ``X·W`` (scaled, float32), ``rc`` (H, 4H) R minus its zero point (int8/int16), ``r_scale`` (4H) or (1)
    its scale, ``bias`` (4H) Wb + Rb, ``peep`` (dirs, 3, H), ``acts`` (dirs, 3, 3); ``h`` and
    ``c`` (batch, H) the initial states, updated in place to the final ones (entries past
    their length keep theirs); ``y`` (steps, batch, H) gets each step's hidden state (zeros
    past an entry's length) when ``want_y``. The state quantized at each step is Y's previous
    step when Y is wanted, else the final states so far (onnxruntime's buffers)."""
    batch, hidden = h.shape
    width = 4 * hidden
    per_column = r_scale.shape[0] > 1
    previous = np.empty((batch, hidden), np.float32)
    for b in range(batch):
        for j in range(hidden):
            previous[b, j] = h[b, j]
    q = np.empty((batch, hidden), np.float32)
    acc = np.empty(width, np.float32)
    gates = np.empty(width, np.float32)
    cell = np.empty(hidden, np.float32)
    zero = np.float32(0)
    for t in range(steps):
        low = zero
        high = zero
        for b in range(batch):
            for j in range(hidden):
                v = previous[b, j]
                low = v if v < low else low
                high = v if v > high else high
        scale = np.float32(1) if high == low else np.float32((high - low) / np.float32(255))
        zp = np.rint(min(max(zero - low / scale, zero), np.float32(255)))
        lo = -zp
        hi = np.float32(255) - zp
        for b in range(batch):
            for j in range(hidden):
                v = np.rint(previous[b, j] / scale)
                v = lo if v < lo else v
                q[b, j] = hi if v > hi else v
        for b in range(batch):
            for j in range(width):
                acc[j] = zero
            k = 0
            while k + 4 <= hidden:  # four rows of R per pass over acc (exact in any order)
                a0, a1, a2, a3 = q[b, k], q[b, k + 1], q[b, k + 2], q[b, k + 3]
                r0, r1, r2, r3 = rc[k], rc[k + 1], rc[k + 2], rc[k + 3]
                for j in range(width):
                    acc[j] += ((a0 * np.float32(r0[j]) + a1 * np.float32(r1[j]))
                               + (a2 * np.float32(r2[j]) + a3 * np.float32(r3[j])))
                k += 4
            while k < hidden:
                a = q[b, k]
                row = rc[k]
                for j in range(width):
                    acc[j] += a * np.float32(row[j])
                k += 1
            live = t < lengths[b]
            if live:
                for j in range(width):
                    multiplier = scale * (r_scale[j] if per_column else r_scale[0])
                    value = xw[t, b, j] + acc[j] * multiplier
                    gates[j] = value + bias[j] if has_bias else value
                rnn_loops._lstm_cell(gates, c[b], h[b], cell, peep, acts, d, has_peep,
                                     input_forget, clip)
            for j in range(hidden):
                out = h[b, j] if live else zero
                if want_y:
                    y[t, b, j] = out
                    previous[b, j] = out
                else:
                    previous[b, j] = h[b, j]


def prepare(r_dtype: np.dtype):
    """The compiled loop for R held as ``r_dtype`` (int8, or int16 for centered values
    beyond a signed byte), loaded or compiled now (binds :mod:`.rnn_loops`' helpers
    first)."""
    rnn_loops.bind_helpers()
    f32 = np.float32
    return dq_lstm_steps.prepare(
        (f32, 3), (r_dtype, 2), (f32, 1), (f32, 1), bool, (f32, 3), bool, (np.float64, 3), int,
        float, bool, (np.int64, 1), int, (f32, 2), (f32, 2), (f32, 3), bool)
