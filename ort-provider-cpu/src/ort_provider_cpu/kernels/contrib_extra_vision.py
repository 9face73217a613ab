"""CPU kernels: onnxruntime's image contrib ops (part of :mod:`.contrib_extra`):
MaxpoolWithMask, CropAndResize, com.microsoft QLinearConv (ONNX QLinearConv plus
``channels_last``) and ConvTransposeWithDynamicPads (ConvTranspose with its pads an input).

QLinearConv and ConvTransposeWithDynamicPads run this provider's ONNX kernels through a copy
of the node's :class:`NodeInfo` as the plain op; MaxpoolWithMask and CropAndResize follow
onnxruntime's CPU kernels, rounding steps included.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
from ort.ep import DeclaredSchema, KernelTable, NodeInfo

from .contrib_schema import (MS, constant_ints, declare, dims, elem_type, like_onnx,
                             tensor_type, typed, typed_with_values)
from .conv_transpose import conv_transpose
from .kernel_args import host_ints
from .quantize import qlinear_conv
from .windows import read_window_attrs, window_geometry

kernels = KernelTable()

_HALF_FLOAT = ("float16", "float")
_LOWEST = np.finfo(np.float32).min

# --------------------------------------------------------------------------------------------
# MaxpoolWithMask
# --------------------------------------------------------------------------------------------


def _mask_per_channel(xp: Any, m: Any, x_shape: tuple[int, ...]) -> Any:
    """The mask each (n, c) plane of X reads, shaped as X. onnxruntime reads the plane of
    flat channel ``k`` from element ``(k * plane) % (mask N * mask C)`` of the mask (so a
    mask of one plane serves every channel)."""
    plane = int(np.prod(x_shape[2:]))
    planes = int(np.prod(x_shape[:2]))
    mask_planes = m.shape[0] * m.shape[1]
    flat = m.reshape(-1)
    if mask_planes == 1:
        return xp.broadcast_to(flat[:plane].reshape((1, 1) + x_shape[2:]), x_shape)
    starts = (xp.arange(planes, dtype=np.int64) * plane) % mask_planes
    return flat[starts[:, None] + xp.arange(plane)].reshape(x_shape)


@kernels.register("MaxpoolWithMask", since=1, domain=MS,
                  input_types={0: ("float",), 1: ("int32",)})
def maxpool_with_mask(node: NodeInfo) -> Callable[..., tuple]:
    """MaxpoolWithMask 1: MaxPool (1-3 spatial dims, no dilations) that scans each window row
    by row and stops a row at its first element whose mask M is 0 (the plane's first element
    never stops a 2-D/3-D scan); windows with nothing scanned give float's lowest value. M
    has X's spatial dims; see :func:`_mask_per_channel` for the planes it serves."""
    xp = node.xp
    where = node.describe()
    kernel = tuple(int(k) for k in node.attrs.get("kernel_shape") or ())
    if not 1 <= len(kernel) <= 3:
        raise ValueError(f"{where}: kernel_shape must have 1 to 3 dims, got {kernel}")
    wa = read_window_attrs(node, kernel, pooling=True)
    nd = len(kernel)

    def compute(x: Any, m: Any) -> tuple:
        if x.ndim != nd + 2 or m.ndim != x.ndim:
            raise ValueError(f"{where}: X must be (N, C) plus {nd} spatial dims and M of the "
                             f"same rank, got {tuple(x.shape)} and {tuple(m.shape)}")
        if m.shape[2:] != x.shape[2:]:
            raise ValueError(f"{where}: M's spatial dims {tuple(m.shape[2:])} must be X's "
                             f"{tuple(x.shape[2:])}")
        geo = window_geometry(node, wa, x.shape[2:])
        out = xp.full(x.shape[:2] + geo.out_shape, _LOWEST, dtype=np.float32)
        if out.size == 0:
            return (out,)
        if m.shape[0] * m.shape[1] == 0:
            raise ValueError(f"{where}: M's N and C must be positive")
        scan = _mask_per_channel(xp, m, x.shape) != 0
        if nd > 1:  # the plane's first element never stops a scan
            scan = scan.copy()
            scan[(slice(None), slice(None)) + (0,) * nd] = True
        spread = [(0, 0), (0, 0)] + [(b, e + 1) for b, e in zip(geo.pads_begin, geo.pads_end)]
        xpad = xp.pad(x, spread, constant_values=_LOWEST)
        scanpad = xp.pad(scan, spread, constant_values=True)  # outside: skipped, no stop
        lead = (slice(None), slice(None))
        for row in np.ndindex(*kernel[:-1]):  # each row of the window, scanned to a stop
            alive = xp.ones(out.shape, dtype=bool)
            for last in range(kernel[-1]):
                tap = row + (last,)
                taps = tuple(slice(t, t + (o - 1) * s + 1, s)
                             for t, o, s in zip(tap, geo.out_shape, wa.strides))
                alive &= scanpad[lead + taps]
                xp.fmax(out, xp.where(alive, xpad[lead + taps], _LOWEST), out=out)
        return (out,)

    return compute


# --------------------------------------------------------------------------------------------
# CropAndResize
# --------------------------------------------------------------------------------------------

_F32 = np.float32


def _sample_points(start: Any, end: Any, size: int, count: int) -> Any:
    """Where each of ``count`` crop rows (or columns) samples an input of ``size``, from the
    boxes' ``start``/``end`` (R,) in float32 as onnxruntime computes them: (R, count)."""
    last = _F32(size - 1)
    if count == 1:
        middle = (0.5 * (start.astype(np.float64) + end.astype(np.float64)).astype(_F32)
                  .astype(np.float64) * (size - 1)).astype(_F32)
        return middle[:, None]
    scale = (end - start) * last / _F32(count - 1)
    points = start[:, None] * last + np.arange(count, dtype=_F32)[None, :] * scale[:, None]
    points[:, 0] = start * last
    points[:, -1] = end * last
    return points


@kernels.register("CropAndResize", since=1, domain=MS,
                  input_types={0: _HALF_FLOAT, 1: _HALF_FLOAT, 2: ("int32",), 3: ("int32",)},
                  host_inputs=(3,))
def crop_and_resize(node: NodeInfo) -> Callable[..., tuple]:
    """CropAndResize 1: crops X (N, C, H, W) to each box of ``rois`` (R, 4: y1, x1, y2, x2,
    normalized) of image ``batch_indices`` and resizes it to ``crop_size`` (h, w) by
    ``bilinear`` (default) or ``nearest`` sampling; points outside the image give
    ``extrapolation_value``. Output (R, C, h, w); float16 computed in float32."""
    xp = node.xp
    where = node.describe()
    mode = str(node.attrs.get("mode", "bilinear"))
    if mode not in ("bilinear", "nearest"):
        raise ValueError(f"{where}: mode must be 'bilinear' or 'nearest', got {mode!r}")
    extrapolation = _F32(node.attrs.get("extrapolation_value", 0.0))

    def compute(x: Any, rois: Any, batch_indices: Any, crop_size: Any) -> tuple:
        size = host_ints(crop_size)
        if np.asarray(crop_size).ndim != 1 or len(size) != 2 or min(size) <= 0:
            raise ValueError(f"{where}: crop_size must be 1-D [height, width] of positive "
                             f"values, got {np.asarray(crop_size).tolist()}")
        if x.ndim != 4:
            raise ValueError(f"{where}: X must be 4-D (N, C, H, W), got {tuple(x.shape)}")
        if rois.ndim != 2 or rois.shape[1] != 4 or batch_indices.shape != rois.shape[:1]:
            raise ValueError(f"{where}: rois must be (num_rois, 4) and batch_indices "
                             f"(num_rois,), got {tuple(rois.shape)} and "
                             f"{tuple(batch_indices.shape)}")
        n, c, height, width = x.shape
        if ((batch_indices < 0) | (batch_indices >= n)).any():
            raise ValueError(f"{where}: batch_indices must lie in [0, {n})")
        crop_h, crop_w = size
        node.check_output_size((rois.shape[0], c, crop_h, crop_w), _F32)  # computed in float32
        boxes = rois.astype(_F32)
        in_y = _sample_points(boxes[:, 0], boxes[:, 2], height, crop_h)  # (R, h)
        in_x = _sample_points(boxes[:, 1], boxes[:, 3], width, crop_w)  # (R, w)
        inside = (((in_y >= 0) & (in_y <= _F32(height - 1)))[:, :, None]
                  & ((in_x >= 0) & (in_x <= _F32(width - 1)))[:, None, :])  # (R, h, w)
        ys = np.where(inside.any(axis=2), in_y, 0).astype(_F32)
        xs = np.where(inside.any(axis=1), in_x, 0).astype(_F32)
        image = x.astype(_F32, copy=False).transpose(0, 2, 3, 1)  # (N, H, W, C)
        b = batch_indices.astype(np.int64)[:, None, None]
        if mode == "nearest":  # roundf of a non-negative point: halves go up
            yi = (np.floor(ys) + (ys - np.floor(ys) >= 0.5)).astype(np.int64)
            xi = (np.floor(xs) + (xs - np.floor(xs) >= 0.5)).astype(np.int64)
            values = image[b, yi[:, :, None], xi[:, None, :]]
        else:
            top, left = np.floor(ys), np.floor(xs)
            y_lerp = (ys - top)[:, :, None, None]
            x_lerp = (xs - left)[:, None, :, None]
            t, btm = top.astype(np.int64)[:, :, None], np.ceil(ys).astype(np.int64)[:, :, None]
            lft, rgt = left.astype(np.int64)[:, None, :], np.ceil(xs).astype(np.int64)[:, None, :]
            top_row = image[b, t, lft] + (image[b, t, rgt] - image[b, t, lft]) * x_lerp
            bottom = image[b, btm, lft] + (image[b, btm, rgt] - image[b, btm, lft]) * x_lerp
            values = top_row + (bottom - top_row) * y_lerp
        values = np.where(inside[..., None], values, extrapolation)
        return (xp.asarray(values.transpose(0, 3, 1, 2)).astype(x.dtype, copy=False),)

    return compute


# --------------------------------------------------------------------------------------------
# QLinearConv (channels_last), ConvTransposeWithDynamicPads
# --------------------------------------------------------------------------------------------


def _as_onnx_node(node: NodeInfo, op_type: str, since_version: int, attrs: dict[str, Any],
                  num_inputs: int | None = None) -> NodeInfo:
    """A copy of ``node`` describing the ONNX op ``op_type`` with ``attrs`` and its first
    ``num_inputs`` inputs (all by default)."""
    keep = slice(None) if num_inputs is None else slice(0, num_inputs)
    return dataclasses.replace(
        node, op_type=op_type, domain="", since_version=since_version, opset=since_version,
        attrs=attrs, input_names=node.input_names[keep], input_dtypes=node.input_dtypes[keep],
        input_shapes=node.input_shapes[keep], const_inputs=node.const_inputs[keep])


_QUANT = ("int8", "uint8")


@kernels.register("QLinearConv", since=1, domain=MS,
                  input_types={0: _QUANT, 2: _QUANT, 3: _QUANT, 5: _QUANT, 7: _QUANT})
def qlinear_conv_ms(node: NodeInfo) -> Callable[..., tuple]:
    """QLinearConv 1 (com.microsoft): ONNX QLinearConv (uint8 X with uint8 or int8 W, or int8
    X and W; per-tensor or per-output-channel W scale/zero point; int32 bias) where
    ``channels_last`` takes X and gives Y channels last (N, ..., C)."""
    where = node.describe()
    channels_last = bool(node.attrs.get("channels_last", 0))
    x_type, w_type = node.input_dtypes[0], node.input_dtypes[3]
    if x_type == np.int8 and w_type == np.uint8:
        raise ValueError(f"{where}: int8 X takes int8 W only (onnxruntime has no kernel for "
                         "int8 X with uint8 W)")
    attrs = {k: v for k, v in node.attrs.items() if k != "channels_last"}
    plain = qlinear_conv(_as_onnx_node(node, "QLinearConv", 10, attrs))

    def compute(x: Any, *rest: Any) -> tuple:
        if not channels_last:
            return plain(x, *rest)
        y = plain(np.moveaxis(x, -1, 1), *rest)[0]
        return (np.ascontiguousarray(np.moveaxis(y, 1, -1)),)

    return compute


@kernels.register("ConvTransposeWithDynamicPads", since=1, domain=MS, host_inputs=(2,),
                  input_types={0: _HALF_FLOAT, 1: _HALF_FLOAT, 2: ("int64",), 3: _HALF_FLOAT})
def conv_transpose_dynamic_pads(node: NodeInfo) -> Callable[..., tuple]:
    """ConvTransposeWithDynamicPads 1: ConvTranspose whose ``pads`` (1-D int64, begins then
    ends, non-negative) come as an input at run time (ignored under a SAME auto_pad); float
    (float16 computed in float32)."""
    where = node.describe()
    prepared: dict[tuple[int, ...], Callable[..., tuple]] = {}

    def compute(x: Any, w: Any, pads: Any = None, b: Any = None) -> tuple:
        if pads is None:
            raise ValueError(f"{where}: the Pads input is required")
        if np.asarray(pads).ndim != 1:
            raise ValueError(f"{where}: Pads must be 1-D, got shape {np.asarray(pads).shape}")
        values = host_ints(pads)
        if len(values) != 2 * (x.ndim - 2):
            raise ValueError(f"{where}: Pads has {len(values)} values; X's {x.ndim - 2} "
                             f"spatial dims need {2 * (x.ndim - 2)}")
        if min(values, default=0) < 0:
            raise ValueError(f"{where}: Pads must not be negative, got {list(values)}")
        if values not in prepared:
            attrs = dict(node.attrs, pads=list(values))
            prepared[values] = conv_transpose(_as_onnx_node(node, "ConvTranspose", 11, attrs))
        return prepared[values](x, w, b)

    return compute


# --------------------------------------------------------------------------------------------
# schemas
# --------------------------------------------------------------------------------------------


def _channels_first(tp: Any) -> Any:
    """``tp`` with its last dim moved to position 1 (NHWC -> NCHW)."""
    shape = dims(tp)
    if shape is None or len(shape) < 2:
        return tp
    return tensor_type(elem_type(tp), [shape[0], shape[-1]] + shape[1:-1])


def _qlinear_conv_ms_infer(types, attrs):
    """QLinearConv (com.microsoft) inference: ONNX QLinearConv's, with X and Y channels last
    when ``channels_last``; the type of y_zero_point where the shape is unknown."""
    channels_last = bool(attrs.get("channels_last", 0))
    plain = {k: v for k, v in attrs.items() if k != "channels_last"}
    chosen = list(types)
    if channels_last:
        chosen[0] = _channels_first(chosen[0])
    out = like_onnx("QLinearConv", 10)(chosen, plain)[0]
    if out is None:
        return [tensor_type(elem_type(types[7]) if len(types) > 7 else None)]
    shape = dims(out)
    if channels_last and shape is not None and len(shape) >= 2:
        out = tensor_type(elem_type(out), [shape[0]] + shape[2:] + [shape[1]])
    return [out]


def _type_only(index: int):
    """Inference of an output typed like input ``index``, shape unknown."""
    return typed(lambda t, a: tensor_type(elem_type(t[index])))


def _conv_transpose_dynamic_pads_output(types, attrs, values):
    """ConvTransposeWithDynamicPads' output: ONNX ConvTranspose's with the constant Pads input
    as its ``pads`` attribute (type only when the pads are computed at run time)."""
    pads = constant_ints(values, 2)
    if pads is None and len(values) > 2 and values[2] is None and len(types) > 2 \
            and types[2] is not None:
        return tensor_type(elem_type(types[0]))
    inputs = [types[0], types[1]] + ([types[3]] if len(types) > 3 and types[3] else [])
    merged = {k: v for k, v in attrs.items() if v is not None}
    if pads is not None:
        merged["pads"] = pads
    inferred = like_onnx("ConvTranspose", 11)(inputs, merged)[0]
    return inferred if inferred is not None else tensor_type(elem_type(types[0]))


_POOL_ATTRS = {"auto_pad": "NOTSET", "kernel_shape": None, "pads": None, "storage_order": 0,
               "strides": None}

#: The contrib ops of this module, declared to the core.
SCHEMAS: list[DeclaredSchema] = [
    declare("MaxpoolWithMask", inputs=2, attributes=_POOL_ATTRS,
            infer=like_onnx("MaxPool", 12, inputs=1)),
    declare("CropAndResize", inputs=4,
            attributes={"mode": "bilinear", "extrapolation_value": 0.0}, infer=_type_only(0)),
    declare("QLinearConv", inputs=(8, 9),
            attributes={"auto_pad": "NOTSET", "kernel_shape": None, "dilations": None,
                        "strides": None, "pads": None, "group": 1, "channels_last": 0},
            infer=_qlinear_conv_ms_infer),
    declare("ConvTransposeWithDynamicPads", inputs=(2, 4),
            attributes={"auto_pad": "NOTSET", "kernel_shape": None, "dilations": None,
                        "strides": None, "output_padding": None, "group": 1},
            infer=typed_with_values(_conv_transpose_dynamic_pads_output), uses_values=True),
]
