"""CPU kernels: ConvTranspose, the transposed (fractionally strided) convolution of the nn
family.

ConvTranspose does one GEMM per group from X to columns, then a col2im scatter-add per kernel
tap into a buffer big enough for every tap, which is cropped to the output.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ort.ep import KernelTable, NodeInfo

from .nn_common import channel_shape, compute_dtype
from .windows import read_window_attrs

kernels = KernelTable()


def _grouped_gemm(xp: Any, a: Any, b: Any) -> Any:
    """Return a @ b for stacks of matrices (G, m, k) @ (G, k, n); a single GEMM when G == 1."""
    if a.shape[0] == 1:
        return xp.matmul(a[0], b[0])[None]
    return xp.matmul(a, b)


# --------------------------------------------------------------------------------------------
# ConvTranspose
# --------------------------------------------------------------------------------------------


@kernels.register("ConvTranspose", since=1)
def conv_transpose(node: NodeInfo) -> Callable[..., tuple]:
    """ConvTranspose (all versions): GEMM to columns, then col2im by a loop over kernel taps."""
    xp = node.xp
    attrs = node.attrs
    group = int(attrs.get("group", 1))
    output_padding_attr = attrs.get("output_padding")
    output_shape_attr = attrs.get("output_shape")

    def plan(in_shape: tuple[int, ...], kernel: tuple[int, ...]) -> tuple:
        """Return (window attrs, pads_begin, output spatial shape) for one input shape."""
        nd = len(kernel)
        wa = read_window_attrs(node, kernel, pooling=False)
        out_pad = tuple(int(p) for p in output_padding_attr or [0] * nd)
        full = [
            wa.strides[i] * (in_shape[i] - 1) + out_pad[i] + (kernel[i] - 1) * wa.dilations[i] + 1
            for i in range(nd)
        ]
        if output_shape_attr or wa.auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            if output_shape_attr:
                out_shape = tuple(int(o) for o in output_shape_attr[-nd:])
            else:
                out_shape = tuple(in_shape[i] * wa.strides[i] for i in range(nd))
            # the spec crops the total padding evenly, the odd one at the start unless SAME_UPPER
            totals = [max(full[i] - out_shape[i], 0) for i in range(nd)]
            if wa.auto_pad == "SAME_UPPER":
                begins = tuple(t // 2 for t in totals)
            else:
                begins = tuple(t - t // 2 for t in totals)
            return wa, begins, out_shape
        pads = wa.pads if wa.auto_pad == "NOTSET" else (0,) * (2 * nd)
        out_shape = tuple(full[i] - pads[i] - pads[i + nd] for i in range(nd))
        if any(o < 0 for o in out_shape):
            raise ValueError(f"{node.describe()}: pads {pads} exceed the output {out_shape}")
        return wa, tuple(pads[:nd]), out_shape

    plans: dict[tuple, tuple] = {}

    def compute(x: Any, w: Any, b: Any = None) -> tuple:
        cdt = compute_dtype(x.dtype)
        n, c = x.shape[:2]
        if w.shape[0] != c or c % group:
            raise ValueError(f"{node.describe()}: X has {c} channels, W {tuple(w.shape)}")
        kernel = tuple(w.shape[2:])
        key = (tuple(x.shape[2:]), kernel)
        if key not in plans:
            plans[key] = plan(key[0], kernel)
        wa, begins, out_shape = plans[key]
        cg, mg = c // group, w.shape[1]
        nd = len(kernel)
        in_shape = x.shape[2:]
        positions = math.prod(in_shape)
        # columns: (G, Mg*K, N*P) = W_g^T (Mg*K, Cg) @ X_g (Cg, N*P), one GEMM per group
        wm = w.astype(cdt, copy=False).reshape(group, cg, mg * math.prod(kernel))
        xg = x.astype(cdt, copy=False).reshape(n, group, cg, positions).transpose(1, 2, 0, 3)
        cols = _grouped_gemm(xp, wm.transpose(0, 2, 1), xg.reshape(group, cg, n * positions))
        cols = cols.reshape((group * mg,) + kernel + (n,) + tuple(in_shape))
        # scatter-add each kernel tap into a buffer big enough for every tap, then crop
        full = [
            (in_shape[i] - 1) * wa.strides[i] + (kernel[i] - 1) * wa.dilations[i] + 1
            for i in range(nd)
        ]
        extent = [max(full[i], begins[i] + out_shape[i]) for i in range(nd)]
        buf = xp.zeros((group * mg, n) + tuple(extent), dtype=cdt)
        for tap in np.ndindex(*kernel):  # loop over kernel taps, each a strided block add
            target = tuple(
                slice(
                    tap[i] * wa.dilations[i],
                    tap[i] * wa.dilations[i] + (in_shape[i] - 1) * wa.strides[i] + 1,
                    wa.strides[i],
                )
                for i in range(nd)
            )
            buf[(slice(None), slice(None)) + target] += cols[(slice(None),) + tap]
        crop = tuple(slice(begins[i], begins[i] + out_shape[i]) for i in range(nd))
        y = buf[(slice(None), slice(None)) + crop].swapaxes(0, 1)
        if b is not None:
            y = y + b.astype(cdt, copy=False).reshape(channel_shape(y.ndim))
        return (xp.ascontiguousarray(y).astype(x.dtype, copy=False),)

    return compute
