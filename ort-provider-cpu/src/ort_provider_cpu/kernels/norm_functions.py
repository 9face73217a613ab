"""CPU kernels: the normalizations ONNX defines as functions, computed directly instead of
expanded: RMSNormalization (23+), GroupNormalization (18+) and MeanVarianceNormalization (9+).
RMSNormalization of float32/float64 runs the compiled row loop of LayerNormalization
(:func:`~ort_provider_cpu.kernels.normalization.compiled_row_norm`).

float16 and bfloat16 are computed in float32 (float64 stays float64); the statistics use the
``stash_type`` precision where the op has that attribute.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ort.ep import KernelTable, NodeInfo

from .float_work import precision_attr, widest, work_dtype
from .kernel_args import normalize_axis, required_positive_int
from .normalization import ROW_LOOP_DTYPES, compiled_row_norm, row_param

kernels = KernelTable()


@kernels.register("RMSNormalization", since=23)
def rms_normalization(node: NodeInfo) -> Callable[..., tuple]:
    """RMSNormalization 23+: X / sqrt(mean(X^2 over [axis, rank)) + epsilon) * scale.

    The statistics use stash_type precision (float64 inputs are never narrowed); the normalized
    value is rounded to X's type, then scaled in the scale's type.
    """
    xp = node.xp
    axis = int(node.attrs.get("axis", -1))
    epsilon = float(node.attrs.get("epsilon", 1e-5))
    stash = precision_attr(node, "stash_type", 1)
    row_loop = compiled_row_norm(node)

    def compute(x: Any, scale: Any) -> tuple:
        first = normalize_axis(node, axis, x.ndim)
        work = widest(stash, x.dtype)
        scale1 = row_param(xp, scale, tuple(x.shape[first:]), work) if (
            row_loop is not None and x.size and x.dtype == work
            and work in ROW_LOOP_DTYPES) else None
        if scale1 is not None:
            rows = x.size // scale1.size
            y = row_loop(xp.ascontiguousarray(x).reshape(rows, -1), scale1, None, epsilon,
                         True)[0]
            return (y.reshape(x.shape),)
        xw = x.astype(work)
        mean_square = (xw * xw).mean(axis=tuple(range(first, x.ndim)), keepdims=True)
        normalized = xw / xp.sqrt(mean_square + work.type(epsilon))
        normalized = normalized.astype(x.dtype).astype(widest(x.dtype, scale.dtype))
        y = normalized * scale.astype(normalized.dtype, copy=False)
        return (y.astype(scale.dtype, copy=False),)

    return compute


def _group_norm_factory(node: NodeInfo, per_channel: bool) -> Callable[..., tuple]:
    """Build GroupNormalization: statistics per (instance, group); scale/bias per channel
    (21+) or per group (18)."""
    xp = node.xp
    where = node.describe()
    groups = required_positive_int(node, "num_groups")
    epsilon = float(node.attrs.get("epsilon", 1e-5))
    stash = precision_attr(node, "stash_type", 1) if per_channel else None

    def compute(x: Any, scale: Any, bias: Any) -> tuple:
        if x.ndim < 2:
            raise ValueError(f"{where}: input must have rank >= 2, got shape {x.shape}")
        batch, channels = x.shape[0], x.shape[1]
        if channels % groups:
            raise ValueError(f"{where}: {channels} channels are not divisible by {groups} groups")
        params = channels if per_channel else groups
        if scale.shape != (params,) or bias.shape != (params,):
            raise ValueError(
                f"{where}: scale and bias must have shape ({params},), got {scale.shape} and "
                f"{bias.shape}"
            )
        work = widest(x.dtype) if stash is None else widest(stash, x.dtype)
        grouped = x.reshape(batch, groups, -1).astype(work)
        mean = grouped.mean(axis=2, keepdims=True)
        centered = grouped - mean
        var = (centered * centered).mean(axis=2, keepdims=True)
        normalized = centered / xp.sqrt(var + work.type(epsilon))
        out_work = work_dtype(x.dtype)
        if per_channel:
            normalized = normalized.astype(x.dtype).astype(out_work).reshape(batch, channels, -1)
        shape = (1, params, 1)
        y = normalized.astype(out_work, copy=False) * scale.astype(out_work).reshape(shape)
        y += bias.astype(out_work).reshape(shape)
        return (y.reshape(x.shape).astype(x.dtype, copy=False),)

    return compute


@kernels.register("GroupNormalization", since=18, until=20)
def group_normalization_18(node: NodeInfo) -> Callable[..., tuple]:
    """GroupNormalization 18-20: normalize per (instance, group) in X's type; scale and bias
    have one value per group."""
    return _group_norm_factory(node, per_channel=False)


@kernels.register("GroupNormalization", since=21)
def group_normalization_21(node: NodeInfo) -> Callable[..., tuple]:
    """GroupNormalization 21+: normalize per (instance, group) in stash_type precision; scale
    and bias have one value per channel."""
    return _group_norm_factory(node, per_channel=True)


@kernels.register("MeanVarianceNormalization", since=9)
def mean_variance_normalization(node: NodeInfo) -> Callable[..., tuple]:
    """MeanVarianceNormalization 9+: (X - mean) / (std + 1e-9) over ``axes``."""
    xp = node.xp
    axes_attr = tuple(int(a) for a in node.attrs.get("axes", (0, 2, 3)))

    def compute(x: Any) -> tuple:
        axes = tuple(sorted({normalize_axis(node, a, x.ndim) for a in axes_attr}))
        xw = x.astype(work_dtype(x.dtype))
        mean = xw.mean(axis=axes, keepdims=True)
        centered = xw - mean
        std = xp.sqrt((centered * centered).mean(axis=axes, keepdims=True))
        y = centered / (std + xw.dtype.type(1e-9))
        return (y.astype(x.dtype, copy=False),)

    return compute
