"""GPU kernels: RNN, GRU and LSTM.

The CPU kernels' time loop is written against ``numpy`` directly (``np.where``, ``np.zeros`` on
the values), so it cannot take device arrays; attribute parsing, activations (built on
``node.xp``) and shape checks are shared with them. This is the same algorithm on ``xp``: the
input projection of every time step is one GEMM per direction, the recurrence a Python loop
over time steps (a few kernels each). ``sequence_lens`` is declared a host input: the step
order of reversed sequences and the validity mask are computed on the host once per call and
uploaded. float16 is computed in float32.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ort.ep import KernelTable, NodeInfo
from ort_provider_cpu.kernels.rnn import RnnConfig, check_shapes, parse_config

kernels = KernelTable()

class _Direction:
    """One direction's weights in the compute dtype, split for the time loop."""

    def __init__(self, xp: Any, cfg: RnnConfig, w: Any, r: Any, b: Any, p: Any, hidden: int,
                 dtype: np.dtype) -> None:
        gh = cfg.gates * hidden
        self.w_t = w.T.astype(dtype)
        self.r_t = r.T.astype(dtype)
        if b is None:
            b = xp.zeros(2 * gh, dtype)
        wb, rb = b[:gh].astype(dtype), b[gh:].astype(dtype)
        if cfg.op == "GRU" and cfg.linear_before_reset:
            self.x_bias = wb + xp.concatenate([rb[:2 * hidden], xp.zeros(hidden, dtype)])
            self.rh_bias = rb[2 * hidden:]
        else:
            self.x_bias = wb + rb
            self.rh_bias = None
        self.peep = None if p is None else p.astype(dtype).reshape(3, hidden)


class _Loop:
    """The time loop of one direction: state updates, masked by sequence validity."""

    def __init__(self, xp: Any, cfg: RnnConfig, acts: list[Callable], valid: Any,
                 y: Any) -> None:
        self.xp, self.cfg, self.acts, self.valid, self.y = xp, cfg, acts, valid, y

    def clip(self, x: Any) -> Any:
        limit = self.cfg.clip
        return x if limit is None else self.xp.clip(x, -limit, limit)

    def advance(self, t: int, h: Any, h_new: Any) -> Any:
        """Store step t's output (zero past a sequence's end) and return the next state."""
        if self.valid is None:
            if self.y is not None:
                self.y[t] = h_new
            return h_new
        mask = self.valid[t][:, None]
        if self.y is not None:
            self.y[t] = self.xp.where(mask, h_new, h_new.dtype.type(0))
        return self.xp.where(mask, h_new, h)

    def rnn(self, d: _Direction, xw: Any, h: Any) -> Any:
        (f,) = self.acts
        for t in range(xw.shape[0]):
            h = self.advance(t, h, f(self.clip(xw[t] + h @ d.r_t)))
        return h

    def gru(self, d: _Direction, xw: Any, h: Any) -> Any:
        f, g = self.acts
        hidden = h.shape[-1]
        r_zr, r_h = d.r_t[:, :2 * hidden], d.r_t[:, 2 * hidden:]
        one = xw.dtype.type(1)
        for t in range(xw.shape[0]):
            x_t = xw[t]
            zr = f(self.clip(x_t[:, :2 * hidden] + h @ r_zr))
            z, r = zr[:, :hidden], zr[:, hidden:]
            if self.cfg.linear_before_reset:
                pre = x_t[:, 2 * hidden:] + r * (h @ r_h + d.rh_bias)
            else:
                pre = x_t[:, 2 * hidden:] + (r * h) @ r_h
            h = self.advance(t, h, (one - z) * g(self.clip(pre)) + z * h)
        return h

    def lstm(self, d: _Direction, xw: Any, h: Any, c: Any) -> tuple[Any, Any]:
        f, g, act_h = self.acts
        hidden = h.shape[-1]
        one = xw.dtype.type(1)
        for t in range(xw.shape[0]):
            gates = xw[t] + h @ d.r_t
            gi, go = gates[:, :hidden], gates[:, hidden:2 * hidden]
            gf, gc = gates[:, 2 * hidden:3 * hidden], gates[:, 3 * hidden:]
            if d.peep is not None:
                gi = gi + d.peep[0] * c
                gf = gf + d.peep[2] * c
            i = f(self.clip(gi))
            forget = one - i if self.cfg.input_forget else f(self.clip(gf))
            c_new = forget * c + i * g(self.clip(gc))
            if d.peep is not None:
                go = go + d.peep[1] * c_new
            h_new = f(self.clip(go)) * act_h(c_new)
            if self.valid is not None:
                c_new = self.xp.where(self.valid[t][:, None], c_new, c)
            c = c_new
            h = self.advance(t, h, h_new)
        return h, c


def _lengths(node: NodeInfo, seq_lens: Any, seq_len: int, batch: int) -> np.ndarray | None:
    """Host sequence lengths, validated; None when every sequence is full length."""
    if seq_lens is None:
        return None
    lengths = np.asarray(seq_lens, dtype=np.int64).reshape(-1)
    if lengths.shape[0] != batch or np.any(lengths < 0) or np.any(lengths > seq_len):
        raise ValueError(f"{node.describe()}: sequence_lens {lengths.tolist()} must hold "
                         f"{batch} values in [0, {seq_len}]")
    return None if np.all(lengths == seq_len) else lengths


def _factory(node: NodeInfo):
    """Build the compute function of an RNN, GRU or LSTM node."""
    xp = node.xp
    cfg = parse_config(node)
    want_y = node.has_output(0)
    is_lstm = cfg.op == "LSTM"
    n_out = node.num_outputs

    def compute(x: Any, w: Any, r: Any, b: Any = None, seq_lens: Any = None,
                init_h: Any = None, init_c: Any = None, p: Any = None) -> tuple:
        out_dtype = x.dtype
        dtype = np.dtype(np.float64) if out_dtype == np.float64 else np.dtype(np.float32)
        if cfg.layout == 1:
            x = xp.swapaxes(x, 0, 1)
            init_h = None if init_h is None else xp.swapaxes(init_h, 0, 1)
            init_c = None if init_c is None else xp.swapaxes(init_c, 0, 1)
        seq_len, batch, _ = x.shape
        hidden = r.shape[-1]
        check_shapes(node, cfg, x, w, r, hidden)
        x = x.astype(dtype, copy=False)
        lengths = _lengths(node, seq_lens, seq_len, batch)
        valid = None
        if lengths is not None:
            valid = xp.asarray(np.arange(seq_len)[:, None] < lengths[None, :])
        y = xp.zeros((seq_len, cfg.num_directions, batch, hidden), dtype) if want_y else None
        finals_h, finals_c = [], []
        for di in range(cfg.num_directions):
            d = _Direction(xp, cfg, w[di], r[di], None if b is None else b[di],
                           None if p is None else p[di], hidden, dtype)
            order = None
            if (cfg.reverse_only or di == 1):
                full = np.full(batch, seq_len) if lengths is None else lengths
                steps = np.arange(seq_len)[:, None]
                order = (xp.asarray(np.where(steps < full[None, :], full[None, :] - 1 - steps,
                                             steps)), xp.asarray(np.arange(batch)[None, :]))
            xw = (x.reshape(seq_len * batch, x.shape[2]) @ d.w_t
                  + d.x_bias).reshape(seq_len, batch, cfg.gates * hidden)
            if order is not None:
                xw = xw[order]
            y_dir = xp.zeros((seq_len, batch, hidden), dtype) if want_y else None
            loop = _Loop(xp, cfg, cfg.activations[di], valid, y_dir)
            h0 = _initial(xp, init_h, di, batch, hidden, dtype)
            if cfg.op == "RNN":
                h, c = loop.rnn(d, xw, h0), None
            elif cfg.op == "GRU":
                h, c = loop.gru(d, xw, h0), None
            else:
                h, c = loop.lstm(d, xw, h0, _initial(xp, init_c, di, batch, hidden, dtype))
            if lengths is not None and np.any(lengths == 0):
                # like onnxruntime: no step taken, the final states are zero
                empty = xp.asarray(lengths == 0)[:, None]
                h = xp.where(empty, 0, h).astype(dtype, copy=False)
                c = None if c is None else xp.where(empty, 0, c).astype(dtype, copy=False)
            finals_h.append(h)
            finals_c.append(c)
            if want_y:
                if order is None:
                    y[:, di] = y_dir
                else:
                    y[order[0], di, order[1]] = y_dir
        outputs = [y, xp.stack(finals_h), xp.stack(finals_c) if is_lstm else None]
        return tuple(_to_output(xp, o, cfg.layout, i, out_dtype)
                     for i, o in enumerate(outputs[:max(n_out, 1)]))

    return compute


def _initial(xp: Any, state: Any, direction: int, batch: int, hidden: int,
             dtype: np.dtype) -> Any:
    """A direction's initial hidden/cell state (zeros when omitted)."""
    if state is None:
        return xp.zeros((batch, hidden), dtype)
    return state[direction].astype(dtype)


def _to_output(xp: Any, value: Any, layout: int, index: int, dtype: np.dtype) -> Any:
    """An output in the node's layout and type."""
    if value is None:
        return None
    if layout == 1:
        # Y: (seq, dirs, batch, H) -> (batch, seq, dirs, H); Y_h/Y_c: (dirs, batch, H) -> swap
        value = value.transpose(2, 0, 1, 3) if index == 0 else xp.swapaxes(value, 0, 1)
    return xp.ascontiguousarray(value.astype(dtype, copy=False))


for _op in ("RNN", "GRU", "LSTM"):
    kernels.register(_op, since=1, host_inputs=(4,))(_factory)
