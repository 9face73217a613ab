"""CPU kernels: Conv, the convolution of the nn family (FusedConv and the quantized
convolutions run it too).

Conv (:func:`conv_kernel`) copies strided windows of the padded input into im2col columns in
cache-sized chunks (rows of one image, or whole small images) and runs one GEMM per group and
chunk straight into the output, then adds bias (and FusedConv's Z and activation) while the
chunk is in cache; 1x1 convolutions multiply X itself. Depthwise 2-D convolutions split the
padded input into stride phases (:class:`~ort_provider_cpu.kernels.windows.PhaseLayout`) so
that every kernel tap reads contiguous runs, and contract the taps of a block of channels with
one batched GEMV. Plans depend on the input's spatial shape, so each node caches them per
shape, together with work buffers it reuses across runs
(:class:`~ort_provider_cpu.kernels.windows.Scratch`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from ort.ep import KernelTable, NodeInfo

from ..intra_op import resolve_threads, split_work
from ..jit import compiled_loops_enabled
from . import conv_loops
from .float_work import work_dtype
from .nn_common import channel_shape
from .windows import (PhaseLayout, Scratch, WindowAttrs, WindowGeometry,
                      give_padded, padded_input, phase_layout, phase_planes,
                      read_window_attrs, sliding_windows, tap_slices,
                      window_geometry)

kernels = KernelTable()


#: im2col columns (elements) built per GEMM: small enough to stay in cache between the copy
#: and the GEMM, large enough for an efficient GEMM.
_COLUMN_BUDGET = 1 << 19
_MIN_COLUMNS = 400
#: im2col columns (elements) per block of channels of a depthwise Conv
_DEPTHWISE_COLUMNS = 1 << 18


#: Conv's in-place epilogue: activate(y) on a fresh float array (or a view of one).
Activation = Callable[[Any], Any]


@dataclass(frozen=True)
class _ConvPlan:
    """How Conv computes one input shape: method and column chunks."""

    geo: WindowGeometry
    method: str  # "gemm" (im2col + one GEMM per group and chunk) or "depthwise"
    pointwise: bool  # 1x1 kernel, unit strides, no padding: X itself is the im2col matrix
    # (first image, end image, first row, end row) of the output each GEMM computes; a chunk
    # of several images always covers all rows
    chunks: tuple[tuple[int, int, int, int], ...]
    cols_size: int  # elements of the largest im2col chunk
    out_size: int  # elements of the GEMM result of a multi-image chunk (0: none)
    layout: PhaseLayout | None = None  # depthwise 2-D windows as contiguous runs
    # compiled depthwise loop: (copies, taps, plane rows, plane columns, phases, sh, sw)
    depthwise_args: tuple | None = None
    compiled: bool = False  # the GEMM path builds columns and finishes with compiled loops
    winograd: tuple[int, int, int] = (0, 0, 0)  # tile rows, tile columns, images per chunk


def _conv_chunks(n: int, out_shape: tuple[int, ...], k: int, m: int) -> tuple[tuple, ...]:
    """Split the GEMM columns (N * prod(out_shape)) into chunks of whole output rows of one
    image, or of whole images, of about ``_COLUMN_BUDGET / (k + m)`` columns each (``k``
    im2col rows and ``m`` output rows per column)."""
    positions = math.prod(out_shape)
    target = max(_MIN_COLUMNS, _COLUMN_BUDGET // max(k + m, 1))
    rows = out_shape[0] if out_shape else 1
    if positions >= target or n == 1:
        per_row = positions // rows if rows else 0
        count = max(1, min(rows, -(-positions // target)))
        bounds = [rows * i // count for i in range(count + 1)]
        if per_row == 0:
            bounds = [0, rows]
        return tuple((i, i + 1, r0, r1) for i in range(n) for r0, r1 in zip(bounds, bounds[1:]))
    per_chunk = max(1, target // max(positions, 1))
    return tuple((i, min(i + per_chunk, n), 0, rows) for i in range(0, n, per_chunk))


def conv_kernel(node: NodeInfo, activation: tuple[str, dict[str, float]] | None = None
                ) -> Callable[..., Any]:
    """Return ``run(x, w, b=None, z=None, activate=None) -> Y`` for a Conv node: the
    convolution (in X's dtype), then ``Y += Z`` and ``activate(Y)`` in place (FusedConv;
    ``activation``, its name and parameters, lets the compiled loops apply it themselves).

    A general Conv builds im2col columns (a copy of a strided view of the padded input) in
    cache-sized chunks of output rows or whole images, one GEMM per group and chunk writing
    straight into Y, and applies bias, Z and the activation to each chunk while it is in cache.
    1x1 convolutions with unit strides and no padding multiply X itself. Depthwise
    convolutions (one input and output channel per group) see :func:`_conv_depthwise`.
    Work buffers (padded input, columns) are reused across runs. Z and ``activate`` are for
    float32/float64 X (FusedConv handles the other types itself).

    Where numba is available (:func:`~ort_provider_cpu.jit.compiled_loops_enabled`), float32
    and float64 convolutions run compiled loops (:mod:`.conv_loops`): depthwise convolutions
    entirely (padding read in the loop, split over the session's intra-op threads), the GEMM
    path's im2col columns (no padded copy) and its epilogue (bias, Z and activation in one
    pass). The numpy code stays the reference and the fallback.
    """
    xp = node.xp
    loops = _ConvLoops(node, activation) if compiled_loops_enabled(node) else None
    group = int(node.attrs.get("group", 1))
    if group < 1:
        raise ValueError(f"{node.describe()}: group must be positive, got {group}")
    const_w = node.const_inputs[1] if len(node.const_inputs) > 1 else None
    kernel_attr = node.attrs.get("kernel_shape")
    if const_w is not None:
        kernel = tuple(int(k) for k in const_w.shape[2:])
        if kernel_attr and tuple(kernel_attr) != kernel:
            raise ValueError(
                f"{node.describe()}: kernel_shape {tuple(kernel_attr)} does not match W {kernel}"
            )
        if const_w.shape[0] % group:
            raise ValueError(f"{node.describe()}: M={const_w.shape[0]} not divisible by group")
    elif kernel_attr:
        kernel = tuple(int(k) for k in kernel_attr)
    else:
        kernel = None
    attr_cache: dict[tuple[int, ...], WindowAttrs] = {}

    def window_attrs(w_kernel: tuple[int, ...]) -> WindowAttrs:
        """Return the validated window attributes for W's kernel shape."""
        wa = attr_cache.get(w_kernel)
        if wa is None:
            if kernel is not None and kernel != w_kernel:
                raise ValueError(f"{node.describe()}: kernel_shape {kernel} does not match W")
            wa = attr_cache[w_kernel] = read_window_attrs(node, w_kernel, pooling=False)
        return wa

    if kernel is not None:
        window_attrs(kernel)  # validate attributes at factory time
    plans: dict[tuple, _ConvPlan] = {}
    scratch = Scratch(xp)

    def plan_for(wa: WindowAttrs, x_shape: tuple[int, ...], m: int, fast: bool) -> _ConvPlan:
        """Return the (cached) plan for one input shape, kernel and output channel count."""
        key = (wa.kernel, x_shape, m, fast)
        plan = plans.get(key)
        if plan is None:
            plan = plans[key] = _conv_plan(node, wa, x_shape, m, group, fast)
        return plan

    def weights_matrix(w: Any, cdt: np.dtype) -> Any:
        """Return W as (group, M/group, C/group * prod(kernel)) in the compute dtype."""
        return w.reshape(group, w.shape[0] // group, -1).astype(cdt, copy=False)

    prepared_w = None
    if const_w is not None:
        prepared_w = weights_matrix(xp.asarray(const_w), work_dtype(const_w.dtype))
        if loops is not None:
            loops.prepare(prepared_w.dtype, depthwise=const_w.shape[1] == 1
                          and const_w.shape[0] == group and group > 1,
                          winograd=group == 1 and tuple(const_w.shape[2:]) == (3, 3))

    transformed: list = []  # (W, its Winograd transform) of the last W seen

    def winograd_weights(w: Any, wm: Any) -> Any:
        """W's Winograd transform (computed once for a constant W)."""
        if transformed and transformed[0][0] is w:
            return transformed[0][1]
        u = _winograd_weights(wm, w.shape)
        transformed[:] = [(w, u)]
        return u

    def run(x: Any, w: Any, b: Any = None, z: Any = None, activate: Activation | None = None):
        cdt = work_dtype(x.dtype)
        n, c = x.shape[:2]
        m = w.shape[0]
        if w.shape[1] * group != c or m % group:
            raise ValueError(
                f"{node.describe()}: X has {c} channels, W {tuple(w.shape)} with group {group}"
            )
        wa = window_attrs(tuple(w.shape[2:]))
        native = x.dtype == cdt
        fast = loops is not None and native and cdt in _LOOP_DTYPES
        plan = plan_for(wa, tuple(x.shape), m, fast)
        wm = prepared_w if prepared_w is not None else weights_matrix(w, cdt)
        if wm.dtype != cdt:
            wm = wm.astype(cdt)
        y = node.empty((n, m) + plan.geo.out_shape, cdt)
        bias = None if b is None else b.astype(cdt, copy=False)
        # Z and the activation are applied chunk by chunk when Z has Y's shape
        chunk_z = z if native and z is not None and z.shape == y.shape else None
        chunked = native and (z is None or chunk_z is not None)
        if y.size:
            xc = x.astype(cdt, copy=False)
            if plan.method == "depthwise_loop":
                loops.depthwise(plan, wm, xc, y, bias, chunk_z, activate if chunked else None)
            elif plan.method == "winograd":
                u = winograd_weights(w, wm)
                loops.winograd(plan, u, xc, y, bias, chunk_z, activate if chunked else None,
                               scratch)
            elif plan.compiled:
                _conv_gemm_compiled(loops, plan, wa, wm, xc, y, bias, chunk_z,
                                    activate if chunked else None, scratch)
            elif plan.method == "depthwise":
                _conv_depthwise(xp, plan, wa, wm, xc, y, bias, chunk_z,
                                activate if chunked else None, scratch)
            else:
                _conv_gemm(xp, plan, wa, wm, xc, y, bias, chunk_z,
                           activate if chunked else None, scratch)
        if not native:
            return y.astype(x.dtype)
        if not chunked:
            y += z.astype(cdt, copy=False)
            if activate is not None:
                activate(y)
        return y

    return run


def _conv_plan(node: NodeInfo, wa: WindowAttrs, x_shape: tuple[int, ...], m: int,
               group: int, fast: bool = False) -> _ConvPlan:
    """Plan Conv of an input of ``x_shape`` with ``m`` output channels (``fast``: with the
    compiled loops)."""
    geo = window_geometry(node, wa, x_shape[2:])
    n, c = x_shape[:2]
    taps = math.prod(wa.kernel)
    if fast and group > 1 and group == c and m == c and len(wa.kernel) in (1, 2):
        return _ConvPlan(geo, "depthwise_loop", False, (), 0, 0, None,
                         _depthwise_loop_args(geo, wa))
    if fast and _winograd_fits(wa, geo, n, c, m, group):
        tiles_h, tiles_w = -(-geo.out_shape[0] // 2), -(-geo.out_shape[1] // 2)
        images = max(1, min(n, _WINOGRAD_TILES // (tiles_h * tiles_w)))
        return _ConvPlan(geo, "winograd", False, (), 0, 0,
                         winograd=(tiles_h, tiles_w, images))
    if group > 1 and group == c and m == c:
        layout = phase_layout(geo, wa) if len(wa.kernel) == 2 else None
        return _ConvPlan(geo, "depthwise", False, (), 0, 0, layout)
    pointwise = taps == 1 and all(s == 1 for s in wa.strides) and not geo.padded
    k = c // group * taps
    chunks = _conv_chunks(n, geo.out_shape, c * taps, m)
    if fast and pointwise and len(chunks) > n:
        # no columns to keep in cache: one GEMM per image, then one compiled epilogue pass
        rows = geo.out_shape[0] if geo.out_shape else 1
        chunks = tuple((i, i + 1, 0, rows) for i in range(n))
    positions = math.prod(geo.out_shape)
    cols_size = out_size = 0
    for n0, n1, r0, r1 in chunks:
        width = (n1 - n0) * (positions // geo.out_shape[0] * (r1 - r0) if geo.out_shape else 1)
        if not pointwise or n1 - n0 > 1:  # a 1x1 chunk of one image multiplies X in place
            cols_size = max(cols_size, group * k * width)
        if n1 - n0 > 1:
            out_size = max(out_size, m * width)
    # the compiled im2col copies output rows: rows shorter than _MIN_LOOP_ROW cost more in
    # loop overhead than numpy's strided copy (ResNet's 7x7 stage), and 1x1 chunks of several
    # images are a plain transposing copy numpy does well
    per_image = pointwise and len(chunks) == n
    compiled = fast and len(wa.kernel) == 2 and (
        per_image or (not pointwise and geo.out_shape[1] >= _MIN_LOOP_ROW))
    return _ConvPlan(geo, "gemm", pointwise, chunks, cols_size, out_size, compiled=compiled)


def _conv_epilogue(y: Any, bias: Any, z: Any, activate: Activation | None) -> None:
    """y += bias (per channel, axis 1); y += z; activate(y): all in place."""
    if bias is not None:
        y += bias.reshape(channel_shape(y.ndim))
    if z is not None:
        y += z
    if activate is not None:
        activate(y)


def _conv_gemm(xp: Any, plan: _ConvPlan, wa: WindowAttrs, wm: Any, x: Any, y: Any,
               bias: Any, z: Any, activate: Activation | None, scratch: Scratch) -> None:
    """Conv by im2col and GEMM, chunk by chunk, into the preallocated ``y``."""
    geo = plan.geo
    n, c = x.shape[:2]
    group, mg = wm.shape[:2]
    m, cg = group * mg, c // group
    nd = len(wa.kernel)
    positions = math.prod(geo.out_shape)
    per_row = positions // geo.out_shape[0] if nd else 1
    src = padded_input(xp, x, geo, scratch, 0) if geo.padded else x
    windows = sliding_windows(xp, src, geo, wa).reshape((n, group, cg) + geo.out_shape + wa.kernel)
    # (group, C/group, *kernel, images, *out) from (images, group, C/group, *out, *kernel)
    to_cols = (1, 2) + tuple(range(3 + nd, 3 + 2 * nd)) + (0,) + tuple(range(3, 3 + nd))
    cols_buf = scratch.take((plan.cols_size,), x.dtype) if plan.cols_size else None
    out_buf = scratch.take((plan.out_size,), x.dtype) if plan.out_size else None
    y_flat = y.reshape(n, m, positions)
    z_flat = None if z is None else z.reshape(n, m, positions)
    for n0, n1, r0, r1 in plan.chunks:
        images = n1 - n0
        width = (r1 - r0) * per_row
        if plan.pointwise and images == 1:
            cols = x[n0].reshape(group, cg, positions)[:, :, r0 * per_row:r1 * per_row]
        else:
            view = windows[n0:n1, :, :, r0:r1] if nd else windows[n0:n1]
            view = view.transpose(to_cols)
            cols = cols_buf[: view.size].reshape(view.shape)
            xp.copyto(cols, view)
            cols = cols.reshape(group, -1, images * width)
        if images == 1:
            out = y_flat[n0][:, r0 * per_row:r1 * per_row]
            for g in range(group):
                xp.matmul(wm[g], cols[g], out=out[g * mg:(g + 1) * mg])
            if bias is not None:
                out += bias[:, None]
            if z_flat is not None:
                out += z_flat[n0][:, r0 * per_row:r1 * per_row]
        else:
            product = out_buf[: m * images * width].reshape(m, images * width)
            for g in range(group):
                xp.matmul(wm[g], cols[g], out=product[g * mg:(g + 1) * mg])
            out = y_flat[n0:n1]
            product = product.reshape(m, images, positions).transpose(1, 0, 2)
            if bias is not None:
                xp.add(product, bias[:, None], out=out)
            else:
                xp.copyto(out, product)
            if z_flat is not None:
                out += z_flat[n0:n1]
        if activate is not None:
            activate(out)
    if cols_buf is not None:
        scratch.give(cols_buf)
    if out_buf is not None:
        scratch.give(out_buf)
    if src is not x:
        give_padded(scratch, src, geo, 0)


def _conv_depthwise(xp: Any, plan: _ConvPlan, wa: WindowAttrs, wm: Any, x: Any, y: Any,
                    bias: Any, z: Any, activate: Activation | None, scratch: Scratch) -> None:
    """Depthwise Conv (one input and output channel per group) into ``y``, then bias, Z and
    the activation. In 2-D, the input is split into stride phases so that each tap of every
    output row is a contiguous run (:class:`PhaseLayout`); the runs of a block of channels
    are copied into (taps, run) columns and contracted with the channels' weights by one
    batched GEMV, then the valid part of each run is kept. Otherwise, a multiply-add of a
    strided slice of the padded input per kernel tap."""
    weights = wm.reshape(wm.shape[0], -1)  # (C, taps)
    layout = plan.layout
    if layout is None:  # not 2-D: strided slices of the padded input
        src = padded_input(xp, x, plan.geo, scratch, 0) if plan.geo.padded else x
        tmp = scratch.take(y.shape, y.dtype)
        shape = channel_shape(y.ndim)
        lead = (slice(None), slice(None))
        for tap, slices in tap_slices(plan.geo, wa):
            if tap == 0:
                xp.multiply(src[lead + slices], weights[:, 0].reshape(shape), out=y)
            else:
                xp.multiply(src[lead + slices], weights[:, tap].reshape(shape), out=tmp)
                y += tmp
        scratch.give(tmp)
        if src is not x:
            give_padded(scratch, src, plan.geo, 0)
        _conv_epilogue(y, bias, z, activate)
        return
    n, c = x.shape[:2]
    out_h, out_w = plan.geo.out_shape
    planes = phase_planes(x, layout, scratch, 0)
    flat = planes.reshape(n, c, layout.phases, -1)
    taps, run = len(layout.taps), layout.run
    # per channel: (1, taps) weights @ (taps, run) columns, the columns built for a block of
    # channels at a time (one strided copy per phase), small enough to stay in cache
    block = max(1, min(c, _DEPTHWISE_COLUMNS // (taps * run)))
    cols = scratch.take((block, taps, run), y.dtype)
    acc = scratch.take((block, 1, run), y.dtype)
    tap_weights = weights[:, list(layout.tap_order)].reshape(c, 1, taps)
    channel_bias = None if bias is None else bias.reshape(c, 1, 1)
    item = flat.itemsize
    for i in range(n):
        views = []  # per phase grid: (first column, strided view of its taps for all channels)
        first = 0
        for phase, offset, (rows, columns), (row_step, col_step), grid in layout.grids:
            base = flat[i, :, phase, offset:]
            views.append((first, xp.lib.stride_tricks.as_strided(
                base, shape=(c, rows, columns, run),
                strides=(base.strides[0], row_step * item, col_step * item, item))))
            first += len(grid)
        for c0 in range(0, c, block):
            c1 = min(c, c0 + block)
            k = c1 - c0
            for first, view in views:
                part = view[c0:c1]
                xp.copyto(cols[:k, first:first + part.shape[1] * part.shape[2]].reshape(
                    part.shape), part)
            xp.matmul(tap_weights[c0:c1], cols[:k], out=acc[:k])
            kept = acc[:k].reshape(k, out_h, -1)[:, :, :out_w]
            out = y[i, c0:c1]
            if channel_bias is not None:
                xp.add(kept, channel_bias[c0:c1], out=out)
            else:
                xp.copyto(out, kept)
            if z is not None:
                out += z[i, c0:c1]
            if activate is not None:
                activate(out)
    scratch.give(cols)
    scratch.give(acc)
    scratch.give(planes, 0, layout.key)


# --------------------------------------------------------------------------------------------
# compiled loops
# --------------------------------------------------------------------------------------------

_LOOP_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
#: output rows the compiled im2col copies at least (shorter ones: numpy's strided copy)
_MIN_LOOP_ROW = 16
#: outputs one thread's piece of a compiled loop computes at least (a piece costs ~20 µs)
_MIN_PIECE_OUTPUTS = 1 << 16
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _activation_params(name: str, params: dict[str, float]) -> tuple[float, float]:
    """The two parameters the loops take for activation ``name`` (FusedConv's defaults)."""
    if name == "Clip":
        return float(params.get("min", -_FLOAT32_MAX)), float(params.get("max", _FLOAT32_MAX))
    if name == "LeakyRelu":
        return float(params.get("alpha", 0.01)), 0.0
    if name == "HardSigmoid":
        return float(params.get("alpha", 0.2)), float(params.get("beta", 0.5))
    return 0.0, 0.0


class _ConvLoops:
    """The compiled loops one Conv node runs (:mod:`.conv_loops`), the activation they apply
    (as a code and two parameters) and the node's intra-op threads."""

    def __init__(self, node: NodeInfo, activation: tuple[str, dict[str, float]] | None) -> None:
        name, params = activation if activation is not None else ("", {})
        code = conv_loops.activation_code(name)
        #: whether the loops apply the activation (else the caller's ``activate`` does)
        self.covers_activation = code is not None
        self.code = code or 0
        self.a0, self.a1 = _activation_params(name, params)
        self.threads = resolve_threads(node.intra_op_threads)
        self._no_bias = {dt: np.zeros(1, dt) for dt in _LOOP_DTYPES}
        self._loops: dict[tuple[str, np.dtype], Callable[..., Any]] = {}

    def prepare(self, dtype: np.dtype, depthwise: bool, winograd: bool = False) -> None:
        """Load or compile the loops a Conv of ``dtype`` runs (so the first run does not)."""
        if dtype not in _LOOP_DTYPES:
            return
        if depthwise:
            self.depthwise_loop(dtype)
            return
        self.im2col_loop(dtype)
        self.epilogue_loop(dtype)
        if winograd:
            self.winograd_loops(dtype)

    def depthwise_loop(self, dtype: np.dtype) -> Callable[..., Any]:
        """:func:`conv_loops.depthwise_conv2d` for ``dtype``."""
        key = ("depthwise", dtype)
        loop = self._loops.get(key)
        if loop is None:
            ints = (np.int64, 2)
            loop = self._loops[key] = conv_loops.depthwise_conv2d.prepare(
                (dtype, 4), (dtype, 2), (dtype, 1), (dtype, 4), (dtype, 4), ints,
                (np.int64, 1), int, int, int, int, int, bool, bool, int, float, float, int, int)
        return loop

    def im2col_loop(self, dtype: np.dtype) -> Callable[..., Any]:
        """:func:`conv_loops.im2col_rows` for ``dtype``."""
        key = ("im2col", dtype)
        loop = self._loops.get(key)
        if loop is None:
            loop = self._loops[key] = conv_loops.im2col_rows.prepare(
                (dtype, 3), (dtype, 2), *([int] * 12))
        return loop

    def epilogue_loop(self, dtype: np.dtype) -> Callable[..., Any]:
        """:func:`conv_loops.epilogue_rows` for ``dtype``."""
        key = ("epilogue", dtype)
        loop = self._loops.get(key)
        if loop is None:
            flat = (dtype, 1)
            loop = self._loops[key] = conv_loops.epilogue_rows.prepare(
                flat, int, int, flat, int, int, flat, flat, int, int, bool, bool, int, float,
                float)
        return loop

    def winograd_loops(self, dtype: np.dtype) -> tuple[Callable[..., Any], Callable[..., Any]]:
        """:func:`conv_loops.winograd_input` and :func:`conv_loops.winograd_output`."""
        key = ("winograd", dtype)
        loops = self._loops.get(key)
        if loops is None:
            loops = self._loops[key] = (
                conv_loops.winograd_input.prepare((dtype, 4), (dtype, 3), int, int, int, int),
                conv_loops.winograd_output.prepare(
                    (dtype, 3), (dtype, 4), (dtype, 1), (dtype, 4), int, int, int, int, bool,
                    bool, int, float, float))
        return loops

    def winograd(self, plan: _ConvPlan, u: Any, x: Any, y: Any, bias: Any, z: Any,
                 activate: Activation | None, scratch: Scratch) -> None:
        """3x3 Conv as Winograd F(2x2, 3x3): input tiles transformed (compiled), 16 GEMMs
        (16, M, C) @ (16, C, tiles) by numpy's batched matmul (on (C, 16, tiles) buffers), the output transform with bias,
        Z and activation (compiled), chunks of images at a time."""
        geo = plan.geo
        tiles_h, tiles_w, per_chunk = plan.winograd
        n, c = x.shape[:2]
        m = y.shape[1]
        dtype = y.dtype
        into, out = self.winograd_loops(dtype)
        rows, cols = 2 * tiles_h - geo.out_shape[0], 2 * tiles_w - geo.out_shape[1]
        tiled = WindowGeometry(geo.in_shape, geo.out_shape, geo.pads_begin, geo.pads_end,
                               (rows, cols))
        xpad = padded_input(np, x, tiled, scratch, 0)
        tiles = per_chunk * tiles_h * tiles_w
        v = scratch.take((c, 16, tiles), dtype)
        mo = scratch.take((m, 16, tiles), dtype)
        bias_arr, has_bias = self.bias(bias, dtype)
        code, a0, a1 = self.activation(activate)
        z4 = y if z is None else np.ascontiguousarray(z)
        for n0 in range(0, n, per_chunk):
            n1 = min(n, n0 + per_chunk)
            count = (n1 - n0) * tiles_h * tiles_w
            into(xpad, v, n0, n1, tiles_h, tiles_w)
            np.matmul(u, v.transpose(1, 0, 2)[:, :, :count],
                      out=mo.transpose(1, 0, 2)[:, :, :count])
            out(mo, y, bias_arr, z4, n0, n1, tiles_h, tiles_w, has_bias, z is not None, code,
                a0, a1)
        scratch.give(v)
        scratch.give(mo)
        give_padded(scratch, xpad, tiled, 0)
        if activate is not None and not self.covers_activation:
            activate(y)

    def activation(self, activate: Activation | None) -> tuple[int, float, float]:
        """(code, a0, a1) the loops apply for a chunk finished with ``activate``."""
        if activate is None or not self.covers_activation:
            return 0, 0.0, 0.0
        return self.code, self.a0, self.a1

    def bias(self, bias: Any, dtype: np.dtype) -> tuple[Any, bool]:
        """(bias array for the loops, whether there is a bias)."""
        if bias is None:
            return self._no_bias[dtype], False
        return np.ascontiguousarray(bias), True

    def depthwise(self, plan: _ConvPlan, wm: Any, x: Any, y: Any, bias: Any, z: Any,
                  activate: Activation | None) -> None:
        """Depthwise Conv into ``y`` with the compiled loop, images x channels split over the
        intra-op threads; then bias, Z and the activation."""
        n, c = x.shape[:2]
        x4 = np.ascontiguousarray(x).reshape((n, c) + (1,) * (4 - x.ndim) + x.shape[2:])
        y4 = y.reshape((n, c) + (1,) * (4 - y.ndim) + y.shape[2:])
        z4 = y4 if z is None else np.ascontiguousarray(z).reshape(y4.shape)
        weights = np.ascontiguousarray(wm.reshape(c, -1))
        bias_arr, has_bias = self.bias(bias, y.dtype)
        code, a0, a1 = self.activation(activate)
        copies, taps, rows, columns, phases, sh, sw = plan.depthwise_args
        loop = self.depthwise_loop(y.dtype)

        def work(start: int, stop: int) -> None:
            loop(x4, weights, bias_arr, z4, y4, copies, taps, rows, columns, phases, sh, sw,
                 has_bias, z is not None, code, a0, a1, start, stop)

        plane = max(1, y4.shape[2] * y4.shape[3])
        split_work(work, n * c, self.threads, max(1, _MIN_PIECE_OUTPUTS // plane))
        if activate is not None and not self.covers_activation:
            activate(y)


#: Winograd F(2x2, 3x3) for 3x3 convolutions with unit strides and dilations, one group and
#: at least this many input and output channels and 2x2 output tiles in all (fewer tiles make
#: GEMMs too thin for BLAS); tiles per chunk of images
_WINOGRAD_MIN_CHANNELS = 16
_WINOGRAD_MIN_TILES = 32
_WINOGRAD_TILES = 2048
_WINOGRAD_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])


def _winograd_fits(wa: WindowAttrs, geo: WindowGeometry, n: int, c: int, m: int,
                   group: int) -> bool:
    """Whether Conv runs as Winograd F(2x2, 3x3) (see :data:`_WINOGRAD_MIN_CHANNELS`)."""
    if wa.kernel != (3, 3) or wa.strides != (1, 1) or wa.dilations != (1, 1) or group != 1:
        return False
    if c < _WINOGRAD_MIN_CHANNELS or m < _WINOGRAD_MIN_CHANNELS or any(geo.extra_end):
        return False
    tiles = n * (-(-geo.out_shape[0] // 2)) * (-(-geo.out_shape[1] // 2))
    return tiles >= _WINOGRAD_MIN_TILES


def _winograd_weights(wm: Any, w_shape: tuple[int, ...]) -> Any:
    """U = G g G^T of every 3x3 filter g, as (16, M, C) in W's compute dtype (computed in
    float64)."""
    m, c = w_shape[:2]
    g = wm.reshape(m, c, 3, 3).astype(np.float64)
    u = np.einsum("ij,mcjk,lk->ilmc", _WINOGRAD_G, g, _WINOGRAD_G)
    return np.ascontiguousarray(u.reshape(16, m, c).astype(wm.dtype))


def _depthwise_loop_args(geo: WindowGeometry, wa: WindowAttrs) -> tuple:
    """The :func:`conv_loops.depthwise_conv2d` arguments describing the windows: copies into
    the stride phases, the taps' offsets, plane rows and columns, phases, strides (1-D
    windows as 2-D ones of one row)."""
    if len(wa.kernel) == 1:
        geo = WindowGeometry((1,) + geo.in_shape, (1,) + geo.out_shape, (0,) + geo.pads_begin,
                             (0,) + geo.pads_end, (0,) + geo.extra_end)
        wa = WindowAttrs((1,) + wa.kernel, (1,) + wa.strides, (1,) + wa.dilations,
                         (0, wa.pads[0], 0, wa.pads[1]), wa.auto_pad, wa.ceil_mode)
    layout = phase_layout(geo, wa)
    rows, columns = layout.plane
    copies = np.array([(phase, r.start, r.stop - r.start, c.start, c.stop - c.start,
                        x_rows.start, x_cols.start)
                       for phase, r, c, x_rows, x_cols in layout.copies], np.int64).reshape(-1, 7)
    taps = np.array([phase * rows * columns + offset for phase, offset in layout.taps],
                    np.int64)
    return (copies, taps, rows, columns, layout.phases) + wa.strides


def _conv_gemm_compiled(loops: _ConvLoops, plan: _ConvPlan, wa: WindowAttrs, wm: Any, x: Any,
                        y: Any, bias: Any, z: Any, activate: Activation | None,
                        scratch: Scratch) -> None:
    """2-D Conv by im2col and GEMM as :func:`_conv_gemm`, with compiled loops building the
    columns straight from X (padding written as zeros, no padded copy) and finishing each
    chunk (bias, Z, activation) in one pass."""
    geo = plan.geo
    n, c = x.shape[:2]
    group, mg = wm.shape[:2]
    m, cg = group * mg, c // group
    out_w = geo.out_shape[1]
    positions = geo.out_shape[0] * out_w
    (kh, kw), (sh, sw), (dh, dw) = wa.kernel, wa.strides, wa.dilations
    top, left = geo.pads_begin
    x = np.ascontiguousarray(x)
    dtype = y.dtype
    im2col = loops.im2col_loop(dtype)
    epilogue = loops.epilogue_loop(dtype)
    bias_arr, has_bias = loops.bias(bias, dtype)
    code, a0, a1 = loops.activation(activate)
    finish = activate if activate is not None and not loops.covers_activation else None
    y_flat = y.reshape(-1)
    y3 = y.reshape(n, m, positions)
    z_flat = y_flat if z is None else np.ascontiguousarray(z).reshape(-1)
    has_z = z is not None
    if plan.pointwise and group == 1 and len(plan.chunks) == n and finish is None:
        # 1x1: one GEMM per image straight from X, then one epilogue pass
        x3 = x.reshape(n, c, positions)
        w0 = wm[0]
        for i in range(n):
            np.matmul(w0, x3[i], out=y3[i])
            offset = i * m * positions
            epilogue(y_flat, offset, positions, y_flat, offset, positions, z_flat, bias_arr, m,
                     positions, has_bias, has_z, code, a0, a1)
        return
    cols_buf = scratch.take((plan.cols_size,), dtype) if plan.cols_size else None
    out_buf = scratch.take((plan.out_size,), dtype) if plan.out_size else None
    k = cg * kh * kw
    for n0, n1, r0, r1 in plan.chunks:
        images = n1 - n0
        width = (r1 - r0) * out_w
        if plan.pointwise and images == 1:
            cols = x[n0].reshape(group, cg, positions)[:, :, r0 * out_w:r1 * out_w]
        else:
            cols = cols_buf[: group * k * images * width].reshape(group, k, images * width)
            for i in range(images):
                for g in range(group):
                    im2col(x[n0 + i, g * cg:(g + 1) * cg], cols[g], i * width, out_w, kh, kw,
                           sh, sw, dh, dw, top, left, r0, r1)
        if images == 1:
            out = y3[n0][:, r0 * out_w:r1 * out_w]
            for g in range(group):
                np.matmul(wm[g], cols[g], out=out[g * mg:(g + 1) * mg])
            offset = n0 * m * positions + r0 * out_w
            epilogue(y_flat, offset, positions, y_flat, offset, positions, z_flat, bias_arr, m,
                     width, has_bias, has_z, code, a0, a1)
        else:
            product = out_buf[: m * images * width].reshape(m, images * width)
            for g in range(group):
                np.matmul(wm[g], cols[g], out=product[g * mg:(g + 1) * mg])
            out = y3[n0:n1]
            for i in range(images):
                epilogue(out_buf, i * width, images * width, y_flat, (n0 + i) * m * positions,
                         positions, z_flat, bias_arr, m, width, has_bias, has_z, code, a0, a1)
        if finish is not None:
            finish(out)
    if cols_buf is not None:
        scratch.give(cols_buf)
    if out_buf is not None:
        scratch.give(out_buf)


@kernels.register("Conv", since=1)
def conv(node: NodeInfo) -> Callable[..., tuple]:
    """Conv (all versions): im2col and GEMM in cache-sized chunks (see :func:`conv_kernel`)."""
    run = conv_kernel(node)

    def compute(x: Any, w: Any, b: Any = None) -> tuple:
        return (run(x, w, b),)

    return compute
