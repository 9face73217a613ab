"""Large initializers held as numpy arrays beside the model instead of inside it.

A session rewrites its ``ModelProto`` several times while it is built (type inference,
optimizer passes, the optimized copy), and protobuf copies every byte of every weight each
time a message is copied or a tensor built: on a 45 MB CNN that was most of session creation.
So once a model is loaded, each large initializer's data moves into a numpy array held by a
:class:`DetachedTensors` store, and the tensor in the model becomes a stub: its name, type and
dims, with ``data_location = EXTERNAL`` and ``location = "ort:detached/<n>"``. Copying the
model then costs kilobytes, and :func:`ort.graph.tensor_to_array` resolves a stub to its
array through :func:`lookup` without copying.

Stubs never leave ort: :meth:`DetachedTensors.materialize` puts the data back (saving
``optimized_model_filepath``), and a stub whose store is gone fails loudly.
"""

from __future__ import annotations

import itertools
import threading
import weakref

import numpy as np
from onnx import GraphProto, ModelProto, TensorProto, numpy_helper

from .types import element_type_of_dtype, np_dtype_of

__all__ = ["DetachedTensors", "lookup", "is_detached", "DETACH_BYTES"]

#: Initializers of at least this many bytes are detached.
DETACH_BYTES = 1 << 16
_PREFIX = "ort:detached/"
_counter = itertools.count()
_lock = threading.Lock()
_registry: weakref.WeakValueDictionary[str, np.ndarray] = weakref.WeakValueDictionary()


def _location(tensor: TensorProto) -> str | None:
    if tensor.data_location != TensorProto.EXTERNAL:
        return None
    for entry in tensor.external_data:
        if entry.key == "location":
            return entry.value if entry.value.startswith(_PREFIX) else None
    return None


def is_detached(tensor: TensorProto) -> bool:
    """Whether ``tensor`` is a stub whose data a :class:`DetachedTensors` store holds."""
    return _location(tensor) is not None


def lookup(tensor: TensorProto) -> np.ndarray | None:
    """The array a stub stands for; None for an ordinary tensor. A stub whose store no
    longer exists is a ``RuntimeError`` (it must never be read as an empty tensor)."""
    location = _location(tensor)
    if location is None:
        return None
    array = _registry.get(location)
    if array is None:
        raise RuntimeError(
            f"initializer '{tensor.name}' refers to detached data ({location}) that no longer "
            "exists: a model built by an ort session was used after the session was freed")
    return array


class DetachedTensors:
    """The arrays behind one session's stubs (it keeps them alive)."""

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._arrays)

    def stub(self, array: np.ndarray, name: str) -> TensorProto:
        """A stub tensor named ``name`` for ``array`` (read-only from now on)."""
        array = np.asarray(array)
        if not array.flags.c_contiguous:
            array = np.ascontiguousarray(array)
        array.setflags(write=False)
        with _lock:
            location = f"{_PREFIX}{next(_counter)}"
        self._arrays[location] = array
        _registry[location] = array
        tensor = TensorProto()
        tensor.name = name
        tensor.data_type = element_type_of_dtype(array.dtype)
        tensor.dims.extend(array.shape)
        tensor.data_location = TensorProto.EXTERNAL
        entry = tensor.external_data.add()
        entry.key, entry.value = "location", location
        return tensor

    def detach(self, graph: GraphProto, to_array) -> None:
        """Replace ``graph``'s large numeric initializers by stubs (``to_array`` decodes a
        tensor)."""
        for index, tensor in enumerate(graph.initializer):
            # stubs, file-backed tensors and strings stay as they are
            if tensor.data_type == TensorProto.STRING or \
                    tensor.data_location == TensorProto.EXTERNAL:
                continue
            try:
                itemsize = np_dtype_of(tensor.data_type).itemsize
            except ValueError:  # an element type numpy cannot hold
                continue
            elements = 1
            for d in tensor.dims:
                elements *= d
            if elements * itemsize < DETACH_BYTES:  # (not ByteSize(): it walks the data)
                continue
            array = to_array(tensor)
            if array.dtype == object:
                continue
            graph.initializer[index].CopyFrom(self.stub(array, tensor.name))

    def retain(self, *models: ModelProto) -> None:
        """Forget the arrays no stub in ``models``' top-level graphs refers to."""
        used = {_location(t) for model in models for t in model.graph.initializer}
        for location in [loc for loc in self._arrays if loc not in used]:
            del self._arrays[location]

    def materialize(self, model: ModelProto) -> ModelProto:
        """A copy of ``model`` with every stub replaced by a tensor holding its data."""
        full = ModelProto()
        full.CopyFrom(model)
        for tensor in full.graph.initializer:
            array = lookup(tensor)
            if array is not None:
                tensor.CopyFrom(numpy_helper.from_array(array, tensor.name))
        return full
