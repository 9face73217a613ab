"""Matrix products split over the CPU provider's intra-op threads.

During a run numpy's BLAS is held to one thread (``ort.runtime.threads``): OpenBLAS's own
threads spin while they wait, and on a machine whose cores are busy with other processes a
multi-threaded BLAS call then waits for descheduled threads, one scheduler slice per call
(measured here: 100 conv-sized GEMMs took 1.34 s on OpenBLAS's 2 threads under load, 0.21 s on
one). The CPU provider parallelizes large products itself instead: :func:`matmul_into` gives
each of up to ``threads`` pool threads (:mod:`ort_provider_cpu.intra_op`, whose idle threads
sleep) a block of rows or columns of the product, each computed by single-threaded BLAS
(numpy releases the GIL inside it). Small products stay on the calling thread: a piece must
hold at least :data:`MIN_MACS_PER_PIECE` multiply-adds to pay for its hand-off.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .intra_op import split_work

__all__ = ["MIN_MACS_PER_PIECE", "matmul_into", "pieces_for"]

#: multiply-adds one thread's piece of a product must hold (about 40 µs of one core's BLAS:
#: handing a piece to a pool thread and taking it back costs about 20 µs, see
#: :mod:`ort_provider_cpu.intra_op`; measured best of 2**20-2**24 on MobileNetV2 at 2 threads)
MIN_MACS_PER_PIECE = 1 << 21


def pieces_for(macs: int, threads: int) -> int:
    """How many threads a product of ``macs`` multiply-adds should use (1: stay here)."""
    if threads <= 1:
        return 1
    return max(1, min(threads, macs // MIN_MACS_PER_PIECE))


def matmul_into(a: Any, b: Any, out: Any, threads: int) -> Any:
    """``np.matmul(a, b, out=out)`` with the work split over up to ``threads`` threads; returns
    ``out``. 2-D products split the rows of A (or, for few rows, the columns of B); stacked
    products (``a``, ``b``, ``out`` with equal leading dims, as attention's heads) split the
    stack. ``out`` must not overlap ``a`` or ``b``."""
    if threads <= 1 or out.ndim < 2 or a.ndim < 2 or b.ndim < 2:
        return np.matmul(a, b, out=out)
    m, n = out.shape[-2], out.shape[-1]
    k = a.shape[-1]
    stack = out.size // max(1, m * n) if out.size else 0
    pieces = pieces_for(stack * m * n * k, threads)
    if pieces <= 1:
        return np.matmul(a, b, out=out)
    if out.ndim > 2:
        lead = out.shape[:-2]
        if out.ndim == 3 and a.shape[:-2] == lead and b.shape[:-2] == lead and stack >= pieces:
            split_work(lambda s, e: np.matmul(a[s:e], b[s:e], out=out[s:e]), stack, pieces)
            return out
        if not out.flags.c_contiguous:
            return np.matmul(a, b, out=out)
        if a.shape[:-2] == lead and b.shape[:-2] == lead and stack >= pieces:
            out3 = out.reshape((-1, m, n))
            a3 = a.reshape((-1,) + a.shape[-2:])  # views where a and b allow, else copies
            b3 = b.reshape((-1,) + b.shape[-2:])
            split_work(lambda s, e: np.matmul(a3[s:e], b3[s:e], out=out3[s:e]), stack, pieces)
            return out
        if b.ndim == 2 and a.shape[:-2] == lead:
            _split_2d(a.reshape((-1, k)), b, out.reshape((-1, n)), pieces)
            return out
        return np.matmul(a, b, out=out)
    _split_2d(a, b, out, pieces)
    return out


def _split_2d(a: Any, b: Any, out: Any, pieces: int) -> None:
    """A 2-D product in ``pieces`` blocks of rows (when there are enough) or of columns."""
    m, n = out.shape
    if m >= 16 * pieces:
        split_work(lambda s, e: np.matmul(a[s:e], b, out=out[s:e]), m, pieces)
    elif n >= 16 * pieces:
        split_work(lambda s, e: np.matmul(a, b[:, s:e], out=out[:, s:e]), n, pieces)
    else:
        np.matmul(a, b, out=out)


def matmul(xp: Any, a: Any, b: Any, threads: int) -> Any:
    """``xp.matmul(a, b)`` as a fresh array, split over up to ``threads`` threads when ``xp``
    is numpy, both operands are at least 2-D and the product is large enough to pay."""
    if xp is not np or threads <= 1 or a.ndim < 2 or b.ndim < 2:
        return xp.matmul(a, b)
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    lead = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    stack = 1
    for dim in lead:
        stack *= dim
    if pieces_for(stack * m * n * k, threads) <= 1:
        return np.matmul(a, b)
    out = np.empty(lead + (m, n), np.result_type(a.dtype, b.dtype))
    return matmul_into(a, b, out, threads)
