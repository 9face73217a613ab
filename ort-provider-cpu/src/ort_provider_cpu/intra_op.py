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
sleep when idle, any number of runs may use it at once (a call takes the threads that are idle
and runs the rest of its work itself, so nested or concurrent calls never wait for each
other), and a forked child starts a new one. Work under ``min_work`` units (the kernel's
estimate) stays on the calling thread: handing a piece to a thread and waiting for it costs
40-80 µs on the 2-core machines measured (two wake-ups of 20-40 µs each in a VM whose idle
CPUs halt, plus GIL hand-backs), so a piece must be worth a few hundred µs. Spinning instead
of sleeping does not help under CPython: a worker that sees its piece must still take the GIL
from a thread that holds it, and waiting for the GIL sleeps (measured: a 2-piece round trip
went from 40 to 75 µs with workers spinning in compiled code).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

__all__ = ["core_count", "resolve_threads", "split_work"]

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


class _Worker:
    """One pool thread, handed one piece at a time through two locks (a lock's acquire waits
    in C without the GIL: about half a ThreadPoolExecutor round trip, which measured 65 µs
    here)."""

    def __init__(self) -> None:
        self._go = threading.Lock()
        self._go.acquire()
        self._done = threading.Lock()
        self._done.acquire()
        self._task: tuple | None = None
        self.error: BaseException | None = None
        threading.Thread(target=self._loop, daemon=True, name="ort-intra-op").start()

    def _loop(self) -> None:
        while True:
            self._go.acquire()
            work, start, stop = self._task
            try:
                work(start, stop)
            except BaseException as error:  # noqa: BLE001 - handed to the caller
                self.error = error
            finally:
                # drop every reference to the piece's arrays before saying it is done: the
                # session's arena reuses an output only once nothing else holds it
                self._task = work = None
                self._done.release()

    def start(self, work: Callable[[int, int], object], start: int, stop: int) -> None:
        """Run ``work(start, stop)`` on this thread."""
        self.error = None
        self._task = (work, start, stop)
        self._go.release()

    def wait(self) -> BaseException | None:
        """Wait for the piece to end; its error, if any."""
        self._done.acquire()
        return self.error


_idle: list[_Worker] = []
_created = 0


def _take_workers(count: int) -> list[_Worker]:
    """Up to ``count`` idle workers (new ones while fewer than the pool's size exist)."""
    global _created
    taken: list[_Worker] = []
    with _pool_lock:
        while len(taken) < count and _idle:
            taken.append(_idle.pop())
        limit = max(1, core_count() * 2 - 1)
        while len(taken) < count and _created < limit:
            _created += 1
            taken.append(_Worker())
    return taken


def _give_workers(workers: list[_Worker]) -> None:
    with _pool_lock:
        _idle.extend(workers)


def _forget_pool() -> None:
    """In a forked child the parent's pool threads do not exist: start afresh."""
    global _pool_lock, _cores, _created
    _idle.clear()
    _created = 0
    _pool_lock = threading.Lock()
    _cores = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def split_work(work: Callable[[int, int], object], total: int, threads: int,
               min_work: int = 1) -> None:
    """Run ``work(start, stop)`` over ``[0, total)`` in up to ``threads`` contiguous pieces of at
    least ``min_work`` units each, the first on this thread and the rest on the pool; return
    when all are done (re-raising the first error). ``threads <= 1`` or a small ``total`` runs
    ``work(0, total)`` here."""
    pieces = min(max(1, threads), total // max(1, min_work)) if total > 0 else 1
    workers = _take_workers(pieces - 1) if pieces > 1 else []
    pieces = len(workers) + 1  # the pool is shared: fewer threads may be free
    if pieces <= 1:
        if total > 0:
            work(0, total)
        return
    bounds = [total * i // pieces for i in range(pieces + 1)]
    for i, worker in enumerate(workers, start=1):
        worker.start(work, bounds[i], bounds[i + 1])
    try:
        work(bounds[0], bounds[1])
    finally:
        errors = [error for error in (worker.wait() for worker in workers) if error is not None]
        _give_workers(workers)
    if errors:
        raise errors[0]
