"""GPU kernels: Resize and Upsample: the CPU kernels with their host tables uploaded once.

The CPU kernels plan each axis on the host (source indices, filter weights, outside masks;
cached per input shape) and resample with ``xp.take`` and elementwise ops, which cupy runs as
is. But they upload the plan's tables with ``xp.asarray`` on every call (and the weights as a
fresh ``astype`` copy): a host-to-device copy per call, which also cannot be captured in a CUDA
graph. Here the kernels see an array namespace whose ``asarray`` keeps the device copy of each
small host table, keyed by its content.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from typing import Any

import numpy as np

from ort.ep import KernelTable, NodeInfo
from ort_provider_cpu.kernels import resize as cpu_resize

kernels = KernelTable()

#: Host tables larger than this are uploaded every time rather than cached.
MAX_CACHED_BYTES = 1 << 20
MAX_CACHED = 64


class CachedUploads:
    """An array namespace that is ``xp`` except that ``asarray`` of a small host array
    returns a cached device copy (least recently used first out)."""

    def __init__(self, xp: Any) -> None:
        self._xp = xp
        self._cache: OrderedDict[tuple, Any] = OrderedDict()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._xp, name)

    def asarray(self, a: Any, dtype: Any = None, **kwargs: Any) -> Any:
        """``xp.asarray``; small host arrays and scalars come from the cache."""
        if not isinstance(a, (np.ndarray, np.generic, bool, int, float)):
            return self._xp.asarray(a, dtype=dtype, **kwargs)
        host = np.asarray(a, dtype=dtype)
        if host.nbytes > MAX_CACHED_BYTES or host.dtype.kind not in "biuf":
            return self._xp.asarray(host, **kwargs)
        key = (host.dtype.str, host.shape, host.tobytes())
        value = self._cache.get(key)
        if value is None:
            value = self._cache[key] = self._xp.asarray(host, **kwargs)
            if len(self._cache) > MAX_CACHED:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return value


def _with_cached_uploads(factory: Any):
    """A factory running the CPU ``factory`` with a :class:`CachedUploads` namespace."""

    def gpu_factory(node: NodeInfo):
        return factory(dataclasses.replace(node, xp=CachedUploads(node.xp)))

    gpu_factory.__doc__ = (factory.__doc__ or "").split("\n")[0] + " (host tables cached on " \
        "the device)"
    gpu_factory.__name__ = factory.__name__
    return gpu_factory


kernels.register("Resize", since=10, until=10, host_inputs=(1,))(
    _with_cached_uploads(cpu_resize.resize_10))
kernels.register("Resize", since=11, host_inputs=(1, 2, 3))(
    _with_cached_uploads(cpu_resize.resize))
kernels.register("Upsample", since=1, until=8)(
    _with_cached_uploads(cpu_resize.upsample_static))
kernels.register("Upsample", since=9, host_inputs=(1,))(
    _with_cached_uploads(cpu_resize.upsample))
