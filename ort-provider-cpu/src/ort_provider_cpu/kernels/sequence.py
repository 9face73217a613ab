"""CPU kernels: Sequence and Optional ops.

A sequence value is a Python ``list`` of tensors (what ONNX Runtime's Python API returns too);
kernels always build a new list, so a sequence a caller fed is never changed. An empty optional
is ``None``; a non-empty optional is its element itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ort.ep import KernelTable, NodeInfo

kernels = KernelTable()


def _position(node: NodeInfo, pos: Any, length: int, *, allow_end: bool) -> int:
    """A sequence position as a non-negative index; ``allow_end`` accepts ``length`` (insert)."""
    index = int(np.asarray(pos).reshape(-1)[0])
    upper = length if allow_end else length - 1
    if not -length <= index <= upper:
        raise IndexError(
            f"{node.describe()}: position {index} is out of bounds for a sequence of "
            f"{length} tensor(s); valid range is [{-length}, {upper}]"
        )
    return index + length if index < 0 else index


@kernels.register("SequenceEmpty", 11)
def sequence_empty(node: NodeInfo):
    """SequenceEmpty 11+: an empty sequence (its element type comes from ``dtype``)."""

    def compute():
        return ([],)

    return compute


@kernels.register("SequenceConstruct", 11)
def sequence_construct(node: NodeInfo):
    """SequenceConstruct 11+: a sequence of the inputs, which must share an element type."""

    def compute(*tensors):
        dtypes = {t.dtype for t in tensors}
        if len(dtypes) > 1:
            raise TypeError(f"{node.describe()}: tensors of a sequence must share one element "
                            f"type, got {sorted(map(str, dtypes))}")
        return (list(tensors),)

    return compute


@kernels.register("SequenceAt", 11)
def sequence_at(node: NodeInfo):
    """SequenceAt 11+: the tensor at ``position`` (negative counts from the back)."""

    def compute(sequence, position):
        return (sequence[_position(node, position, len(sequence), allow_end=False)],)

    return compute


@kernels.register("SequenceInsert", 11)
def sequence_insert(node: NodeInfo):
    """SequenceInsert 11+: a new sequence with ``tensor`` inserted at ``position`` (default:
    appended)."""

    def compute(sequence, tensor, position=None):
        if sequence and sequence[0].dtype != tensor.dtype:
            raise TypeError(f"{node.describe()}: cannot insert a {tensor.dtype} tensor into a "
                            f"sequence of {sequence[0].dtype}")
        result = list(sequence)
        if position is None:
            result.append(tensor)
        else:
            result.insert(_position(node, position, len(sequence), allow_end=True), tensor)
        return (result,)

    return compute


@kernels.register("SequenceErase", 11)
def sequence_erase(node: NodeInfo):
    """SequenceErase 11+: a new sequence without the tensor at ``position`` (default: last)."""

    def compute(sequence, position=None):
        result = list(sequence)
        if position is None:
            if not result:
                raise IndexError(f"{node.describe()}: cannot erase from an empty sequence")
            result.pop()
        else:
            result.pop(_position(node, position, len(sequence), allow_end=False))
        return (result,)

    return compute


@kernels.register("SequenceLength", 11)
def sequence_length(node: NodeInfo):
    """SequenceLength 11+: the number of tensors, as an int64 scalar."""

    def compute(sequence):
        return (np.array(len(sequence), dtype=np.int64),)

    return compute


@kernels.register("SplitToSequence", 11)
def split_to_sequence(node: NodeInfo):
    """SplitToSequence 11+: split along ``axis`` into a sequence: by the sizes in ``split``
    (1-D), into chunks of ``split`` (scalar; the last may be smaller), or, without ``split``,
    into pieces of size 1 that lose the axis unless ``keepdims``."""
    axis_attr = int(node.attrs.get("axis", 0))
    keepdims = bool(node.attrs.get("keepdims", 1))

    def compute(x, split=None):
        rank = x.ndim
        if not -rank <= axis_attr < rank:
            raise ValueError(f"{node.describe()}: axis {axis_attr} is out of range for rank {rank}")
        axis = axis_attr % rank
        length = x.shape[axis]
        if split is None:
            pieces = np.split(x, length, axis=axis) if length else []
            if not keepdims:
                pieces = [np.squeeze(p, axis=axis) for p in pieces]
            return (pieces,)
        split = np.asarray(split)
        if split.ndim == 0:
            size = int(split)
            if size <= 0:
                raise ValueError(f"{node.describe()}: split size must be positive, got {size}")
            bounds = list(range(size, length, size))
        else:
            sizes = [int(s) for s in split]
            if any(s < 0 for s in sizes) or sum(sizes) != length:
                raise ValueError(f"{node.describe()}: split sizes {sizes} must be non-negative "
                                 f"and add up to the axis length {length}")
            bounds = list(np.cumsum(sizes)[:-1])
        return (list(np.split(x, bounds, axis=axis)),)

    return compute


@kernels.register("ConcatFromSequence", 11)
def concat_from_sequence(node: NodeInfo):
    """ConcatFromSequence 11+: concatenate the tensors along ``axis``, or stack them along a
    new axis with ``new_axis=1``."""
    axis = int(node.attrs["axis"])
    new_axis = bool(node.attrs.get("new_axis", 0))

    def compute(sequence):
        if not sequence:
            raise ValueError(f"{node.describe()}: cannot concatenate an empty sequence")
        rank = sequence[0].ndim + (1 if new_axis else 0)
        if not -rank <= axis < rank:
            raise ValueError(f"{node.describe()}: axis {axis} is out of range for rank {rank}")
        if new_axis:
            return (np.stack(sequence, axis=axis),)
        return (np.concatenate(sequence, axis=axis),)

    return compute


@kernels.register("Optional", 15)
def optional(node: NodeInfo):
    """Optional 15+: an optional holding the input, or an empty optional without one."""

    def compute(value=None):
        return (value,)

    return compute


@kernels.register("OptionalHasElement", 15)
def optional_has_element(node: NodeInfo):
    """OptionalHasElement 15+: whether the optional holds a value (18+: an omitted input is
    an empty optional, and a plain tensor or sequence has an element)."""

    def compute(value=None):
        return (np.array(value is not None),)

    return compute


@kernels.register("OptionalGetElement", 15)
def optional_get_element(node: NodeInfo):
    """OptionalGetElement 15+: the optional's element (an error if it is empty); 18+ also
    passes a plain tensor or sequence through."""

    def compute(value=None):
        if value is None:
            raise ValueError(f"{node.describe()}: the optional input is empty")
        return (value,)

    return compute
