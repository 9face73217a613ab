"""CPU kernels: the recurrent ops of linear-attention (state-space) layers, which carry a state
from one decoding step to the next: LinearAttention (27+) and CausalConvWithState (27+), the
short causal convolution such layers apply before it.

The state is an input and an output of each op. LinearAttention runs its recurrence in float32;
CausalConvWithState computes float16 and bfloat16 in float32 (float64 stays float64), rounding
to the input type before its optional SiLU and at the end.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ort.ep import KernelTable, NodeInfo

from .float_work import rounding, sigmoid, work_dtype
from .kernel_args import required_positive_int

kernels = KernelTable()


# --------------------------------------------------------------------------------------------
# LinearAttention
# --------------------------------------------------------------------------------------------

_UPDATE_RULES = ("linear", "gated", "delta", "gated_delta")


@kernels.register("LinearAttention", since=27)
def linear_attention(node: NodeInfo) -> Callable[..., tuple]:
    """LinearAttention 27+: recurrent linear attention (linear/gated/delta/gated_delta rules).

    Runs the recurrence token by token in float32, vectorized over batch and heads; a KV
    head's state is shared by ``q_num_heads / kv_num_heads`` query heads.
    """
    xp = node.xp
    where = node.describe()
    rule = node.attrs.get("update_rule", "gated_delta")
    if rule not in _UPDATE_RULES:
        raise ValueError(f"{where}: update_rule must be one of {_UPDATE_RULES}, got {rule!r}")
    q_heads = required_positive_int(node, "q_num_heads")
    kv_heads = required_positive_int(node, "kv_num_heads")
    if q_heads % kv_heads:
        raise ValueError(
            f"{where}: q_num_heads ({q_heads}) must be a multiple of kv_num_heads ({kv_heads})"
        )
    group = q_heads // kv_heads
    gating = rule in ("gated", "gated_delta")
    delta = rule in ("delta", "gated_delta")
    if gating != node.has_input(4):
        raise ValueError(
            f"{where}: update_rule {rule!r} {'requires' if gating else 'forbids'} the decay input"
        )
    if delta != node.has_input(5):
        raise ValueError(
            f"{where}: update_rule {rule!r} {'requires' if delta else 'forbids'} the beta input"
        )
    scale_attr = float(node.attrs.get("scale", 0.0))
    f32 = np.float32

    def gate_input(x: Any, name: str, per_key: int, batch: int, steps: int) -> Any:
        """Return decay/beta ``x`` (B, T, n) in float32 as (B, T, n, 1), or as
        (B, T, H_kv, d_k) when it has ``per_key`` = H_kv * d_k entries per token."""
        allowed = {kv_heads, per_key} if name == "decay" else {kv_heads, 1}
        if x.ndim != 3 or x.shape[:2] != (batch, steps) or x.shape[2] not in allowed:
            raise ValueError(
                f"{where}: {name} must have shape (B, T, n) with n in {sorted(allowed)}, got "
                f"{x.shape}"
            )
        if name == "decay" and x.shape[2] == per_key:
            return x.reshape(batch, steps, kv_heads, -1).astype(f32)
        return x.reshape(batch, steps, x.shape[2], 1).astype(f32)

    def compute(query: Any, key: Any, value: Any, past_state: Any = None, decay: Any = None,
                beta: Any = None) -> tuple:
        for name, x in (("query", query), ("key", key), ("value", value)):
            if x.ndim != 3:
                raise ValueError(f"{where}: {name} must be 3-D (B, T, H*D), got {x.shape}")
        batch, steps, q_hidden = query.shape
        if q_hidden % q_heads or key.shape[-1] % kv_heads or value.shape[-1] % kv_heads:
            raise ValueError(f"{where}: hidden sizes are not multiples of the head counts")
        d_k, d_v = q_hidden // q_heads, value.shape[-1] // kv_heads
        if key.shape[-1] != kv_heads * d_k:
            raise ValueError(f"{where}: key hidden size {key.shape[-1]} != {kv_heads} * {d_k}")
        scale = scale_attr if scale_attr != 0.0 else 1.0 / math.sqrt(d_k)
        queries = query.reshape(batch, steps, kv_heads, group, d_k).astype(f32)
        keys = key.reshape(batch, steps, kv_heads, d_k).astype(f32)
        values = value.reshape(batch, steps, kv_heads, d_v).astype(f32)
        if gating:
            gates = xp.exp(gate_input(decay, "decay", kv_heads * d_k, batch, steps))
        if delta:
            rates = gate_input(beta, "beta", kv_heads * d_k, batch, steps)
        state_shape = (batch, kv_heads, d_k, d_v)
        if past_state is None:
            state_dtype = query.dtype
            state = xp.zeros(state_shape, dtype=f32)
        else:
            if tuple(past_state.shape) != state_shape:
                raise ValueError(f"{where}: past_state shape {past_state.shape} != {state_shape}")
            state_dtype = past_state.dtype
            state = past_state.astype(f32)
        out = xp.empty((batch, steps, kv_heads, group, d_v), dtype=f32)
        for t in range(steps):  # the recurrence: one step per token
            k_t, v_t = keys[:, t], values[:, t]
            if gating:
                state = state * gates[:, t, :, :, None]
            if delta:
                retrieved = xp.matmul(k_t[:, :, None, :], state)[:, :, 0]
                v_t = rates[:, t] * (v_t - retrieved)
            state = state + k_t[:, :, :, None] * v_t[:, :, None, :]
            out[:, t] = xp.matmul(queries[:, t], state) * f32(scale)
        output = out.reshape(batch, steps, q_heads * d_v).astype(query.dtype)
        return (output, state.astype(state_dtype))

    return compute


# --------------------------------------------------------------------------------------------
# CausalConvWithState
# --------------------------------------------------------------------------------------------

_CONV_ACTIVATIONS = ("none", "silu", "swish")


@kernels.register("CausalConvWithState", since=27)
def causal_conv_with_state(node: NodeInfo) -> Callable[..., tuple]:
    """CausalConvWithState 27+: depthwise causal 1-D conv over [past_state, input], optional
    SiLU; the new state is the last k-1 positions of that sequence."""
    xp = node.xp
    where = node.describe()
    activation = node.attrs.get("activation", "none")
    if activation not in _CONV_ACTIVATIONS:
        raise ValueError(
            f"{where}: activation must be one of {_CONV_ACTIVATIONS}, got {activation!r}"
        )

    def compute(x: Any, weight: Any, bias: Any = None, past_state: Any = None) -> tuple:
        if x.ndim != 3 or weight.ndim != 3 or weight.shape[:2] != (x.shape[1], 1):
            raise ValueError(
                f"{where}: input must be (B, C, L) and weight (C, 1, k), got {x.shape} and "
                f"{weight.shape}"
            )
        batch, channels, length = x.shape
        taps = weight.shape[2]
        if past_state is None:
            past_state = xp.zeros((batch, channels, taps - 1), dtype=x.dtype)
        elif tuple(past_state.shape) != (batch, channels, taps - 1):
            raise ValueError(
                f"{where}: past_state shape {past_state.shape} != {(batch, channels, taps - 1)}"
            )
        padded = xp.concatenate([past_state, x], axis=2)
        work = work_dtype(x.dtype)
        kernel = weight.astype(work)[:, 0, :]  # (C, k)
        out = xp.zeros((batch, channels, length), dtype=work)
        for tap in range(taps):  # loop over kernel taps, each a shifted slice
            out += padded[:, :, tap : tap + length].astype(work) * kernel[:, tap, None]
        if bias is not None:
            out += bias.astype(work)[:, None]
        if activation != "none":
            out = rounding(x.dtype)(out)
            out = out * sigmoid(xp, out)
        present = padded[:, :, padded.shape[2] - (taps - 1) :]
        return (out.astype(x.dtype), xp.array(present, copy=True))

    return compute
