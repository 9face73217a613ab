"""CPU kernels: Reduce* ops (axes as attribute or input, keepdims, noop_with_empty_axes) and
ArgMax/ArgMin."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ort.ep import KernelTable, NodeInfo

from .float_work import LOW_PRECISION

kernels = KernelTable()

# Sums of these types accumulate in float32 (numpy would accumulate in the narrow type).


def _accumulator(dtype: np.dtype) -> np.dtype:
    """Return the dtype sums of ``dtype`` accumulate in."""
    return np.dtype(np.float32) if dtype in LOW_PRECISION else dtype


def _sum(xp, x, axes, keepdims):
    """Sum in the accumulator type of x."""
    return xp.sum(x, axis=axes, keepdims=keepdims, dtype=_accumulator(x.dtype))


def _extreme(name: str):
    """Return a max/min reduction giving the lowest/highest value of the type on empty
    reductions (as onnxruntime does)."""

    def reduce(xp, x, axes, keepdims):
        if x.size == 0:
            if x.dtype == np.bool_:
                fill = name == "min"
            elif x.dtype.kind in "iu":
                info = np.iinfo(x.dtype)
                fill = info.min if name == "max" else info.max
            else:
                fill = -np.inf if name == "max" else np.inf
            shape = _reduced_shape(x.shape, axes, keepdims)
            return xp.full(shape, fill, dtype=x.dtype)
        return getattr(xp, name)(x, axis=axes, keepdims=keepdims)

    return reduce


def _reduced_shape(shape, axes, keepdims):
    """Return the shape of reducing ``shape`` over ``axes`` (None: all)."""
    axes = range(len(shape)) if axes is None else axes
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _mean(xp, x, axes, keepdims):
    """Mean; integer means truncate toward zero like onnxruntime's integer division, and
    empty reductions give 0 as in onnxruntime."""
    total = _sum(xp, x, axes, keepdims)
    count = x.size // max(total.size, 1) if x.size else 0
    if x.dtype.kind in "iu":
        if count == 0:
            return xp.zeros(total.shape, dtype=x.dtype)
        quotient = xp.abs(total) // count
        return xp.where(total < 0, -quotient, quotient)
    if count == 0:
        return xp.zeros(total.shape, dtype=total.dtype)
    return total / total.dtype.type(count)


def _log_sum_exp(xp, x, axes, keepdims):
    """log(sum(exp(x))) shifted by the maximum for stability."""
    if x.size == 0:
        return xp.log(_sum(xp, x, axes, keepdims))
    wide = x.astype(_accumulator(x.dtype), copy=False)
    peak = xp.max(wide, axis=axes, keepdims=True)
    peak = xp.where(xp.isfinite(peak), peak, 0)
    total = xp.sum(xp.exp(wide - peak), axis=axes, keepdims=True)
    result = xp.log(total) + peak
    if not keepdims:
        result = result.reshape(_reduced_shape(x.shape, axes, False))
    return result


def _prod(xp, x, axes, keepdims):
    """Product in the accumulator type of x."""
    return xp.prod(x, axis=axes, keepdims=keepdims, dtype=_accumulator(x.dtype))


def _l1(xp, x, axes, keepdims):
    """Sum of absolute values."""
    return _sum(xp, xp.abs(x), axes, keepdims)


def _sum_square(xp, x, axes, keepdims):
    """Sum of squares, squared in the accumulator type."""
    return _sum(xp, xp.square(x.astype(_accumulator(x.dtype), copy=False)), axes, keepdims)


def _l2(xp, x, axes, keepdims):
    """Euclidean norm."""
    return xp.sqrt(_sum_square(xp, x, axes, keepdims))


def _log_sum(xp, x, axes, keepdims):
    """log of the sum."""
    return xp.log(_sum(xp, x, axes, keepdims))


_max = _extreme("max")
_min = _extreme("min")


def _normalize_axes(axes, ndim: int, node: NodeInfo) -> tuple[int, ...]:
    """Return axes as a sorted tuple of non-negative ints, validated against ndim: unlike
    :func:`kernel_args.normalize_axes`, repeats merge and a scalar takes axis 0 or -1 (what
    onnxruntime's reductions accept)."""
    out = set()
    for axis in axes:
        axis = int(axis)
        if not -max(ndim, 1) <= axis < max(ndim, 1):
            raise ValueError(f"{node.describe()}: axis {axis} out of range for rank {ndim}")
        out.add(axis + ndim if axis < 0 else axis)
    return tuple(sorted(a for a in out if a < ndim))


def _finish(xp, reduce: Callable, x, axes, keepdims):
    """Run a reduction and cast the result back to x's dtype as an array."""
    result = reduce(xp, x, axes, keepdims)
    return xp.asarray(result).astype(x.dtype, copy=False)


def _attribute_axes_factory(reduce: Callable):
    """Return a factory for the versions taking ``axes`` as an attribute."""

    def factory(node: NodeInfo):
        xp = node.xp
        keepdims = bool(node.attrs.get("keepdims", 1))
        axes_attr = node.attrs.get("axes")
        reduce_all = axes_attr is None or len(axes_attr) == 0

        def compute(x):
            axes = None if reduce_all else _normalize_axes(axes_attr, x.ndim, node)
            return (_finish(xp, reduce, x, axes, keepdims),)

        return compute

    factory.__doc__ = "Prepare a Reduce node whose axes are an attribute."
    return factory


def _input_axes_factory(reduce: Callable):
    """Return a factory for the versions taking ``axes`` as an optional input."""

    def factory(node: NodeInfo):
        xp = node.xp
        keepdims = bool(node.attrs.get("keepdims", 1))
        noop = bool(node.attrs.get("noop_with_empty_axes", 0))

        def compute(x, axes=None):
            if axes is None or axes.size == 0:
                # noop: no axis reduced, but like onnxruntime the elementwise part
                # (abs, square, log, ...) is still applied.
                normalized = () if noop else None
            else:
                if axes.ndim != 1:  # onnxruntime: "An axes tensor must be a vector tensor."
                    raise ValueError(f"{node.describe()}: axes must be a 1-D tensor, got shape "
                                     f"{list(axes.shape)}")
                normalized = _normalize_axes(axes.tolist(), x.ndim, node)
            return (_finish(xp, reduce, x, normalized, keepdims),)

        return compute

    factory.__doc__ = "Prepare a Reduce node whose axes are an optional input."
    return factory


def _register_reduction(op: str, reduce: Callable, axes_input_since: int) -> None:
    """Register ``op``: axes as an attribute before ``axes_input_since``, as an optional host
    input from it on."""
    kernels.register(op, 1, axes_input_since - 1)(_attribute_axes_factory(reduce))
    kernels.register(op, axes_input_since, host_inputs=(1,))(_input_axes_factory(reduce))


# op, its reduction(xp, x, axes, keepdims) (axes a tuple, or None for all), the first version
# taking axes as an input
_register_reduction("ReduceSum", _sum, 13)
_register_reduction("ReduceMean", _mean, 18)
_register_reduction("ReduceMax", _max, 18)
_register_reduction("ReduceMin", _min, 18)
_register_reduction("ReduceProd", _prod, 18)
_register_reduction("ReduceL1", _l1, 18)
_register_reduction("ReduceL2", _l2, 18)
_register_reduction("ReduceLogSum", _log_sum, 18)
_register_reduction("ReduceLogSumExp", _log_sum_exp, 18)
_register_reduction("ReduceSumSquare", _sum_square, 18)


def _arg_factory(name: str):
    """Return a factory for ArgMax/ArgMin (axis, keepdims, select_last_index)."""

    def factory(node: NodeInfo):
        xp = node.xp
        find = getattr(xp, name)
        axis = int(node.attrs.get("axis", 0))
        keepdims = bool(node.attrs.get("keepdims", 1))
        last = bool(node.attrs.get("select_last_index", 0))

        def compute(x):
            ax = axis + x.ndim if axis < 0 else axis
            if not 0 <= ax < max(x.ndim, 1):
                raise ValueError(f"{node.describe()}: axis {axis} out of range for rank {x.ndim}")
            if last:
                index = (x.shape[ax] - 1) - find(xp.flip(x, ax), axis=ax, keepdims=keepdims)
            else:
                index = find(x, axis=ax, keepdims=keepdims)
            return (xp.asarray(index, dtype=np.int64),)

        return compute

    factory.__doc__ = f"Prepare an {name} node."
    return factory


kernels.register("ArgMax", 1)(_arg_factory("argmax"))
kernels.register("ArgMin", 1)(_arg_factory("argmin"))
