"""``OrtValue``: a value that knows its ONNX type and the device its data lives on.

On the CPU an OrtValue wraps a numpy array without copying: ``ortvalue_from_numpy(x).numpy()``
shares memory with ``x``, as in ONNX Runtime. Values on other devices are held in the array
type of the provider that owns the device (a cupy array for CUDA).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from ..ep import ExecutionProvider, OrtDevice, get_registry
from ..errors import EPFail, InvalidArgument
from ..element_types import ELEMENT_TYPE_NAMES, element_type_of_dtype, np_dtype_of

__all__ = ["OrtValue", "device_provider"]


_DEVICE_PROVIDERS: dict[tuple[int, str, int], ExecutionProvider] = {}


def device_provider(device_type: str, device_id: int = 0) -> ExecutionProvider | None:
    """The provider that owns memory of ``device_type`` (None for the host); one instance per
    device, reused by every OrtValue and IOBinding (creating one may open streams)."""
    kind = str(device_type).lower()
    if kind == "cpu":
        return None
    registry = get_registry()
    key = (id(registry), kind, int(device_id))
    cached = _DEVICE_PROVIDERS.get(key)
    if cached is not None:
        return cached
    provider = _make_device_provider(registry, kind, device_type, device_id)
    if len(_DEVICE_PROVIDERS) > 64:  # plugin registries come and go in tests
        _DEVICE_PROVIDERS.clear()
    _DEVICE_PROVIDERS[key] = provider
    return provider


def _make_device_provider(registry: Any, kind: str, device_type: str,
                          device_id: int) -> ExecutionProvider:
    reasons = []
    for name in registry.provider_names():
        spec = registry.provider_spec(name)
        if spec.device_type != kind:
            continue
        reason = registry.unavailable_reason(name)
        if reason is None:
            return spec.factory({"device_id": str(device_id)})
        reasons.append(reason)
    if reasons:
        raise EPFail(f"Can't allocate memory on device '{kind}': {'; '.join(reasons)}")
    raise InvalidArgument(
        f"Unsupported device type: {device_type}. No installed provider owns '{kind}' memory; "
        "'cpu' always works, 'cuda' needs ort-provider-cuda"
    )


def _as_dtype(element_type: Any) -> np.dtype:
    if isinstance(element_type, (int, np.integer)) and not isinstance(element_type, bool):
        return np_dtype_of(int(element_type))
    return np.dtype(element_type)


class OrtValue:
    """A tensor (or, later, sequence/map/optional) with its device.

    Create one with :meth:`ortvalue_from_numpy` or :meth:`ortvalue_from_shape_and_type`.
    """

    __slots__ = ("_value", "_provider", "_device")

    def __init__(self, value: Any, provider: ExecutionProvider | None = None) -> None:
        self._value = value
        self._provider = provider
        self._device = provider.device if provider is not None else OrtDevice("cpu", 0)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def ortvalue_from_numpy(cls, numpy_obj: Any, /, device_type: str = "cpu", device_id: int = 0,
                            vendor_id: int = -1) -> OrtValue:
        """Wrap a numpy array (zero-copy on CPU) or copy it to ``device_type``'s memory."""
        array = np.asarray(numpy_obj)
        if array.dtype.kind in "US":
            array = array.astype(object)
        provider = device_provider(device_type, device_id)
        if provider is None:
            return cls(array)
        return cls(provider.to_device(np.asarray(array, order="C")), provider)

    @classmethod
    def ortvalue_from_shape_and_type(cls, shape: Sequence[int], element_type: Any,
                                     device_type: str = "cpu", device_id: int = 0,
                                     vendor_id: int = -1) -> OrtValue:
        """Allocate an uninitialized tensor; ``element_type`` is a numpy dtype or an ONNX
        ``TensorProto`` enum."""
        dtype = _as_dtype(element_type)
        dims = tuple(int(d) for d in shape)
        if any(d < 0 for d in dims):
            raise InvalidArgument(f"shape {list(dims)} has a negative dimension")
        provider = device_provider(device_type, device_id)
        if provider is None:
            if dtype == np.dtype(object):
                return cls(np.full(dims, "", dtype=object))
            return cls(np.empty(dims, dtype=dtype))
        return cls(provider.allocate(dims, dtype), provider)

    @classmethod
    def ortvalue_from_numpy_with_onnx_type(cls, data: np.ndarray, /, onnx_element_type: int) -> OrtValue:
        """Wrap ``data`` reinterpreted as ONNX type ``onnx_element_type`` (same item size)."""
        dtype = np_dtype_of(onnx_element_type)
        array = np.asarray(data)
        if array.dtype.itemsize != dtype.itemsize:
            raise InvalidArgument(
                f"cannot view {array.dtype} data as {ELEMENT_TYPE_NAMES[onnx_element_type]}: "
                f"item sizes {array.dtype.itemsize} and {dtype.itemsize} differ"
            )
        return cls(array.view(dtype))

    @classmethod
    def from_dlpack(cls, data: Any, /) -> OrtValue:
        """Build an OrtValue from any object implementing DLPack (zero-copy on CPU)."""
        device = data.__dlpack_device__() if hasattr(data, "__dlpack_device__") else (1, 0)
        if device[0] == 1:  # kDLCPU
            return cls(np.from_dlpack(data))
        provider = device_provider("cuda", device[1])
        return cls(provider.xp.from_dlpack(data), provider)

    # -- inspection ---------------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """The value as a numpy array (a copy to host memory for device values)."""
        if not self.is_tensor():
            raise InvalidArgument(
                f"Only OrtValues that are Tensors are convertible to Numpy objects; this one is "
                f"{self.data_type()}"
            )
        if self._provider is None:
            return self._value
        return self._provider.to_host(self._value)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        array = self.numpy()
        if dtype is not None and array.dtype != np.dtype(dtype):
            return array.astype(dtype)
        return array.copy() if copy else array

    def __dlpack__(self, *, stream: Any = None, **kwargs: Any) -> Any:
        return self._value.__dlpack__(stream=stream, **kwargs) if stream is not None else self._value.__dlpack__(**kwargs)

    def __dlpack_device__(self) -> tuple[int, int]:
        return self._value.__dlpack_device__()

    def is_tensor(self) -> bool:
        """Whether the value is a tensor."""
        return hasattr(self._value, "shape") and hasattr(self._value, "dtype")

    def is_tensor_sequence(self) -> bool:
        """Whether the value is a sequence of tensors (a sequence of maps is not)."""
        return isinstance(self._value, list) and not any(isinstance(v, dict) for v in self._value)

    def is_sparse_tensor(self) -> bool:
        """Whether the value is a sparse tensor (never, in this version)."""
        return False

    def has_value(self) -> bool:
        """False for an empty optional value."""
        return self._value is not None

    def shape(self) -> list[int]:
        """The tensor's dimensions."""
        return [int(d) for d in self._value.shape]

    def element_type(self) -> int:
        """The ONNX ``TensorProto`` element type (1 for float)."""
        return element_type_of_dtype(self._value.dtype)

    def data_type(self) -> str:
        """ONNX Runtime's type string, e.g. ``'tensor(float)'``."""
        return _type_string_of(self._value)

    def device_name(self) -> str:
        """The device type the data lives on: ``'cpu'``, ``'cuda'``, ..."""
        return self._device.type_name

    def device(self) -> OrtDevice:
        """The device the data lives on."""
        return self._device

    def data_ptr(self) -> int:
        """The address of the first element."""
        value = self._value
        if isinstance(value, np.ndarray):
            return int(value.__array_interface__["data"][0])
        if self._provider is not None and self.is_tensor():
            return self._provider.data_ptr(value)
        raise InvalidArgument(f"{self.data_type()} has no single data pointer")

    @property
    def provider(self) -> ExecutionProvider | None:
        """The provider owning the device memory (None for host memory)."""
        return self._provider

    def tensor_size_in_bytes(self) -> int:
        """The size of the tensor's data in bytes."""
        return int(self._value.nbytes)

    def update_inplace(self, np_arr: Any) -> None:
        """Copy ``np_arr`` into this value's memory (same element count required)."""
        source = np.asarray(np_arr)
        if source.size != self._value.size:
            raise InvalidArgument(
                "The input size of numpy arrays does not match the size of the OrtValue: "
                f"got {source.size} elements, the OrtValue holds {self._value.size}"
            )
        source = source.reshape(self._value.shape).astype(self._value.dtype, copy=False)
        if self._provider is None:
            self._value[...] = source
        else:
            self._value[...] = self._provider.to_device(np.asarray(source, order="C"))

    @property
    def value(self) -> Any:
        """The underlying array (numpy on CPU, the provider's array type elsewhere)."""
        return self._value

    def __repr__(self) -> str:
        if self.is_tensor():
            return f"OrtValue({self.data_type()}, shape={self.shape()}, device={self._device})"
        return f"OrtValue({self.data_type()})"


def _scalar_type_name(value: Any) -> str:
    if isinstance(value, str):
        return "string"
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (int, np.integer)):
        return "int64"
    if isinstance(value, np.generic):
        return ELEMENT_TYPE_NAMES[element_type_of_dtype(value.dtype)]
    return "float"


def _type_string_of(value: Any) -> str:
    """ONNX Runtime's type string of a held value: tensors, sequences, maps, empty optionals."""
    if value is None:
        return "optional(undefined)"
    if isinstance(value, dict):
        key, item = next(iter(value.items()), (0, 0.0))
        return f"map({_scalar_type_name(key)},tensor({_scalar_type_name(item)}))"
    if isinstance(value, list):
        inner = _type_string_of(value[0]) if value else "tensor(float)"
        return f"seq({inner})"
    return f"tensor({ELEMENT_TYPE_NAMES[element_type_of_dtype(value.dtype)]})"
