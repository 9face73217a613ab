"""CPU kernel: onnxruntime's DynamicQuantizeLSTM (com.microsoft).

An LSTM (gate order i, o, f, c, as ONNX's) whose weights come quantized: W is
``[num_directions, input_size, 4*hidden_size]`` and R ``[num_directions, hidden_size,
4*hidden_size]`` (transposed against ONNX's LSTM), int8 or uint8, with a scale and zero point
per direction (``[num_directions]``) or per output column (``[num_directions, 4*hidden_size]``;
a per-channel zero point must still be one value: zero for int8, constant for uint8).

The float operands are quantized dynamically as onnxruntime's quantized LSTM does
(:func:`~.contrib_quant_common.dynamic_quantize`): the input once per direction over its first
``max(sequence_lens)`` steps (reversed for the reverse direction), the hidden state at every
step over the whole batch. The integer GEMMs are exact (float64 BLAS) and the float32 epilogue
follows MLAS's (``X·W`` written, ``H·R`` accumulated onto it). The gate arithmetic is that of
onnxruntime's LSTM: peephole terms, then the fused bias ``Wb + Rb``, then ``clip``; attribute
parsing and activations are :mod:`.rnn`'s.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from onnx import TypeProto
from ort.ep import DeclaredSchema, KernelTable, NodeInfo

from ..jit import compiled_loops_enabled
from .contrib_quant_common import (EXACT_F32, IntegerOperand, centered, dynamic_params,
                                   dynamic_quantize, integer_matmul, quantize_rows,
                                   scale_bias_output)
from .contrib_schema import MS, declare, dims, elem_type, tensor_type
from .rnn import RnnConfig, _sequence_mask, _step_order, parse_config
from .int8_gemm import VnniMatMul, matmul_fits, vnni_available
from .rnn_compiled import activation_table

kernels = KernelTable()

_F32 = np.dtype(np.float32)


@dataclasses.dataclass
class _QuantWeights:
    """One direction's quantized weight matrix with its scale (per tensor or per column) and
    zero point, the matrix already shifted by the zero point (float64, exact)."""

    centered: IntegerOperand
    scale: np.ndarray
    vnni: VnniMatMul | None = None  # the integer GEMM on VNNI CPUs (constant weights)
    _narrow: np.ndarray | None = dataclasses.field(default=None, repr=False)

    @classmethod
    def of(cls, w: np.ndarray, scale: np.ndarray, zero_point: np.ndarray,
           node: NodeInfo | None = None) -> _QuantWeights:
        """Direction slices ``w`` (K, 4H), ``scale`` () or (4H,), ``zero_point`` likewise;
        with ``node`` (constant weights), the VNNI GEMM where the CPU has it."""
        operand = IntegerOperand(centered(w, zero_point.reshape(-1)[0]))
        vnni = None
        if node is not None and matmul_fits(operand.f64) and vnni_available():
            vnni = VnniMatMul(node, operand.f64)
        return cls(operand, scale.astype(_F32), vnni)

    def narrow(self) -> np.ndarray:
        """The centered matrix as int8 (int16 beyond a signed byte), made once: the compiled
        recurrence's R, small enough to stay in cache."""
        if self._narrow is None:
            values = self.centered.f64
            small = np.int8 if values.min() >= -128 and values.max() <= 127 else np.int16
            self._narrow = values.astype(small)
        return self._narrow

    def apply(self, a: np.ndarray) -> np.ndarray:
        """``a @ W`` (a float, (M, K)) through dynamic uint8 quantization of ``a``: float32
        ``float32(acc) * (a_scale * w_scale)``."""
        if self.vnni is not None and vnni_available() and a.dtype == _F32:
            a_scale, a_zp = dynamic_params(a)
            multiplier = (np.float32(a_scale) * self.scale).reshape(-1)
            return self.vnni(quantize_rows(a, a_scale, a_zp), a_zp, multiplier, None)
        a_q, a_scale, a_zp = dynamic_quantize(a)
        acc = integer_matmul(centered(a_q, a_zp), self.centered)
        return scale_bias_output(acc, np.float32(a_scale) * self.scale)


def _check_params(where: str, name: str, value: np.ndarray, dirs: int, columns: int) -> None:
    """A scale or zero point is ``[num_directions]`` or ``[num_directions, 4*hidden_size]``."""
    if value.shape not in ((dirs,), (dirs, columns)):
        raise ValueError(f"{where}: {name} must have shape ({dirs},) for per-tensor or "
                         f"({dirs}, {columns}) for per-channel quantization, got {value.shape}")


def _check_zero_point(where: str, name: str, zero_point: np.ndarray) -> None:
    """Per-channel zero points must be all zero (int8) or one value throughout (uint8: the
    same for both directions too, as onnxruntime checks)."""
    if zero_point.ndim != 2:
        return
    if zero_point.dtype == np.int8 and np.any(zero_point != 0):
        raise ValueError(f"{where}: per-channel {name} of int8 weights must be zero")
    if np.any(zero_point != zero_point.reshape(-1)[0]):
        raise ValueError(f"{where}: per-channel {name} must be one constant value")


class _Gates:
    """One direction's float gate parameters: fused bias and peepholes split per gate."""

    def __init__(self, b: np.ndarray | None, p: np.ndarray | None, hidden: int) -> None:
        if b is None:
            self.bias = None
        else:
            b = b.astype(_F32)
            self.bias = (b[:4 * hidden] + b[4 * hidden:]).reshape(4, hidden)
        self.peep = None if p is None else p.astype(_F32).reshape(3, hidden)


def _step(cfg: RnnConfig, acts: list, gates: np.ndarray, c: np.ndarray, g: _Gates,
          hidden: int) -> tuple[np.ndarray, np.ndarray]:
    """One LSTM step from the pre-activations ``gates`` (batch, 4H: X·W + H·R); returns the
    new hidden and cell states."""
    f_act, g_act, h_act = acts
    clip = cfg.clip

    def finish(value: np.ndarray, gate: int) -> np.ndarray:
        if g.bias is not None:
            value = value + g.bias[gate]
        if clip is not None:
            value = np.clip(value, -clip, clip)
        return value

    gi, go = gates[:, :hidden], gates[:, hidden:2 * hidden]
    gf, gc = gates[:, 2 * hidden:3 * hidden], gates[:, 3 * hidden:]
    if g.peep is not None:
        gi = gi + c * g.peep[0]
    i = f_act(finish(gi, 0))
    if cfg.input_forget:
        forget = np.float32(1) - i
    else:
        if g.peep is not None:
            gf = gf + c * g.peep[2]
        forget = f_act(finish(gf, 2))
    c_new = c * forget + i * g_act(finish(gc, 3))
    if g.peep is not None:
        go = go + c_new * g.peep[1]
    h_new = h_act(c_new) * f_act(finish(go, 1))
    return h_new, c_new


class _CompiledSteps:
    """The compiled recurrence (:mod:`.quant_lstm_loops`) and what it needs of the node: its
    activation table and clip. Runs a direction whose R keeps float32 sums exact."""

    def __init__(self, cfg: RnnConfig) -> None:
        from . import quant_lstm_loops

        self.loops = quant_lstm_loops
        self.prepared: dict[np.dtype, Any] = {}
        self.acts = activation_table(cfg)
        self.clip = float(cfg.clip) if cfg.clip is not None else 0.0
        self.input_forget = bool(cfg.input_forget)

    def run(self, d: int, xw: np.ndarray, r: _QuantWeights, g: _Gates, lengths: np.ndarray,
            steps: int, h: np.ndarray, c: np.ndarray, want_y: bool) -> np.ndarray | None:
        """The steps of direction ``d`` (step order); updates ``h`` and ``c`` in place and
        returns Y's first ``steps`` steps (or None)."""
        batch, hidden = h.shape
        y = np.zeros((steps, batch, hidden), _F32) if want_y else _NO_Y
        bias = _NO_BIAS if g.bias is None else np.ascontiguousarray(g.bias.reshape(-1))
        peep = _NO_PEEP if g.peep is None else np.ascontiguousarray(g.peep[None])
        rc = r.narrow()
        loop = self.prepared.get(rc.dtype)
        if loop is None:
            loop = self.prepared[rc.dtype] = self.loops.prepare(rc.dtype)
        loop(np.ascontiguousarray(xw, _F32), rc, r.scale.reshape(-1),
                  bias, g.bias is not None, peep, g.peep is not None,
                  np.ascontiguousarray(self.acts[d:d + 1]), 0, self.clip, self.input_forget,
                  lengths.astype(np.int64), steps, h, c, y, want_y)
        return y if want_y else None


_NO_Y = np.zeros((0, 0, 0), _F32)
_NO_BIAS = np.zeros(0, _F32)
_NO_PEEP = np.zeros((1, 3, 0), _F32)


def _exact_in_f32(r: _QuantWeights, hidden: int) -> bool:
    """Whether the float32 sums of the quantized hidden state (centered: at most 255) times R
    (centered) are exact integers."""
    return hidden * 255 * r.centered.max < EXACT_F32


def _direction(cfg: RnnConfig, acts: list, x: np.ndarray, lengths: np.ndarray, reverse: bool,
               w: _QuantWeights, r: _QuantWeights, g: _Gates, h0: np.ndarray, c0: np.ndarray,
               want_y: bool, compiled: tuple[_CompiledSteps, int] | None = None
               ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Run one direction; return (Y of this direction in time order or None, Y_h, Y_c);
    ``compiled``: the compiled recurrence and the direction's index, where it applies."""
    seq_len, batch, _ = x.shape
    hidden = h0.shape[1]
    order = _step_order(lengths, seq_len, reverse)
    if order is not None:
        x = x[order, np.arange(batch)[None, :]]
    steps = int(lengths.max()) if batch else 0
    xw = w.apply(x[:steps].reshape(steps * batch, -1)).reshape(steps, batch, 4 * hidden)
    y = np.zeros((seq_len, batch, hidden), _F32) if want_y else None
    h_final, c = h0.copy(), c0.copy()
    if compiled is not None and _exact_in_f32(r, hidden):
        steps_y = compiled[0].run(compiled[1], xw, r, g, lengths, steps, h_final, c, want_y)
        if want_y:
            y[:steps] = steps_y
        return _finish_direction(y, h_final, c, lengths, order, want_y)
    previous = h0  # the buffer onnxruntime quantizes: Y's last step, else Y_h
    for t in range(steps):
        gates = xw[t] + r.apply(previous)
        h_new, c_new = _step(cfg, acts, gates, c, g, hidden)
        live = (t < lengths)[:, None]
        c = np.where(live, c_new, c)
        h_final = np.where(live, h_new, h_final)
        if want_y:
            y[t] = np.where(live, h_new, np.float32(0))
            previous = y[t]
        else:
            previous = h_final
    return _finish_direction(y, h_final, c, lengths, order, want_y)


def _finish_direction(y: np.ndarray | None, h_final: np.ndarray, c: np.ndarray,
                      lengths: np.ndarray, order: np.ndarray | None, want_y: bool
                      ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Zero states of empty sequences; Y back in time order."""
    batch = h_final.shape[0]
    empty = (lengths == 0)[:, None]
    h_final = np.where(empty, np.float32(0), h_final)
    c = np.where(empty, np.float32(0), c)
    if want_y and order is not None:
        y_time = np.zeros_like(y)
        y_time[order, np.arange(batch)[None, :]] = y
        y = y_time
    return y, h_final, c


@kernels.register("DynamicQuantizeLSTM", since=1, domain=MS)
def dynamic_quantize_lstm(node: NodeInfo):
    """DynamicQuantizeLSTM 1+: LSTM with int8/uint8 W and R (per-direction or per-channel
    scales) and dynamically quantized input and hidden state; outputs Y, Y_h, Y_c."""
    cfg = parse_config(dataclasses.replace(node, op_type="LSTM", domain=""))
    where = node.describe()
    if cfg.hidden_size is None:
        raise ValueError(f"{where}: the hidden_size attribute is required (a positive int)")
    want_y = node.has_output(0)
    n_out = node.num_outputs
    consts = node.const_inputs
    constant = all(len(consts) > i and consts[i] is not None for i in (1, 2, 8, 9, 10, 11))
    prepared: dict[int, tuple[_QuantWeights, _QuantWeights]] = {}
    steps_loop = _CompiledSteps(cfg) if constant and compiled_loops_enabled(node) else None

    def weights_of(d, w, r, w_scale, w_zero_point, r_scale, r_zero_point):
        """Direction ``d``'s quantized W and R, shifted and converted once when constant."""
        if constant and d in prepared:
            return prepared[d]
        pair = (_QuantWeights.of(w[d], w_scale[d], w_zero_point[d],
                                 node if constant and compiled_loops_enabled(node) else None),
                _QuantWeights.of(r[d], r_scale[d], r_zero_point[d]))
        if constant:
            prepared[d] = pair
        return pair

    def compute(x, w, r, b=None, seq_lens=None, init_h=None, init_c=None, p=None,
                w_scale=None, w_zero_point=None, r_scale=None, r_zero_point=None):
        seq_len, batch, input_size = x.shape
        dirs, hidden = cfg.num_directions, r.shape[1]
        if w.shape != (dirs, input_size, 4 * hidden) or r.shape != (dirs, hidden, 4 * hidden):
            raise ValueError(f"{where}: W {w.shape} / R {r.shape} must be ({dirs}, "
                             f"{input_size}, {4 * hidden}) / ({dirs}, {hidden}, {4 * hidden})")
        if cfg.hidden_size != hidden:
            raise ValueError(f"{where}: hidden_size {cfg.hidden_size} does not match R "
                             f"{r.shape}")
        for name, value in (("W_scale", w_scale), ("W_zero_point", w_zero_point),
                            ("R_scale", r_scale), ("R_zero_point", r_zero_point)):
            _check_params(where, name, value, dirs, 4 * hidden)
        _check_zero_point(where, "W_zero_point", w_zero_point)
        _check_zero_point(where, "R_zero_point", r_zero_point)
        x = x.astype(_F32, copy=False)
        lengths, _ = _sequence_mask(node, seq_lens, seq_len, batch)
        y = np.zeros((seq_len, dirs, batch, hidden), _F32) if want_y else None
        y_h = np.zeros((dirs, batch, hidden), _F32)
        y_c = np.zeros((dirs, batch, hidden), _F32)
        for d in range(dirs):
            h0 = np.zeros((batch, hidden), _F32) if init_h is None else init_h[d].astype(_F32)
            c0 = np.zeros((batch, hidden), _F32) if init_c is None else init_c[d].astype(_F32)
            w_d, r_d = weights_of(d, w, r, w_scale, w_zero_point, r_scale, r_zero_point)
            y_dir, y_h[d], y_c[d] = _direction(
                cfg, cfg.activations[d], x, lengths, cfg.reverse_only or d == 1, w_d, r_d,
                _Gates(None if b is None else b[d], None if p is None else p[d], hidden),
                h0, c0, want_y, None if steps_loop is None else (steps_loop, d))
            if want_y:
                y[:, d] = y_dir
        return (y, y_h, y_c)[:max(n_out, 1)]

    return compute


def _lstm_outputs(types: Sequence[TypeProto | None], attrs: Mapping[str, Any]):
    """Y (seq, dirs, batch, hidden), Y_h and Y_c (dirs, batch, hidden), typed like X."""
    element = elem_type(types[0])
    x = dims(types[0])
    dirs = 2 if attrs.get("direction") == "bidirectional" else 1
    hidden = attrs.get("hidden_size")
    seq, batch = (x[0], x[1]) if x is not None and len(x) == 3 else (None, None)
    state = tensor_type(element, [dirs, batch, hidden])
    return [tensor_type(element, [seq, dirs, batch, hidden]), state, state]


#: The contrib ops of this module, declared to the core.
SCHEMAS: list[DeclaredSchema] = [
    declare("DynamicQuantizeLSTM", inputs=(12, 12), outputs=(0, 3),
            attributes={"direction": "forward", "hidden_size": None, "activations": None,
                        "activation_alpha": None, "activation_beta": None, "clip": None,
                        "input_forget": 0},
            infer=_lstm_outputs),
]

__all__ = ["kernels", "SCHEMAS", "dynamic_quantize_lstm"]
