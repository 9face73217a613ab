"""ONNX Runtime's exception classes under their original module path (see :mod:`ort.errors`)."""

from ..errors import *  # noqa: F403
from ..errors import __all__  # noqa: F401
