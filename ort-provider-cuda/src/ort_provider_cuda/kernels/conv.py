"""GPU kernels: Conv as im2col + one batched cuBLAS GEMM, depthwise Conv as a loop over taps.

Why not the CPU kernel: it is tuned for CPU caches (im2col in chunks of a few hundred thousand
columns, one GEMM per chunk, reused scratch buffers, phase-split layouts), which on a GPU turns
one large GEMM into many small launches. Here, per group of images small enough for the
:data:`COLUMN_BUDGET`, the padded input is viewed as sliding windows (``as_strided``), copied
once into im2col columns ``(N, G, C/G * K, P)`` and multiplied by the weights ``(G, M/G,
C/G * K)`` in one broadcast batched GEMM whose result is already NCHW. 1x1 convolutions skip
the copy; depthwise convolutions (one input channel per group) accumulate one elementwise
multiply-add per kernel tap instead of N*C tiny GEMMs. float16 stays float16 (cuBLAS
accumulates in float32; the depthwise taps are summed in float32).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ort.ep import KernelTable, NodeInfo

kernels = KernelTable()

#: im2col elements materialized at once (images are processed in groups below this).
COLUMN_BUDGET = 1 << 26
_AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


@dataclass(frozen=True)
class _Geometry:
    """Where the windows of one input spatial shape lie."""

    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    begins: tuple[int, ...]
    ends: tuple[int, ...]
    out_shape: tuple[int, ...]

    @property
    def padded(self) -> bool:
        return any(self.begins) or any(self.ends)

    @property
    def pointwise(self) -> bool:
        return (all(k == 1 for k in self.kernel) and all(s == 1 for s in self.strides)
                and not self.padded)


class ConvAttrs:
    """The validated attributes of a Conv node; :meth:`geometry` per input shape (cached)."""

    def __init__(self, node: NodeInfo) -> None:
        attrs, self.where = node.attrs, node.describe()
        self.group = int(attrs.get("group", 1))
        if self.group < 1:
            raise ValueError(f"{self.where}: group must be positive, got {self.group}")
        self.kernel_attr = tuple(int(k) for k in attrs.get("kernel_shape") or ())
        self.strides_attr = tuple(int(s) for s in attrs.get("strides") or ())
        self.dilations_attr = tuple(int(d) for d in attrs.get("dilations") or ())
        self.pads_attr = tuple(int(p) for p in attrs.get("pads") or ())
        auto_pad = attrs.get("auto_pad", "NOTSET") or "NOTSET"
        self.auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
        if self.auto_pad not in _AUTO_PADS:
            raise ValueError(f"{self.where}: unknown auto_pad {self.auto_pad!r}")
        if any(p < 0 for p in self.pads_attr):
            raise ValueError(f"{self.where}: negative pads {self.pads_attr} are not supported")
        self._cache: dict[tuple, _Geometry] = {}

    def geometry(self, in_shape: tuple[int, ...], kernel: tuple[int, ...]) -> _Geometry:
        """The output shape and padding of a convolution of ``in_shape`` with a ``kernel``
        window (computed once per pair of shapes)."""
        key = (in_shape, kernel)
        geo = self._cache.get(key)
        if geo is None:
            geo = self._cache[key] = self._geometry(in_shape, kernel)
        return geo

    def _geometry(self, in_shape: tuple[int, ...], kernel: tuple[int, ...]) -> _Geometry:
        nd = len(kernel)
        if self.kernel_attr and self.kernel_attr != kernel:
            raise ValueError(f"{self.where}: kernel_shape {self.kernel_attr} does not match W "
                             f"{kernel}")
        strides = self.strides_attr or (1,) * nd
        dilations = self.dilations_attr or (1,) * nd
        pads = self.pads_attr or (0,) * (2 * nd)
        if len(strides) != nd or len(dilations) != nd or len(pads) != 2 * nd or \
                len(in_shape) != nd:
            raise ValueError(f"{self.where}: strides {strides}, dilations {dilations}, pads "
                             f"{pads} and input {in_shape} do not match the {nd}-d kernel")
        if min(strides + dilations + kernel, default=1) < 1:
            raise ValueError(f"{self.where}: kernel_shape, strides and dilations must be "
                             "positive")
        begins, ends, outs = [], [], []
        for i, size in enumerate(in_shape):
            span = (kernel[i] - 1) * dilations[i] + 1
            if self.auto_pad in ("SAME_UPPER", "SAME_LOWER"):
                out = -(-size // strides[i])
                total = max(0, (out - 1) * strides[i] + span - size)
                begin = total // 2 if self.auto_pad == "SAME_UPPER" else total - total // 2
                end = total - begin
            elif self.auto_pad == "VALID":
                begin = end = 0
                out = (size - span) // strides[i] + 1 if size >= span else 0
            else:
                begin, end = pads[i], pads[i + nd]
                reach = size + begin + end - span
                out = reach // strides[i] + 1 if reach >= 0 else 0
            if out <= 0 and size > 0:
                raise ValueError(f"{self.where}: kernel {kernel} with dilations {dilations} "
                                 f"does not fit the padded input of spatial shape {in_shape}")
            begins.append(begin)
            ends.append(end)
            outs.append(max(out, 0))
        return _Geometry(kernel, strides, dilations, tuple(begins), tuple(ends), tuple(outs))


def _windows(xp: Any, x: Any, geo: _Geometry) -> Any:
    """A (N, C, *out, *kernel) strided view of the windows of the padded ``x``."""
    if geo.padded:
        widths = [(0, 0), (0, 0)] + list(zip(geo.begins, geo.ends))
        x = xp.pad(x, widths, mode="constant", constant_values=0)
    lead, spatial = x.strides[:2], x.strides[2:]
    shape = tuple(x.shape[:2]) + geo.out_shape + geo.kernel
    strides = (tuple(lead) + tuple(st * s for st, s in zip(spatial, geo.strides))
               + tuple(st * d for st, d in zip(spatial, geo.dilations)))
    return xp.lib.stride_tricks.as_strided(x, shape=shape, strides=strides)


def _gemm_conv(xp: Any, x: Any, wm: Any, geo: _Geometry, group: int) -> Any:
    """Y (N, M, P) of ``x`` convolved with ``wm`` (G, M/G, C/G * K)."""
    n, c = x.shape[:2]
    cg, positions, taps = c // group, math.prod(geo.out_shape), math.prod(geo.kernel)
    if geo.pointwise:
        cols = x.reshape(n, group, cg, positions)
        return xp.matmul(wm, cols).reshape(n, -1, positions)
    nd = len(geo.kernel)
    per_image = c * taps * max(positions, 1)
    step = max(1, COLUMN_BUDGET // per_image)
    outs = []
    for start in range(0, n, step):  # a loop over groups of images, usually one
        windows = _windows(xp, x[start:start + step], geo)
        m = windows.shape[0]
        windows = windows.reshape((m, group, cg) + geo.out_shape + geo.kernel)
        order = (0, 1, 2) + tuple(range(3 + nd, 3 + 2 * nd)) + tuple(range(3, 3 + nd))
        cols = windows.transpose(order).reshape(m, group, cg * taps, positions)
        outs.append(xp.matmul(wm, cols).reshape(m, -1, positions))
    return outs[0] if len(outs) == 1 else xp.concatenate(outs, axis=0)


def _depthwise_conv(xp: Any, x: Any, w: Any, geo: _Geometry) -> Any:
    """Y (N, M, *out) of a depthwise ``x`` (one input channel per group), one multiply-add
    per kernel tap over the whole output."""
    n, c = x.shape[:2]
    mult = w.shape[0] // c
    nd = len(geo.kernel)
    windows = _windows(xp, x, geo)  # (N, C, *out, *kernel)
    accumulate = np.float64 if x.dtype == np.float64 else np.float32  # float16: sum in float32
    taps = w.reshape((c, mult, -1)).astype(accumulate)
    y = xp.zeros((n, c, mult) + geo.out_shape, dtype=accumulate)
    spread = (slice(None), slice(None)) + (None,) * nd  # (C, mult) -> broadcast over out
    for flat in range(math.prod(geo.kernel)):
        tap = (Ellipsis,) + tuple(int(i) for i in _unravel(flat, geo.kernel))
        y += windows[tap][:, :, None] * taps[:, :, flat][spread]
    return y.reshape((n, c * mult) + geo.out_shape).astype(x.dtype, copy=False)


def _unravel(flat: int, shape: tuple[int, ...]) -> list[int]:
    index = []
    for size in reversed(shape):
        index.append(flat % size)
        flat //= size
    return index[::-1]


def conv_compute(node: NodeInfo):
    """``compute(x, w, b=None) -> Y`` of a Conv node (used by Conv and FusedConv)."""
    xp = node.xp
    attrs = ConvAttrs(node)
    group = attrs.group
    const_w = node.const_inputs[1] if len(node.const_inputs) > 1 else None
    if const_w is not None:
        if const_w.shape[0] % group:
            raise ValueError(f"{attrs.where}: M={const_w.shape[0]} not divisible by group")
    weights: dict[tuple, Any] = {}

    def prepared(w: Any) -> Any:
        """W as (G, M/G, C/G * K) (cached for constant weights)."""
        key = (id(w), w.dtype.str)
        wm = weights.get(key) if const_w is not None else None
        if wm is None:
            wm = w.reshape(group, w.shape[0] // group, -1)
            if const_w is not None:
                weights[key] = wm
        return wm

    def compute(x: Any, w: Any, b: Any = None) -> Any:
        n, c = x.shape[:2]
        if w.shape[1] * group != c or w.shape[0] % group:
            raise ValueError(f"{attrs.where}: X has {c} channels, W {tuple(w.shape)} with "
                             f"group {group}")
        geo = attrs.geometry(tuple(x.shape[2:]), tuple(w.shape[2:]))
        w = w.astype(x.dtype, copy=False)
        if group > 1 and group == c:
            y = _depthwise_conv(xp, x, w, geo)
        else:
            y = _gemm_conv(xp, x, prepared(w), geo, group)
            y = y.reshape((n, w.shape[0]) + geo.out_shape)
        if b is not None:
            y += b.astype(y.dtype, copy=False).reshape((-1,) + (1,) * len(geo.out_shape))
        return y

    return compute


@kernels.register("Conv", since=1)
def conv(node: NodeInfo):
    """Conv 1+: im2col + batched GEMM on the device (depthwise: taps loop); any rank."""
    run = conv_compute(node)

    def compute(x: Any, w: Any, b: Any = None) -> tuple:
        return (run(x, w, b),)

    return compute
