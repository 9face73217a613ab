"""Contrib-op cases of the block-quantized weight ops: MatMulNBits, GatherBlockQuantized,
MatMulBnb4."""

from __future__ import annotations

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
