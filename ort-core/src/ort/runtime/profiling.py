"""Session profiling in ONNX Runtime's format: a Chrome-trace JSON array of complete events.

``SessionOptions.enable_profiling`` turns it on; ``InferenceSession.end_profiling()`` writes
``<profile_file_prefix>_<YYYY-MM-DD_HH-MM-SS_mmm>.json`` and returns its name. Session events
(``cat: "Session"``) are named ``model_loading_uri``, ``session_initialization``,
``model_run`` and ``SequentialExecutor::Execute``; node events (``cat: "Node"``) are named
``<node name>_kernel_time`` with ``args`` ``op_name``, ``provider``, ``node_index``,
``input_type_shape``, ``output_type_shape``, ``activation_size``, ``parameter_size`` and
``output_size``. The file opens in Perfetto and chrome://tracing.
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import datetime
from typing import Any

import numpy as np

from ..element_types import dtype_name

__all__ = ["Profiler", "type_shapes"]


def _type_shape(value: Any) -> dict[str, list[int]]:
    if hasattr(value, "dtype") and hasattr(value, "shape"):
        try:
            name = dtype_name(value.dtype)
        except (KeyError, ValueError):
            name = str(value.dtype)
        return {name: [int(d) for d in value.shape]}
    if isinstance(value, list):
        return {"sequence": [len(value)]}
    if isinstance(value, dict):
        return {"map": [len(value)]}
    return {"none": []}


def type_shapes(values: list[Any]) -> list[dict[str, list[int]]]:
    """``[{"float": [1, 3, 8, 8]}, ...]`` for a node's inputs or outputs."""
    return [_type_shape(v) for v in values]


def _nbytes(values: list[Any]) -> int:
    return int(sum(getattr(v, "nbytes", 0) for v in values))


class Profiler:
    """Collects events of one session; :meth:`end` writes them out."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix or "onnxruntime_profile_"
        self.start_ns = time.time_ns()
        self._origin = time.perf_counter_ns()
        self._pid = os.getpid()
        self._events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.active = True

    def now_us(self) -> float:
        """Microseconds since the profiler started."""
        return (time.perf_counter_ns() - self._origin) / 1000.0

    def add(self, category: str, name: str, start_us: float, end_us: float,
            args: dict[str, Any] | None = None) -> None:
        """Record one complete event."""
        event = {"cat": category, "pid": self._pid, "tid": threading.get_ident() % 2**31,
                 "dur": int(round(end_us - start_us)), "ts": int(round(start_us)), "ph": "X",
                 "name": name, "args": args or {}}
        with self._lock:
            self._events.append(event)

    def node_event(self, name: str, op_type: str, provider: str, node_index: int,
                   inputs: list[Any], outputs: list[Any], parameter_bytes: int,
                   start_us: float, end_us: float) -> None:
        """Record one node's kernel time with ONNX Runtime's ``args``."""
        self.add("Node", f"{name}_kernel_time", start_us, end_us, {
            "op_name": op_type,
            "provider": provider,
            "node_index": str(node_index),
            "input_type_shape": type_shapes(inputs),
            "output_type_shape": type_shapes(outputs),
            "activation_size": str(_nbytes(inputs) - parameter_bytes),
            "parameter_size": str(parameter_bytes),
            "output_size": str(_nbytes(outputs)),
        })

    def end(self) -> str:
        """Write the profile and return its file name ('' if already written)."""
        if not self.active:
            return ""
        self.active = False
        stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S_") + f"{datetime.now().microsecond // 1000:03d}"
        path = f"{self.prefix}_{stamp}.json"
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        with self._lock:
            events = list(self._events)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("[\n")
            handle.write(",\n".join(json.dumps(e, default=_jsonable) for e in events))
            handle.write("\n]\n")
        return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
