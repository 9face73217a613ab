"""ort: ONNX Runtime's Python API, rebuilt in Python as a plugin framework.

Use it like ``onnxruntime``::

    import ort
    sess = ort.InferenceSession("model.onnx", providers=["CPUExecutionProvider"])
    outputs = sess.run(None, {"input": x})

Execution providers are separate distributions (``ort-provider-cpu``, ``ort-provider-cuda``,
third-party ones) found through the entry-point group ``ort`` the first time they are needed;
``import ort`` itself loads none of them.
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
from .hookspecs import hookimpl
from .kernels import KernelTable, NodeInfo
from .metadata import ModelMetadata, NodeArg
from .options import ExecutionMode, ExecutionOrder, GraphOptimizationLevel, RunOptions, SessionOptions
from .ortvalue import OrtValue
from .iobinding import IOBinding
from .provider import ExecutionProvider, OrtAllocatorType, OrtDevice, OrtMemoryInfo, OrtMemType
from .providers import get_all_providers, get_available_providers, unavailable_providers
from .registry import ProviderSpec
from .session import InferenceSession, PartitionReport

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
    from .plugins import get_registry

    registry = get_registry()
    for name in get_available_providers():
        if registry.provider_spec(name).device_type != "cpu":
            return "GPU"
    return "CPU"
