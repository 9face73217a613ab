"""The fixed, hand-written hostile models of issue 15 (category ``named``, ids ``named/<case>``).

Each case starts from a corpus seed and changes one thing: an ``ort:`` external location (a
model naming another session's weight stub), external data reaching outside the model's
folder (absolute path, ``..``, a symbolic link) or past the end of its file, mixed types, an
unknown opset or attribute, an untyped input, a node twice, malformed initializers, and ops
asked for outputs far larger than memory. Files a case needs outside the model's own folder
go in ``outside/`` of the mutant folder, so nothing is written beyond the harness's temporary
directory.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from . import corpus
from .mutate import FOLDER_TOKEN, Mutant

__all__ = ["CASES", "named_mutants"]

HUGE = 2 ** 20


def _external(tensor: TensorProto, **entries: str) -> None:
    """Set ``tensor``'s external data entries (replacing them), data_location EXTERNAL."""
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    del tensor.external_data[:]
    for key, value in entries.items():
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value


def _entry(tensor: TensorProto, key: str, value: str | None) -> None:
    """Set (or with None remove) one external data entry of ``tensor``."""
    kept = [(e.key, e.value) for e in tensor.external_data if e.key != key]
    if value is not None:
        kept.append((key, value))
    del tensor.external_data[:]
    for k, v in kept:
        entry = tensor.external_data.add()
        entry.key, entry.value = k, v


def _init(model: onnx.ModelProto, name: str) -> TensorProto:
    return next(t for t in model.graph.initializer if t.name == name)


# Every case: (seed name, function(model) -> (note, extra Mutant fields)).
Case = tuple[str, Callable[[onnx.ModelProto], tuple[str, dict]]]


def _stub(location: str) -> Case:
    def build(model):
        weight = _init(model, "W")
        _external(weight, location=location)
        return f"initializer W names external location '{location}'", {}
    return "large_initializer", build


def _stub_with_file(model):
    weight = _init(model, "W")
    data = weight.raw_data
    _external(weight, location="ort:detached/0", offset="0", length=str(len(data)))
    return "W at 'ort:detached/0', and a real file of that name beside the model", {
        "files": {"model/ort:detached/0": data}}


def _stub_in_constant(model):
    node = next(n for n in model.graph.node if n.op_type == "Constant" and n.attribute[0].name == "value")
    _external(node.attribute[0].t, location="ort:weights/0000000000000000/0")
    return "a Constant's value names 'ort:weights/0000000000000000/0'", {}


def _stub_in_constant_with_file(model):
    node = next(n for n in model.graph.node if n.op_type == "Constant" and n.attribute[0].name == "value")
    tensor = node.attribute[0].t
    data = tensor.raw_data
    _external(tensor, location="ort:weights/0000000000000000/0", offset="0", length=str(len(data)))
    return "a Constant's value names 'ort:weights/0000000000000000/0', a real file beside the model", {
        "files": {"model/ort:weights/0000000000000000/0": data}}


def _location(location: str, note: str, **extra) -> Case:
    def build(model):
        _entry(_init(model, "W"), "location", location)
        return note, dict(extra)
    return "external_data", build


def _offsets(name: str, key: str, value: str | None, note: str) -> Case:
    def build(model):
        _entry(_init(model, name), key, value)
        return note, {}
    return "external_data", build


def _weights_blob() -> bytes:
    return corpus.external_data().files["weights.bin"]


def _symlink_escape(model):
    return "weights.bin is a symbolic link to ../outside/weights.bin", {
        "files": {"model/weights.bin": None, "outside/weights.bin": _weights_blob()},
        "links": {"model/weights.bin": "../outside/weights.bin"}}


def _symlink_absolute_escape(model):
    return "weights.bin is a symbolic link to <folder>/outside/weights.bin (absolute)", {
        "files": {"model/weights.bin": None, "outside/weights.bin": _weights_blob()},
        "links": {"model/weights.bin": FOLDER_TOKEN + "/outside/weights.bin"}}


def _symlink_inside(model):
    _entry(_init(model, "W"), "location", "link.bin")
    _entry(_init(model, "B"), "location", "link.bin")
    return "W and B read link.bin, a symbolic link to weights.bin in the same folder", {
        "links": {"model/link.bin": "weights.bin"}}


def _add_float_int64(model):
    model.graph.initializer.append(numpy_helper.from_array(np.array([1, 2, 3], np.int64), "K"))
    model.graph.node[0].input[1] = "K"
    return "Add of float X and int64 K", {}


def _opset(domain: str, version: int, seed: str) -> Case:
    def build(model):
        for opset in model.opset_import:
            if opset.domain == domain:
                opset.version = version
        return f"opset {domain or 'ai.onnx'} {version}", {}
    return seed, build


def _ir_version(version: int) -> Case:
    def build(model):
        model.ir_version = version
        return f"ir_version {version}", {}
    return "elementwise", build


def _no_opset_import(model):
    del model.opset_import[:]
    return "no opset_import at all", {}


def _unknown_attribute(model):
    model.graph.node[0].attribute.append(helper.make_attribute("fuzz_unknown", 1))
    return "Add with an unknown attribute fuzz_unknown=1", {}


def _untyped_input(model):
    model.graph.input[0].ClearField("type")
    return "graph input X has no type", {}


def _same_node_twice(model):
    model.graph.node.append(model.graph.node[-1])
    return "the last node appears twice (same name, same outputs)", {}


def _initializer_dims(model):
    weight = _init(model, "W")
    weight.dims[1] = 4
    return "W declares dims [4, 4] and holds 12 values", {}


def _keepdims_2(model):
    node = next(n for n in model.graph.node if n.op_type == "ReduceSum")
    next(a for a in node.attribute if a.name == "keepdims").i = 2
    return "ReduceSum keepdims=2", {}


def _element_type_999_initializer(model):
    _init(model, "W").data_type = 999
    return "initializer W has element type 999", {}


def _element_type_999_input(model):
    model.graph.input[0].type.tensor_type.elem_type = 999
    return "graph input X has element type 999", {}


def _raw_data_extra(model):
    weight = _init(model, "W")
    weight.raw_data = weight.raw_data + b"\0\0\0\0"
    return "W's raw_data is 4 bytes longer than its dims", {}


def _float_data_short(model):
    weight = _init(model, "W")
    values = np.frombuffer(weight.raw_data, np.float32)[:-1]
    weight.ClearField("raw_data")
    weight.float_data.extend(values.tolist())
    return "W's float_data has 11 values for dims [4, 3]", {}


def _raw_and_float_data(model):
    _init(model, "W").float_data.extend([1.0] * 12)
    return "W has both raw_data and float_data", {}


def _huge_without_data(model):
    weight = _init(model, "W")
    weight.ClearField("raw_data")
    del weight.dims[:]
    weight.dims.extend([HUGE, HUGE])
    return f"W declares dims [{HUGE}, {HUGE}] and has no data", {}


def _negative_dim(model):
    weight = _init(model, "W")
    weight.dims[0] = -4
    return "W declares dims [-4, 3]", {}


def _huge_op(op: str) -> Callable[[onnx.ModelProto], tuple[str, dict]]:
    def build(model):
        graph = model.graph
        shape = np.array([HUGE, HUGE], np.int64)
        if op == "Expand":
            nodes = [helper.make_node("Expand", ["B", "huge"], ["Y"])]
        elif op == "ConstantOfShape":
            nodes = [helper.make_node("ConstantOfShape", ["huge"], ["Y"],
                                      value=numpy_helper.from_array(np.array([1.0], np.float32)))]
        elif op == "Tile":
            nodes = [helper.make_node("Tile", ["X", "huge"], ["Y"])]
        else:
            shape = np.array(2 ** 40, np.int64)
            nodes = [helper.make_node("Range", ["start", "huge", "delta"], ["Y"])]
        graph.initializer.append(numpy_helper.from_array(shape, "huge"))
        del graph.node[:]
        graph.node.extend(nodes)
        del graph.output[:]
        out_type = TensorProto.INT64 if op == "Range" else TensorProto.FLOAT
        graph.output.append(helper.make_tensor_value_info("Y", out_type, None))
        return f"{op} to {shape.tolist()}", {}
    return build


#: Every named case: name -> (seed, builder).
CASES: dict[str, Case] = {
    "ort_weights_stub": _stub("ort:weights/0123456789abcdef/0"),
    "ort_detached_stub": _stub("ort:detached/0"),
    "ort_bare_prefix": _stub("ort:"),
    "ort_stub_with_real_file": ("large_initializer", _stub_with_file),
    "ort_stub_in_constant": ("constants", _stub_in_constant),
    "ort_stub_in_constant_with_real_file": ("constants", _stub_in_constant_with_file),
    "external_absolute_inside": _location(
        FOLDER_TOKEN + "/model/weights.bin", "W's location is the absolute path of weights.bin"),
    "external_absolute_outside": _location(
        FOLDER_TOKEN + "/outside/weights.bin", "W's location is an absolute path outside the folder",
        files={"outside/weights.bin": _weights_blob()}),
    "external_absolute_system": _location("/etc/passwd", "W's location is /etc/passwd"),
    "external_dotdot": _location(
        "../outside/weights.bin", "W's location is ../outside/weights.bin",
        files={"outside/weights.bin": _weights_blob()}),
    "external_dotdot_inside": _location(
        "sub/../weights.bin", "W's location is sub/../weights.bin (stays inside)",
        files={"model/sub/.keep": b""}),
    "external_symlink_escape": ("external_data", _symlink_escape),
    "external_symlink_absolute_escape": ("external_data", _symlink_absolute_escape),
    "external_symlink_inside": ("external_data", _symlink_inside),
    "external_location_is_folder": _location(".", "W's location is '.', the model's folder"),
    "external_missing_file": _location("missing.bin", "W's location names no file"),
    "external_no_location": _offsets("W", "location", None, "W is EXTERNAL without a location"),
    "external_offset_past_end": _offsets("B", "offset", "4096", "B's offset is past the file end"),
    "external_length_past_end": _offsets("B", "length", "64", "B's offset + length is past the file end"),
    "external_negative_offset": _offsets("W", "offset", "-4", "W's offset is -4"),
    "external_text_offset": _offsets("W", "offset", "four", "W's offset is not a number"),
    "external_short_length": _offsets("W", "length", "40", "W's length is 40 bytes for 48 bytes of dims"),
    "add_float_int64": ("elementwise", _add_float_int64),
    "opset_99": _opset("", 99, "elementwise"),
    "ml_opset_99": _opset("ai.onnx.ml", 99, "ml_normalizer_scaler"),
    "ir_version_99": _ir_version(99),
    "ir_version_0": _ir_version(0),
    "no_opset_import": ("elementwise", _no_opset_import),
    "unknown_attribute": ("elementwise", _unknown_attribute),
    "input_without_type": ("elementwise", _untyped_input),
    "same_node_twice": ("elementwise", _same_node_twice),
    "initializer_dims_mismatch": ("matmul_gemm", _initializer_dims),
    "reducesum_keepdims_2": ("reductions", _keepdims_2),
    "element_type_999_initializer": ("matmul_gemm", _element_type_999_initializer),
    "element_type_999_input": ("elementwise", _element_type_999_input),
    "raw_data_size_mismatch": ("matmul_gemm", _raw_data_extra),
    "float_data_size_mismatch": ("matmul_gemm", _float_data_short),
    "raw_and_float_data": ("matmul_gemm", _raw_and_float_data),
    "huge_dims_without_data": ("matmul_gemm", _huge_without_data),
    "negative_initializer_dim": ("matmul_gemm", _negative_dim),
    "expand_huge": ("shape_generators", _huge_op("Expand")),
    "constant_of_shape_huge": ("shape_generators", _huge_op("ConstantOfShape")),
    "tile_huge": ("shape_generators", _huge_op("Tile")),
    "range_huge": ("shape_generators", _huge_op("Range")),
}


def named_mutants() -> list[Mutant]:
    """Every named case as a mutant ``named/<case>``."""
    seeds = {seed.name: seed for seed in corpus.seeds()}
    found = []
    for case, (seed_name, build) in CASES.items():
        seed = seeds[seed_name]
        model = onnx.ModelProto()
        model.CopyFrom(seed.model)
        note, extra = build(model)
        files = {f"model/{name}": blob for name, blob in seed.files.items()}
        files.update(extra.pop("files", {}))
        files = {path: blob for path, blob in files.items() if blob is not None}
        links = extra.pop("links", {})
        data = model.SerializeToString()
        template = FOLDER_TOKEN.encode() in data or any(FOLDER_TOKEN in t for t in links.values())
        found.append(Mutant(f"named/{case}", note, data, files, links, template))
    return found
