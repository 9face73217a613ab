"""CPU kernels: onnxruntime's block-quantized weight ops (MatMulNBits, GatherBlockQuantized,
MatMulBnb4).

Semantics follow onnxruntime's contrib operator spec (docs/ContribOperators.md) and its CPU
kernels' observed behaviour; every op is declared to the core in ``SCHEMAS``
(:mod:`.contrib_schema`).

The weights of these ops are constants in every model onnxruntime's tools write, so the
factories dequantize them once and cache the float weight; each call is then one float GEMM
(MatMulNBits, MatMulBnb4). Weights fed at run time are dequantized per call.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ort.ep import DeclaredSchema, KernelTable, NodeInfo

from ..intra_op import resolve_threads
from ..threaded_gemm import matmul as threaded_matmul
from . import contrib_nbits_gather
from .contrib_nbits_gather import unpack_bits
from .contrib_schema import REQUIRED, declare, dims, elem_type, tensor_type, typed

kernels = KernelTable()

#: The contrib ops of this module, declared to the core.
SCHEMAS: list[DeclaredSchema] = []

MS = "com.microsoft"


# --------------------------------------------------------------------------------------------
# MatMulNBits
# --------------------------------------------------------------------------------------------


def _nbits_weight(xp: Any, node: NodeInfo, k: int, n: int, bits: int, block: int, b: Any,
                  scales: Any, zero_points: Any, g_idx: Any) -> Any:
    """MatMulNBits' dequantized weight, float32 ``(N, K)``: ``(code - zero_point) * scale`` per
    block of ``block`` codes along K (the block of column ``k`` is ``g_idx[k]`` when given)."""
    blocks = (k + block - 1) // block
    blob = block * bits // 8
    if tuple(b.shape) != (n, blocks, blob):
        raise ValueError(f"{node.describe()}: B has shape {tuple(b.shape)}, expected "
                         f"(N, k_blocks, blob_size) = {(n, blocks, blob)}")
    if scales.size != n * blocks:
        raise ValueError(f"{node.describe()}: scales has shape {tuple(scales.shape)}, expected "
                         f"(N, k_blocks) = {(n, blocks)}")
    scale = xp.asarray(scales, dtype=np.float32).reshape(n, blocks)
    if zero_points is None:
        zero = xp.full((n, blocks), float(1 << (bits - 1)), dtype=np.float32)
    elif zero_points.dtype == np.uint8:
        per_row = (blocks * bits + 7) // 8
        if zero_points.size != n * per_row:
            raise ValueError(f"{node.describe()}: packed uint8 zero_points has shape "
                             f"{tuple(zero_points.shape)}, expected {(n, per_row)}")
        zero = unpack_bits(xp, zero_points.reshape(n, per_row), bits, blocks)
        zero = zero.astype(np.float32)
    else:
        if zero_points.dtype != scales.dtype:
            raise ValueError(f"{node.describe()}: zero_points ({zero_points.dtype}) must be "
                             f"uint8 or the type of scales ({scales.dtype})")
        if zero_points.size != n * blocks:
            raise ValueError(f"{node.describe()}: zero_points has shape "
                             f"{tuple(zero_points.shape)}, expected {(n, blocks)}")
        zero = xp.asarray(zero_points, dtype=np.float32).reshape(n, blocks)
    codes = unpack_bits(xp, b, bits).reshape(n, blocks * block)[:, :k].astype(np.float32)
    if g_idx is None:
        # (code - zero) * scale, block by block; the padded tail of the last block is cut
        padded = blocks * block
        weight = xp.zeros((n, padded), dtype=np.float32)
        weight[:, :k] = codes
        weight = weight.reshape(n, blocks, block)
        weight -= zero[:, :, None]
        weight *= scale[:, :, None]
        weight = weight.reshape(n, padded)
        return weight if padded == k else xp.ascontiguousarray(weight[:, :k])
    g_idx = xp.asarray(g_idx).reshape(-1)[:k]
    if g_idx.size != k or bool(xp.any((g_idx < 0) | (g_idx >= blocks))):
        raise ValueError(f"{node.describe()}: g_idx must hold K={k} block indices in "
                         f"[0, {blocks})")
    codes -= zero[:, g_idx]
    codes *= scale[:, g_idx]
    return codes


def int8_blocks(xp: Any, a: Any, block: int) -> Any:
    """``a`` (float32, K last) rounded the way onnxruntime's int8 compute (accuracy_level 4)
    quantizes it: each row's blocks of ``block`` values along K get the symmetric scale
    ``max|a| / 127`` and the values become ``round(a / scale) * scale`` (ties to even)."""
    k = a.shape[-1]
    blocks = (k + block - 1) // block
    padded = xp.zeros(a.shape[:-1] + (blocks * block,), dtype=np.float32)
    padded[..., :k] = a
    grouped = padded.reshape(a.shape[:-1] + (blocks, block))
    scale = xp.abs(grouped).max(axis=-1, keepdims=True) / np.float32(127)
    inverse = xp.divide(np.float32(1), scale, out=xp.zeros_like(scale), where=scale != 0)
    grouped *= inverse
    xp.rint(grouped, out=grouped)
    grouped *= scale
    return padded[..., :k]


def _empty_weight(b: Any) -> bool:
    """Whether B omits the projection (a zero dim in its packed shape: Y is the bias)."""
    return b is not None and b.ndim == 3 and 0 in b.shape


@kernels.register("MatMulNBits", since=1, domain=MS)
def matmul_nbits(node: NodeInfo):
    """MatMulNBits 1: ``Y = A @ dequant(B).T + bias`` with B (N x K) quantized to 2, 4 or 8 bits
    in blocks of ``block_size`` along K: packed uint8 codes, per-block scales, zero points packed
    uint8, float (A's type) or absent (``2**(bits-1)``), the deprecated ``g_idx`` (block of each
    K column). Constant weights are dequantized once; A float16 computes in float32.
    ``accuracy_level`` 4 rounds A to int8 blocks first (:func:`int8_blocks`) where
    onnxruntime's CPU kernel computes in int8: constant B with packed or no zero points and no
    g_idx; the GEMM itself is float32 (the same sums as int8 x code products scaled per block,
    up to float rounding). Other levels compute in float32 throughout."""
    xp = node.xp
    threads = resolve_threads(node.intra_op_threads)
    attrs = node.attrs
    k, n = int(attrs["K"]), int(attrs["N"])
    bits, block = int(attrs["bits"]), int(attrs["block_size"])
    if bits not in (2, 4, 8):
        raise ValueError(f"{node.describe()}: bits={bits} is not supported (2, 4 or 8)")
    if block < 16 or block & (block - 1):
        raise ValueError(f"{node.describe()}: block_size={block} must be a power of 2, >= 16")
    if int(attrs.get("weight_prepacked", 0) or 0):
        raise ValueError(f"{node.describe()}: weight_prepacked={attrs['weight_prepacked']} "
                         "(an EP-specific layout) is not supported on CPU; only 0")
    consts = node.const_inputs

    def const(i: int) -> Any:
        return consts[i] if i < len(consts) and node.has_input(i) else None

    weight_inputs = (1, 2, 3, 4)
    all_const = all(const(i) is not None for i in weight_inputs if node.has_input(i))

    def weight_t(b, scales, zero_points, g_idx) -> Any:
        """The float32 ``(K, N)`` weight (a transposed view), None when B is empty."""
        if _empty_weight(b):
            return None
        return _nbits_weight(xp, node, k, n, bits, block, b, scales, zero_points, g_idx).T

    cached = weight_t(*(const(i) for i in weight_inputs)) if all_const else None
    const_bias = const(5)
    bias32 = None if const_bias is None else xp.asarray(const_bias, dtype=np.float32)
    zp_dtype = node.input_dtypes[3] if node.has_input(3) else None
    int8_a = (int(attrs.get("accuracy_level", 0)) == 4 and const(1) is not None
              and not node.has_input(4) and (zp_dtype is None or zp_dtype == np.uint8))

    def compute(a, b, scales, zero_points=None, g_idx=None, bias=None):
        if a.shape[-1] != k:
            raise ValueError(f"{node.describe()}: A's last dim is {a.shape[-1]}, expected K={k}")
        wt = cached if all_const else weight_t(b, scales, zero_points, g_idx)
        out_shape = tuple(a.shape[:-1]) + (n,)
        if bias is not None and tuple(bias.shape) != (n,):
            raise ValueError(f"{node.describe()}: bias has shape {tuple(bias.shape)}, "
                             f"expected ({n},)")
        bias_w = bias32 if bias32 is not None else (
            None if bias is None else bias.astype(np.float32, copy=False))
        if wt is None:  # an omitted projection: zeros, or the bias broadcast
            y = xp.zeros(out_shape, dtype=np.float32)
        else:
            a32 = a.astype(np.float32, copy=False)
            y = threaded_matmul(xp, int8_blocks(xp, a32, block) if int8_a else a32, wt, threads)
        if bias_w is not None:
            y += bias_w
        return (y.astype(a.dtype, copy=False),)

    return compute


def _matmul_out(types, attrs) -> Any:
    """MatMulNBits / MatMulBnb4 output: A's type, A's shape with the last dim replaced."""
    width = int(attrs["N"]) if int(attrs.get("transB", 1)) else int(attrs["K"])
    shape = dims(types[0])
    return tensor_type(elem_type(types[0]), None if shape is None else shape[:-1] + [width])


SCHEMAS.append(declare(
    "MatMulNBits", inputs=(3, 6),
    attributes={"K": REQUIRED, "N": REQUIRED, "bits": 4, "block_size": REQUIRED,
                "accuracy_level": 0, "weight_prepacked": 0},
    infer=typed(_matmul_out)))

# --------------------------------------------------------------------------------------------
# MatMulBnb4
# --------------------------------------------------------------------------------------------

#: bitsandbytes' FP4 code values (1 sign bit, then magnitudes 0, 0.0625, 8, 12, 4, 6, 2, 3
#: divided by 12, the format's absmax), and NF4's (normal-distribution quantiles on [-1, 1]).
_FP4 = np.array([0, 0.0625, 8, 12, 4, 6, 2, 3], dtype=np.float64) / 12
_BNB4_TABLES = {
    0: np.concatenate([_FP4, -_FP4]).astype(np.float32),
    1: np.array([-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
                 -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
                 0.07958029955625534, 0.16093020141124725, 0.24611230194568634,
                 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
                 0.7229568362236023, 1.0], dtype=np.float32),
}


def _bnb4_weight(xp: Any, node: NodeInfo, n: int, k: int, block: int, table: Any, b: Any,
                 absmax: Any) -> Any:
    """MatMulBnb4's dequantized weight, float32 ``(N, K)``: the N x K elements flattened row by
    row, two 4-bit codes a byte (high nibble first), ``table[code] * absmax`` per block of
    ``block`` consecutive elements."""
    count = n * k
    blocks = (count + block - 1) // block
    if b.size != (count + 1) // 2:
        raise ValueError(f"{node.describe()}: B has {b.size} bytes, expected (N*K+1)/2 = "
                         f"{(count + 1) // 2}")
    if absmax.size != blocks:
        raise ValueError(f"{node.describe()}: absmax has {absmax.size} values, expected "
                         f"ceil(N*K/block_size) = {blocks}")
    packed = xp.asarray(b, dtype=np.uint8).reshape(-1)
    codes = xp.stack([packed >> 4, packed & np.uint8(15)], axis=-1).reshape(-1)
    values = xp.zeros(blocks * block, dtype=np.float32)
    values[:count] = xp.asarray(table)[codes[:count]]
    values = values.reshape(blocks, block)
    values *= xp.asarray(absmax, dtype=np.float32).reshape(blocks, 1)
    return values.reshape(-1)[:count].reshape(n, k)


@kernels.register("MatMulBnb4", since=1, domain=MS)
def matmul_bnb4(node: NodeInfo):
    """MatMulBnb4 1: ``Y = A @ dequant(B).T`` (``transB`` 1, A's last dim K) or
    ``A @ dequant(B)`` (``transB`` 0, A's last dim N) with B the N x K weight quantized to
    bitsandbytes' FP4 (``quant_type`` 0) or NF4 (1) codes in blocks scaled by ``absmax``.
    A constant weight is dequantized once; float16 A computes in float32 (onnxruntime's CPU
    kernel takes float only). ``training_mode`` changes nothing at inference."""
    xp = node.xp
    threads = resolve_threads(node.intra_op_threads)
    attrs = node.attrs
    k, n = int(attrs["K"]), int(attrs["N"])
    block, quant_type = int(attrs["block_size"]), int(attrs["quant_type"])
    trans_b = bool(int(attrs["transB"]))
    table = _BNB4_TABLES.get(quant_type)
    if table is None:
        raise ValueError(f"{node.describe()}: quant_type={quant_type} is not 0 (FP4) or 1 (NF4)")
    if block < 16 or block & (block - 1):
        raise ValueError(f"{node.describe()}: block_size={block} must be a power of 2, >= 16")
    consts = node.const_inputs
    b_const, absmax_const = (consts[i] if i < len(consts) else None for i in (1, 2))

    def weight(b, absmax) -> Any:
        """The float32 weight as the GEMM's right operand: (K, N) or (N, K)."""
        w = _bnb4_weight(xp, node, n, k, block, table, b, absmax)
        return w.T if trans_b else w

    cached = None
    if b_const is not None and absmax_const is not None:
        cached = weight(b_const, absmax_const)

    def compute(a, b, absmax):
        width = k if trans_b else n
        if a.shape[-1] != width:
            raise ValueError(f"{node.describe()}: A's last dim is {a.shape[-1]}, expected "
                             f"{'K' if trans_b else 'N'}={width}")
        w = cached if cached is not None else weight(b, absmax)
        y = threaded_matmul(xp, a.astype(np.float32, copy=False), w, threads)
        return (y.astype(a.dtype, copy=False),)

    return compute


SCHEMAS.append(declare(
    "MatMulBnb4", inputs=3,
    attributes={"K": REQUIRED, "N": REQUIRED, "block_size": REQUIRED, "quant_type": REQUIRED,
                "transB": 1, "training_mode": 0},
    infer=typed(_matmul_out)))

kernels.extend(contrib_nbits_gather.kernels)
SCHEMAS += contrib_nbits_gather.SCHEMAS
