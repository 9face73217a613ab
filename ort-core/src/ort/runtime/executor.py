"""The executor: one step loop, run sequentially or scheduled across threads, with observers.

:func:`execute` runs a :class:`~ort.runtime.plan.Plan`'s steps over a value list. Every mode
goes through the same step loop (:func:`_run_steps`): in plan order on the calling thread, or
one step at a time on a thread pool as soon as the steps producing its inputs have finished
(``ExecutionMode.ORT_PARALLEL``). What a run must honour is a :class:`RunState`: the
``RunOptions.terminate`` flag and the session's profiler. Its *watch* wraps each step (time it,
then check the flag) and costs nothing when there is nothing to watch.

A run's state reaches every plan the run executes: nested plans (Loop/Scan/If bodies, function
bodies, fused groups) find it with :func:`current_run`, on whichever thread the kernel calling
them runs, since the parallel scheduler hands each worker the caller's context. So a
terminated run stops inside a long Loop too, in every mode.
"""

from __future__ import annotations

import concurrent.futures as futures
import contextvars
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from ..errors import Fail, OrtError
from .plan import DISCARD_SLOT, Plan, Step

__all__ = ["execute", "RunState", "Terminated", "current_run", "Watch", "quiet_fp_begin",
           "quiet_fp_end"]

try:  # numpy >= 2 keeps its floating-point error state in a context variable
    from numpy._core._ufunc_config import _extobj_contextvar as _FP_STATE
    from numpy._core.umath import _make_extobj

    _FP_QUIET = _make_extobj(all="ignore")
except (ImportError, AttributeError, TypeError):  # pragma: no cover - older numpy
    _FP_STATE = None


def quiet_fp_begin() -> Any:
    """Silence numpy's floating-point warnings in this context until :func:`quiet_fp_end`
    (runs never warn about inf/nan results the spec defines). Setting numpy's context variable
    directly costs about 0.1 µs where ``np.errstate`` costs 0.9 µs, which small models pay on
    every run; ``np.errstate`` is the fallback where that variable does not exist."""
    if _FP_STATE is not None:
        return _FP_STATE.set(_FP_QUIET)
    state = np.errstate(all="ignore")
    state.__enter__()
    return state


def quiet_fp_end(token: Any) -> None:
    """Restore numpy's floating-point error state saved by :func:`quiet_fp_begin`."""
    if _FP_STATE is not None:
        _FP_STATE.reset(token)
    else:
        token.__exit__(None, None, None)

#: ``watch(step, inputs) -> results``: runs one step's compute with the run's observers.
Watch = Callable[[Step, list], Sequence[Any]]

_CURRENT_RUN: contextvars.ContextVar[RunState | None] = contextvars.ContextVar(
    "ort_current_run", default=None)


class Terminated(Fail):
    """A run stopped because ``RunOptions.terminate`` was set (ONNX Runtime's message)."""

    def __init__(self) -> None:
        super().__init__("Exiting due to terminate flag being set to true.")


class StepProfiler(Protocol):
    """What the executor needs of a profiler (:class:`ort.runtime.profiling.Profiler`)."""

    def now_us(self) -> float:
        """Microseconds since profiling started."""

    def node_event(self, name: str, op_type: str, provider: str, node_index: int,
                   inputs: list[Any], outputs: list[Any], parameter_bytes: int,
                   start_us: float, end_us: float) -> None:
        """Record one step."""


class _Flag(Protocol):
    terminate: bool


class RunState:
    """What every plan of one run honours.

    Args:
        options: the run's ``RunOptions`` (its ``terminate`` flag is read between steps), or
            None when the caller gave none (nothing can terminate the run).
        profiler: the session's profiler while profiling, else None. Steps of nested plans
            are not profiled (their node's step covers them), as in ONNX Runtime's profile.
    """

    __slots__ = ("_options", "watch", "nested")

    def __init__(self, options: _Flag | None = None, profiler: StepProfiler | None = None,
                 _top: bool = True) -> None:
        self._options = options
        self.watch: Watch | None = _make_watch(self.terminated if options is not None else None,
                                               profiler)
        self.nested: RunState = (RunState(options, None, _top=False)
                                 if _top and profiler is not None else self)

    def terminated(self) -> bool:
        """Whether the run was asked to stop."""
        options = self._options
        return options is not None and bool(options.terminate)

    def check(self) -> None:
        """Raise :class:`Terminated` if the run was asked to stop."""
        if self.terminated():
            raise Terminated()


def current_run() -> RunState | None:
    """The state of the run in progress in this context (nested plans honour it), if any."""
    return _CURRENT_RUN.get()


def _make_watch(terminated: Callable[[], bool] | None,
                profiler: StepProfiler | None) -> Watch | None:
    if profiler is None and terminated is None:
        return None
    if profiler is None:
        def watch(step: Step, inputs: list) -> Sequence[Any]:
            results = step.compute(*inputs)
            if terminated():
                raise Terminated()
            return results

        return watch

    def profiled(step: Step, inputs: list) -> Sequence[Any]:
        start = profiler.now_us()
        results = step.compute(*inputs)
        end = profiler.now_us()
        op_type, name = step.label
        profiler.node_event(name, op_type, step.provider, step.node_index, inputs,
                            list(results), step.parameter_bytes, start, end)
        if terminated is not None and terminated():
            raise Terminated()
        return results

    return profiled


def execute(plan: Plan, values: list[Any], run: RunState | None = None,
            steps: Sequence[Step] | None = None, pool: futures.Executor | None = None) -> None:
    """Run ``steps`` (default: all of the plan's; else a subset in plan order) over ``values``
    (a list from :meth:`Plan.new_values` with the feeds set), honouring ``run``; with
    ``pool``, independent steps run concurrently on it."""
    steps = plan.steps if steps is None else steps
    if run is None:
        if pool is None:
            _run_steps(values, steps, None)
        else:
            _run_parallel(plan, values, steps, None, pool)
        return
    run.check()
    token = _CURRENT_RUN.set(run.nested)
    try:
        if pool is None:
            _run_steps(values, steps, run.watch)
        else:
            _run_parallel(plan, values, steps, run.watch, pool,
                          run.terminated if run._options is not None else None)
    finally:
        _CURRENT_RUN.reset(token)


def _run_steps(values: list[Any], steps: Sequence[Step], watch: Watch | None,
               release: bool = True) -> None:
    """The step loop: each step's compute reads its input slots and fills its output slots;
    with ``release``, slots are emptied after their last use. One-input and one-output steps
    (most nodes) take a shorter path: per-node cost is what small models live on."""
    step = None
    try:
        for step in steps:
            slot = step.single_input
            if slot is not None:
                if watch is None:
                    results = step.compute(values[slot])
                else:
                    results = watch(step, [values[slot]])
            else:
                inputs = [values[i] for i in step.inputs]
                results = step.compute(*inputs) if watch is None else watch(step, inputs)
            slot = step.single_output
            if slot is not None:
                values[slot] = results[0]
            else:
                for slot, result in zip(step.outputs, results):
                    values[slot] = result
            if release:
                for slot in step.frees:
                    values[slot] = None
    except Terminated:
        raise
    except Exception as exc:
        raise step_error(step, exc) from exc


def step_error(step: Step | None, exc: BaseException) -> OrtError:
    """ONNX Runtime's message for a node that failed while running: :class:`Fail`, or the
    class of the ort error the kernel raised (a kernel raises ``InvalidArgument`` where
    onnxruntime's kernel returns that status, e.g. Tile's output-size limit)."""
    op_type, name = step.label if step is not None else ("?", "?")
    if isinstance(exc, OrtError):
        text, error = exc.message, type(exc)
    else:
        text, error = f"{type(exc).__name__}: {exc}", Fail
    return error(f"Non-zero status code returned while running {op_type} node. Name:'{name}' "
                 f"Status Message: {text}")


class _Dependencies:
    """Which steps wait for which (computed once per step list)."""

    def __init__(self, steps: Sequence[Step], keep: set[int]) -> None:
        self.steps = steps
        producer = {slot: i for i, step in enumerate(steps) for slot in step.outputs
                    if slot != DISCARD_SLOT}
        self.waiting = [0] * len(steps)
        self.dependents: list[list[int]] = [[] for _ in steps]
        self.consumers: dict[int, int] = {}
        for i, step in enumerate(steps):
            for slot in set(step.inputs):
                self.consumers[slot] = self.consumers.get(slot, 0) + 1
                source = producer.get(slot)
                if source is not None:
                    self.waiting[i] += 1
                    self.dependents[source].append(i)
        # values the run may release once their last reader finished: computed ones only
        self.releasable = {slot for slot in producer if slot not in keep}


def _dependencies(plan: Plan, steps: Sequence[Step]) -> _Dependencies:
    cache = plan.executor_memo
    found = cache.get(id(steps))
    if found is None or found.steps is not steps:
        found = cache[id(steps)] = _Dependencies(steps, set(plan.output_slots.values()))
    return found


#: How often (seconds) a parallel run waiting for its steps looks at the terminate flag.
_TERMINATE_POLL_S = 0.05


def _run_parallel(plan: Plan, values: list[Any], steps: Sequence[Step], watch: Watch | None,
                  pool: futures.Executor, terminated: Callable[[], bool] | None = None) -> None:
    """Schedule ``steps`` on ``pool``: a step is submitted once every step producing its
    inputs has finished; each runs through :func:`_run_steps` in the caller's context (so
    nested plans see the run), and values are released when their last reader finished.

    The pool is shared by the session's concurrent runs, so a step may wait in its queue
    behind other runs' long steps: the waiting run looks at ``terminated`` while it waits, and
    when it is set, withdraws its queued steps and stops (its started ones stop at their next
    step) instead of waiting for a worker."""
    deps = _dependencies(plan, steps)
    waiting = list(deps.waiting)
    consumers = dict(deps.consumers)

    def submit(i: int) -> futures.Future:
        context = contextvars.copy_context()
        return pool.submit(context.run, _run_steps, values, (steps[i],), watch, False)

    running = {submit(i): i for i in range(len(steps)) if waiting[i] == 0}
    timeout = _TERMINATE_POLL_S if terminated is not None else None
    try:
        while running:
            done, _ = futures.wait(running, timeout, return_when=futures.FIRST_COMPLETED)
            if not done and terminated is not None and terminated():
                raise Terminated()
            for future in done:
                i = running.pop(future)
                future.result()
                for slot in set(steps[i].inputs):
                    consumers[slot] -= 1
                    if consumers[slot] == 0 and slot in deps.releasable:
                        values[slot] = None
                for j in deps.dependents[i]:
                    waiting[j] -= 1
                    if waiting[j] == 0:
                        running[submit(j)] = j
    except BaseException:
        # queued steps never start (a cancelled future counts as done only once a worker
        # dequeues it: wait for the started ones alone); started ones finish or stop
        futures.wait([future for future in running if not future.cancel()])
        raise
