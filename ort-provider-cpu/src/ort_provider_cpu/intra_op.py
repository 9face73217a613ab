"""The CPU provider's intra-op threads: one large kernel call split into ranges of its work.

Compiled loops (:mod:`ort_provider_cpu.jit`) release the GIL, so a kernel can hand ranges of its
outer loop (images, channel blocks, rows, trees) to threads. :func:`split_work` runs
``work(start, stop)`` over ``[0, total)`` in up to ``threads`` pieces: the calling thread runs
the first piece and a process-wide pool the others. ``threads`` comes from the session
(``SessionOptions.intra_op_num_threads`` through ``NodeInfo.intra_op_threads``; 0 means one per
core, as onnxruntime's default).

Why not numba's ``parallel=True``: its threading layers either spin while idle (OpenMP, which
makes a busy machine far slower) or abort the process when two threads call in at once
(workqueue); sessions are run from several threads and from forked workers. This pool's threads
sleep when idle, any number of runs may use it at once, and a forked child starts a new one.
Work under ``min_work`` units (the kernel's estimate) stays on the calling thread: handing a
piece to a thread costs about 20 µs.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

__all__ = ["core_count", "resolve_threads", "split_work"]

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_cores: int | None = None


def core_count() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells it; read once
    per process)."""
    global _cores
    if _cores is None:
        try:
            _cores = max(1, len(os.sched_getaffinity(0)))
        except (AttributeError, OSError):
            _cores = max(1, os.cpu_count() or 1)
    return _cores


def resolve_threads(requested: int) -> int:
    """Threads for a kernel: ``requested`` when positive, else one per core."""
    return requested if requested > 0 else core_count()


def _get_pool() -> ThreadPoolExecutor:
    """The process's pool of intra-op threads (created on first use, once per process)."""
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(max_workers=max(1, core_count() * 2 - 1),
                                           thread_name_prefix="ort-intra-op")
    return _pool


def _forget_pool() -> None:
    """In a forked child the parent's pool threads do not exist: start afresh."""
    global _pool, _pool_lock, _cores
    _pool = None
    _cores = None
    _pool_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def split_work(work: Callable[[int, int], object], total: int, threads: int,
               min_work: int = 1) -> None:
    """Run ``work(start, stop)`` over ``[0, total)`` in up to ``threads`` contiguous pieces of at
    least ``min_work`` units each, the first on this thread and the rest on the pool; return
    when all are done (re-raising the first error). ``threads <= 1`` or a small ``total`` runs
    ``work(0, total)`` here."""
    pieces = min(max(1, threads), total // max(1, min_work)) if total > 0 else 1
    if pieces <= 1:
        if total > 0:
            work(0, total)
        return
    bounds = [total * i // pieces for i in range(pieces + 1)]
    pool = _get_pool()
    futures: list[Future] = [pool.submit(work, bounds[i], bounds[i + 1])
                             for i in range(1, pieces)]
    try:
        work(bounds[0], bounds[1])
    finally:
        errors = []
        for future in futures:
            error = future.exception()
            if error is not None:
                errors.append(error)
    if errors:
        raise errors[0]
