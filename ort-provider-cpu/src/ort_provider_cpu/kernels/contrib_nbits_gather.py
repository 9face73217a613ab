"""CPU kernels: onnxruntime's GatherBlockQuantized (a Gather of block-quantized data), and the
bit unpacking the block-quantized ops of :mod:`.contrib_nbits` share.

Semantics follow onnxruntime's contrib operator spec (docs/ContribOperators.md) and its CPU
kernel's observed behaviour; :mod:`.contrib_nbits` adds this module's kernels and schemas to its
own tables.
"""

from __future__ import annotations

from typing import Any

import ml_dtypes
import numpy as np

from ort.ep import DeclaredSchema, KernelTable, NodeInfo

from .contrib_schema import declare, dims, elem_type, tensor_type, typed

kernels = KernelTable()

#: The contrib ops of this module, declared to the core.
SCHEMAS: list[DeclaredSchema] = []

MS = "com.microsoft"


# --------------------------------------------------------------------------------------------
# bit unpacking shared by the ops of this family
# --------------------------------------------------------------------------------------------


def unpack_bits(xp: Any, packed: Any, bits: int, count: int | None = None) -> Any:
    """The ``bits``-wide codes packed low-first in the uint8 last axis of ``packed``: shape
    ``packed.shape[:-1] + (packed.shape[-1] * 8 // bits,)`` (uint8), cut to ``count`` codes
    along that axis when given."""
    packed = xp.asarray(packed, dtype=np.uint8)
    if bits == 8:
        codes = packed
    else:
        shifts = xp.arange(0, 8, bits, dtype=np.uint8)
        codes = (packed[..., None] >> shifts) & np.uint8((1 << bits) - 1)
        codes = codes.reshape(packed.shape[:-1] + (packed.shape[-1] * (8 // bits),))
    return codes if count is None else codes[..., :count]


# --------------------------------------------------------------------------------------------
# GatherBlockQuantized
# --------------------------------------------------------------------------------------------

#: 4-bit integer data types (ml_dtypes keeps one element per byte): default zero point 0.
_INT4 = frozenset(np.dtype(t) for t in (ml_dtypes.int4, ml_dtypes.uint4))
#: Float data types dequantized as ``float(data) * scale``: no zero point, block_size may be 0.
_FLOAT_CODES = frozenset(np.dtype(getattr(ml_dtypes, t)) for t in (
    "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz", "float4_e2m1fn")
    if hasattr(ml_dtypes, t))


def _axis(node: NodeInfo, name: str, value: int, rank: int) -> int:
    """``value`` as an axis of a rank-``rank`` tensor (negative counts from the back)."""
    if not -rank <= value < rank:
        raise ValueError(f"{node.describe()}: {name}={value} is out of range for data of rank "
                         f"{rank} (accepted: [{-rank}, {rank - 1}])")
    return value + rank if value < 0 else value


@kernels.register("GatherBlockQuantized", since=1, domain=MS)
def gather_block_quantized(node: NodeInfo):
    """GatherBlockQuantized 1: Gather along ``gather_axis`` of data quantized in blocks of
    ``block_size`` along ``quantize_axis``, dequantized as ``(data - zero_point) * scale``
    (float32 math, rounded once to the scales' type). Data is int4/uint4 (zero point default
    0), uint8 holding ``bits`` = 2, 4 or 8-bit codes packed low-first along the last axis (zero
    points packed the same way, default ``2**(bits-1)``; gather_axis 0, quantize_axis last), or
    float8/float4 (``data * scale``, no zero points, block_size 0 = one block per row, scales
    may broadcast with dims of 1). Indices in ``[-s, s-1]``; others give zeros. Only the
    gathered slices are dequantized."""
    xp = node.xp
    attrs = node.attrs
    bits = int(attrs["bits"])
    block = int(attrs["block_size"])
    gather_attr, quant_attr = int(attrs["gather_axis"]), int(attrs["quantize_axis"])

    def compute(data, indices, scales, zero_points=None):
        dtype = np.dtype(data.dtype)
        rank = data.ndim
        gather = _axis(node, "gather_axis", gather_attr, rank)
        quant = _axis(node, "quantize_axis", quant_attr, rank)
        floats = dtype in _FLOAT_CODES
        if floats:
            if zero_points is not None:
                raise ValueError(f"{node.describe()}: zero_points must not be given for "
                                 f"{dtype} data (float quantization is symmetric)")
            default_zero = 0
        elif dtype in _INT4:
            if bits != 4:
                raise ValueError(f"{node.describe()}: {dtype} data needs bits=4, got {bits}")
            default_zero = 0
        elif dtype == np.uint8:
            if bits not in (2, 4, 8):
                raise ValueError(f"{node.describe()}: uint8 data needs bits 2, 4 or 8, "
                                 f"got {bits}")
            if gather != 0 or quant != rank - 1:
                raise ValueError(f"{node.describe()}: uint8 data needs gather_axis 0 and "
                                 f"quantize_axis the last axis, got {gather}, {quant}")
            default_zero = 1 << (bits - 1)
        else:
            raise ValueError(f"{node.describe()}: data of type {dtype} is not supported "
                             "(int4, uint4, uint8, float8 or float4)")
        shape = list(data.shape)  # logical: uint8 holds 8 // bits codes per byte
        if dtype == np.uint8:
            shape[-1] *= 8 // bits
        if block == 0 and floats:
            size = max(shape[quant], 1)
        elif block < 16 or block & (block - 1):
            raise ValueError(f"{node.describe()}: block_size={block} must be a power of 2, "
                             ">= 16" + (" (or 0)" if floats else ""))
        else:
            size = block
        _check_scales(node, tuple(shape), scales.shape, quant, size, floats)
        zero = default_zero
        if zero_points is not None:
            if np.dtype(zero_points.dtype) != dtype:
                raise ValueError(f"{node.describe()}: zero_points ({zero_points.dtype}) must "
                                 f"have data's type ({dtype})")
            zero = (unpack_bits(xp, zero_points, bits, scales.shape[quant])
                    if dtype == np.uint8 else zero_points.astype(np.int8))
            if zero.shape != scales.shape:
                raise ValueError(f"{node.describe()}: zero_points of shape "
                                 f"{tuple(zero_points.shape)} do not match scales "
                                 f"{tuple(scales.shape)}")
        length = data.shape[gather]
        index = xp.asarray(indices).astype(np.int64)
        valid = (index >= -length) & (index < length)
        index = xp.where(index < 0, index + length, index)
        index = xp.where(valid, index, 0)
        out_quant = quant if quant < gather else quant + index.ndim - 1
        # gather the (packed) codes first: only the picked slices are unpacked and dequantized
        picked = xp.take(data, index, axis=gather)
        if dtype == np.uint8:
            picked = unpack_bits(xp, picked, bits)
        picked = picked.astype(np.float32)

        def params(values):
            """The gathered, per-element scales (zero points): broadcastable to ``picked``."""
            values = xp.asarray(values)
            if quant == gather:
                return xp.take(values, index // size, axis=gather)
            rows = index if values.shape[gather] == length else xp.zeros_like(index)
            values = xp.take(values, rows, axis=gather)
            return xp.take(values, xp.arange(shape[quant]) // size, axis=out_quant)

        if zero_points is not None:
            picked -= params(zero).astype(np.float32)
        elif default_zero:
            picked -= np.float32(default_zero)
        picked *= params(scales).astype(np.float32)
        mask = valid.reshape((1,) * gather + valid.shape + (1,) * (rank - gather - 1))
        picked = xp.where(mask, picked, np.float32(0))
        return (picked.astype(scales.dtype),)

    return compute


def _check_scales(node: NodeInfo, shape: tuple, scales_shape: tuple, quant: int, size: int,
                  floats: bool) -> None:
    """Raise unless ``scales_shape`` fits data of (logical) ``shape`` blocked by ``size``
    along ``quant`` (float data: other dims of 1 broadcast)."""
    ok = len(scales_shape) == len(shape)
    for axis, (dim, got) in enumerate(zip(shape, scales_shape)):
        want = (dim + size - 1) // size if axis == quant else dim
        ok = ok and (got == want or (floats and axis != quant and got == 1))
    if not ok:
        raise ValueError(f"{node.describe()}: scales of shape {tuple(scales_shape)} do not fit "
                         f"data of shape {tuple(shape)} in blocks of {size} along axis {quant}")


def _gather_out(types, attrs) -> Any:
    """GatherBlockQuantized output: scales' type; data's shape with the gather axis replaced by
    indices' shape (packed uint8 data: the last dim times the codes per byte)."""
    data, indices = dims(types[0]), dims(types[1])
    element = elem_type(types[2]) if len(types) > 2 else None
    if data is None or indices is None:
        return tensor_type(element)
    rank = len(data)
    gather = int(attrs["gather_axis"])
    gather = gather + rank if gather < 0 else gather
    shape = data[:gather] + indices + data[gather + 1:]
    bits = int(attrs["bits"])
    if elem_type(types[0]) == 2 and bits < 8 and shape and isinstance(shape[-1], int):
        shape[-1] *= 8 // bits  # UINT8 codes packed along the last axis (a symbolic last dim
        # keeps its name, as in onnxruntime's inference)
    return tensor_type(element, shape)


SCHEMAS.append(declare(
    "GatherBlockQuantized", inputs=(3, 4),
    attributes={"gather_axis": 0, "quantize_axis": 1, "block_size": 128, "bits": 4},
    infer=typed(_gather_out)))
