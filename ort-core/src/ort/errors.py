"""The exception hierarchy of ort.

Class names match ONNX Runtime's (``onnxruntime.capi.onnxruntime_pybind11_state``) so code that
catches ``InvalidArgument`` or ``Fail`` keeps working after ``import ort as onnxruntime``. Unlike
ONNX Runtime, every class also derives from a common base :class:`OrtError` and from the builtin
that fits it best (``InvalidArgument`` is a ``ValueError``, ``NoSuchFile`` a
``FileNotFoundError``, ``NotImplemented`` a ``NotImplementedError``), so ordinary Python
``except`` clauses work too.

Messages keep ONNX Runtime's ``[ONNXRuntimeError] : <code> : <NAME> : <message>`` prefix so that
logs stay greppable the same way.
"""

from __future__ import annotations

__all__ = [
    "OrtError",
    "Fail",
    "InvalidArgument",
    "NoSuchFile",
    "NoModel",
    "EngineError",
    "RuntimeException",
    "InvalidProtobuf",
    "ModelLoaded",
    "NotImplemented",
    "InvalidGraph",
    "EPFail",
    "ModelLoadCanceled",
    "ModelRequiresCompilation",
    "NotFound",
    "DeviceReset",
]


class OrtError(Exception):
    """Base class of every error raised by ort.

    ``code`` and ``status`` are ONNX Runtime's numeric status code and its name; ``message`` is
    the text without the ``[ONNXRuntimeError]`` prefix.
    """

    code: int = 1
    status: str = "FAIL"

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(f"[ONNXRuntimeError] : {self.code} : {self.status} : {message}")


class Fail(OrtError, RuntimeError):
    """A generic failure, e.g. a kernel that raised while running a node."""

    code, status = 1, "FAIL"


class InvalidArgument(OrtError, ValueError):
    """A caller passed a wrong argument: unknown input name, wrong dtype, rank or shape."""

    code, status = 2, "INVALID_ARGUMENT"


class NoSuchFile(OrtError, FileNotFoundError):
    """A model or data file does not exist."""

    code, status = 3, "NO_SUCHFILE"


class NoModel(OrtError, RuntimeError):
    """An operation needs a loaded model and there is none."""

    code, status = 4, "NO_MODEL"


class EngineError(OrtError, RuntimeError):
    """An internal error of the execution engine."""

    code, status = 5, "ENGINE_ERROR"


class RuntimeException(OrtError, RuntimeError):
    """An unexpected error at run time."""

    code, status = 6, "RUNTIME_EXCEPTION"


class InvalidProtobuf(OrtError, ValueError):
    """The model bytes are not a valid ONNX protobuf (truncated, corrupt, not a model)."""

    code, status = 7, "INVALID_PROTOBUF"


class ModelLoaded(OrtError, RuntimeError):
    """A model was already loaded."""

    code, status = 8, "MODEL_LOADED"


class NotImplemented(OrtError, NotImplementedError):  # noqa: A001 - ONNX Runtime's name
    """No provider has a kernel for a node (op, domain, opset or element type)."""

    code, status = 9, "NOT_IMPLEMENTED"


class InvalidGraph(OrtError, ValueError):
    """The model is not a valid ONNX graph (type errors, dangling values, cycles)."""

    code, status = 10, "INVALID_GRAPH"


class EPFail(OrtError, RuntimeError):
    """An execution provider failed (could not start, or failed while running)."""

    code, status = 11, "EP_FAIL"


class ModelLoadCanceled(OrtError, RuntimeError):
    """Model loading was canceled."""

    code, status = 12, "MODEL_LOAD_CANCELED"


class ModelRequiresCompilation(OrtError, RuntimeError):
    """The model needs a compiling provider and compilation is disabled."""

    code, status = 13, "MODEL_REQUIRES_COMPILATION"


class NotFound(OrtError, LookupError):
    """A named item (configuration entry, provider, value) was not found."""

    code, status = 14, "NOT_FOUND"


class DeviceReset(OrtError, RuntimeError):
    """The device was reset and its state is lost."""

    code, status = 15, "DEVICE_RESET"
