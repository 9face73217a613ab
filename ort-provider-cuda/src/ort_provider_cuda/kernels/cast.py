"""GPU kernels: Cast and CastLike between the numeric types cupy has.

The CPU kernels also convert strings, bfloat16, float8 and int4 (through ml_dtypes and host
Python code); cupy has none of these, so such nodes are declined (their inputs by type, their
``to`` type by :func:`ort_provider_cuda.kernels.decline_reason`) and run on the CPU. Among the
remaining types, ``astype`` on the device follows CUDA's conversions, which differ from
numpy's on x86 only where the spec leaves the result undefined: a float outside an integer
type's range (or NaN) saturates (NaN -> 0) on the GPU instead of giving INT_MIN.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import TensorProto

from ort.ep import KernelTable, NodeInfo
from ort.ep import np_dtype_of

kernels = KernelTable()


def target_dtype(node: NodeInfo | Any) -> np.dtype | None:
    """The dtype of a Cast node's ``to`` attribute (enum, or a type name in Cast-1), or None
    when it names no numpy-representable type."""
    to = node.attrs.get("to") if hasattr(node, "attrs") else node
    if to is None:
        return None
    if isinstance(to, (str, bytes)):
        name = to.decode() if isinstance(to, bytes) else to
        try:
            to = TensorProto.DataType.Value(name.upper())
        except ValueError:
            return None
    try:
        return np_dtype_of(int(to))
    except ValueError:
        return None


def _convert(dst: np.dtype):
    def cast(x: Any) -> Any:
        return x.copy() if x.dtype == dst else x.astype(dst)

    return cast


def _cast_factory(node: NodeInfo):
    """Cast: ``astype`` on the device (types cupy has; the partitioner declines others)."""
    dst = target_dtype(node)
    if dst is None:
        raise ValueError(f"{node.describe()}: the 'to' attribute names no known type")
    cast = _convert(dst)

    def compute(x: Any) -> tuple:
        return (cast(x),)

    return compute


for _since, _until in ((1, 5), (6, 18), (19, 23), (24, None)):
    kernels.register("Cast", _since, _until)(_cast_factory)


def _cast_like_factory(node: NodeInfo):
    """CastLike: ``astype`` to the element type of input 1."""

    def compute(x: Any, like: Any) -> tuple:
        return (_convert(like.dtype)(x),)

    return compute


for _since, _until in ((15, 18), (19, 23), (24, None)):
    kernels.register("CastLike", _since, _until)(_cast_like_factory)
