"""Whether CUDA can be used here, and if not, one sentence saying why and what to do."""

from __future__ import annotations

import importlib

__all__ = ["cuda_unavailable_reason"]


def cuda_unavailable_reason() -> str | None:
    """None when cupy imports and sees at least one CUDA device, else the reason."""
    try:
        cupy = importlib.import_module("cupy")
    except ImportError as exc:
        return (
            f"cupy is not installed ({exc}): pip install 'ort-provider-cuda[cuda12]' "
            "(or [cuda13] for a CUDA 13 driver)"
        )
    except Exception as exc:  # cupy present but broken (mismatched CUDA libraries, ...)
        return f"cupy failed to import: {type(exc).__name__}: {exc}"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return f"no usable CUDA driver or device: {type(exc).__name__}: {exc}"
    if count < 1:
        return "no CUDA device is visible (check CUDA_VISIBLE_DEVICES and the driver)"
    return None
