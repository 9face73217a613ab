"""The ONNX backend API over ort (``onnx.backend.base.Backend``).

    import ort_backend
    rep = ort_backend.prepare(model, "CPU")
    outputs = rep.run([x])

Module-level functions mirror :class:`OrtBackend`'s class methods, which is the form
``onnx.backend.test.BackendTest`` expects.
"""

from .backend import OrtBackend, OrtBackendRep

__all__ = [
    "OrtBackend",
    "OrtBackendRep",
    "is_compatible",
    "prepare",
    "run_model",
    "run_node",
    "supports_device",
]

is_compatible = OrtBackend.is_compatible
prepare = OrtBackend.prepare
run_model = OrtBackend.run_model
run_node = OrtBackend.run_node
supports_device = OrtBackend.supports_device
