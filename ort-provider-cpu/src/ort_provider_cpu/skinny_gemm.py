"""Products of a few rows with a constant weight matrix, run as a batch of narrow panels.

OpenBLAS's GEMM for few rows of A (M up to a few dozen: a batch of 1-32 through an MLP, a
decoder step) packs the whole of B on every call and runs edge kernels, reaching about a
fifth of the machine's bandwidth. Its *small-matrix* kernels (AVX-512 builds, products with
M·N·K up to 10⁶) skip packing. Splitting a constant B (K×N) once into panels of ``width``
columns, stored as one C-ordered (N/width, K, width) array, turns ``A @ B`` into a batch of
small products that take that path: 2-5× faster at M ≤ 16 on this kind of machine, the way
onnxruntime's pre-packed weights are.

Whether it pays depends on the BLAS library, its kernel selection (``OPENBLAS_CORETYPE``) and
its thread count, so it is measured once per process and thread count on a product of this
shape (a few milliseconds) and used only where it wins by a clear margin. Panels are made on
the first product that uses them and kept for the session's life (a second copy of that
weight).
"""

from __future__ import annotations

import threading
import time

import numpy as np

from .intra_op import split_work
from .threaded_gemm import pieces_for

__all__ = ["PanelledWeight", "panels_pay"]

#: OpenBLAS's small-matrix kernels take products up to this many multiply-adds (M·N·K).
_SMALL_PRODUCT = 1_000_000
#: Panel widths tried, widest first (16 columns is one AVX-512 register of float32).
_WIDTHS = (32, 16)
#: Rows of A above which the plain product is as fast.
_MAX_ROWS = 32
#: How much faster the panels must be on the probe to be used.
_MARGIN = 1.2

_probe_lock = threading.Lock()
_probed: dict[int, bool] = {}
_blas_libraries: list | None = None


def _blas_threads() -> int:
    """The thread count numpy's BLAS uses now (0 when threadpoolctl cannot tell)."""
    global _blas_libraries
    if _blas_libraries is None:
        try:
            from threadpoolctl import ThreadpoolController

            _blas_libraries = list(ThreadpoolController().select(user_api="blas").lib_controllers)
        except Exception:  # threadpoolctl missing or unable to inspect this BLAS
            _blas_libraries = []
    return _blas_libraries[0].get_num_threads() if _blas_libraries else 0


def _best_time(function, repeats: int = 5) -> float:
    function()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def panels_pay() -> bool:
    """Whether panelled products beat numpy's plain product for few rows with this BLAS and
    thread count (measured on the first call for each thread count)."""
    threads = _blas_threads()
    known = _probed.get(threads)
    if known is not None:
        return known
    with _probe_lock:
        if threads not in _probed:
            rng = np.random.default_rng(0)
            rows, depth, columns = 8, 1024, 2048
            a = rng.standard_normal((rows, depth), dtype=np.float32)
            weight = PanelledWeight(rng.standard_normal((depth, columns), dtype=np.float32))
            width = _width(rows, depth)
            plain = _best_time(lambda: np.matmul(a, weight.b))
            panelled = _best_time(lambda: weight._panelled(a, width))
            _probed[threads] = plain > _MARGIN * panelled
    return _probed[threads]


def _width(rows: int, depth: int) -> int:
    """The widest panel keeping each product within the small-matrix kernels, or 0 (also for
    one row: OpenBLAS's GEMV streams B at the memory's speed, 1.4x the panels' here)."""
    if rows > _MAX_ROWS or rows < 2:
        return 0
    for width in _WIDTHS:
        if rows * width * depth <= _SMALL_PRODUCT:
            return width
    return 0


class PanelledWeight:
    """A constant float32 matrix ``b`` (K×N) multiplied from the left by few rows, through
    panels made once per width."""

    def __init__(self, b: np.ndarray) -> None:
        self.b = b
        self._panels: dict[int, np.ndarray] = {}

    def product(self, a: np.ndarray, threads: int = 1) -> np.ndarray | None:
        """``a @ b`` as a fresh C-ordered array when panels pay for ``a``'s rows, else None
        (the caller runs its plain product); the panels are split over ``threads`` intra-op
        threads when the product is large enough."""
        if a.ndim != 2 or a.dtype != np.float32 or self.b.dtype != np.float32:
            return None
        width = _width(a.shape[0], a.shape[1])
        if not width or self.b.shape[1] < 2 * width or not panels_pay():
            return None
        return self._panelled(a, width, threads)

    def _panelled(self, a: np.ndarray, width: int, threads: int = 1) -> np.ndarray:
        panels = self._panels.get(width)
        if panels is None:
            panels = self._panels[width] = _split(self.b, width)
        rows, columns = a.shape[0], self.b.shape[1]
        pieces = pieces_for(rows * columns * a.shape[1], threads)
        if pieces > 1 and panels.shape[0] >= pieces:
            blocks = np.empty((panels.shape[0], rows, width), np.result_type(a, panels))
            split_work(lambda s, e: np.matmul(a, panels[s:e], out=blocks[s:e]),
                       panels.shape[0], pieces)
        else:
            blocks = np.matmul(a, panels)  # (N/width, M, width)
        result = np.empty((rows, panels.shape[0] * width), dtype=blocks.dtype)
        result.reshape(rows, panels.shape[0], width)[...] = blocks.transpose(1, 0, 2)
        return result if result.shape[1] == columns else np.ascontiguousarray(result[:, :columns])


def _split(b: np.ndarray, width: int) -> np.ndarray:
    """``b`` (K×N) as C-ordered panels (ceil(N/width), K, width), the last one zero-padded."""
    depth, columns = b.shape
    count = -(-columns // width)
    panels = np.zeros((count, depth, width), dtype=b.dtype)
    full = columns // width
    if full:
        panels[:full] = b[:, :full * width].reshape(depth, full, width).transpose(1, 0, 2)
    if full < count:
        panels[full, :, :columns - full * width] = b[:, full * width:]
    return panels
