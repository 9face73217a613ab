"""Compatibility package: ONNX Runtime code imports its exception classes from
``onnxruntime.capi.onnxruntime_pybind11_state``; with ``import ort as onnxruntime`` the same
path resolves here."""

from . import onnxruntime_pybind11_state

__all__ = ["onnxruntime_pybind11_state"]
