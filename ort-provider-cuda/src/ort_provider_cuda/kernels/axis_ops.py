"""GPU kernels: CumSum.

Why not the CPU kernel: it reads its ``axis`` input with ``np.asarray`` (a device array there
would fail); here ``axis`` is declared a host input.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ort.ep import KernelTable, NodeInfo

kernels = KernelTable()


@kernels.register("CumSum", since=11, host_inputs=(1,))
def cumsum(node: NodeInfo):
    """CumSum 11+: cumulative sum along the host ``axis`` input (``exclusive``,
    ``reverse``)."""
    xp = node.xp
    exclusive = bool(node.attrs.get("exclusive", 0))
    reverse = bool(node.attrs.get("reverse", 0))

    def compute(x: Any, axis: Any) -> tuple:
        if x.ndim == 0:
            raise ValueError(f"{node.describe()}: input must have at least one dimension")
        ax = int(np.asarray(axis).reshape(-1)[0])
        if not -x.ndim <= ax < x.ndim:
            raise ValueError(f"{node.describe()}: axis {ax} out of range for rank {x.ndim}")
        ax %= x.ndim
        data = xp.flip(x, ax) if reverse else x
        out = xp.cumsum(data, axis=ax, dtype=x.dtype)
        if exclusive:
            shifted = xp.zeros_like(out)
            head = [slice(None)] * x.ndim
            tail = [slice(None)] * x.ndim
            head[ax], tail[ax] = slice(1, None), slice(None, -1)
            shifted[tuple(head)] = out[tuple(tail)]
            out = shifted
        if reverse:
            out = xp.flip(out, ax)
        return (xp.ascontiguousarray(out),)

    return compute
