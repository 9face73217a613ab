"""fake_cupy: a numpy-backed TEST DOUBLE of the parts of cupy the CUDA provider uses.

This is not cupy and never ships: it lives under ``ort-provider-cuda/tests`` and is put in
``sys.modules["cupy"]`` only by the ``fake_cupy`` fixture (``conftest.py``) for one test;
``ort_provider_cuda`` never imports it (``test_fake_cupy.py`` checks the sources). It lets the
provider, its kernels, copies, streams, memory limits and CUDA-graph capture run end to end on
a machine without a GPU. What it models beyond "numpy under another name":

* cupy's API surface, from ``cupy_api.json`` (written by ``snapshot_api.py`` from a real cupy
  wheel): a function, ufunc keyword, ndarray attribute or method cupy lacks fails as in cupy;
* device memory as its own array type: ``__array__`` raises TypeError like cupy's, numpy arrays
  are refused as operands (cupy's ``Unsupported type``), numpy functions called on device
  arrays dispatch through ``__array_function__``/``__array_ufunc__`` to the cupy function of
  the same name or fail when cupy has none; only cupy's dtypes exist (no strings, objects,
  bfloat16, float8, int4); reductions return 0-d arrays, not numpy scalars;
* implicit device-to-host synchronizations (``get``, ``tolist``, ``item``, ``bool``/``int``/
  ``float`` of an array, boolean-mask indexing, ``nonzero``...) are counted in :data:`stats`
  and are errors during stream capture, as are host-to-device copies;
* devices and streams as context managers (arrays remember their device; an op on an array of
  another device fails), memory pools with limits, ``using_allocator``;
* stream capture: ops issued on the capturing stream are recorded on a tape that
  ``Graph.launch`` replays; the fresh buffers of a capture are poisoned (NaN) when it ends,
  since a real capture executes nothing.

Not modelled: kernel timing, asynchronous execution (everything completes immediately),
float16 rounding differences (numpy rounds after every op like cupy's half kernels mostly do),
cuBLAS/cuDNN, multi-GPU peer access.
"""

from __future__ import annotations

import ctypes
import functools
import json
import math
import operator
import threading
import types
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

IS_TEST_DOUBLE = True

_API = json.loads(Path(__file__).with_name("cupy_api.json").read_text(encoding="utf-8"))
__version__ = _API["cupy_version"] + "+fake"
_SUPPORTED_KINDS = frozenset("biufc")
_UNIT = 512  # cupy's memory pools round allocations to 512 bytes


# ------------------------------------------------------------------------------------------
# state and statistics
# ------------------------------------------------------------------------------------------


class Stats:
    """What the fake saw: synchronizations (with the reason), copies, ops and graph launches."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Zero every counter."""
        self.syncs: list[str] = []
        self.streams: dict[str, set[int]] = {"ops": set(), "h2d": set(), "d2h": set()}
        self.h2d = 0
        self.d2h = 0
        self.ops = 0
        self.launches = 0
        self.captures = 0


stats = Stats()
device_count = 1  # tests may raise it to check device_id validation


class _ThreadState(threading.local):
    def __init__(self) -> None:
        self.devices: list[int] = []
        self.streams: list[Any] = []
        self.allocators: list[Callable[[int], Any]] = []


_tls = _ThreadState()
_capture: _Capture | None = None


class _Capture:
    """A stream capture in progress: the stream and the ops recorded on it."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.tape: list[tuple[str, Callable, tuple, dict, Any]] = []
        self.fresh: list[weakref.ref] = []
        self.invalidated = False  # an illegal operation happened: end_capture fails


def _current_device() -> int:
    return _tls.devices[-1] if _tls.devices else 0


def _sync(reason: str) -> None:
    """Record a device-to-host synchronization; an error while a stream is capturing."""
    stats.syncs.append(reason)
    if _capture is not None:
        _capture.invalidated = True
        raise cuda.runtime.CUDARuntimeError(
            900, f"cudaErrorStreamCaptureUnsupported: {reason} synchronizes with the host "
            "while a stream is capturing")


# ------------------------------------------------------------------------------------------
# the device array
# ------------------------------------------------------------------------------------------


def _check_dtype(dtype: Any) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype.kind not in _SUPPORTED_KINDS:
        raise TypeError(f"Unsupported dtype {dtype}")
    return dtype


def _account(array: np.ndarray) -> None:
    """Charge a fresh buffer to the current allocator; it is given back when freed."""
    memptr = cuda.get_allocator()(array.nbytes)
    release = getattr(memptr.mem, "_release", None)
    if release is not None:
        weakref.finalize(array, release)
    if _capture is not None:
        _capture.fresh.append(weakref.ref(array))


def _new(array: np.ndarray, fresh: bool) -> ndarray:
    _check_dtype(array.dtype)
    obj = ndarray.__new__(ndarray)
    obj._a = array
    obj._device = _current_device()
    if fresh:
        _account(array)
    return obj


_NO_NUMPY = "Implicit conversion to a NumPy array is not allowed. Please use `.get()` to " \
            "construct a NumPy array explicitly."


class ndarray:  # noqa: N801 - cupy's name
    """A device array: a numpy array only the fake's functions and this class's methods read."""

    __slots__ = ("_a", "_device", "__weakref__")
    __array_priority__ = 100

    def __init__(self, shape: Any, dtype: Any = float, memptr: Any = None, strides: Any = None,
                 order: str = "C") -> None:
        dtype = _check_dtype(dtype)
        shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(shape)
        if memptr is None:
            self._a = np.empty(shape, dtype, order=order)
            _account(self._a)
        else:
            self._a = memptr._view(shape, dtype, strides)
        self._device = _current_device()

    # -- plain attributes --------------------------------------------------------------------
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    strides = property(lambda self: self._a.strides)
    T = property(lambda self: _run("ndarray.T", lambda a: a.T, (self,), {}))
    mT = property(lambda self: _run("ndarray.mT", lambda a: a.mT, (self,), {}))
    flags = property(lambda self: _Flags(self._a.flags))
    base = property(lambda self: None if self._a.base is None else self)

    @property
    def data(self) -> cuda.MemoryPointer:
        """The device pointer of the first element."""
        ptr = self._a.__array_interface__["data"][0]
        return cuda.MemoryPointer(cuda.UnownedMemory(ptr, self._a.nbytes, self), 0)

    @property
    def device(self) -> cuda.Device:
        """The device the array lives on."""
        return cuda.Device(self._device)

    def __getattr__(self, name: str) -> Any:
        spec = _API["ndarray"].get(name)
        if spec is None or name.startswith("_"):
            raise AttributeError(f"'cupy.ndarray' object has no attribute '{name}'")
        if spec["kind"] == "attribute":
            return _run(f"ndarray.{name}", lambda a: getattr(a, name), (self,), {})
        if not hasattr(self._a, name):
            raise NotImplementedError(f"fake_cupy does not model cupy.ndarray.{name}")
        return functools.partial(_method, self, name, spec)

    # -- host conversions (all synchronize) ----------------------------------------------------
    def get(self, stream: Any = None, order: str = "C", out: Any = None,
            blocking: bool = True) -> np.ndarray:
        """Copy to a new host array."""
        _sync("ndarray.get")
        stats.d2h += 1
        stats.streams["d2h"].add((stream or cuda.get_current_stream()).ptr)
        if out is not None:
            np.copyto(out, self._a)
            return out
        return np.array(self._a, order=order, copy=True)

    def set(self, arr: np.ndarray, stream: Any = None) -> None:
        """Copy a host array into this array."""
        _h2d("ndarray.set")
        np.copyto(self._a, np.asarray(arr))

    def tolist(self) -> Any:
        _sync("ndarray.tolist")
        return self._a.tolist()

    def item(self) -> Any:
        _sync("ndarray.item")
        return self._a.item()

    def __bool__(self) -> bool:
        _sync("bool(ndarray)")
        return bool(self._a)

    def __int__(self) -> int:
        _sync("int(ndarray)")
        return int(self._a)

    def __float__(self) -> float:
        _sync("float(ndarray)")
        return float(self._a)

    def __complex__(self) -> complex:
        _sync("complex(ndarray)")
        return complex(self._a)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise TypeError(_NO_NUMPY)

    def __repr__(self) -> str:
        return f"fake_cupy.{self._a!r}"

    def __len__(self) -> int:
        return len(self._a)

    def __iter__(self):
        for i in range(len(self._a)):
            yield self[i]

    __hash__ = None  # type: ignore[assignment]

    # -- numpy protocol: dispatch to the cupy function of the same name, as cupy does ----------
    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        fake = _UFUNCS.get(ufunc.__name__)
        if fake is None:
            return NotImplemented
        if method == "__call__":
            return fake(*inputs, **kwargs)
        if method in ("reduce", "accumulate", "at", "outer", "reduceat"):
            return getattr(fake, method)(*inputs, **kwargs)
        return NotImplemented

    def __array_function__(self, func: Any, types_: Any, args: Any, kwargs: Any) -> Any:
        parts = func.__module__.split(".")[1:]
        namespace: Any = _MODULE
        for part in parts:
            namespace = getattr(namespace, part, None)
            if namespace is None:
                return NotImplemented
        fake = getattr(namespace, func.__name__, None)
        if fake is None:
            return NotImplemented
        return fake(*args, **kwargs)

    # -- indexing ----------------------------------------------------------------------------
    def __getitem__(self, index: Any) -> ndarray:
        index = _device_index(index)
        if _is_mask_index(index):
            _sync("boolean mask indexing")
        return _run("getitem", operator.getitem, (self, index), {})

    def __setitem__(self, index: Any, value: Any) -> None:
        index = _device_index(index)
        _run("setitem", _setitem, (self, index, value), {})

    # -- cupy-only methods: atomic scatters (numpy's ufunc.at) ------------------------------
    def scatter_add(self, slices: Any, value: Any) -> None:
        _run("ndarray.scatter_add", np.add.at, (self, _device_index(slices), value), {})

    def scatter_max(self, slices: Any, value: Any) -> None:
        _run("ndarray.scatter_max", np.maximum.at, (self, _device_index(slices), value), {})

    def scatter_min(self, slices: Any, value: Any) -> None:
        _run("ndarray.scatter_min", np.minimum.at, (self, _device_index(slices), value), {})


def _setitem(array: np.ndarray, index: Any, value: Any) -> np.ndarray:
    array[index] = value
    return array


def _device_index(index: Any) -> Any:
    """An index with its host arrays and lists copied to the device (as cupy does)."""
    items = index if isinstance(index, tuple) else (index,)
    converted = []
    for item in items:
        if isinstance(item, (np.ndarray, list)) and not isinstance(item, ndarray):
            item = asarray(np.asarray(item))
        converted.append(item)
    return tuple(converted) if isinstance(index, tuple) else converted[0]


def _is_mask_index(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, ndarray) and i.dtype == np.bool_ for i in items)


class _Flags:
    """cupy's ndarray.flags: only c_contiguous, f_contiguous and owndata (no writeable)."""

    __slots__ = ("_flags",)

    def __init__(self, flags: Any) -> None:
        self._flags = flags

    c_contiguous = property(lambda self: self._flags.c_contiguous)
    f_contiguous = property(lambda self: self._flags.f_contiguous)
    owndata = property(lambda self: self._flags.owndata)
    fnc = property(lambda self: self._flags.fnc)
    forc = property(lambda self: self._flags.forc)

    def __getitem__(self, key: str) -> bool:
        return {"C_CONTIGUOUS": self.c_contiguous, "F_CONTIGUOUS": self.f_contiguous,
                "OWNDATA": self.owndata}[key]


# -- operators: the cupy ufunc of the same name --------------------------------------------


def _binary(name: str, reflected: bool = False, inplace: bool = False) -> Callable:
    def op(self: ndarray, other: Any) -> Any:
        fn = _UFUNCS[name]
        if inplace:
            return fn(self, other, out=self)
        return fn(other, self) if reflected else fn(self, other)

    return op


for _dunder, _name in (("add", "add"), ("sub", "subtract"), ("mul", "multiply"),
                       ("truediv", "true_divide"), ("floordiv", "floor_divide"),
                       ("mod", "remainder"), ("pow", "power"), ("matmul", "matmul"),
                       ("and", "bitwise_and"), ("or", "bitwise_or"), ("xor", "bitwise_xor"),
                       ("lshift", "left_shift"), ("rshift", "right_shift")):
    setattr(ndarray, f"__{_dunder}__", _binary(_name))
    setattr(ndarray, f"__r{_dunder}__", _binary(_name, reflected=True))
    setattr(ndarray, f"__i{_dunder}__", _binary(_name, inplace=True))
for _dunder, _name in (("eq", "equal"), ("ne", "not_equal"), ("lt", "less"),
                       ("le", "less_equal"), ("gt", "greater"), ("ge", "greater_equal")):
    setattr(ndarray, f"__{_dunder}__", _binary(_name))
for _dunder, _name in (("neg", "negative"), ("pos", "positive"), ("abs", "absolute"),
                       ("invert", "invert")):
    setattr(ndarray, f"__{_dunder}__", lambda self, _n=_name: _UFUNCS[_n](self))


def _method(array: ndarray, name: str, spec: dict, *args: Any, **kwargs: Any) -> Any:
    _check_keywords(f"cupy.ndarray.{name}", spec, kwargs)
    if name in ("nonzero",):
        _sync(f"ndarray.{name}")
    return _run(f"ndarray.{name}", lambda a, *p, **k: getattr(a, name)(*p, **k),
                (array, *args), kwargs)


# ------------------------------------------------------------------------------------------
# running ops: argument checks, wrapping, recording for graph capture
# ------------------------------------------------------------------------------------------


def _check_keywords(label: str, spec: dict | None, kwargs: dict) -> None:
    if not spec or spec.get("params") is None or spec.get("varkw"):
        return
    unknown = sorted(set(kwargs) - set(spec["params"]))
    if unknown:
        raise TypeError(f"{label}() got unexpected keyword argument(s) {unknown} "
                        f"(cupy {_API['cupy_version']} accepts {spec['params']})")


def _check_operands(label: str, value: Any) -> None:
    """cupy refuses numpy arrays as operands, and arrays of another device."""
    if isinstance(value, ndarray):
        if value._device != _current_device():
            raise ValueError(
                f"{label}: The device where the array resides ({value._device}) is different "
                f"from the current device ({_current_device()}). Peer access is unavailable "
                "between these devices.")
    elif isinstance(value, np.ndarray):
        raise TypeError(f"{label}: Unsupported type {type(value)}")
    elif isinstance(value, (list, tuple)):
        for item in value:
            _check_operands(label, item)
    elif isinstance(value, dict):
        for item in value.values():
            _check_operands(label, item)


def _unwrap(value: Any, memo: dict[int, ndarray]) -> Any:
    if isinstance(value, ndarray):
        memo[id(value._a)] = value
        return value._a
    if isinstance(value, tuple):
        return tuple(_unwrap(v, memo) for v in value)
    if isinstance(value, list):
        return [_unwrap(v, memo) for v in value]
    if isinstance(value, dict):
        return {k: _unwrap(v, memo) for k, v in value.items()}
    return value


def _wrap(value: Any, memo: dict[int, ndarray]) -> Any:
    if isinstance(value, np.ndarray):
        known = memo.get(id(value))
        if known is not None and known._a is value:
            return known
        return _new(value, fresh=value.base is None)
    if isinstance(value, np.generic):
        return _new(np.asarray(value), fresh=True)
    if isinstance(value, tuple):
        return tuple(_wrap(v, memo) for v in value)
    if isinstance(value, list):
        return [_wrap(v, memo) for v in value]
    return value


def _check_stream(label: str) -> bool:
    """Whether the op is captured; raise when it may not run during a capture."""
    capture = _capture
    if capture is None:
        return False
    stream = cuda.get_current_stream()
    if stream is capture.stream:
        return True
    if stream.is_null:
        capture.invalidated = True
        raise cuda.runtime.CUDARuntimeError(
            904, f"cudaErrorStreamCaptureImplicit: {label} on the legacy default stream while "
            "another stream is capturing")
    return False


def _run(label: str, fn: Callable, args: tuple, kwargs: dict) -> Any:
    _check_operands(label, args)
    _check_operands(label, kwargs)
    captured = _check_stream(label)
    memo: dict[int, ndarray] = {}
    with np.errstate(all="ignore"):
        result = fn(*_unwrap(args, memo), **_unwrap(kwargs, memo))
    out = _wrap(result, memo)
    stats.ops += 1
    stats.streams["ops"].add(cuda.get_current_stream().ptr)
    if captured:
        _capture.tape.append((label, fn, args, kwargs, out))
    return out


def _rebind(out: Any, result: Any) -> None:
    if isinstance(out, ndarray):
        out._a = result if isinstance(result, np.ndarray) else np.asarray(result)
    elif isinstance(out, (tuple, list)):
        for o, r in zip(out, result):
            _rebind(o, r)


def _replay(tape: list) -> None:
    with np.errstate(all="ignore"):
        for _label, fn, args, kwargs, out in tape:
            _rebind(out, fn(*_unwrap(args, {}), **_unwrap(kwargs, {})))


def _h2d(label: str) -> None:
    stats.h2d += 1
    stats.streams["h2d"].add(cuda.get_current_stream().ptr)
    if _capture is not None:
        _capture.invalidated = True
        raise cuda.runtime.CUDARuntimeError(
            900, f"cudaErrorStreamCaptureUnsupported: {label} copies pageable host memory "
            "while a stream is capturing")


# ------------------------------------------------------------------------------------------
# ufuncs and functions
# ------------------------------------------------------------------------------------------


class ufunc:  # noqa: N801 - cupy's name
    """A cupy ufunc computed by numpy's (or by ``impl``), with cupy's keywords and loops."""

    def __init__(self, name: str, spec: dict, impl: Callable | None = None) -> None:
        self.name = self.__name__ = name
        self._spec = spec
        self._impl = impl if impl is not None else getattr(np, name)
        self.nin = spec.get("nin", 1)
        self.nout = spec.get("nout", 1)
        self.types = spec.get("types", [])

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        spec = self._spec if self._spec.get("params") else {"params": ["out", "dtype", "casting"]}
        _check_keywords(f"cupy.{self.name}", {**spec, "params": list(spec["params"])}, kwargs)
        impl = self._impl
        if not isinstance(impl, np.ufunc):
            impl = self._typed(impl)
        return _run(f"cupy.{self.name}", impl, args, kwargs)

    def _typed(self, impl: Callable) -> Callable:
        """Apply a non-numpy implementation with the output type of cupy's loop."""
        loops = [t.split("->") for t in self.types]

        def typed(x: Any, out: Any = None, dtype: Any = None, casting: Any = None) -> Any:
            x = np.asarray(x)
            for ins, outs in loops:
                if np.can_cast(x.dtype, np.dtype(ins), "safe"):
                    result = np.asarray(impl(x.astype(ins))).astype(outs)
                    break
            else:
                raise TypeError(f"cupy.{self.name}: no loop for {x.dtype}")
            if out is not None:
                np.copyto(out, result)
                return out
            return result

        return typed

    def _method(self, method: str, *args: Any, **kwargs: Any) -> Any:
        _check_keywords(f"cupy.{self.name}.{method}", _API["ufunc_methods"][method], kwargs)
        return _run(f"cupy.{self.name}.{method}", getattr(self._impl, method), args, kwargs)

    def reduce(self, *args: Any, **kwargs: Any) -> Any:
        return self._method("reduce", *args, **kwargs)

    def accumulate(self, *args: Any, **kwargs: Any) -> Any:
        return self._method("accumulate", *args, **kwargs)

    def at(self, *args: Any, **kwargs: Any) -> Any:
        return self._method("at", *args, **kwargs)

    def outer(self, *args: Any, **kwargs: Any) -> Any:
        return self._method("outer", *args, **kwargs)

    def reduceat(self, *args: Any, **kwargs: Any) -> Any:
        return self._method("reduceat", *args, **kwargs)


def _function(label: str, impl: Callable, spec: dict | None, sync: str | None = None) -> Callable:
    """A cupy function computed by ``impl`` on the wrapped numpy arrays."""

    def function(*args: Any, **kwargs: Any) -> Any:
        _check_keywords(label, spec, kwargs)
        if sync:
            _sync(label)
        return _run(label, impl, args, kwargs)

    function.__name__ = function.__qualname__ = label.rpartition(".")[2]
    return function


def asarray(a: Any, dtype: Any = None, order: Any = None, *, copy: Any = None,
            blocking: bool = False) -> ndarray:
    """Device arrays pass through (cast when ``dtype`` differs); host values are copied in."""
    if isinstance(a, ndarray):
        return _run("cupy.asarray", lambda x: np.asarray(x, dtype=dtype, order=order), (a,), {})
    if isinstance(a, (list, tuple)) and any(isinstance(v, ndarray) for v in a):
        return stack([asarray(v, dtype) for v in a])  # cupy stacks lists of device arrays
    _h2d("cupy.asarray")
    host = np.array(a, dtype=dtype, order=order if order in ("C", "F") else "C", copy=True)
    return _new(host, fresh=True)


def array(obj: Any, dtype: Any = None, copy: bool = True, order: str = "K", subok: bool = False,
          ndmin: int = 0, *, blocking: bool = False) -> ndarray:
    """Like asarray, copying device arrays unless ``copy=False``."""
    if isinstance(obj, ndarray):
        return _run("cupy.array", lambda x: np.array(x, dtype=dtype, copy=copy, order=order,
                                                     ndmin=ndmin), (obj,), {})
    out = asarray(obj, dtype)
    return out if not ndmin or out.ndim >= ndmin else out.reshape((1,) * (ndmin - out.ndim)
                                                                   + out.shape)


def asnumpy(a: Any, stream: Any = None, order: str = "C", out: Any = None, *,
            blocking: bool = True) -> np.ndarray:
    """Copy a device array to the host (other values: numpy.asarray)."""
    if isinstance(a, ndarray):
        return a.get(stream=stream, order=order, out=out, blocking=blocking)
    return np.asarray(a, order=order)


def get_array_module(*args: Any) -> types.ModuleType:
    """cupy for device arrays, numpy otherwise."""
    return _MODULE if any(isinstance(a, ndarray) for a in args) else np


def from_dlpack(x: Any) -> ndarray:
    raise NotImplementedError("fake_cupy does not model DLPack")


def _erf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[np.float64])(x) if x.size else x.astype(np.float64)


# ------------------------------------------------------------------------------------------
# cupy.cuda: devices, streams, memory, graphs, runtime
# ------------------------------------------------------------------------------------------


class _CUDARuntimeError(RuntimeError):
    def __init__(self, status: int, message: str = "") -> None:
        self.status = status
        super().__init__(message or f"CUDA runtime error {status}")


class _OutOfMemoryError(MemoryError):
    def __init__(self, size: int, total: int, limit: int = 0) -> None:
        msg = f"Out of memory allocating {size:,} bytes (allocated so far: {total:,} bytes"
        msg += f", limit set to: {limit:,} bytes)." if limit else ")."
        super().__init__(msg)


class _Device:
    """cupy.cuda.Device: a context manager making its device current on this thread."""

    def __init__(self, device: Any = None) -> None:
        self.id = _current_device() if device is None else int(device)
        if not 0 <= self.id < device_count:
            raise _CUDARuntimeError(101, "cudaErrorInvalidDevice: invalid device ordinal")

    def __enter__(self) -> _Device:
        _tls.devices.append(self.id)
        return self

    def __exit__(self, *exc: Any) -> None:
        _tls.devices.pop()

    def use(self) -> None:
        if _tls.devices:
            _tls.devices[-1] = self.id
        else:
            _tls.devices.append(self.id)

    def synchronize(self) -> None:
        _sync("Device.synchronize")

    compute_capability = property(lambda self: "90")
    mem_info = property(lambda self: (80 << 30, 80 << 30))

    def __repr__(self) -> str:
        return f"<CUDA Device {self.id}>"


class _Stream:
    """cupy.cuda.Stream: a context manager making it the current stream; can capture."""

    null: _Stream

    def __init__(self, null: bool = False, non_blocking: bool = False, ptds: bool = False,
                 priority: Any = None) -> None:
        self.is_null = bool(null)
        self.is_non_blocking = bool(non_blocking)
        self.device_id = -1 if null else _current_device()
        self.ptr = 0 if null else id(self)

    def __enter__(self) -> _Stream:
        _tls.streams.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        _tls.streams.pop()

    def use(self) -> _Stream:
        if _tls.streams:
            _tls.streams[-1] = self
        else:
            _tls.streams.append(self)
        return self

    def synchronize(self) -> None:
        _sync("Stream.synchronize")

    @property
    def done(self) -> bool:
        return True

    def begin_capture(self, mode: Any = None) -> None:
        global _capture
        if self.is_null:
            raise _CUDARuntimeError(900, "cudaErrorStreamCaptureUnsupported: the legacy "
                                    "default stream cannot capture")
        if _capture is not None:
            raise _CUDARuntimeError(900, "cudaErrorStreamCaptureUnsupported: already capturing")
        _capture = _Capture(self)

    def end_capture(self) -> _Graph:
        global _capture
        capture = _capture
        if capture is None or capture.stream is not self:
            raise _CUDARuntimeError(901, "cudaErrorIllegalState: the stream is not capturing")
        _capture = None
        if capture.invalidated:
            raise _CUDARuntimeError(901, "cudaErrorStreamCaptureInvalidated: the capture was "
                                    "invalidated by an operation not permitted while capturing")
        stats.captures += 1
        for ref in capture.fresh:  # a real capture executes nothing: fresh buffers hold junk
            buffer = ref()
            if buffer is not None and buffer.dtype.kind in "fc":
                buffer.fill(np.nan)
            elif buffer is not None:
                buffer.fill(0x5A if buffer.dtype.kind != "b" else True)
        return _Graph(capture.tape)

    def is_capturing(self) -> bool:
        return _capture is not None and _capture.stream is self

    def __repr__(self) -> str:
        return f"<fake Stream {'null' if self.is_null else hex(self.ptr)}>"


_Stream.null = _Stream(null=True)


class _Graph:
    """cupy.cuda.Graph: launching it replays the ops recorded during the capture."""

    def __init__(self, tape: list) -> None:
        self._tape = tape

    def launch(self, stream: Any = None) -> None:
        if _capture is not None:
            raise _CUDARuntimeError(900, "cudaErrorStreamCaptureUnsupported: graph launch "
                                    "during capture")
        stats.launches += 1
        _replay(self._tape)

    def upload(self, stream: Any = None) -> None:
        """Nothing to upload in the fake."""

    @property
    def ops(self) -> int:
        """How many ops the graph replays (fake only)."""
        return len(self._tape)


class _UnownedMemory:
    def __init__(self, ptr: int, size: int, owner: Any, device_id: int = -1) -> None:
        self.ptr, self.size, self.owner = int(ptr), int(size), owner
        self.device_id = _current_device() if device_id < 0 else device_id


class _PooledMemory:
    def __init__(self, pool: _MemoryPool, size: int) -> None:
        self.pool, self.size, self.ptr = pool, size, 0

    def _release(self) -> None:
        if self.pool is not None:
            self.pool._used -= self.size
            self.pool = None


class _MemoryPointer:
    def __init__(self, mem: Any, offset: int) -> None:
        self.mem, self.offset = mem, int(offset)
        self.ptr = getattr(mem, "ptr", 0) + self.offset
        self.device_id = getattr(mem, "device_id", 0)

    def _view(self, shape: tuple, dtype: np.dtype, strides: Any) -> np.ndarray:
        count = math.prod(shape)
        if count == 0:
            return np.empty(shape, dtype)
        buffer = (ctypes.c_char * (count * dtype.itemsize)).from_address(self.ptr)
        return np.frombuffer(buffer, dtype=dtype, count=count).reshape(shape)


class _MemoryPool:
    """cupy.cuda.MemoryPool: counts the bytes its buffers hold, refuses more than its limit."""

    def __init__(self, allocator: Any = None) -> None:
        self._used = 0
        self._limit = 0
        self.requests: list[int] = []  # fake only: the sizes malloc was asked for

    def malloc(self, size: int) -> _MemoryPointer:
        self.requests.append(int(size))
        rounded = -(-int(size) // _UNIT) * _UNIT
        if self._limit and self._used + rounded > self._limit:
            raise _OutOfMemoryError(size, self._used, self._limit)
        self._used += rounded
        return _MemoryPointer(_PooledMemory(self, rounded), 0)

    def set_limit(self, size: int | None = None, fraction: float | None = None) -> None:
        self._limit = int(size or 0)

    def get_limit(self) -> int:
        return self._limit

    def used_bytes(self) -> int:
        return self._used

    def total_bytes(self) -> int:
        return self._used

    def free_bytes(self) -> int:
        return 0

    def free_all_blocks(self, stream: Any = None) -> None:
        """Cached blocks are not modelled."""

    def n_free_blocks(self) -> int:
        return 0


_default_pool = _MemoryPool()
_global_allocator: list[Callable[[int], Any]] = [_default_pool.malloc]


class _using_allocator:  # noqa: N801
    def __init__(self, allocator: Callable[[int], Any] | None = None) -> None:
        self._allocator = allocator

    def __enter__(self) -> None:
        _tls.allocators.append(self._allocator or _default_pool.malloc)

    def __exit__(self, *exc: Any) -> None:
        _tls.allocators.pop()


def _get_allocator() -> Callable[[int], Any]:
    return _tls.allocators[-1] if _tls.allocators else _global_allocator[0]


def _set_allocator(allocator: Callable[[int], Any] | None = None) -> None:
    _global_allocator[0] = allocator or _default_pool.malloc


def _current_stream() -> _Stream:
    return _tls.streams[-1] if _tls.streams else _Stream.null


def _runtime_module() -> types.ModuleType:
    runtime = types.ModuleType("cupy.cuda.runtime")
    runtime.CUDARuntimeError = _CUDARuntimeError
    runtime.getDeviceCount = lambda: device_count
    runtime.getDevice = _current_device
    runtime.driverGetVersion = lambda: 12080
    runtime.runtimeGetVersion = lambda: 12080
    runtime.deviceSynchronize = lambda: _sync("deviceSynchronize")
    runtime.streamCaptureModeRelaxed = 2
    runtime.getDeviceProperties = lambda i: {
        "name": b"fake_cupy numpy device", "totalGlobalMem": 80 << 30, "major": 9, "minor": 0}
    runtime.is_hip = False
    return runtime


cuda = types.ModuleType("cupy.cuda")
cuda.runtime = _runtime_module()
cuda.Device = _Device
cuda.Stream = _Stream
cuda.Graph = _Graph
cuda.MemoryPool = _MemoryPool
cuda.MemoryPointer = _MemoryPointer
cuda.UnownedMemory = _UnownedMemory
cuda.using_allocator = _using_allocator
cuda.get_allocator = _get_allocator
cuda.set_allocator = _set_allocator
cuda.get_current_stream = _current_stream
cuda.get_device_id = _current_device
cuda.is_available = lambda: device_count > 0
cuda.memory = types.SimpleNamespace(OutOfMemoryError=_OutOfMemoryError, MemoryPool=_MemoryPool)
cuda.alloc = lambda size: _get_allocator()(size)


def get_default_memory_pool() -> _MemoryPool:
    """The pool allocations use unless an allocator is set."""
    return _default_pool


# ------------------------------------------------------------------------------------------
# the module namespaces, built from the API snapshot
# ------------------------------------------------------------------------------------------

_UFUNCS: dict[str, ufunc] = {}
_SYNCING = frozenset({"nonzero", "argwhere", "flatnonzero", "unique", "extract", "compress",
                      "trim_zeros", "array_equal", "allclose", "array_equiv"})
_SPECIAL = {"asarray": asarray, "array": array, "asanyarray": asarray, "asnumpy": asnumpy,
            "get_array_module": get_array_module, "from_dlpack": from_dlpack, "ndarray": ndarray,
            "ufunc": ufunc, "get_default_memory_pool": get_default_memory_pool, "cuda": cuda}


def _namespace(name: str, numpy_module: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    for attr, spec in _API["modules"][name].items():
        if name == "cupy" and attr in _SPECIAL:
            setattr(module, attr, _SPECIAL[attr])
            continue
        target = getattr(numpy_module, attr, None)
        if spec["kind"] == "ufunc" and isinstance(target, np.ufunc):
            _UFUNCS.setdefault(attr, ufunc(attr, spec))
            setattr(module, attr, _UFUNCS[attr])
        elif spec["kind"] == "function" and callable(target):
            sync = f"{name}.{attr}" if attr in _SYNCING else None
            setattr(module, attr, _function(f"{name}.{attr}", target, spec, sync))
        elif spec["kind"] in ("class", "value") and target is not None:
            setattr(module, attr, target)  # numpy's scalar types, dtype, finfo, inf, pi...
    return module


def _build() -> types.ModuleType:
    module = _namespace("cupy", np)
    module.__doc__ = __doc__
    module.__version__ = __version__
    module.IS_TEST_DOUBLE = True
    module.stats = stats
    module.lib = types.ModuleType("cupy.lib")
    module.lib.stride_tricks = _namespace("cupy.lib.stride_tricks", np.lib.stride_tricks)
    module.linalg = _namespace("cupy.linalg", np.linalg)
    # cupy.matmul is a gufunc (a function in the snapshot): keep it reachable as a ufunc too
    _UFUNCS.setdefault("matmul", ufunc("matmul", {"params": ["out", "dtype", "casting"]}))
    return module


_MODULE = _build()
stack = _MODULE.stack

cupyx = types.ModuleType("cupyx")
cupyx.IS_TEST_DOUBLE = True
cupyx.scipy = types.ModuleType("cupyx.scipy")
cupyx.scipy.special = types.ModuleType("cupyx.scipy.special")
cupyx.scipy.special.erf = ufunc("erf", _API["modules"]["cupyx.scipy.special"]["erf"], _erf)


def install(monkeypatch: Any) -> types.ModuleType:
    """Put the fake in ``sys.modules`` as cupy/cupyx (undone by ``monkeypatch``); reset the
    counters, the default pool and the device count."""
    global device_count
    device_count = 1
    stats.reset()
    _default_pool._limit = 0
    for name, module in (("cupy", _MODULE), ("cupy.cuda", cuda), ("cupy.cuda.runtime",
                                                                   cuda.runtime),
                         ("cupyx", cupyx), ("cupyx.scipy", cupyx.scipy),
                         ("cupyx.scipy.special", cupyx.scipy.special)):
        monkeypatch.setitem(__import__("sys").modules, name, module)
    return _MODULE


def set_device_count(count: int) -> None:
    """How many devices the fake runtime reports."""
    global device_count
    device_count = int(count)
