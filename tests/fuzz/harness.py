"""Running mutants: each one loaded and run by each runtime in a forked child under limits.

A :class:`Harness` owns one temporary directory and, per job, one fork-server worker per
runtime (:mod:`worker`, a long-lived process that imported its runtime once). For every mutant
it writes the model, its external data and its links into a fresh folder of the temporary
directory, asks each runtime's worker for an :class:`Outcome`, and deletes the folder. The
workers run with that directory as working directory and ``TMPDIR``, one BLAS/OpenMP thread,
and their children under ``RLIMIT_AS`` (``memory``), no core files and a file-size cap, so
nothing a mutant does can leave files behind: leaving the ``with`` block removes everything.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import queue
import select
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import onnx

from .mutate import FOLDER_TOKEN, MODEL_PATH, Mutant
from .walk import tensors

__all__ = ["RUNTIMES", "Outcome", "Result", "Harness", "materialize"]

#: The runtimes compared: ort, and onnxruntime as the oracle.
RUNTIMES = ("ort", "onnxruntime")
WORKER = Path(__file__).with_name("worker.py")
#: Seconds one mutant may take in one runtime before it counts as a hang.
DEFAULT_TIMEOUT = 10.0
#: Address space of one child (numpy and onnxruntime need some hundreds of MiB for themselves).
DEFAULT_MEMORY = 4 << 30
#: Seconds a worker may take to import its runtime and warm up.
START_TIMEOUT = 120.0


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What one runtime did with one mutant."""

    kind: str  # accepted | rejected | untyped | crash | hang
    phase: str = ""  # load | run, for rejected and untyped
    cls: str = ""  # the exception class, or the signal of a crash
    message: str = ""  # first line of the exception's message
    note: str = ""  # for accepted: when inputs could not be fed
    where: str = ""  # for untyped: file:line function that raised
    seconds: float = 0.0

    @classmethod
    def from_json(cls, data: dict) -> Outcome:
        """An outcome from a worker's answer."""
        return cls(data.get("outcome", "crash"), data.get("phase", ""), data.get("cls", ""),
                   data.get("message", ""), data.get("note", ""), data.get("where", ""),
                   float(data.get("seconds", 0.0)))

    @property
    def accepted(self) -> bool:
        """Loaded and ran."""
        return self.kind == "accepted"

    @property
    def label(self) -> str:
        """``accepted``, ``rejected:Class@phase``, ``untyped:Class@phase``, ``crash:SIG``, ``hang``."""
        if self.kind in ("rejected", "untyped"):
            return f"{self.kind}:{self.cls}@{self.phase}"
        if self.kind == "crash":
            return f"crash:{self.cls}"
        return self.kind


@dataclasses.dataclass(frozen=True)
class Result:
    """A mutant and each runtime's outcome."""

    mutant: Mutant
    outcomes: dict[str, Outcome]

    @property
    def ort(self) -> Outcome:
        """ort's outcome."""
        return self.outcomes["ort"]

    @property
    def oracle(self) -> Outcome | None:
        """onnxruntime's outcome (None when it was not run)."""
        return self.outcomes.get("onnxruntime")

    @property
    def comparable(self) -> bool:
        """Whether onnxruntime gave an answer to compare with (it did not crash or hang)."""
        return self.oracle is not None and self.oracle.kind in ("accepted", "rejected")

    @property
    def agrees(self) -> bool:
        """Both accepted, or both refused (at whatever phase); True when not comparable."""
        return not self.comparable or self.ort.accepted == self.oracle.accepted

    @property
    def phase_matches(self) -> bool:
        """Both accepted, or both refused in the same phase."""
        return self.agrees and (self.ort.accepted or not self.comparable
                                or self.ort.phase == self.oracle.phase)

    @property
    def problems(self) -> list[str]:
        """What is wrong with ort's outcome: crash, hang, untyped, disagrees."""
        found = [self.ort.kind] if self.ort.kind in ("crash", "hang", "untyped") else []
        if not self.agrees:
            found.append("disagrees")
        return found


def _fill_template(data: bytes, folder: str) -> bytes:
    model = onnx.ModelProto.FromString(data)
    for tensor in tensors(model):
        for entry in tensor.external_data:
            entry.value = entry.value.replace(FOLDER_TOKEN, folder)
    return model.SerializeToString()


def _inside(folder: Path, relative: str) -> Path:
    path = folder / relative
    if Path(relative).is_absolute() or ".." in Path(relative).parts:
        raise ValueError(f"mutant file '{relative}' would be written outside its folder")
    return path


def materialize(mutant: Mutant, folder: Path) -> Path:
    """Write ``mutant`` into the empty ``folder``; return the model file's path."""
    model_path = _inside(folder, MODEL_PATH)
    model_path.parent.mkdir(parents=True, exist_ok=True)
    data = _fill_template(mutant.model, str(folder)) if mutant.template else mutant.model
    for relative, blob in mutant.files.items():
        path = _inside(folder, relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(blob)
    for relative, target in mutant.links.items():
        path = _inside(folder, relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target.replace(FOLDER_TOKEN, str(folder)), path)
    model_path.write_bytes(data)
    return model_path


class WorkerLost(RuntimeError):
    """A fork-server worker died or stopped answering (a harness failure, not a mutant's)."""


class _Worker:
    """One fork-server process for one runtime."""

    def __init__(self, runtime: str, root: Path, env: dict[str, str], label: str) -> None:
        self.runtime = runtime
        self._root = root
        self._env = env
        self._log = root / f"worker-{label}.log"
        self._process: subprocess.Popen | None = None

    def _start(self) -> None:
        with open(self._log, "ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, str(WORKER), self.runtime], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=log, cwd=self._root, env=self._env)
        line = self._read_line(START_TIMEOUT)
        if line != "ready":
            self.close()
            tail = self._log.read_text(errors="replace")[-2000:]
            raise WorkerLost(f"{self.runtime} worker did not start: {line!r}\n{tail}")

    def _read_line(self, timeout: float) -> str:
        stdout = self._process.stdout
        ready, _, _ = select.select([stdout], [], [], timeout)
        if not ready:
            return ""
        return stdout.readline().decode(errors="replace").strip()

    def ask(self, model_path: Path, timeout: float, memory: int) -> Outcome:
        """The outcome of loading and running ``model_path``."""
        if self._process is None or self._process.poll() is not None:
            self._start()
        request = {"model": str(model_path), "timeout": timeout, "memory": memory}
        try:
            self._process.stdin.write((json.dumps(request) + "\n").encode())
            self._process.stdin.flush()
        except BrokenPipeError:
            self.close()
            return Outcome("crash", cls="worker-lost", message="the worker's stdin closed")
        line = self._read_line(timeout + 60.0)
        if not line:
            self.close()
            return Outcome("crash", cls="worker-lost", message="the worker stopped answering")
        return Outcome.from_json(json.loads(line))

    def close(self) -> None:
        """Stop the worker process."""
        process, self._process = self._process, None
        if process is None:
            return
        try:
            process.stdin.close()
            process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()
            process.wait()
        process.stdout.close()


class Harness:
    """Runs mutants through each runtime; use as a context manager.

    ``jobs`` mutants run at a time (each job has its own worker per runtime); a child taking
    longer than ``timeout`` seconds is a hang; ``memory`` is each child's RLIMIT_AS in bytes.
    """

    def __init__(self, runtimes: Sequence[str] = RUNTIMES, jobs: int = 1,
                 timeout: float = DEFAULT_TIMEOUT, memory: int = DEFAULT_MEMORY) -> None:
        self.runtimes = tuple(runtimes)
        self.jobs = max(1, jobs)
        self.timeout = timeout
        self.memory = memory
        self._root: Path | None = None
        self._slots: queue.Queue = queue.Queue()
        self._workers: list[_Worker] = []
        self._count = 0
        self._lock = threading.Lock()

    def __enter__(self) -> Harness:
        self._root = Path(tempfile.mkdtemp(prefix="ort-fuzz-"))
        scratch = self._root / "tmp"
        scratch.mkdir()
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
                   PYTHONDONTWRITEBYTECODE="1", PYTHONWARNINGS="ignore", TMPDIR=str(scratch))
        for job in range(self.jobs):
            slot = {rt: _Worker(rt, self._root, env, f"{rt}-{job}") for rt in self.runtimes}
            self._workers.extend(slot.values())
            self._slots.put(slot)
        return self

    def __exit__(self, *exc_info) -> None:
        for worker in self._workers:
            worker.close()
        shutil.rmtree(self._root, ignore_errors=True)

    def _run_one(self, mutant: Mutant) -> Result:
        with self._lock:
            self._count += 1
            folder = self._root / f"m{self._count}"
        slot = self._slots.get()
        try:
            folder.mkdir()
            model_path = materialize(mutant, folder)
            outcomes = {rt: slot[rt].ask(model_path, self.timeout, self.memory) for rt in self.runtimes}
        finally:
            self._slots.put(slot)
            shutil.rmtree(folder, ignore_errors=True)
        return Result(mutant, outcomes)

    def run(self, mutants: Iterable[Mutant],
            progress: Callable[[Result], None] | None = None) -> list[Result]:
        """Every mutant's :class:`Result`, in the order given."""
        mutants = list(mutants)
        with concurrent.futures.ThreadPoolExecutor(self.jobs) as pool:
            futures = [pool.submit(self._run_one, m) for m in mutants]
            results = []
            for future in futures:
                results.append(future.result())
                if progress is not None:
                    progress(results[-1])
        return results
