"""CPU kernels: the ai.onnx.ml encoders, which map category values through tables given as
attributes: OneHotEncoder (categories to one-hot float32 columns), CategoryMapper (strings to
int64 and back) and LabelEncoder 1, 2-3 and 4 (keys to values: strings, int64, floats and, from
4, tensors of any supported type). Numeric keys are looked up in sorted arrays, strings in dicts;
misses get the op's default, and repeated keys resolve as in ONNX Runtime, op by op.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ort.ep import KernelTable, NodeInfo

from .ml_common import ML, _F32, _fail, _ints, _string_array

kernels = KernelTable()


def _sorted_lookup(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort ``keys`` (keeping the first value of duplicate keys) for :func:`_lookup`."""
    if len(keys) == 0:
        return keys, values
    uniq, first = np.unique(keys, return_index=True)
    return uniq, values[first]


def _lookup(keys: np.ndarray, values: np.ndarray, x: np.ndarray,
            default: Any) -> np.ndarray:
    """Map ``x`` through sorted unique ``keys`` -> ``values``; misses get ``default``."""
    out_dtype = values.dtype
    if len(keys) == 0 or x.size == 0:
        return np.full(x.shape, default, dtype=out_dtype)
    pos = np.minimum(np.searchsorted(keys, x), len(keys) - 1)
    found = keys[pos] == x
    out = np.where(found, values[pos], np.asarray(default, dtype=out_dtype))
    return out.astype(out_dtype, copy=False)


def _string_lookup(table: dict[str, Any], x: np.ndarray, default: Any,
                   dtype: Any) -> np.ndarray:
    """Map a string tensor through ``table``; misses get ``default``."""
    get = table.get
    if np.dtype(dtype) == object:
        out = np.empty(x.shape, dtype=object)
        out.reshape(-1)[...] = [get(s, default) for s in x.flat] if x.size else []
        return out
    return np.fromiter((get(s, default) for s in x.flat), dtype=dtype,
                       count=x.size).reshape(x.shape)


@kernels.register("OneHotEncoder", 1, domain=ML)
def one_hot_encoder(node: NodeInfo):
    """OneHotEncoder 1+: append a one-hot axis over the categories (numbers are truncated to
    int64 and looked up in cats_int64s, strings in cats_strings); float32 output."""
    cats_int = _ints(node, "cats_int64s")
    cats_str = list(node.attrs.get("cats_strings") or [])
    if bool(cats_int) == bool(cats_str):
        raise _fail(node, "give exactly one of cats_int64s and cats_strings")
    zeros = bool(node.attrs.get("zeros", 1))
    count = len(cats_int) or len(cats_str)
    # A repeated category maps to its last position, as in ONNX Runtime.
    int_table = {c: i for i, c in enumerate(cats_int)}
    str_table = {c: i for i, c in enumerate(cats_str)}
    int_keys = np.array(sorted(int_table), dtype=np.int64)
    int_pos = np.array([int_table[k] for k in int_keys.tolist()], dtype=np.int64)

    def positions(x: np.ndarray) -> np.ndarray:
        if x.dtype == object:
            return _string_lookup(str_table, x, -1, np.int64)
        if x.dtype.kind == "f":
            finite = np.isfinite(x)
            keys = np.trunc(np.where(finite, x, 0)).astype(np.int64)
            return np.where(finite, _lookup(int_keys, int_pos, keys, -1), -1)
        return _lookup(int_keys, int_pos, x.astype(np.int64), -1)

    def compute(x):
        pos = positions(x).reshape(-1)
        if not zeros and (pos < 0).any():
            raise _fail(node, "unknown category and zeros = 0")
        y = np.zeros((x.size, count), dtype=_F32)
        hit = np.nonzero(pos >= 0)[0]
        y[hit, pos[hit]] = 1.0
        return (y.reshape(x.shape + (count,)),)

    return compute


@kernels.register("CategoryMapper", 1, domain=ML)
def category_mapper(node: NodeInfo):
    """CategoryMapper 1+: map strings to int64 (or int64 to strings) through the paired
    cats_strings/cats_int64s lists; misses get default_int64/default_string."""
    cats_str = list(node.attrs.get("cats_strings") or [])
    cats_int = _ints(node, "cats_int64s")
    if len(cats_str) != len(cats_int):
        raise _fail(node, f"cats_strings ({len(cats_str)}) and cats_int64s ({len(cats_int)}) "
                          f"must have the same length")
    default_int = int(node.attrs.get("default_int64", -1))
    default_str = node.attrs.get("default_string", "_Unused")
    # Repeated keys keep their last pairing, as in ONNX Runtime.
    to_int = dict(zip(cats_str, cats_int))
    to_str = dict(zip(cats_int, cats_str))
    int_keys = np.array(sorted(to_str), dtype=np.int64)
    int_vals = _string_array([to_str[k] for k in int_keys.tolist()])

    def compute(x):
        if x.dtype == object:
            return (_string_lookup(to_int, x, default_int, np.int64),)
        return (_lookup(int_keys, int_vals, x.astype(np.int64), default_str),)

    return compute


@kernels.register("LabelEncoder", 1, 1, domain=ML)
def label_encoder_1(node: NodeInfo):
    """LabelEncoder 1: strings to their index in classes_strings, or int64 indices to the
    class string; misses get default_int64/default_string."""
    classes = list(node.attrs.get("classes_strings") or [])
    default_int = int(node.attrs.get("default_int64", -1))
    default_str = node.attrs.get("default_string", "_Unused")
    to_int = {c: i for i, c in enumerate(classes)}  # a repeated class keeps its last index
    class_array = _string_array(classes)

    def compute(x):
        if x.dtype == object:
            return (_string_lookup(to_int, x, default_int, np.int64),)
        index = x.astype(np.int64)
        inside = (index >= 0) & (index < len(classes))
        out = np.full(x.shape, default_str, dtype=object)
        out[inside] = class_array[index[inside]]
        return (out,)

    return compute


# Attribute suffix -> numpy dtype of LabelEncoder keys/values given as lists.
_LABEL_LISTS = {"strings": np.dtype(object), "int64s": np.dtype(np.int64),
                "floats": np.dtype(np.float32)}


def _label_side(node: NodeInfo, side: str, with_tensor: bool) -> np.ndarray:
    """Return LabelEncoder's keys or values (``side``: 'keys'/'values') as an array."""
    found = [(suffix, node.attrs[f"{side}_{suffix}"]) for suffix in _LABEL_LISTS
             if node.attrs.get(f"{side}_{suffix}") is not None]
    if with_tensor and node.attrs.get(f"{side}_tensor") is not None:
        found.append(("tensor", node.attrs[f"{side}_tensor"]))
    if len(found) != 1:
        raise _fail(node, f"exactly one {side}_* attribute is required, got "
                          f"{[f'{side}_{s}' for s, _ in found]}")
    suffix, value = found[0]
    if suffix == "tensor":
        array = np.asarray(value).reshape(-1)
        return array.astype(object) if array.dtype.kind in "OUS" else array
    if suffix == "strings":
        return _string_array(list(value))
    return np.asarray(value, dtype=_LABEL_LISTS[suffix])


def _label_default(node: NodeInfo, dtype: np.dtype, with_tensor: bool) -> Any:
    """Return LabelEncoder's default output value for values of ``dtype``."""
    tensor = node.attrs.get("default_tensor") if with_tensor else None
    if tensor is not None:
        value = np.asarray(tensor).reshape(-1)
        if value.size:
            return value[0] if dtype == object else value.astype(dtype)[0]
    if dtype == object:
        return node.attrs.get("default_string", "_Unused")
    if dtype.kind == "f":
        return dtype.type(node.attrs.get("default_float", -0.0))
    return dtype.type(node.attrs.get("default_int64", -1))


def _label_encoder(node: NodeInfo, with_tensor: bool, nan_matches: bool):
    """LabelEncoder 2+ body: map keys to values; misses get the default value."""
    keys = _label_side(node, "keys", with_tensor)
    values = _label_side(node, "values", with_tensor)
    if len(keys) != len(values):
        raise _fail(node, f"keys ({len(keys)}) and values ({len(values)}) must have the same "
                          f"length")
    default = _label_default(node, values.dtype, with_tensor)
    if keys.dtype == object:
        table: dict[Any, Any] = {}
        for key, value in zip(keys.tolist(), values.tolist()):
            table.setdefault(key, value)  # the first pairing of a repeated key wins

        def compute(x):
            return (_string_lookup(table, x, default, values.dtype),)

        return compute

    nan_value = None
    if keys.dtype.kind == "f":
        nans = np.isnan(keys)
        if nan_matches and nans.any():
            nan_value = values[np.argmax(nans)]
        keys, values = keys[~nans], values[~nans]
    sorted_keys, sorted_values = _sorted_lookup(keys, values)

    def compute(x):
        y = _lookup(sorted_keys.astype(x.dtype), sorted_values, x, default)
        if nan_value is not None and x.dtype.kind == "f":
            y = np.where(np.isnan(x), nan_value, y).astype(values.dtype, copy=False)
        return (y,)

    return compute


@kernels.register("LabelEncoder", 2, 3, domain=ML)
def label_encoder_2(node: NodeInfo):
    """LabelEncoder 2-3: map keys_{strings,int64s,floats} to values_{...}; NaN never
    matches."""
    return _label_encoder(node, with_tensor=False, nan_matches=False)


@kernels.register("LabelEncoder", 4, domain=ML)
def label_encoder_4(node: NodeInfo):
    """LabelEncoder 4+: as 2, plus keys_tensor/values_tensor/default_tensor of any supported
    type; a NaN key matches NaN inputs."""
    return _label_encoder(node, with_tensor=True, nan_matches=True)
