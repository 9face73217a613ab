"""Contrib-op cases of the block-quantized weight ops: MatMulNBits, GatherBlockQuantized,
MatMulBnb4."""

from __future__ import annotations

import ml_dtypes
import numpy as np
from contrib_case import Case, rng

f32, f16 = np.float32, np.float16
WEIGHTS = (1, 2, 3, 4, 5)  # B, scales, zero_points, g_idx, bias: constants in real models


def pack_codes(codes: np.ndarray, bits: int) -> np.ndarray:
    """``codes`` (uint8, last axis a multiple of 8 // bits) packed low-first into bytes."""
    per = 8 // bits
    grouped = codes.reshape(codes.shape[:-1] + (-1, per)).astype(np.uint8)
    shifts = np.arange(0, 8, bits, dtype=np.uint8)
    return np.bitwise_or.reduce(grouped << shifts, axis=-1).astype(np.uint8)


def nbits_weights(seed: int, k: int, n: int, bits: int, block: int, zp: str, dtype=f32):
    """(B, scales, zero_points) of a random MatMulNBits weight; ``zp``: "none", "packed" (uint8)
    or "float" (the scales' type)."""
    r = rng(seed)
    blocks = (k + block - 1) // block
    codes = r.integers(0, 1 << bits, (n, blocks, block), dtype=np.uint8)
    b = pack_codes(codes, bits)
    scales = (0.02 + 0.08 * r.random((n, blocks))).astype(dtype)
    zero = None
    if zp == "packed":
        per_row = (blocks * bits + 7) // 8
        raw = r.integers(0, 1 << bits, (n, per_row * (8 // bits)), dtype=np.uint8)
        zero = pack_codes(raw, bits)
    elif zp == "float":
        zero = (r.random((n, blocks)) * ((1 << bits) - 1)).astype(dtype)
    return b, scales, zero


def nbits_case(name: str, k: int, n: int, bits: int, block: int, zp: str = "none",
               dtype=f32, a_shape=(3,), bias: bool = False, g_idx: bool = False,
               accuracy_level: int = 0, constants=WEIGHTS, **kw) -> Case:
    """A MatMulNBits case: A of shape ``a_shape + (K,)``, the weights above."""
    seed = sum(map(ord, name))  # a fixed seed per case
    r = rng(seed + 1)
    b, scales, zero = nbits_weights(seed, k, n, bits, block, zp, dtype)
    a = r.standard_normal(tuple(a_shape) + (k,)).astype(dtype)
    gi = None
    if g_idx:
        blocks = (k + block - 1) // block
        gi = r.permutation(np.arange(k, dtype=np.int32) // block).astype(np.int32)
        assert gi.max() < blocks
    bv = r.standard_normal(n).astype(dtype) if bias else None
    attrs = {"K": k, "N": n, "bits": bits, "block_size": block}
    if accuracy_level:
        attrs["accuracy_level"] = accuracy_level
    tol = {"rtol": 1e-4, "atol": 1e-4} if dtype == f32 else {"rtol": 2e-3, "atol": 2e-3}
    tol.update(kw)
    return Case(name, "MatMulNBits", [a, b, scales, zero, gi, bv], attrs,
                constants=constants, **tol)


# accuracy_level=4: onnxruntime's CPU kernel quantizes A to int8 per block (a symmetric scale
# max|a|/127 per block of block_size values of each row) when B is constant with packed or no
# zero points and no g_idx. Kept in float32, A would move the outputs by up to ~1% here (0.57
# on outputs of ~100 with 8-bit weights); ort rounds A the same way, and the results then agree
# to float32 rounding (~1e-5 on outputs of ~100), so these cases keep the usual tolerances.
ACC4 = {"accuracy_level": 4}

_r = rng(7)
_A64 = _r.standard_normal((3, 64)).astype(f32)
_BIAS8 = _r.standard_normal(8).astype(f32)
_NB_ATTRS = {"K": 64, "N": 8, "bits": 4, "block_size": 32}
_B_FLAT, _S_FLAT, _Z_FLAT = nbits_weights(11, 64, 8, 4, 32, "packed")

CASES = [
    nbits_case("MatMulNBits_b4_bs16", 64, 8, 4, 16),
    nbits_case("MatMulNBits_b4_bs32_zp_packed", 64, 8, 4, 32, "packed"),
    nbits_case("MatMulNBits_b4_bs64_zp_float", 128, 6, 4, 64, "float"),
    nbits_case("MatMulNBits_b4_bs128_zp_packed_bias", 256, 5, 4, 128, "packed", bias=True),
    nbits_case("MatMulNBits_b4_bs32_k_ragged", 100, 7, 4, 32, "packed"),
    nbits_case("MatMulNBits_b4_bs16_k_ragged_odd_blocks", 40, 4, 4, 16, "packed", bias=True),
    nbits_case("MatMulNBits_b4_bs64_k_ragged_nozp", 72, 3, 4, 64),
    nbits_case("MatMulNBits_b4_batched", 64, 8, 4, 32, "packed", a_shape=(2, 3)),
    nbits_case("MatMulNBits_b4_batched_rank4", 64, 8, 4, 16, a_shape=(2, 2, 3)),
    nbits_case("MatMulNBits_b4_vector_a", 64, 8, 4, 32, "packed", a_shape=()),
    nbits_case("MatMulNBits_b2_bs16", 64, 8, 2, 16),
    nbits_case("MatMulNBits_b2_bs32_zp_packed", 96, 8, 2, 32, "packed", bias=True),
    nbits_case("MatMulNBits_b2_bs64_k_ragged", 100, 5, 2, 64, "packed"),
    nbits_case("MatMulNBits_b8_bs32", 64, 8, 8, 32),
    nbits_case("MatMulNBits_b8_bs64_zp_packed", 128, 8, 8, 64, "packed", bias=True),
    nbits_case("MatMulNBits_b8_bs128_k_ragged", 200, 4, 8, 128, "packed"),
    nbits_case("MatMulNBits_b4_g_idx", 64, 8, 4, 16, "packed", g_idx=True),
    nbits_case("MatMulNBits_b4_g_idx_nozp", 64, 8, 4, 32, g_idx=True, bias=True),
    nbits_case("MatMulNBits_b4_g_idx_zp_float", 64, 8, 4, 32, "float", g_idx=True),
    nbits_case("MatMulNBits_b4_runtime_weights", 64, 8, 4, 32, "packed", bias=True,
               constants=()),
    nbits_case("MatMulNBits_b8_runtime_weights_nozp", 64, 8, 8, 16, constants=()),
    nbits_case("MatMulNBits_f16_b4_bs32", 64, 8, 4, 32, dtype=f16),
    nbits_case("MatMulNBits_f16_b4_bs32_zp_packed_bias", 64, 8, 4, 32, "packed", dtype=f16,
               bias=True),
    nbits_case("MatMulNBits_f16_b4_bs16_zp_float", 48, 8, 4, 16, "float", dtype=f16),
    nbits_case("MatMulNBits_f16_b4_k_ragged_batched", 100, 6, 4, 64, "packed", dtype=f16,
               a_shape=(2, 3)),
    nbits_case("MatMulNBits_f16_b8_bs64_zp_packed", 128, 8, 8, 64, "packed", dtype=f16),
    nbits_case("MatMulNBits_f16_b2_bs32", 64, 8, 2, 32, "packed", dtype=f16),
    nbits_case("MatMulNBits_f16_b4_g_idx", 64, 8, 4, 16, "packed", dtype=f16, g_idx=True),
    nbits_case("MatMulNBits_acc4_b4_bs32_zp_packed", 64, 8, 4, 32, "packed", **ACC4),
    nbits_case("MatMulNBits_acc4_b4_bs16_nozp_bias", 64, 8, 4, 16, bias=True, **ACC4),
    nbits_case("MatMulNBits_acc4_b4_bs128_k_ragged", 200, 8, 4, 128, "packed", **ACC4),
    nbits_case("MatMulNBits_acc4_b8_bs32", 64, 8, 8, 32, "packed", **ACC4),
    nbits_case("MatMulNBits_acc4_b2_bs64", 128, 8, 2, 64, "packed", **ACC4),
    nbits_case("MatMulNBits_acc4_f16_b4", 64, 8, 4, 32, "packed", dtype=f16, **ACC4),
    nbits_case("MatMulNBits_acc4_zp_float_stays_float", 64, 8, 4, 32, "float", **ACC4),
    nbits_case("MatMulNBits_acc4_g_idx_stays_float", 64, 8, 4, 16, g_idx=True, **ACC4),
    nbits_case("MatMulNBits_acc4_runtime_weights_stay_float", 64, 8, 4, 32, "packed",
               constants=(), **ACC4),
    nbits_case("MatMulNBits_acc4_batched_bias", 100, 8, 4, 32, "packed", a_shape=(2, 3),
               bias=True, **ACC4),
    nbits_case("MatMulNBits_acc1_b4", 64, 8, 4, 32, "packed", accuracy_level=1),
    # B with a zero dim omits the projection: Y is the bias broadcast (or zeros)
    Case("MatMulNBits_empty_b_bias", "MatMulNBits",
         [_A64, np.zeros((8, 0, 16), np.uint8), np.zeros((8, 0), f32), None, None, _BIAS8],
         _NB_ATTRS, constants=WEIGHTS),
    Case("MatMulNBits_empty_b_runtime", "MatMulNBits",
         [_A64, np.zeros((0, 2, 16), np.uint8), np.zeros((0,), f32)], _NB_ATTRS),
    # scales and zero points flattened to 1-D (older models)
    Case("MatMulNBits_flat_scales_zp", "MatMulNBits",
         [_A64, _B_FLAT, _S_FLAT.reshape(-1), _Z_FLAT.reshape(-1)], _NB_ATTRS,
         constants=WEIGHTS, rtol=1e-4, atol=1e-4),
]


# --------------------------------------------------------------------------------------------
# GatherBlockQuantized: data, scales and zero points are constants (onnxruntime cannot take
# int4 feeds at all); indices are fed.
# --------------------------------------------------------------------------------------------

I4, U4 = np.dtype(ml_dtypes.int4), np.dtype(ml_dtypes.uint4)


def gbq_case(name: str, shape, gather_axis: int, quantize_axis: int, block: int, dtype,
             indices, zp: bool = True, bits: int = 4, scale_dtype=f32, fed_data=False,
             default_block: bool = False, **kw) -> Case:
    """A GatherBlockQuantized case over random data of logical ``shape``; uint8 data packs
    ``bits``-wide codes along the last axis (and its zero points likewise)."""
    r = rng(sum(map(ord, name)))
    rank = len(shape)
    qa = quantize_axis % rank
    scale_shape = list(shape)
    scale_shape[qa] = (shape[qa] + block - 1) // block
    scales = (0.05 + r.random(scale_shape)).astype(scale_dtype)
    zero = None
    if dtype == np.uint8:
        codes = r.integers(0, 1 << bits, shape, dtype=np.uint8)
        data = pack_codes(codes, bits)
        if zp:
            per = 8 // bits
            zshape = scale_shape[:-1] + [-(-scale_shape[-1] // per) * per]
            zero = pack_codes(r.integers(0, 1 << bits, zshape, dtype=np.uint8), bits)
    elif dtype in (I4, U4):
        low, high = (-8, 8) if dtype == I4 else (0, 16)
        data = r.integers(low, high, shape).astype(dtype)
        if zp:
            zero = r.integers(low, high, scale_shape).astype(dtype)
    else:  # float8 / float4 codes
        data = (r.standard_normal(shape) * 2).astype(dtype)
    attrs = {"gather_axis": gather_axis, "quantize_axis": quantize_axis, "bits": bits}
    if not default_block:
        attrs["block_size"] = block
    tol = {"rtol": 1e-6, "atol": 1e-6} if scale_dtype == f32 else {"rtol": 1e-3, "atol": 1e-3}
    tol.update(kw)
    return Case(name, "GatherBlockQuantized", [data, np.asarray(indices), scales, zero], attrs,
                constants=(2, 3) if fed_data else (0, 2, 3), **tol)


_IDX2 = np.array([[0, 5], [-1, 3]], np.int64)
CASES += [
    gbq_case("GatherBlockQuantized_int4_bs16", (8, 32), 0, 1, 16, I4, _IDX2),
    gbq_case("GatherBlockQuantized_int4_bs32_nozp", (8, 64), 0, 1, 32, I4,
             np.array([7, 0, 2], np.int32), zp=False),
    gbq_case("GatherBlockQuantized_uint4_bs64_zp", (6, 128), 0, 1, 64, U4, _IDX2),
    gbq_case("GatherBlockQuantized_uint4_default_block", (4, 256), 0, 1, 128, U4,
             np.array([3, 1], np.int64), default_block=True),
    gbq_case("GatherBlockQuantized_int4_ragged_block", (5, 40), 0, 1, 16, I4,
             np.array([4, 0, 4], np.int64)),
    gbq_case("GatherBlockQuantized_int4_rank3_axis1", (2, 6, 32), 1, 2, 16, I4,
             np.array([[5, 0, 1]], np.int64)),
    gbq_case("GatherBlockQuantized_int4_quantize_axis0", (64, 6), 1, 0, 32, I4,
             np.array([1, 5], np.int64)),
    gbq_case("GatherBlockQuantized_int4_gather_on_quantize_axis", (4, 64), 1, 1, 16, I4,
             np.array([0, 17, 63, -1], np.int64)),
    gbq_case("GatherBlockQuantized_int4_negative_axes", (2, 6, 32), -2, -1, 16, U4,
             np.array([2, -6], np.int64)),
    gbq_case("GatherBlockQuantized_int4_out_of_range", (8, 32), 0, 1, 16, I4,
             np.array([8, -9, 2, 100], np.int64)),
    gbq_case("GatherBlockQuantized_int4_f16_scales", (8, 32), 0, 1, 16, I4, _IDX2,
             scale_dtype=f16),
    gbq_case("GatherBlockQuantized_uint8_b4_zp", (6, 64), 0, 1, 32, np.uint8, _IDX2),
    gbq_case("GatherBlockQuantized_uint8_b4_nozp_ragged", (6, 48), 0, 1, 32, np.uint8,
             np.array([5, 0], np.int32), zp=False),
    gbq_case("GatherBlockQuantized_uint8_b4_zp_odd_blocks", (6, 96), 0, 1, 32, np.uint8,
             _IDX2),
    gbq_case("GatherBlockQuantized_uint8_b2_zp_odd_blocks", (4, 80), 0, 1, 16, np.uint8,
             np.array([0, 3], np.int64), bits=2),
    gbq_case("GatherBlockQuantized_uint4_odd_blocks_f16", (5, 48), 0, 1, 16, U4,
             np.array([4, -5], np.int64), scale_dtype=f16),
    gbq_case("GatherBlockQuantized_uint8_b8_zp", (6, 64), 0, 1, 16, np.uint8, _IDX2, bits=8),
    gbq_case("GatherBlockQuantized_uint8_b8_nozp_f16", (6, 64), 0, 1, 32, np.uint8, _IDX2,
             bits=8, zp=False, scale_dtype=f16),
    gbq_case("GatherBlockQuantized_uint8_b2_zp", (6, 64), 0, 1, 16, np.uint8, _IDX2, bits=2),
    gbq_case("GatherBlockQuantized_uint8_b2_nozp", (4, 128), 0, -1, 64, np.uint8,
             np.array([3, 3, 0], np.int64), bits=2, zp=False),
    gbq_case("GatherBlockQuantized_uint8_b4_rank3", (5, 2, 64), 0, 2, 32, np.uint8,
             np.array([[4], [1]], np.int64)),
    gbq_case("GatherBlockQuantized_uint8_b4_fed_data", (6, 64), 0, 1, 16, np.uint8, _IDX2,
             fed_data=True),
    gbq_case("GatherBlockQuantized_uint8_b4_scalar_index", (6, 64), 0, 1, 16, np.uint8,
             np.array(-2, np.int64)),
    gbq_case("GatherBlockQuantized_int4_scalar_index_axis1", (3, 6, 32), 1, 2, 32, I4,
             np.array(4, np.int32)),
    gbq_case("GatherBlockQuantized_uint8_b4_out_of_range", (6, 64), 0, 1, 16, np.uint8,
             np.array([6, -7, 1], np.int64)),
]

# float8 / float4 data: data * scale, no zero points; block_size 0 is one block per row and
# scales may broadcast along other axes with dims of 1
E4M3, E5M2 = np.dtype(ml_dtypes.float8_e4m3fn), np.dtype(ml_dtypes.float8_e5m2)
E4M3UZ, E5M2UZ = np.dtype(ml_dtypes.float8_e4m3fnuz), np.dtype(ml_dtypes.float8_e5m2fnuz)
FP4 = np.dtype(ml_dtypes.float4_e2m1fn)
_rf = rng(21)
_FP8_DATA = (_rf.standard_normal((6, 64)) * 3).astype(E4M3)
CASES += [
    gbq_case("GatherBlockQuantized_fp8e4m3_bs16", (6, 64), 0, 1, 16, E4M3, _IDX2, zp=False),
    gbq_case("GatherBlockQuantized_fp8e5m2_bs32_f16", (6, 64), 0, 1, 32, E5M2, _IDX2,
             zp=False, scale_dtype=f16),
    gbq_case("GatherBlockQuantized_fp8e4m3fnuz_axis0", (64, 6), 1, 0, 16, E4M3UZ,
             np.array([5, 0], np.int64), zp=False),
    gbq_case("GatherBlockQuantized_fp8e5m2fnuz_oob", (6, 64), 0, 1, 64, E5M2UZ,
             np.array([6, 1, -6], np.int64), zp=False),
    gbq_case("GatherBlockQuantized_fp4_bs16", (6, 64), 0, 1, 16, FP4, _IDX2, zp=False),
    gbq_case("GatherBlockQuantized_fp4_rank3", (2, 5, 32), 1, 2, 16, FP4,
             np.array([4, 0], np.int64), zp=False),
    Case("GatherBlockQuantized_fp8_block0_row_scales", "GatherBlockQuantized",
         [_FP8_DATA, _IDX2, (0.5 + _rf.random((6, 1))).astype(f32)],
         {"block_size": 0}, constants=(0, 2)),
    Case("GatherBlockQuantized_fp8_per_tensor_scale", "GatherBlockQuantized",
         [_FP8_DATA, _IDX2, np.array([[0.75]], f32)], {"block_size": 0}, constants=(0, 2)),
    Case("GatherBlockQuantized_fp8_broadcast_row_scales", "GatherBlockQuantized",
         [_FP8_DATA, np.array([1, 2], np.int64), (0.5 + _rf.random((1, 4))).astype(f32)],
         {"block_size": 16}, constants=(0, 2)),
]


# --------------------------------------------------------------------------------------------
# MatMulBnb4 (onnxruntime's CPU kernel takes float A only)
# --------------------------------------------------------------------------------------------


def bnb4_case(name: str, k: int, n: int, block: int, quant_type: int, a_shape=(3,),
              trans_b: int | None = None, constants=(1, 2), **kw) -> Case:
    """A MatMulBnb4 case: random 4-bit codes for the N x K weight, random absmax per block."""
    r = rng(sum(map(ord, name)))
    count = n * k
    b = r.integers(0, 256, (count + 1) // 2, dtype=np.uint8)
    absmax = (0.5 + r.random((count + block - 1) // block)).astype(f32)
    width = k if trans_b in (None, 1) else n
    a = r.standard_normal(tuple(a_shape) + (width,)).astype(f32)
    attrs = {"K": k, "N": n, "block_size": block, "quant_type": quant_type}
    if trans_b is not None:
        attrs["transB"] = trans_b
    tol = {"rtol": 1e-5, "atol": 1e-5}
    tol.update(kw)
    return Case(name, "MatMulBnb4", [a, b, absmax], attrs, constants=constants, **tol)


CASES += [
    bnb4_case("MatMulBnb4_fp4_bs16", 32, 8, 16, 0),
    bnb4_case("MatMulBnb4_nf4_bs32", 64, 8, 32, 1),
    bnb4_case("MatMulBnb4_nf4_bs64_ragged", 33, 5, 64, 1),
    bnb4_case("MatMulBnb4_fp4_bs128_batched", 100, 6, 128, 0, a_shape=(2, 3)),
    bnb4_case("MatMulBnb4_nf4_transB1", 48, 4, 16, 1, trans_b=1),
    # transB=0 with K <= N: onnxruntime's kernel (which GEMMs as if transB=1, see
    # expected/nbits.txt) then stays inside the weight buffer
    bnb4_case("MatMulBnb4_nf4_transB0", 16, 24, 16, 1, trans_b=0),
    bnb4_case("MatMulBnb4_fp4_transB0_batched", 32, 40, 32, 0, a_shape=(2, 2), trans_b=0),
    bnb4_case("MatMulBnb4_nf4_runtime_weights", 64, 8, 32, 1, constants=()),
    bnb4_case("MatMulBnb4_fp4_vector_a", 64, 8, 16, 0, a_shape=()),
    bnb4_case("MatMulBnb4_nf4_training_mode", 32, 4, 16, 1),
]
CASES[-1].attrs["training_mode"] = 1
