"""Mutation categories: functions that turn a valid corpus model into a malformed one.

The attribute categories live in :mod:`mutate_attributes`, the model walking in :mod:`walk`.

Each category is a function ``(model, rng) -> (mutant, note) | None``: ``model`` is a fresh
copy of a seed's ``ModelProto`` that the function may change, ``rng`` a ``random.Random``,
``mutant`` the changed ``ModelProto`` or serialized bytes, ``note`` one line saying what was
changed, and None means the category does not apply to this model (or to this draw).

:func:`mutants` draws them: mutant ``index`` of a category takes seed model
``index % len(corpus)`` and an ``rng`` seeded with ``"<seed>/<category>/<model>/<index>"``,
so a mutant id ``category/model/index`` means the same model for a given ``seed`` whatever
``per_category`` or the other categories are. The fixed, hand-written cases are in
:mod:`named` (category ``named``); the unmutated seeds are category ``corpus``.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable, Iterable

import onnx
from onnx import TensorProto

from . import corpus
from .mutate_attributes import attr_name, attr_type, attr_value
from .walk import (all_nodes, copy_message, describe, graphs, node_lists,
                   replace_nodes, subgraphs, tensors)

__all__ = ["Mutant", "MODEL_PATH", "FOLDER_TOKEN", "CATEGORIES", "mutants", "corpus_mutants",
           "seed_mutant"]

#: Where the model file sits inside a mutant's folder (its external data sits beside it).
MODEL_PATH = "model/model.onnx"
#: In a template mutant, external locations holding this get the mutant folder's absolute path.
FOLDER_TOKEN = "@MUTANT_FOLDER@"

Result = tuple[onnx.ModelProto | bytes, str] | None


@dataclasses.dataclass(frozen=True)
class Mutant:
    """One model to load: its bytes, the files and symbolic links of its folder, and why."""

    id: str
    note: str
    model: bytes
    #: Files to write, by path relative to the mutant's folder (the model's own are in model/).
    files: dict[str, bytes] = dataclasses.field(default_factory=dict)
    #: Symbolic links to make: path relative to the mutant's folder -> link target.
    links: dict[str, str] = dataclasses.field(default_factory=dict)
    #: Whether external locations hold :data:`FOLDER_TOKEN` for the folder's absolute path.
    template: bool = False

    @property
    def category(self) -> str:
        """The first part of the id."""
        return self.id.split("/", 1)[0]

# -- bytes ------------------------------------------------------------------------------------

def _payload_ranges(model: onnx.ModelProto, data: bytes) -> list[tuple[int, int]]:
    """Byte ranges of large raw_data payloads in ``data`` (flips there only change weights)."""
    ranges = []
    for tensor in tensors(model):
        raw = tensor.raw_data
        if len(raw) >= 256:
            start = data.find(raw)
            if start >= 0:
                ranges.append((start, start + len(raw)))
    return ranges


def byte_flip(model: onnx.ModelProto, rng: random.Random) -> Result:
    """XOR 1 to 8 bytes with random values, mostly outside large weight payloads."""
    data = bytearray(model.SerializeToString())
    payloads = _payload_ranges(model, bytes(data))
    count = rng.choice([1, 1, 2, 3, 4, 8])
    positions = []
    for _ in range(count):
        position = rng.randrange(len(data))
        for _ in range(50):
            if not any(a <= position < b for a, b in payloads) or rng.random() < 0.1:
                break
            position = rng.randrange(len(data))
        data[position] ^= rng.randrange(1, 256)
        positions.append(position)
    return bytes(data), f"flipped bytes at {sorted(positions)} of {len(data)}"


def truncate(model: onnx.ModelProto, rng: random.Random) -> Result:
    """Cut the serialized model short."""
    data = model.SerializeToString()
    keep = rng.randrange(len(data))
    return data[:keep], f"kept {keep} of {len(data)} bytes"


# -- nodes ------------------------------------------------------------------------------------

def delete_node(model: onnx.ModelProto, rng: random.Random) -> Result:
    """Remove one node (of any graph or function)."""
    nodes, index = rng.choice(all_nodes(model))
    note = f"deleted node {index} {describe(nodes[index])}"
    del nodes[index]
    return model, note


def duplicate_node(model: onnx.ModelProto, rng: random.Random) -> Result:
    """Insert a copy of a node after it: identical, renamed, or with fresh outputs (valid)."""
    nodes, index = rng.choice(all_nodes(model))
    original = nodes[index]
    clone = copy_message(original)
    how = rng.choice(["identical", "renamed", "fresh outputs"])
    if how == "renamed":
        clone.name = (original.name or "node") + "_dup"
    elif how == "fresh outputs":
        clone.name = (original.name or "node") + "_dup"
        for i, name in enumerate(clone.output):
            if name:
                clone.output[i] = f"{name}_dup"
    listed = list(nodes)
    listed.insert(index + 1, clone)
    replace_nodes(nodes, listed)
    return model, f"duplicated node {index} {describe(original)} ({how})"


def reorder_nodes(model: onnx.ModelProto, rng: random.Random) -> Result:
    """Put the nodes of one graph or function out of order."""
    candidates = [nodes for nodes in node_lists(model) if len(nodes) >= 2]
    if not candidates:
        return None
    nodes = rng.choice(candidates)
    listed = list(nodes)
    how = rng.choice(["reversed", "shuffled", "last first", "swapped neighbours"])
    if how == "reversed":
        listed.reverse()
    elif how == "shuffled":
        order = list(range(len(listed)))
        while order == sorted(order):
            rng.shuffle(order)
        listed = [listed[i] for i in order]
    elif how == "last first":
        listed.insert(0, listed.pop())
    else:
        i = rng.randrange(len(listed) - 1)
        listed[i], listed[i + 1] = listed[i + 1], listed[i]
    replace_nodes(nodes, listed)
    return model, f"{how} the {len(listed)} nodes"


# -- value names ------------------------------------------------------------------------------

def _rename_uses(graph: onnx.GraphProto, old: str, new: str) -> None:
    """Rename ``old`` to ``new`` everywhere in ``graph`` and the graphs nested in it."""
    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        if vi.name == old:
            vi.name = new
    for tensor in graph.initializer:
        if tensor.name == old:
            tensor.name = new
    for node in graph.node:
        for field in (node.input, node.output):
            for i, name in enumerate(field):
                if name == old:
                    field[i] = new
        for sub in subgraphs([node]):
            for inner in sub.node:
                for i, name in enumerate(inner.input):
                    if name == old:
                        inner.input[i] = new
            for vi in sub.output:
                if vi.name == old:
                    vi.name = new


def _definitions(graph: onnx.GraphProto) -> list[tuple[str, str]]:
    """(kind, name) of every value ``graph`` defines."""
    found = [("graph input", vi.name) for vi in graph.input]
    found += [("initializer", t.name) for t in graph.initializer]
    found += [("node output", name) for node in graph.node for name in node.output if name]
    return found


def rename_value(model: onnx.ModelProto, rng: random.Random) -> Result:
    """Rename where a value is defined: at one site (its users dangle), onto another value's
    name, or consistently everywhere (valid)."""
    graph = rng.choice(graphs(model))
    definitions = _definitions(graph)
    if not definitions:
        return None
    kind, old = rng.choice(definitions)
    how = rng.choice(["definition only", "onto another name", "everywhere"])
    new = f"{old}_renamed"
    if how == "everywhere":
        _rename_uses(graph, old, new)
        return model, f"renamed {kind} '{old}' everywhere"
    if how == "onto another name":
        others = sorted({name for _, name in definitions} - {old})
        if not others:
            return None
        new = rng.choice(others)
    if kind == "graph input":
        next(vi for vi in graph.input if vi.name == old).name = new
    elif kind == "initializer":
        next(t for t in graph.initializer if t.name == old).name = new
    else:
        node = next(n for n in graph.node if old in n.output)
        node.output[list(node.output).index(old)] = new
    return model, f"renamed {kind} '{old}' to '{new}' ({how})"


def dangling_value(model: onnx.ModelProto, rng: random.Random) -> Result:
    """Point one use of a value elsewhere: nowhere, to '', to a later node's output, or to a
    value that only exists inside a subgraph."""
    graph = rng.choice(graphs(model))
    uses = [(node, i) for node in graph.node for i, name in enumerate(node.input) if name]
    how = rng.choice(["undefined", "empty", "later output", "subgraph value", "graph output"])
    if how == "graph output":
        output = rng.choice(list(graph.output))
        old, output.name = output.name, "undefined_output"
        return model, f"graph output '{old}' renamed to an undefined value"
    if not uses:
        return None
    node, slot = rng.choice(uses)
    old = node.input[slot]
    if how == "undefined":
        new = "undefined_value"
    elif how == "empty":
        new = ""
    elif how == "later output":
        position = list(graph.node).index(node)
        later = [name for n in graph.node[position:] for name in n.output if name]
        if not later:
            return None
        new = rng.choice(later)
    else:
        inner = [name for sub in subgraphs(graph.node) for n in sub.node for name in n.output if name]
        if not inner:
            return None
        new = rng.choice(inner)
    node.input[slot] = new
    return model, f"input {slot} of {describe(node)}: '{old}' -> '{new}' ({how})"

# -- types and shapes of graph inputs ---------------------------------------------------------

_ELEM_TYPES = [TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.BFLOAT16,
               TensorProto.INT8, TensorProto.INT32, TensorProto.INT64, TensorProto.UINT8,
               TensorProto.BOOL, TensorProto.STRING, TensorProto.COMPLEX64,
               TensorProto.FLOAT8E4M3FN, TensorProto.INT4, TensorProto.UNDEFINED, 999]
_BAD_DIMS = [0, 1, 3, 7, -1, -5, 2 ** 31, 2 ** 40]


def _type_name(elem_type: int) -> str:
    return TensorProto.DataType.Name(elem_type) if elem_type in TensorProto.DataType.values() else str(elem_type)


def _typed_values(model: onnx.ModelProto, outputs_too: bool) -> list[onnx.ValueInfoProto]:
    graph = model.graph
    initialized = {t.name for t in graph.initializer}
    found = [vi for vi in graph.input if vi.name not in initialized]
    if outputs_too:
        found += list(graph.output)
    return [vi for vi in found if vi.type.HasField("tensor_type")]


def input_dtype(model: onnx.ModelProto, rng: random.Random) -> Result:
    """Declare another element type for a graph input (sometimes an output), or a sequence."""
    values = _typed_values(model, outputs_too=rng.random() < 0.25)
    if not values:
        return None
    value = rng.choice(values)
    tensor_type = value.type.tensor_type
    old = _type_name(tensor_type.elem_type)
    if rng.random() < 0.1:
        inner = copy_message(value.type)
        value.type.sequence_type.elem_type.CopyFrom(inner)
        return model, f"'{value.name}': {old} tensor -> sequence of it"
    tensor_type.elem_type = rng.choice([t for t in _ELEM_TYPES if t != tensor_type.elem_type])
    return model, f"'{value.name}': {old} -> {_type_name(tensor_type.elem_type)}"


def input_dims(model: onnx.ModelProto, rng: random.Random) -> Result:
    """Declare another shape for a graph input (sometimes an output)."""
    values = _typed_values(model, outputs_too=rng.random() < 0.25)
    if not values:
        return None
    value = rng.choice(values)
    tensor_type = value.type.tensor_type
    dims = tensor_type.shape.dim
    how = rng.choice(["value", "value", "symbolic", "blank", "removed", "added", "no shape", "scalar"])
    if how in ("value", "symbolic", "blank", "removed") and not len(dims):
        how = "added"
    if how == "no shape":
        tensor_type.ClearField("shape")
    elif how == "scalar":
        del dims[:]
        tensor_type.shape.SetInParent()
    elif how == "added":
        dims.add().dim_value = rng.choice([1, 2, 3])
    else:
        i = rng.randrange(len(dims))
        if how == "value":
            dims[i].dim_value = rng.choice(_BAD_DIMS)
        elif how == "symbolic":
            dims[i].dim_param = "fuzz_dim"
        elif how == "blank":
            dims[i].Clear()
        else:
            del dims[i]
    shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]
    return model, f"'{value.name}' shape ({how}) -> {shape if tensor_type.HasField('shape') else 'none'}"


# -- initializers and other tensors -----------------------------------------------------------

def init_dtype(model: onnx.ModelProto, rng: random.Random) -> Result:
    """Change an initializer's (or Constant tensor's) data_type, its data left as it was."""
    found = tensors(model)
    if not found:
        return None
    tensor = rng.choice(found)
    old = _type_name(tensor.data_type)
    tensor.data_type = rng.choice([t for t in _ELEM_TYPES if t != tensor.data_type])
    return model, f"tensor '{tensor.name}': {old} -> {_type_name(tensor.data_type)}"


def init_dims(model: onnx.ModelProto, rng: random.Random) -> Result:
    """Change an initializer's (or Constant tensor's) dims, its data left as it was."""
    found = tensors(model)
    if not found:
        return None
    tensor = rng.choice(found)
    old = list(tensor.dims)
    how = rng.choice(["value", "value", "added", "removed", "reversed", "scalar"])
    dims = list(old)
    if how in ("value", "removed", "reversed") and not dims:
        how = "added"
    if how == "value":
        dims[rng.randrange(len(dims))] = rng.choice(_BAD_DIMS)
    elif how == "added":
        dims.insert(rng.randrange(len(dims) + 1), rng.choice([1, 2, 3]))
    elif how == "removed":
        del dims[rng.randrange(len(dims))]
    elif how == "reversed":
        dims.reverse()
    else:
        dims = []
    del tensor.dims[:]
    tensor.dims.extend(dims)
    return model, f"tensor '{tensor.name}' dims ({how}) {old} -> {dims}"


_TYPED_FIELDS = ["float_data", "int32_data", "int64_data", "double_data", "uint64_data", "string_data"]


def data_size(model: onnx.ModelProto, rng: random.Random) -> Result:
    """Make a tensor's data disagree with its dims: raw bytes cut or extended, typed values
    dropped or added, both raw and typed data, or an external length/offset moved."""
    found = tensors(model)
    if not found:
        return None
    tensor = rng.choice(found)
    if tensor.data_location == TensorProto.EXTERNAL:
        entries = {e.key: e for e in tensor.external_data}
        key = rng.choice([k for k in ("length", "offset") if k in entries])
        old = int(entries[key].value)
        entries[key].value = str(max(0, old + rng.choice([-4, 4, 1, 1 << 20])))
        return model, f"tensor '{tensor.name}' external {key} {old} -> {entries[key].value}"
    typed = [f for f in _TYPED_FIELDS if len(getattr(tensor, f))]
    if tensor.HasField("raw_data"):
        raw = tensor.raw_data
        how = rng.choice(["cut", "extended", "emptied", "typed added"])
        if how == "cut" and raw:
            tensor.raw_data = raw[:rng.randrange(len(raw))]
        elif how == "typed added":
            tensor.float_data.extend([1.0, 2.0])
        elif how == "emptied":
            tensor.raw_data = b""
        else:
            tensor.raw_data = raw + bytes(rng.choice([1, 2, 4, 8, 64]))
            how = "extended"
        return model, f"tensor '{tensor.name}' raw_data {how}: {len(raw)} -> {len(tensor.raw_data)} bytes"
    if typed:
        field = getattr(tensor, typed[0])
        how = rng.choice(["dropped", "added", "raw added"])
        before = len(field)
        if how == "dropped":
            del field[rng.randrange(len(field))]
        elif how == "added":
            field.append(field[0])
        else:
            tensor.raw_data = b"\x00" * 4
        return model, f"tensor '{tensor.name}' {typed[0]} {how} ({before} values)"
    if math.prod(tensor.dims) == 0:
        return None
    tensor.float_data.extend([1.0])
    return model, f"tensor '{tensor.name}' given float_data without raw_data"


#: Every random category, in report order (named and corpus come from elsewhere).
CATEGORIES: dict[str, Callable[[onnx.ModelProto, random.Random], Result]] = {
    "byte_flip": byte_flip,
    "truncate": truncate,
    "delete_node": delete_node,
    "duplicate_node": duplicate_node,
    "reorder_nodes": reorder_nodes,
    "rename_value": rename_value,
    "dangling_value": dangling_value,
    "attr_name": attr_name,
    "attr_type": attr_type,
    "attr_value": attr_value,
    "input_dtype": input_dtype,
    "input_dims": input_dims,
    "init_dtype": init_dtype,
    "init_dims": init_dims,
    "data_size": data_size,
}


def seed_mutant(seed: corpus.Seed, mutant_id: str, note: str, model: onnx.ModelProto | bytes,
                **kwargs) -> Mutant:
    """A :class:`Mutant` of ``seed``: ``model`` serialized, the seed's files in model/."""
    data = model if isinstance(model, bytes) else model.SerializeToString()
    files = {f"model/{name}": blob for name, blob in seed.files.items()}
    files.update(kwargs.pop("files", {}))
    return Mutant(mutant_id, note, data, files, **kwargs)


def corpus_mutants() -> list[Mutant]:
    """The unmutated seeds, as mutants ``corpus/<model>/0``."""
    return [seed_mutant(s, f"corpus/{s.name}/0", "unmutated seed", s.model) for s in corpus.seeds()]


def mutants(seed: int, per_category: int, categories: Iterable[str] | None = None) -> list[Mutant]:
    """Up to ``per_category`` mutants of each random category (all of them when None).

    Draws that do not apply or change nothing are skipped, trying at most ``4 * per_category``
    indices."""
    seeds = corpus.seeds()
    chosen = list(CATEGORIES) if categories is None else list(categories)
    originals = {s.name: s.model.SerializeToString() for s in seeds}
    found: list[Mutant] = []
    for category in chosen:
        mutate = CATEGORIES[category]
        made = 0
        for index in range(4 * per_category):
            if made >= per_category:
                break
            base = seeds[index % len(seeds)]
            rng = random.Random(f"{seed}/{category}/{base.name}/{index}")
            result = mutate(copy_message(base.model), rng)
            if result is None:
                continue
            model, note = result
            if model == base.model or model == originals[base.name]:
                continue  # the draw changed nothing
            found.append(seed_mutant(base, f"{category}/{base.name}/{index}", note, model))
            made += 1
    return found
