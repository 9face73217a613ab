"""CPU kernels: the ai.onnx.ml ops whose inputs or outputs are maps: ZipMap, DictVectorizer,
CastMap.

A map value is a Python ``dict`` of scalars and a ``seq(map(...))`` a ``list`` of them, exactly
what ONNX Runtime's Python API returns and accepts (ZipMap's probabilities are Python floats).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ort.ep import KernelTable, NodeInfo

from .ml_common import ML

kernels = KernelTable()


def _labels(node: NodeInfo, strings: str, ints: str) -> list[Any]:
    """The one label attribute set (strings or int64s), as Python values."""
    as_strings = node.attrs.get(strings) or []
    as_ints = node.attrs.get(ints) or []
    if bool(as_strings) == bool(as_ints):
        raise ValueError(f"{node.describe()}: exactly one of '{strings}' and '{ints}' must be set")
    return [str(s) for s in as_strings] if as_strings else [int(i) for i in as_ints]


@kernels.register("ZipMap", 1, domain=ML)
def zip_map(node: NodeInfo):
    """ZipMap 1+: one ``{label: probability}`` dict per row of X (labels from
    ``classlabels_strings`` or ``classlabels_int64s``, one per column)."""
    labels = _labels(node, "classlabels_strings", "classlabels_int64s")

    def compute(x):
        rows = np.asarray(x, dtype=np.float32)
        if rows.ndim == 1:
            rows = rows.reshape(1, -1)
        if rows.ndim != 2 or rows.shape[1] != len(labels):
            raise ValueError(f"{node.describe()}: X of shape {np.shape(x)} must have "
                             f"{len(labels)} columns, one per class label")
        return ([dict(zip(labels, row)) for row in rows.tolist()],)

    return compute


_VALUE_DTYPES = {"float": np.float32, "double": np.float64, "int64": np.int64, "string": object}


@kernels.register("DictVectorizer", 1, domain=ML)
def dict_vectorizer(node: NodeInfo):
    """DictVectorizer 1+: a ``[1, len(vocabulary)]`` row with each map value at its key's
    position in the vocabulary (absent keys give 0 or ''; keys outside it are ignored, as in
    ONNX Runtime)."""
    vocabulary = _labels(node, "string_vocabulary", "int64_vocabulary")
    position = {key: i for i, key in enumerate(vocabulary)}
    out_dtype = node.output_dtypes[0] if node.output_dtypes and node.output_dtypes[0] is not None \
        else None

    def compute(mapping):
        if not isinstance(mapping, dict):
            raise TypeError(f"{node.describe()}: X must be a map, got {type(mapping).__name__}")
        dtype = out_dtype
        if dtype is None:
            sample = next(iter(mapping.values()), 0.0)
            dtype = np.dtype(object) if isinstance(sample, str) else np.dtype(np.float32)
        row = np.full((1, len(vocabulary)), "" if dtype == object else 0, dtype=dtype)
        for key, value in mapping.items():
            index = position.get(key)
            if index is not None:
                row[0, index] = value
        return (row,)

    return compute


@kernels.register("CastMap", 1, domain=ML)
def cast_map(node: NodeInfo):
    """CastMap 1+: an int64-keyed map as a ``[1, N]`` tensor ordered by key; ``DENSE`` keeps
    the present keys, ``SPARSE`` fills positions 0..max_map-1 (absent: 0); ``cast_to`` picks
    float, int64 or string (formatted ``%f``, as ONNX Runtime does)."""
    cast_to = str(node.attrs.get("cast_to", "TO_FLOAT"))
    map_form = str(node.attrs.get("map_form", "DENSE"))
    max_map = int(node.attrs.get("max_map", 1))
    dtypes = {"TO_FLOAT": np.dtype(np.float32), "TO_INT64": np.dtype(np.int64),
              "TO_STRING": np.dtype(object)}
    if cast_to not in dtypes:
        raise ValueError(f"{node.describe()}: cast_to must be one of {sorted(dtypes)}, "
                         f"got '{cast_to}'")
    if map_form not in ("DENSE", "SPARSE"):
        raise ValueError(f"{node.describe()}: map_form must be DENSE or SPARSE, got '{map_form}'")
    if map_form == "SPARSE" and max_map < 1:
        raise ValueError(f"{node.describe()}: max_map must be positive for SPARSE, got {max_map}")
    dtype = dtypes[cast_to]

    def convert(value: Any) -> Any:
        if cast_to == "TO_STRING":
            return value if isinstance(value, str) else f"{float(value):f}"
        number = float(value)
        return int(number) if cast_to == "TO_INT64" else number

    def compute(mapping):
        if not isinstance(mapping, dict):
            raise TypeError(f"{node.describe()}: X must be a map, got {type(mapping).__name__}")
        keys = sorted(mapping)
        if map_form == "DENSE":
            return (np.array([[convert(mapping[k]) for k in keys]], dtype=dtype).reshape(1, -1),)
        if keys and (keys[0] < 0 or keys[-1] >= max_map):
            raise IndexError(f"{node.describe()}: key {keys[-1] if keys[-1] >= max_map else keys[0]}"
                             f" is outside the SPARSE range [0, {max_map - 1}]")
        row = np.full((1, max_map), "" if dtype == object else 0, dtype=dtype)
        for key in keys:
            row[0, key] = convert(mapping[key])
        return (row,)

    return compute
