"""Model loading: path, bytes or ModelProto in, a checked and type-inferred ``ModelProto`` out.

Errors follow ONNX Runtime: a missing file is :class:`~ort.errors.NoSuchFile`, bytes that are
not an ONNX protobuf are :class:`~ort.errors.InvalidProtobuf`, a model that breaks the ONNX
type rules is :class:`~ort.errors.InvalidGraph`, and an unsupported argument type is a
``TypeError``.
"""

from __future__ import annotations

import mmap
import os
import re
from collections.abc import Iterator
from typing import Any

import onnx
from google.protobuf.message import DecodeError
from onnx import ModelProto

from ..errors import Fail, InvalidGraph, InvalidProtobuf, NoSuchFile, OrtError
from .declared_types import check_declared_node
from .external_data import external_tensors, load_external_data
from .schemas import SchemaTable, attribute_defaults
from .tensors import (RESERVED_LOCATION_PREFIX, attribute_value,
                      constant_value, reserved_location)

__all__ = ["load_model", "infer_types", "clear_negative_dims", "MAX_IR_VERSION", "undecodable_text",
           "tensor_types_in"]

#: The newest IR version this build understands (that of the installed onnx package).
MAX_IR_VERSION = onnx.IR_VERSION


def _parse(data: bytes | memoryview, where: str) -> ModelProto:
    model = ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise InvalidProtobuf(f"{where}Protobuf parsing failed. ({exc})") from None
    if not model.HasField("graph"):
        raise InvalidProtobuf(f"{where}the bytes parsed but hold no graph: not an ONNX model")
    return model


def _parse_file(path: str, where: str) -> ModelProto:
    """Parse the model file at ``path`` straight from a memory map of it (protobuf copies
    what it keeps, so reading the file into a bytes object first was a third copy of every
    weight); a plain read where the file cannot be mapped."""
    with open(path, "rb") as f:
        try:
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):  # empty file, or one mmap cannot map
            return _parse(f.read(), where)
    with mapped:
        view = memoryview(mapped)
        try:
            return _parse(view, where)
        finally:
            view.release()


def load_model(source: Any, external_folder: str | None = None) -> tuple[ModelProto, str | None]:
    """Load a model from a path, ``os.PathLike``, bytes or ``ModelProto``, with its external
    data read in (:func:`~ort.ir.external_data.load_external_data`: locations must stay inside
    their folder).

    External data resolves beside a model file; for bytes or a ``ModelProto`` against
    ``external_folder`` (default: the working directory), as ONNX Runtime resolves it. A
    ``ModelProto`` with external data is copied, never filled in. Returns the model and the
    model file's folder (None for bytes and protos).
    """
    if isinstance(source, ModelProto):
        model, base_dir = source, None
    elif isinstance(source, (bytes, bytearray, memoryview)):
        model, base_dir = _parse(bytes(source), "Failed to load model because "), None
    elif isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise NoSuchFile(
                f"Load model from {path} failed:Load model {path} failed. File doesn't exist"
            )
        model = _parse_file(path, f"Load model from {path} failed:")
        base_dir = os.path.dirname(os.path.abspath(path))
    else:
        raise TypeError(
            f"Unable to load from type '{type(source)}': pass a file path (str or os.PathLike), "
            "the serialized model as bytes, or an onnx.ModelProto"
        )
    if model.ir_version > MAX_IR_VERSION:
        raise Fail(
            f"Unsupported model IR version: {model.ir_version}, max supported IR version: "
            f"{MAX_IR_VERSION} (that of the installed onnx {onnx.__version__}; upgrade onnx)"
        )
    if _undecodable_labels(model):  # repair a copy, never the caller's proto
        if model is source:
            model = ModelProto()
            model.CopyFrom(source)
        _repair_labels(model)
    external = list(external_tensors(model))
    _refuse_reserved_locations(external)
    if external:
        if model is source:  # the caller's proto: fill in a copy
            model = ModelProto()
            model.CopyFrom(source)
        folder = base_dir if base_dir is not None else (external_folder or os.getcwd())
        load_external_data(model, folder)
    return model, base_dir


def _labels(model: ModelProto) -> list[tuple[Any, str]]:
    """The model's free-text labels nothing depends on (ONNX Runtime reads them as bytes)."""
    return [(model, "producer_name"), (model, "producer_version"), (model, "domain"),
            (model, "doc_string"), (model.graph, "name"), (model.graph, "doc_string")]


def _undecodable_labels(model: ModelProto) -> bool:
    for message, name in _labels(model):
        try:
            if isinstance(getattr(message, name), bytes):
                return True
        except UnicodeDecodeError:
            return True
    return False


def _repair_labels(model: ModelProto) -> None:
    """Labels that are not UTF-8 decoded with replacement characters (or cleared)."""
    for message, name in _labels(model):
        try:
            value = getattr(message, name)
        except UnicodeDecodeError:
            message.ClearField(name)
            continue
        if isinstance(value, bytes):
            setattr(message, name, value.decode("utf-8", errors="replace"))


def undecodable_text(source: Any) -> str | None:
    """Where the model (path, bytes or ModelProto) holds text that is not UTF-8, e.g.
    ``"graph.node.op_type"``; None where all its text decodes. protobuf's Python runtime hands
    such a field out as bytes or raises on reading it, so code reading the model fails far from
    the cause: this finds the cause (slow: for error paths only)."""
    try:
        if isinstance(source, ModelProto):
            model = source
        elif isinstance(source, (bytes, bytearray, memoryview)):
            model = ModelProto.FromString(bytes(source))
        else:
            with open(os.fspath(source), "rb") as f:
                model = ModelProto.FromString(f.read())
    except Exception:  # noqa: BLE001 - unreadable models fail elsewhere with their own error
        return None
    return _undecodable_in(model, "model")


def _undecodable_in(message: Any, path: str) -> str | None:
    from google.protobuf.descriptor import FieldDescriptor
    for field, value in message.ListFields():
        where = f"{path}.{field.name}"
        repeated = field.is_repeated
        if field.type == FieldDescriptor.TYPE_STRING:
            try:
                items = list(value) if repeated else [value]
            except UnicodeDecodeError:
                return where
            if any(isinstance(item, bytes) for item in items):
                return where
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            for item in (value if repeated else [value]):
                found = _undecodable_in(item, where)
                if found is not None:
                    return found
    return None


def _refuse_reserved_locations(external: list[onnx.TensorProto]) -> None:
    """A model may not name ort's own external-data locations (the stubs a session makes of
    its weights) anywhere: initializers, sparse initializers, Constant values and tensor
    attributes of any graph, subgraph or function (:class:`~ort.errors.Fail`, before anything
    reads them)."""
    for tensor in external:
        location = reserved_location(tensor)
        if location is not None:
            raise Fail(
                f"Load model failed: tensor '{tensor.name}' names the external data "
                f"location '{location}'; locations starting with '{RESERVED_LOCATION_PREFIX}' "
                "are reserved for ort's own use and cannot be named by a model")


#: Inference errors ONNX Runtime only warns about: a declared shape that disagrees with the
#: inferred one, an input whose type nothing could infer.
_LENIENT_INFERENCE_ERRORS = ("Inferred shape and existing shape differ",
                             "Can't merge shape info",
                             "expected to have type but instead is null")

#: Ops whose subgraphs are checked as part of the node (their errors are the node's).
_CONTROL_FLOW_OPS = frozenset({"If", "Loop", "Scan"})

_ERROR_ENTRY = re.compile(r"\(op_type:([^,)]*)(?:, node name: ([^)]*))?\): ")


#: Initializers with more elements than this reach shape inference as typed graph inputs
#: rather than with their data (inference needs only their types; copying and serializing
#: hundreds of megabytes of weights for it cost seconds).
_INFERENCE_DATA_LIMIT = 4096


def infer_types(model: ModelProto, schemas: SchemaTable | None = None) -> ModelProto:
    """Run ONNX type and shape inference and record the result in ``model`` (its
    ``value_info``, output types and subgraph annotations); return ``model``.

    A negative ``dim_value`` (exporters write -1 for "any size") is a dynamic dim, as in
    ONNX Runtime: it is cleared before inference (:func:`clear_negative_dims`).

    Errors get ONNX Runtime's verdicts (:func:`_refusal`): a type the op's schema forbids is
    :class:`InvalidGraph`; a type parameter bound to two types, a declared type the inferred one
    contradicts, and an op's own inference failing are :class:`Fail`. Shape disagreements and
    failures inside function bodies are not errors: ONNX Runtime runs such models, so ort
    retries inference leniently and keeps what it finds.
    Large initializers are given to inference by type only, so big models infer fast.

    ONNX cannot infer through ops it does not know: where ``schemas`` declares such an op with
    a type-inference function, its outputs are typed from that and ONNX's inference runs again
    from there, until nothing new is learnt.
    """
    clear_negative_dims(model.graph)
    light = _typed_skeleton(model)
    inferred = _infer(light)
    learnt = inferred is not light
    declared = schemas is not None and any(
        schemas.declares("" if n.domain == "ai.onnx" else n.domain, n.op_type)
        for n in model.graph.node)
    for _ in range(_DECLARED_ROUNDS if declared else 0):
        if not _declared_inference(inferred, schemas):
            break
        learnt = True
        inferred = _infer(inferred)
    if not learnt:
        return model
    graph = model.graph
    del graph.value_info[:]
    graph.value_info.extend(inferred.graph.value_info)
    declared = {d.dim_param for vi in (*graph.input, *graph.output)
                for d in vi.type.tensor_type.shape.dim if d.dim_param}
    del graph.output[:]
    graph.output.extend(inferred.graph.output)
    _forget_invented_dims(graph.output, declared)
    del graph.node[:]
    graph.node.extend(inferred.graph.node)
    return model


def _forget_invented_dims(values: Any, declared: set[str]) -> None:
    """Clear the ``unk__N`` dim names ONNX's inference invents for unknown output dims (ONNX
    Runtime reports such a dim as None); names the model itself declares stay."""
    for vi in values:
        if vi.type.WhichOneof("value") != "tensor_type":
            continue
        for dim in vi.type.tensor_type.shape.dim:
            if dim.dim_param.startswith("unk__") and dim.dim_param not in declared:
                dim.ClearField("dim_param")


def clear_negative_dims(graph: onnx.GraphProto) -> int:
    """Make every negative ``dim_value`` of the graph's inputs, outputs and value_info (and
    of its subgraphs') an unknown dim; return how many were cleared."""
    cleared = 0
    for vi in (*graph.input, *graph.output, *graph.value_info):
        cleared += _clear_in_type(vi.type)
    for node in graph.node:
        for attr in node.attribute:
            for sub in (*([attr.g] if attr.HasField("g") else ()), *attr.graphs):
                cleared += clear_negative_dims(sub)
    return cleared


def _clear_in_type(tp: onnx.TypeProto) -> int:
    cleared = 0
    for tensor in tensor_types_in(tp):
        for dim in tensor.shape.dim:
            if dim.HasField("dim_value") and dim.dim_value < 0:
                dim.ClearField("dim_value")
                cleared += 1
    return cleared


def tensor_types_in(tp: onnx.TypeProto) -> Iterator[Any]:
    """The tensor (and sparse tensor) types a type holds: itself, or those of its sequence,
    optional or map value."""
    kind = tp.WhichOneof("value")
    if kind in ("tensor_type", "sparse_tensor_type"):
        yield getattr(tp, kind)
    elif kind == "sequence_type":
        yield from tensor_types_in(tp.sequence_type.elem_type)
    elif kind == "optional_type":
        yield from tensor_types_in(tp.optional_type.elem_type)
    elif kind == "map_type":
        yield from tensor_types_in(tp.map_type.value_type)


#: At most this many rounds of declared inference followed by ONNX's.
_DECLARED_ROUNDS = 8


def _declared_inference(model: ModelProto, schemas: SchemaTable) -> int:
    """Type the untyped outputs of main-graph nodes whose op ``schemas`` declares with a
    type-inference function; return how many values got a type."""
    graph = model.graph
    opsets = {(o.domain if o.domain != "ai.onnx" else ""): o.version for o in model.opset_import}
    known: dict[str, onnx.TypeProto] = {}
    for tensor in graph.initializer:
        known[tensor.name] = onnx.helper.make_tensor_type_proto(tensor.data_type, list(tensor.dims))
    for vi in list(graph.input) + list(graph.value_info) + list(graph.output):
        if vi.type.WhichOneof("value") is not None:
            known[vi.name] = vi.type
    untyped_outputs = {vi.name: vi for vi in graph.output if vi.type.WhichOneof("value") is None}
    constants = _ConstantValues(graph)
    added = 0
    for node in graph.node:
        domain = "" if node.domain == "ai.onnx" else node.domain
        opset = opsets.get(domain)
        if opset is None or all(not o or o in known for o in node.output):
            continue
        check_declared_node(node, opsets, schemas, known)
        declared = schemas.lookup(domain, node.op_type, opset)
        if declared is None or declared.infer is None:
            continue
        attrs = attribute_defaults(node.op_type, domain, opset, schemas)
        attrs.update((a.name, attribute_value(a)) for a in node.attribute)
        input_types = [known.get(n) if n else None for n in node.input]
        try:
            if declared.uses_values:
                types = declared.infer(input_types, attrs,
                                       [constants.get(n) if n else None for n in node.input])
            else:
                types = declared.infer(input_types, attrs)
        except Exception:  # noqa: BLE001 - inference is a help; the kernel checks at run time
            continue
        for name, tp in zip(node.output, types):
            if name and tp is not None and name not in known:
                known[name] = tp
                if name in untyped_outputs:
                    untyped_outputs[name].type.CopyFrom(tp)
                else:
                    graph.value_info.append(onnx.helper.make_value_info(name, tp))
                added += 1
    return added


class _ConstantValues:
    """The values of a graph's small constants (initializers of at most
    :data:`_INFERENCE_DATA_LIMIT` elements, Constant node outputs), decoded on first use."""

    def __init__(self, graph: onnx.GraphProto) -> None:
        self._initializers = {t.name: t for t in graph.initializer}
        self._constants = {n.output[0]: n for n in graph.node
                           if n.op_type == "Constant" and n.domain in ("", "ai.onnx")
                           and len(n.output) == 1}
        self._decoded: dict[str, Any] = {}

    def get(self, name: str) -> Any:
        if name in self._decoded:
            return self._decoded[name]
        value = None
        try:
            if name in self._initializers:
                tensor = self._initializers[name]
                size = 1
                for d in tensor.dims:
                    size *= d
                if size <= _INFERENCE_DATA_LIMIT and \
                        tensor.data_location != onnx.TensorProto.EXTERNAL:
                    value = onnx.numpy_helper.to_array(tensor)
            elif name in self._constants:
                value = constant_value(self._constants[name])
        except Exception:  # noqa: BLE001 - inference is a help; a bad constant fails later
            value = None
        self._decoded[name] = value
        return value


def _typed_skeleton(model: ModelProto) -> ModelProto:
    """A copy of ``model`` whose large initializers are typed graph inputs instead."""
    light = ModelProto()
    light.ir_version = model.ir_version
    light.opset_import.extend(model.opset_import)
    light.functions.extend(model.functions)
    source, graph = model.graph, light.graph
    graph.name = source.name
    graph.node.extend(source.node)
    graph.input.extend(source.input)
    graph.output.extend(source.output)
    graph.value_info.extend(source.value_info)
    inputs = {i.name for i in source.input}
    for sparse in source.sparse_initializer:  # dense to inference, as ONNX Runtime makes it
        if sparse.values.name not in inputs:
            graph.input.append(onnx.helper.make_tensor_value_info(
                sparse.values.name, sparse.values.data_type, list(sparse.dims)))
    for tensor in source.initializer:
        elements = 1
        for d in tensor.dims:
            elements *= d
        if elements <= _INFERENCE_DATA_LIMIT or tensor.data_type == onnx.TensorProto.STRING:
            graph.initializer.append(tensor)
        elif tensor.name not in inputs:
            graph.input.append(onnx.helper.make_tensor_value_info(
                tensor.name, tensor.data_type, list(tensor.dims)))
    if light.ir_version < 4:
        light.ir_version = 4  # initializers need not be inputs any more
    return light


def _infer(model: ModelProto) -> ModelProto:
    """Inferred copy of ``model``, or ``model`` itself when inference fails leniently."""
    try:
        return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except onnx.shape_inference.InferenceError as exc:
        refusal = _refusal(str(exc), frozenset(f.name for f in model.functions))
        if refusal is not None:
            raise refusal from None
    except Exception:  # noqa: BLE001 - inference of a legal model may still fail; retry leniently
        pass
    try:
        return onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False)
    except Exception:  # noqa: BLE001 - run without inferred types rather than refuse the model
        return model


def _refusal(text: str, local_functions: frozenset[str] = frozenset()) -> OrtError | None:
    """The error ONNX Runtime raises for the first inference error in ``text`` (onnx's strict
    inference report) that it does not tolerate; None when it tolerates them all.

    ONNX Runtime refuses a type its schema does not allow (InvalidGraph), a type parameter bound
    to two types, a declared type that contradicts the inferred one, and an op's own inference
    failing (Fail). It tolerates declared shapes that contradict inferred ones, Constant nodes
    (it turns them into initializers) and failures inside the bodies of ONNX's function ops
    (onnx expands them to infer them; ONNX Runtime runs the node's kernel); the bodies of the
    model's own functions (``local_functions``) it expands, so their errors count."""
    for line in text.splitlines():
        entries = list(_ERROR_ENTRY.finditer(line))
        if not entries:
            continue
        op_type, node_name = entries[0].group(1), entries[0].group(2) or ""
        if op_type == "Constant":
            continue  # ONNX Runtime makes Constants initializers: it never infers them
        if len(entries) > 1 and op_type not in _CONTROL_FLOW_OPS | local_functions:
            continue  # inside the body of a function ONNX Runtime does not expand
        message = line[entries[-1].end():].strip()
        if any(marker in message for marker in _LENIENT_INFERENCE_ERRORS):
            continue
        where = f"Node ({node_name}) Op ({op_type})"
        if "has unsupported type" in message:
            return InvalidGraph(f"This is an invalid model. Type Error: {where}: {message}")
        if "has inconsistent type" in message or "elem type differs" in message or \
                "Mismatched tensor element type" in message:
            return Fail(f"Type Error: {where}: {message}")
        return Fail(f"{where} {message}")
    return None
