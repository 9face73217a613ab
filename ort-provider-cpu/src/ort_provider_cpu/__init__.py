"""ort-provider-cpu: the ``CPUExecutionProvider`` of ort, numpy kernels for the ONNX operators.

Installed, it registers itself through the ``ort`` entry point (see :mod:`ort_provider_cpu.plugin`);
nothing needs to import this package directly.
"""

from .provider import CPUExecutionProvider

__all__ = ["CPUExecutionProvider", "__version__"]

__version__ = "0.1.0"
