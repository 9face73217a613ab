"""How large one output may be: the guard kernels apply before allocating an output whose size
comes from values (ConstantOfShape's shape, Tile's repeats, Range's limits, Resize's scales).

A model can ask for any size; numpy either raises ``MemoryError`` or, on Linux with
overcommit, hands out memory the machine does not have, and the process is killed when the
pages are touched. So kernels check the size first, with Python ints (no overflow), against the
session's limit: the session config entry ``session.max_output_bytes`` when set
(:data:`MAX_OUTPUT_BYTES_KEY`), else the machine's memory (:func:`machine_memory_bytes`). An
output over it is :class:`ort.Fail` naming the node, the shape, the bytes and the limit, raised
before anything is allocated; the session stays usable.

Kernels reach this through :meth:`ort.ep.NodeInfo.check_output_size` (and
:meth:`~ort.ep.NodeInfo.empty`, which applies it); :func:`check_output_size` is the same check
for code that holds no ``NodeInfo``.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import Fail, InvalidArgument, OrtError

__all__ = ["MAX_OUTPUT_BYTES_KEY", "machine_memory_bytes", "max_output_bytes_of",
           "output_nbytes", "check_output_size", "output_size_error"]

#: The session config entry that sets the limit (bytes, a positive integer).
MAX_OUTPUT_BYTES_KEY = "session.max_output_bytes"

# cgroup memory limits (v2, v1) a container may set below the machine's memory
_CGROUP_LIMIT_FILES = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
# what to assume where the platform reports nothing (no sysconf): large enough not to matter
_UNKNOWN_MEMORY = 1 << 50


@functools.cache
def machine_memory_bytes() -> int:
    """The memory this process can have: the machine's physical memory, or a container's
    (cgroup) limit when that is smaller. Read once."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        total = _UNKNOWN_MEMORY
    if total <= 0:
        total = _UNKNOWN_MEMORY
    for path in _CGROUP_LIMIT_FILES:
        try:
            with open(path, encoding="ascii") as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit() and 0 < int(text) < total:
            total = int(text)
    return total


def max_output_bytes_of(config: Mapping[str, str]) -> int | None:
    """The limit ``session.max_output_bytes`` sets in a session's config entries (None: not
    set, the machine's memory applies); :class:`ort.InvalidArgument` unless it is a positive
    integer."""
    text = config.get(MAX_OUTPUT_BYTES_KEY)
    if text is None:
        return None
    try:
        value = int(str(text).strip())
    except ValueError:
        value = 0
    if value <= 0:
        raise InvalidArgument(
            f"Session config entry {MAX_OUTPUT_BYTES_KEY} must be a positive integer number of "
            f"bytes (the most one output may take), got {text!r}")
    return value


def output_nbytes(shape: Sequence[int], dtype: Any) -> int:
    """The bytes an array of ``shape`` and ``dtype`` takes, with Python ints (no overflow)."""
    if type(shape) is np.ndarray:  # its ints would wrap around in int64
        shape = shape.tolist()
    count = math.prod(shape)
    if type(count) is not int:  # numpy ints in a tuple: their product may have wrapped
        count = math.prod(map(int, shape))
    try:
        itemsize = dtype.itemsize
    except AttributeError:
        itemsize = None
    if type(itemsize) is not int:  # a scalar type (np.float32) rather than a dtype
        itemsize = np.dtype(dtype).itemsize
    return count * itemsize


def check_output_size(where: str | Callable[[], str], shape: Sequence[int], dtype: Any,
                      limit: int | None = None, error: type[OrtError] = Fail) -> None:
    """Raise ``error`` (:class:`ort.Fail` unless told) when an output of ``shape`` and
    ``dtype`` would take more than ``limit`` bytes (None: :func:`machine_memory_bytes`).

    ``where`` names the node for the message (or is a function returning the name, called
    only when the check fails). Costs a product and a comparison (about 0.3 µs); call it where
    an output's size comes from values, before allocating."""
    nbytes = output_nbytes(shape, dtype)
    if nbytes <= (machine_memory_bytes() if limit is None else limit):
        return
    raise output_size_error(where, shape, dtype, nbytes, limit, error)


def output_size_error(where: str | Callable[[], str], shape: Sequence[int], dtype: Any,
                      nbytes: int, limit: int | None, error: type[OrtError] = Fail) -> OrtError:
    """The error :func:`check_output_size` raises (``limit`` None: the machine's memory)."""
    name = where if isinstance(where, str) else where()
    if limit is None:
        bound = machine_memory_bytes()
        source = (f"the memory of this machine; the session config entry "
                  f"{MAX_OUTPUT_BYTES_KEY} sets another limit")
    else:
        bound = limit
        source = f"the session config entry {MAX_OUTPUT_BYTES_KEY}"
    return error(
        f"{name}: the output of shape {[int(d) for d in shape]} and type {np.dtype(dtype)} "
        f"would take {nbytes:,} bytes, more than the {bound:,} bytes one output may take "
        f"({source}). Nothing was allocated; check the values that size this output (a shape, "
        f"repeats, pads, scales or a range's limits) and the inputs they come from")
