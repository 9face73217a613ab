"""CPU kernels: normalization, the nn family's ops that scale activations by statistics or
norms (BatchNormalization, InstanceNormalization, LayerNormalization, LRN, LpNormalization).

Statistics are computed in float32 (float64 stays float64); BatchNormalization folds constant
parameters into one multiply-add per element. LayerNormalization of float32/float64 runs one
compiled loop per row (:mod:`~ort_provider_cpu.kernels.rowwise_loops`, statistics in float64,
rows split over the intra-op threads; :func:`compiled_row_norm` and :func:`compiled_skip_norm`
give the loop to the RMS and Skip normalizations of other modules); without it, it normalizes
a fresh copy of the input row by row in place (:func:`normalize_rows`, which com.microsoft's
LayerNormalization and SkipLayerNormalization reuse).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from ort.ep import KernelTable, NodeInfo

from ..intra_op import resolve_threads, split_work
from ..jit import compiled_loops_enabled
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


#: the dtypes the compiled row loops take (X, scale and bias all of one of them)
ROW_LOOP_DTYPES = frozenset((np.dtype(np.float32), np.dtype(np.float64)))
#: elements of work below which a row loop stays on the calling thread
_MIN_SPLIT = 1 << 15


def row_param(xp: Any, value: Any, shape: tuple[int, ...], dtype: np.dtype) -> Any:
    """A scale/bias as the contiguous 1-D row (of ``dtype``) it broadcasts to over ``shape``
    (the normalized dims), or None where its dtype is not ``dtype`` or it does not broadcast
    to ``shape`` (the numpy path then runs, and says what is wrong)."""
    if value.dtype != dtype or value.ndim > len(shape):
        return None
    if value.shape != shape:
        try:
            value = xp.broadcast_to(value, shape)
        except ValueError:
            return None
    return xp.ascontiguousarray(value).reshape(-1)


def _split_rows(loop_call: Callable[[int, int], Any], rows: int, width: int,
                threads: int) -> None:
    """Run ``loop_call(start, stop)`` over ``rows`` rows, split over ``threads`` when large."""
    if threads <= 1 or rows * width < 2 * _MIN_SPLIT:
        loop_call(0, rows)
    else:
        split_work(loop_call, rows, threads, max(1, _MIN_SPLIT // max(width, 1)))


def compiled_row_norm(node: NodeInfo) -> Callable[..., Any] | None:
    """The compiled LayerNormalization of rows, or None where ``node`` may not use compiled
    loops: ``run(x, scale, bias, epsilon, simplified)`` normalizes the C-contiguous 2-D
    float32/float64 ``x`` into a fresh array (``simplified``: RMS normalization, ``bias``
    ignored) with the 1-D ``scale``/``bias`` (None: none) of X's dtype, and returns
    ``(y, mean, inv_std)`` (the statistics 1-D, of X's dtype)."""
    if not compiled_loops_enabled(node):
        return None
    from . import rowwise_loops

    threads = resolve_threads(node.intra_op_threads)
    loops: dict[np.dtype, Any] = {}
    zeros: dict[tuple, Any] = {}

    def loop_for(dtype: np.dtype) -> Any:
        found = loops.get(dtype)
        if found is None:
            found = loops[dtype] = rowwise_loops.layer_norm_rows.prepare(
                (dtype, 2), (dtype, 1), (dtype, 1), (dtype, 2), (dtype, 1), (dtype, 1), int,
                int, float, bool)
        return found

    for dtype in node.input_dtypes[:1]:
        if dtype is not None and np.dtype(dtype) in ROW_LOOP_DTYPES:
            loop_for(np.dtype(dtype))  # compiled now, not on the first run

    def run(x: Any, scale: Any, bias: Any, epsilon: float, simplified: bool) -> tuple:
        rows, width = x.shape
        loop = loop_for(x.dtype)
        if bias is None:
            key = (width, x.dtype)
            bias = zeros.get(key)
            if bias is None:
                bias = zeros[key] = np.zeros(width, x.dtype)
        y = node.empty((rows, width), x.dtype)
        mean, inv_std = np.empty(rows, x.dtype), np.empty(rows, x.dtype)
        _split_rows(lambda a, b: loop(x, scale, bias, y, mean, inv_std, a, b, epsilon,
                                      simplified), rows, width, threads)
        return y, mean, inv_std

    return run


def compiled_skip_norm(node: NodeInfo) -> Callable[..., Any] | None:
    """The compiled com.microsoft Skip(Simplified)LayerNormalization, or None where ``node``
    may not use compiled loops: ``run(x, skip, gamma, beta, bias, epsilon, simplified,
    want_sum)`` returns ``(y, mean, inv_std, summed)`` (statistics float32 of shape
    ``x.shape[:-1] + (1,)``; ``summed`` = x + skip + bias in X's type, None unless
    ``want_sum``), or None where the dtypes are not all one of float32/float64 (the caller's
    numpy path then runs)."""
    if not compiled_loops_enabled(node):
        return None
    from . import rowwise_loops

    threads = resolve_threads(node.intra_op_threads)
    loops: dict[np.dtype, Any] = {}
    zeros: dict[tuple, Any] = {}

    def loop_for(dtype: np.dtype) -> Any:
        found = loops.get(dtype)
        if found is None:
            found = loops[dtype] = rowwise_loops.skip_layer_norm_rows.prepare(
                (dtype, 2), (dtype, 2), (dtype, 1), (dtype, 1), (dtype, 1), (dtype, 2),
                (dtype, 2), (dtype, 1), (dtype, 1), int, int, float, bool, bool)
        return found

    for dtype in node.input_dtypes[:1]:
        if dtype is not None and np.dtype(dtype) in ROW_LOOP_DTYPES:
            loop_for(np.dtype(dtype))

    def run(x: Any, skip: Any, gamma: Any, beta: Any, bias: Any, epsilon: float,
            simplified: bool, want_sum: bool) -> tuple | None:
        dtype = x.dtype
        if dtype not in ROW_LOOP_DTYPES or any(
                v is not None and v.dtype != dtype for v in (skip, gamma, beta, bias)):
            return None
        hidden = x.shape[-1]
        rows = x.size // hidden if hidden else 0
        if rows == 0 or skip.ndim > x.ndim or skip.shape[-1] != hidden or (
                skip.size != x.size and skip.size != math.prod(x.shape[-2:])):
            return None  # (a skip that broadcasts X itself: the numpy path)
        loop = loop_for(dtype)
        key = (hidden, dtype)
        zero = zeros.get(key)
        if zero is None:
            zero = zeros[key] = np.zeros(hidden, dtype)
        x2 = np.ascontiguousarray(x).reshape(rows, hidden)
        skip2 = np.ascontiguousarray(skip).reshape(-1, hidden)
        y = node.empty(x.shape, dtype)
        summed = node.empty(x.shape, dtype) if want_sum else np.empty((1, hidden), dtype)
        mean, inv_std = np.empty(rows, dtype), np.empty(rows, dtype)
        y2, summed2 = y.reshape(rows, hidden), summed.reshape(-1, hidden)
        gamma1 = np.ascontiguousarray(gamma)
        beta1 = zero if beta is None else np.ascontiguousarray(beta)
        bias1 = zero if bias is None else np.ascontiguousarray(bias)
        _split_rows(lambda a, b: loop(x2, skip2, bias1, gamma1, beta1, y2, summed2, mean,
                                      inv_std, a, b, epsilon, simplified, want_sum),
                    rows, hidden, threads)
        stat_shape = x.shape[:-1] + (1,)
        return (y, mean.reshape(stat_shape).astype(np.float32, copy=False),
                inv_std.reshape(stat_shape).astype(np.float32, copy=False),
                summed if want_sum else None)

    return run


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
    row_loop = compiled_row_norm(node)

    def by_loop(x: Any, scale: Any, bias: Any, first: int) -> tuple | None:
        """The outputs by the compiled row loop, or None where the dtypes do not suit it."""
        norm_shape = tuple(x.shape[first:])
        scale1 = row_param(xp, scale, norm_shape, x.dtype)
        bias1 = None if bias is None else row_param(xp, bias, norm_shape, x.dtype)
        if scale1 is None or (bias is not None and bias1 is None):
            return None
        rows = math.prod(x.shape[:first])
        y, mean, inv_std = row_loop(xp.ascontiguousarray(x).reshape(rows, -1), scale1, bias1,
                                    epsilon, False)
        stat_shape = tuple(x.shape[:first]) + (1,) * (x.ndim - first)
        outs = [y.reshape(x.shape)]
        if node.num_outputs > 1:
            outs.append(mean.reshape(stat_shape).astype(stat_dtype) if want_mean else None)
        if node.num_outputs > 2:
            outs.append(inv_std.reshape(stat_shape).astype(stat_dtype) if want_inv_std
                        else None)
        return tuple(outs)

    def compute(x: Any, scale: Any, bias: Any = None) -> tuple:
        first = normalize_axis(node, axis, x.ndim, scalar_ok=True)
        work = cdt if x.dtype != np.float64 else np.dtype(np.float64)
        rows, width = math.prod(x.shape[:first]), math.prod(x.shape[first:])
        stat_shape = tuple(x.shape[:first]) + (1,) * (x.ndim - first)
        if row_loop is not None and rows and width and work == x.dtype:
            outs = by_loop(x, scale, bias, first)
            if outs is not None:
                return outs
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
