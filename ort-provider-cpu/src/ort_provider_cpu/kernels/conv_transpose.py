"""CPU kernels: ConvTranspose and Col2Im, the nn family's ops that scatter-add columns back
into images (col2im, the inverse of Conv's im2col).

ConvTranspose does one GEMM per group from X to columns, then a col2im scatter-add per kernel
tap into a buffer big enough for every tap, which is cropped to the output. Col2Im sums given
sliding-block columns the same way, one strided block add per block tap.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ort.ep import KernelTable, NodeInfo

from ..intra_op import resolve_threads
from ..threaded_gemm import matmul as threaded_matmul
from .float_work import wide_work_dtype, work_dtype
from .kernel_args import host_ints
from .nn_common import channel_shape
from .windows import read_window_attrs, spatial_attr

kernels = KernelTable()


def _grouped_gemm(xp: Any, a: Any, b: Any, threads: int = 1) -> Any:
    """Return a @ b for stacks of matrices (G, m, k) @ (G, k, n); a single GEMM when G == 1;
    large products are split over ``threads`` intra-op threads."""
    if a.shape[0] == 1:
        return threaded_matmul(xp, a[0], b[0], threads)[None]
    return threaded_matmul(xp, a, b, threads)


# --------------------------------------------------------------------------------------------
# ConvTranspose
# --------------------------------------------------------------------------------------------


@kernels.register("ConvTranspose", since=1)
def conv_transpose(node: NodeInfo) -> Callable[..., tuple]:
    """ConvTranspose (all versions): GEMM to columns, then col2im by a loop over kernel taps."""
    xp = node.xp
    threads = resolve_threads(node.intra_op_threads)
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
        cdt = work_dtype(x.dtype)
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
        cols = _grouped_gemm(xp, wm.transpose(0, 2, 1), xg.reshape(group, cg, n * positions),
                             threads)
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


# --------------------------------------------------------------------------------------------
# Col2Im
# --------------------------------------------------------------------------------------------


@kernels.register("Col2Im", since=18, host_inputs=(1, 2))
def col2im(node: NodeInfo) -> Callable[..., tuple]:
    """Col2Im 18+: sum sliding-block columns (N, C*prod(block), L) back into images."""
    xp = node.xp
    where = node.describe()

    def compute(data: Any, image_shape: Any, block_shape: Any) -> tuple:
        image, block = host_ints(image_shape), host_ints(block_shape)
        nd = len(image)
        if len(block) != nd or min(block, default=1) < 1:
            raise ValueError(f"{where}: block_shape {block} does not fit image_shape {image}")
        strides = spatial_attr(node, "strides", nd, 1)
        dilations = spatial_attr(node, "dilations", nd, 1)
        pads = spatial_attr(node, "pads", nd, 0)
        taps = math.prod(block)
        if data.ndim != 3 or data.shape[1] % taps:
            raise ValueError(f"{where}: input {data.shape} is not (N, C*{taps}, L)")
        padded = [image[i] + pads[i] + pads[i + nd] for i in range(nd)]
        blocks = [(padded[i] - dilations[i] * (block[i] - 1) - 1) // strides[i] + 1
                  for i in range(nd)]
        if min(blocks, default=1) < 1 or math.prod(blocks) != data.shape[2]:
            raise ValueError(
                f"{where}: input has {data.shape[2]} blocks, the geometry gives {blocks}"
            )
        n, channels = data.shape[0], data.shape[1] // taps
        work = data.dtype if data.dtype.kind in "iub" else wide_work_dtype(data.dtype)
        node.check_output_size((n, channels) + tuple(padded), work)
        cols = data.astype(work, copy=False).reshape((n, channels) + block + tuple(blocks))
        buf = xp.zeros((n, channels) + tuple(padded), dtype=work)
        lead = (slice(None), slice(None))
        for tap in np.ndindex(*block):  # loop over block taps, each a strided block add
            target = tuple(
                slice(t * d, t * d + (b - 1) * s + 1, s)
                for t, d, b, s in zip(tap, dilations, blocks, strides)
            )
            buf[lead + target] += cols[lead + tap]
        crop = tuple(slice(pads[i], pads[i] + image[i]) for i in range(nd))
        return (buf[lead + crop].astype(data.dtype),)

    return compute
