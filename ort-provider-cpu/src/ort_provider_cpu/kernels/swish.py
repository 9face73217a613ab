"""CPU kernels: the Swish (SiLU) activation family: Swish (24+), X * sigmoid(alpha * X), and
SwiGLU (28+), its gated form A * sigmoid(alpha * A) * B.

float16 and bfloat16 are computed in float32 (float64 stays float64) and rounded once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ort.ep import KernelTable, NodeInfo

from .float_work import sigmoid, work_dtype

kernels = KernelTable()


@kernels.register("SwiGLU", since=28)
def swiglu(node: NodeInfo) -> Callable[..., tuple]:
    """SwiGLU 28+: A * sigmoid(alpha * A) * B (A and B of one shape, no broadcasting)."""
    xp = node.xp
    alpha = float(node.attrs.get("alpha", 1.0))

    def compute(a: Any, b: Any) -> tuple:
        if a.shape != b.shape:
            raise ValueError(
                f"{node.describe()}: A {a.shape} and B {b.shape} must have the same shape"
            )
        aw = a.astype(work_dtype(a.dtype))
        y = aw * sigmoid(xp, aw * aw.dtype.type(alpha)) * b.astype(aw.dtype)
        return (y.astype(a.dtype, copy=False),)

    return compute


@kernels.register("Swish", since=24)
def swish(node: NodeInfo) -> Callable[..., tuple]:
    """Swish 24+: X * sigmoid(alpha * X)."""
    xp = node.xp
    alpha = float(node.attrs.get("alpha", 1.0))

    def compute(x: Any) -> tuple:
        xw = x.astype(work_dtype(x.dtype))
        y = xw * sigmoid(xp, xw * xw.dtype.type(alpha))
        return (y.astype(x.dtype, copy=False),)

    return compute
