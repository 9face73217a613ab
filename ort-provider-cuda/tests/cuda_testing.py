"""Shared helpers of the CUDA provider's tests: whether a real GPU is usable here."""

from __future__ import annotations

import pytest

from ort_provider_cuda.availability import cuda_unavailable_reason

__all__ = ["REASON", "needs_gpu"]

#: None where cupy can use a GPU, else the reason (tests needing one skip with it).
REASON = cuda_unavailable_reason()
needs_gpu = pytest.mark.skipif(REASON is not None, reason=f"CUDA unavailable: {REASON}")
