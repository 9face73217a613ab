"""GPU kernels: RNN, GRU and LSTM.

The CPU kernels are written against ``numpy`` directly (``np.tanh``, ``np.where``, ``np.zeros``
on the values), so they cannot take device arrays. This is the same algorithm on ``xp``: the
input projection of every time step is one GEMM per direction, the recurrence a Python loop
over time steps (a few kernels each). ``sequence_lens`` is declared a host input: the step
order of reversed sequences and the validity mask are computed on the host once per call and
uploaded. float16 is computed in float32.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ort.kernels import KernelTable, NodeInfo

kernels = KernelTable()

_GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
_DEFAULT_ACTIVATIONS = {"RNN": ("Tanh",), "GRU": ("Sigmoid", "Tanh"),
                        "LSTM": ("Sigmoid", "Tanh", "Tanh")}
_DIRECTIONS = {"forward": 1, "foward": 1, "reverse": 1, "bidirectional": 2}  # GRU-1's typo
# lowercase name -> default (alpha, beta); None: the function takes no such value
_ACTIVATION_DEFAULTS: dict[str, tuple[float | None, float | None]] = {
    "relu": (None, None), "tanh": (None, None), "sigmoid": (None, None), "affine": (1.0, 0.0),
    "leakyrelu": (0.01, None), "thresholdedrelu": (1.0, None), "scaledtanh": (1.0, 1.0),
    "hardsigmoid": (0.2, 0.5), "elu": (1.0, None), "softsign": (None, None),
    "softplus": (None, None),
}


def _activation(xp: Any, name: str, alpha: float | None, beta: float | None) -> Callable:
    """The elementwise activation ``name`` (lowercase) with alpha/beta bound."""
    t = lambda x, v: x.dtype.type(v)  # noqa: E731 - a scalar of x's type
    table: dict[str, Callable] = {
        "relu": lambda x: xp.maximum(x, t(x, 0)),
        "tanh": xp.tanh,
        "sigmoid": lambda x: xp.tanh(x * t(x, 0.5)) * t(x, 0.5) + t(x, 0.5),
        "affine": lambda x: x * t(x, alpha) + t(x, beta),
        "leakyrelu": lambda x: xp.where(x >= 0, x, x * t(x, alpha)),
        "thresholdedrelu": lambda x: xp.where(x > t(x, alpha), x, t(x, 0)),
        "scaledtanh": lambda x: xp.tanh(x * t(x, beta)) * t(x, alpha),
        "hardsigmoid": lambda x: xp.clip(x * t(x, alpha) + t(x, beta), 0, 1),
        "elu": lambda x: xp.where(x >= 0, x, xp.expm1(xp.minimum(x, 0)) * t(x, alpha)),
        "softsign": lambda x: x / (xp.abs(x) + t(x, 1)),
        "softplus": lambda x: xp.logaddexp(t(x, 0), x),
    }
    return table[name]


@dataclass(frozen=True)
class _Config:
    """Validated attributes of one RNN/GRU/LSTM node."""

    op: str
    gates: int
    hidden_size: int | None
    reverse_only: bool
    num_directions: int
    activations: list[list[Callable]]
    clip: float | None
    layout: int
    linear_before_reset: bool
    input_forget: bool


def _parse(node: NodeInfo) -> _Config:
    """Validate a node's attributes (same rules and messages as the CPU kernels)."""
    attrs, where = node.attrs, node.describe()
    direction = str(attrs.get("direction", "forward"))
    if direction not in _DIRECTIONS:
        raise ValueError(f"{where}: direction must be forward, reverse or bidirectional, "
                         f"got '{direction}'")
    dirs = _DIRECTIONS[direction]
    per_direction = len(_DEFAULT_ACTIVATIONS[node.op_type])
    layout = int(attrs.get("layout", 0))
    if layout not in (0, 1):
        raise ValueError(f"{where}: layout must be 0 or 1, got {layout}")
    clip = attrs.get("clip")
    if clip is not None and float(clip) <= 0:
        raise ValueError(f"{where}: clip must be positive, got {clip}")
    hidden = attrs.get("hidden_size")
    if hidden is not None and int(hidden) <= 0:
        raise ValueError(f"{where}: hidden_size must be positive, got {hidden}")
    names = [str(n) for n in attrs.get("activations") or ()]
    if not names:
        names = list(_DEFAULT_ACTIVATIONS[node.op_type]) * dirs
    elif len(names) == per_direction and dirs == 2:
        names = names * 2
    elif len(names) == 2 and dirs == 1 and node.op_type == "RNN":
        names = names[:1]  # RNN's schema default lists two (one per direction)
    if len(names) != per_direction * dirs:
        raise ValueError(f"{where}: expected {per_direction * dirs} activations, got "
                         f"{len(names)}")
    alphas = list(attrs.get("activation_alpha") or ())
    betas = list(attrs.get("activation_beta") or ())
    funcs = []
    for name in names:
        key = name.lower()
        if key not in _ACTIVATION_DEFAULTS:
            raise ValueError(f"{where}: unsupported activation '{name}'")
        alpha, beta = _ACTIVATION_DEFAULTS[key]
        if alpha is not None and alphas:
            alpha = float(alphas.pop(0))
        if beta is not None and betas:
            beta = float(betas.pop(0))
        funcs.append(_activation(node.xp, key, alpha, beta))
    return _Config(node.op_type, _GATES[node.op_type], None if hidden is None else int(hidden),
                   direction == "reverse", dirs,
                   [funcs[d * per_direction:(d + 1) * per_direction] for d in range(dirs)],
                   None if clip is None else float(clip), layout,
                   bool(attrs.get("linear_before_reset", 0)), bool(attrs.get("input_forget", 0)))


class _Direction:
    """One direction's weights in the compute dtype, split for the time loop."""

    def __init__(self, xp: Any, cfg: _Config, w: Any, r: Any, b: Any, p: Any, hidden: int,
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

    def __init__(self, xp: Any, cfg: _Config, acts: list[Callable], valid: Any,
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
    cfg = _parse(node)
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
        _check_shapes(node, cfg, x, w, r, hidden)
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


def _check_shapes(node: NodeInfo, cfg: _Config, x: Any, w: Any, r: Any, hidden: int) -> None:
    """Raise ValueError when W/R do not match X, hidden_size and the direction count."""
    gh = cfg.gates * hidden
    expected_w = (cfg.num_directions, gh, x.shape[2])
    expected_r = (cfg.num_directions, gh, hidden)
    if cfg.hidden_size is not None and cfg.hidden_size != hidden:
        raise ValueError(f"{node.describe()}: hidden_size {cfg.hidden_size} does not match R's "
                         f"shape {r.shape}")
    if tuple(w.shape) != expected_w or tuple(r.shape) != expected_r:
        raise ValueError(f"{node.describe()}: W {w.shape} / R {r.shape} do not match the "
                         f"expected {expected_w} / {expected_r}")


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


def _register(op: str, versions: tuple[int, ...]) -> None:
    bounds = list(versions) + [None]
    for since, nxt in zip(bounds[:-1], bounds[1:]):
        kernels.register(op, since=since, until=None if nxt is None else nxt - 1,
                         host_inputs=(4,))(_factory)


_register("RNN", (1, 7, 14, 22))
_register("GRU", (1, 3, 7, 14, 22))
_register("LSTM", (1, 7, 14, 22))
