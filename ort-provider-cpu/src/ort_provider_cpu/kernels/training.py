"""CPU kernels: ai.onnx.preview.training ops: Adagrad, Adam, Momentum.

Each optimizer takes the scalars R (learning rate) and T (update count), then N tensors to
optimize followed by their per-tensor state, grouped by kind: ``X1..XN, G1..GN, V1..VN, ...``.
The outputs are grouped the same way (``X1_new..XN_new, V1_new..VN_new, ...``). Scalar
coefficients are computed in double precision; tensor arithmetic stays in each tensor's type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ort.ep import KernelTable, NodeInfo

kernels = KernelTable()

DOMAIN = "ai.onnx.preview.training"


def _group_count(node: NodeInfo, per_tensor: int, outputs_per_tensor: int) -> int:
    """Return N, the number of optimized tensors, checking the input and output counts."""
    count, rest = divmod(node.num_inputs - 2, per_tensor)
    if count < 1 or rest:
        raise ValueError(
            f"{node.describe()}: expects R, T and {per_tensor} inputs per optimized tensor, "
            f"got {node.num_inputs} inputs"
        )
    if node.num_outputs > outputs_per_tensor * count:
        raise ValueError(
            f"{node.describe()}: at most {outputs_per_tensor * count} outputs for {count} "
            f"tensors, got {node.num_outputs}"
        )
    return count


def _scalars(r: Any, t: Any) -> tuple[float, int]:
    """Return the learning rate and update count as Python numbers."""
    return float(np.asarray(r).reshape(())), int(np.asarray(t).reshape(()))


def _typed(value: float, like: np.ndarray) -> Any:
    """Return a Python scalar coefficient as a scalar of ``like``'s type."""
    return like.dtype.type(value)


@kernels.register("Adagrad", since=1, domain=DOMAIN)
def adagrad(node: NodeInfo) -> Callable[..., tuple]:
    """Adagrad 1+: X -= r·G'/(√H' + ε), H' = H + G'², G' = G + λX, r = R/(1 + T·decay)."""
    count = _group_count(node, 3, 2)
    norm = float(node.attrs.get("norm_coefficient", 0.0))
    decay = float(node.attrs.get("decay_factor", 0.0))
    epsilon = float(node.attrs.get("epsilon", 1e-6))

    def compute(r: Any, t: Any, *tensors: Any) -> tuple:
        rate, step = _scalars(r, t)
        rate = rate / (1.0 + step * decay)
        xs, gs, hs = (tensors[i * count:(i + 1) * count] for i in range(3))
        new_x, new_h = [], []
        for x, g, h in zip(xs, gs, hs):
            g_reg = _typed(norm, x) * x + g
            h_new = h + g_reg * g_reg
            adaptive = np.sqrt(h_new) + _typed(epsilon, h_new)
            new_x.append((x - _typed(rate, x) * g_reg / adaptive).astype(x.dtype, copy=False))
            new_h.append(h_new.astype(h.dtype, copy=False))
        return tuple(new_x + new_h)

    return compute


@kernels.register("Adam", since=1, domain=DOMAIN)
def adam(node: NodeInfo) -> Callable[..., tuple]:
    """Adam 1+: bias-corrected first (V) and second (H) moment update of X, with optional
    pre- (norm_coefficient) and post-update (norm_coefficient_post) L2 regularization."""
    count = _group_count(node, 4, 3)
    norm = float(node.attrs.get("norm_coefficient", 0.0))
    norm_post = float(node.attrs.get("norm_coefficient_post", 0.0))
    alpha = float(node.attrs.get("alpha", 0.9))
    beta = float(node.attrs.get("beta", 0.999))
    epsilon = float(node.attrs.get("epsilon", 1e-6))

    def compute(r: Any, t: Any, *tensors: Any) -> tuple:
        rate, step = _scalars(r, t)
        if step > 0:
            rate = rate * np.sqrt(1.0 - beta**step) / (1.0 - alpha**step)
        xs, gs, vs, hs = (tensors[i * count:(i + 1) * count] for i in range(4))
        new_x, new_v, new_h = [], [], []
        for x, g, v, h in zip(xs, gs, vs, hs):
            g_reg = _typed(norm, x) * x + g
            v_new = _typed(alpha, v) * v + _typed(1.0 - alpha, v) * g_reg
            h_new = _typed(beta, h) * h + _typed(1.0 - beta, h) * (g_reg * g_reg)
            h_sqrt = np.sqrt(h_new) + _typed(epsilon, h_new)
            x_new = x - _typed(rate, x) * (v_new / h_sqrt)
            x_new = _typed(1.0 - norm_post, x) * x_new
            new_x.append(x_new.astype(x.dtype, copy=False))
            new_v.append(v_new.astype(v.dtype, copy=False))
            new_h.append(h_new.astype(h.dtype, copy=False))
        return tuple(new_x + new_v + new_h)

    return compute


@kernels.register("Momentum", since=1, domain=DOMAIN)
def momentum(node: NodeInfo) -> Callable[..., tuple]:
    """Momentum 1+: V = αV + β'G', X -= R·V (standard) or R·(G' + αV) (nesterov), with
    G' = G + λX and β' = 1 on the first update (T = 0)."""
    count = _group_count(node, 3, 2)
    missing = [a for a in ("alpha", "beta", "norm_coefficient", "mode") if a not in node.attrs]
    if missing:
        raise ValueError(f"{node.describe()}: missing required attribute(s) {missing}")
    mode = str(node.attrs["mode"])
    if mode not in ("standard", "nesterov"):
        raise ValueError(
            f"{node.describe()}: mode must be 'standard' or 'nesterov', got '{mode}'"
        )
    nesterov = mode == "nesterov"
    alpha = float(node.attrs["alpha"])
    beta = float(node.attrs["beta"])
    norm = float(node.attrs["norm_coefficient"])

    def compute(r: Any, t: Any, *tensors: Any) -> tuple:
        rate, step = _scalars(r, t)
        beta_adjusted = beta if step > 0 else 1.0
        xs, gs, vs = (tensors[i * count:(i + 1) * count] for i in range(3))
        new_x, new_v = [], []
        for x, g, v in zip(xs, gs, vs):
            g_reg = _typed(norm, x) * x + g
            v_new = _typed(alpha, v) * v + _typed(beta_adjusted, v) * g_reg
            direction = g_reg + _typed(alpha, v_new) * v_new if nesterov else v_new
            new_x.append((x - _typed(rate, x) * direction).astype(x.dtype, copy=False))
            new_v.append(v_new.astype(v.dtype, copy=False))
        return tuple(new_x + new_v)

    return compute
