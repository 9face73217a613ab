"""GPU kernels: Erf and the GELU family: Erf, Gelu (ONNX 20), com.microsoft Gelu and BiasGelu.

Why not the CPU kernels: the CPU erf evaluates a float64 series and continued fraction with
data-dependent masks (``if large.any()``, boolean indexing), which synchronize with the host;
CUDA has erf (``cupyx.scipy.special.erf``), computed here in float32 for float16/float32 and in
float64 for float64.
"""

from __future__ import annotations

import functools
import importlib
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ort.ep import KernelTable, NodeInfo

kernels = KernelTable()

MS = "com.microsoft"
_INV_SQRT2 = 1 / math.sqrt(2)
_TANH_SCALE = math.sqrt(2 / math.pi)


def erf_function(xp: Any) -> Callable[[Any], Any]:
    """erf on arrays of ``xp``: CUDA's for cupy, the CPU provider's accurate one for numpy."""
    if xp is np:
        from ort_provider_cpu.kernels.erf_gelu import erf

        return functools.partial(erf, np)
    special = importlib.import_module("cupyx.scipy.special")  # installed with cupy
    return special.erf


def _work(x: Any) -> Any:
    """x in the type to compute transcendental functions in: float64 stays, else float32."""
    return x if x.dtype == np.float64 else x.astype(np.float32)


@kernels.register("Erf", since=9)
def erf(node: NodeInfo):
    """Erf 9+: CUDA's erf (float32 for float16/float32 inputs; integers as float32 and cast
    back, as the CPU kernel does)."""
    fn = erf_function(node.xp)

    def compute(x: Any) -> tuple:
        return (fn(_work(x)).astype(x.dtype, copy=False),)

    return compute


def _gelu(xp: Any, approximate: str, where: str) -> Callable[[Any], Any]:
    """GELU of a float32/float64 array, exact (erf) or with the tanh approximation."""
    if approximate == "tanh":
        def tanh_gelu(x: Any) -> Any:
            inner = x.dtype.type(_TANH_SCALE) * (x + x.dtype.type(0.044715) * x * x * x)
            return x.dtype.type(0.5) * x * (1 + xp.tanh(inner))

        return tanh_gelu
    if approximate != "none":
        raise ValueError(f"{where}: approximate must be 'none' or 'tanh', got {approximate!r}")
    fn = erf_function(xp)

    def exact_gelu(x: Any) -> Any:
        return x.dtype.type(0.5) * x * (1 + fn(x * x.dtype.type(_INV_SQRT2)))

    return exact_gelu


@kernels.register("Gelu", since=20)
def gelu(node: NodeInfo):
    """Gelu 20+: 0.5 x (1 + erf(x / sqrt 2)), or the tanh approximation; float16 computed in
    float32 and rounded once."""
    approximate = node.attrs.get("approximate", "none")
    if isinstance(approximate, bytes):
        approximate = approximate.decode()
    fn = _gelu(node.xp, approximate, node.describe())

    def compute(x: Any) -> tuple:
        return (fn(_work(x)).astype(x.dtype, copy=False),)

    return compute


@kernels.register("Gelu", since=1, domain=MS)
def contrib_gelu(node: NodeInfo):
    """com.microsoft Gelu 1+: exact GELU (erf), float16 computed in float32."""
    fn = _gelu(node.xp, "none", node.describe())

    def compute(x: Any) -> tuple:
        return (fn(_work(x)).astype(x.dtype, copy=False),)

    return compute


@kernels.register("BiasGelu", since=1, domain=MS)
def bias_gelu(node: NodeInfo):
    """com.microsoft BiasGelu 1+: Gelu(A + B), B a bias over A's last axis."""
    fn = _gelu(node.xp, "none", node.describe())

    def compute(a: Any, b: Any) -> tuple:
        return (fn(_work(a) + _work(b)).astype(a.dtype, copy=False),)

    return compute
