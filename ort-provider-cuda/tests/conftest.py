"""Fixtures of the CUDA provider's tests: ``fake_cupy`` runs the provider on the numpy-backed
cupy double of ``fake_cupy/`` (a test double: see its docstring); tests that need a real GPU
are marked with ``cuda_testing.needs_gpu`` and skip with the reason
``cuda_unavailable_reason()`` gives."""

from __future__ import annotations

import pytest

import fake_cupy as fake
import ort.ep
from ort_provider_cuda import provider as provider_module


@pytest.fixture
def fake_cupy(monkeypatch):
    """Install the cupy test double as ``cupy``/``cupyx`` for one test (in place of a real
    cupy, if any) and re-discover the plugins, so that CUDAExecutionProvider is available and
    computes with it."""
    module = fake.install(monkeypatch)
    monkeypatch.setattr(provider_module, "_POOLS", {})
    ort.ep.reset()
    yield module
    ort.ep.reset()
