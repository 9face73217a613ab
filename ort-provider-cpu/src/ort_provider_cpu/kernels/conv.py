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

That numpy code is the reference and the fallback (no numba, ``compiled_kernels=0``, other
dtypes, the CUDA provider's cupy). Float32/float64 convolutions run the compiled paths of
:mod:`.conv_compiled` where numba is available: depthwise convolutions, Winograd F(2x2, 3x3)
for 3x3 stride-1 convolutions, and the GEMM path's im2col and epilogue.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from ort.ep import KernelTable, NodeInfo

from ..jit import compiled_loops_enabled
from . import conv_compiled
from .float_work import work_dtype
from .nn_common import channel_shape
from .windows import (PhaseLayout, Scratch, WindowAttrs, WindowGeometry, shared_scratch,
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
#: input shapes a Conv node keeps bound direct-loop calls for
_MAX_DIRECT_CALLS = 16


#: Conv's in-place epilogue: activate(y) on a fresh float array (or a view of one).
Activation = Callable[[Any], Any]


@dataclass(frozen=True)
class _ConvPlan:
    """How Conv computes one input shape: method and column chunks."""

    geo: WindowGeometry
    method: str  # "gemm" (im2col + one GEMM per group and chunk), "depthwise", or with the
    # compiled loops "depthwise_loop", "winograd", "direct" (small convs in one call)
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


def _conv_chunks(n: int, out_shape: tuple[int, ...], k: int, m: int,
                 threads: int = 1) -> tuple[tuple, ...]:
    """Split the GEMM columns (N * prod(out_shape)) into chunks of whole output rows of one
    image, or of whole images, of about ``_COLUMN_BUDGET / (k + m)`` columns each (``k``
    im2col rows and ``m`` output rows per column). An image split in several chunks is split
    in a multiple of ``threads`` of them, so that threads given whole chunks get equal work."""
    positions = math.prod(out_shape)
    target = max(_MIN_COLUMNS, _COLUMN_BUDGET // max(k + m, 1))
    rows = out_shape[0] if out_shape else 1
    if positions >= target or n == 1:
        per_row = positions // rows if rows else 0
        count = max(1, min(rows, -(-positions // target)))
        if n == 1 and count > 1 and threads > 1:
            count = min(rows, -(-count // threads) * threads)
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
    and float64 convolutions run compiled loops (:mod:`.conv_compiled`): depthwise convolutions
    entirely (padding read in the loop, split over the session's intra-op threads), the GEMM
    path's im2col columns (no padded copy) and its epilogue (bias, Z and activation in one
    pass), and 3x3 convolutions with unit strides as Winograd F(2x2, 3x3). The numpy code
    stays the reference and the fallback.
    """
    xp = node.xp
    loops = conv_compiled.ConvLoops(node, activation) if compiled_loops_enabled(node) else None
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
    scratch = shared_scratch(node)

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
            static = node.input_shapes[0] if node.input_shapes else None
            if static is not None and all(isinstance(d, int) for d in static) and \
                    len(static) == const_w.ndim and \
                    plan_for(window_attrs(kernel), tuple(static), const_w.shape[0],
                             prepared_w.dtype in conv_compiled.LOOP_DTYPES).method == "direct":
                loops.direct_loop(prepared_w.dtype)  # a static small conv: load it now

    transformed: list = []  # the Winograd transform of a constant W
    direct_w: dict[np.dtype, Any] = {}  # W laid out for the direct loop (constant W)

    def direct_weights(w: Any, cdt: np.dtype) -> Any:
        """W as the direct loop reads it (once for a constant W, every run for an input W)."""
        found = direct_w.get(cdt)
        if found is None:
            found = conv_compiled.direct_weights(w, group, cdt)
            if prepared_w is not None:
                direct_w[cdt] = found
        return found

    def winograd_weights(w: Any, wm: Any) -> Any:
        """W's Winograd transform (computed once for a constant W, every run for an input W,
        whose values may change between runs)."""
        if transformed:
            return transformed[0]
        u = conv_compiled.winograd_weights(wm, w.shape)
        if prepared_w is not None:
            transformed.append(u)
        return u

    # small convs of a constant W on the direct loop: the call's arguments per (X shape and
    # type, activation), so that a call that has run once skips the planning (about half
    # of a 9-position Conv's 20 µs was Python around the loop)
    direct_calls: dict[tuple, Callable[..., Any]] = {}

    def run(x: Any, w: Any, b: Any = None, z: Any = None, activate: Activation | None = None):
        if z is None and prepared_w is not None:
            call = direct_calls.get((x.shape, x.dtype, activate))
            if call is not None:
                return call(x, b)
        cdt = work_dtype(x.dtype)
        n, c = x.shape[:2]
        m = w.shape[0]
        if w.shape[1] * group != c or m % group:
            raise ValueError(
                f"{node.describe()}: X has {c} channels, W {tuple(w.shape)} with group {group}"
            )
        wa = window_attrs(tuple(w.shape[2:]))
        native = x.dtype == cdt
        fast = loops is not None and native and cdt in conv_compiled.LOOP_DTYPES
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
            if plan.method == "direct":
                wt = direct_weights(w, cdt)
                loops.direct(wa, plan.geo, wt, xc, y, bias, chunk_z,
                             activate if chunked else None)
                if z is None and prepared_w is not None and native:
                    if len(direct_calls) >= _MAX_DIRECT_CALLS:  # many shapes: start afresh
                        direct_calls.clear()
                    direct_calls[(x.shape, x.dtype, activate)] = loops.direct_call(
                        wa, plan.geo, wt, x.shape, y.shape, activate, node.empty)
            elif plan.method == "depthwise_loop":
                loops.depthwise(plan, wm, xc, y, bias, chunk_z, activate if chunked else None)
            elif plan.method == "winograd":
                u = winograd_weights(w, wm)
                loops.winograd(plan, u, xc, y, bias, chunk_z, activate if chunked else None,
                               scratch)
            elif plan.compiled:
                conv_compiled.conv_gemm_compiled(loops, plan, wa, wm, xc, y, bias, chunk_z,
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
                         conv_compiled.depthwise_loop_args(geo, wa))
    if fast and conv_compiled.direct_fits(wa, geo, n, c, m, group):
        return _ConvPlan(geo, "direct", False, (), 0, 0)
    if fast and conv_compiled.winograd_fits(wa, geo, n, c, m, group):
        tiles_h, tiles_w = -(-geo.out_shape[0] // 2), -(-geo.out_shape[1] // 2)
        images = max(1, min(n, conv_compiled.WINOGRAD_TILES // (tiles_h * tiles_w)))
        return _ConvPlan(geo, "winograd", False, (), 0, 0,
                         winograd=(tiles_h, tiles_w, images))
    if group > 1 and group == c and m == c:
        layout = phase_layout(geo, wa) if len(wa.kernel) == 2 else None
        return _ConvPlan(geo, "depthwise", False, (), 0, 0, layout)
    pointwise = taps == 1 and all(s == 1 for s in wa.strides) and not geo.padded
    k = c // group * taps
    chunks = _conv_chunks(n, geo.out_shape, c * taps, m,
                          conv_compiled.resolve_threads(node.intra_op_threads) if fast else 1)
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
    # the compiled im2col copies output rows (at least MIN_LOOP_ROW long); 1x1 chunks of
    # several images copy the images side by side
    compiled = fast and len(wa.kernel) == 2 and (
        pointwise or geo.out_shape[1] >= conv_compiled.MIN_LOOP_ROW)
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


@kernels.register("Conv", since=1)
def conv(node: NodeInfo) -> Callable[..., tuple]:
    """Conv (all versions): im2col and GEMM in cache-sized chunks (see :func:`conv_kernel`)."""
    run = conv_kernel(node)

    def compute(x: Any, w: Any, b: Any = None) -> tuple:
        return (run(x, w, b),)

    return compute
