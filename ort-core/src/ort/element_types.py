"""Element types: ONNX ``TensorProto`` enums, numpy dtypes and ONNX Runtime's type strings.

ONNX Runtime names types like ``tensor(float)``, ``seq(tensor(int64))`` or
``map(int64,tensor(float))``; this module converts between those strings, ``onnx.TypeProto``
and numpy dtypes. Types numpy lacks (bfloat16, float8, int4, ...) come from ``ml_dtypes``.
"""

from __future__ import annotations

from typing import Any

import ml_dtypes
import numpy as np
from onnx import TensorProto, TypeProto

__all__ = [
    "ELEMENT_TYPE_NAMES",
    "element_type_name",
    "np_dtype_of",
    "element_type_of_dtype",
    "type_string",
    "dtype_name",
]

#: TensorProto enum -> the name ONNX Runtime uses inside ``tensor(...)``.
ELEMENT_TYPE_NAMES: dict[int, str] = {
    TensorProto.FLOAT: "float",
    TensorProto.UINT8: "uint8",
    TensorProto.INT8: "int8",
    TensorProto.UINT16: "uint16",
    TensorProto.INT16: "int16",
    TensorProto.INT32: "int32",
    TensorProto.INT64: "int64",
    TensorProto.STRING: "string",
    TensorProto.BOOL: "bool",
    TensorProto.FLOAT16: "float16",
    TensorProto.DOUBLE: "double",
    TensorProto.UINT32: "uint32",
    TensorProto.UINT64: "uint64",
    TensorProto.COMPLEX64: "complex64",
    TensorProto.COMPLEX128: "complex128",
    TensorProto.BFLOAT16: "bfloat16",
    TensorProto.FLOAT8E4M3FN: "float8e4m3fn",
    TensorProto.FLOAT8E4M3FNUZ: "float8e4m3fnuz",
    TensorProto.FLOAT8E5M2: "float8e5m2",
    TensorProto.FLOAT8E5M2FNUZ: "float8e5m2fnuz",
    TensorProto.UINT4: "uint4",
    TensorProto.INT4: "int4",
}
for _name, _attr in (("float4e2m1", "FLOAT4E2M1"), ("float8e8m0", "FLOAT8E8M0"),
                     ("uint2", "UINT2"), ("int2", "INT2"), ("float6e2m3", "FLOAT6E2M3"),
                     ("float6e3m2", "FLOAT6E3M2")):
    if hasattr(TensorProto, _attr):
        ELEMENT_TYPE_NAMES[getattr(TensorProto, _attr)] = _name

_NP_DTYPES: dict[int, np.dtype] = {
    TensorProto.FLOAT: np.dtype(np.float32),
    TensorProto.UINT8: np.dtype(np.uint8),
    TensorProto.INT8: np.dtype(np.int8),
    TensorProto.UINT16: np.dtype(np.uint16),
    TensorProto.INT16: np.dtype(np.int16),
    TensorProto.INT32: np.dtype(np.int32),
    TensorProto.INT64: np.dtype(np.int64),
    TensorProto.STRING: np.dtype(object),
    TensorProto.BOOL: np.dtype(np.bool_),
    TensorProto.FLOAT16: np.dtype(np.float16),
    TensorProto.DOUBLE: np.dtype(np.float64),
    TensorProto.UINT32: np.dtype(np.uint32),
    TensorProto.UINT64: np.dtype(np.uint64),
    TensorProto.COMPLEX64: np.dtype(np.complex64),
    TensorProto.COMPLEX128: np.dtype(np.complex128),
    TensorProto.BFLOAT16: np.dtype(ml_dtypes.bfloat16),
    TensorProto.FLOAT8E4M3FN: np.dtype(ml_dtypes.float8_e4m3fn),
    TensorProto.FLOAT8E4M3FNUZ: np.dtype(ml_dtypes.float8_e4m3fnuz),
    TensorProto.FLOAT8E5M2: np.dtype(ml_dtypes.float8_e5m2),
    TensorProto.FLOAT8E5M2FNUZ: np.dtype(ml_dtypes.float8_e5m2fnuz),
    TensorProto.UINT4: np.dtype(ml_dtypes.uint4),
    TensorProto.INT4: np.dtype(ml_dtypes.int4),
}
for _attr, _ml in (("FLOAT4E2M1", "float4_e2m1fn"), ("FLOAT8E8M0", "float8_e8m0fnu"),
                   ("UINT2", "uint2"), ("INT2", "int2"), ("FLOAT6E2M3", "float6_e2m3fn"),
                   ("FLOAT6E3M2", "float6_e3m2fn")):
    if hasattr(TensorProto, _attr) and hasattr(ml_dtypes, _ml):
        _NP_DTYPES[getattr(TensorProto, _attr)] = np.dtype(getattr(ml_dtypes, _ml))

_ELEMENT_TYPE_OF_DTYPE: dict[np.dtype, int] = {}
for _et, _dt in _NP_DTYPES.items():
    _ELEMENT_TYPE_OF_DTYPE.setdefault(_dt, _et)
_ELEMENT_TYPE_OF_DTYPE[np.dtype(object)] = TensorProto.STRING


def element_type_name(element_type: int) -> str:
    """Return ONNX Runtime's name of a ``TensorProto`` element type (``1`` -> ``'float'``)."""
    try:
        return ELEMENT_TYPE_NAMES[element_type]
    except KeyError:
        raise ValueError(f"unknown ONNX element type {element_type}") from None


def np_dtype_of(element_type: int) -> np.dtype:
    """Return the numpy dtype that holds a ``TensorProto`` element type (strings are ``object``)."""
    try:
        return _NP_DTYPES[element_type]
    except KeyError:
        raise ValueError(
            f"ONNX element type {element_type} has no numpy equivalent; "
            f"known types: {sorted(ELEMENT_TYPE_NAMES.values())}"
        ) from None


def element_type_of_dtype(dtype: Any) -> int:
    """Return the ``TensorProto`` element type of a numpy dtype (``<U``/``S``/object -> STRING)."""
    dt = np.dtype(dtype)
    if dt.kind in "USO":
        return TensorProto.STRING
    try:
        return _ELEMENT_TYPE_OF_DTYPE[dt]
    except KeyError:
        raise ValueError(f"numpy dtype {dt} has no ONNX element type") from None


def dtype_name(dtype: Any) -> str:
    """Return ONNX Runtime's element-type name of a numpy dtype (float32 -> ``'float'``)."""
    return ELEMENT_TYPE_NAMES[element_type_of_dtype(dtype)]


def type_string(tp: TypeProto | None) -> str:
    """Return ONNX Runtime's type string of a ``TypeProto``: ``tensor(float)``,
    ``seq(tensor(int64))``, ``map(int64,tensor(float))``, ``optional(tensor(float))``,
    ``sparse_tensor(float)``."""
    if tp is None:
        return "undefined"
    kind = tp.WhichOneof("value")
    if kind == "tensor_type":
        return f"tensor({ELEMENT_TYPE_NAMES.get(tp.tensor_type.elem_type, 'undefined')})"
    if kind == "sparse_tensor_type":
        return f"sparse_tensor({ELEMENT_TYPE_NAMES.get(tp.sparse_tensor_type.elem_type, 'undefined')})"
    if kind == "sequence_type":
        return f"seq({type_string(tp.sequence_type.elem_type)})"
    if kind == "map_type":
        key = ELEMENT_TYPE_NAMES.get(tp.map_type.key_type, "undefined")
        return f"map({key},{type_string(tp.map_type.value_type)})"
    if kind == "optional_type":
        return f"optional({type_string(tp.optional_type.elem_type)})"
    return "undefined"
