"""The NCHWc blocked layout of onnxruntime's ``com.microsoft.nchwc`` ops: converting tensors
between NCHW and blocked form, decoding reordered convolution weights, and inferring the block
size a saved model was written with (see :mod:`.contrib_nchwc`).
"""

from __future__ import annotations

import platform
import weakref
from typing import Any

import numpy as np
from onnx import helper
from ort.ep import NodeInfo

NCHWC = "com.microsoft.nchwc"

#: Block sizes onnxruntime's MLAS uses (AVX-512: 16, AVX/AVX2: 8), largest first.
CANDIDATES = (16, 8)

_inferred: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def to_blocked(xp: Any, x: Any, block: int) -> Any:
    """NCHW ``x`` (N, C, H, W) as a blocked tensor (N, Cp, H, W), Cp = C rounded up to
    ``block`` (padded channels zero); memory order (N, Cp/B, H, W, B)."""
    n, c, h, w = x.shape
    padded = -(-c // block) * block
    if padded == c:  # no padding: one transposed copy
        view = x.reshape(n, c // block, block, h * w).transpose(0, 1, 3, 2)
        return xp.ascontiguousarray(view).reshape(n, c, h, w)
    y = xp.zeros((n, padded // block, h, w, block), dtype=x.dtype)
    full = c // block * block
    if full:
        y[:, :c // block] = x[:, :full].reshape(n, c // block, block, h, w).transpose(
            0, 1, 3, 4, 2)
    if c > full:
        y[:, -1, :, :, :c - full] = x[:, full:].transpose(0, 2, 3, 1)
    return y.reshape(n, padded, h, w)


def from_blocked(xp: Any, x: Any, block: int) -> Any:
    """A blocked tensor (N, Cp, H, W) back to NCHW with all Cp channels (padded ones kept)."""
    n, c, h, w = x.shape
    view = xp.ascontiguousarray(x).reshape(n, c // block, h, w, block)
    return xp.ascontiguousarray(view.transpose(0, 1, 4, 2, 3)).reshape(n, c, h, w)


def decode_weight(node: NodeInfo, w: Any, group: int, block: int) -> Any:
    """An NCHWc Conv's reordered weight back to OIHW (shape unchanged: padded channels
    kept). Group-1 weights reading fewer than ``block`` channels (an NCHW input) and
    depthwise weights (one input channel per group) are OIHWBo; the others OIHWBiBo per
    group."""
    xp = node.xp
    w = xp.asarray(w)
    if w.ndim != 4:
        raise ValueError(f"{node.describe()}: W must be 4-D, got shape {tuple(w.shape)}")
    o, i, kh, kw = w.shape
    if o % block or o % group:
        raise ValueError(f"{node.describe()}: W has {o} output channels; with group {group} "
                         f"and block size {block} that must be a multiple of both")
    if (group == 1 and i < block) or (i == 1 and group == o):
        blocks = w.reshape(o // block, i, kh, kw, block)
        return xp.ascontiguousarray(blocks.transpose(0, 4, 1, 2, 3)).reshape(o, i, kh, kw)
    per_group = o // group
    if i % block or per_group % block:
        raise ValueError(
            f"{node.describe()}: W {tuple(w.shape)} with group {group}: blocked weights need "
            f"input and per-group output channels that are multiples of {block}")
    blocks = w.reshape(group, per_group // block, i // block, kh, kw, block, block)
    return xp.ascontiguousarray(blocks.transpose(0, 1, 6, 2, 5, 3, 4)).reshape(o, i, kh, kw)


def machine_block_size() -> int:
    """The block size onnxruntime's MLAS picks on this CPU: the tie-breaker where a model's
    shapes fit several block sizes. x86-64: 16 with AVX-512F, else 8; ARM64 (MLAS's NEON
    NCHWc kernels): 16."""
    if platform.machine().lower() in ("arm64", "aarch64"):
        return 16
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:  # numpy < 2
        try:
            from numpy.core._multiarray_umath import \
                __cpu_features__ as features
        except ImportError:
            features = {}
    return 16 if features.get("AVX512F") else 8


def _attr(node: Any, name: str, default: Any) -> Any:
    """An attribute of an IR node (its ``AttributeProto`` list), or ``default``."""
    for a in node.attributes:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _static_shape(graph: Any, name: str) -> tuple | None:
    """The shape of ``name`` when the graph knows it (initializer or inferred)."""
    value = graph.initializers.get(name)
    if isinstance(value, np.ndarray):
        return value.shape
    shape = graph.shape_of(name) if name else None
    return tuple(shape) if shape is not None else None


def _fits(graph: Any, block: int) -> bool:
    """Whether the graph's NCHWc nodes are consistent with block size ``block``: weights'
    padded channel counts, channel counts flowing into Convs and out of ReorderOutputs."""
    channels: dict[str, int | None] = {}
    for node in graph.nodes:
        if node.domain != NCHWC:
            continue
        source = channels.get(node.inputs[0]) if node.inputs else None
        out = source
        if node.op_type == "ReorderInput":
            shape = _static_shape(graph, node.inputs[0])
            c = None if shape is None or len(shape) != 4 else \
                shape[3 if _attr(node, "channels_last", 0) else 1]
            out = -(-c // block) * block if isinstance(c, int) else None
        elif node.op_type == "Conv":
            shape = _static_shape(graph, node.inputs[1])
            if shape is None or len(shape) != 4:
                out = None
            else:
                group = int(_attr(node, "group", 1))
                o, i = int(shape[0]), int(shape[1])
                if o % block:
                    return False
                nchw_input = group == 1 and i < block
                depthwise = i == 1 and group == o
                if not nchw_input and (i * group) % block:
                    return False
                if not (nchw_input or depthwise) and (i % block or (o // group) % block):
                    return False
                if not nchw_input and source is not None and source != i * group:
                    return False
                out = o
        elif node.op_type == "ReorderOutput":
            wanted = int(_attr(node, "channels", 0))
            if source is not None and (source % block or not 0 <= source - wanted < block):
                return False
            out = None
        for name in node.outputs:
            channels[name] = out
    return True


def block_size(node: NodeInfo) -> int:
    """The block size of the graph ``node`` belongs to: the one candidate its NCHWc nodes'
    shapes fit, else (several fit, or no graph) this machine's MLAS block size."""
    graph = node.graph
    if graph is None:
        return machine_block_size()
    try:
        return _inferred[graph]
    except (KeyError, TypeError):
        pass
    fitting = [b for b in CANDIDATES if _fits(graph, b)]
    if not fitting:
        raise ValueError(f"{node.describe()}: the graph's NCHWc channel counts fit no block "
                         f"size of {list(CANDIDATES)}")
    machine = machine_block_size()
    block = fitting[0] if len(fitting) == 1 else machine if machine in fitting else fitting[0]
    try:
        _inferred[graph] = block
    except TypeError:
        pass
    return block
