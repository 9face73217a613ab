"""``SessionOptions``, ``RunOptions`` and the enums they use, with ONNX Runtime's names and
defaults.

Both option classes reject attributes they do not have (a typo such as
``so.intra_op_threads = 2`` raises ``AttributeError`` instead of being silently ignored), as
ONNX Runtime's pybind classes do.
"""

from __future__ import annotations

import enum
from typing import Any

from ..errors import RuntimeException

__all__ = [
    "GraphOptimizationLevel",
    "ExecutionMode",
    "ExecutionOrder",
    "SessionOptions",
    "RunOptions",
]


class GraphOptimizationLevel(enum.IntEnum):
    """How much the graph is rewritten at session creation."""

    ORT_DISABLE_ALL = 0
    ORT_ENABLE_BASIC = 1
    ORT_ENABLE_EXTENDED = 2
    ORT_ENABLE_LAYOUT = 3
    ORT_ENABLE_ALL = 99


class ExecutionMode(enum.IntEnum):
    """Whether independent nodes may run concurrently."""

    ORT_SEQUENTIAL = 0
    ORT_PARALLEL = 1


class ExecutionOrder(enum.IntEnum):
    """The order nodes are scheduled in."""

    DEFAULT = 0
    PRIORITY_BASED = 1
    MEMORY_EFFICIENT = 2


class SessionOptions:
    """Configuration of a session (``onnxruntime.SessionOptions``)."""

    __slots__ = (
        "enable_cpu_mem_arena", "enable_mem_pattern", "enable_mem_reuse", "enable_profiling",
        "execution_mode", "execution_order", "graph_optimization_level", "inter_op_num_threads",
        "intra_op_num_threads", "log_severity_level", "log_verbosity_level", "logid",
        "optimized_model_filepath", "profile_file_prefix", "use_deterministic_compute",
        "use_per_session_threads", "_config", "_initializers", "_free_dims_by_name",
        "_free_dims_by_denotation",
    )

    def __init__(self) -> None:
        self.enable_cpu_mem_arena: bool = True
        self.enable_mem_pattern: bool = True
        self.enable_mem_reuse: bool = True
        self.enable_profiling: bool = False
        self.execution_mode: ExecutionMode = ExecutionMode.ORT_SEQUENTIAL
        self.execution_order: ExecutionOrder = ExecutionOrder.DEFAULT
        self.graph_optimization_level: GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL
        self.inter_op_num_threads: int = 0
        self.intra_op_num_threads: int = 0
        self.log_severity_level: int = 2
        self.log_verbosity_level: int = 0
        self.logid: str = ""
        self.optimized_model_filepath: str = ""
        self.profile_file_prefix: str = "onnxruntime_profile_"
        self.use_deterministic_compute: bool = False
        self.use_per_session_threads: bool = True
        self._config: dict[str, str] = {}
        self._initializers: dict[str, Any] = {}
        self._free_dims_by_name: dict[str, int] = {}
        self._free_dims_by_denotation: dict[str, int] = {}

    def add_session_config_entry(self, key: str, value: str) -> None:
        """Set a session configuration entry (both key and value are strings)."""
        self._config[str(key)] = str(value)

    def get_session_config_entry(self, key: str) -> str:
        """Return a configuration entry; raises if it was never set."""
        try:
            return self._config[key]
        except KeyError:
            raise RuntimeException(
                f"SessionOptions does not have configuration with key: {key}"
            ) from None

    def add_initializer(self, name: str, value: Any) -> None:
        """Replace the model's initializer ``name`` with ``value`` (ndarray or OrtValue)."""
        self._initializers[str(name)] = value

    def add_free_dimension_override_by_name(self, dim_name: str, dim_value: int) -> None:
        """Fix the symbolic dimension ``dim_name`` of the model's inputs to ``dim_value``."""
        self._free_dims_by_name[str(dim_name)] = int(dim_value)

    def add_free_dimension_override_by_denotation(self, denotation: str, dim_value: int) -> None:
        """Fix the input dimensions with this denotation (e.g. ``DATA_BATCH``) to ``dim_value``."""
        self._free_dims_by_denotation[str(denotation)] = int(dim_value)

    def config_entries(self) -> dict[str, str]:
        """All configuration entries set so far."""
        return dict(self._config)

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__ if not n.startswith("_"))
        return f"SessionOptions({fields})"


class RunOptions:
    """Configuration of one ``run`` call (``onnxruntime.RunOptions``).

    Setting :attr:`terminate` to True from another thread stops a run in progress between two
    nodes (and between Loop/Scan iterations); the run raises :class:`~ort.errors.Fail`.
    :attr:`run_tag` (ONNX Runtime's C API name for :attr:`logid`) labels the run in the
    ``ort`` logger's records; with ``log_severity_level`` 0 or 1 each run logs its tag and
    duration at INFO level.
    """

    __slots__ = ("log_severity_level", "log_verbosity_level", "logid",
                 "only_execute_path_to_fetches", "terminate", "_config")

    def __init__(self) -> None:
        self.log_severity_level: int = 2
        self.log_verbosity_level: int = 0
        self.logid: str = ""
        self.only_execute_path_to_fetches: bool = False
        self.terminate: bool = False
        self._config: dict[str, str] = {}

    @property
    def run_tag(self) -> str:
        """The run's tag (the same value as :attr:`logid`)."""
        return self.logid

    @run_tag.setter
    def run_tag(self, value: str) -> None:
        self.logid = str(value)

    def add_run_config_entry(self, key: str, value: str) -> None:
        """Set a run configuration entry."""
        self._config[str(key)] = str(value)

    def get_run_config_entry(self, key: str) -> str:
        """Return a run configuration entry; raises if it was never set."""
        try:
            return self._config[key]
        except KeyError:
            raise RuntimeException(f"RunOptions does not have configuration with key: {key}") from None
