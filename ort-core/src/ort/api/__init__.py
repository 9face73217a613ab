"""The public API: what ``import ort`` offers a user of ONNX Runtime's Python API
(``InferenceSession``, ``SessionOptions``, ``RunOptions``, ``OrtValue``, ``IOBinding``, model
metadata, provider selection). ``ort/__init__.py`` re-exports all of it.
"""

from .iobinding import IOBinding
from .metadata import ModelMetadata, NodeArg
from .options import ExecutionMode, ExecutionOrder, GraphOptimizationLevel, RunOptions, SessionOptions
from .ortvalue import OrtValue
from .providers import get_all_providers, get_available_providers, unavailable_providers
from .session import InferenceSession, PartitionReport

__all__ = ["IOBinding", "ModelMetadata", "NodeArg", "ExecutionMode", "ExecutionOrder",
           "GraphOptimizationLevel", "RunOptions", "SessionOptions", "OrtValue",
           "get_all_providers", "get_available_providers", "unavailable_providers",
           "InferenceSession", "PartitionReport"]
