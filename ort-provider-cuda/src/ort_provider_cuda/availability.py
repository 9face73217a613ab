"""Whether CUDA can be used here, and if not, one sentence saying why and what to do.

The checks run in order and stop at the first failure: cupy imports (and is recent enough), the
CUDA driver answers, at least one device is visible, and the driver is new enough for the CUDA
runtime cupy was built for. ``device_id`` is checked when a provider is created, since
availability does not depend on options.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

__all__ = ["cuda_unavailable_reason", "MIN_CUPY"]

#: The oldest cupy release the provider is written against.
MIN_CUPY = (13, 0)
_INSTALL = "pip install 'ort-provider-cuda[cuda12]' (or [cuda13] for a CUDA 13 driver)"
# cudaError_t values with a specific remedy
_NO_DRIVER = 35  # cudaErrorInsufficientDriver
_NO_DEVICE = 100  # cudaErrorNoDevice


def _import_cupy() -> ModuleType:
    """Import cupy (a separate function so tests can substitute it)."""
    return importlib.import_module("cupy")


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in str(text).split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def _cuda_version(code: int) -> str:
    """``12040`` -> ``'12.4'`` (CUDA's integer version encoding)."""
    return f"{code // 1000}.{code % 1000 // 10}"


def _runtime_error_reason(exc: Exception, runtime_version: str) -> str:
    status = getattr(exc, "status", None)
    text = f"{type(exc).__name__}: {exc}"
    if status == _NO_DRIVER:
        return (f"the NVIDIA driver is missing or older than the CUDA {runtime_version} runtime "
                f"cupy was built for ({text}): install or upgrade the driver, or install the "
                "cupy build matching the driver (cupy-cuda12x / cupy-cuda13x)")
    if status == _NO_DEVICE:
        return (f"no CUDA device is visible ({text}): check CUDA_VISIBLE_DEVICES and that the "
                "NVIDIA driver sees the GPU (nvidia-smi)")
    return f"the CUDA driver could not be queried ({text}): check the driver with nvidia-smi"


def _runtime_version(runtime: Any) -> str:
    try:
        return _cuda_version(int(runtime.runtimeGetVersion()))
    except Exception:
        return "?"


def cuda_unavailable_reason() -> str | None:
    """None when cupy imports and can use a CUDA device, else one actionable sentence."""
    try:
        cupy = _import_cupy()
    except ImportError as exc:
        return f"cupy is not installed ({exc}): {_INSTALL}"
    except Exception as exc:  # cupy present but broken (mismatched CUDA libraries, ...)
        return (f"cupy failed to import ({type(exc).__name__}: {exc}): reinstall it with "
                f"{_INSTALL}")
    version = getattr(cupy, "__version__", "0")
    if _version_tuple(version) < MIN_CUPY:
        wanted = ".".join(map(str, MIN_CUPY))
        return f"cupy {version} is older than {wanted}: pip install -U 'cupy-cuda12x>={wanted}'"
    runtime = cupy.cuda.runtime
    runtime_version = _runtime_version(runtime)
    try:
        count = int(runtime.getDeviceCount())
    except Exception as exc:
        return _runtime_error_reason(exc, runtime_version)
    if count < 1:
        return ("no CUDA device is visible: check CUDA_VISIBLE_DEVICES and that the NVIDIA "
                "driver sees the GPU (nvidia-smi)")
    try:
        driver = int(runtime.driverGetVersion())
        needed = int(runtime.runtimeGetVersion())
    except Exception as exc:
        return _runtime_error_reason(exc, runtime_version)
    if driver // 1000 < needed // 1000:
        return (f"the NVIDIA driver supports CUDA {_cuda_version(driver)} but cupy was built "
                f"for CUDA {_cuda_version(needed)}: upgrade the driver or install the cupy "
                f"build for CUDA {driver // 1000} (cupy-cuda{driver // 1000}x)")
    return None
