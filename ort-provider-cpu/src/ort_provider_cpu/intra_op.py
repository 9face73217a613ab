"""The CPU provider's intra-op threads: one large kernel call split into ranges of its work.

Compiled loops (:mod:`ort_provider_cpu.jit`) release the GIL, so a kernel can hand ranges of its
outer loop (images, channel blocks, rows, trees) to threads. :func:`split_work` runs
``work(start, stop)`` over ``[0, total)`` in up to ``threads`` pieces: the calling thread runs
the first piece and a process-wide pool the others. ``threads`` comes from the session
(``SessionOptions.intra_op_num_threads`` through ``NodeInfo.intra_op_threads``; 0 means one per
core, as onnxruntime's default).

Why not numba's ``parallel=True``: its threading layers either spin while idle without
bound (OpenMP, which makes a busy machine far slower) or abort the process when two threads
call in at once (workqueue); sessions are run from several threads and from forked workers.
Any number of runs may use this pool at once (a call takes the threads that are idle and runs
the rest of its work itself, so nested or concurrent calls never wait for each other), and a
forked child starts a new one.

The hand-off: on the 2-vCPU VMs measured, a thread that sleeps lets its CPU halt, and waking
it costs 20-40 µs. Where numba is available, a worker and the caller waiting for it therefore
spin on a flag in compiled code that released the GIL (:mod:`.spin_wait`) for up to
:data:`SPIN_MICROSECONDS`, then sleep; a 2-piece round trip went from about 60 to 20 µs. A
worker's piece runs Python glue around its compiled loops or BLAS, so it must take the GIL,
and asking while the caller holds it puts it to sleep: a worker that saw its piece spins
:data:`SETTLE_MICROSECONDS` more, by when the caller is in its own piece's compiled code
(MobileNetV2 at 2 threads 8.7 -> 8.0-8.2 ms with 3-8 µs; round trip about 10 µs). An earlier
try, with workers spinning but the caller sleeping on a lock, was slower (75 µs): both sides
must spin. Work under ``min_work`` units (the kernel's estimate) stays on the calling thread,
so a piece is worth at least about 40 µs of one core.

Spinning on a busy machine takes scheduler slices from the very threads it waits for (2 ms
spins: MobileNetV2 at 2 threads beside 2 busy processes went from 14 to 184 ms). The pool
watches for it: a spinning worker that has not seen its piece by the time the caller ended
its own, or a caller whose piece got under :data:`DESCHEDULED` of a CPU, is a strike, and
:data:`STRIKES` in a row stop all spinning for :data:`QUIET_SECONDS` (doubled while the
machine stays busy). ``benchmarks/busy_machine.py`` measures ort and onnxruntime idle and
beside one busy process per CPU.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

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


#: slots of a worker's flags (int64 words a cache line apart, so the two sides' stores do
#: not share a line): the last piece started, the last piece the worker saw, the last piece
#: done, whether the worker sleeps, whether the caller sleeps waiting for the piece
_GO, _SEEN, _DONE, _WORKER_SLEEPS, _CALLER_SLEEPS = 0, 8, 16, 24, 32
#: how long each side spins before it sleeps: a worker after its last piece, a caller waiting
#: for a piece
SPIN_MICROSECONDS = 300
#: how long a worker that saw its piece keeps spinning before it takes the GIL: by then the
#: caller is in its own piece's compiled code (a worker that asks for the GIL while the
#: caller holds it sleeps, and waking it again cost 20-40 µs)
SETTLE_MICROSECONDS = 5
#: a busy machine: when a spinning worker had not even seen its piece by the time the caller
#: finished a piece of at least MIN_CALLER_PIECE_S, other processes hold the CPUs, and
#: spinning would take a scheduler slice from the very thread it waits for (MobileNetV2 at
#: 2 threads beside 2 busy processes: 14 ms sleeping, 184 ms spinning for 2 ms). After
#: STRIKES such hand-offs in a row the pool sleeps at once for QUIET_SECONDS, then tries
#: spinning again (one late worker now and then is the OS's business, not a busy machine);
#: a machine still busy when it tries doubles the quiet time, up to MAX_QUIET_SECONDS.
QUIET_SECONDS = 1.0
MAX_QUIET_SECONDS = 30.0
MIN_CALLER_PIECE_S = 20e-6
STRIKES = 3
#: a caller's piece that got less than this share of a CPU (its thread's CPU time against
#: the wall time) waited for a CPU: a sign of a busy machine too
DESCHEDULED = 0.7


def _spin_wait() -> Any:
    """:mod:`.spin_wait` (numba), or None where numba is missing (the workers then sleep on
    locks between pieces)."""
    global _spin, _spins, _settle
    if _spin is None:
        from .jit import numba_available

        if numba_available():
            from . import spin_wait

            rate = spin_wait.spins_per_microsecond()
            _spins = int(rate * SPIN_MICROSECONDS)
            _settle = int(rate * SETTLE_MICROSECONDS)
            _spin = spin_wait
        else:
            _spin = False
    return _spin or None


_spin: Any = None
_spins = 0
_settle = 0
_quiet_until = 0.0
_quiet_for = QUIET_SECONDS
_strikes = 0


def _strike() -> None:
    """One sign of a busy machine; STRIKES in a row quiet the pool down."""
    global _strikes
    _strikes += 1
    if _strikes >= STRIKES:
        _quiet_down()


def _quiet_down() -> None:
    """Stop spinning for a while: the machine is busy (see QUIET_SECONDS)."""
    global _quiet_until, _quiet_for, _strikes
    now = time.monotonic()
    # busy again soon after the last quiet spell ended: a longer one
    recent = _quiet_until and now - _quiet_until < _quiet_for
    _quiet_for = min(MAX_QUIET_SECONDS, _quiet_for * 2) if recent else QUIET_SECONDS
    _quiet_until = now + _quiet_for
    _strikes = 0


def _spin_budget() -> int:
    """Spins a wait may make now: none while the machine looks busy (see QUIET_SECONDS)."""
    return 0 if _quiet_until and time.monotonic() < _quiet_until else _spins


class _Worker:
    """One pool thread, handed one piece at a time. Where numba is available, each side
    waits for the other by spinning on a flag without the GIL (:mod:`.spin_wait`) for up to
    :data:`SPIN_MICROSECONDS`, then sleeps on a semaphore: a hand-off then costs no wake-up
    of a halted CPU while pieces follow each other. Otherwise two locks (a lock's acquire
    waits in C without the GIL)."""

    def __init__(self) -> None:
        self._spin = _spin_wait()
        self._flags = np.zeros(40, np.int64)
        self._sequence = 0
        self._asleep = False  # whether the worker slept when its current piece started
        self._go = threading.Semaphore(0)
        self._done = threading.Semaphore(0)
        self._task: tuple | None = None
        self.error: BaseException | None = None
        threading.Thread(target=self._loop, daemon=True, name="ort-intra-op").start()

    def _next_piece(self, sequence: int) -> None:
        """Wait for piece ``sequence``: spin, then sleep until the caller wakes this
        thread (announced in the flags first, so the caller cannot miss it)."""
        spin, flags = self._spin, self._flags
        if spin is None:
            self._go.acquire()
            return
        while not spin.wait_then_settle(flags, _GO, sequence, _spin_budget(), _settle, _SEEN):
            spin.publish(flags, _WORKER_SLEEPS, 1)
            if not spin.wait_then_settle(flags, _GO, sequence, 0, 0, _SEEN):
                self._go.acquire()
            spin.publish(flags, _WORKER_SLEEPS, 0)

    def _loop(self) -> None:
        sequence = 0
        while True:
            sequence += 1
            self._next_piece(sequence)
            work, start, stop = self._task
            try:
                work(start, stop)
            except BaseException as error:  # noqa: BLE001 - handed to the caller
                self.error = error
            finally:
                # drop every reference to the piece's arrays before saying it is done: the
                # session's arena reuses an output only once nothing else holds it
                self._task = work = None
                if self._spin is None:
                    self._done.release()
                else:
                    self._spin.publish(self._flags, _DONE, sequence)
                    if self._spin.peek(self._flags, _CALLER_SLEEPS):
                        self._done.release()

    def start(self, work: Callable[[int, int], object], start: int, stop: int) -> None:
        """Run ``work(start, stop)`` on this thread."""
        self.error = None
        self._task = (work, start, stop)
        self._sequence += 1
        if self._spin is None:
            self._go.release()
            return
        self._spin.publish(self._flags, _GO, self._sequence)
        self._asleep = bool(self._spin.peek(self._flags, _WORKER_SLEEPS))
        if self._asleep:
            self._go.release()

    def late(self, own_piece_s: float) -> bool | None:
        """Whether the worker, spinning when its piece started, had still not seen it after
        the caller's own piece of ``own_piece_s`` (a busy machine); None where that says
        nothing (a sleeping worker, a piece too short to tell, a pool without spinning)."""
        if self._spin is None or self._asleep or own_piece_s < MIN_CALLER_PIECE_S:
            return None
        return bool(self._spin.peek(self._flags, _SEEN) < self._sequence)

    def wait(self) -> BaseException | None:
        """Wait for the piece to end (spinning, then sleeping); its error, if any."""
        spin, flags = self._spin, self._flags
        if spin is None:
            self._done.acquire()
            return self.error
        while not spin.wait_until(flags, _DONE, self._sequence, _spin_budget()):
            spin.publish(flags, _CALLER_SLEEPS, 1)
            if not spin.wait_until(flags, _DONE, self._sequence, 0):
                self._done.acquire()
            spin.publish(flags, _CALLER_SLEEPS, 0)
        return self.error


def _judge_hand_off(own_piece_s: float, descheduled: bool, workers: list[_Worker]) -> None:
    """Count a strike where the caller's own piece (``own_piece_s`` long) was kept off its CPU
    (``descheduled``) or a worker came late; clear the strikes where a worker was on time
    and nothing was late."""
    global _strikes
    verdicts = [worker.late(own_piece_s) for worker in workers]
    if descheduled or True in verdicts:
        _strike()
    elif False in verdicts:
        _strikes = 0


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
    began, cpu = time.perf_counter(), time.thread_time()
    try:
        work(bounds[0], bounds[1])
    finally:
        own = time.perf_counter() - began
        # this thread waited for a CPU during its own piece
        descheduled = own >= MIN_CALLER_PIECE_S and time.thread_time() - cpu < DESCHEDULED * own
        _judge_hand_off(own, descheduled, workers)
        errors = [error for error in (worker.wait() for worker in workers) if error is not None]
        _give_workers(workers)
    if errors:
        raise errors[0]
