"""Reading a model's external data with containment checks.

An initializer (or a Constant's tensor) stored outside the protobuf names a file by a
``location`` relative to a folder: the model file's folder, or, for a model given as bytes or
as a ``ModelProto``, the folder ``session.model_external_initializers_file_folder_path`` names
(default: the working directory), as in ONNX Runtime. A model is untrusted input, so a location
may not reach outside that folder: absolute paths, ``..`` components and symbolic links that
resolve elsewhere are refused with :class:`~ort.errors.Fail` saying which tensor asked for what
and why, before any byte is read, as are offsets and lengths outside the file. ort's own
``ort:`` locations are refused earlier (:func:`ort.ir.loading.load_model`).
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator
from pathlib import PurePosixPath, PureWindowsPath

from onnx import GraphProto, ModelProto, TensorProto

from ..errors import Fail, NoSuchFile

__all__ = ["external_tensors", "load_external_data"]


def external_tensors(model: ModelProto) -> Iterator[TensorProto]:
    """Every tensor of ``model`` whose data lives in an external file: initializers, sparse
    initializers' values and indices, and tensor attributes (Constant values) of the graph,
    its subgraphs and the model's functions."""
    for tensor in _tensors_of_graph(model.graph):
        if tensor.data_location == TensorProto.EXTERNAL:
            yield tensor
    for function in model.functions:
        for node in function.node:
            for tensor in _tensors_of_node(node):
                if tensor.data_location == TensorProto.EXTERNAL:
                    yield tensor


def _tensors_of_graph(graph: GraphProto) -> Iterator[TensorProto]:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        yield from _tensors_of_node(node)


def _tensors_of_node(node) -> Iterator[TensorProto]:
    for attr in node.attribute:
        if attr.HasField("t"):
            yield attr.t
        yield from attr.tensors
        if attr.HasField("g"):
            yield from _tensors_of_graph(attr.g)
        for sub in attr.graphs:
            yield from _tensors_of_graph(sub)


def load_external_data(model: ModelProto, folder: str) -> int:
    """Read the external data of every tensor of ``model`` from files inside ``folder`` into
    the tensors (``raw_data``); return how many tensors were read. Locations that escape the
    folder, files that are missing and byte ranges outside a file are refused."""
    root = os.path.realpath(folder)
    files: dict[str, tuple[object, mmap.mmap | bytes]] = {}
    count = 0
    try:
        for tensor in external_tensors(model):
            info = {entry.key: entry.value for entry in tensor.external_data}
            path = _contained_path(tensor.name, info.get("location", ""), root)
            offset = _nonnegative(tensor.name, info, "offset", 0)
            data = _mapped(files, path, tensor.name)
            size = len(data)
            length = _nonnegative(tensor.name, info, "length", size - offset)
            if offset > size or offset + length > size:
                raise Fail(f"Load model failed: initializer '{tensor.name}' asks for bytes "
                           f"{offset}..{offset + length} of '{info['location']}', which holds "
                           f"{size} bytes")
            tensor.raw_data = bytes(data[offset:offset + length])
            del tensor.external_data[:]
            tensor.data_location = TensorProto.DEFAULT
            count += 1
    finally:
        for handle, data in files.values():
            if isinstance(data, mmap.mmap):
                data.close()
            handle.close()  # type: ignore[attr-defined]
    return count


def _contained_path(name: str, location: str, root: str) -> str:
    """The real path of ``location`` inside ``root``, or :class:`Fail` saying why not."""
    where = f"Load model failed: initializer '{name}' names the external data location " \
            f"'{location}'"
    if not location:
        raise Fail(f"Load model failed: initializer '{name}' is stored externally but names "
                   "no location")
    if "\0" in location:
        raise Fail(f"{where}, which holds a NUL character")
    if os.path.isabs(location) or PureWindowsPath(location).is_absolute() \
            or PureWindowsPath(location).drive or location.startswith(("/", "\\")):
        raise Fail(f"{where}: an absolute path; external data must be a path relative to the "
                   "model's folder")
    parts = PurePosixPath(location.replace("\\", "/")).parts
    lexical = os.path.normpath(os.path.join(root, *parts))
    if os.path.commonpath([lexical, root]) != root:
        raise Fail(f"{where}: '..' would leave the model's folder; external data must stay "
                   "inside it")
    path = os.path.realpath(os.path.join(root, location))
    if os.path.commonpath([path, root]) != root:
        raise Fail(f"{where}, which resolves (through a symbolic link) to '{path}', outside the "
                   f"model's folder '{root}'")
    if not os.path.isfile(os.path.join(root, location)):  # as the OS opens it: 'sub/..' needs sub
        raise NoSuchFile(f"Load model failed: the external data file '{location}' of "
                         f"initializer '{name}' does not exist in '{root}'")
    return path


def _nonnegative(name: str, info: dict[str, str], key: str, default: int) -> int:
    if key not in info:
        return default
    try:
        value = int(info[key])
    except ValueError:
        value = -1
    if value < 0:
        raise Fail(f"Load model failed: initializer '{name}' has external data {key} "
                   f"'{info[key]}'; it must be a non-negative integer")
    return value


def _mapped(files: dict, path: str, name: str) -> mmap.mmap | bytes:
    """The contents of ``path`` (memory-mapped; empty files as b"")."""
    if path not in files:
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed by load_external_data
        except OSError as exc:
            raise NoSuchFile(f"Load model failed: cannot open the external data of initializer "
                             f"'{name}': {exc}") from None
        size = os.fstat(handle.fileno()).st_size
        data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        files[path] = (handle, data)
    return files[path][1]
