"""Holding numpy's BLAS to one thread while runs are in progress.

numpy's matrix products run on its BLAS library's own thread pool, whose threads spin while
they wait for work. On a machine whose cores are busy with other processes, every
multi-threaded BLAS call then waits for descheduled threads, a scheduler slice per call: a
CNN that ran in 16 ms took 214 ms with OpenBLAS's default threads under load (onnxruntime: 8
to 22 ms). Sessions therefore run BLAS single-threaded, whatever
``SessionOptions.intra_op_num_threads`` says, and providers split large products over their
own threads, which sleep when idle (the CPU provider's ``intra_op`` pool, sized by
``intra_op_num_threads``; 0 means one per core). The process's count is put back when the last
run in progress ends. BLAS offers no per-call control, so the count is process-wide while runs
are in progress.

Small models pay for every microsecond of this per run, so the libraries are found once per
process (through threadpoolctl) and OpenBLAS, numpy's own BLAS, is driven through its C
functions directly (about 0.1 µs a call; threadpoolctl's Python wrappers cost about 0.7 µs);
a count that is already right is not set again.

Concurrent runs (several threads, several sessions) share one account of the saved count:
the first run to start saves it, the last to end restores it, so interleaved runs can never
leave the process with a lowered count (before, a run that saved another run's temporary
count restored that one).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

__all__ = ["BlasThreadLimit", "blas_thread_controls", "may_call_blas"]


class _Control:
    """Get and set one BLAS library's thread count (``path``: the library's file)."""

    __slots__ = ("get", "set", "path")

    def __init__(self, get: Callable[[], int], set: Callable[[int], Any]) -> None:  # noqa: A002
        self.get = get
        self.set = set
        self.path: str | None = None


_controls: list[_Control] | None = None
_modules_seen = -1
_discovery_lock = threading.Lock()


def _openblas_control(lib: Any) -> _Control | None:
    """Raw C functions of an OpenBLAS library threadpoolctl found (None if not OpenBLAS or
    its symbols are not where threadpoolctl looks)."""
    dynlib = getattr(lib, "dynlib", None)
    if getattr(lib, "internal_api", None) != "openblas" or dynlib is None:
        return None
    for getter_name in getattr(type(lib), "check_symbols", ()):
        getter = getattr(dynlib, getter_name, None)
        setter = getattr(dynlib, getter_name.replace("get_num_threads", "set_num_threads"), None)
        if getter is not None and setter is not None:
            if getattr(lib, "threading_layer", None) == "openmp":  # per-thread pools
                omp = getattr(dynlib, "omp_get_max_threads", None)
                if omp is None:
                    return None
                getter = omp
            return _Control(getter, setter)
    return None


def blas_thread_controls() -> list[_Control]:
    """The thread controls of every BLAS library loaded in the process. Libraries are found
    again (about 0.3 ms) when modules were imported since the last search, since an import
    (scipy, say) may load another BLAS; controls of libraries found before are kept."""
    global _controls, _modules_seen
    if _controls is None or _modules_seen != len(sys.modules):
        with _discovery_lock:
            if _controls is None or _modules_seen != len(sys.modules):
                from threadpoolctl import ThreadpoolController

                known = {control.path: control for control in _controls or ()}
                found = []
                for lib in ThreadpoolController().select(user_api="blas").lib_controllers:
                    path = getattr(lib, "filepath", None)
                    if path in known:
                        found.append(known[path])
                        continue
                    fast = _openblas_control(lib)
                    control = fast if fast is not None \
                        else _Control(lib.get_num_threads, lib.set_num_threads)
                    control.path = path
                    found.append(control)
                _modules_seen = len(sys.modules)
                _controls = found
    return _controls


class _Account:
    """The process's one account of runs holding the BLAS thread count: the count each
    library had before the first run in progress, per library (a library found while runs
    are in progress joins the account when a run next enters)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.holders = 0
        self.saved: dict[int, tuple[_Control, int]] = {}
        self.current: dict[int, int] = {}

    def enter(self, controls: list[_Control], threads: int) -> None:
        with self.lock:
            self.holders += 1
            for control in controls:
                key = id(control)
                if key not in self.saved:
                    count = control.get()
                    self.saved[key] = (control, count)
                    self.current[key] = count
                if self.current[key] != threads:
                    control.set(threads)
                    self.current[key] = threads

    def leave(self, controls: list[_Control]) -> None:
        with self.lock:
            self.holders -= 1
            if self.holders == 0:
                for key, (control, saved) in self.saved.items():
                    if self.current[key] != saved:
                        control.set(saved)
                self.saved.clear()
                self.current.clear()


_ACCOUNT = _Account()


#: op types whose kernels may call BLAS (matrix products, convolutions, recurrences, SVMs,
#: linear algebra), matched as substrings of the op type. ai.onnx.ml's LinearClassifier and
#: LinearRegressor are left out on purpose: they run a compiled loop up to large batches
#: (their one BLAS product beyond that is a single call), and the bound's ~3 µs a run is a
#: third of a logistic regression's run at batch 1.
_BLAS_OP_WORDS = ("MatMul", "Gemm", "Conv", "Attention", "LSTM", "GRU", "RNN", "Einsum",
                  "SVM", "Det", "Inverse", "Gemv", "Embed", "Beam", "Greedy", "Sampling",
                  "Whisper", "Moe", "MoE", "Qwen", "Dot")


def may_call_blas(model: Any) -> bool:
    """Whether a run of ``model`` (a ModelProto) may call BLAS: an op of its graph, a subgraph
    or a local function is one of :data:`_BLAS_OP_WORDS`. Runs of other models skip the
    thread bound (about 3 µs a run)."""
    from onnx import AttributeProto

    graphs = [model.graph] + [function for function in model.functions]
    while graphs:
        graph = graphs.pop()
        for node in graph.node:
            if any(word in node.op_type for word in _BLAS_OP_WORDS):
                return True
            for attribute in node.attribute:
                if attribute.type == AttributeProto.GRAPH:
                    graphs.append(attribute.g)
                elif attribute.type == AttributeProto.GRAPHS:
                    graphs.extend(attribute.graphs)
    return False


class BlasThreadLimit:
    """A reusable context manager limiting every loaded BLAS library to ``threads`` for the
    duration of a run (``threads <= 0``: a no-op)."""

    def __init__(self, threads: int) -> None:
        self.threads = int(threads)
        self._controls = blas_thread_controls() if self.threads > 0 else []

    @property
    def active(self) -> bool:
        """Whether there is anything to limit."""
        return bool(self._controls)

    def __enter__(self) -> BlasThreadLimit:
        _ACCOUNT.enter(self._controls, self.threads)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        _ACCOUNT.leave(self._controls)
