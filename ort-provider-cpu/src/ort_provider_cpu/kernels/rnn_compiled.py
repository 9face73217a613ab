"""CPU kernels RNN, GRU, LSTM on their compiled loops (:mod:`.rnn_loops`).

Per call: the input projection ``X·Wᵀ`` of every time step and both directions is one BLAS
GEMM; one compiled call then runs every time step (recurrent product, gates, state updates,
outputs in the node's layout). Everything that depends only on the weights (transposes, fused
biases, activation codes) is prepared once when W, R, B and P are constant initializers, and
everything that depends only on the input shape (strides, output shapes, placeholders for
omitted inputs) once per shape, so a batch-1 call costs a GEMM, a dispatch and the outputs'
allocation. Large calls are split over (direction, batch entry) units on the provider's
intra-op threads (:mod:`ort_provider_cpu.intra_op`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import ort
from ort.ep import NodeInfo

from ..intra_op import resolve_threads, split_work
from . import rnn_loops

#: the node's :class:`.rnn.RnnConfig` (not imported: :mod:`.rnn` imports this module)
RnnConfig = Any

__all__ = ["activation_table", "compiled_compute"]

#: multiply-adds of recurrence a thread's piece should at least hold (a hand-off costs about
#: 20 µs where the pool spins, 40-80 µs where it sleeps: see :mod:`..intra_op`)
_MIN_PIECE_MACS = 1 << 20


def check_bias_shapes(cfg: RnnConfig, b: Any, p: Any, hidden: int) -> None:
    """Raise :class:`ort.InvalidArgument` as onnxruntime's kernels do when B is not
    (directions, 2 * gates * hidden) or LSTM's P not (directions, 3 * hidden)."""
    dirs, width = cfg.num_directions, cfg.gates * hidden
    for name, value, shape in (("B", b, (dirs, 2 * width)), ("P", p, (dirs, 3 * hidden))):
        if value is not None and tuple(value.shape) != shape:
            raise ort.InvalidArgument(f"{cfg.op}: input {name} must have shape {list(shape)}, "
                                      f"got {list(value.shape)}")


class _Weights:
    """One node's weights in the loops' form: Wᵀ of both directions side by side (one GEMM),
    Rᵀ per direction, the fused bias, GRU's reset-product bias and the peepholes."""

    def __init__(self, cfg: RnnConfig, w: Any, r: Any, b: Any, p: Any, dtype: np.dtype) -> None:
        dirs, hidden = cfg.num_directions, int(r.shape[-1])
        width = cfg.gates * hidden
        w = np.asarray(w, dtype)
        self.shapes = (tuple(w.shape), tuple(r.shape))
        # (input, dirs*width): column block d is direction d's Wᵀ
        self.w_t = np.ascontiguousarray(w.transpose(2, 0, 1).reshape(w.shape[2], dirs * width))
        self.r_t = np.ascontiguousarray(np.asarray(r, dtype).transpose(0, 2, 1))
        check_bias_shapes(cfg, b, p, hidden)
        bias = np.zeros((dirs, 2 * width), dtype) if b is None else np.asarray(b, dtype)
        w_bias, r_bias = bias[:, :width], bias[:, width:]
        self.rh_bias = np.zeros((dirs, hidden), dtype)
        if cfg.op == "GRU" and cfg.linear_before_reset:
            self.bias = w_bias.copy()
            self.bias[:, :2 * hidden] += r_bias[:, :2 * hidden]
            self.rh_bias = np.ascontiguousarray(r_bias[:, 2 * hidden:])
        else:
            self.bias = np.ascontiguousarray(w_bias + r_bias)
        self.has_peep = p is not None
        self.peep = (np.zeros((dirs, 3, 1), dtype) if p is None
                     else np.ascontiguousarray(np.asarray(p, dtype).reshape(dirs, 3, hidden)))


class _Plan:
    """What one input shape fixes: the loop's geometry vector, the outputs' shapes and strides,
    full-length sequence lengths and placeholders for omitted inputs and outputs."""

    def __init__(self, cfg: RnnConfig, x_shape: tuple, hidden: int, dtype: np.dtype,
                 has_h0: bool, has_c0: bool, has_peep: bool, want_y: bool) -> None:
        dirs = cfg.num_directions
        if cfg.layout == 0:
            seq, batch = x_shape[0], x_shape[1]
            xs_t, xs_b = batch, 1
            ys_t, ys_d, ys_b = dirs * batch, batch, 1
            hs_d, hs_b = batch, 1
            self.y_shape = (seq, dirs, batch, hidden)
            self.state_shape = (dirs, batch, hidden)
        else:
            batch, seq = x_shape[0], x_shape[1]
            xs_t, xs_b = 1, seq
            ys_t, ys_d, ys_b = dirs, 1, seq * dirs
            hs_d, hs_b = 1, dirs
            self.y_shape = (batch, seq, dirs, hidden)
            self.state_shape = (batch, dirs, hidden)
        self.seq, self.batch, self.dirs, self.hidden = seq, batch, dirs, hidden
        self.rows = seq * batch
        self.rows_of_y, self.rows_of_states = seq * dirs * batch, dirs * batch
        self.y_from_arena = False
        values = dict(seq=seq, batch=batch, hidden=hidden, dirs=dirs,
                      reverse_only=int(cfg.reverse_only), xs_t=xs_t, xs_b=xs_b, ys_t=ys_t,
                      ys_d=ys_d, ys_b=ys_b, hs_d=hs_d, hs_b=hs_b, want_y=int(want_y),
                      has_h0=int(has_h0), has_c0=int(has_c0),
                      input_forget=int(cfg.input_forget), has_peep=int(has_peep),
                      linear_before_reset=int(cfg.linear_before_reset))
        self.geometry = np.array([values[name] for name in rnn_loops.GEOMETRY_SLOTS], np.int64)
        self.full_lengths = np.full(batch, seq, np.int64)
        self.placeholder = np.zeros((0, hidden), dtype)  # an omitted initial state or Y
        units = dirs * batch
        unit_macs = max(1, seq * cfg.gates * hidden * hidden)
        self.units = units
        self.min_units = max(1, -(-_MIN_PIECE_MACS // unit_macs))


def activation_table(cfg: RnnConfig) -> np.ndarray:
    """(dirs, per direction, 3) float64: each activation's (code, alpha, beta)."""
    rows = [[(rnn_loops.ACTIVATION_CODES[name], 0.0 if alpha is None else alpha,
              0.0 if beta is None else beta) for name, alpha, beta in direction]
            for direction in cfg.activation_specs]
    return np.array(rows, np.float64)


def compiled_compute(node: NodeInfo, cfg: RnnConfig, dtype: np.dtype,
                     check_shapes: Callable[..., None]) -> Callable[..., tuple]:
    """The compute function of an RNN/GRU/LSTM node on the compiled loop prepared for work
    type ``dtype`` (float32 or float64; float16/bfloat16 inputs are computed in float32)."""
    op = cfg.op
    loops = {dtype: rnn_loops.prepare(op, dtype)}
    acts = activation_table(cfg)
    clip = float(cfg.clip) if cfg.clip is not None else 0.0
    want_y = node.has_output(0)
    n_out = max(node.num_outputs, 1)
    threads = resolve_threads(node.intra_op_threads)
    is_lstm, is_gru = op == "LSTM", op == "GRU"
    consts = list(node.const_inputs) + [None] * 8
    weight_slots = (1, 2, 3, 7) if is_lstm else (1, 2, 3)
    constant = all(consts[i] is not None or not node.has_input(i) for i in weight_slots)
    fixed = (_Weights(cfg, consts[1], consts[2], consts[3], consts[7] if is_lstm else None,
                      dtype) if constant else None)
    plans: dict[tuple, _Plan] = {}

    def plan_for(x: np.ndarray, weights: _Weights, work: np.dtype, has_h0: bool,
                 has_c0: bool) -> _Plan:
        key = (x.shape, weights.shapes, work, has_h0, has_c0)
        plan = plans.get(key)
        if plan is None:
            if x.ndim != 3:
                raise ValueError(f"{node.describe()}: X must be 3-D, got shape {x.shape}")
            w_shape, r_shape = weights.shapes
            x_tm = x if cfg.layout == 0 else np.swapaxes(x, 0, 1)
            check_shapes(node, cfg, x_tm, np.empty(w_shape, np.uint8),
                         np.empty(r_shape, np.uint8), r_shape[-1])
            plan = _Plan(cfg, x.shape, r_shape[-1], work, has_h0, has_c0, weights.has_peep,
                         want_y)
            pooled = node.pooled_min_bytes
            plan.y_from_arena = (pooled is not None
                                 and int(np.prod(plan.y_shape)) * work.itemsize >= pooled)
            plans[key] = plan
        return plan

    def state_rows(state: Any, plan: _Plan, work: np.dtype, name: str) -> np.ndarray:
        if state is None:
            return plan.placeholder
        if state.shape != plan.state_shape:
            raise ValueError(f"{node.describe()}: {name} has shape {tuple(state.shape)}, "
                             f"expected {plan.state_shape}")
        if state.dtype != work or not state.flags.c_contiguous:
            state = np.ascontiguousarray(state, dtype=work)
        return state.reshape(plan.rows_of_states, plan.hidden)

    def compute(x: Any, w: Any, r: Any, b: Any = None, seq_lens: Any = None,
                init_h: Any = None, init_c: Any = None, p: Any = None) -> tuple:
        out_dtype = x.dtype
        work = np.dtype(np.float64) if out_dtype == np.float64 else np.dtype(np.float32)
        weights = fixed
        if weights is None or work != dtype:
            weights = _Weights(cfg, w, r, b, p if is_lstm else None, work)
        plan = plan_for(x, weights, work, init_h is not None, init_c is not None)
        loop = loops.get(work)
        if loop is None:
            loop = loops[work] = rnn_loops.prepare(op, work)
        if x.dtype != work:
            x = x.astype(work)
        xw = x.reshape(plan.rows, x.shape[2]) @ weights.w_t
        if seq_lens is None:
            lengths = plan.full_lengths
        else:
            lengths = np.asarray(seq_lens, np.int64).reshape(-1)
            if lengths.shape[0] != plan.batch:
                raise ValueError(f"{node.describe()}: sequence_lens has {lengths.shape[0]} "
                                 f"values, expected {plan.batch}")
        hidden = plan.hidden
        if want_y:
            y = (node.empty(plan.y_shape, work) if plan.y_from_arena
                 else np.empty(plan.y_shape, work))
            y_rows = y.reshape(plan.rows_of_y, hidden)
        else:
            y, y_rows = None, plan.placeholder
        y_h = np.empty(plan.state_shape, work)
        h0 = state_rows(init_h, plan, work, "initial_h")
        if is_lstm:
            y_c = np.empty(plan.state_shape, work)
            c0 = state_rows(init_c, plan, work, "initial_c")
            args = (xw, weights.r_t, weights.bias, weights.peep, lengths, acts, plan.geometry,
                    clip, y_rows, y_h.reshape(plan.rows_of_states, hidden),
                    y_c.reshape(plan.rows_of_states, hidden), h0, c0)
        elif is_gru:
            y_c = None
            args = (xw, weights.r_t, weights.bias, weights.rh_bias, lengths, acts,
                    plan.geometry, clip, y_rows, y_h.reshape(plan.rows_of_states, hidden), h0)
        else:
            y_c = None
            args = (xw, weights.r_t, weights.bias, lengths, acts, plan.geometry, clip, y_rows,
                    y_h.reshape(plan.rows_of_states, hidden), h0)
        if threads <= 1 or plan.units < 2 * plan.min_units:
            status = loop(*args, 0, plan.units)
        else:
            statuses = []
            split_work(lambda lo, hi: statuses.append(loop(*args, lo, hi)), plan.units,
                       threads, plan.min_units)
            status = min(statuses, default=0)
        if status < 0:
            raise ValueError(f"{node.describe()}: sequence_lens {lengths.tolist()} must hold "
                             f"{plan.batch} values in [0, {plan.seq}]")
        outputs = (y, y_h, y_c)[:n_out]
        if out_dtype != work:
            return tuple(None if o is None else o.astype(out_dtype) for o in outputs)
        return outputs

    return compute
