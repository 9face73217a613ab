"""CPU kernels: onnxruntime's ``com.microsoft.nchwc`` ops (blocked-channel layout), which
models saved offline at onnxruntime's highest optimization level (ORT_ENABLE_ALL, the default
level of a session with ``optimized_model_filepath``) carry.

Semantics follow onnxruntime's NCHWc transformer and its CPU kernels' observed behaviour;
every op is declared to the core in ``SCHEMAS`` (:mod:`.contrib_schema`).

The blocked layout ("NCHWc") of a tensor of shape ``(N, Cp, H, W)`` stores it as
``(N, Cp/B, H, W, B)``: channel ``c`` lives in block ``c // B``, lane ``c % B``. ``Cp`` is the
channel count rounded up to the block size ``B`` (padded lanes hold whatever the producing op
computes there: zeros for ReorderInput). Convolution weights are stored reordered:

- OIHWBiBo (input blocked, per group): ``(O/B, I/B, kh, kw, Bi, Bo)`` for a weight of shape
  ``(O, I, kh, kw)``, O and I padded with zeros to multiples of B;
- OIHWBo (an NCHW input with fewer than B channels, group 1; and depthwise weights
  ``(Cp, 1, kh, kw)`` with group Cp): ``(O/B, I, kh, kw, Bo)``.

B is the block size of the machine that saved the model (onnxruntime's MLAS: 16 with
AVX-512, 8 with AVX2): a saved model does not record it, so :func:`block_size` infers it from
the graph's shapes (padded channel counts, ReorderOutput's ``channels``) and falls back to this
machine's MLAS block size only where every candidate fits the graph (as onnxruntime itself
runs such a model with its own block size).

The kernels convert blocked tensors to NCHW (padded channels kept), run this provider's
FusedConv and pooling kernels (Upsample and the global pools are a few numpy lines), and convert
the result back; constant weights are decoded to OIHW once in the factory. Each op thus costs
two extra transposed copies of its activations over the plain float path: on a MobileNet-style
network that is roughly twice the time ort takes on the same model without NCHWc ops.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
from ort.ep import DeclaredSchema, KernelTable, NodeInfo

from .contrib_nchwc_layout import (NCHWC, block_size, decode_weight,
                                   from_blocked, to_blocked)
from .contrib_schema import (declare, dims, elem_type, like_onnx, tensor_type,
                             typed)
from .fused import fused_conv
from .pooling import average_pool, max_pool

kernels = KernelTable()

MS = "com.microsoft"
_FLOAT = ("float",)


def _plain(node: NodeInfo, op_type: str, domain: str, since: int, num_inputs: int,
           const_inputs: list[Any] | None = None) -> NodeInfo:
    """A copy of ``node`` as the op ``op_type`` it runs through (unset optional attributes
    left out, the first ``num_inputs`` inputs)."""
    attrs = {k: v for k, v in node.attrs.items() if v is not None}
    consts = list(const_inputs if const_inputs is not None else node.const_inputs)
    return dataclasses.replace(
        node, op_type=op_type, domain=domain, since_version=since, opset=since, attrs=attrs,
        input_names=node.input_names[:num_inputs], input_dtypes=node.input_dtypes[:num_inputs],
        input_shapes=node.input_shapes[:num_inputs], const_inputs=consts[:num_inputs])


def _check_4d(node: NodeInfo, x: Any, label: str = "X") -> None:
    """Refuse a tensor that is not 4-D (the NCHWc kernels are 2-D spatial only)."""
    if x.ndim != 4:
        raise ValueError(f"{node.describe()}: {label} must be 4-D (N, C, H, W), "
                         f"got shape {tuple(x.shape)}")


# --------------------------------------------------------------------------------------------
# ReorderInput, ReorderOutput
# --------------------------------------------------------------------------------------------


@kernels.register("ReorderInput", since=1, domain=NCHWC, input_types={0: _FLOAT})
def reorder_input(node: NodeInfo) -> Callable[..., tuple]:
    """ReorderInput 1: an NCHW (``channels_last=0``) or NHWC (``channels_last=1``) 4-D float
    tensor to the blocked layout, channels zero-padded to a multiple of the block size (the
    channel count must be a multiple of 4, as onnxruntime requires)."""
    channels_last = bool(node.attrs.get("channels_last", 0))
    block = block_size(node)

    def compute(x: Any) -> tuple:
        _check_4d(node, x)
        if channels_last:
            x = x.transpose(0, 3, 1, 2)
        if x.shape[1] % 4:
            raise ValueError(f"{node.describe()}: the channel count must be a multiple of 4, "
                             f"got {x.shape[1]}")
        return (to_blocked(node.xp, x, block),)

    return compute


@kernels.register("ReorderOutput", since=1, domain=NCHWC, input_types={0: _FLOAT})
def reorder_output(node: NodeInfo) -> Callable[..., tuple]:
    """ReorderOutput 1: a blocked 4-D tensor back to NCHW (or NHWC with ``channels_last=1``),
    keeping its first ``channels`` channels."""
    channels = int(node.attrs.get("channels", 0))
    channels_last = bool(node.attrs.get("channels_last", 0))
    block = block_size(node)
    if channels <= 0:
        raise ValueError(f"{node.describe()}: channels must be positive, got {channels}")

    def compute(x: Any) -> tuple:
        _check_4d(node, x)
        padded = x.shape[1]
        if padded % block or not 0 <= padded - channels < block:
            raise ValueError(
                f"{node.describe()}: X has {padded} channels; with block size {block} it must "
                f"have {-(-channels // block) * block} for channels={channels}")
        y = from_blocked(node.xp, x, block)[:, :channels]
        if channels_last:
            y = y.transpose(0, 2, 3, 1)
        return (node.xp.ascontiguousarray(y),)

    return compute


# --------------------------------------------------------------------------------------------
# Conv
# --------------------------------------------------------------------------------------------


@kernels.register("Conv", since=1, domain=NCHWC, input_types={0: _FLOAT})
def nchwc_conv(node: NodeInfo) -> Callable[..., tuple]:
    """Conv 1 (NCHWc): a 2-D convolution of a blocked X (or of an NCHW X with fewer channels
    than the block size) with reordered weights W, bias B, then ``Y += Sum`` (blocked, Y's
    shape) and the fused activation (``activation``/``activation_params`` as FusedConv);
    Y is blocked. Runs this provider's FusedConv on the NCHW form."""
    block = block_size(node)
    group = int(node.attrs.get("group", 1))
    const_w = node.const_inputs[1] if len(node.const_inputs) > 1 else None
    decoded = None if const_w is None else decode_weight(node, const_w, group, block)
    plain = _plain(node, "FusedConv", MS, 1, 4, [None, decoded, None, None])
    if "activation" not in plain.attrs:
        plain.attrs["activation"] = ""
    convolve = fused_conv(plain)
    xp = node.xp

    def compute(x: Any, w: Any, b: Any = None, total: Any = None) -> tuple:
        _check_4d(node, x)
        _check_4d(node, w, "W")
        blocked_input = not (group == 1 and w.shape[1] < block)
        if blocked_input and x.shape[1] % block:
            raise ValueError(f"{node.describe()}: a blocked X must have a multiple of "
                             f"{block} channels, got {x.shape[1]}")
        if not blocked_input and x.shape[1] != w.shape[1]:
            raise ValueError(f"{node.describe()}: X has {x.shape[1]} channels, W "
                             f"{tuple(w.shape)} reads {w.shape[1]}")
        weights = decoded if decoded is not None else decode_weight(node, w, group, block)
        xn = from_blocked(xp, x, block) if blocked_input else x
        z = None
        if total is not None:
            _check_4d(node, total, "Sum")
            z = from_blocked(xp, total, block)
        try:
            y = convolve(xn, weights, b, z)[0]
        except ValueError as error:
            raise ValueError(f"{node.describe()}: {error}") from None
        return (to_blocked(xp, y, block),)

    return compute


# --------------------------------------------------------------------------------------------
# pooling, upsampling
# --------------------------------------------------------------------------------------------


def _blocked_wrapper(node: NodeInfo, run: Callable[[Any], Any]) -> Callable[..., tuple]:
    """compute(x) running ``run`` on the NCHW form of a blocked ``x``, result blocked."""
    block = block_size(node)
    xp = node.xp

    def compute(x: Any) -> tuple:
        _check_4d(node, x)
        if x.shape[1] % block:
            raise ValueError(f"{node.describe()}: X must have a multiple of {block} channels "
                             f"(blocked layout), got {x.shape[1]}")
        return (to_blocked(xp, run(from_blocked(xp, x, block)), block),)

    return compute


@kernels.register("MaxPool", since=1, domain=NCHWC, input_types={0: _FLOAT})
def nchwc_max_pool(node: NodeInfo) -> Callable[..., tuple]:
    """MaxPool 1 (NCHWc): ONNX MaxPool (kernel_shape, strides, pads, dilations, ceil_mode,
    auto_pad) of a blocked X; storage_order only matters for indices, which it has none of."""
    pool = max_pool(_plain(node, "MaxPool", "", 12, 1))
    return _blocked_wrapper(node, lambda x: pool(x)[0])


@kernels.register("AveragePool", since=1, domain=NCHWC, input_types={0: _FLOAT})
def nchwc_average_pool(node: NodeInfo) -> Callable[..., tuple]:
    """AveragePool 1 (NCHWc): ONNX AveragePool (count_include_pad, ceil_mode, dilations) of
    a blocked X."""
    pool = average_pool(_plain(node, "AveragePool", "", 19, 1))
    return _blocked_wrapper(node, lambda x: pool(x)[0])


@kernels.register("GlobalAveragePool", since=1, domain=NCHWC, input_types={0: _FLOAT})
def nchwc_global_average_pool(node: NodeInfo) -> Callable[..., tuple]:
    """GlobalAveragePool 1 (NCHWc): the mean over H and W of a blocked X."""
    return _blocked_wrapper(node, lambda x: x.mean(axis=(2, 3), keepdims=True,
                                                   dtype=np.float32))


@kernels.register("GlobalMaxPool", since=1, domain=NCHWC, input_types={0: _FLOAT})
def nchwc_global_max_pool(node: NodeInfo) -> Callable[..., tuple]:
    """GlobalMaxPool 1 (NCHWc): the max over H and W of a blocked X."""
    return _blocked_wrapper(node, lambda x: x.max(axis=(2, 3), keepdims=True))


def _interpolation(mode: str, in_len: int, scale: int) -> np.ndarray:
    """Source coordinates of the ``in_len * scale`` outputs (onnxruntime's NCHWc Upsample:
    asymmetric, align_corners or half_pixel, the latter clamped at 0)."""
    out = np.arange(in_len * scale, dtype=np.float32)
    if scale == 1:
        return out
    if mode == "align_corners":
        return out * np.float32(in_len - 1) / np.float32(max(in_len * scale - 1, 1))
    if mode == "half_pixel":
        return np.maximum(0, (out + np.float32(0.5)) / np.float32(scale) - np.float32(0.5))
    return out / np.float32(scale)


def _linear_axis(xp: Any, x: Any, coords: np.ndarray, axis: int) -> Any:
    """Linear interpolation of ``x`` along ``axis`` at ``coords`` (index floor(c) and the
    next one, clamped to the last)."""
    size = x.shape[axis]
    low = coords.astype(np.int64)
    high = np.minimum(low + 1, size - 1)
    frac = (coords - low).astype(x.dtype)
    shape = [1] * x.ndim
    shape[axis] = len(coords)
    frac = xp.asarray(frac.reshape(shape))
    a = xp.take(x, xp.asarray(low), axis=axis)
    b = xp.take(x, xp.asarray(high), axis=axis)
    return a * (1 - frac) + b * frac


@kernels.register("Upsample", since=1, domain=NCHWC, input_types={0: _FLOAT})
def nchwc_upsample(node: NodeInfo) -> Callable[..., tuple]:
    """Upsample 1 (NCHWc): integer ``scales`` (N and C scales 1); ``mode`` nearest repeats
    each pixel, linear interpolates bilinearly at coordinates given by
    ``coordinate_transformation_mode`` (asymmetric, align_corners, half_pixel)."""
    xp = node.xp
    scales = [int(s) for s in (node.attrs.get("scales") or [])]
    mode = str(node.attrs.get("mode", "nearest"))
    transform = str(node.attrs.get("coordinate_transformation_mode", "asymmetric"))
    if len(scales) != 4 or scales[0] != 1 or scales[1] != 1 or min(scales) < 1:
        raise ValueError(f"{node.describe()}: scales must be 4 positive ints [1, 1, sh, sw], "
                         f"got {scales}")
    if mode not in ("nearest", "linear"):
        raise ValueError(f"{node.describe()}: mode must be 'nearest' or 'linear', got {mode!r}")
    sh, sw = scales[2], scales[3]

    def run(x: Any) -> Any:
        node.check_output_size(x.shape[:2] + (x.shape[2] * sh, x.shape[3] * sw) + x.shape[4:],
                               x.dtype)
        if mode == "nearest":
            return xp.repeat(xp.repeat(x, sh, axis=2), sw, axis=3)
        y = _linear_axis(xp, x, _interpolation(transform, x.shape[2], sh), 2)
        return _linear_axis(xp, y, _interpolation(transform, x.shape[3], sw), 3)

    return _blocked_wrapper(node, run)


# --------------------------------------------------------------------------------------------
# schemas
# --------------------------------------------------------------------------------------------


def _reorder_input_type(types, attrs):
    """ReorderInput's output: NCHW dims with the channels padded to the block size; the
    padded count depends on the block size unless the channels are a multiple of 16."""
    shape = dims(types[0])
    if shape is None:
        return tensor_type(elem_type(types[0]))
    if len(shape) < 2:
        raise ValueError("rank too small")
    last = bool(attrs.get("channels_last", 0))
    channels = shape[-1] if last else shape[1]
    spatial = shape[1:-1] if last else shape[2:]
    padded = channels if isinstance(channels, int) and channels % 16 == 0 else None
    return tensor_type(elem_type(types[0]), [shape[0], padded] + spatial)


def _reorder_output_type(types, attrs):
    """ReorderOutput's output: ``channels`` channels, first or last."""
    shape = dims(types[0])
    channels = int(attrs.get("channels", 0))
    if shape is None or channels <= 0 or len(shape) < 2:
        return tensor_type(elem_type(types[0]))
    if attrs.get("channels_last", 0):
        return tensor_type(elem_type(types[0]), [shape[0]] + shape[2:] + [channels])
    return tensor_type(elem_type(types[0]), [shape[0], channels] + shape[2:])


def _upsample_type(types, attrs):
    """Upsample's output: each dim times its integer scale."""
    shape = dims(types[0])
    scales = attrs.get("scales")
    if shape is None or not scales or len(scales) != len(shape):
        return tensor_type(elem_type(types[0]))
    return tensor_type(elem_type(types[0]), [d * int(s) if isinstance(d, int) else None
                                             for d, s in zip(shape, scales)])


_POOL_ATTRS = {"auto_pad": "NOTSET", "kernel_shape": None, "dilations": None, "strides": None,
               "pads": None, "ceil_mode": 0}


def _nchwc(op: str, **kwargs: Any) -> DeclaredSchema:
    """A declaration in the com.microsoft.nchwc domain."""
    return declare(op, domain=NCHWC, **kwargs)


SCHEMAS: list[DeclaredSchema] = [
    _nchwc("ReorderInput", attributes={"channels_last": 0}, infer=typed(_reorder_input_type)),
    _nchwc("ReorderOutput", attributes={"channels": 0, "channels_last": 0},
           infer=typed(_reorder_output_type)),
    _nchwc("Conv", inputs=(2, 4),
           attributes={"auto_pad": "NOTSET", "kernel_shape": None, "dilations": None,
                       "strides": None, "pads": None, "group": 1, "activation": None,
                       "activation_params": None},
           infer=like_onnx("Conv", 11, inputs=2, drop=("activation", "activation_params"))),
    _nchwc("MaxPool", attributes={**_POOL_ATTRS, "storage_order": 0},
           infer=like_onnx("MaxPool", 12, drop=("storage_order",))),
    _nchwc("AveragePool", attributes={**_POOL_ATTRS, "count_include_pad": 0},
           infer=like_onnx("AveragePool", 19)),
    _nchwc("GlobalMaxPool", infer=like_onnx("GlobalMaxPool", 1)),
    _nchwc("GlobalAveragePool", infer=like_onnx("GlobalAveragePool", 1)),
    _nchwc("Upsample", attributes={"scales": None, "mode": "nearest",
                                   "coordinate_transformation_mode": "asymmetric"},
           infer=typed(_upsample_type)),
]
