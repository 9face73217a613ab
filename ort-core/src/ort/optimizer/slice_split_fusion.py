"""Level-2 (``ORT_ENABLE_EXTENDED``) fusion of the Slices that cut one value into pieces.

Exporters write ``x[:, :65]`` and ``x[:, 65:]`` as two Slices of one value (the real and
imaginary halves of an STFT in Silero VAD, the gates of an LSTM); onnxruntime's
``GatherSliceToSplitFusion`` makes them one Split, so

* ``SliceToSplitFusion``: two or more Slices that are all the readers of a value, each with
  constant bounds on one and the same axis (step 1), whose ranges tile that axis (of a
  known length) without gap or overlap, become one ``Split`` whose outputs are the Slices'
  outputs.
"""

from __future__ import annotations

import numpy as np
from onnx import ModelProto

from .context import OptimizerContext
from .patterns import GraphView, Rewriter, is_default_domain

__all__ = ["fuse_slices_to_split"]


def _slice_range(view: GraphView, index: int,
                 shape: tuple) -> tuple[int, int, int] | None:
    """(axis, start, stop) of a one-axis, step-1 Slice with constant bounds on an axis of
    known length (bounds clamped as Slice clamps them), or None."""
    node = view.nodes[index]
    if not is_default_domain(node) or len(node.input) < 3 or len(node.output) != 1:
        return None
    starts, ends = view.const(node.input[1]), view.const(node.input[2])
    axes = view.const(node.input[3]) if len(node.input) > 3 and node.input[3] else np.array([0])
    steps = view.const(node.input[4]) if len(node.input) > 4 and node.input[4] else np.array([1])
    if any(v is None or v.size != 1 for v in (starts, ends, axes, steps)):
        return None
    axis = int(axes.reshape(-1)[0])
    axis = axis + len(shape) if axis < 0 else axis
    if not 0 <= axis < len(shape) or int(steps.reshape(-1)[0]) != 1:
        return None
    length = shape[axis]
    if not isinstance(length, int):
        return None
    bounds = []
    for value in (int(starts.reshape(-1)[0]), int(ends.reshape(-1)[0])):
        if value < 0:
            value += length
        bounds.append(min(max(value, 0), length))
    return axis, bounds[0], bounds[1]


def _match_value(view: GraphView, rewriter: Rewriter, value: str) -> None:
    readers = view.consumers.get(value, [])
    if len(readers) < 2 or rewriter.claimed(readers):
        return
    if any(view.op_types[i] != "Slice" or view.node_inputs[i][0] != value for i in readers):
        return
    shape = view.shape(value)
    if shape is None:
        return
    pieces = []
    for index in readers:
        found = _slice_range(view, index, shape)
        if found is None:
            return
        axis, start, stop = found
        pieces.append((start, stop, axis, index))
    axes = {axis for _, _, axis, _ in pieces}
    if len(axes) != 1:
        return
    axis = axes.pop()
    pieces.sort()
    position = 0
    for start, stop, _, _ in pieces:
        if start != position or stop <= start:
            return
        position = stop
    if position != shape[axis]:
        return
    sizes = [stop - start for start, stop, _, _ in pieces]
    outputs = [view.nodes[index].output[0] for *_, index in pieces]
    if (view.opset() or 0) >= 13:
        split = rewriter.add_initializer(np.array(sizes, np.int64), f"{value}_split")
        node = rewriter.make_node("Split", [value, split], outputs, "Split_fused", axis=axis)
    else:
        node = rewriter.make_node("Split", [value], outputs, "Split_fused", axis=axis,
                                  split=sizes)
    # right after the value: a reader of the first piece may come before the last Slice
    rewriter.replace([index for *_, index in pieces], [])
    rewriter.insert_after(value, [node])


def fuse_slices_to_split(model: ModelProto, context: OptimizerContext) -> bool:
    """Slices tiling one axis of a value they alone read -> one Split."""
    view = GraphView.of(model, context)
    if not view.has_op("Slice") or (view.opset() or 0) < 10 or not view.can_run("", "Split"):
        return False  # Slice-1 takes its bounds as attributes
    rewriter = Rewriter(view)
    seen = set()
    for index in view.indices_of(["Slice"], ("", "ai.onnx")):
        value = view.node_inputs[index][0]
        if value and value not in seen:
            seen.add(value)
            _match_value(view, rewriter, value)
    return rewriter.commit()
