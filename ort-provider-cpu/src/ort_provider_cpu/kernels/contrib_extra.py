"""CPU kernels: the rest of onnxruntime's CPU contrib ops that its tools and older exporters
emit (TransposeMatMul, MatMulInteger16, ExpandDims, com.microsoft GatherND/Pad/Unique,
MurmurHash3, MaxpoolWithMask, CropAndResize, QLinearConv, ...) and the experimental ONNX ops
onnxruntime still runs (Affine, Crop, ImageScaler, ParametricSoftplus, Scale, ScaledTanh, ...).

Semantics follow onnxruntime's contrib operator spec (docs/ContribOperators.md) and its CPU
kernels' observed behaviour; every op is declared to the core in ``SCHEMAS``
(:mod:`.contrib_schema`). This module holds the small tensor ops; the image ops live in
:mod:`.contrib_extra_vision`, the experimental ONNX-domain ops in :mod:`.contrib_extra_legacy`
and the rarer ones in :mod:`.contrib_extra_more`, whose tables this one extends.

Element types follow the kernels onnxruntime registers: a node of another type finds no
kernel here either. float16 nodes of ops onnxruntime registers for float only run there
through its float fallback (inputs cast to float, results cast back), so they are accepted
here and computed in float32.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from onnx import TensorProto, TypeProto
from ort.ep import DeclaredSchema, KernelTable, NodeInfo

from . import contrib_extra_legacy, contrib_extra_more, contrib_extra_vision
from .contrib_schema import (MS, constant_ints, declare, dims, elem_type, like_onnx,
                             tensor_type, typed, typed_with_values)
from .indexing import gather_nd
from .kernel_args import host_scalar, normalize_axis
from .layout import pad_11

kernels = KernelTable()

_HALF_FLOAT = ("float16", "float")

# --------------------------------------------------------------------------------------------
# TransposeMatMul, MatMulInteger16
# --------------------------------------------------------------------------------------------


def _swap_last(xp: Any, a: Any, flag: bool) -> Any:
    """``a`` with its last two dims swapped when ``flag`` (1-D operands are left as they are,
    as onnxruntime does)."""
    return xp.swapaxes(a, -1, -2) if flag and a.ndim >= 2 else a


def _check_matmul(where: str, a: Any, b: Any) -> None:
    """A ValueError unless ``a @ b`` is defined (numpy matmul rules)."""
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"{where}: operands must have rank >= 1, got shapes {tuple(a.shape)} "
                         f"and {tuple(b.shape)}")
    k_a = a.shape[-1]
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k_a != k_b:
        raise ValueError(f"{where}: incompatible dimensions for matrix multiplication: "
                         f"{tuple(a.shape)} @ {tuple(b.shape)} (after the transposes)")
    try:
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(f"{where}: batch dims of {tuple(a.shape)} and {tuple(b.shape)} do "
                         "not broadcast") from None


@kernels.register("TransposeMatMul", since=1, domain=MS,
                  input_types={0: _HALF_FLOAT, 1: _HALF_FLOAT})
def transpose_matmul(node: NodeInfo) -> Callable[..., tuple]:
    """TransposeMatMul 1 (FusedMatMul's older name): ``alpha * A' @ B'`` where ``transA`` /
    ``transB`` swap the last two dims of A / B; float (float16 computed in float32 and
    rounded once)."""
    xp = node.xp
    where = node.describe()
    alpha = float(node.attrs.get("alpha", 1.0))
    trans_a = bool(node.attrs.get("transA", 0))
    trans_b = bool(node.attrs.get("transB", 0))

    def compute(a: Any, b: Any) -> tuple:
        left = _swap_last(xp, a.astype(np.float32, copy=False), trans_a)
        right = _swap_last(xp, b.astype(np.float32, copy=False), trans_b)
        _check_matmul(where, left, right)
        y = xp.matmul(left, right)
        if alpha != 1.0:
            y = xp.multiply(y, np.float32(alpha), out=y if isinstance(y, np.ndarray) else None)
        return (xp.asarray(y).astype(a.dtype, copy=False),)

    return compute


#: Largest K for which float64 sums of int16 products stay exact (|a*b| < 2**30).
_EXACT_INT16_K = 2 ** 22


@kernels.register("MatMulInteger16", since=1, domain=MS,
                  input_types={0: ("int16",), 1: ("int16",)})
def matmul_integer16(node: NodeInfo) -> Callable[..., tuple]:
    """MatMulInteger16 1: int16 @ int16 -> int32 (numpy matmul rules), products summed
    exactly (float64 BLAS while the sum provably fits its 53-bit mantissa) and wrapped to
    int32 like onnxruntime's int32 accumulator."""
    xp = node.xp
    where = node.describe()

    def compute(a: Any, b: Any) -> tuple:
        _check_matmul(where, a, b)
        k = a.shape[-1]
        work = np.float64 if k < _EXACT_INT16_K else np.int64
        y = xp.matmul(a.astype(work), b.astype(work))
        return (xp.asarray(y).astype(np.int64).astype(np.int32),)

    return compute


# --------------------------------------------------------------------------------------------
# ExpandDims, GatherND, Pad
# --------------------------------------------------------------------------------------------


@kernels.register("ExpandDims", since=1, domain=MS, host_inputs=(1,),
                  input_types={1: ("int32",)})
def expand_dims(node: NodeInfo) -> Callable[..., tuple]:
    """ExpandDims 1: X with a dim of size 1 inserted at ``axis`` (an int32 scalar input, in
    ``[-rank - 1, rank]``; negative counts from the end of the output)."""
    xp = node.xp
    where = node.describe()

    def compute(x: Any, axis: Any) -> tuple:
        if np.asarray(axis).size != 1:
            raise ValueError(f"{where}: axis must be a scalar, got shape "
                             f"{np.asarray(axis).shape}")
        a = normalize_axis(where, int(host_scalar(axis)), x.ndim + 1)
        return (xp.expand_dims(x, a),)

    return compute


# com.microsoft GatherND is ONNX GatherND-11 without batch_dims (int32 or int64 indices)
kernels.register("GatherND", since=1, domain=MS, input_types={1: ("int32", "int64")})(gather_nd)

# com.microsoft Pad is ONNX Pad-11 (pads as an input: [2 * rank] or [1, 2 * rank]; optional
# constant value); onnxruntime registers float only
kernels.register("Pad", since=1, domain=MS, host_inputs=(1, 2),
                 input_types={0: _HALF_FLOAT, 1: ("int64",), 2: _HALF_FLOAT})(pad_11)


# --------------------------------------------------------------------------------------------
# Unique
# --------------------------------------------------------------------------------------------


@kernels.register("Unique", since=1, domain=MS, input_types={0: _HALF_FLOAT})
def unique_ms(node: NodeInfo) -> Callable[..., tuple]:
    """Unique 1 (com.microsoft): the unique values of a 1-D tensor in order of first
    occurrence, each input's index into them and each value's count. Values compare as
    floats: -0 equals 0 (the first one seen is kept), every NaN is distinct."""
    xp = node.xp
    where = node.describe()

    def compute(x: Any) -> tuple:
        if x.ndim != 1:
            raise ValueError(f"{where}: the input must be 1-D, got shape {tuple(x.shape)}")
        host = np.asarray(x)
        n = host.size
        if n == 0:
            empty = np.zeros(0, dtype=np.int64)
            return (xp.asarray(host.copy()), xp.asarray(empty), xp.asarray(empty))
        perm = np.argsort(host)  # NaNs sort last
        ordered = host[perm]
        starts_group = np.empty(n, dtype=bool)
        starts_group[0] = True
        np.not_equal(ordered[1:], ordered[:-1], out=starts_group[1:])  # NaN != NaN
        starts = np.flatnonzero(starts_group)
        first = np.minimum.reduceat(perm, starts)  # each value's first occurrence
        counts = np.diff(np.append(starts, n))
        order = np.argsort(first)
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        idx = np.empty(n, dtype=np.int64)
        idx[perm] = rank[np.cumsum(starts_group) - 1]
        y = host[first[order]]  # the first occurrence itself (-0 or 0 as seen first)
        return (xp.asarray(y), xp.asarray(idx), xp.asarray(counts[order].astype(np.int64)))

    return compute


# --------------------------------------------------------------------------------------------
# MurmurHash3
# --------------------------------------------------------------------------------------------

_U32 = np.uint32
_C1, _C2 = _U32(0xCC9E2D51), _U32(0x1B873593)


def _rotl(xp: Any, x: Any, r: int) -> Any:
    """32-bit rotate left of a uint32 array."""
    return (x << _U32(r)) | (x >> _U32(32 - r))


def _mix_k(xp: Any, k: Any) -> Any:
    """MurmurHash3's scramble of one 32-bit block."""
    return _rotl(xp, k * _C1, 15) * _C2


def _mix_block(xp: Any, h: Any, k: Any) -> Any:
    """One body round of MurmurHash3 x86_32: fold block ``k`` into the state ``h``."""
    h = _rotl(xp, h ^ _mix_k(xp, k), 13)
    return h * _U32(5) + _U32(0xE6546B64)


def _finish(xp: Any, h: Any, length: Any) -> Any:
    """MurmurHash3's length fold and final avalanche."""
    h = h ^ length.astype(_U32)
    h = h ^ (h >> _U32(16))
    h = h * _U32(0x85EBCA6B)
    h = h ^ (h >> _U32(13))
    h = h * _U32(0xC2B2AE35)
    return h ^ (h >> _U32(16))


def murmur3_words(xp: Any, words: Any, seed: int) -> Any:
    """MurmurHash3 x86_32 of each row of ``words`` (n, w) uint32: the little-endian bytes of a
    4*w-byte key each, all hashed at once."""
    h = xp.full(words.shape[0], seed & 0xFFFFFFFF, dtype=_U32)
    for j in range(words.shape[1]):
        h = _mix_block(xp, h, words[:, j])
    return _finish(xp, h, xp.full(words.shape[0], 4 * words.shape[1], dtype=_U32))


def murmur3_bytes(keys: Sequence[bytes], seed: int) -> np.ndarray:
    """MurmurHash3 x86_32 of byte strings of any length, vectorized over the keys (one
    numpy step per 4-byte block of the longest key)."""
    n = len(keys)
    lengths = np.fromiter((len(k) for k in keys), dtype=np.int64, count=n)
    blocks = lengths // 4
    width = int(blocks.max(initial=0)) + 1  # room for each key's tail block
    buffer = np.zeros((n, width * 4), dtype=np.uint8)
    if n:
        flat = np.frombuffer(b"".join(keys), dtype=np.uint8)
        starts = np.repeat(np.arange(n) * width * 4, lengths)
        offsets = np.arange(flat.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        buffer.reshape(-1)[starts + offsets] = flat
    words = buffer.view("<u4").astype(_U32)
    h = np.full(n, seed & 0xFFFFFFFF, dtype=_U32)
    for j in range(width - 1):
        h = np.where(j < blocks, _mix_block(np, h, words[:, j]), h)
    tail = words[np.arange(n), blocks]  # zero padded past each key's end
    h = np.where(lengths % 4 != 0, h ^ _mix_k(np, tail), h)
    return _finish(np, h, lengths)


_HASHED = ("int32", "uint32", "int64", "uint64", "float", "double", "string")


@kernels.register("MurmurHash3", since=1, domain=MS, input_types={0: _HASHED})
def murmur_hash3(node: NodeInfo) -> Callable[..., tuple]:
    """MurmurHash3 1: the 32-bit MurmurHash3 (x86_32) of each element's bytes (4 or 8
    little-endian bytes of a number, the UTF-8 bytes of a string) with ``seed``; uint32
    output when ``positive`` (default), else the same bits as int32."""
    xp = node.xp
    seed = int(node.attrs.get("seed", 0))
    positive = bool(node.attrs.get("positive", 1))

    def compute(x: Any) -> tuple:
        if x.dtype == np.dtype(object):
            keys = [str(s).encode("utf-8") for s in np.asarray(x).reshape(-1)]
            h = xp.asarray(murmur3_bytes(keys, seed))
        else:
            flat = xp.ascontiguousarray(x).reshape(-1)
            words = flat.view(_U32).reshape(flat.size, x.dtype.itemsize // 4)
            h = murmur3_words(xp, words, seed)
        h = h.reshape(x.shape)
        return (h if positive else h.view(np.int32),)

    return compute


# --------------------------------------------------------------------------------------------
# schemas
# --------------------------------------------------------------------------------------------


def _as_float(tp: TypeProto | None) -> TypeProto | None:
    """``tp`` with a float element type (for ONNX inference of int16 operands)."""
    if tp is None:
        return None
    out = TypeProto()
    out.CopyFrom(tp)
    out.tensor_type.elem_type = TensorProto.FLOAT
    return out


def _transposed(tp: TypeProto | None, flag: bool) -> TypeProto | None:
    """``tp`` with its last two dims swapped when ``flag`` and it has rank >= 2."""
    shape = dims(tp)
    if not flag or shape is None or len(shape) < 2:
        return tp
    return tensor_type(elem_type(tp), shape[:-2] + [shape[-1], shape[-2]])


def _matmul_infer(transposes: bool, element: int | None = None):
    """Inference of a matmul of the two inputs (after ``transA``/``transB`` when
    ``transposes``), element type ``element`` or input 0's."""
    onnx_matmul = like_onnx("MatMul", 13)

    def infer(types, attrs):
        a, b = types[0], types[1]
        if transposes:
            a = _transposed(a, bool(attrs.get("transA", 0)))
            b = _transposed(b, bool(attrs.get("transB", 0)))
        out = onnx_matmul([_as_float(a), _as_float(b)], {})[0]
        wanted = element or elem_type(types[0])
        if out is None:
            return [tensor_type(wanted)]
        out.tensor_type.elem_type = wanted
        return [out]

    return infer


def _unique_outputs(types, attrs):
    """Unique's outputs: the values and counts 1-D of unknown length, idx shaped as x."""
    element = elem_type(types[0])
    shape = dims(types[0])
    return [tensor_type(element, [None]), tensor_type(TensorProto.INT64, shape),
            tensor_type(TensorProto.INT64, [None])]


def _pad_output(types, attrs, values):
    """Pad's output: the input's type and rank; each dim ``d + begin + end`` where the pads are
    a constant and the dim is known, else unknown."""
    shape = dims(types[0])
    if shape is None:
        return tensor_type(elem_type(types[0]))
    pads = constant_ints(values, 1)
    if pads is None or len(pads) != 2 * len(shape):
        return tensor_type(elem_type(types[0]), [None] * len(shape))
    rank = len(shape)
    return tensor_type(elem_type(types[0]), [
        d + pads[i] + pads[i + rank] if isinstance(d, int) else None
        for i, d in enumerate(shape)])


def _expand_dims_output(types, attrs, values):
    """ExpandDims' output: the input's shape with a 1 inserted at the constant axis."""
    shape = dims(types[0])
    axis = constant_ints(values, 1)
    if shape is None or axis is None or len(axis) != 1:
        return tensor_type(elem_type(types[0]))
    position = axis[0] + len(shape) + 1 if axis[0] < 0 else axis[0]
    if not 0 <= position <= len(shape):
        return tensor_type(elem_type(types[0]))
    return tensor_type(elem_type(types[0]), shape[:position] + [1] + shape[position:])


def _murmur_output(types, attrs):
    """MurmurHash3's output: uint32 (``positive``) or int32, shaped as the input."""
    element = TensorProto.UINT32 if int(attrs.get("positive", 1)) else TensorProto.INT32
    return tensor_type(element, dims(types[0]))


#: The contrib ops of this module, declared to the core.
SCHEMAS: list[DeclaredSchema] = [
    declare("TransposeMatMul", inputs=2, attributes={"alpha": 1.0, "transA": 0, "transB": 0},
            infer=_matmul_infer(True)),
    declare("MatMulInteger16", inputs=2, infer=_matmul_infer(False, TensorProto.INT32)),
    declare("ExpandDims", inputs=2, infer=typed_with_values(_expand_dims_output),
            uses_values=True),
    declare("GatherND", inputs=2, infer=like_onnx("GatherND", 12)),
    declare("Pad", inputs=(2, 3), attributes={"mode": "constant"},
            infer=typed_with_values(_pad_output), uses_values=True),
    declare("Unique", inputs=1, outputs=3, infer=_unique_outputs),
    declare("MurmurHash3", inputs=1, attributes={"seed": 0, "positive": 1},
            infer=typed(_murmur_output)),
]

for _part in (contrib_extra_vision, contrib_extra_legacy, contrib_extra_more):
    kernels.extend(_part.kernels)
    SCHEMAS += _part.SCHEMAS

