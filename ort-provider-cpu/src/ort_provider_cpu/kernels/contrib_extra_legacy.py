"""CPU kernels: the experimental ONNX-domain ops onnxruntime still runs (part of
:mod:`.contrib_extra`): Affine, Crop, DynamicSlice, ImageScaler, ParametricSoftplus, Scale,
ScaledTanh, and MeanVarianceNormalization 1-8 and ThresholdedRelu 1-9 (the versions before
ONNX defined them).

ONNX dropped these experimental ops, so they are declared here in the ONNX domain at version 1
(the versions onnxruntime keeps). onnxruntime registers them for float; float16 nodes run there
through its float fallback, so here they are computed in float32 and rounded once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from ort.ep import DeclaredSchema, KernelTable, NodeInfo

from .contrib_schema import declare, elem_type, like_input, tensor_type, typed
from .indexing import slice_10

kernels = KernelTable()

_HALF_FLOAT = {0: ("float16", "float")}
_F32 = np.float32


def _float_attr(node: NodeInfo, name: str, default: float | None = None) -> np.float32:
    """The float attribute ``name`` as float32; a ValueError when it is missing and has no
    default (onnxruntime's kernels require alpha/beta of ParametricSoftplus/ScaledTanh)."""
    value = node.attrs.get(name, default)
    if value is None:
        raise ValueError(f"{node.describe()}: attribute {name!r} is required")
    return _F32(value)


def _elementwise(op_type: str, make: Callable[[NodeInfo], Callable[[Any], Any]],
                 since: int = 1, until: int | None = None) -> None:
    """Register an elementwise float op: ``make(node)`` gives ``f(x32) -> y32``."""

    def factory(node: NodeInfo) -> Callable[..., tuple]:
        fn = make(node)

        def compute(x: Any) -> tuple:
            with np.errstate(over="ignore", invalid="ignore"):
                y = fn(x.astype(_F32, copy=False))
            return (node.xp.asarray(y).astype(x.dtype, copy=False),)

        return compute

    factory.__doc__ = f"{op_type} {since}: elementwise, computed in float32."
    kernels.register(op_type, since=since, until=until, input_types=_HALF_FLOAT)(factory)


def _affine(node: NodeInfo) -> Callable[[Any], Any]:
    """Affine: ``alpha * x + beta``."""
    alpha, beta = _float_attr(node, "alpha", 1.0), _float_attr(node, "beta", 0.0)
    return lambda x: x * alpha + beta


def _scale(node: NodeInfo) -> Callable[[Any], Any]:
    """Scale: ``scale * x``."""
    scale = _float_attr(node, "scale", 1.0)
    return lambda x: x * scale


def _scaled_tanh(node: NodeInfo) -> Callable[[Any], Any]:
    """ScaledTanh: ``alpha * tanh(beta * x)`` (alpha and beta required)."""
    alpha, beta = _float_attr(node, "alpha"), _float_attr(node, "beta")
    return lambda x: np.tanh(x * beta) * alpha


def _parametric_softplus(node: NodeInfo) -> Callable[[Any], Any]:
    """ParametricSoftplus: ``alpha * ln(exp(beta * x) + 1)`` (alpha and beta required),
    taken as ``bx + ln(exp(-bx) + 1)`` for positive ``bx`` like onnxruntime."""
    alpha, beta = _float_attr(node, "alpha"), _float_attr(node, "beta")

    def run(x: Any) -> Any:
        bx = x * beta
        positive = bx > 0
        soft = np.log(np.exp(np.where(positive, -bx, bx)) + _F32(1))
        return np.where(positive, bx + soft, soft) * alpha

    return run


def _thresholded_relu(node: NodeInfo) -> Callable[[Any], Any]:
    """ThresholdedRelu 1: ``x`` where ``x > alpha``, else 0."""
    alpha = _float_attr(node, "alpha", 1.0)
    return lambda x: np.where(x > alpha, x, _F32(0))


_elementwise("Affine", _affine)
_elementwise("Scale", _scale)
_elementwise("ScaledTanh", _scaled_tanh)
_elementwise("ParametricSoftplus", _parametric_softplus)
_elementwise("ThresholdedRelu", _thresholded_relu, until=9)


@kernels.register("ImageScaler", since=1, input_types=_HALF_FLOAT)
def image_scaler(node: NodeInfo) -> Callable[..., tuple]:
    """ImageScaler 1: ``scale * x + bias[c]`` over an NCHW image, one bias per channel (the
    ``bias`` attribute is required by onnxruntime's kernel)."""
    where = node.describe()
    scale = _float_attr(node, "scale", 1.0)
    if node.attrs.get("bias") is None:
        raise ValueError(f"{where}: attribute 'bias' (one value per channel) is required")
    bias = np.asarray(node.attrs["bias"], dtype=_F32)

    def compute(x: Any) -> tuple:
        if x.ndim != 4 or x.shape[1] != bias.size:
            raise ValueError(f"{where}: input must be NCHW with C = len(bias) = {bias.size}, "
                             f"got shape {tuple(x.shape)}")
        y = x.astype(_F32, copy=False) * scale + bias.reshape(1, -1, 1, 1)
        return (node.xp.asarray(y).astype(x.dtype, copy=False),)

    return compute


@kernels.register("Crop", since=1, input_types=_HALF_FLOAT)
def crop(node: NodeInfo) -> Callable[..., tuple]:
    """Crop 1: an NCHW image cropped by ``border`` (left, top, right, bottom), or to
    ``scale`` (height, width) from its top-left border corner when given."""
    where = node.describe()
    border = [int(v) for v in node.attrs.get("border") or ()]
    scale = [int(v) for v in node.attrs.get("scale") or ()]
    if len(border) != 4:
        raise ValueError(f"{where}: attribute border needs four values (left, top, right, "
                         f"bottom), got {border}")
    if scale and len(scale) != 2:
        raise ValueError(f"{where}: attribute scale needs two values (height, width), got "
                         f"{scale}")
    left, top, right, bottom = border

    def compute(x: Any) -> tuple:
        if x.ndim != 4:
            raise ValueError(f"{where}: input must be 4-D [N, C, H, W], got shape "
                             f"{tuple(x.shape)}")
        height, width = x.shape[2:]
        if scale:
            rows, cols = top + scale[0], left + scale[1]
        else:
            rows, cols = height - bottom, width - right
        if rows < top or rows > height or cols < left or cols > width:
            raise ValueError(f"{where}: border {border} and scale {scale} do not fit the "
                             f"input's height {height} and width {width}")
        return (x[:, :, top:rows, left:cols].copy(),)

    return compute


@kernels.register("MeanVarianceNormalization", since=1, until=8, input_types=_HALF_FLOAT)
def mean_variance_normalization_1(node: NodeInfo) -> Callable[..., tuple]:
    """MeanVarianceNormalization 1: ``x - mean`` (and divided by the standard deviation when
    ``normalize_variance``, no epsilon) with the moments over axes 0, 2, 3 (per channel) or
    also over axis 1 (``across_channels``); axes past the input's rank are skipped, as in
    onnxruntime."""
    across = bool(node.attrs.get("across_channels", 0))
    normalize = bool(node.attrs.get("normalize_variance", 1))
    wanted = (0, 1, 2, 3) if across else (0, 2, 3)

    def compute(x: Any) -> tuple:
        axes = tuple(a for a in wanted if a < x.ndim)
        work = x.astype(np.float64)
        y = work - work.mean(axis=axes, keepdims=True)
        if normalize:
            with np.errstate(divide="ignore", invalid="ignore"):
                y /= np.sqrt(np.mean(y * y, axis=axes, keepdims=True))
        return (node.xp.asarray(y).astype(x.dtype),)

    return compute


# DynamicSlice is Slice-10 without steps: starts, ends and optional axes as inputs
kernels.register("DynamicSlice", since=1, host_inputs=(1, 2, 3),
                 input_types={i: ("int32", "int64") for i in (1, 2, 3)})(slice_10)


# --------------------------------------------------------------------------------------------
# schemas
# --------------------------------------------------------------------------------------------

_TYPE_ONLY = typed(lambda t, a: tensor_type(elem_type(t[0])))


def _onnx(op_type: str, attributes: dict[str, Any] | None = None, inputs: Any = 1,
          infer: Any = like_input(0)) -> DeclaredSchema:
    """An experimental op declared in the ONNX domain at version 1."""
    return declare(op_type, domain="", since=1, inputs=inputs, attributes=attributes,
                   infer=infer)


#: The experimental ONNX-domain ops of this module, declared to the core.
SCHEMAS: list[DeclaredSchema] = [
    _onnx("Affine", {"alpha": 1.0, "beta": 0.0}),
    _onnx("Scale", {"scale": 1.0}),
    _onnx("ScaledTanh", {"alpha": None, "beta": None}),
    _onnx("ParametricSoftplus", {"alpha": None, "beta": None}),
    _onnx("ThresholdedRelu", {"alpha": 1.0}),
    _onnx("ImageScaler", {"scale": 1.0, "bias": None}),
    _onnx("Crop", {"border": None, "scale": None}, infer=_TYPE_ONLY),
    _onnx("MeanVarianceNormalization", {"across_channels": 0, "normalize_variance": 1}),
    _onnx("DynamicSlice", inputs=(3, 4), infer=_TYPE_ONLY),
]
