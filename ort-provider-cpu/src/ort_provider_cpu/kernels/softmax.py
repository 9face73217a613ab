"""CPU kernels: the softmax family of nn (Softmax, LogSoftmax).

Float32/float64 (log-)softmax runs one compiled pass per row
(:mod:`~ort_provider_cpu.kernels.rowwise_loops`), rows split over the intra-op threads: over
the last axis, over the coerced 2-D rows before opset 13, and over another axis after moving
it last. The numpy path (no numba, ``compiled_kernels=0``, float16/bfloat16) takes a block of
rows at a time through max, exp and sum while it is in cache (:func:`softmax_rows`, which
com.microsoft's Attention reuses; :func:`row_softmax` gives it the compiled loop where a
node may use it); other axes and LogSoftmax use whole-array steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import ml_dtypes
import numpy as np
from ort.ep import KernelTable, NodeInfo

from ..intra_op import resolve_threads, split_work
from ..jit import compiled_loops_enabled
from .float_work import work_dtype
from .kernel_args import normalize_axis

kernels = KernelTable()


_LOW_PRECISION_FLOATS = frozenset(np.dtype(t) for t in (np.float16, ml_dtypes.bfloat16))


#: elements per block of rows that softmax takes through all its steps while in cache
_SOFTMAX_CHUNK = 1 << 15


def softmax_rows(xp: Any, x: Any, out: Any) -> Any:
    """Write the softmax of each row of the C-contiguous 2-D float array ``x`` into ``out``
    (which may be ``x``): x - max, exp, divide by the sum, a block of rows at a time."""
    rows, width = x.shape
    step = max(1, _SOFTMAX_CHUNK // max(width, 1))
    peak = xp.empty((min(step, rows), 1), x.dtype)
    total = xp.empty((min(step, rows), 1), x.dtype)
    for r0 in range(0, rows, step):
        block, o = x[r0:r0 + step], out[r0:r0 + step]
        k = block.shape[0]
        xp.max(block, axis=1, keepdims=True, out=peak[:k])
        xp.subtract(block, peak[:k], out=o)
        xp.exp(o, out=o)
        xp.sum(o, axis=1, keepdims=True, out=total[:k])
        o /= total[:k]
    return out


#: the dtypes the compiled row loops take
_LOOP_DTYPES = frozenset((np.dtype(np.float32), np.dtype(np.float64)))
#: elements of work below which a compiled row loop stays on the calling thread
_MIN_SPLIT = 1 << 15


def _row_loop_specs(dtype: np.dtype) -> tuple:
    """Argument specs of the row loops for ``dtype``: (x, out, start, stop, log)."""
    return ((dtype, 2), (dtype, 2), int, int, bool)


def row_softmax(node: NodeInfo, log: bool = False) -> Callable[[Any, Any], Any]:
    """A function ``(x, out) -> out`` writing the softmax (``log``: LogSoftmax) of each row of
    the C-contiguous 2-D float array ``x`` into the C-contiguous ``out`` (which may be ``x``):
    the compiled row loop for float32/float64 where ``node`` may use it (rows split over its
    intra-op threads), else :func:`softmax_rows` (``log`` needs the loop: numpy's LogSoftmax
    steps are in the kernel below)."""
    xp = node.xp
    if not compiled_loops_enabled(node):
        return lambda x, out: softmax_rows(xp, x, out)
    from . import rowwise_loops

    threads = resolve_threads(node.intra_op_threads)
    loops: dict[np.dtype, Any] = {}

    def loop_for(dtype: np.dtype) -> Any:
        found = loops.get(dtype)
        if found is None:
            source = (rowwise_loops.softmax_rows_f32 if dtype == np.float32
                      else rowwise_loops.softmax_rows_exact)
            found = loops[dtype] = source.prepare(*_row_loop_specs(dtype))
        return found

    for dtype in node.input_dtypes[:1]:
        if dtype is not None and np.dtype(dtype) in _LOOP_DTYPES:
            loop_for(np.dtype(dtype))  # compiled now, not on the first run

    def run(x: Any, out: Any) -> Any:
        if x.dtype not in _LOOP_DTYPES:
            return softmax_rows(xp, x, out)
        loop = loop_for(x.dtype)
        rows, width = x.shape
        if np.may_share_memory(x, out):
            # the loop vectorizes only where it does not write what it reads (4x): in place,
            # each block of rows goes through a copy in cache
            block = max(1, _MIN_SPLIT // max(width, 1))

            def work(start: int, stop: int) -> None:
                copy = np.empty((min(block, stop - start), width), x.dtype)
                for r0 in range(start, stop, block):
                    r1 = min(r0 + block, stop)
                    rows_copy = copy[:r1 - r0]
                    rows_copy[...] = x[r0:r1]
                    loop(rows_copy, out[r0:r1], 0, r1 - r0, log)
        else:
            def work(start: int, stop: int) -> None:
                loop(x, out, start, stop, log)
        if rows * width < _MIN_SPLIT or threads <= 1:
            work(0, rows)
        else:
            split_work(work, rows, threads, max(1, _MIN_SPLIT // max(width, 1)))
        return out

    return run


def _softmax_factory(node: NodeInfo, log: bool) -> Callable[..., tuple]:
    """Build Softmax/LogSoftmax: opset < 13 coerces to 2-D at ``axis``, 13+ uses one axis.

    Softmax of float16/bfloat16 runs in the input type step by step (x - max, exp, sum,
    divide), which is how the spec's reference and the suite's expected outputs round."""
    xp = node.xp
    coerce = node.since_version < 13
    axis = int(node.attrs.get("axis", 1 if coerce else -1))

    def along_axis(xc: Any, ax: int) -> Any:
        """Return (log-)softmax of ``xc`` along ``ax``, shifted by the max for stability."""
        shifted = xc - xc.max(axis=ax, keepdims=True)
        if log:
            shifted -= xp.log(xp.exp(shifted).sum(axis=ax, keepdims=True))
            return shifted
        xp.exp(shifted, out=shifted)
        shifted /= shifted.sum(axis=ax, keepdims=True)
        return shifted

    rows_loop = row_softmax(node, log) if compiled_loops_enabled(node) else None

    def by_loop(x: Any, ax: int) -> Any:
        """(Log-)softmax by the row loop: rows of the coerced 2-D view, or along ``ax``."""
        if coerce or ax == x.ndim - 1:
            rows = math.prod(x.shape[:ax]) if coerce else math.prod(x.shape[:-1])
            flat = xp.ascontiguousarray(x).reshape(rows, -1)
            out = node.empty(x.shape, x.dtype)
            rows_loop(flat, out.reshape(flat.shape))
            return out
        moved = xp.array(xp.moveaxis(x, ax, -1), order="C", copy=True)  # fresh: in place
        rows_loop(moved.reshape(-1, moved.shape[-1]), moved.reshape(-1, moved.shape[-1]))
        return xp.ascontiguousarray(xp.moveaxis(moved, -1, ax))

    def compute(x: Any) -> tuple:
        ax = normalize_axis(node, axis, x.ndim, scalar_ok=True)
        if x.size == 0:
            return (xp.array(x, copy=True),)
        if rows_loop is not None and x.dtype in _LOOP_DTYPES and x.ndim:
            return (by_loop(x, ax),)
        if log or x.dtype not in _LOW_PRECISION_FLOATS:
            xc = x.astype(work_dtype(x.dtype), copy=False)
        else:  # each step rounded to the input type, as the ONNX reference computes it
            xc = x
        if not log and xc.dtype == work_dtype(x.dtype) and (coerce or ax == x.ndim - 1):
            rows = math.prod(x.shape[:ax]) if coerce else math.prod(x.shape[:-1])
            flat = xp.ascontiguousarray(xc).reshape(rows, -1)
            y = softmax_rows(xp, flat, xp.empty_like(flat)).reshape(x.shape)
        elif coerce:
            rows = math.prod(x.shape[:ax])
            y = along_axis(xc.reshape(rows, -1), 1).reshape(x.shape)
        else:
            y = along_axis(xc, ax)
        return (y.astype(x.dtype, copy=False),)

    return compute


@kernels.register("Softmax", since=1)
def softmax(node: NodeInfo) -> Callable[..., tuple]:
    """Softmax (all versions), numerically stable."""
    return _softmax_factory(node, log=False)


@kernels.register("LogSoftmax", since=1)
def log_softmax(node: NodeInfo) -> Callable[..., tuple]:
    """LogSoftmax (all versions), numerically stable."""
    return _softmax_factory(node, log=True)
