"""Mutation categories over node attributes: names, types and values (see :mod:`mutate`)."""

from __future__ import annotations

import math
import random

import onnx
from onnx import AttributeProto, TensorProto

from .walk import all_nodes, copy_message, describe

__all__ = ["attr_name", "attr_type", "attr_value"]

Result = tuple[onnx.ModelProto | bytes, str] | None


def _schema_attributes(model: onnx.ModelProto, node: onnx.NodeProto) -> list[str]:
    opsets = {o.domain: o.version for o in model.opset_import}
    domain = "" if node.domain == "ai.onnx" else node.domain
    try:
        schema = onnx.defs.get_schema(node.op_type, opsets.get(domain, 1), domain)
    except Exception:  # noqa: BLE001 - a contrib or custom op has no onnx schema
        return []
    return sorted(schema.attributes)


def _attributed(model: onnx.ModelProto) -> list[tuple[onnx.NodeProto, int]]:
    return [(nodes[i], a) for nodes, i in all_nodes(model) for a in range(len(nodes[i].attribute))]


def attr_name(model: onnx.ModelProto, rng: random.Random) -> Result:
    """Change attribute names: a typo, another of the op's attributes, a deleted, an added
    unknown or a duplicated attribute."""
    how = rng.choice(["typo", "other schema name", "deleted", "unknown added", "duplicated"])
    if how == "unknown added":
        nodes, index = rng.choice(all_nodes(model))
        node = nodes[index]
        node.attribute.append(onnx.helper.make_attribute("fuzz_unknown", rng.choice([1, 0.5, "x"])))
        return model, f"added unknown attribute 'fuzz_unknown' to {describe(node)}"
    attributed = _attributed(model)
    if not attributed:
        return None
    node, a = rng.choice(attributed)
    attr = node.attribute[a]
    old = attr.name
    if how == "typo":
        attr.name = rng.choice([old.upper(), old + "s", old[:-1], "_" + old])
    elif how == "other schema name":
        others = [n for n in _schema_attributes(model, node) if n not in {x.name for x in node.attribute}]
        if not others:
            return None
        attr.name = rng.choice(others)
    elif how == "deleted":
        del node.attribute[a]
        return model, f"deleted attribute '{old}' of {describe(node)}"
    else:
        node.attribute.append(copy_message(attr))
        return model, f"duplicated attribute '{old}' of {describe(node)}"
    return model, f"renamed attribute '{old}' of {describe(node)} to '{attr.name}' ({how})"


_ATTR_FIELDS = {
    AttributeProto.FLOAT: "f", AttributeProto.INT: "i", AttributeProto.STRING: "s",
    AttributeProto.TENSOR: "t", AttributeProto.GRAPH: "g", AttributeProto.FLOATS: "floats",
    AttributeProto.INTS: "ints", AttributeProto.STRINGS: "strings", AttributeProto.GRAPHS: "graphs",
}


def _scalars_of(attr: AttributeProto) -> list:
    """The attribute's value as a flat list of numbers or bytes (for retyping)."""
    kind = attr.type
    if kind in (AttributeProto.INT, AttributeProto.FLOAT, AttributeProto.STRING):
        return [getattr(attr, _ATTR_FIELDS[kind])]
    if kind in (AttributeProto.INTS, AttributeProto.FLOATS, AttributeProto.STRINGS):
        return list(getattr(attr, _ATTR_FIELDS[kind]))
    if kind == AttributeProto.TENSOR:
        return [float(v) for v in onnx.numpy_helper.to_array(attr.t).reshape(-1)[:8]]
    return []


def attr_type(model: onnx.ModelProto, rng: random.Random) -> Result:
    """Give an attribute another type: its value converted, or only the ``type`` field changed
    (so type and stored value disagree)."""
    attributed = _attributed(model)
    if not attributed:
        return None
    node, a = rng.choice(attributed)
    attr = node.attribute[a]
    old_type = AttributeProto.AttributeType.Name(attr.type)
    targets = [t for t in (AttributeProto.INT, AttributeProto.FLOAT, AttributeProto.STRING,
                           AttributeProto.INTS, AttributeProto.FLOATS, AttributeProto.STRINGS,
                           AttributeProto.TENSOR, AttributeProto.GRAPH, AttributeProto.UNDEFINED)
               if t != attr.type]
    target = rng.choice(targets)
    new_name = AttributeProto.AttributeType.Name(target)
    if rng.random() < 0.3:
        attr.type = target
        return model, f"attribute '{attr.name}' of {describe(node)}: type field {old_type} -> {new_name}, value kept"
    values = _scalars_of(attr) or [1]
    numbers = [v if isinstance(v, (int, float)) else len(v) for v in values]
    new = AttributeProto()
    new.name = attr.name
    new.type = target
    if target == AttributeProto.INT:
        new.i = int(numbers[0]) if math.isfinite(numbers[0]) else 0
    elif target == AttributeProto.FLOAT:
        new.f = float(numbers[0])
    elif target == AttributeProto.STRING:
        new.s = str(values[0]).encode()
    elif target == AttributeProto.INTS:
        new.ints.extend(int(v) if math.isfinite(v) else 0 for v in numbers)
    elif target == AttributeProto.FLOATS:
        new.floats.extend(float(v) for v in numbers)
    elif target == AttributeProto.STRINGS:
        new.strings.extend(str(v).encode() for v in values)
    elif target == AttributeProto.TENSOR:
        new.t.CopyFrom(onnx.helper.make_tensor("t", TensorProto.FLOAT, [len(numbers)], [float(v) for v in numbers]))
    elif target == AttributeProto.GRAPH:
        new.g.CopyFrom(onnx.helper.make_graph([], "empty", [], []))
    attr.CopyFrom(new)
    return model, f"attribute '{attr.name}' of {describe(node)}: {old_type} -> {new_name}"


_BAD_INTS = [0, 1, -1, 2, 3, 7, 99, -(2 ** 31), 2 ** 31, 2 ** 62]
_BAD_FLOATS = [0.0, -1.0, float("nan"), float("inf"), 1e30, 1e-30]
_BAD_STRINGS = [b"", b"bogus", b"SUM", b"NONE", b"\xff\xfe"]


def _mutate_graph_attr(graph: onnx.GraphProto, rng: random.Random) -> str:
    how = rng.choice(["node removed", "output removed", "input added"])
    if how == "node removed" and len(graph.node):
        del graph.node[rng.randrange(len(graph.node))]
    elif how == "output removed" and len(graph.output):
        del graph.output[rng.randrange(len(graph.output))]
    else:
        graph.input.append(onnx.helper.make_tensor_value_info("extra_in", TensorProto.FLOAT, [1]))
        how = "input added"
    return how


def attr_value(model: onnx.ModelProto, rng: random.Random) -> Result:
    """Change an attribute's value: out-of-range numbers, NaN, unknown strings, lists one too
    long or short, a tensor of another shape or type, a body graph with a part missing."""
    attributed = _attributed(model)
    if not attributed:
        return None
    node, a = rng.choice(attributed)
    attr = node.attribute[a]
    kind = attr.type
    if kind == AttributeProto.INT:
        attr.i = rng.choice([v for v in _BAD_INTS if v != attr.i])
        what = f"i={attr.i}"
    elif kind == AttributeProto.FLOAT:
        attr.f = rng.choice(_BAD_FLOATS)
        what = f"f={attr.f}"
    elif kind == AttributeProto.STRING:
        attr.s = rng.choice([v for v in _BAD_STRINGS + [attr.s.lower()] if v != attr.s] or [b"x"])
        what = f"s={attr.s!r}"
    elif kind in (AttributeProto.INTS, AttributeProto.FLOATS, AttributeProto.STRINGS):
        field = getattr(attr, _ATTR_FIELDS[kind])
        pool = {AttributeProto.INTS: _BAD_INTS, AttributeProto.FLOATS: _BAD_FLOATS,
                AttributeProto.STRINGS: _BAD_STRINGS}[kind]
        how = rng.choice(["dropped", "appended", "changed", "emptied"])
        if how == "dropped" and len(field):
            del field[rng.randrange(len(field))]
        elif how == "changed" and len(field):
            field[rng.randrange(len(field))] = rng.choice(pool)
        elif how == "emptied":
            del field[:]
        else:
            field.append(rng.choice(pool))
            how = "appended"
        what = f"list {how}: {list(field)[:8]}"
    elif kind == AttributeProto.TENSOR:
        shape = rng.choice([[], [0], [3], [2, 2]])
        dtype = rng.choice([attr.t.data_type, TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL])
        count = math.prod(shape)
        values = [1] * count if dtype != TensorProto.FLOAT else [1.0] * count
        attr.t.CopyFrom(onnx.helper.make_tensor(attr.t.name, dtype, shape, values))
        what = f"tensor {TensorProto.DataType.Name(dtype)}{shape}"
    elif kind == AttributeProto.GRAPH:
        what = "graph " + _mutate_graph_attr(attr.g, rng)
    else:
        return None
    return model, f"attribute '{attr.name}' of {describe(node)}: {what}"
