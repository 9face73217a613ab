"""Inputs for a model run from the command line: sizes of symbolic dims (``--dim NAME=SIZE``)
and random feeds made from the model's input metadata (``ort run`` without ``--input``,
``ort bench``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..element_types import ELEMENT_TYPE_NAMES, np_dtype_of

__all__ = ["DEFAULT_SEQUENCE", "SEQUENCE_WORDS", "parse_dims", "split_list", "resolve_shape",
           "InputSpec", "model_inputs", "make_feeds"]

DEFAULT_SEQUENCE = 128
#: Substrings of symbolic dim names that mean "sequence length" (default DEFAULT_SEQUENCE).
SEQUENCE_WORDS = ("seq", "sequence", "length", "len", "token", "time")


def parse_dims(items: Iterable[str]) -> dict[str, int]:
    """``["batch=4", "seq=16"]`` -> ``{"batch": 4, "seq": 16}``; a ``ValueError`` saying what
    is wrong for anything else."""
    dims: dict[str, int] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value.strip().isdigit() or int(value) < 1:
            raise ValueError(f"--dim must look like NAME=SIZE with a positive SIZE, got {item!r}")
        dims[name] = int(value)
    return dims


def split_list(value: str | Sequence[str] | None) -> list[str]:
    """A comma-separated list (or several of them) as a list of non-empty names."""
    if value is None:
        return []
    parts = [value] if isinstance(value, str) else list(value)
    return [p.strip() for part in parts for p in part.split(",") if p.strip()]


def _is_sequence_dim(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SEQUENCE_WORDS)


def resolve_shape(shape: Sequence[Any], dims: dict[str, int], batch: int,
                  sequence: int = DEFAULT_SEQUENCE) -> list[int]:
    """Concrete sizes for one input: ``dims`` by name, else batch for the leading/"batch" dims,
    else ``sequence`` for sequence-like names, else 1."""
    resolved = []
    for axis, dim in enumerate(shape):
        if isinstance(dim, (int, np.integer)) and dim >= 0:
            resolved.append(int(dim))
        elif dim and str(dim) in dims:
            resolved.append(dims[str(dim)])
        elif axis == 0 or (dim and "batch" in str(dim).lower()):
            resolved.append(batch)
        elif dim and _is_sequence_dim(str(dim)):
            resolved.append(sequence)
        else:
            resolved.append(1)
    return resolved


def _vocab_sizes(model: Any) -> dict[str, int]:
    """Graph inputs used as Gather indices into an initializer table: input -> table rows."""
    if model is None:
        return {}
    tables = {t.name: (list(t.dims)[0] if t.dims else 0) for t in model.graph.initializer}
    sizes: dict[str, int] = {}
    for node in model.graph.node:
        if node.op_type == "Gather" and len(node.input) > 1 and node.input[0] in tables:
            axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
            if axis == 0 and tables[node.input[0]] > 0:
                sizes.setdefault(node.input[1], tables[node.input[0]])
    return sizes


@dataclass
class InputSpec:
    """A graph input as ``NodeArg`` describes it (name, "tensor(float)", shape)."""

    name: str
    type: str
    shape: list[Any]


def model_inputs(model: Any) -> list[InputSpec]:
    """The graph inputs of an ``onnx.ModelProto`` that are not initializers."""
    initializers = {t.name for t in model.graph.initializer}
    specs = []
    for value in model.graph.input:
        if value.name in initializers:
            continue
        kind = value.type.WhichOneof("value")
        if kind != "tensor_type":
            specs.append(InputSpec(value.name, kind or "unknown", []))
            continue
        tensor = value.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                 for d in tensor.shape.dim]
        element = ELEMENT_TYPE_NAMES.get(tensor.elem_type, "undefined")
        specs.append(InputSpec(value.name, f"tensor({element})", shape))
    return specs


def make_feeds(inputs: Sequence[Any], model: Any = None, dims: dict[str, int] | None = None,
               batch: int = 1, seed: int = 0,
               sequence: int = DEFAULT_SEQUENCE) -> dict[str, np.ndarray]:
    """Random feeds from input metadata (``NodeArg``s; shapes by :func:`resolve_shape`).
    Float: standard normal; int inputs indexing an embedding table (a Gather on an
    initializer of ``model``): ids below its row count; names with "mask": all ones; other
    ints: 0..9; bool: random."""
    dims = dims or {}
    rng = np.random.default_rng(seed)
    element_types = {name: code for code, name in ELEMENT_TYPE_NAMES.items()}
    vocab = _vocab_sizes(model)
    feeds: dict[str, np.ndarray] = {}
    for arg in inputs:
        element = arg.type[len("tensor("):-1] if arg.type.startswith("tensor(") else None
        dtype = np_dtype_of(element_types[element]) if element in element_types else None
        if dtype is None or dtype.kind not in "fiub":
            raise ValueError(f"input {arg.name!r} has type {arg.type}: random inputs are made "
                             "for numeric tensors only; give it with --input NAME=FILE.npy")
        shape = resolve_shape(list(arg.shape or []), dims, batch, sequence)
        if dtype.kind == "f":
            feeds[arg.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind == "b":
            feeds[arg.name] = rng.integers(0, 2, shape).astype(bool)
        elif "mask" in arg.name.lower():
            feeds[arg.name] = np.ones(shape, dtype)
        else:
            high = vocab.get(arg.name, 10)
            feeds[arg.name] = rng.integers(0, high, shape).astype(dtype)
    return feeds
