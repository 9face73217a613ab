"""Bounding the BLAS threads a run uses (``SessionOptions.intra_op_num_threads``).

numpy's matrix products run on its BLAS library's own thread pool. A session with
``intra_op_num_threads = n > 0`` sets that pool to ``n`` threads for the duration of each run
and restores the previous count afterwards, through threadpoolctl's controllers (found once per
session). The setting is process-wide while a run is in progress, as BLAS offers no per-call
control; ``0`` (the default) leaves BLAS alone.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

__all__ = ["BlasThreadLimit"]


class BlasThreadLimit:
    """A reusable context manager limiting every loaded BLAS library to ``threads``."""

    def __init__(self, threads: int) -> None:
        self.threads = int(threads)
        self._libraries: list[Any] = []
        self._saved: list[int] = []
        if self.threads > 0:
            from threadpoolctl import ThreadpoolController

            self._libraries = list(ThreadpoolController().select(user_api="blas").lib_controllers)

    @property
    def active(self) -> bool:
        """Whether there is anything to limit."""
        return bool(self._libraries)

    def __enter__(self) -> BlasThreadLimit:
        self._saved = [lib.get_num_threads() for lib in self._libraries]
        for lib in self._libraries:
            lib.set_num_threads(self.threads)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        for lib, count in zip(self._libraries, self._saved):
            lib.set_num_threads(count)
