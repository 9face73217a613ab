"""Checking and converting what callers feed to ``run``: one :class:`FeedSpec` per graph input,
built once from its declared ``TypeProto``.

Tensors are checked for element type, rank and fixed dimensions with ONNX Runtime's messages;
Python scalars, lists and numpy scalars are converted to arrays of the declared type. Sequences
take a list (or tuple) of tensors, optionals take ``None`` (empty) or their element, maps take a
``dict`` whose keys and values fit the declared key and value types (``seq(map(...))``, what
ZipMap returns, is a list of such dicts).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import onnx

from ..errors import InvalidArgument
from ..element_types import ELEMENT_TYPE_NAMES, dtype_name, np_dtype_of, type_string
from .ortvalue import OrtValue

__all__ = ["FeedSpec", "TensorFeed", "SequenceFeed", "OptionalFeed", "MapFeed", "AnyFeed",
           "feed_spec"]


class FeedSpec(ABC):
    """What a feed for one input must look like."""

    def __init__(self, name: str, tp: onnx.TypeProto | None) -> None:
        self.name = name
        self.type_str = type_string(tp) if tp is not None else "unknown"

    @abstractmethod
    def convert(self, value: Any) -> Any:
        """Check ``value``; return what the plan runs with (raise InvalidArgument if wrong)."""


class AnyFeed(FeedSpec):
    """An input of unknown or unchecked type: passed through (OrtValues unwrapped)."""

    def convert(self, value: Any) -> Any:
        """Return the value, an OrtValue's content unwrapped."""
        return value.numpy() if isinstance(value, OrtValue) else value


class TensorFeed(FeedSpec):
    """A tensor input: element type, rank and fixed dimensions are checked (only the element
    type for the items of a sequence, as ONNX Runtime does)."""

    def __init__(self, name: str, tp: onnx.TypeProto, check_shape: bool = True) -> None:
        super().__init__(name, tp)
        tensor = tp.tensor_type
        self.dtype: np.dtype | None = None
        self.rank: int | None = None
        self.fixed_dims: list[tuple[int, int]] = []
        if tensor.elem_type in ELEMENT_TYPE_NAMES:
            self.dtype = np_dtype_of(tensor.elem_type)
        #: a string input: numpy str/bytes arrays are fed as object arrays of str
        self.strings = self.dtype == np.dtype(object)
        if check_shape and tensor.HasField("shape"):
            dims = tensor.shape.dim
            self.rank = len(dims)
            self.fixed_dims = [(i, d.dim_value) for i, d in enumerate(dims) if d.HasField("dim_value")]

    def convert(self, value: Any) -> np.ndarray:
        """Check a tensor feed; return the array to run with."""
        if type(value) is not np.ndarray:
            value = self._as_array(value)
        elif self.strings and value.dtype.kind in "US":
            value = value.astype(str).astype(object)
        self.check(value)
        return value

    def _as_array(self, value: Any) -> np.ndarray:
        """A non-ndarray feed (OrtValue, subclass, scalar, list) as the array to check."""
        if isinstance(value, OrtValue):
            value = value.numpy()
        if not isinstance(value, np.ndarray):
            if value is None or isinstance(value, (dict, set)):
                raise InvalidArgument(
                    f"Input '{self.name}' must be a {self.type_str}, got {type(value).__name__}"
                )
            if self.dtype is not None and not self.strings:
                try:
                    value = np.asarray(value, dtype=self.dtype)
                except (TypeError, ValueError) as exc:
                    raise InvalidArgument(
                        f"Input '{self.name}' must be convertible to {self.type_str}: {exc}"
                    ) from None
            else:
                value = np.asarray(value)
        if self.strings and value.dtype.kind in "US":
            value = value.astype(str).astype(object)
        return value

    def check(self, value: Any) -> None:
        """Check the element type and shape of an array of any array type (numpy, cupy, a
        device provider's own) without touching its data."""
        expected = self.dtype
        if expected is not None and value.dtype != expected:
            raise InvalidArgument(
                f"Unexpected input data type. Actual: ({_type_name_of_array(value)}) , "
                f"expected: ({self.type_str})"
            )
        if self.rank is not None:
            shape = value.shape
            if len(shape) != self.rank:
                raise InvalidArgument(
                    f"Invalid rank for input: {self.name} Got: {len(shape)} Expected: {self.rank} "
                    "Please fix either the inputs/outputs or the model."
                )
            for i, d in self.fixed_dims:
                if shape[i] != d:
                    self._bad_dims(shape)

    def _bad_dims(self, shape: tuple[int, ...]) -> None:
        bad = [(i, shape[i], d) for i, d in self.fixed_dims if shape[i] != d]
        lines = "".join(f" index: {i} Got: {got} Expected: {want}\n" for i, got, want in bad)
        raise InvalidArgument(
            f"Got invalid dimensions for input: {self.name} for the following indices\n"
            f"{lines} Please fix either the inputs/outputs or the model."
        )


class SequenceFeed(FeedSpec):
    """A sequence input: a list or tuple whose items each satisfy the element spec."""

    def __init__(self, name: str, tp: onnx.TypeProto) -> None:
        super().__init__(name, tp)
        elem = tp.sequence_type.elem_type
        self.element = (TensorFeed(name, elem, check_shape=False)
                        if elem.WhichOneof("value") == "tensor_type" else feed_spec(name, elem))

    def convert(self, value: Any) -> list[Any]:
        """Check a sequence feed; return a new list of converted items."""
        if isinstance(value, OrtValue):
            value = value.value
        if isinstance(value, np.ndarray) or not isinstance(value, (list, tuple)):
            raise InvalidArgument(
                f"Input '{self.name}' is a {self.type_str}: feed a list of arrays, "
                f"got {type(value).__name__}"
            )
        return [self.element.convert(item) for item in value]


class OptionalFeed(FeedSpec):
    """An optional input: ``None`` is the empty optional, anything else must fit the element."""

    def __init__(self, name: str, tp: onnx.TypeProto) -> None:
        super().__init__(name, tp)
        self.element = feed_spec(name, tp.optional_type.elem_type)

    def convert(self, value: Any) -> Any:
        """Return None for an empty optional, else the converted element."""
        if isinstance(value, OrtValue) and not value.has_value():
            return None
        return None if value is None else self.element.convert(value)


class MapFeed(FeedSpec):
    """A map input: a dict with int64 or string keys and scalar values of the value type."""

    def __init__(self, name: str, tp: onnx.TypeProto) -> None:
        super().__init__(name, tp)
        key_type = tp.map_type.key_type
        self.key_kind = str if key_type == onnx.TensorProto.STRING else int
        value = tp.map_type.value_type
        elem = value.tensor_type.elem_type if value.WhichOneof("value") == "tensor_type" else 0
        self.value_kind = (str if elem == onnx.TensorProto.STRING else
                           int if elem in (onnx.TensorProto.INT64, onnx.TensorProto.INT32) else float)

    def convert(self, value: Any) -> dict[Any, Any]:
        """Check a map feed; return a new dict with keys and values as Python scalars."""
        if isinstance(value, OrtValue):
            value = value.value
        if not isinstance(value, dict):
            raise InvalidArgument(
                f"Input '{self.name}' is a {self.type_str}: feed a dict, got {type(value).__name__}"
            )
        try:
            return {self._key(k): self._value(v) for k, v in value.items()}
        except (TypeError, ValueError) as exc:
            raise InvalidArgument(f"Input '{self.name}' must be a {self.type_str}: {exc}") from None

    def _key(self, key: Any) -> Any:
        if self.key_kind is str:
            if not isinstance(key, str):
                raise TypeError(f"key {key!r} is not a string")
            return key
        if isinstance(key, (bool, float, str)) or not isinstance(key, (int, np.integer)):
            raise TypeError(f"key {key!r} is not an integer")
        return int(key)

    def _value(self, value: Any) -> Any:
        if self.value_kind is str:
            if not isinstance(value, str):
                raise TypeError(f"value {value!r} is not a string")
            return value
        if isinstance(value, str):
            raise TypeError(f"value {value!r} is not a number")
        return self.value_kind(value)


def feed_spec(name: str, tp: onnx.TypeProto | None) -> FeedSpec:
    """The spec checking feeds of an input of type ``tp``."""
    kind = tp.WhichOneof("value") if tp is not None else None
    if kind == "tensor_type":
        return TensorFeed(name, tp)
    if kind == "sequence_type" and tp.sequence_type.HasField("elem_type"):
        return SequenceFeed(name, tp)
    if kind == "optional_type" and tp.optional_type.HasField("elem_type"):
        return OptionalFeed(name, tp)
    if kind == "map_type":
        return MapFeed(name, tp)
    return AnyFeed(name, tp)


def _type_name_of_array(value: np.ndarray) -> str:
    try:
        return f"tensor({dtype_name(value.dtype)})"
    except (KeyError, ValueError):
        return f"numpy {value.dtype}"
