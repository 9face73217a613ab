"""Compiled loops for the CPU provider: numba, imported and compiled only when a session needs it.

Kernels whose work numpy cannot express in a few passes (depthwise convolution, pooling,
recurrent steps, tree traversal, row-wise normalizations, integer GEMM) keep a numpy
implementation as their reference and add a loop compiled by numba. The loops are plain Python
functions in ``*_loops`` modules, decorated with :func:`compiled`, which only records them:
neither ``import ort`` nor importing this provider imports numba (about 0.3 s). A kernel factory
asks for its loop with :meth:`CompiledLoop.prepare` (giving the argument types it will call it
with), which imports numba, then loads the machine code from the on-disk cache or compiles it
(0.3-1 s a loop, once per user and version of the source). A session therefore loads only the
loops its model uses.

Where numba is missing or fails to import, :func:`compiled_loops_enabled` is False and kernels
run their numpy implementations; one :class:`RuntimeWarning` says so and names the cost. The CPU
provider option ``compiled_kernels = "0"`` does the same for one session (tests compare both
paths with it; ``ORT_CPU_COMPILED_KERNELS=0`` sets the default for the process).

Cache: numba's ``cache=True``, kept in one directory per user rather than next to the installed
source (which may be read-only or shared by several users): ``$ORT_CACHE_DIR/numba``, else
``$XDG_CACHE_HOME/ort/numba``, else ``~/.cache/ort/numba``; where that is not writable, a
directory of the user's in the system's temporary directory. Entries are keyed by the source
file's content, so an upgrade never loads stale code. Loops are compiled ``nogil=True``: the CPU
provider splits large calls over its own threads (:mod:`ort_provider_cpu.intra_op`), so numba's
threading layers (one of which aborts the process when two threads enter it at once) are never
used.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "CompiledHelper",
    "CompiledLoop",
    "cache_directory",
    "compile_seconds",
    "compiled",
    "compiled_helper",
    "compiled_loops_enabled",
    "numba_available",
]

#: environment variable that, set to 0, makes the numpy kernels the process's default
ENV_SWITCH = "ORT_CPU_COMPILED_KERNELS"
#: the CPU provider option that turns compiled loops off ("0") for one session
PROVIDER_OPTION = "compiled_kernels"

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_lock = threading.RLock()
_numba: Any = None
_numba_failure: str | None = None
_warned = False
_stats = {"compile_s": 0.0, "load_s": 0.0, "import_s": 0.0, "compiled": 0, "loaded": 0}


def cache_directory() -> str:
    """The directory numba's cache of this provider's loops lives in (created on first use)."""
    root = os.environ.get("ORT_CACHE_DIR")
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "ort")
    return os.path.join(root, "numba")


def _fallback_cache_directory() -> str:
    """A per-user directory in the system's temporary directory (for an unwritable home)."""
    user = getattr(os, "getuid", lambda: os.getpid())()
    return os.path.join(tempfile.gettempdir(), f"ort-numba-{user}")


def _install_cache_locator(numba: Any) -> None:
    """Put a locator for this package's source files first in numba's list, so that its loops
    are cached in :func:`cache_directory` (other code's caching is left as numba does it)."""
    from numba.core import caching

    impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl
    if any(getattr(c, "_ort_locator", False) for c in impl._locator_classes):
        return

    class OrtCacheLocator(caching._SourceFileBackedLocatorMixin, caching._CacheLocator):
        """Caches the CPU provider's loops in the per-user ort cache directory."""

        _ort_locator = True

        def __init__(self, py_func: Any, py_file: str, root: str) -> None:
            self._py_file = py_file
            self._lineno = py_func.__code__.co_firstlineno
            self._cache_path = os.path.join(root, self.get_suitable_cache_subpath(py_file))

        def get_cache_path(self) -> str:
            return self._cache_path

        @classmethod
        def from_function(cls, py_func: Any, py_file: str) -> Any:
            if not os.path.abspath(py_file).startswith(_PACKAGE_DIR + os.sep):
                return None
            for root in (cache_directory(), _fallback_cache_directory()):
                locator = cls(py_func, py_file, root)
                try:
                    locator.ensure_cache_path()
                except OSError:
                    continue
                return locator
            return None

    impl._locator_classes.insert(0, OrtCacheLocator)


def numba_available() -> bool:
    """Whether numba imports here (imports it on the first call; warns once where it fails)."""
    global _numba, _numba_failure, _warned
    if _numba is not None:
        return True
    if _numba_failure is not None:
        return False
    with _lock:
        if _numba is None and _numba_failure is None:
            start = time.perf_counter()
            try:
                import numba
            except Exception as error:  # noqa: BLE001 - any import failure means: no numba
                _numba_failure = f"{type(error).__name__}: {error}"
            else:
                try:
                    _install_cache_locator(numba)
                except Exception as error:  # noqa: BLE001 - numba's own cache places remain
                    warnings.warn(f"ort could not place numba's cache in {cache_directory()} "
                                  f"({type(error).__name__}: {error}); numba's default is used",
                                  RuntimeWarning, stacklevel=3)
                _numba = numba
            _stats["import_s"] += time.perf_counter() - start
        if _numba_failure is not None and not _warned:
            _warned = True
            warnings.warn(
                "ort's CPU provider could not import numba "
                f"({_numba_failure}); it runs its numpy kernels instead, which are 2-6x slower "
                "on convolutional, recurrent and tree-ensemble models. Install numba "
                "(pip install numba) for the compiled kernels.",
                RuntimeWarning, stacklevel=3)
    return _numba is not None


def compiled_loops_enabled(node: Any = None) -> bool:
    """Whether a kernel should use its compiled loop: numba imports, the node runs on numpy
    arrays (the CUDA provider reuses kernels with cupy), and neither the session's CPU provider
    option ``compiled_kernels`` nor ``ORT_CPU_COMPILED_KERNELS`` is ``"0"``."""
    if node is not None:
        if getattr(node, "xp", np) is not np:
            return False
        options = getattr(getattr(node, "provider", None), "options", None) or {}
        setting = options.get(PROVIDER_OPTION)
        if setting is not None:
            return setting != "0" and numba_available()
    if os.environ.get(ENV_SWITCH, "1") == "0":
        return False
    return numba_available()


def compile_seconds() -> dict[str, float]:
    """Time this process spent on compiled loops: ``import_s`` (importing numba),
    ``compile_s`` (compiling signatures not in the cache), ``load_s`` (loading cached ones), and
    the counts ``compiled`` and ``loaded`` (what the benchmark reports)."""
    return dict(_stats)


_SCALARS = {int: "int64", float: "float64", bool: "boolean"}


def _numba_type(spec: Any) -> Any:
    """The numba type of one argument spec: ``(dtype, ndim)`` is a C-contiguous array,
    ``(dtype, ndim, "A")`` any layout, ``int``/``float``/``bool`` a scalar, a dtype a scalar of it,
    a tuple starting with ``"tuple"`` a homogeneous tuple ``("tuple", spec, count)``."""
    types = _numba.types
    if spec in _SCALARS:
        return getattr(types, _SCALARS[spec])
    if isinstance(spec, tuple) and spec and spec[0] == "tuple":
        return types.UniTuple(_numba_type(spec[1]), int(spec[2]))
    if isinstance(spec, tuple):
        dtype, ndim = np.dtype(spec[0]), int(spec[1])
        layout = spec[2] if len(spec) > 2 else "C"
        return types.Array(_numba.from_dtype(dtype), ndim, layout)
    return _numba.from_dtype(np.dtype(spec))


class CompiledLoop:
    """A loop compiled by numba on demand (see the module docstring).

    Calling the object runs the Python function itself (for debugging and as the numba-free
    fallback of small helpers); :meth:`prepare` returns the compiled dispatcher.
    """

    def __init__(self, function: Callable[..., Any], options: dict[str, Any]) -> None:
        self.function = function
        self.options = options
        self._dispatcher: Any = None
        self._signatures: set[tuple] = set()
        self.__doc__ = function.__doc__
        self.__name__ = function.__name__

    def __call__(self, *args: Any) -> Any:
        return self.function(*args)

    def dispatcher(self) -> Any:
        """The numba dispatcher (numba must be available: check :func:`compiled_loops_enabled`)."""
        if self._dispatcher is None:
            with _lock:
                if self._dispatcher is None:
                    if not numba_available():
                        raise RuntimeError(f"{self.__name__}: numba is not available; install numba, "
                                           "or check compiled_loops_enabled() before "
                                           "preparing a loop")
                    self._dispatcher = _numba.njit(**self.options)(self.function)
        return self._dispatcher

    def prepare(self, *arg_specs: Any) -> Callable[..., Any]:
        """Return the compiled function after making sure the signature of ``arg_specs`` (see
        :func:`_numba_type`: ``(dtype, ndim)`` arrays, ``int``/``float``/``bool`` scalars) is
        loaded from the cache or compiled, so that the kernel's first run does not pay for it.
        Calls with other types still work (numba compiles them on first use)."""
        dispatcher = self.dispatcher()
        key = tuple(arg_specs)
        if key not in self._signatures:
            with _lock:
                if key not in self._signatures:
                    signature = tuple(_numba_type(spec) for spec in arg_specs)
                    hits_before = sum(dispatcher.stats.cache_hits.values())
                    start = time.perf_counter()
                    dispatcher.compile(signature)
                    elapsed = time.perf_counter() - start
                    hits = sum(dispatcher.stats.cache_hits.values())
                    if hits > hits_before:
                        _stats["load_s"] += elapsed
                        _stats["loaded"] += 1
                    else:
                        _stats["compile_s"] += elapsed
                        _stats["compiled"] += 1
                    self._signatures.add(key)
        return dispatcher


class CompiledHelper(CompiledLoop):
    """A compiled function other compiled loops call (numba types it as its dispatcher and
    inlines it: ``inline="always"``); see :func:`compiled_helper`."""

    @property
    def _numba_type_(self) -> Any:
        return _numba.types.Dispatcher(self.dispatcher())


def compiled_helper(function: Callable[..., Any]) -> CompiledHelper:
    """Decorator: record a helper the loops of a ``*_loops`` module call (an activation, a
    rational tanh); like :func:`compiled`, nothing imports numba until a loop using it is
    prepared."""
    loop = compiled(inline="always")(function)
    return CompiledHelper(loop.function, loop.options)


def compiled(*, fastmath: bool = False, **options: Any) -> Callable[[Callable[..., Any]],
                                                                     CompiledLoop]:
    """Decorator: record a loop to compile with numba (``nogil=True``, ``cache=True`` and
    ``error_model="numpy"`` unless ``options`` say otherwise). ``fastmath`` lets LLVM reorder
    float sums (vectorized reductions); leave it off where results must match numpy's rounding
    order closely or where NaN/inf must propagate."""
    settings = {"nogil": True, "cache": True, "error_model": "numpy", "fastmath": fastmath}
    settings.update(options)

    def decorate(function: Callable[..., Any]) -> CompiledLoop:
        return CompiledLoop(function, settings)

    return decorate
