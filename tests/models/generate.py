"""Small, deterministic test models shaped like real PyTorch exports.

Every model here is built with :mod:`onnx.helper` only (no torch), with weights drawn from
``np.random.default_rng(seed)`` so that the same call always returns the same bytes. They use
opset 17 and IR version 8 so that any recent onnxruntime loads them, and they are small enough
that one run on a pure-numpy runtime takes a few milliseconds.

* :func:`resnet_cnn` -- a ResNet-style CNN (Conv/BatchNormalization/Relu/MaxPool, two basic
  residual blocks, one with a strided 1x1 downsample shortcut, GlobalAveragePool, Gemm).
* :func:`bert_encoder` -- a two-layer BERT encoder written the way ``torch.onnx.export``
  writes one: dynamic ``Shape -> Gather -> Unsqueeze -> Concat -> Reshape`` chains, Erf GELU,
  a decomposed LayerNorm, the extended attention mask, a Tanh pooler.
* :func:`mlp` -- a tiny MLP ending in Softmax.

Run ``python tests/models/generate.py [OUTPUT_DIR]`` to write them as ``.onnx`` files
(default: ``tests/models/data/``).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = [
    "OPSET",
    "IR_VERSION",
    "GraphBuilder",
    "resnet_cnn",
    "bert_encoder",
    "mlp",
    "all_models",
    "main",
]

#: The default-domain opset every model here imports.
OPSET = 17
#: The IR version every model here declares (onnxruntime 1.14+ loads it).
IR_VERSION = 8

#: A dimension: a fixed size, or a symbolic name such as ``"batch"``.
Dim = int | str


class GraphBuilder:
    """A small helper that collects nodes, initializers and graph inputs/outputs.

    Node and tensor names are made unique with a per-prefix counter, mimicking the
    ``/encoder/layer.0/attention/MatMul`` style names of torch exports loosely enough to make
    models readable in Netron.
    """

    def __init__(self, seed: int) -> None:
        """Start an empty graph whose random weights come from ``default_rng(seed)``."""
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []
        self._counts: dict[str, int] = {}

    def unique(self, prefix: str) -> str:
        """Return ``prefix`` the first time and ``prefix_1``, ``prefix_2``... afterwards."""
        count = self._counts.get(prefix, 0)
        self._counts[prefix] = count + 1
        return prefix if count == 0 else f"{prefix}_{count}"

    # -- graph interface -------------------------------------------------------------------

    def add_input(self, name: str, elem_type: int, shape: Sequence[Dim]) -> str:
        """Declare a graph input and return its name."""
        self.inputs.append(helper.make_tensor_value_info(name, elem_type, list(shape)))
        return name

    def add_output(self, name: str, elem_type: int, shape: Sequence[Dim]) -> None:
        """Declare a graph output (a value some node already produces)."""
        self.outputs.append(helper.make_tensor_value_info(name, elem_type, list(shape)))

    def initializer(self, name: str, array: np.ndarray) -> str:
        """Add ``array`` as an initializer under a unique name derived from ``name``."""
        name = self.unique(name)
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def const(self, name: str, value, dtype=np.float32) -> str:
        """Add a small constant initializer (a scalar or a list) and return its name."""
        return self.initializer(name, np.array(value, dtype=dtype))

    def weight(self, name: str, shape: Sequence[int], scale: float | None = None) -> str:
        """Add a random normal float32 weight; ``scale`` defaults to ``1/sqrt(fan_in)``."""
        if scale is None:
            fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else int(shape[0])
            scale = 1.0 / math.sqrt(max(fan_in, 1))
        array = self.rng.normal(0.0, scale, size=tuple(shape)).astype(np.float32)
        return self.initializer(name, array)

    def node(self, op_type: str, inputs: Sequence[str], name: str | None = None,
             num_outputs: int = 1, **attrs) -> str | list[str]:
        """Append a node; return its output name (or the list of names if several)."""
        node_name = self.unique(name or f"/{op_type}")
        outputs = [f"{node_name}_output_{i}" for i in range(num_outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outputs, name=node_name,
                                           **attrs))
        return outputs[0] if num_outputs == 1 else outputs

    def rename_output(self, value: str, new_name: str) -> str:
        """Rename the node output ``value`` to ``new_name`` (to give graph outputs nice names)."""
        for node in self.nodes:
            for i, output in enumerate(node.output):
                if output == value:
                    node.output[i] = new_name
        for node in self.nodes:
            for i, inp in enumerate(node.input):
                if inp == value:
                    node.input[i] = new_name
        return new_name

    def build(self, graph_name: str, doc: str = "") -> onnx.ModelProto:
        """Assemble the collected pieces into an opset-17, IR-8 ``ModelProto``."""
        graph = helper.make_graph(self.nodes, graph_name, self.inputs, self.outputs,
                                  initializer=self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="ort-tests", producer_version="1.0",
                                  doc_string=doc)
        model.ir_version = IR_VERSION
        return model

    # -- common layer patterns ------------------------------------------------------------

    def linear(self, x: str, in_features: int, out_features: int, prefix: str) -> str:
        """``nn.Linear`` as torch exports it for 3-D inputs: ``Add(bias, MatMul(x, W^T))``."""
        weight = self.weight(f"{prefix}.weight_T", (in_features, out_features))
        bias = self.weight(f"{prefix}.bias", (out_features,), scale=0.1)
        product = self.node("MatMul", [x, weight], name=f"{prefix}/MatMul")
        return self.node("Add", [bias, product], name=f"{prefix}/Add")

    def scalar_dim(self, shape: str, index: int, prefix: str) -> str:
        """``Gather(shape, index)`` followed by ``Unsqueeze(axes=[0])``: a 1-element int64."""
        idx = self.const(f"{prefix}/index_{index}", index, dtype=np.int64)
        gathered = self.node("Gather", [shape, idx], name=f"{prefix}/Gather", axis=0)
        axes = self.const(f"{prefix}/axes_0", [0], dtype=np.int64)
        return self.node("Unsqueeze", [gathered, axes], name=f"{prefix}/Unsqueeze")


def _dim(value: int | None, name: str) -> Dim:
    """A fixed dimension if ``value`` is given, else the symbolic ``name``."""
    return name if value is None else int(value)


# ------------------------------------------------------------------------------------------
# ResNet-style CNN
# ------------------------------------------------------------------------------------------


def _conv_bn(g: GraphBuilder, x: str, in_ch: int, out_ch: int, kernel: int, stride: int,
             prefix: str, relu: bool) -> str:
    """Conv (no bias, as in torchvision) -> BatchNormalization [-> Relu]."""
    weight = g.weight(f"{prefix}.conv.weight", (out_ch, in_ch, kernel, kernel))
    pad = kernel // 2
    y = g.node("Conv", [x, weight], name=f"{prefix}/conv/Conv", kernel_shape=[kernel, kernel],
               strides=[stride, stride], pads=[pad, pad, pad, pad], dilations=[1, 1], group=1)
    scale = g.initializer(f"{prefix}.bn.weight",
                          g.rng.uniform(0.5, 1.5, out_ch).astype(np.float32))
    bias = g.initializer(f"{prefix}.bn.bias", g.rng.normal(0.0, 0.2, out_ch).astype(np.float32))
    mean = g.initializer(f"{prefix}.bn.running_mean",
                         g.rng.normal(0.0, 0.3, out_ch).astype(np.float32))
    var = g.initializer(f"{prefix}.bn.running_var",
                        g.rng.uniform(0.5, 2.0, out_ch).astype(np.float32))
    y = g.node("BatchNormalization", [y, scale, bias, mean, var], name=f"{prefix}/bn/BatchNorm",
               epsilon=1e-5, momentum=0.9)
    if relu:
        y = g.node("Relu", [y], name=f"{prefix}/Relu")
    return y


def _basic_block(g: GraphBuilder, x: str, in_ch: int, out_ch: int, stride: int,
                 prefix: str) -> str:
    """A torchvision ``BasicBlock``: two 3x3 conv+BN, skip connection, final Relu.

    When the stride or the channel count changes, the shortcut is a strided 1x1 Conv + BN.
    """
    y = _conv_bn(g, x, in_ch, out_ch, 3, stride, f"{prefix}.1", relu=True)
    y = _conv_bn(g, y, out_ch, out_ch, 3, 1, f"{prefix}.2", relu=False)
    if stride != 1 or in_ch != out_ch:
        shortcut = _conv_bn(g, x, in_ch, out_ch, 1, stride, f"{prefix}.downsample", relu=False)
    else:
        shortcut = x
    y = g.node("Add", [y, shortcut], name=f"{prefix}/Add")
    return g.node("Relu", [y], name=f"{prefix}/Relu_out")


def resnet_cnn(batch: int | None = None, num_classes: int = 10, seed: int = 0) -> onnx.ModelProto:
    """A ResNet-style image classifier for ``float[batch, 3, 32, 32]`` inputs.

    Stem: Conv 7x7/2 (3->16) -> BatchNormalization -> Relu -> MaxPool 3x3/2, then a basic
    block 16->16 (stride 1, identity skip) and a basic block 16->32 (stride 2, 1x1 Conv+BN
    downsample shortcut), GlobalAveragePool -> Flatten -> Gemm(transB=1) -> ``logits``
    ``[batch, num_classes]``.

    Ops: Conv, BatchNormalization, Relu, MaxPool, Add, GlobalAveragePool, Flatten, Gemm.

    Args:
        batch: a fixed batch size, or ``None`` for the symbolic dimension ``"batch"``.
        num_classes: number of output logits.
        seed: seed for the random weights.
    """
    g = GraphBuilder(seed)
    batch_dim = _dim(batch, "batch")
    x = g.add_input("input", TensorProto.FLOAT, [batch_dim, 3, 32, 32])

    y = _conv_bn(g, x, 3, 16, 7, 2, "stem", relu=True)                  # [B,16,16,16]
    y = g.node("MaxPool", [y], name="/stem/MaxPool", kernel_shape=[3, 3], strides=[2, 2],
               pads=[1, 1, 1, 1], ceil_mode=0)                           # [B,16,8,8]
    y = _basic_block(g, y, 16, 16, 1, "layer1.0")                        # [B,16,8,8]
    y = _basic_block(g, y, 16, 32, 2, "layer2.0")                        # [B,32,4,4]
    y = g.node("GlobalAveragePool", [y], name="/avgpool/GlobalAveragePool")  # [B,32,1,1]
    y = g.node("Flatten", [y], name="/Flatten", axis=1)                  # [B,32]
    fc_w = g.weight("fc.weight", (num_classes, 32))
    fc_b = g.weight("fc.bias", (num_classes,), scale=0.1)
    y = g.node("Gemm", [y, fc_w, fc_b], name="/fc/Gemm", alpha=1.0, beta=1.0, transB=1)
    g.rename_output(y, "logits")
    g.add_output("logits", TensorProto.FLOAT, [batch_dim, num_classes])
    return g.build("resnet_cnn", doc="ResNet-style CNN test model (ort tests)")


# ------------------------------------------------------------------------------------------
# BERT-style encoder
# ------------------------------------------------------------------------------------------


def _layer_norm(g: GraphBuilder, x: str, hidden: int, prefix: str) -> str:
    """``nn.LayerNorm`` exported at opset 17: a single LayerNormalization node."""
    scale = g.initializer(f"{prefix}.weight",
                          g.rng.uniform(0.8, 1.2, hidden).astype(np.float32))
    bias = g.initializer(f"{prefix}.bias", g.rng.normal(0.0, 0.1, hidden).astype(np.float32))
    return g.node("LayerNormalization", [x, scale, bias], name=f"{prefix}/LayerNormalization",
                  axis=-1, epsilon=1e-12)


def _decomposed_layer_norm(g: GraphBuilder, x: str, hidden: int, prefix: str) -> str:
    """LayerNorm the way older exporters (and hand-written code) spell it out.

    ``(x - mean) / sqrt(var + eps) * weight + bias`` with ReduceMean, Sub, Pow, ReduceMean,
    Add, Sqrt, Div, Mul, Add.
    """
    scale = g.initializer(f"{prefix}.weight",
                          g.rng.uniform(0.8, 1.2, hidden).astype(np.float32))
    bias = g.initializer(f"{prefix}.bias", g.rng.normal(0.0, 0.1, hidden).astype(np.float32))
    mean = g.node("ReduceMean", [x], name=f"{prefix}/ReduceMean", axes=[-1], keepdims=1)
    centered = g.node("Sub", [x, mean], name=f"{prefix}/Sub")
    two = g.const(f"{prefix}/Constant_2", 2.0)
    squared = g.node("Pow", [centered, two], name=f"{prefix}/Pow")
    var = g.node("ReduceMean", [squared], name=f"{prefix}/ReduceMean_1", axes=[-1], keepdims=1)
    eps = g.const(f"{prefix}/Constant_eps", 1e-12)
    var_eps = g.node("Add", [var, eps], name=f"{prefix}/Add")
    std = g.node("Sqrt", [var_eps], name=f"{prefix}/Sqrt")
    normed = g.node("Div", [centered, std], name=f"{prefix}/Div")
    scaled = g.node("Mul", [normed, scale], name=f"{prefix}/Mul")
    return g.node("Add", [scaled, bias], name=f"{prefix}/Add_1")


def _gelu_erf(g: GraphBuilder, x: str, prefix: str) -> str:
    """Exact GELU as torch exports it at opset 17: ``x * 0.5 * (1 + erf(x / sqrt(2)))``."""
    sqrt2 = g.const(f"{prefix}/Constant_sqrt2", math.sqrt(2.0))
    scaled = g.node("Div", [x, sqrt2], name=f"{prefix}/Div")
    erf = g.node("Erf", [scaled], name=f"{prefix}/Erf")
    one = g.const(f"{prefix}/Constant_1", 1.0)
    shifted = g.node("Add", [erf, one], name=f"{prefix}/Add")
    product = g.node("Mul", [x, shifted], name=f"{prefix}/Mul")
    half = g.const(f"{prefix}/Constant_half", 0.5)
    return g.node("Mul", [product, half], name=f"{prefix}/Mul_1")


def _split_heads(g: GraphBuilder, x: str, heads: int, head_dim: int, prefix: str,
                 perm: Sequence[int]) -> str:
    """``x.view(B, S, heads, head_dim).permute(*perm)`` with a dynamic target shape.

    The shape is assembled from ``Shape(x)`` like torch does for dynamic axes:
    Shape -> Gather -> Unsqueeze (batch, seq) and constants, Concat, then Reshape, Transpose.
    """
    shape = g.node("Shape", [x], name=f"{prefix}/Shape")
    batch = g.scalar_dim(shape, 0, prefix)
    seq = g.scalar_dim(shape, 1, prefix)
    heads_c = g.const(f"{prefix}/Constant_heads", [heads], dtype=np.int64)
    head_dim_c = g.const(f"{prefix}/Constant_head_dim", [head_dim], dtype=np.int64)
    new_shape = g.node("Concat", [batch, seq, heads_c, head_dim_c], name=f"{prefix}/Concat",
                       axis=0)
    reshaped = g.node("Reshape", [x, new_shape], name=f"{prefix}/Reshape")
    return g.node("Transpose", [reshaped], name=f"{prefix}/Transpose", perm=list(perm))


def _self_attention(g: GraphBuilder, x: str, mask: str, hidden: int, heads: int,
                    prefix: str) -> str:
    """BertSelfAttention + BertSelfOutput (dense, residual, LayerNorm), as exported."""
    head_dim = hidden // heads
    query = g.linear(x, hidden, hidden, f"{prefix}.self.query")
    key = g.linear(x, hidden, hidden, f"{prefix}.self.key")
    value = g.linear(x, hidden, hidden, f"{prefix}.self.value")

    q = _split_heads(g, query, heads, head_dim, f"{prefix}.self/q", (0, 2, 1, 3))
    # key.permute(0,2,1,3).transpose(-1,-2) is exported as one Transpose.
    k_t = _split_heads(g, key, heads, head_dim, f"{prefix}.self/k", (0, 2, 3, 1))
    v = _split_heads(g, value, heads, head_dim, f"{prefix}.self/v", (0, 2, 1, 3))

    scores = g.node("MatMul", [q, k_t], name=f"{prefix}.self/MatMul")          # [B,H,S,S]
    sqrt_d = g.const(f"{prefix}.self/Constant_sqrt_d", math.sqrt(head_dim))
    scores = g.node("Div", [scores, sqrt_d], name=f"{prefix}.self/Div")
    scores = g.node("Add", [scores, mask], name=f"{prefix}.self/Add")
    probs = g.node("Softmax", [scores], name=f"{prefix}.self/Softmax", axis=-1)
    context = g.node("MatMul", [probs, v], name=f"{prefix}.self/MatMul_1")      # [B,H,S,D]
    context = g.node("Transpose", [context], name=f"{prefix}.self/Transpose_out",
                     perm=[0, 2, 1, 3])                                          # [B,S,H,D]

    # context.view(B, S, hidden): shape again from Shape -> Gather -> Unsqueeze -> Concat.
    shape = g.node("Shape", [context], name=f"{prefix}.self/Shape_out")
    batch = g.scalar_dim(shape, 0, f"{prefix}.self/out")
    seq = g.scalar_dim(shape, 1, f"{prefix}.self/out")
    hidden_c = g.const(f"{prefix}.self/Constant_hidden", [hidden], dtype=np.int64)
    merged_shape = g.node("Concat", [batch, seq, hidden_c], name=f"{prefix}.self/Concat_out",
                          axis=0)
    context = g.node("Reshape", [context, merged_shape], name=f"{prefix}.self/Reshape_out")

    dense = g.linear(context, hidden, hidden, f"{prefix}.output.dense")
    residual = g.node("Add", [dense, x], name=f"{prefix}.output/Add")
    return _layer_norm(g, residual, hidden, f"{prefix}.output.LayerNorm")


def _encoder_layer(g: GraphBuilder, x: str, mask: str, hidden: int, heads: int,
                   intermediate: int, prefix: str, decomposed_ln: bool) -> str:
    """One BertLayer: self-attention block, then GELU feed-forward + residual + LayerNorm."""
    attn = _self_attention(g, x, mask, hidden, heads, f"{prefix}.attention")
    inner = g.linear(attn, hidden, intermediate, f"{prefix}.intermediate.dense")
    inner = _gelu_erf(g, inner, f"{prefix}.intermediate/gelu")
    out = g.linear(inner, intermediate, hidden, f"{prefix}.output.dense")
    residual = g.node("Add", [out, attn], name=f"{prefix}.output/Add")
    if decomposed_ln:
        return _decomposed_layer_norm(g, residual, hidden, f"{prefix}.output.LayerNorm")
    return _layer_norm(g, residual, hidden, f"{prefix}.output.LayerNorm")


def _torch_expand(g: GraphBuilder, x: str, size: str, prefix: str) -> str:
    """``x.expand(*size)`` with a dynamic ``size`` that may hold ``-1`` ("keep this axis").

    torch exports this as: ``ones = ConstantOfShape(Shape(size), 1)``,
    ``Where(Equal(size, ones * -1), ones, size)`` and finally ``Expand``.
    """
    size_shape = g.node("Shape", [size], name=f"{prefix}/Shape")
    ones = g.node("ConstantOfShape", [size_shape], name=f"{prefix}/ConstantOfShape",
                  value=helper.make_tensor("value", TensorProto.INT64, [1], [1]))
    minus_one = g.const(f"{prefix}/Constant_minus_one", -1, dtype=np.int64)
    neg_ones = g.node("Mul", [ones, minus_one], name=f"{prefix}/Mul")
    is_keep = g.node("Equal", [size, neg_ones], name=f"{prefix}/Equal")
    target = g.node("Where", [is_keep, ones, size], name=f"{prefix}/Where")
    return g.node("Expand", [x, target], name=f"{prefix}/Expand")


def bert_encoder(batch: int | None = None, seq: int | None = None, *, vocab_size: int = 100,
                 hidden: int = 64, heads: int = 4, layers: int = 2, intermediate: int = 128,
                 max_positions: int = 64, type_vocab_size: int = 2,
                 seed: int = 1) -> onnx.ModelProto:
    """A BERT encoder + pooler in the shape ``torch.onnx.export`` (opset 17) produces.

    Inputs ``input_ids``, ``attention_mask``, ``token_type_ids`` (``int64[batch, seq]``);
    outputs ``last_hidden_state`` ``float[batch, seq, hidden]`` and ``pooler_output``
    ``float[batch, hidden]``.

    * Embeddings: Gather on word / position / token-type tables, Add, LayerNormalization.
      Position ids are a Slice of a constant ``position_ids`` buffer up to
      ``Shape(input_ids)[1]``, expanded to the input's shape with torch's
      ConstantOfShape/Mul/Equal/Where/Expand pattern.
    * Extended mask: Unsqueeze -> Unsqueeze -> Cast -> Sub(1 - mask) -> Mul(-10000).
    * Each layer: MatMul+Add for Q/K/V, head split via Shape->Gather->Unsqueeze->Concat->
      Reshape->Transpose, MatMul, Div by sqrt(head_dim), Add mask, Softmax, MatMul,
      Transpose, Reshape, dense + residual + LayerNormalization, then a GELU feed-forward
      (Div, Erf, Add, Mul). The last layer's output LayerNorm is the decomposed pattern
      (ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul, Add).
    * Pooler: Gather of token 0 -> Gemm(transB=1) -> Tanh.

    Args:
        batch, seq: fixed sizes, or ``None`` for the symbolic ``"batch"`` / ``"seq"``.
        vocab_size, hidden, heads, layers, intermediate, max_positions, type_vocab_size:
            the usual BERT configuration; ``seq`` must not exceed ``max_positions``.
        seed: seed for the random weights.
    """
    if hidden % heads:
        raise ValueError(f"hidden ({hidden}) must be divisible by heads ({heads})")
    g = GraphBuilder(seed)
    batch_dim, seq_dim = _dim(batch, "batch"), _dim(seq, "seq")
    input_ids = g.add_input("input_ids", TensorProto.INT64, [batch_dim, seq_dim])
    attention_mask = g.add_input("attention_mask", TensorProto.INT64, [batch_dim, seq_dim])
    token_type_ids = g.add_input("token_type_ids", TensorProto.INT64, [batch_dim, seq_dim])

    # ---- embeddings ----------------------------------------------------------------------
    word_table = g.weight("embeddings.word_embeddings.weight", (vocab_size, hidden), scale=0.5)
    pos_table = g.weight("embeddings.position_embeddings.weight", (max_positions, hidden),
                         scale=0.5)
    type_table = g.weight("embeddings.token_type_embeddings.weight", (type_vocab_size, hidden),
                          scale=0.5)
    position_ids_buffer = g.initializer(
        "embeddings.position_ids", np.arange(max_positions, dtype=np.int64)[None, :])

    # position_ids = self.position_ids[:, 0 : seq_length]
    ids_shape = g.node("Shape", [input_ids], name="/embeddings/Shape")
    seq_len = g.scalar_dim(ids_shape, 1, "/embeddings/seq_len")
    starts = g.const("/embeddings/Constant_starts", [0], dtype=np.int64)
    axes = g.const("/embeddings/Constant_axes", [1], dtype=np.int64)
    position_ids = g.node("Slice", [position_ids_buffer, starts, seq_len, axes],
                          name="/embeddings/Slice")                             # [1,S]
    # position_ids = position_ids.expand(batch, -1)
    batch_len = g.scalar_dim(ids_shape, 0, "/embeddings/batch_len")
    keep = g.const("/embeddings/Constant_keep", [-1], dtype=np.int64)
    expand_size = g.node("Concat", [batch_len, keep], name="/embeddings/Concat", axis=0)
    position_ids = _torch_expand(g, position_ids, expand_size, "/embeddings/expand")  # [B,S]

    words = g.node("Gather", [word_table, input_ids], name="/embeddings/word_embeddings/Gather",
                   axis=0)
    types = g.node("Gather", [type_table, token_type_ids],
                   name="/embeddings/token_type_embeddings/Gather", axis=0)
    positions = g.node("Gather", [pos_table, position_ids],
                       name="/embeddings/position_embeddings/Gather", axis=0)
    embeddings = g.node("Add", [words, types], name="/embeddings/Add")
    embeddings = g.node("Add", [embeddings, positions], name="/embeddings/Add_1")
    hidden_states = _layer_norm(g, embeddings, hidden, "embeddings.LayerNorm")

    # ---- extended attention mask: (1 - mask[:, None, None, :]) * -10000 -------------------
    mask = g.node("Unsqueeze", [attention_mask, g.const("/mask/axes_1", [1], dtype=np.int64)],
                  name="/mask/Unsqueeze")
    mask = g.node("Unsqueeze", [mask, g.const("/mask/axes_2", [2], dtype=np.int64)],
                  name="/mask/Unsqueeze_1")                                     # [B,1,1,S]
    mask = g.node("Cast", [mask], name="/mask/Cast", to=TensorProto.FLOAT)
    mask = g.node("Sub", [g.const("/mask/Constant_one", 1.0), mask], name="/mask/Sub")
    extended_mask = g.node("Mul", [mask, g.const("/mask/Constant_min", -10000.0)],
                           name="/mask/Mul")

    # ---- encoder -------------------------------------------------------------------------
    for i in range(layers):
        hidden_states = _encoder_layer(g, hidden_states, extended_mask, hidden, heads,
                                       intermediate, f"encoder.layer.{i}",
                                       decomposed_ln=(i == layers - 1))
    last_hidden = g.rename_output(hidden_states, "last_hidden_state")

    # ---- pooler: tanh(dense(hidden_states[:, 0])) ----------------------------------------
    first = g.node("Gather", [last_hidden, g.const("/pooler/index_0", 0, dtype=np.int64)],
                   name="/pooler/Gather", axis=1)                               # [B,hidden]
    pool_w = g.weight("pooler.dense.weight", (hidden, hidden))
    pool_b = g.weight("pooler.dense.bias", (hidden,), scale=0.1)
    pooled = g.node("Gemm", [first, pool_w, pool_b], name="/pooler/dense/Gemm", alpha=1.0,
                    beta=1.0, transB=1)
    pooled = g.node("Tanh", [pooled], name="/pooler/activation/Tanh")
    g.rename_output(pooled, "pooler_output")

    g.add_output("last_hidden_state", TensorProto.FLOAT, [batch_dim, seq_dim, hidden])
    g.add_output("pooler_output", TensorProto.FLOAT, [batch_dim, hidden])
    return g.build("bert_encoder", doc="BERT-style encoder test model (ort tests)")


# ------------------------------------------------------------------------------------------
# MLP
# ------------------------------------------------------------------------------------------


def mlp(batch: int | None = None, in_features: int = 20, hidden: int = 32,
        num_classes: int = 10, seed: int = 2) -> onnx.ModelProto:
    """A small MLP: ``float[batch, 20]`` -> (MatMul + Add -> Relu) x 2 -> Gemm -> Softmax.

    Output ``probabilities`` ``float[batch, num_classes]``.
    Ops: MatMul, Add, Relu, Gemm, Softmax.
    """
    g = GraphBuilder(seed)
    batch_dim = _dim(batch, "batch")
    x = g.add_input("input", TensorProto.FLOAT, [batch_dim, in_features])
    y = g.linear(x, in_features, hidden, "fc1")
    y = g.node("Relu", [y], name="/fc1/Relu")
    y = g.linear(y, hidden, hidden, "fc2")
    y = g.node("Relu", [y], name="/fc2/Relu")
    # A larger scale than 1/sqrt(fan_in) keeps the probabilities far from uniform.
    w = g.weight("fc3.weight", (hidden, num_classes), scale=1.0)
    b = g.weight("fc3.bias", (num_classes,), scale=0.1)
    y = g.node("Gemm", [y, w, b], name="/fc3/Gemm", alpha=1.0, beta=1.0)
    y = g.node("Softmax", [y], name="/Softmax", axis=-1)
    g.rename_output(y, "probabilities")
    g.add_output("probabilities", TensorProto.FLOAT, [batch_dim, num_classes])
    return g.build("mlp", doc="MLP test model (ort tests)")


# ------------------------------------------------------------------------------------------
# command line
# ------------------------------------------------------------------------------------------


def all_models() -> dict[str, onnx.ModelProto]:
    """Every test model with default arguments (dynamic batch/seq), keyed by file stem."""
    return {
        "resnet_cnn": resnet_cnn(),
        "bert_encoder": bert_encoder(),
        "mlp": mlp(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Write every model to ``OUTPUT_DIR/<name>.onnx`` (default ``tests/models/data``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output_dir", nargs="?", type=Path,
                        default=Path(__file__).resolve().parent / "data",
                        help="folder to write the .onnx files to (default: %(default)s)")
    parser.add_argument("--no-check", action="store_true",
                        help="skip onnx.checker.check_model(full_check=True)")
    args = parser.parse_args(argv)

    args.output_dir.mkdir(parents=True, exist_ok=True)
    for name, model in all_models().items():
        if not args.no_check:
            onnx.checker.check_model(model, full_check=True)
        path = args.output_dir / f"{name}.onnx"
        onnx.save(model, path)
        print(f"wrote {path} ({path.stat().st_size} bytes, {len(model.graph.node)} nodes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
