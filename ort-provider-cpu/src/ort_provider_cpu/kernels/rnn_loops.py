"""Compiled loops of the recurrent kernels (RNN, GRU, LSTM): a whole sequence in one call.

The kernel (:mod:`.rnn`) computes the input projection ``X·Wᵀ`` of every time step and every
direction in one BLAS GEMM and hands it here: each loop runs the time steps of a range of
(direction, batch entry) units, with the recurrent product ``H·Rᵀ`` (an axpy per hidden unit:
no reduction is reordered, so ``fastmath`` stays off), the gate arithmetic and the state updates
inside, and writes Y, Y_h and Y_c in the node's layout. Per call that replaces a Python loop of
a dozen numpy calls per step by one dispatch.

Arrays arrive C-contiguous and 2D where the layout varies (layout 0 and 1 differ only in the
row strides passed in ``geometry``): ``xw`` is ``(seq*batch, dirs*gates*hidden)`` with the row of
(time ``t``, batch entry ``b``) at ``t*XS_T + b*XS_B``; ``y`` holds one row per (time, direction,
batch entry), ``y_h``/``y_c``/``h0``/``c0`` one per (direction, batch entry).
``geometry`` is an int64 vector (slots named below) so that one call unboxes few arguments.
Sequences past their ``sequence_lens`` keep their state and output zeros; a zero length gives
zero final states (as onnxruntime does). float32 sigmoid and tanh are the rational
approximations that Eigen and onnxruntime's MLAS use (vectorizable, a few ulp from the exact
functions); float64 computes them exactly.

Helpers called from the loops are compiled as well: :func:`bind_helpers` (called by
:func:`prepare`) replaces their module names by numba dispatchers before a loop is compiled.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..jit import CompiledLoop, compiled
from .rational import logistic32 as _logistic32
from .rational import tanh32 as _tanh32

__all__ = [
    "ACTIVATION_CODES",
    "GEOMETRY_SLOTS",
    "gru_sequence",
    "lstm_sequence",
    "prepare",
    "rnn_sequence",
]

#: activation name (lowercase) -> the code the loops switch on
ACTIVATION_CODES = {
    "sigmoid": 0, "tanh": 1, "relu": 2, "affine": 3, "leakyrelu": 4, "thresholdedrelu": 5,
    "scaledtanh": 6, "hardsigmoid": 7, "elu": 8, "softsign": 9, "softplus": 10,
}
_SIGMOID, _TANH, _RELU, _AFFINE, _LEAKY_RELU, _THRESHOLDED_RELU = 0, 1, 2, 3, 4, 5
_SCALED_TANH, _HARD_SIGMOID, _ELU, _SOFTSIGN, _SOFTPLUS = 6, 7, 8, 9, 10

#: the slots of the ``geometry`` vector, in order
GEOMETRY_SLOTS = ("seq", "batch", "hidden", "dirs", "reverse_only", "xs_t", "xs_b", "ys_t",
                  "ys_d", "ys_b", "hs_d", "hs_b", "want_y", "has_h0", "has_c0", "input_forget",
                  "has_peep", "linear_before_reset")
(_SEQ, _BATCH, _HIDDEN, _DIRS, _REVERSE_ONLY, _XS_T, _XS_B, _YS_T, _YS_D, _YS_B, _HS_D, _HS_B,
 _WANT_Y, _HAS_H0, _HAS_C0, _INPUT_FORGET, _HAS_PEEP, _LBR) = range(len(GEOMETRY_SLOTS))
_F32 = np.float32

@compiled()
def _activate(values, code, alpha, beta):
    """Apply activation ``code`` (alpha/beta bound) in place to the 1-D view ``values``."""
    single = values.itemsize == 4
    n = values.shape[0]
    if code == _SIGMOID:
        if single:
            for j in range(n):
                values[j] = _logistic32(values[j])
        else:
            for j in range(n):
                values[j] = math.tanh(values[j] * 0.5) * 0.5 + 0.5
    elif code == _TANH:
        if single:
            for j in range(n):
                values[j] = _tanh32(values[j])
        else:
            for j in range(n):
                values[j] = math.tanh(values[j])
    elif code == _RELU:
        for j in range(n):
            if not values[j] > 0:
                values[j] = 0
    elif code == _AFFINE:
        for j in range(n):
            values[j] = values[j] * alpha + beta
    elif code == _LEAKY_RELU:
        for j in range(n):
            if values[j] < 0:
                values[j] = values[j] * alpha
    elif code == _THRESHOLDED_RELU:
        for j in range(n):
            if not values[j] > alpha:
                values[j] = 0
    elif code == _SCALED_TANH:
        if single:
            for j in range(n):
                values[j] = _tanh32(values[j] * _F32(beta)) * _F32(alpha)
        else:
            for j in range(n):
                values[j] = math.tanh(values[j] * beta) * alpha
    elif code == _HARD_SIGMOID:
        for j in range(n):
            values[j] = min(max(values[j] * alpha + beta, 0.0), 1.0)
    elif code == _ELU:
        for j in range(n):
            if values[j] < 0:
                values[j] = math.expm1(values[j]) * alpha
    elif code == _SOFTSIGN:
        for j in range(n):
            values[j] = values[j] / (abs(values[j]) + 1)
    else:  # softplus: log(1 + e^x) without overflow
        for j in range(n):
            value = values[j]
            values[j] = max(value, 0.0) + math.log1p(math.exp(-abs(value)))


@compiled()
def _clip(values, limit):
    """Clip the 1-D view ``values`` to ``[-limit, limit]`` in place (nothing when limit <= 0)."""
    if limit > 0:
        for j in range(values.shape[0]):
            if values[j] < -limit:
                values[j] = -limit
            elif values[j] > limit:
                values[j] = limit


@compiled()
def _accumulate_rows4(acc, acc_col, src, rt, d, rt_col, width, b):
    """``_accumulate`` for the four batch entries ``b..b+3`` at once: each pass reads four rows
    of ``rt`` once for all four entries (a 4x4 block of multiply-adds per vector of columns),
    a quarter of the reads of ``rt`` that four single-entry passes make."""
    hidden = src.shape[1]
    o0 = acc[b, acc_col:acc_col + width]
    o1 = acc[b + 1, acc_col:acc_col + width]
    o2 = acc[b + 2, acc_col:acc_col + width]
    o3 = acc[b + 3, acc_col:acc_col + width]
    k = 0
    while k + 4 <= hidden:
        r0 = rt[d, k, rt_col:rt_col + width]
        r1 = rt[d, k + 1, rt_col:rt_col + width]
        r2 = rt[d, k + 2, rt_col:rt_col + width]
        r3 = rt[d, k + 3, rt_col:rt_col + width]
        a00, a01, a02, a03 = src[b, k], src[b, k + 1], src[b, k + 2], src[b, k + 3]
        a10, a11, a12, a13 = src[b + 1, k], src[b + 1, k + 1], src[b + 1, k + 2], src[b + 1, k + 3]
        a20, a21, a22, a23 = src[b + 2, k], src[b + 2, k + 1], src[b + 2, k + 2], src[b + 2, k + 3]
        a30, a31, a32, a33 = src[b + 3, k], src[b + 3, k + 1], src[b + 3, k + 2], src[b + 3, k + 3]
        for j in range(width):
            x0, x1, x2, x3 = r0[j], r1[j], r2[j], r3[j]
            o0[j] += (a00 * x0 + a01 * x1) + (a02 * x2 + a03 * x3)
            o1[j] += (a10 * x0 + a11 * x1) + (a12 * x2 + a13 * x3)
            o2[j] += (a20 * x0 + a21 * x1) + (a22 * x2 + a23 * x3)
            o3[j] += (a30 * x0 + a31 * x1) + (a32 * x2 + a33 * x3)
        k += 4
    while k < hidden:
        r0 = rt[d, k, rt_col:rt_col + width]
        a0, a1, a2, a3 = src[b, k], src[b + 1, k], src[b + 2, k], src[b + 3, k]
        for j in range(width):
            x0 = r0[j]
            o0[j] += a0 * x0
            o1[j] += a1 * x0
            o2[j] += a2 * x0
            o3[j] += a3 * x0
        k += 1


@compiled()
def _accumulate(acc, acc_col, src, rt, d, rt_col, width, lengths, step, b_lo, b_hi):
    """``acc[b, acc_col:+width] += src[b] @ rt[d, :, rt_col:+width]`` for every batch entry in
    ``[b_lo, b_hi)`` still running at ``step``: axpys over rows of ``rt``, four rows summed
    pairwise per pass (a quarter of the loads and stores of ``acc``); four running entries in a
    row share their reads of ``rt`` (:func:`_accumulate_rows4`)."""
    hidden = src.shape[1]
    b = b_lo
    while b < b_hi:
        if (b + 4 <= b_hi and step < lengths[b] and step < lengths[b + 1]
                and step < lengths[b + 2] and step < lengths[b + 3]):
            _accumulate_rows4(acc, acc_col, src, rt, d, rt_col, width, b)
            b += 4
            continue
        if step < lengths[b]:
            out = acc[b, acc_col:acc_col + width]
            k = 0
            while k + 4 <= hidden:
                r0 = rt[d, k, rt_col:rt_col + width]
                r1 = rt[d, k + 1, rt_col:rt_col + width]
                r2 = rt[d, k + 2, rt_col:rt_col + width]
                r3 = rt[d, k + 3, rt_col:rt_col + width]
                a0, a1, a2, a3 = src[b, k], src[b, k + 1], src[b, k + 2], src[b, k + 3]
                for j in range(width):
                    out[j] += (a0 * r0[j] + a1 * r1[j]) + (a2 * r2[j] + a3 * r3[j])
                k += 4
            while k < hidden:
                r0 = rt[d, k, rt_col:rt_col + width]
                a0 = src[b, k]
                for j in range(width):
                    out[j] += a0 * r0[j]
                k += 1
        b += 1


@compiled()
def _check_lengths(lengths, seq):
    """Whether every sequence length lies in ``[0, seq]``."""
    for b in range(lengths.shape[0]):
        if lengths[b] < 0 or lengths[b] > seq:
            return False
    return True


@compiled()
def _load_states(state, h0, has_h0, geometry, d, b_lo, b_hi):
    """Fill ``state[b]`` with direction ``d``'s initial state of entry ``b`` (or zeros)."""
    for b in range(b_lo, b_hi):
        out = state[b]
        if has_h0:
            source = h0[d * geometry[_HS_D] + b * geometry[_HS_B]]
            for j in range(out.shape[0]):
                out[j] = source[j]
        else:
            for j in range(out.shape[0]):
                out[j] = 0


@compiled()
def _finish(y, y_h, h, lengths, geometry, d, b_lo, b_hi, zero_y):
    """Store the final states (zero for a zero length) and, when ``zero_y``, zero Y past each
    entry's length."""
    seq = geometry[_SEQ]
    for b in range(b_lo, b_hi):
        if zero_y and geometry[_WANT_Y]:
            for t in range(lengths[b], seq):
                out = y[t * geometry[_YS_T] + d * geometry[_YS_D] + b * geometry[_YS_B]]
                for j in range(out.shape[0]):
                    out[j] = 0
        out = y_h[d * geometry[_HS_D] + b * geometry[_HS_B]]
        source = h[b]
        if lengths[b] > 0:
            for j in range(out.shape[0]):
                out[j] = source[j]
        else:
            for j in range(out.shape[0]):
                out[j] = 0


@compiled()
def _load_projection(acc, xw, bias, lengths, geometry, d, step, b_lo, b_hi, width):
    """``acc[b] = xw[row of b's time step, direction d] + bias[d]`` for the entries still
    running at ``step``."""
    reverse = geometry[_REVERSE_ONLY] != 0 or d == 1
    col0 = d * width
    bias_d = bias[d]
    for b in range(b_lo, b_hi):
        length = lengths[b]
        if step < length:
            t = length - 1 - step if reverse else step
            source = xw[t * geometry[_XS_T] + b * geometry[_XS_B], col0:col0 + width]
            out = acc[b, :width]
            for j in range(width):
                out[j] = source[j] + bias_d[j]


@compiled()
def _store_output(y, h, b, lengths, geometry, d, step):
    """Write entry ``b``'s new hidden state to its row of Y (when Y is wanted)."""
    if geometry[_WANT_Y]:
        reverse = geometry[_REVERSE_ONLY] != 0 or d == 1
        t = lengths[b] - 1 - step if reverse else step
        out = y[t * geometry[_YS_T] + d * geometry[_YS_D] + b * geometry[_YS_B]]
        source = h[b]
        for j in range(out.shape[0]):
            out[j] = source[j]


@compiled()
def _lstm_cell(gates, c_b, h_b, cell, peep, acts, d, has_peep, input_forget, clip):
    """One LSTM step of one batch entry from its pre-activations ``gates`` (X·Wᵀ + H·Rᵀ + Wb +
    Rb, gates i, o, f, c; overwritten): updates the cell ``c_b`` and hidden ``h_b`` states in
    place (``cell`` is scratch of hidden size)."""
    hidden = c_b.shape[0]
    f_code, f_alpha, f_beta = int(acts[d, 0, 0]), acts[d, 0, 1], acts[d, 0, 2]
    g_code, g_alpha, g_beta = int(acts[d, 1, 0]), acts[d, 1, 1], acts[d, 1, 2]
    h_code, h_alpha, h_beta = int(acts[d, 2, 0]), acts[d, 2, 1], acts[d, 2, 2]
    gate_i = gates[:hidden]
    gate_o = gates[hidden:2 * hidden]
    gate_f = gates[2 * hidden:3 * hidden]
    gate_c = gates[3 * hidden:4 * hidden]
    if has_peep:
        peep_i, peep_f = peep[d, 0], peep[d, 2]
        for j in range(hidden):
            gate_i[j] += peep_i[j] * c_b[j]
            gate_f[j] += peep_f[j] * c_b[j]
    _clip(gate_i, clip)
    _activate(gate_i, f_code, f_alpha, f_beta)
    if input_forget:
        for j in range(hidden):
            gate_f[j] = 1 - gate_i[j]
    else:
        _clip(gate_f, clip)
        _activate(gate_f, f_code, f_alpha, f_beta)
    _clip(gate_c, clip)
    _activate(gate_c, g_code, g_alpha, g_beta)
    for j in range(hidden):
        value = gate_f[j] * c_b[j] + gate_i[j] * gate_c[j]
        c_b[j] = value
        cell[j] = value
    if has_peep:
        peep_o = peep[d, 1]
        for j in range(hidden):
            gate_o[j] += peep_o[j] * c_b[j]
    _clip(gate_o, clip)
    _activate(gate_o, f_code, f_alpha, f_beta)
    _activate(cell, h_code, h_alpha, h_beta)
    for j in range(hidden):
        h_b[j] = gate_o[j] * cell[j]


@compiled()
def lstm_sequence(xw, rt, bias, peep, lengths, acts, geometry, clip, y, y_h, y_c, h0, c0,
                  unit_lo, unit_hi):
    """Run the LSTM (gates i, o, f, c) over units ``[unit_lo, unit_hi)`` (unit ``d*batch + b``).

    ``rt`` (dirs, hidden, 4*hidden) is Rᵀ, ``bias`` (dirs, 4*hidden) Wb + Rb, ``peep``
    (dirs, 3, hidden) the peepholes i, o, f, ``acts`` (dirs, 3, 3) each activation's (code,
    alpha, beta). Returns 0, or -1 when a sequence length is out of range."""
    seq, batch, hidden = geometry[_SEQ], geometry[_BATCH], geometry[_HIDDEN]
    if not _check_lengths(lengths, seq):
        return -1
    width = 4 * hidden
    acc = np.empty((batch, width), xw.dtype)
    h = np.empty((batch, hidden), xw.dtype)
    c = np.empty((batch, hidden), xw.dtype)
    cell = np.empty(hidden, xw.dtype)
    input_forget = geometry[_INPUT_FORGET] != 0
    has_peep = geometry[_HAS_PEEP] != 0
    for d in range(geometry[_DIRS]):
        b_lo = max(unit_lo - d * batch, 0)
        b_hi = min(unit_hi - d * batch, batch)
        if b_lo >= b_hi:
            continue
        _load_states(h, h0, geometry[_HAS_H0] != 0, geometry, d, b_lo, b_hi)
        _load_states(c, c0, geometry[_HAS_C0] != 0, geometry, d, b_lo, b_hi)
        steps = 0
        for b in range(b_lo, b_hi):
            steps = max(steps, lengths[b])
        for step in range(steps):
            _load_projection(acc, xw, bias, lengths, geometry, d, step, b_lo, b_hi, width)
            _accumulate(acc, 0, h, rt, d, 0, width, lengths, step, b_lo, b_hi)
            for b in range(b_lo, b_hi):
                if step >= lengths[b]:
                    continue
                _lstm_cell(acc[b], c[b], h[b], cell, peep, acts, d, has_peep, input_forget, clip)
                _store_output(y, h, b, lengths, geometry, d, step)
        _finish(y, y_h, h, lengths, geometry, d, b_lo, b_hi, True)
        _finish(y, y_c, c, lengths, geometry, d, b_lo, b_hi, False)
    return 0


@compiled()
def _gru_reset(gates, other, h_b, acts, d, linear_before_reset, clip):
    """GRU gates z and r of one batch entry (``gates[:2H]`` = X·Wᵀ + H·Rᵀ + biases, activated in
    place), then the reset: under linear_before_reset ``gates[2H:] += r * other`` (``other`` =
    H·R_hᵀ + Rb_h), else ``other = r * H`` (the operand of the h gate's product)."""
    hidden = h_b.shape[0]
    f_code, f_alpha, f_beta = int(acts[d, 0, 0]), acts[d, 0, 1], acts[d, 0, 2]
    gates_zr = gates[:2 * hidden]
    _clip(gates_zr, clip)
    _activate(gates_zr, f_code, f_alpha, f_beta)
    gate_r, gate_h = gates[hidden:2 * hidden], gates[2 * hidden:3 * hidden]
    if linear_before_reset:
        for j in range(hidden):
            gate_h[j] += gate_r[j] * other[j]
    else:
        for j in range(hidden):
            other[j] = gate_r[j] * h_b[j]


@compiled()
def _gru_update(gates, h_b, acts, d, clip):
    """The GRU's h gate of one batch entry (``gates[2H:]``, pre-activation) and the new hidden
    state ``(1 - z) * h~ + z * H`` in place."""
    hidden = h_b.shape[0]
    g_code, g_alpha, g_beta = int(acts[d, 1, 0]), acts[d, 1, 1], acts[d, 1, 2]
    gate_z, gate_h = gates[:hidden], gates[2 * hidden:3 * hidden]
    _clip(gate_h, clip)
    _activate(gate_h, g_code, g_alpha, g_beta)
    for j in range(hidden):
        h_b[j] = (1 - gate_z[j]) * gate_h[j] + gate_z[j] * h_b[j]


@compiled()
def gru_sequence(xw, rt, bias, rh_bias, lengths, acts, geometry, clip, y, y_h, h0,
                 unit_lo, unit_hi):
    """Run the GRU (gates z, r, h) over units ``[unit_lo, unit_hi)``.

    ``bias`` (dirs, 3*hidden) is Wb + Rb, except the h gate's Rb under linear_before_reset,
    which ``rh_bias`` (dirs, hidden) holds (it sits inside the reset product there).
    ``acts`` (dirs, 2, 3) holds (code, alpha, beta) of f and g. Returns 0, or -1 when a sequence
    length is out of range."""
    seq, batch, hidden = geometry[_SEQ], geometry[_BATCH], geometry[_HIDDEN]
    if not _check_lengths(lengths, seq):
        return -1
    width = 3 * hidden
    acc = np.empty((batch, width), xw.dtype)
    h = np.empty((batch, hidden), xw.dtype)
    other = np.empty((batch, hidden), xw.dtype)  # H·R_hᵀ + Rb_h, or r * H
    linear_before_reset = geometry[_LBR] != 0
    for d in range(geometry[_DIRS]):
        b_lo = max(unit_lo - d * batch, 0)
        b_hi = min(unit_hi - d * batch, batch)
        if b_lo >= b_hi:
            continue
        _load_states(h, h0, geometry[_HAS_H0] != 0, geometry, d, b_lo, b_hi)
        steps = 0
        for b in range(b_lo, b_hi):
            steps = max(steps, lengths[b])
        rh_bias_d = rh_bias[d]
        for step in range(steps):
            _load_projection(acc, xw, bias, lengths, geometry, d, step, b_lo, b_hi, width)
            _accumulate(acc, 0, h, rt, d, 0, 2 * hidden, lengths, step, b_lo, b_hi)
            if linear_before_reset:
                for b in range(b_lo, b_hi):
                    other_b = other[b]
                    for j in range(hidden):
                        other_b[j] = rh_bias_d[j]
                _accumulate(other, 0, h, rt, d, 2 * hidden, hidden, lengths, step, b_lo, b_hi)
            for b in range(b_lo, b_hi):
                if step < lengths[b]:
                    _gru_reset(acc[b], other[b], h[b], acts, d, linear_before_reset, clip)
            if not linear_before_reset:
                _accumulate(acc, 2 * hidden, other, rt, d, 2 * hidden, hidden, lengths, step,
                            b_lo, b_hi)
            for b in range(b_lo, b_hi):
                if step >= lengths[b]:
                    continue
                _gru_update(acc[b], h[b], acts, d, clip)
                _store_output(y, h, b, lengths, geometry, d, step)
        _finish(y, y_h, h, lengths, geometry, d, b_lo, b_hi, True)
    return 0


@compiled()
def rnn_sequence(xw, rt, bias, lengths, acts, geometry, clip, y, y_h, h0, unit_lo, unit_hi):
    """Run the simple RNN over units ``[unit_lo, unit_hi)``; ``acts`` (dirs, 1, 3). Returns 0,
    or -1 when a sequence length is out of range."""
    seq, batch, hidden = geometry[_SEQ], geometry[_BATCH], geometry[_HIDDEN]
    if not _check_lengths(lengths, seq):
        return -1
    acc = np.empty((batch, hidden), xw.dtype)
    h = np.empty((batch, hidden), xw.dtype)
    for d in range(geometry[_DIRS]):
        b_lo = max(unit_lo - d * batch, 0)
        b_hi = min(unit_hi - d * batch, batch)
        if b_lo >= b_hi:
            continue
        f_code, f_alpha, f_beta = int(acts[d, 0, 0]), acts[d, 0, 1], acts[d, 0, 2]
        _load_states(h, h0, geometry[_HAS_H0] != 0, geometry, d, b_lo, b_hi)
        steps = 0
        for b in range(b_lo, b_hi):
            steps = max(steps, lengths[b])
        for step in range(steps):
            _load_projection(acc, xw, bias, lengths, geometry, d, step, b_lo, b_hi, hidden)
            _accumulate(acc, 0, h, rt, d, 0, hidden, lengths, step, b_lo, b_hi)
            for b in range(b_lo, b_hi):
                if step < lengths[b]:
                    acc_b, h_b = acc[b], h[b]
                    _clip(acc_b, clip)
                    _activate(acc_b, f_code, f_alpha, f_beta)
                    for j in range(hidden):
                        h_b[j] = acc_b[j]
                    _store_output(y, h, b, lengths, geometry, d, step)
        _finish(y, y_h, h, lengths, geometry, d, b_lo, b_hi, True)
    return 0


_HELPERS = (
    "_accumulate_rows4", "_lstm_cell", "_gru_reset", "_gru_update", "_activate", "_clip",
    "_accumulate", "_check_lengths", "_load_states", "_finish", "_load_projection",
    "_store_output",)
_LOOPS = {"RNN": rnn_sequence, "GRU": gru_sequence, "LSTM": lstm_sequence}


def bind_helpers() -> None:
    """Replace the helpers' module names by their numba dispatchers, so that the loops calling
    them compile (numba must be available; idempotent)."""
    namespace = globals()
    for name in _HELPERS:
        helper = namespace[name]
        if isinstance(helper, CompiledLoop):
            namespace[name] = helper.dispatcher()


def _specs(dtype: np.dtype) -> dict[str, Any]:
    """Argument specs shared by the loops: ``a1``..``a3`` arrays of the work type, and the
    index and table types."""
    return {"a1": (dtype, 1), "a2": (dtype, 2), "a3": (dtype, 3), "i1": (np.int64, 1),
            "f3": (np.float64, 3)}


def prepare(op: str, dtype: Any) -> Any:
    """The compiled whole-sequence loop of ``op`` (RNN, GRU or LSTM) for float ``dtype``
    (float32 or float64), loaded or compiled now."""
    bind_helpers()
    t = _specs(np.dtype(dtype))
    a2, a3, i1, f3 = t["a2"], t["a3"], t["i1"], t["f3"]
    if op == "LSTM":
        specs = (a2, a3, a2, a3, i1, f3, i1, float, a2, a2, a2, a2, a2, int, int)
    elif op == "GRU":
        specs = (a2, a3, a2, a2, i1, f3, i1, float, a2, a2, a2, int, int)
    else:
        specs = (a2, a3, a2, i1, f3, i1, float, a2, a2, a2, int, int)
    return _LOOPS[op].prepare(*specs)
