"""ort: ONNX Runtime's Python API, rebuilt in Python as a plugin framework.

Use it like ``onnxruntime``::

    import ort
    sess = ort.InferenceSession("model.onnx", providers=["CPUExecutionProvider"])
    outputs = sess.run(None, {"input": x})

Execution providers are separate distributions (``ort-provider-cpu``, ``ort-provider-cuda``,
third-party ones) found through the entry-point group ``ort`` the first time they are needed;
``import ort`` itself loads none of them. Provider authors import :mod:`ort.ep`.

The package is layered; each layer imports only the ones below it (``docs/architecture.md``):
the base (:mod:`ort.errors`, :mod:`ort.element_types`) < :mod:`ort.ir` (models and graphs) <
:mod:`ort.ep` (the provider contract) < :mod:`ort.optimizer` < :mod:`ort.runtime`
(partitioner, compiler, executor) < :mod:`ort.api` (re-exported here) < :mod:`ort.tools`
(CLI, bench) and :mod:`ort.testing` (the oracle kit).
"""

from __future__ import annotations

from . import capi, errors
from ._version import __version__
from .errors import (
    EPFail,
    Fail,
    InvalidArgument,
    InvalidGraph,
    InvalidProtobuf,
    NoSuchFile,
    NotImplemented,
    OrtError,
    RuntimeException,
)
from .api import (
    ExecutionMode,
    ExecutionOrder,
    GraphOptimizationLevel,
    InferenceSession,
    IOBinding,
    ModelMetadata,
    NodeArg,
    OrtValue,
    PartitionReport,
    RunOptions,
    SessionOptions,
    get_all_providers,
    get_available_providers,
    unavailable_providers,
)
from .ep import (
    ExecutionProvider,
    KernelTable,
    NodeInfo,
    OrtAllocatorType,
    OrtDevice,
    OrtMemoryInfo,
    OrtMemType,
    ProviderSpec,
    get_registry,
    hookimpl,
)

__all__ = [
    "__version__",
    "errors",
    "InferenceSession",
    "SessionOptions",
    "RunOptions",
    "GraphOptimizationLevel",
    "ExecutionMode",
    "ExecutionOrder",
    "OrtValue",
    "OrtDevice",
    "OrtMemoryInfo",
    "OrtAllocatorType",
    "OrtMemType",
    "IOBinding",
    "NodeArg",
    "ModelMetadata",
    "PartitionReport",
    "get_all_providers",
    "get_available_providers",
    "unavailable_providers",
    "get_device",
    "get_version_string",
    "hookimpl",
    "KernelTable",
    "NodeInfo",
    "ExecutionProvider",
    "ProviderSpec",
    "OrtError",
    "Fail",
    "InvalidArgument",
    "InvalidGraph",
    "InvalidProtobuf",
    "NoSuchFile",
    "NotImplemented",
    "EPFail",
    "RuntimeException",
]

#: ONNX Runtime exposes its version under both names.
version = __version__
package_name = "ort-core"


def get_version_string() -> str:
    """The ort-core version."""
    return __version__


def get_device() -> str:
    """``'GPU'`` when a GPU provider is available here, else ``'CPU'`` (as ONNX Runtime)."""
    registry = get_registry()
    for name in get_available_providers():
        if registry.provider_spec(name).device_type != "cpu":
            return "GPU"
    return "CPU"
