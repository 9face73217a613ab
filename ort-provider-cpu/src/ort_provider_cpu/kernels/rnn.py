"""CPU kernels: Recurrent ops: RNN, LSTM, GRU.

The three ops share one driver (:func:`_recurrent_factory`): attributes are parsed once per node
into a :class:`RnnConfig`. Where numba runs (:func:`~ort_provider_cpu.jit.compiled_loops_enabled`)
the node runs on compiled whole-sequence loops (:mod:`.rnn_compiled`, :mod:`.rnn_loops`); the
numpy implementation here is the reference, the ``compiled_kernels=0`` path and the CUDA
provider's (through cupy). In it the input projection ``X·Wᵀ + Wb`` of every time step is one
GEMM per direction, and only the recurrence ``H·Rᵀ`` runs in a Python loop over time steps.
Reverse directions and ``sequence_lens`` are handled by gathering each batch entry's steps into
processing order (:func:`_step_order`), running the loop with a validity mask (hidden and cell
states stop updating past a sequence's end, outputs there are zero) and scattering the outputs
back to their time positions. float16/bfloat16 inputs are computed in float32.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import ort
from ort.ep import KernelTable, NodeInfo

from ..jit import compiled_loops_enabled
from .float_work import work_dtype
from .rnn_compiled import check_bias_shapes, compiled_compute

kernels = KernelTable()

Activation = Callable[[np.ndarray], np.ndarray]

# Activation names (lowercase) -> default (alpha, beta); None: the function takes no such value.
# The defaults are those of the ONNX operators of the same name.
_ACTIVATION_DEFAULTS: dict[str, tuple[float | None, float | None]] = {
    "relu": (None, None),
    "tanh": (None, None),
    "sigmoid": (None, None),
    "affine": (1.0, 0.0),
    "leakyrelu": (0.01, None),
    "thresholdedrelu": (1.0, None),
    "scaledtanh": (1.0, 1.0),
    "hardsigmoid": (0.2, 0.5),
    "elu": (1.0, None),
    "softsign": (None, None),
    "softplus": (None, None),
}

# Per op: number of gates, default activations of one direction.
_GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
_DEFAULT_ACTIVATIONS = {"RNN": ("Tanh",), "GRU": ("Sigmoid", "Tanh"),
                        "LSTM": ("Sigmoid", "Tanh", "Tanh")}
_DIRECTIONS = {"forward": 1, "foward": 1, "reverse": 1, "bidirectional": 2}  # GRU-1's typo


def make_activation(name: str, alpha: float | None, beta: float | None,
                    xp: ModuleType = np) -> Activation:
    """Return the elementwise activation ``name`` (lowercase) with its alpha/beta bound,
    computing with the array namespace ``xp`` (numpy here, cupy for the CUDA provider)."""
    t = lambda x, v: x.dtype.type(v)  # noqa: E731 - a scalar of x's type
    if name == "relu":
        return lambda x: xp.maximum(x, t(x, 0))
    if name == "tanh":
        return xp.tanh
    if name == "sigmoid":  # the logistic function through tanh: no overflow warnings
        return lambda x: xp.tanh(x * t(x, 0.5)) * t(x, 0.5) + t(x, 0.5)
    if name == "affine":
        return lambda x: x * t(x, alpha) + t(x, beta)
    if name == "leakyrelu":
        return lambda x: xp.where(x >= 0, x, x * t(x, alpha))
    if name == "thresholdedrelu":
        return lambda x: xp.where(x > t(x, alpha), x, t(x, 0))
    if name == "scaledtanh":
        return lambda x: xp.tanh(x * t(x, beta)) * t(x, alpha)
    if name == "hardsigmoid":
        return lambda x: xp.clip(x * t(x, alpha) + t(x, beta), 0, 1)
    if name == "elu":
        return lambda x: xp.where(x >= 0, x, xp.expm1(xp.minimum(x, 0)) * t(x, alpha))
    if name == "softsign":
        return lambda x: x / (xp.abs(x) + t(x, 1))
    if name == "softplus":
        return lambda x: xp.logaddexp(t(x, 0), x)
    raise ValueError(f"unsupported RNN activation '{name}'; supported: "
                     f"{sorted(_ACTIVATION_DEFAULTS)}")


def activation_specs(node: NodeInfo, per_direction: int, num_directions: int
                     ) -> list[list[tuple[str, float | None, float | None]]]:
    """Return each direction's activations as (lowercase name, alpha, beta).

    ``activation_alpha``/``activation_beta`` are consumed in order by the activations that take
    such a value (as onnxruntime does); missing values fall back to the ONNX op defaults.
    """
    names = [str(n) for n in node.attrs.get("activations") or ()]
    if not names:
        names = list(_DEFAULT_ACTIVATIONS[node.op_type]) * num_directions
    elif len(names) == per_direction and num_directions == 2:
        names = names * 2
    elif len(names) == 2 and num_directions == 1 and node.op_type == "RNN":
        names = names[:1]  # RNN's schema default lists two (one per direction)
    if len(names) != per_direction * num_directions:
        raise ValueError(
            f"{node.describe()}: expected {per_direction * num_directions} activations, "
            f"got {len(names)}"
        )
    alphas = list(node.attrs.get("activation_alpha") or ())
    betas = list(node.attrs.get("activation_beta") or ())
    specs = []
    for name in names:
        key = name.lower()
        if key not in _ACTIVATION_DEFAULTS:
            raise ValueError(f"{node.describe()}: unsupported activation '{name}'")
        alpha, beta = _ACTIVATION_DEFAULTS[key]
        if alpha is not None and alphas:
            alpha = float(alphas.pop(0))
        if beta is not None and betas:
            beta = float(betas.pop(0))
        specs.append((key, alpha, beta))
    return [specs[d * per_direction:(d + 1) * per_direction] for d in range(num_directions)]


@dataclass(frozen=True)
class RnnConfig:
    """Validated attributes of one RNN/GRU/LSTM node (shared with the CUDA provider)."""

    op: str
    gates: int
    hidden_size: int | None
    reverse_only: bool
    num_directions: int
    activations: list[list[Activation]]
    clip: float | None
    layout: int
    linear_before_reset: bool
    input_forget: bool
    #: each direction's activations as (lowercase name, alpha, beta)
    activation_specs: tuple = ()


def parse_config(node: NodeInfo) -> RnnConfig:
    """Validate a node's attributes into an :class:`RnnConfig` (activations computing with
    ``node.xp``)."""
    attrs = node.attrs
    direction = str(attrs.get("direction", "forward"))
    if direction not in _DIRECTIONS:
        raise ValueError(
            f"{node.describe()}: direction must be forward, reverse or bidirectional, "
            f"got '{direction}'"
        )
    num_directions = _DIRECTIONS[direction]
    per_direction = len(_DEFAULT_ACTIVATIONS[node.op_type])
    layout = int(attrs.get("layout", 0))
    if layout not in (0, 1):
        raise ValueError(f"{node.describe()}: layout must be 0 or 1, got {layout}")
    clip = attrs.get("clip")
    if clip is not None and float(clip) <= 0:
        raise ValueError(f"{node.describe()}: clip must be positive, got {clip}")
    specs = activation_specs(node, per_direction, num_directions)
    hidden = attrs.get("hidden_size")
    if hidden is None or int(hidden) <= 0:  # the spec has it optional; onnxruntime requires it
        raise ort.Fail(f"{node.describe()}: the hidden_size attribute must be given and positive "
                       f"(got {hidden}), as onnxruntime requires it")
    return RnnConfig(
        op=node.op_type,
        gates=_GATES[node.op_type],
        hidden_size=None if hidden is None else int(hidden),
        reverse_only=direction == "reverse",
        num_directions=num_directions,
        activations=[[make_activation(key, alpha, beta, node.xp) for key, alpha, beta in direction]
                     for direction in specs],
        clip=None if clip is None else float(clip),
        layout=layout,
        linear_before_reset=bool(attrs.get("linear_before_reset", 0)),
        input_forget=bool(attrs.get("input_forget", 0)),
        activation_specs=tuple(tuple(direction) for direction in specs),
    )


def _step_order(lengths: np.ndarray, seq_len: int, reverse: bool) -> np.ndarray | None:
    """Return ``order[s, b]``: the time index batch entry ``b`` processes at step ``s``.

    Each column is a permutation of ``range(seq_len)``: a reversed sequence runs from its own
    last valid step down to 0, the padding after it keeps its place. None means identity.
    """
    if not reverse:
        return None
    steps = np.arange(seq_len)[:, None]
    return np.where(steps < lengths[None, :], lengths[None, :] - 1 - steps, steps)


class _Direction:
    """One direction's weights, split per gate and ready for the time loop."""

    def __init__(self, cfg: RnnConfig, w: np.ndarray, r: np.ndarray, b: np.ndarray | None,
                 p: np.ndarray | None, hidden: int, dtype: np.dtype) -> None:
        gh = cfg.gates * hidden
        self.w_t = w.T.astype(dtype, copy=False)  # (input, gates*H)
        self.r_t = r.T.astype(dtype, copy=False)  # (H, gates*H)
        if b is None:
            b = np.zeros(2 * gh, dtype)
        wb, rb = b[:gh].astype(dtype), b[gh:].astype(dtype)
        if cfg.op == "GRU" and cfg.linear_before_reset:
            # the hidden gate's recurrence bias sits inside the reset product
            self.x_bias = wb + np.concatenate([rb[:2 * hidden], np.zeros(hidden, dtype)])
            self.rh_bias = rb[2 * hidden:]
        else:
            self.x_bias = wb + rb
            self.rh_bias = None
        self.peep = None if p is None else p.astype(dtype).reshape(3, hidden)


def _run_rnn(d: _Direction, acts: list[Activation], clip: Callable, xw: np.ndarray,
             h: np.ndarray, valid: np.ndarray | None, y: np.ndarray | None) -> np.ndarray:
    """Run the simple-RNN recurrence; return the final hidden state."""
    (f,) = acts
    for t in range(xw.shape[0]):
        h_new = f(clip(xw[t] + h @ d.r_t))
        h = _advance(t, h, h_new, valid, y)
    return h


def _run_gru(d: _Direction, acts: list[Activation], clip: Callable, xw: np.ndarray,
             h: np.ndarray, valid: np.ndarray | None, y: np.ndarray | None,
             linear_before_reset: bool) -> np.ndarray:
    """Run the GRU recurrence (gate order z, r, h); return the final hidden state."""
    f, g = acts
    hidden = h.shape[-1]
    r_zr, r_h = d.r_t[:, :2 * hidden], d.r_t[:, 2 * hidden:]
    one = xw.dtype.type(1)
    for t in range(xw.shape[0]):
        x_t = xw[t]
        zr = f(clip(x_t[:, :2 * hidden] + h @ r_zr))
        z, r = zr[:, :hidden], zr[:, hidden:]
        if linear_before_reset:
            pre = x_t[:, 2 * hidden:] + r * (h @ r_h + d.rh_bias)
        else:
            pre = x_t[:, 2 * hidden:] + (r * h) @ r_h
        h_new = (one - z) * g(clip(pre)) + z * h
        h = _advance(t, h, h_new, valid, y)
    return h


def _run_lstm(d: _Direction, acts: list[Activation], clip: Callable, xw: np.ndarray,
              h: np.ndarray, c: np.ndarray, valid: np.ndarray | None, y: np.ndarray | None,
              input_forget: bool) -> tuple[np.ndarray, np.ndarray]:
    """Run the LSTM recurrence (gate order i, o, f, c); return the final hidden and cell."""
    f, g, act_h = acts
    hidden = h.shape[-1]
    one = xw.dtype.type(1)
    for t in range(xw.shape[0]):
        gates = xw[t] + h @ d.r_t
        gi, go = gates[:, :hidden], gates[:, hidden:2 * hidden]
        gf, gc = gates[:, 2 * hidden:3 * hidden], gates[:, 3 * hidden:]
        if d.peep is not None:
            gi = gi + d.peep[0] * c
            gf = gf + d.peep[2] * c
        i = f(clip(gi))
        forget = one - i if input_forget else f(clip(gf))
        c_new = forget * c + i * g(clip(gc))
        if d.peep is not None:
            go = go + d.peep[1] * c_new
        h_new = f(clip(go)) * act_h(c_new)
        if valid is not None:
            c_new = np.where(valid[t][:, None], c_new, c)
        c = c_new
        h = _advance(t, h, h_new, valid, y)
    return h, c


def _advance(t: int, h: np.ndarray, h_new: np.ndarray, valid: np.ndarray | None,
             y: np.ndarray | None) -> np.ndarray:
    """Store step ``t``'s output (zero past a sequence's end) and return the next state."""
    if valid is None:
        if y is not None:
            y[t] = h_new
        return h_new
    mask = valid[t][:, None]
    if y is not None:
        y[t] = np.where(mask, h_new, h_new.dtype.type(0))
    return np.where(mask, h_new, h)


def _recurrent_factory(node: NodeInfo) -> Callable[..., tuple]:
    """Build the compute function of an RNN, GRU or LSTM node: the compiled whole-sequence
    loop (:mod:`.rnn_compiled`) where numba runs it, else the numpy time loop."""
    cfg = parse_config(node)
    dtype = node.input_dtypes[0] if node.input_dtypes else None
    if compiled_loops_enabled(node) and (dtype is None or np.dtype(dtype).kind == "f"):
        return compiled_compute(node, cfg, work_dtype(dtype or np.float32), check_shapes)
    return _numpy_compute(node, cfg)


def _numpy_compute(node: NodeInfo, cfg: RnnConfig) -> Callable[..., tuple]:
    """The numpy reference: the input projection in one GEMM, then a Python loop over time
    steps (also the CUDA provider's path through cupy)."""
    want_y = node.has_output(0)
    is_lstm = cfg.op == "LSTM"
    n_out = node.num_outputs
    clip_value = cfg.clip

    def clip(x: np.ndarray) -> np.ndarray:
        return x if clip_value is None else np.clip(x, -clip_value, clip_value)

    def compute(x: Any, w: Any, r: Any, b: Any = None, seq_lens: Any = None,
                init_h: Any = None, init_c: Any = None, p: Any = None) -> tuple:
        out_dtype = x.dtype
        dtype = work_dtype(out_dtype)
        if cfg.layout == 1:
            x = np.swapaxes(x, 0, 1)
            init_h = None if init_h is None else np.swapaxes(init_h, 0, 1)
            init_c = None if init_c is None else np.swapaxes(init_c, 0, 1)
        seq_len, batch, _ = x.shape
        hidden = r.shape[-1]
        check_shapes(node, cfg, x, w, r, hidden)
        check_bias_shapes(cfg, b, p if cfg.op == "LSTM" else None, hidden)
        x = x.astype(dtype, copy=False)
        lengths, valid = _sequence_mask(node, seq_lens, seq_len, batch)

        y = np.zeros((seq_len, cfg.num_directions, batch, hidden), dtype) if want_y else None
        y_h = np.empty((cfg.num_directions, batch, hidden), dtype)
        y_c = np.empty((cfg.num_directions, batch, hidden), dtype) if is_lstm else None
        for di in range(cfg.num_directions):
            direction = _Direction(cfg, w[di], r[di], None if b is None else b[di],
                                   None if p is None else p[di], hidden, dtype)
            order = _step_order(lengths, seq_len, reverse=cfg.reverse_only or di == 1)
            # the input projection of every step in one GEMM
            xw = (x.reshape(seq_len * batch, x.shape[2]) @ direction.w_t
                  + direction.x_bias).reshape(seq_len, batch, cfg.gates * hidden)
            if order is not None:
                xw = xw[order, np.arange(batch)[None, :]]
            y_dir = np.zeros((seq_len, batch, hidden), dtype) if want_y else None
            h0 = _initial_state(init_h, di, batch, hidden, dtype)
            acts = cfg.activations[di]
            if cfg.op == "RNN":
                y_h[di] = _run_rnn(direction, acts, clip, xw, h0, valid, y_dir)
            elif cfg.op == "GRU":
                y_h[di] = _run_gru(direction, acts, clip, xw, h0, valid, y_dir,
                                   cfg.linear_before_reset)
            else:
                c0 = _initial_state(init_c, di, batch, hidden, dtype)
                y_h[di], y_c[di] = _run_lstm(direction, acts, clip, xw, h0, c0, valid, y_dir,
                                             cfg.input_forget)
            if valid is not None:
                empty = lengths == 0  # like onnxruntime: no step taken, final states are zero
                y_h[di][empty] = 0
                if is_lstm:
                    y_c[di][empty] = 0
            if want_y:
                if order is None:
                    y[:, di] = y_dir
                else:
                    y[order, di, np.arange(batch)[None, :]] = y_dir
        outputs = [y, y_h, y_c][:max(n_out, 1)]
        return tuple(_to_output(o, cfg.layout, i, out_dtype) for i, o in enumerate(outputs))

    return compute


def check_shapes(node: NodeInfo, cfg: RnnConfig, x: np.ndarray, w: np.ndarray,
                  r: np.ndarray, hidden: int) -> None:
    """Raise ValueError when W/R do not match X, hidden_size and the direction count."""
    gh = cfg.gates * hidden
    expected_w = (cfg.num_directions, gh, x.shape[2])
    expected_r = (cfg.num_directions, gh, hidden)
    if cfg.hidden_size is not None and cfg.hidden_size != hidden:
        raise ValueError(
            f"{node.describe()}: hidden_size {cfg.hidden_size} does not match R's shape "
            f"{r.shape}"
        )
    if tuple(w.shape) != expected_w or tuple(r.shape) != expected_r:
        raise ValueError(
            f"{node.describe()}: W {w.shape} / R {r.shape} do not match the expected "
            f"{expected_w} / {expected_r}"
        )


def _sequence_mask(node: NodeInfo, seq_lens: Any, seq_len: int, batch: int
                   ) -> tuple[np.ndarray, np.ndarray | None]:
    """Return each batch entry's length and the ``(seq_len, batch)`` validity mask (None when
    every sequence is full length)."""
    if seq_lens is None:
        return np.full(batch, seq_len, np.int64), None
    lengths = np.asarray(seq_lens, dtype=np.int64).reshape(-1)
    if lengths.shape[0] != batch or np.any(lengths < 0) or np.any(lengths > seq_len):
        raise ValueError(
            f"{node.describe()}: sequence_lens {lengths.tolist()} must hold {batch} values "
            f"in [0, {seq_len}]"
        )
    if np.all(lengths == seq_len):
        return lengths, None
    return lengths, np.arange(seq_len)[:, None] < lengths[None, :]


def _initial_state(state: Any, direction: int, batch: int, hidden: int,
                   dtype: np.dtype) -> np.ndarray:
    """Return a direction's initial hidden/cell state (zeros when omitted)."""
    if state is None:
        return np.zeros((batch, hidden), dtype)
    return np.asarray(state[direction], dtype=dtype)


def _to_output(value: np.ndarray | None, layout: int, index: int,
               dtype: np.dtype) -> np.ndarray | None:
    """Transpose an output to the node's layout and cast it to the output type."""
    if value is None:
        return None
    if layout == 1:
        # Y: (seq, dirs, batch, H) -> (batch, seq, dirs, H); Y_h/Y_c: (dirs, batch, H) -> swap
        value = value.transpose(2, 0, 1, 3) if index == 0 else np.swapaxes(value, 0, 1)
    return np.ascontiguousarray(value.astype(dtype, copy=False))


@kernels.register("RNN", since=1)
def rnn(node: NodeInfo) -> Callable[..., tuple]:
    """RNN 1+: simple recurrence ``Ht = f(Xt·Wᵀ + Ht-1·Rᵀ + Wb + Rb)`` (layout from 14)."""
    return _recurrent_factory(node)


@kernels.register("GRU", since=1)
def gru(node: NodeInfo) -> Callable[..., tuple]:
    """GRU 1+: gated recurrent unit, gates z, r, h (linear_before_reset from 3, layout from
    14)."""
    return _recurrent_factory(node)


@kernels.register("LSTM", since=1)
def lstm(node: NodeInfo) -> Callable[..., tuple]:
    """LSTM 1+: long short-term memory, gates i, o, f, c with optional peepholes and
    input_forget coupling (layout from 14)."""
    return _recurrent_factory(node)
