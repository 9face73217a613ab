"""``NchwcUnblock``: turn onnxruntime's blocked-channel ``com.microsoft.nchwc`` regions back
into plain NCHW ops.

onnxruntime's highest optimization level rewrites CNNs into ``com.microsoft.nchwc`` ops
(ReorderInput, Conv, pools, Upsample, ReorderOutput) that work on tensors whose channels are
stored in blocks of B (8 or 16, the saving machine's MLAS block size) and padded up to a
multiple of B; a model saved that way keeps them. ort's CPU provider runs those ops by
converting to NCHW and back around each one, so this level-2 pass rewrites each region
(ReorderInput → nchwc ops → ReorderOutput, connected by blocked values) into:

* nchwc Conv → ``com.microsoft:FusedConv`` (activation, activation_params; the ``Sum`` input
  as Z) or ``Conv`` (+ ``Add`` for a Sum, + the activation op where FusedConv has no kernel
  or does not take the activation, as HardSwish), its weights decoded once from
  the blocked layout (OIHWBiBo per group; OIHWBo for NCHW-input and depthwise convs) into new
  initializers;
* MaxPool/AveragePool/GlobalAveragePool/GlobalMaxPool → the ONNX pools; Upsample → Resize;
* ReorderInput/ReorderOutput → Identity (removed by IdentityElimination; a ReorderOutput's
  producer writes its output directly where nothing else reads its input), Transpose for
  the channels-last forms, Slice where the NCHW value keeps more channels than
  ReorderOutput's ``channels``;
* the plain ops onnxruntime leaves reading blocked tensors (activations, elementwise
  Add/Mul/... of blocked values and scalar constants, Concat along the channels) stay as
  they are: they compute the same on the NCHW form.

Padded channels are dropped: values linked channel-by-channel (pool in/out, Upsample,
depthwise Conv, a Conv's output and its Sum) form a class that keeps one channel count K, the
largest any of its members needs (a ReorderOutput's ``channels``, the last input channel a
reading Conv's weights use, the last output channel a producing Conv's weights or bias write;
a ReorderInput's class keeps exactly its input's channels). Channels past K are read by
nothing (their weights are zero), so dropping them changes no output.

A region is rewritten only when every node in it is understood (constant float weights and
bias, known activations, channel counts consistent with the block size), its blocked values
stay inside it, and the graph's block size is found the way the CPU provider finds it (the
one candidate the graph's shapes fit; where several fit, this machine's MLAS block size, as
the kernels and onnxruntime itself would run the model, so the rewrite computes exactly what
the kernels compute); a graph no block size fits is left alone, as is any region that fails
a check: the nchwc kernels run it.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from onnx import ModelProto, NodeProto

from .context import OptimizerContext
from .patterns import MS_DOMAIN, GraphView, Rewriter, attr, is_default_domain

__all__ = ["NCHWC", "unblock_nchwc", "decode_nchwc_weight", "machine_block_size",
           "infer_block_size"]

NCHWC = "com.microsoft.nchwc"
#: Block sizes onnxruntime's MLAS uses (AVX-512: 16, AVX/AVX2/NEON: 8/16), largest first.
CANDIDATES = (16, 8)
_ACTIVATIONS = frozenset({"Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip", "HardSigmoid"})
_ELEMENTWISE = frozenset({"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
                          "Upsample"})
_BLOCKED_PRODUCERS = _ELEMENTWISE | {"ReorderInput", "Conv"}
#: Plain ops onnxruntime's NCHWc transformer leaves reading blocked tensors: channel-wise
#: activations (input 0 blocked), elementwise binaries and Concat along the channels.
_UNARY = frozenset({"Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip", "HardSigmoid",
                    "HardSwish", "Identity", "Neg", "Abs", "Exp", "Sqrt", "Erf", "Elu",
                    "Softplus", "Softsign", "Selu", "Celu", "Gelu"})
_PLAIN_OPS = _UNARY | {"Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Mean", "Concat"}
_CONV_ATTRS = ("auto_pad", "kernel_shape", "dilations", "strides", "pads")
_POOL_ATTRS = {"MaxPool": ("auto_pad", "kernel_shape", "dilations", "strides", "pads",
                           "ceil_mode"),
               "AveragePool": ("auto_pad", "kernel_shape", "dilations", "strides", "pads",
                               "ceil_mode", "count_include_pad")}


def machine_block_size() -> int:
    """The NCHWc block size onnxruntime's MLAS picks on this CPU (ARM64: 16; x86-64: 16 with
    AVX-512F, else 8), the tie-breaker where a model's shapes fit several."""
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


def decode_nchwc_weight(w: np.ndarray, group: int, block: int) -> np.ndarray:
    """An nchwc Conv's reordered weight back to OIHW (same shape, padded channels kept).

    Group-1 weights reading fewer than ``block`` channels (an NCHW input) and depthwise
    weights (one input channel per group, ``group`` = output channels) are OIHWBo
    ``(O/B, I, kh, kw, Bo)``; the others OIHWBiBo per group ``(G, O/G/B, I/B, kh, kw, Bi, Bo)``.
    Raises ValueError for a shape the blocked layout cannot have."""
    if w.ndim != 4:
        raise ValueError(f"W must be 4-D, got shape {w.shape}")
    o, i, kh, kw = w.shape
    if o % block or o % group:
        raise ValueError(f"W has {o} output channels; with group {group} and block size "
                         f"{block} that must be a multiple of both")
    if (group == 1 and i < block) or (i == 1 and group == o):
        blocks = w.reshape(o // block, i, kh, kw, block)
        return np.ascontiguousarray(blocks.transpose(0, 4, 1, 2, 3)).reshape(o, i, kh, kw)
    per_group = o // group
    if i % block or per_group % block:
        raise ValueError(f"W {w.shape} with group {group}: blocked weights need input and "
                         f"per-group output channels that are multiples of {block}")
    blocks = w.reshape(group, per_group // block, i // block, kh, kw, block, block)
    return np.ascontiguousarray(blocks.transpose(0, 1, 6, 2, 5, 3, 4)).reshape(o, i, kh, kw)


def _fits(view: GraphView, block: int) -> bool:
    """Whether the graph's nchwc nodes are consistent with block size ``block`` (the CPU
    provider's test: padded weight channels, channels into Convs and out of ReorderOutputs)."""
    channels: dict[str, int | None] = {}
    for node in view.nodes:
        if node.domain != NCHWC:
            continue
        source = channels.get(node.input[0]) if node.input else None
        out = source
        if node.op_type == "ReorderInput":
            shape = view.shape(node.input[0])
            c = None if shape is None or len(shape) != 4 else \
                shape[3 if attr(node, "channels_last", 0) else 1]
            out = -(-c // block) * block if isinstance(c, int) else None
        elif node.op_type == "Conv":
            shape = view.shape(node.input[1]) if len(node.input) > 1 else None
            if shape is None or len(shape) != 4 or not all(isinstance(d, int) for d in shape):
                out = None
            else:
                group = int(attr(node, "group", 1))
                o, i = int(shape[0]), int(shape[1])
                nchw_input = group == 1 and i < block
                depthwise = i == 1 and group == o
                if o % block or (not nchw_input and (i * group) % block):
                    return False
                if not (nchw_input or depthwise) and (i % block or (o // group) % block):
                    return False
                if not nchw_input and source is not None and source != i * group:
                    return False
                out = o
        elif node.op_type == "ReorderOutput":
            wanted = int(attr(node, "channels", 0))
            if source is not None and (source % block or not 0 <= source - wanted < block):
                return False
            out = None
        for name in node.output:
            channels[name] = out
    return True


def infer_block_size(view: GraphView) -> int | None:
    """The block size of the graph's nchwc nodes as the CPU provider infers it: the one
    candidate the shapes fit, the machine's MLAS block size where several fit; None when
    none does."""
    fitting = [b for b in CANDIDATES if _fits(view, b)]
    if not fitting:
        return None
    machine = machine_block_size()
    return fitting[0] if len(fitting) == 1 else machine if machine in fitting else fitting[0]


class _Refused(Exception):
    """A region the pass cannot prove; it is left as it is."""


@dataclass
class _Region:
    """One connected nchwc region: its nodes and the bookkeeping of its blocked values."""

    nodes: list[int]
    blocked: set[str]
    padded: dict[str, int] = field(default_factory=dict)  # blocked value -> Cp
    parent: dict[str, str] = field(default_factory=dict)  # union-find over blocked values
    need: dict[str, int] = field(default_factory=dict)  # class root -> channels needed
    exact: dict[str, int] = field(default_factory=dict)  # class root -> ReorderInput's C
    weights: dict[int, tuple[np.ndarray, np.ndarray | None]] = field(default_factory=dict)

    def root(self, name: str) -> str:
        while self.parent.setdefault(name, name) != name:
            name = self.parent[name]
        return name

    def link(self, a: str, b: str) -> None:
        ra, rb = self.root(a), self.root(b)
        if self.padded.get(a) != self.padded.get(b):
            raise _Refused(f"{a} and {b} have different padded channel counts")
        if ra != rb:
            self.parent[rb] = ra
            self.need[ra] = max(self.need.pop(ra, 0), self.need.pop(rb, 0))
            if rb in self.exact:
                if self.exact.setdefault(ra, self.exact[rb]) != self.exact.pop(rb):
                    raise _Refused("two ReorderInputs of different channels are linked")

    def require(self, name: str, count: int) -> None:
        r = self.root(name)
        self.need[r] = max(self.need.get(r, 0), int(count))

    def kept(self, name: str) -> int:
        """The channel count the NCHW form of blocked value ``name`` keeps."""
        r = self.root(name)
        k = max(self.need.get(r, 0), 1)
        if r in self.exact:
            if k > self.exact[r]:
                raise _Refused("a reader needs padded channels of a ReorderInput")
            k = self.exact[r]
        if k > self.padded[name]:
            raise _Refused("more channels needed than the blocked value has")
        return k


def _in_region(view: GraphView, node: NodeProto, blocked: set[str]) -> bool:
    """Whether ``node`` belongs to an nchwc region: an nchwc op, or a plain op onnxruntime
    leaves on blocked tensors (activations, elementwise binaries, Concat) reading one."""
    if node.domain == NCHWC:
        return True
    return (is_default_domain(node) and node.op_type in _PLAIN_OPS
            and any(i in blocked for i in node.input))


def _regions(view: GraphView) -> list[_Region]:
    """The connected nchwc regions whose blocked values are read only by nodes of the region
    (and are not graph outputs)."""
    parent: dict[int, int] = {}

    def find(i: int) -> int:
        while parent.setdefault(i, i) != i:
            i = parent[i]
        return i

    blocked: set[str] = set()
    members: list[int] = []
    for index, node in enumerate(view.nodes):
        if not _in_region(view, node, blocked):
            continue
        members.append(index)
        find(index)
        for name in node.input:
            if name in blocked:
                parent[find(index)] = find(view.producer[name])
        if node.domain != NCHWC or node.op_type in _BLOCKED_PRODUCERS:
            blocked.update(o for o in node.output if o)
    member_set = set(members)
    bad: set[int] = set()
    for name in blocked:
        if name in view.protected or not set(view.consumers.get(name, [])) <= member_set:
            bad.add(find(view.producer[name]))
        elif any(view.nodes[j].op_type == "ReorderInput" for j in view.consumers.get(name, [])):
            bad.add(find(view.producer[name]))
    groups: dict[int, list[int]] = {}
    for i in members:
        groups.setdefault(find(i), []).append(i)
    regions = []
    for r, nodes in groups.items():
        if r not in bad:
            outs = {o for i in nodes for o in view.nodes[i].output if o in blocked}
            regions.append(_Region(sorted(nodes), outs))
    return regions


def _last_nonzero(mask: np.ndarray) -> int:
    """1 + the index of the last True in a 1-D mask (0 when none)."""
    hits = np.flatnonzero(mask)
    return int(hits[-1]) + 1 if hits.size else 0


def _analyse(view: GraphView, region: _Region, block: int) -> None:
    """Fill the region's channel classes and decoded weights; raise _Refused where a node is
    not understood."""
    for index in region.nodes:
        node = view.nodes[index]
        op = node.op_type
        x = node.input[0] if node.input else ""
        if node.domain != NCHWC:
            _analyse_plain(view, region, node)
            continue
        if op not in _BLOCKED_PRODUCERS | {"ReorderOutput"} or len(node.output) != 1:
            raise _Refused(f"nchwc {op} not understood")
        y = node.output[0]
        if op != "ReorderInput" and op != "Conv" and x not in region.blocked:
            raise _Refused(f"{op} reads a value that is not blocked")
        if op == "ReorderInput":
            shape = view.shape(x)
            last = bool(attr(node, "channels_last", 0))
            c = shape[3 if last else 1] if shape is not None and len(shape) == 4 else None
            if not isinstance(c, int) or c <= 0 or not view.is_float(x):
                raise _Refused("ReorderInput's input channels are unknown")
            region.padded[y] = -(-c // block) * block
            region.exact[region.root(y)] = c
        elif op == "ReorderOutput":
            channels = int(attr(node, "channels", 0))
            if channels <= 0 or not 0 <= region.padded[x] - channels < block:
                raise _Refused("ReorderOutput's channels do not fit its input")
            region.require(x, channels)
        elif op == "Conv":
            _analyse_conv(view, region, index, node, block)
        else:
            region.padded[y] = region.padded[x]
            region.link(x, y)


def _analyse_plain(view: GraphView, region: _Region, node: NodeProto) -> None:
    """A plain op on blocked tensors: channel-wise ops link their blocked inputs and output
    (other inputs must be scalar constants); Concat keeps every channel of its inputs."""
    if len(node.output) != 1 or not view.is_float(node.output[0]) and \
            view.elem_type(node.output[0]) is not None:
        raise _Refused(f"{node.op_type} on blocked values not understood")
    y = node.output[0]
    inputs = [i for i in node.input if i]
    blocked = [i for i in inputs if i in region.blocked]
    if node.op_type == "Concat":
        if int(attr(node, "axis", 0)) not in (1, -3) or len(blocked) != len(inputs):
            raise _Refused("Concat of blocked values off the channel axis")
        region.padded[y] = sum(region.padded[i] for i in blocked)
        for i in blocked:  # channel offsets are the padded ones: keep every channel
            region.require(i, region.padded[i])
        region.require(y, region.padded[y])
        return
    if node.op_type in _UNARY and node.input[0] not in region.blocked:
        raise _Refused(f"{node.op_type} reads its blocked value as a parameter")
    for name in inputs:
        if name not in region.blocked:
            value = view.const(name)
            if value is None or value.size != 1:
                raise _Refused(f"{node.op_type} mixes blocked values and non-scalars")
    region.padded[y] = region.padded[blocked[0]]
    for name in blocked:
        region.link(blocked[0], name)
    region.link(blocked[0], y)


def _analyse_conv(view: GraphView, region: _Region, index: int, node: NodeProto,
                  block: int) -> None:
    """The Conv part of :func:`_analyse`."""
    x, y = node.input[0], node.output[0]
    w = view.const(node.input[1]) if len(node.input) > 1 else None
    if w is None or w.dtype != np.float32 or w.ndim != 4:
        raise _Refused("Conv weights are not constant float32 4-D")
    bias = None
    if len(node.input) > 2 and node.input[2]:
        bias = view.const(node.input[2])
        if bias is None or bias.dtype != np.float32 or bias.shape != (w.shape[0],):
            raise _Refused("Conv bias is not a constant float32 vector")
    activation = attr(node, "activation")
    if activation is not None and activation not in _ACTIVATIONS | {"HardSwish"}:
        raise _Refused(f"activation {activation!r} not understood")
    group = int(attr(node, "group", 1))
    o, i = w.shape[:2]
    try:
        decoded = decode_nchwc_weight(w, group, block)
    except ValueError as error:
        raise _Refused(str(error)) from None
    region.weights[index] = (decoded, bias)
    region.padded[y] = o
    nchw_input = group == 1 and i < block
    depthwise = not nchw_input and i == 1 and group == o
    if nchw_input:
        if x in region.blocked or not view.is_float(x):
            raise _Refused("an NCHW-input Conv reads a blocked value")
    elif x not in region.blocked or region.padded.get(x) != i * group:
        raise _Refused("Conv input channels do not match its weights")
    written = np.any(decoded != 0, axis=(1, 2, 3))
    if bias is not None:
        written |= bias != 0
    region.require(y, _last_nonzero(written))
    if depthwise:
        region.link(x, y)
    elif not nchw_input:
        if group > 1:  # grouped weights keep every channel: no padding to drop
            region.require(x, region.padded[x])
            region.require(y, o)
        else:
            region.require(x, _last_nonzero(np.any(decoded != 0, axis=(0, 2, 3))))
    if len(node.input) > 3 and node.input[3]:
        total = node.input[3]
        if total not in region.blocked:
            raise _Refused("Conv's Sum is not blocked")
        region.link(y, total)


class _Emitter:
    """Makes the replacement nodes; a dry run (``dry``) adds no initializers, so a region
    refused halfway leaves the model untouched."""

    def __init__(self, view: GraphView, rewriter: Rewriter, dry: bool) -> None:
        self.view, self.rewriter, self.dry = view, rewriter, dry

    def make_node(self, *args: Any, **kwargs: Any) -> NodeProto:
        return self.rewriter.make_node(*args, **kwargs)

    def add_initializer(self, array: np.ndarray, hint: str) -> str:
        return hint if self.dry else self.rewriter.add_initializer(array, hint)


def _copy_attrs(node: NodeProto, names: tuple[str, ...]) -> dict[str, Any]:
    """The attributes ``names`` the node sets."""
    return {a.name: attr(node, a.name) for a in node.attribute if a.name in names}


def _emit(view: GraphView, rewriter: _Emitter, region: _Region) -> list[tuple[int, list]]:
    """The replacement nodes of each node of the region (raises _Refused)."""
    opset = view.opset() or 0
    if opset < 11:
        raise _Refused("the plain forms need opset 11 or later")
    needed: set[tuple[str, str]] = set()
    out: list[tuple[int, list]] = []
    for index in region.nodes:
        node = view.nodes[index]
        op, x, y = node.op_type, node.input[0], node.output[0]
        hint = node.name or y
        new: list[NodeProto] = []
        if node.domain != NCHWC:
            same = NodeProto()  # works on the NCHW form as on the blocked one
            same.CopyFrom(node)
            out.append((index, [same]))
            continue
        if op == "ReorderInput":
            if attr(node, "channels_last", 0):
                new.append(rewriter.make_node("Transpose", [x], [y], hint, perm=[0, 3, 1, 2]))
            else:
                new.append(rewriter.make_node("Identity", [x], [y], hint))
        elif op == "ReorderOutput":
            channels = int(attr(node, "channels", 0))
            last = bool(attr(node, "channels_last", 0))
            value = x
            if channels < region.kept(x):
                value = y if not last else view.unique_name(f"{y}_nchw")
                consts = [rewriter.add_initializer(np.array([v], np.int64), f"{hint}_{n}")
                          for n, v in (("starts", 0), ("ends", channels), ("axes", 1))]
                new.append(rewriter.make_node("Slice", [x] + consts, [value], hint))
            if last:
                new.append(rewriter.make_node("Transpose", [value], [y], hint,
                                              perm=[0, 2, 3, 1]))
            elif value == x:
                new.append(rewriter.make_node("Identity", [x], [y], hint))
        elif op == "Conv":
            new = _emit_conv(view, rewriter, region, index, node, needed)
        elif op == "Upsample":
            scales = [int(s) for s in (attr(node, "scales") or [])]
            mode = attr(node, "mode", "nearest")
            transform = attr(node, "coordinate_transformation_mode", "asymmetric")
            if (len(scales) != 4 or scales[:2] != [1, 1] or min(scales) < 1
                    or mode not in ("nearest", "linear")
                    or transform not in ("asymmetric", "align_corners", "half_pixel")):
                raise _Refused("Upsample attributes not understood")
            s = rewriter.add_initializer(np.array(scales, np.float32), f"{hint}_scales")
            # roi is optional from opset 13; before that an empty tensor stands for it
            roi = "" if opset >= 13 else rewriter.add_initializer(np.zeros(0, np.float32),
                                                                  f"{hint}_roi")
            if mode == "nearest":  # the nchwc kernel repeats pixels, whatever the mode
                transform = "asymmetric"
            extra = {"nearest_mode": "floor"} if mode == "nearest" else {}
            new.append(rewriter.make_node("Resize", [x, roi, s], [y], hint, mode=mode,
                                          coordinate_transformation_mode=transform, **extra))
        else:
            attrs = _copy_attrs(node, _POOL_ATTRS.get(op, ()))
            if op == "AveragePool" and opset < 19 and any(d != 1 for d in
                                                          attrs.get("dilations", [1])):
                raise _Refused("AveragePool dilations need opset 19")
            if op == "AveragePool" and opset < 19:
                attrs.pop("dilations", None)
            new.append(rewriter.make_node(op, [x], [y], hint, **attrs))
        for n in new:
            needed.add((n.domain or "", n.op_type))
        out.append((index, new))
    for domain, op_type in needed:
        if not view.can_run(domain, op_type):
            raise _Refused(f"no kernel for {domain}:{op_type}")
    return _write_outputs_directly(view, out)


def _write_outputs_directly(view: GraphView, out: list[tuple[int, list]]
                            ) -> list[tuple[int, list]]:
    """Drop the Identity of a ReorderOutput: the node producing its input writes the
    ReorderOutput's output itself and the region's other readers read that (IdentityElimination
    keeps an Identity that writes a graph output)."""
    made = {n.output[0]: n for _, nodes in out for n in nodes if n.output}
    renamed: dict[str, str] = {}
    for _, nodes in out:
        if len(nodes) == 1 and nodes[0].op_type == "Identity" and nodes[0].domain == "":
            x, y = nodes[0].input[0], nodes[0].output[0]
            if (x in made and made[x].op_type != "Identity" and x not in view.protected
                    and x not in renamed):
                made[x].output[0] = y
                renamed[x] = y
                del nodes[:]
    for _, nodes in out:
        for node in nodes:
            for i, name in enumerate(node.input):
                node.input[i] = renamed.get(name, name)
    return out


def _emit_conv(view: GraphView, rewriter: _Emitter, region: _Region, index: int,
               node: NodeProto, needed: set) -> list[NodeProto]:
    """The Conv / FusedConv (+ Add) replacing an nchwc Conv, with sliced weights."""
    x, y = node.input[0], node.output[0]
    hint = node.name or y
    decoded, bias = region.weights[index]
    group = int(attr(node, "group", 1))
    keep_out = region.kept(y)
    if x in region.blocked:
        keep_in = region.kept(x)
        if group == 1:
            decoded = decoded[:keep_out, :keep_in]
        elif decoded.shape[1] == 1 and group == decoded.shape[0]:  # depthwise
            decoded, group = decoded[:keep_out], keep_out
            if keep_in != keep_out:
                raise _Refused("depthwise Conv input and output channels differ")
        elif keep_in != region.padded[x] or keep_out != decoded.shape[0]:
            raise _Refused("grouped Conv with padded channels")
    else:
        decoded = decoded[:keep_out]
    attrs = _copy_attrs(node, _CONV_ATTRS)
    attrs["group"] = group
    w_name = rewriter.add_initializer(np.ascontiguousarray(decoded), f"{node.input[1]}_nchw")
    inputs = [x, w_name]
    if bias is not None:
        inputs.append(rewriter.add_initializer(np.ascontiguousarray(bias[:keep_out]),
                                               f"{node.input[2]}_nchw"))
    total = node.input[3] if len(node.input) > 3 and node.input[3] else None
    activation = attr(node, "activation")
    params = [float(p) for p in (attr(node, "activation_params") or [])]
    if activation in _ACTIVATIONS and view.can_run(MS_DOMAIN, "FusedConv"):
        if total is not None:
            inputs = inputs + [""] * (3 - len(inputs)) + [total]
        extra = {"activation_params": params} if params else {}
        return [rewriter.make_node("FusedConv", inputs, [y], hint, domain=MS_DOMAIN,
                                   activation=activation, **extra, **attrs)]
    # plain ops: Conv, + Sum, then the activation as its own node
    steps = ([] if total is None else ["Add"]) + ([] if activation is None else [activation])
    names = [view.unique_name(f"{y}_{step}") for step in (["conv"] + steps)[:-1]] + [y]
    nodes = [rewriter.make_node("Conv", inputs, [names[0]], hint, **attrs)]
    if total is not None:
        nodes.append(rewriter.make_node("Add", [names[0], total], [names[1]], f"{hint}_sum"))
    if activation is not None:
        nodes.append(_activation_node(rewriter, activation, params, names[-2], y,
                                      f"{hint}_{activation}", view.opset() or 0))
    return nodes


def _activation_node(rewriter: _Emitter, activation: str, params: list[float], x: str,
                     y: str, hint: str, opset: int) -> NodeProto:
    """The ONNX node applying an nchwc Conv's fused ``activation`` (raises _Refused for an
    activation or parameter list it does not know)."""
    if activation in ("Relu", "Sigmoid", "Tanh") and not params:
        return rewriter.make_node(activation, [x], [y], hint)
    if activation == "HardSwish" and not params and opset >= 14:
        return rewriter.make_node(activation, [x], [y], hint)
    if activation == "LeakyRelu" and len(params) == 1:
        return rewriter.make_node(activation, [x], [y], hint, alpha=params[0])
    if activation == "HardSigmoid" and len(params) == 2:
        return rewriter.make_node(activation, [x], [y], hint, alpha=params[0], beta=params[1])
    if activation == "Clip" and len(params) == 2:
        bounds = [rewriter.add_initializer(np.array(v, np.float32), f"{hint}_{n}")
                  for n, v in (("min", params[0]), ("max", params[1]))]
        return rewriter.make_node(activation, [x] + bounds, [y], hint)
    raise _Refused(f"activation {activation!r} with parameters {params} not understood")


def unblock_nchwc(model: ModelProto, context: OptimizerContext) -> bool:
    """Rewrite each provable nchwc region (ReorderInput → nchwc ops → ReorderOutput) into
    NCHW ONNX ops and FusedConv with decoded, unpadded weights (see the module docstring)."""
    view = GraphView.of(model, context)
    if NCHWC not in view.domains:
        return False
    block = infer_block_size(view)
    if block is None:
        return False
    rewriter = Rewriter(view)
    rewritten: set[str] = set()
    for region in _regions(view):
        try:
            _analyse(view, region, block)
            _emit(view, _Emitter(view, rewriter, dry=True), region)
            replacements = _emit(view, _Emitter(view, rewriter, dry=False), region)
        except (_Refused, KeyError, IndexError, ValueError, TypeError):
            continue  # a region the pass does not understand: the nchwc kernels run it
        for index, nodes in replacements:
            rewriter.replace([index], nodes)
        rewritten |= region.blocked
    if not rewriter.commit():
        return False
    # the blocked values' names now hold NCHW tensors: drop any shapes recorded for them
    infos = [vi for vi in model.graph.value_info if vi.name not in rewritten]
    if len(infos) != len(model.graph.value_info):
        del model.graph.value_info[:]
        model.graph.value_info.extend(infos)
    return True

