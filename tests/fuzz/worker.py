"""A fork server that loads and runs models with one runtime, each in a child of its own.

``python worker.py RUNTIME`` (``ort``, ``onnxruntime``, or ``selftest`` for the harness's tests) imports the runtime once, warms it up
on a tiny model (so plugin discovery and lazy imports are paid once, not per model), prints
``ready`` and then answers one JSON request per line on stdin::

    {"model": "/tmp/.../model/model.onnx", "timeout": 10.0, "memory": 4294967296}

with one JSON outcome per line on stdout. Each request is served by a forked child that chdirs
into the model's folder, limits its address space (``RLIMIT_AS``), file size and core dumps,
sends its stdout to /dev/null and its stderr to ``<runtime>.stderr`` in that folder, creates an
``InferenceSession`` on the CPU provider, feeds every input deterministic small values made from
``get_inputs()`` and runs it. The worker kills a child that outlives ``timeout`` (``hang``) and
reports a child that died of a signal or exited without an answer as a ``crash``.

Outcomes (the ``outcome`` key): ``accepted`` (loaded and ran; ``note`` says when inputs could
not be fed and only the load was checked), ``rejected`` (an exception while loading or running:
``phase`` is ``load`` or ``run``, ``cls`` its class), ``untyped`` (ort only: an exception that
is not an ``ort.OrtError``), ``crash`` and ``hang``.

This file imports nothing from the rest of the suite: it is started as a script.
"""

from __future__ import annotations

import json
import os
import resource
import select
import signal
import sys
import time
import traceback
import warnings

#: ONNX type strings from ``NodeArg.type`` -> numpy dtype names (None: a Python ``str`` array).
_DTYPES = {
    "tensor(float)": "float32", "tensor(double)": "float64", "tensor(float16)": "float16",
    "tensor(int8)": "int8", "tensor(int16)": "int16", "tensor(int32)": "int32",
    "tensor(int64)": "int64", "tensor(uint8)": "uint8", "tensor(uint16)": "uint16",
    "tensor(uint32)": "uint32", "tensor(uint64)": "uint64", "tensor(bool)": "bool",
    "tensor(string)": None,
}
#: A symbolic, missing or negative dimension is fed as this.
FREE_DIM = 2
#: Inputs with more elements than this are not fed (the model is only loaded).
MAX_FEED_ELEMENTS = 1 << 22
#: Largest file a child may write (it should write none).
MAX_FILE_BYTES = 64 << 20


class Unfeedable(Exception):
    """An input this worker cannot make a value for (its type or size)."""


class _SelfTestSession:
    """The ``selftest`` runtime's session: does what the model file's first word says
    (``crash``: SIGSEGV, ``hang``: sleep, ``exit``: exit without an answer, ``memory``:
    allocate 64 GiB, ``raise``: a ValueError at load, ``untyped``: a KeyError at run, anything
    else: run fine). It stands in for ort (its OrtError is ValueError) to test the worker."""

    def __init__(self, path, *args, **kwargs) -> None:
        with open(path, "rb") as f:
            self.word = f.read(16).split(b" ")[0].decode(errors="replace")
        if self.word == "raise":
            raise ValueError("selftest refuses this model")

    def get_inputs(self) -> list:
        return []

    def run(self, *args) -> list:
        if self.word == "crash":
            os.kill(os.getpid(), signal.SIGSEGV)
        elif self.word == "hang":
            time.sleep(3600)
        elif self.word == "exit":
            os._exit(3)
        elif self.word == "memory":
            return [bytearray(64 << 30)]
        elif self.word == "untyped":
            raise KeyError("selftest: not an OrtError")
        return []


class _SelfTest:
    """A stand-in runtime for the harness's own tests (no model is parsed)."""

    InferenceSession = _SelfTestSession
    OrtError = ValueError

    class SessionOptions:
        """Accepts any option."""


def _runtime(name: str):
    if name == "selftest":
        return _SelfTest
    if name == "ort":
        import ort
        return ort
    if name == "onnxruntime":
        import onnxruntime
        onnxruntime.set_default_logger_severity(3)
        return onnxruntime
    raise SystemExit(f"unknown runtime {name!r}: expected 'ort' or 'onnxruntime'")


def _feed(arg, np):
    """A deterministic small value for one ``NodeArg``."""
    type_name = arg.type
    if type_name.startswith("seq(") and type_name.endswith(")"):
        inner = type("Arg", (), {"type": type_name[4:-1], "shape": [FREE_DIM]})
        return [_feed(inner, np)]
    if type_name not in _DTYPES:
        raise Unfeedable(f"input '{arg.name}' has type {type_name}")
    shape = []
    for dim in arg.shape or []:
        shape.append(dim if isinstance(dim, int) and dim >= 0 else FREE_DIM)
    count = 1
    for dim in shape:
        count *= dim
    if count > MAX_FEED_ELEMENTS:
        raise Unfeedable(f"input '{arg.name}' has {count} elements")
    dtype = _DTYPES[type_name]
    if dtype is None:
        return np.array([f"s{i % 3}" for i in range(count)], dtype=object).reshape(shape)
    if dtype == "bool":
        return (np.arange(count) % 2 == 0).reshape(shape)
    values = np.arange(count) % 7 - 3
    if dtype.startswith("uint"):
        values = np.arange(count) % 5
    if dtype.startswith("float"):
        values = values * 0.5 + 0.25
    return values.astype(dtype).reshape(shape)


def _first_line(exc: BaseException, folder: str) -> str:
    """The first line of the message, the mutant's folder written as ``<folder>``."""
    text = str(exc).replace(folder, "<folder>").strip() or repr(exc)
    return text.splitlines()[0][:1000] if text else ""


def _serve_one(runtime, runtime_name: str, model_path: str) -> dict:
    """Load and run ``model_path``; the outcome as a dict (runs in the forked child)."""
    import numpy as np
    phase = "load"
    try:
        options = runtime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        session = runtime.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
        phase = "run"
        try:
            feeds = {arg.name: _feed(arg, np) for arg in session.get_inputs()}
        except Unfeedable as exc:
            return {"outcome": "accepted", "note": f"loaded only: {exc}"}
        session.run(None, feeds)
        return {"outcome": "accepted"}
    except BaseException as exc:  # noqa: BLE001 - every exception is an outcome
        typed = runtime_name == "onnxruntime" or isinstance(exc, runtime.OrtError)
        result = {"outcome": "rejected" if typed else "untyped", "phase": phase,
                  "cls": type(exc).__name__,
                  "message": _first_line(exc, os.path.dirname(os.path.dirname(model_path)))}
        if not typed:
            frames = traceback.extract_tb(exc.__traceback__)
            if frames:
                last = frames[-1]
                result["where"] = f"{os.path.basename(last.filename)}:{last.lineno} {last.name}"
        return result


def _child(runtime, runtime_name: str, request: dict, write_fd: int) -> None:
    """The forked child: limits, redirections, one load-and-run, the answer, exit."""
    try:
        folder = os.path.dirname(request["model"])
        os.chdir(folder)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        err = os.open(f"{runtime_name}.stderr", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(err, 2)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_FSIZE, (MAX_FILE_BYTES, MAX_FILE_BYTES))
        memory = int(request["memory"])
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        result = _serve_one(runtime, runtime_name, request["model"])
    except BaseException as exc:  # noqa: BLE001 - the harness must hear about it
        result = {"outcome": "crash", "message": f"worker child failed: {exc!r}"}
    data = (json.dumps(result) + "\n").encode()
    os.write(write_fd, data[:60000])
    os._exit(0)


def _stderr_tail(request: dict, runtime_name: str) -> str:
    path = os.path.join(os.path.dirname(request["model"]), f"{runtime_name}.stderr")
    try:
        with open(path, "rb") as f:
            lines = [line.strip() for line in f.read()[-4000:].decode(errors="replace").splitlines()]
    except OSError:
        return ""
    lines = [line for line in lines if line]
    return lines[-1][:400] if lines else ""


def serve(runtime, runtime_name: str, request: dict) -> dict:
    """Run one request in a forked child and return its outcome."""
    read_fd, write_fd = os.pipe()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        _child(runtime, runtime_name, request, write_fd)
    os.close(write_fd)
    deadline = started + float(request["timeout"])
    chunks = []
    timed_out = False
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = True
            break
        ready, _, _ = select.select([read_fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(read_fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read_fd)
    if timed_out:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    seconds = round(time.monotonic() - started, 3)
    if timed_out:
        return {"outcome": "hang", "message": f"no answer in {request['timeout']} s", "seconds": seconds}
    text = b"".join(chunks).decode(errors="replace").strip()
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        return {"outcome": "crash", "cls": signal.Signals(number).name,
                "message": _stderr_tail(request, runtime_name), "seconds": seconds}
    if not text:
        return {"outcome": "crash", "cls": f"exit {os.WEXITSTATUS(status)}",
                "message": _stderr_tail(request, runtime_name), "seconds": seconds}
    result = json.loads(text)
    result["seconds"] = seconds
    return result


def _warm_up(runtime) -> None:
    """Load and run a one-node model so lazy imports and plugin discovery happen here, once."""
    if runtime is _SelfTest:
        return
    import numpy as np
    import onnx
    from onnx import TensorProto, helper
    graph = helper.make_graph(
        [helper.make_node("Relu", ["X"], ["Y"])], "warm",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    session = runtime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    session.run(None, {"X": np.ones(1, np.float32)})
    del onnx


def main(argv: list[str]) -> int:
    """Serve requests for the runtime named in ``argv[1]`` until stdin closes."""
    warnings.simplefilter("ignore")
    runtime_name = argv[1]
    runtime = _runtime(runtime_name)
    _warm_up(runtime)
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        out.write(json.dumps(serve(runtime, runtime_name, json.loads(line))) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
