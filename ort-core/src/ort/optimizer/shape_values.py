"""Shape values as the optimizer reads them: a 1-D int64 shape computed from constants and
the dims of other values (``Concat`` of ``Unsqueeze(Gather(Shape(t), i))`` pieces, as torch
exports Reshape targets), element by element (:func:`shape_elements`), and whether such an
element is a given dim of a value (:func:`same_dim`)."""

from __future__ import annotations

from .patterns import GraphView, attr, is_default_domain

__all__ = ["Element", "shape_elements", "dim_reference", "same_dim"]

#: A reshape target element: an int, or ("dim", value, axis) for a dim read from a shape.
Element = int | tuple[str, str, int]


def shape_elements(view: GraphView, name: str, depth: int = 0) -> list[Element] | None:
    """The elements of a 1-D int64 shape value as constants and dim references."""
    value = view.const(name)
    if value is not None:
        return [int(v) for v in value.reshape(-1)] if value.ndim <= 1 else None
    found = view.producer_of(name)
    if found is None or depth > 8 or not is_default_domain(found[1]):
        return None
    node = found[1]
    if node.op_type == "Concat" and int(attr(node, "axis", 0)) in (0, -1):
        elements: list[Element] = []
        for part in node.input:
            sub = shape_elements(view, part, depth + 1)
            if sub is None:
                return None
            elements.extend(sub)
        return elements
    if node.op_type == "Unsqueeze":
        axes = attr(node, "axes")
        if axes is None and len(node.input) > 1:
            axes_value = view.const(node.input[1])
            axes = None if axes_value is None else axes_value.reshape(-1).tolist()
        scalar = dim_reference(view, node.input[0])
        return [scalar] if scalar is not None and list(axes or []) in ([0], [-1]) else None
    return None


def dim_reference(view: GraphView, name: str) -> Element | None:
    """``Gather(Shape(t), i)`` (scalar ``i``) as ("dim", t, i); a scalar constant as an int."""
    value = view.const(name)
    if value is not None:
        return int(value.reshape(-1)[0]) if value.size == 1 and value.ndim == 0 else None
    gather = view.producer_of(name, "Gather")
    if gather is None or int(attr(gather[1], "axis", 0)) != 0:
        return None
    index = view.const(gather[1].input[1])
    shape = view.producer_of(gather[1].input[0], "Shape")
    if index is None or index.ndim != 0 or shape is None or int(attr(shape[1], "start", 0)) != 0:
        return None
    source = shape[1].input[0]
    rank = view.rank(source)
    axis = int(index)
    if axis < 0:
        if rank is None:
            return None
        axis += rank
    return ("dim", source, axis)


def same_dim(view: GraphView, element: Element, data: str, axis: int) -> bool:
    """Whether ``element`` of a Reshape target copies dim ``axis`` of ``data``."""
    if element == 0:
        return True
    shape = view.shape(data)
    known = shape[axis] if shape is not None and axis < len(shape) else None
    if isinstance(element, int):
        return isinstance(known, int) and element == known
    _, source, source_axis = element
    if source == data and source_axis == axis:
        return True
    source_shape = view.shape(source)
    if source_shape is None or source_axis >= len(source_shape) or known is None:
        return False
    return source_shape[source_axis] == known
