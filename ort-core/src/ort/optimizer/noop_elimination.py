"""Level-1 (``ORT_ENABLE_BASIC``) removal of Casts and Slices that change nothing.

Exporters write casts to the type a value already has (torch: ``Cast(to=INT64)`` of a
``Gather`` of a ``Shape``, ``Cast(to=FLOAT)`` of a Softmax, ``Cast(to=BOOL)`` of a
comparison) and slices that keep everything (``x[:, a:b]`` is ``x[0:INT64_MAX][:, a:b]`` in
torch's export, Silero VAD's STFT); onnxruntime's ``CastElimination`` and
``SliceElimination`` remove them, so

* ``CastElimination``: a ``Cast`` whose input is known to have the element type ``to``
  becomes an ``Identity``;
* ``SliceElimination``: a ``Slice`` with constant bounds that start at 0 and end at or past
  the end (INT64_MAX, or the axis' known length) of every axis it names, with steps of 1,
  becomes an ``Identity``.

``IdentityElimination`` then removes the Identity (or keeps it, where the value is a graph
output).
"""

from __future__ import annotations

import numpy as np
from onnx import ModelProto, NodeProto

from .context import OptimizerContext
from .patterns import GraphView, Rewriter, attr, fuse_node_pattern

__all__ = ["eliminate_noop_casts", "eliminate_noop_slices"]


def _match_cast(view: GraphView, rewriter: Rewriter, index: int, node: NodeProto) -> None:
    if len(node.input) != 1 or len(node.output) != 1 or not node.input[0]:
        return
    to = attr(node, "to", 0)
    if not isinstance(to, int):  # Cast-1 names the type in a string: left as it is
        return
    if not to or view.elem_type(node.input[0]) != to:
        return
    rewriter.replace([index], [rewriter.make_node("Identity", [node.input[0]], [node.output[0]],
                                                  f"{node.name or 'Cast'}_noop")])


def eliminate_noop_casts(model: ModelProto, context: OptimizerContext) -> bool:
    """Cast(x, to=T) of an ``x`` of element type T -> Identity(x)."""
    view = GraphView.of(model, context)
    if not view.has_op("Cast") or not view.can_run("", "Identity"):
        return False
    return fuse_node_pattern(model, context, ["Cast"], _match_cast)


def _keeps_everything(view: GraphView, node: NodeProto) -> bool:
    """Whether a Slice (10+) with constant bounds takes all of its input."""
    if len(node.input) < 3 or len(node.output) != 1 or not node.input[0]:
        return False
    starts, ends = view.const(node.input[1]), view.const(node.input[2])
    if starts is None or ends is None or starts.shape != ends.shape or starts.ndim != 1:
        return False
    shape = view.shape(node.input[0])
    if len(node.input) > 3 and node.input[3]:
        axes = view.const(node.input[3])
        if axes is None or shape is None:
            return False
        axes = [int(a) + len(shape) if a < 0 else int(a) for a in axes.reshape(-1)]
    else:
        axes = list(range(len(starts)))
    if len(node.input) > 4 and node.input[4]:
        steps = view.const(node.input[4])
        if steps is None or not np.all(steps == 1):
            return False
    for axis, start, end in zip(axes, starts.tolist(), ends.tolist()):
        if start != 0:
            return False
        length = shape[axis] if shape is not None and 0 <= axis < len(shape) else None
        if end < np.iinfo(np.int64).max // 2 and not (isinstance(length, int) and end >= length):
            return False
    return True


def _match_slice(view: GraphView, rewriter: Rewriter, index: int, node: NodeProto) -> None:
    if _keeps_everything(view, node):
        rewriter.replace([index], [rewriter.make_node(
            "Identity", [node.input[0]], [node.output[0]], f"{node.name or 'Slice'}_noop")])


def eliminate_noop_slices(model: ModelProto, context: OptimizerContext) -> bool:
    """Slice(x) taking all of x -> Identity(x)."""
    view = GraphView.of(model, context)
    if not view.has_op("Slice") or (view.opset() or 0) < 10 or not view.can_run("", "Identity"):
        return False  # Slice-1 takes its bounds as attributes
    return fuse_node_pattern(model, context, ["Slice"], _match_slice)
