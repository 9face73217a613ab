"""Large initializers held as numpy arrays beside the model, owned by the session that loaded it.

A session rewrites its ``ModelProto`` several times while it is built (type inference,
optimizer passes, the optimized copy), and protobuf copies every byte of every weight each
time a message is copied or a tensor built: on a 45 MB CNN that was most of session creation.
So once a model is loaded, each large initializer's data moves into a numpy array held by the
session's :class:`WeightStore`, and the tensor in the model becomes a *stub*: its name, type
and dims, with ``data_location = EXTERNAL`` and a location of the form
``ort:weights/<store token>/<n>``. Copying the model then costs kilobytes, and
:func:`ort.ir.tensors.tensor_to_array` resolves a stub through the store it is given.

There is no process-wide table of stubs: a stub resolves only against the store of the session
that made it (the token is random per store), and a model that names an ``ort:`` location
itself is refused when it is loaded. Stubs never leave ort: :meth:`WeightStore.materialize`
puts the data back (saving ``optimized_model_filepath``).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

import numpy as np
from onnx import GraphProto, ModelProto, TensorProto, numpy_helper

from ..element_types import element_type_of_dtype, np_dtype_of
from .tensors import RESERVED_LOCATION_PREFIX, reserved_location, tensor_to_array

__all__ = ["WeightStore", "DETACH_BYTES"]

#: Initializers of at least this many bytes are detached.
DETACH_BYTES = 1 << 16


class WeightStore:
    """The arrays behind one session's stubs (it keeps them alive)."""

    def __init__(self) -> None:
        self._prefix = f"{RESERVED_LOCATION_PREFIX}weights/{secrets.token_hex(8)}/"
        self._arrays: dict[str, np.ndarray] = {}
        self._count = 0

    def __len__(self) -> int:
        return len(self._arrays)

    def resolve(self, location: str) -> np.ndarray | None:
        """The array stored under ``location``; None when it is not one of this store's."""
        return self._arrays.get(location)

    def is_stub(self, tensor: TensorProto) -> bool:
        """Whether ``tensor`` is a stub of this store."""
        location = reserved_location(tensor)
        return location is not None and location in self._arrays

    def stub(self, array: np.ndarray, name: str) -> TensorProto:
        """A stub tensor named ``name`` for ``array`` (read-only from now on)."""
        array = np.asarray(array)
        if not array.flags.c_contiguous:
            array = np.ascontiguousarray(array)
        array.setflags(write=False)
        location = f"{self._prefix}{self._count}"
        self._count += 1
        self._arrays[location] = array
        tensor = TensorProto()
        tensor.name = name
        tensor.data_type = element_type_of_dtype(array.dtype)
        tensor.dims.extend(array.shape)
        tensor.data_location = TensorProto.EXTERNAL
        entry = tensor.external_data.add()
        entry.key, entry.value = "location", location
        return tensor

    def detach(self, graph: GraphProto,
               to_array: Callable[[TensorProto], np.ndarray] = tensor_to_array) -> int:
        """Replace ``graph``'s large numeric initializers by stubs; return the bytes moved."""
        moved = 0
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
            moved += array.nbytes
        return moved

    def retain(self, *models: ModelProto) -> None:
        """Forget the arrays no stub in ``models``' top-level graphs refers to."""
        used = {reserved_location(t) for model in models for t in model.graph.initializer}
        for location in [loc for loc in self._arrays if loc not in used]:
            del self._arrays[location]

    def materialize(self, model: ModelProto) -> ModelProto:
        """A copy of ``model`` with every stub replaced by a tensor holding its data."""
        full = ModelProto()
        full.CopyFrom(model)
        for tensor in full.graph.initializer:
            location = reserved_location(tensor)
            if location is not None and location in self._arrays:
                tensor.CopyFrom(numpy_helper.from_array(self._arrays[location], tensor.name))
        return full
