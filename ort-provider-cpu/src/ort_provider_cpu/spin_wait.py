"""Waiting without sleeping and without the GIL: the intra-op pool's hand-off (see
:mod:`ort_provider_cpu.intra_op`, the only importer of this module).

A thread that blocks on a lock sleeps, and on the 2-vCPU VMs measured a sleeping thread's CPU
halts: waking it costs 20-40 µs, twice per hand-off (the worker's start, the caller's return).
Here both sides wait by spinning on a word of a small int64 array (``flags``) in compiled code
that released the GIL, for a bounded number of spins, and only then sleep:

* :func:`wait_until` spins (``pause`` between loads) until ``flags[i] >= value`` or the spins
  run out, and says which;
* :func:`publish` stores a value, :func:`peek` loads one.

Loads and stores are sequentially consistent atomics, so "store my flag, then load yours"
on both sides (the sleep protocol in :mod:`.intra_op`) can never miss each other.

This module imports numba (and llvmlite) at import time; :mod:`.intra_op` imports it only
where :func:`~ort_provider_cpu.jit.numba_available` holds, and otherwise keeps sleeping locks.
"""

from __future__ import annotations

import platform
import time

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["peek", "publish", "spins_per_microsecond", "wait_then_settle", "wait_until"]

_X86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")


def _word(context, builder, array_type, array, index):
    """A pointer to ``array[index]`` (int64, no bounds check)."""
    data = context.make_array(array_type)(context, builder, array).data
    return builder.gep(data, [index])


@intrinsic
def _load(typingctx, flags, index):
    """``flags[index]``, an atomic sequentially consistent load."""
    def codegen(context, builder, signature, args):
        pointer = _word(context, builder, signature.args[0], *args)
        return builder.load_atomic(pointer, "seq_cst", 8)
    return types.int64(flags, types.intp), codegen


@intrinsic
def _store(typingctx, flags, index, value):
    """``flags[index] = value``, an atomic sequentially consistent store."""
    def codegen(context, builder, signature, args):
        pointer = _word(context, builder, signature.args[0], args[0], args[1])
        builder.store_atomic(args[2], pointer, "seq_cst", 8)
        return context.get_dummy_value()
    return types.void(flags, types.intp, types.int64), codegen


@intrinsic
def _pause(typingctx):
    """The CPU's spin-wait hint (``pause`` on x86; nothing elsewhere)."""
    def codegen(context, builder, signature, args):
        if _X86:
            function = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), []), "llvm.x86.sse2.pause")
            builder.call(function, [])
        return context.get_dummy_value()
    return types.void(), codegen


@njit(nogil=True, cache=True)
def wait_until(flags, index, value, spins):
    """Spin (without the GIL) until ``flags[index] >= value``, at most ``spins`` times;
    whether it got there."""
    for _ in range(spins):
        if _load(flags, index) >= value:
            return True
        _pause()
    return _load(flags, index) >= value


@njit(nogil=True, cache=True)
def wait_then_settle(flags, index, value, spins, settle, seen):
    """:func:`wait_until`; once there, ``flags[seen] = value`` (the other side learns this
    thread is running) and ``settle`` more spins before returning (and taking the GIL back):
    the caller that set the flag is by then inside its own piece's compiled code, so the
    GIL is free and this thread takes it without sleeping."""
    if not wait_until(flags, index, value, spins):
        return False
    _store(flags, seen, value)
    for _ in range(settle):
        _pause()
    return True


@njit(nogil=True, cache=True)
def publish(flags, index, value):
    """``flags[index] = value`` (atomic)."""
    _store(flags, index, value)


@njit(nogil=True, cache=True)
def peek(flags, index):
    """``flags[index]`` (atomic)."""
    return _load(flags, index)


def spins_per_microsecond() -> float:
    """How many of :func:`wait_until`'s spins take a microsecond on this CPU (measured once:
    ``pause`` takes 10-150 cycles depending on the CPU)."""
    flags = np.zeros(1, np.int64)
    wait_until(flags, 0, 1, 10)  # compile or load
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        wait_until(flags, 0, 1, 20000)
        best = min(best, time.perf_counter() - start)
    return max(1.0, 20000 / max(best * 1e6, 1e-3))
