"""From ONNX protobuf values to Python: tensors as numpy arrays, attributes as Python values.

Tensors stored as raw little-endian bytes of a byte-aligned type become read-only views of those
bytes (weights are never written, and copying hundreds of megabytes made big models slow to
load). A tensor whose data a session moved out of the protobuf (a *stub*, see
:mod:`ort.ir.weights`) resolves only against that session's own
:class:`~ort.ir.weights.WeightStore`: a model naming such a location itself gets a typed error,
never another model's data.
"""

from __future__ import annotations

import sys
from typing import Any, Protocol

import numpy as np
import onnx
from onnx import AttributeProto, TensorProto, numpy_helper

from ..errors import Fail, InvalidArgument, InvalidGraph
from ..element_types import np_dtype_of

__all__ = ["RESERVED_LOCATION_PREFIX", "WeightResolver", "reserved_location", "tensor_to_array",
           "attribute_value", "constant_value", "sparse_to_dense", "checked_element_count"]

#: External-data locations starting with this belong to ort itself; no model may name one.
RESERVED_LOCATION_PREFIX = "ort:"

#: Element types whose raw bytes are exactly numpy's little-endian layout of the dtype.
_RAW_COMPATIBLE = frozenset({
    TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.INT8,
    TensorProto.INT16, TensorProto.INT32, TensorProto.INT64, TensorProto.UINT8,
    TensorProto.UINT16, TensorProto.UINT32, TensorProto.UINT64, TensorProto.BOOL,
    TensorProto.BFLOAT16,
})


class WeightResolver(Protocol):
    """What resolves stubs: a session's :class:`~ort.ir.weights.WeightStore`."""

    def resolve(self, location: str) -> np.ndarray | None:
        """The array stored under ``location``, or None when this store has none."""


def reserved_location(tensor: TensorProto) -> str | None:
    """The external-data location of ``tensor`` when it is one of ort's own (``ort:...``)."""
    if tensor.data_location != TensorProto.EXTERNAL:
        return None
    for entry in tensor.external_data:
        if entry.key == "location" and entry.value.startswith(RESERVED_LOCATION_PREFIX):
            return entry.value
    return None


def tensor_to_array(tensor: TensorProto, weights: WeightResolver | None = None) -> np.ndarray:
    """Convert a ``TensorProto`` to a numpy array (strings as an object array of ``str``).

    A stub resolves against ``weights`` (the session's store) only; one the store does not
    hold is a :class:`~ort.errors.Fail`."""
    location = reserved_location(tensor)
    if location is not None:
        array = weights.resolve(location) if weights is not None else None
        if array is None:
            raise Fail(
                f"initializer '{tensor.name}' names the external data location '{location}', "
                f"which is reserved: locations starting with '{RESERVED_LOCATION_PREFIX}' are "
                "ort's own and cannot be named by a model; store the data in the model or in a "
                "file beside it")
        return array
    count = checked_element_count(tensor)
    if (tensor.data_type in _RAW_COMPATIBLE and tensor.HasField("raw_data")
            and sys.byteorder == "little"):
        dtype = np_dtype_of(tensor.data_type)
        raw = tensor.raw_data
        count = 1
        for d in tensor.dims:
            count *= d
        if len(raw) == count * dtype.itemsize:
            return np.frombuffer(raw, dtype=dtype).reshape(tuple(tensor.dims))
    if tensor.data_type == TensorProto.STRING:
        values = [s.decode("utf-8", errors="surrogateescape") for s in tensor.string_data]
        return np.array(values, dtype=object).reshape(tuple(tensor.dims))
    try:
        array = numpy_helper.to_array(tensor)
    except (ValueError, TypeError, KeyError) as exc:
        raise Fail(f"initializer '{tensor.name}' of shape {list(tensor.dims)} holds data that "
                   f"does not match its shape and element type: {exc}") from None
    expected = np_dtype_of(tensor.data_type)
    if array.dtype != expected:
        array = array.astype(expected)
    if array.size != count:
        raise Fail(f"initializer '{tensor.name}' of shape {list(tensor.dims)} holds "
                   f"{array.size} values; its shape needs {count}")
    return array


def checked_element_count(tensor: TensorProto, raw_size_up_to: int | None = None) -> int:
    """The element count of ``tensor``'s dims, after checking what can be checked before any
    data is decoded (ONNX Runtime's verdicts, as :class:`~ort.errors.Fail`): a known element
    type, non-negative dims, ``raw_data`` of exactly the size the dims need, and some data
    for a non-empty tensor.

    Reading ``raw_data``'s size copies the bytes (protobuf's Python runtime hands out a new
    bytes object): with ``raw_size_up_to``, tensors of more elements skip that check (their
    data is checked when it is decoded)."""
    try:
        dtype = np_dtype_of(tensor.data_type)
    except ValueError:
        raise Fail(f"initializer '{tensor.name}' has element type {tensor.data_type}, which is "
                   "not an ONNX tensor element type") from None
    count = 1
    for d in tensor.dims:
        if d < 0:
            raise Fail(f"initializer '{tensor.name}' has dims {list(tensor.dims)}: a dimension "
                       "of a tensor cannot be negative")
        count *= d
    if tensor.data_type == TensorProto.STRING and tensor.HasField("raw_data"):
        raise InvalidArgument(f"Deserialize tensor {tensor.name} failed.string tensor can not "
                              "have raw data: store strings in string_data")
    has_raw = tensor.HasField("raw_data")
    if raw_size_up_to is not None and count > raw_size_up_to and has_raw:
        return count
    if has_raw and tensor.data_type != TensorProto.STRING:
        bits = _SUB_BYTE_BITS.get(tensor.data_type)
        needed = -(-count * bits // 8) if bits else count * dtype.itemsize
        if len(tensor.raw_data) != needed:
            raise Fail(f"initializer '{tensor.name}': raw_data size ({len(tensor.raw_data)} "
                       f"bytes) does not match expected size from shape {list(tensor.dims)} "
                       f"and data type ({needed} bytes)")
    elif count and not _has_typed_data(tensor):
        raise Fail(f"initializer '{tensor.name}' of shape {list(tensor.dims)} holds no data")
    elif tensor.data_type == TensorProto.STRING and len(tensor.string_data) != count:
        raise Fail(f"initializer '{tensor.name}' of shape {list(tensor.dims)} holds "
                   f"{len(tensor.string_data)} strings; its shape needs {count}")
    return count


#: Element types stored in fewer than 8 bits (packed two or four to a byte in raw_data).
_SUB_BYTE_BITS = {TensorProto.INT4: 4, TensorProto.UINT4: 4, TensorProto.FLOAT4E2M1: 4,
                  **{getattr(TensorProto, n): 2 for n in ("INT2", "UINT2")
                     if hasattr(TensorProto, n)}}


def _has_typed_data(tensor: TensorProto) -> bool:
    return bool(tensor.float_data or tensor.int32_data or tensor.string_data
                or tensor.int64_data or tensor.double_data or tensor.uint64_data)


def sparse_to_dense(sparse: onnx.SparseTensorProto,
                    weights: WeightResolver | None = None) -> np.ndarray:
    """The dense array a ``SparseTensorProto`` stands for."""
    values = tensor_to_array(sparse.values, weights)
    indices = tensor_to_array(sparse.indices, weights)
    where = f"sparse tensor '{sparse.values.name}' of shape {list(sparse.dims)}"
    if values.ndim != 1:
        raise Fail(f"{where}: its values must be 1-D, got shape {list(values.shape)}")
    if indices.dtype.kind not in "iu":
        raise Fail(f"{where}: its indices must be integers, got {indices.dtype}")
    dense = np.zeros(tuple(sparse.dims), dtype=values.dtype)
    try:
        if indices.ndim == 1:  # linearized indices
            dense.reshape(-1)[indices.astype(np.int64)] = values
        else:
            dense[tuple(indices.astype(np.int64).T)] = values
    except (IndexError, ValueError) as exc:
        raise Fail(f"{where}: its indices {list(indices.shape)} do not fit its values "
                   f"{list(values.shape)} and shape: {exc}") from None
    return dense


def attribute_value(attr: AttributeProto) -> Any:
    """Convert an attribute to Python: ints, floats, ``str``, lists, arrays or ``GraphProto``."""
    kind = attr.type
    if kind == AttributeProto.STRING:
        return attr.s.decode("utf-8", errors="surrogateescape")
    if kind == AttributeProto.STRINGS:
        return [s.decode("utf-8", errors="surrogateescape") for s in attr.strings]
    if kind == AttributeProto.TENSOR:
        return tensor_to_array(attr.t)
    if kind == AttributeProto.TENSORS:
        return [tensor_to_array(t) for t in attr.tensors]
    if kind == AttributeProto.SPARSE_TENSOR:
        return sparse_to_dense(attr.sparse_tensor)
    if kind == AttributeProto.INTS:
        return list(attr.ints)  # Python ints already
    if kind == AttributeProto.FLOATS:
        return list(attr.floats)
    return onnx.helper.get_attribute_value(attr)


def constant_value(node: onnx.NodeProto) -> np.ndarray:
    """The array a ``Constant`` node produces: read from its first attribute by that
    attribute's type, whatever its name, as ONNX Runtime reads it."""
    if not len(node.attribute):
        raise InvalidGraph(f"Constant node '{node.name}' has no value attribute")
    attr = node.attribute[0]
    value = attribute_value(attr)
    kind = attr.type
    if kind in (AttributeProto.TENSOR, AttributeProto.SPARSE_TENSOR):
        return value
    if kind == AttributeProto.FLOAT:
        return np.array(value, dtype=np.float32)
    if kind == AttributeProto.FLOATS:
        return np.array(value, dtype=np.float32).reshape(-1)
    if kind == AttributeProto.INT:
        return np.array(value, dtype=np.int64)
    if kind == AttributeProto.INTS:
        return np.array(value, dtype=np.int64).reshape(-1)
    if kind == AttributeProto.STRING:
        return np.array(value, dtype=object)
    if kind == AttributeProto.STRINGS:
        return np.array(value, dtype=object).reshape(-1)
    raise InvalidGraph(f"Constant node '{node.name}': attribute '{attr.name}' of type "
                       f"{AttributeProto.AttributeType.Name(kind)} cannot be a Constant's value")
