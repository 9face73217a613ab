"""CPU kernels: normalization, the nn family's ops that scale activations by statistics or
norms (BatchNormalization, InstanceNormalization, LayerNormalization, LRN, LpNormalization).

Statistics are computed in float32 (float64 stays float64); BatchNormalization folds constant
parameters into one multiply-add per element, LayerNormalization normalizes a fresh copy of the
input row by row in place (:func:`normalize_rows`, which com.microsoft's LayerNormalization and
SkipLayerNormalization reuse).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ort.ep import KernelTable, NodeInfo

from .float_work import wide_work_dtype, work_dtype
from .kernel_args import normalize_axis
from .nn_common import channel_shape, lp_power, lp_root

kernels = KernelTable()


# ONNX TensorProto element types a LayerNormalization stash_type may name.
_STASH_DTYPES = {1: np.dtype(np.float32), 10: np.dtype(np.float16), 11: np.dtype(np.float64)}


def _per_channel(param: Any, x: Any, spatial: bool, cdt: np.dtype) -> Any:
    """Reshape a BatchNormalization parameter to broadcast against X (N, C, ...)."""
    param = param.astype(cdt, copy=False)
    if spatial or x.ndim <= 2 or param.size == x.shape[1] and param.ndim == 1:
        return param.reshape(channel_shape(x.ndim))
    return param.reshape(x.shape[1:])  # spatial=0: one parameter per (C, D1, ..., Dn) element


@kernels.register("BatchNormalization", since=1)
def batch_normalization(node: NodeInfo) -> Callable[..., tuple]:
    """BatchNormalization (all versions): inference, or training when asked for statistics.

    Before opset 14 the statistics outputs (mean, var, saved_mean, saved_var) exist only for
    training, so requesting any of them selects training mode (as the ONNX reference does);
    ``is_test`` alone does not, since old inference models often carry ``is_test=0``.
    From opset 14 the ``training_mode`` attribute decides.
    """
    xp = node.xp
    version = node.since_version
    epsilon = float(node.attrs.get("epsilon", 1e-5))
    momentum = float(node.attrs.get("momentum", 0.9))
    spatial = bool(node.attrs.get("spatial", 1)) if version < 9 else True
    if version >= 14:
        training = bool(node.attrs.get("training_mode", 0))
    else:
        training = any(node.has_output(i) for i in range(1, node.num_outputs))
    if version >= 14 and not training and any(node.has_output(i) for i in (1, 2)):
        raise ValueError(
            f"{node.describe()}: running_mean/running_var outputs need training_mode=1"
        )
    stats_axes_cache: dict[int, tuple[int, ...]] = {}

    def stats_axes(x: Any) -> tuple[int, ...]:
        axes = stats_axes_cache.get(x.ndim)
        if axes is None:
            keep = {1} if spatial else set(range(1, x.ndim))
            axes = stats_axes_cache[x.ndim] = tuple(i for i in range(x.ndim) if i not in keep)
        return axes

    params_const = all(
        i < len(node.const_inputs) and node.const_inputs[i] is not None for i in range(1, 5)
    )
    folded: dict[tuple, tuple] = {}

    def fold(x: Any, scale: Any, bias: Any, mean: Any, var: Any) -> tuple:
        """Fold the parameters into y = x * a + b (cached when they are constants)."""
        cdt = work_dtype(x.dtype)
        key = (x.ndim, x.shape[1:] if not spatial else None, cdt)
        if params_const and key in folded:
            return folded[key]
        inv_std = 1.0 / xp.sqrt(_per_channel(var, x, spatial, cdt) + cdt.type(epsilon))
        a = _per_channel(scale, x, spatial, cdt) * inv_std
        b = _per_channel(bias, x, spatial, cdt) - _per_channel(mean, x, spatial, cdt) * a
        if params_const:
            folded[key] = (a, b)
        return a, b

    def infer(x: Any, scale: Any, bias: Any, mean: Any, var: Any) -> tuple:
        a, b = fold(x, scale, bias, mean, var)
        y = x.astype(a.dtype, copy=False) * a
        y += b
        return (y.astype(x.dtype, copy=False),)

    def train(x: Any, scale: Any, bias: Any, mean: Any, var: Any) -> tuple:
        cdt = work_dtype(x.dtype)
        xc = x.astype(cdt, copy=False)
        axes = stats_axes(x)
        batch_mean = xc.mean(axis=axes, keepdims=True)
        centered = xc - batch_mean
        batch_var = (centered * centered).mean(axis=axes, keepdims=True)
        inv_std = 1.0 / xp.sqrt(batch_var + cdt.type(epsilon))
        a = _per_channel(scale, x, spatial, cdt) * inv_std
        y = (centered * a + _per_channel(bias, x, spatial, cdt)).astype(x.dtype, copy=False)
        stat_shape = mean.shape
        batch_mean = batch_mean.reshape(stat_shape)
        batch_var = batch_var.reshape(stat_shape)
        mdt = work_dtype(mean.dtype)
        run_mean = mean.astype(mdt) * momentum + batch_mean * (1.0 - momentum)
        run_var = var.astype(mdt) * momentum + batch_var * (1.0 - momentum)
        outs = [y, run_mean.astype(mean.dtype), run_var.astype(var.dtype)]
        if version < 14:
            outs += [batch_mean.astype(mean.dtype), batch_var.astype(var.dtype)]
        return tuple(outs[: node.num_outputs])

    return train if training else infer


@kernels.register("InstanceNormalization", since=1)
def instance_normalization(node: NodeInfo) -> Callable[..., tuple]:
    """InstanceNormalization: normalize each (n, c) over the spatial axes, then scale/shift."""
    xp = node.xp
    epsilon = float(node.attrs.get("epsilon", 1e-5))

    def compute(x: Any, scale: Any, bias: Any) -> tuple:
        cdt = work_dtype(x.dtype)
        xc = x.astype(cdt, copy=False)
        axes = tuple(range(2, x.ndim))
        mean = xc.mean(axis=axes, keepdims=True)
        centered = xc - mean
        var = (centered * centered).mean(axis=axes, keepdims=True)
        a = scale.astype(cdt, copy=False).reshape(channel_shape(x.ndim)) / xp.sqrt(
            var + cdt.type(epsilon)
        )
        y = centered * a + bias.astype(cdt, copy=False).reshape(channel_shape(x.ndim))
        return (y.astype(x.dtype, copy=False),)

    return compute


def normalize_rows(xp: Any, y: Any, epsilon: float) -> tuple[Any, Any]:
    """Normalize each row of the fresh 2-D float array ``y`` in place to zero mean and unit
    variance (``epsilon`` added to the variance); return (mean, 1 / std), each (rows, 1)."""
    mean = y.mean(axis=1, keepdims=True)
    y -= mean
    var = xp.einsum("ij,ij->i", y, y)  # sum of squares without a temporary
    var *= y.dtype.type(1 / y.shape[1])
    var += y.dtype.type(epsilon)
    inv_std = xp.sqrt(var, out=var)
    xp.divide(y.dtype.type(1), inv_std, out=inv_std)
    inv_std = inv_std.reshape(-1, 1)
    y *= inv_std
    return mean, inv_std


@kernels.register("LayerNormalization", since=17)
def layer_normalization(node: NodeInfo) -> Callable[..., tuple]:
    """LayerNormalization-17: normalize over axes [axis, rank) in stash_type precision."""
    axis = int(node.attrs.get("axis", -1))
    epsilon = float(node.attrs.get("epsilon", 1e-5))
    stash_type = int(node.attrs.get("stash_type", 1))
    stat_dtype = node.output_dtypes[1] if len(node.output_dtypes) > 1 else None
    if stat_dtype is None:
        stat_dtype = _STASH_DTYPES.get(stash_type)
    if stat_dtype is None and (node.has_output(1) or node.has_output(2)):
        raise ValueError(f"{node.describe()}: unsupported stash_type {stash_type}")
    cdt = work_dtype(stat_dtype if stat_dtype is not None else np.float32)
    want_mean, want_inv_std = node.has_output(1), node.has_output(2)
    xp = node.xp

    def compute(x: Any, scale: Any, bias: Any = None) -> tuple:
        first = normalize_axis(node, axis, x.ndim, scalar_ok=True)
        work = cdt if x.dtype != np.float64 else np.dtype(np.float64)
        rows, width = math.prod(x.shape[:first]), math.prod(x.shape[first:])
        stat_shape = tuple(x.shape[:first]) + (1,) * (x.ndim - first)
        if rows and width:
            y = xp.array(x, dtype=work, order="C")  # a fresh array: normalize it in place
            mean, inv_std = normalize_rows(xp, y.reshape(rows, width), epsilon)
            mean, inv_std = mean.reshape(stat_shape), inv_std.reshape(stat_shape)
        else:
            axes = tuple(range(first, x.ndim))
            xc = x.astype(work, copy=False)
            mean = xc.mean(axis=axes, keepdims=True)
            y = xc - mean
            var = (y * y).mean(axis=axes, keepdims=True)
            inv_std = 1.0 / xp.sqrt(var + work.type(epsilon))
            y *= inv_std
        y *= scale.astype(work, copy=False)
        if bias is not None:
            y += bias.astype(work, copy=False)
        outs = [y.astype(x.dtype, copy=False)]
        if node.num_outputs > 1:
            outs.append(mean.astype(stat_dtype) if want_mean else None)
        if node.num_outputs > 2:
            outs.append(inv_std.astype(stat_dtype) if want_inv_std else None)
        return tuple(outs)

    return compute


@kernels.register("LRN", since=1)
def lrn(node: NodeInfo) -> Callable[..., tuple]:
    """LRN: divide by a power of the summed squares over a window of neighbouring channels."""
    xp = node.xp
    size = node.attrs.get("size")
    if size is None or int(size) < 1:
        raise ValueError(f"{node.describe()}: attribute size must be a positive int")
    size = int(size)
    alpha = float(node.attrs.get("alpha", 1e-4))
    beta = float(node.attrs.get("beta", 0.75))
    bias = float(node.attrs.get("bias", 1.0))
    before = (size - 1) // 2
    after = size - 1 - before

    def compute(x: Any) -> tuple:
        cdt = work_dtype(x.dtype)
        xc = x.astype(cdt, copy=False)
        squares = xc * xc
        widths = [(0, 0), (before, after)] + [(0, 0)] * (x.ndim - 2)
        padded = xp.pad(squares, widths)
        channels = x.shape[1]
        total = xp.zeros_like(squares)
        for offset in range(size):  # loop over window taps, not elements
            total += padded[:, offset : offset + channels]
        y = xc / (cdt.type(bias) + cdt.type(alpha / size) * total) ** cdt.type(beta)
        return (y.astype(x.dtype, copy=False),)

    return compute


@kernels.register("LpNormalization", since=1)
def lp_normalization(node: NodeInfo) -> Callable[..., tuple]:
    """LpNormalization 1+: x divided by its L1 or L2 norm along ``axis`` (0 where the norm
    is 0)."""
    xp = node.xp
    axis = int(node.attrs.get("axis", -1))
    p = int(node.attrs.get("p", 2))
    if p not in (1, 2):
        raise ValueError(f"{node.describe()}: p must be 1 or 2, got {p}")

    def compute(x: Any) -> tuple:
        if not -x.ndim <= axis < max(x.ndim, 1):
            raise ValueError(f"{node.describe()}: axis {axis} is out of range for {x.shape}")
        cdt = wide_work_dtype(x.dtype)
        xc = x.astype(cdt, copy=False)
        norm = lp_root(xp, lp_power(xp, xc, p).sum(axis=axis, keepdims=True), p)
        safe = xp.where(norm == 0, cdt.type(1), norm)
        y = xp.where(norm == 0, cdt.type(0), xc / safe)
        return (y.astype(x.dtype, copy=False),)

    return compute
