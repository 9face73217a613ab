"""ort-provider-cuda: the ``CUDAExecutionProvider`` of ort, running kernels with cupy.

Importing this package does not import cupy; cupy is imported when the provider is checked
for availability or created.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
