"""GPU kernels: MatMul.

Why not the CPU kernel: it widens float16 operands to float32 copies (numpy's half GEMM is slow
and accumulates in half); cuBLAS multiplies float16 directly with float32 accumulation.
"""

from __future__ import annotations

from typing import Any

from ort.ep import KernelTable, NodeInfo

kernels = KernelTable()


@kernels.register("MatMul", since=1)
def matmul(node: NodeInfo):
    """MatMul 1+: numpy matmul semantics; float16 multiplied by cuBLAS with float32
    accumulation, without float32 copies of the operands."""
    xp = node.xp

    def compute(a: Any, b: Any) -> tuple:
        return (xp.matmul(a, b),)

    return compute
