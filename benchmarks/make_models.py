"""Write the benchmark model set as ONNX files: ``python benchmarks/make_models.py OUTDIR``.

Every model is built with ``onnx.helper`` and seeded numpy random weights (no torch, no
download), in the shapes and node patterns that ``torch.onnx.export`` writes, so the graph
optimizer's fusions see what they see in real exports:

==================  =========================================================================
resnet18.onnx       ResNet-18 (7x7/2 conv, maxpool, 4 stages x 2 BasicBlocks, 64..512
                    channels, BatchNormalization after every conv, global avgpool, FC 1000);
                    input ``[batch, 3, 224, 224]``; ~1.8 G MACs per image
mobilenetv2.onnx    MobileNetV2 1.0 (inverted residuals, depthwise 3x3, ReLU6 as Clip, BN)
bert_base.onnx      BERT-base encoder: 12 layers, hidden 768, 12 heads, FFN 3072, erf GELU,
                    LayerNorm as ReduceMean/Sub/Pow/Sqrt/Div, additive attention mask;
                    inputs ``input_ids`` and ``attention_mask`` ``[batch, sequence]`` int64
gpt2_small.onnx     GPT-2-style decoder: 6 layers x 512 hidden, 8 heads, causal mask, pre-LN,
                    tanh GELU, LM head tied to the token embedding, vocab 8192
mlp.onnx            Gemm 1024-4096-4096-1024 with Relu
tiny_vad.onnx       a Silero-VAD-like stack of ~30 small nodes (Conv1d, LSTM, Sigmoid): per-call
                    overhead
random_forest.onnx  scikit-learn RandomForestClassifier (100 trees, 20 features) through
                    skl2onnx (``zipmap=False``); skipped with a message without those packages
logistic_regression.onnx  scikit-learn StandardScaler + LogisticRegression (20 features, 3
                    classes), ``zipmap=False``: a classic pipeline of a few small nodes
gradient_boosting.onnx  scikit-learn GradientBoostingClassifier (50 trees of depth 3, 20
                    features, 3 classes), ``zipmap=False``
relu_chain_N.onnx   N Relu nodes in a row on a ``[batch, 16]`` input (N = 1, 10, 30): the
                    fixed cost of a run and the cost of a node, measured apart from kernels
==================  =========================================================================

Batch (and sequence for the transformers) dims are symbolic. ``--only a,b`` writes a subset.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
SEED = 0
FLOAT = TensorProto.FLOAT
INT64 = TensorProto.INT64


class Builder:
    """Accumulates nodes and initializers with unique generated names."""

    def __init__(self, seed: int = SEED) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.rng = np.random.default_rng(seed)
        self._counts: dict[str, int] = {}
        self._constants: dict[tuple, str] = {}

    def name(self, prefix: str) -> str:
        count = self._counts.get(prefix, 0)
        self._counts[prefix] = count + 1
        return f"{prefix}_{count}" if count else prefix

    def init(self, prefix: str, value: np.ndarray) -> str:
        """Add an initializer and return its name."""
        name = self.name(prefix)
        self.initializers.append(numpy_helper.from_array(np.array(value, order="C"), name))
        return name

    def const(self, value, dtype=np.float32) -> str:
        """A shared small constant initializer (scalars, shapes, axes)."""
        array = np.asarray(value, dtype=dtype)
        key = (array.dtype.str, array.shape, array.tobytes())
        if key not in self._constants:
            self._constants[key] = self.init("const", array)
        return self._constants[key]

    def weight(self, prefix: str, shape: tuple[int, ...], fan_in: int) -> str:
        """He-scaled normal weights, float32."""
        scale = math.sqrt(2.0 / max(fan_in, 1))
        value = self.rng.standard_normal(shape, dtype=np.float32) * np.float32(scale)
        return self.init(prefix, value)

    def uniform(self, prefix: str, shape: tuple[int, ...], low: float, high: float) -> str:
        return self.init(prefix, self.rng.uniform(low, high, shape).astype(np.float32))

    def op(self, op_type: str, inputs: list[str], n_outputs: int = 1, domain: str = "",
           **attrs) -> str | list[str]:
        """Add a node; returns its output name (or names when ``n_outputs`` > 1)."""
        node_name = self.name(op_type)
        outputs = [f"{node_name}_out{i}" if n_outputs > 1 else f"{node_name}_out"
                   for i in range(n_outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, outputs, node_name, domain=domain,
                                           **attrs))
        return outputs if n_outputs > 1 else outputs[0]

    def model(self, name: str, inputs: list, outputs: list, doc: str) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="ort-benchmarks", doc_string=doc)
        model.ir_version = 8
        return model


# --- convolutional networks -----------------------------------------------------------------

def conv_bn(b: Builder, x: str, c_in: int, c_out: int, kernel: int, stride: int,
            groups: int = 1) -> str:
    """Conv (no bias) followed by BatchNormalization, as exported from eval-mode PyTorch."""
    w = b.weight("conv.weight", (c_out, c_in // groups, kernel, kernel),
                 c_in // groups * kernel * kernel)
    pad = kernel // 2
    y = b.op("Conv", [x, w], kernel_shape=[kernel, kernel], strides=[stride, stride],
             pads=[pad] * 4, group=groups, dilations=[1, 1])
    scale = b.uniform("bn.weight", (c_out,), 0.5, 1.0)
    bias = b.uniform("bn.bias", (c_out,), -0.1, 0.1)
    mean = b.uniform("bn.running_mean", (c_out,), -0.1, 0.1)
    var = b.uniform("bn.running_var", (c_out,), 0.5, 1.5)
    return b.op("BatchNormalization", [y, scale, bias, mean, var], epsilon=1e-5,
                momentum=0.9)


def classifier(b: Builder, x: str, features: int, classes: int = 1000) -> str:
    """GlobalAveragePool, Flatten, Gemm (transB like nn.Linear)."""
    pooled = b.op("GlobalAveragePool", [x])
    flat = b.op("Flatten", [pooled], axis=1)
    w = b.weight("fc.weight", (classes, features), features)
    bias = b.uniform("fc.bias", (classes,), -0.01, 0.01)
    return b.op("Gemm", [flat, w, bias], alpha=1.0, beta=1.0, transB=1)


def image_input() -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info("input", FLOAT, ["batch", 3, 224, 224])


def make_resnet18() -> onnx.ModelProto:
    b = Builder()
    x = b.op("Relu", [conv_bn(b, "input", 3, 64, 7, 2)])
    x = b.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    c_in = 64
    for stage, c_out in enumerate((64, 128, 256, 512)):
        for block in range(2):
            stride = 2 if stage > 0 and block == 0 else 1
            y = b.op("Relu", [conv_bn(b, x, c_in, c_out, 3, stride)])
            y = conv_bn(b, y, c_out, c_out, 3, 1)
            shortcut = x if stride == 1 and c_in == c_out else conv_bn(b, x, c_in, c_out, 1,
                                                                       stride)
            x = b.op("Relu", [b.op("Add", [y, shortcut])])
            c_in = c_out
    logits = classifier(b, x, 512)
    out = helper.make_tensor_value_info(logits, FLOAT, ["batch", 1000])
    return b.model("resnet18", [image_input()], [out],
                   "ResNet-18 topology with random weights (~1.8 G MACs per image)")


def relu6(b: Builder, x: str) -> str:
    return b.op("Clip", [x, b.const(0.0), b.const(6.0)])


def make_mobilenetv2() -> onnx.ModelProto:
    b = Builder()
    x = relu6(b, conv_bn(b, "input", 3, 32, 3, 2))
    c_in = 32
    settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                (6, 160, 3, 2), (6, 320, 1, 1)]
    for expand, c_out, repeats, first_stride in settings:
        for i in range(repeats):
            stride = first_stride if i == 0 else 1
            hidden = c_in * expand
            y = x if expand == 1 else relu6(b, conv_bn(b, x, c_in, hidden, 1, 1))
            y = relu6(b, conv_bn(b, y, hidden, hidden, 3, stride, groups=hidden))
            y = conv_bn(b, y, hidden, c_out, 1, 1)
            x = b.op("Add", [x, y]) if stride == 1 and c_in == c_out else y
            c_in = c_out
    x = relu6(b, conv_bn(b, x, c_in, 1280, 1, 1))
    logits = classifier(b, x, 1280)
    out = helper.make_tensor_value_info(logits, FLOAT, ["batch", 1000])
    return b.model("mobilenetv2", [image_input()], [out],
                   "MobileNetV2 1.0 topology with random weights (~0.3 G MACs per image)")


# --- transformers -----------------------------------------------------------------------------

def linear(b: Builder, x: str, d_in: int, d_out: int, prefix: str) -> str:
    """MatMul + Add with a [d_in, d_out] weight (how torch exports nn.Linear on 3-D input)."""
    w = b.init(f"{prefix}.weight", b.rng.standard_normal((d_in, d_out), dtype=np.float32)
               * np.float32(0.02))
    bias = b.uniform(f"{prefix}.bias", (d_out,), -0.02, 0.02)
    return b.op("Add", [b.op("MatMul", [x, w]), bias])


def layer_norm(b: Builder, x: str, hidden: int, eps: float) -> str:
    """LayerNorm the way older torch exports spell it (ReduceMean/Sub/Pow/Sqrt/Div)."""
    mean = b.op("ReduceMean", [x], axes=[-1], keepdims=1)
    d = b.op("Sub", [x, mean])
    var = b.op("ReduceMean", [b.op("Pow", [d, b.const(2.0)])], axes=[-1], keepdims=1)
    std = b.op("Sqrt", [b.op("Add", [var, b.const(eps)])])
    normed = b.op("Div", [d, std])
    gamma = b.uniform("LayerNorm.weight", (hidden,), 0.9, 1.1)
    beta = b.uniform("LayerNorm.bias", (hidden,), -0.05, 0.05)
    return b.op("Add", [b.op("Mul", [normed, gamma]), beta])


def gelu_erf(b: Builder, x: str) -> str:
    """x * 0.5 * (1 + erf(x / sqrt(2)))."""
    erf = b.op("Erf", [b.op("Div", [x, b.const(math.sqrt(2.0))])])
    return b.op("Mul", [b.op("Mul", [x, b.op("Add", [erf, b.const(1.0)])]), b.const(0.5)])


def gelu_tanh(b: Builder, x: str) -> str:
    """0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))."""
    cube = b.op("Pow", [x, b.const(3.0)])
    inner = b.op("Add", [x, b.op("Mul", [cube, b.const(0.044715)])])
    tanh = b.op("Tanh", [b.op("Mul", [inner, b.const(math.sqrt(2.0 / math.pi))])])
    half_x = b.op("Mul", [x, b.const(0.5)])
    return b.op("Mul", [half_x, b.op("Add", [tanh, b.const(1.0)])])


def split_heads(b: Builder, x: str, heads: int, head_dim: int, perm: list[int]) -> str:
    shaped = b.op("Reshape", [x, b.const([0, 0, heads, head_dim], np.int64)])
    return b.op("Transpose", [shaped], perm=perm)


def self_attention(b: Builder, x: str, hidden: int, heads: int, mask: str | None,
                   causal: str | None) -> str:
    """Multi-head self-attention: per-head Q/K/V projections, scaled scores, softmax."""
    head_dim = hidden // heads
    q = split_heads(b, linear(b, x, hidden, hidden, "attn.query"), heads, head_dim,
                    [0, 2, 1, 3])
    k = split_heads(b, linear(b, x, hidden, hidden, "attn.key"), heads, head_dim, [0, 2, 3, 1])
    v = split_heads(b, linear(b, x, hidden, hidden, "attn.value"), heads, head_dim,
                    [0, 2, 1, 3])
    scores = b.op("Div", [b.op("MatMul", [q, k]), b.const(math.sqrt(head_dim))])
    if causal is not None:
        scores = b.op("Where", [causal, scores, b.const(np.finfo(np.float32).min)])
    if mask is not None:
        scores = b.op("Add", [scores, mask])
    probs = b.op("Softmax", [scores], axis=-1)
    context = b.op("Transpose", [b.op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
    merged = b.op("Reshape", [context, b.const([0, 0, hidden], np.int64)])
    return linear(b, merged, hidden, hidden, "attn.output.dense")


def sequence_length(b: Builder, ids: str) -> str:
    """The sequence length of ``ids`` as a 1-element int64 tensor."""
    dim = b.op("Gather", [b.op("Shape", [ids]), b.const(1, np.int64)], axis=0)
    return b.op("Unsqueeze", [dim, b.const([0], np.int64)])


def position_embeddings(b: Builder, ids: str, max_positions: int, hidden: int) -> str:
    """Gather rows ``0..seq-1`` of a learned position table."""
    seq = sequence_length(b, ids)
    positions = b.op("Range", [b.const(0, np.int64), b.op("Squeeze", [seq]),
                               b.const(1, np.int64)])
    table = b.init("position_embeddings.weight",
                   b.rng.standard_normal((max_positions, hidden), dtype=np.float32) * 0.02)
    return b.op("Gather", [table, positions], axis=0)


def make_bert_base(layers: int = 12, hidden: int = 768, heads: int = 12, ffn: int = 3072,
                   vocab: int = 30522) -> onnx.ModelProto:
    b = Builder()
    words = b.init("word_embeddings.weight",
                   b.rng.standard_normal((vocab, hidden), dtype=np.float32) * 0.02)
    token_type = b.uniform("token_type_embeddings.row0", (hidden,), -0.02, 0.02)
    x = b.op("Add", [b.op("Gather", [words, "input_ids"], axis=0),
                     position_embeddings(b, "input_ids", 512, hidden)])
    x = layer_norm(b, b.op("Add", [x, token_type]), hidden, 1e-12)
    # (1 - mask) * -10000 on [batch, 1, 1, seq], as BertModel.get_extended_attention_mask.
    mask = b.op("Cast", [b.op("Unsqueeze", ["attention_mask", b.const([1, 2], np.int64)])],
                to=FLOAT)
    mask = b.op("Mul", [b.op("Sub", [b.const(1.0), mask]), b.const(-10000.0)])
    for _ in range(layers):
        attended = self_attention(b, x, hidden, heads, mask, None)
        x = layer_norm(b, b.op("Add", [attended, x]), hidden, 1e-12)
        h = gelu_erf(b, linear(b, x, hidden, ffn, "intermediate.dense"))
        x = layer_norm(b, b.op("Add", [linear(b, h, ffn, hidden, "output.dense"), x]),
                       hidden, 1e-12)
    first = b.op("Gather", [x, b.const(0, np.int64)], axis=1)
    pooled = b.op("Tanh", [linear(b, first, hidden, hidden, "pooler.dense")])
    b.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], "out_hidden"))
    b.nodes.append(helper.make_node("Identity", [pooled], ["pooler_output"], "out_pooled"))
    inputs = [helper.make_tensor_value_info(n, INT64, ["batch", "sequence"])
              for n in ("input_ids", "attention_mask")]
    outputs = [helper.make_tensor_value_info("last_hidden_state", FLOAT,
                                             ["batch", "sequence", hidden]),
               helper.make_tensor_value_info("pooler_output", FLOAT, ["batch", hidden])]
    return b.model("bert_base", inputs, outputs,
                   f"BERT-base-style encoder ({layers} layers, hidden {hidden}) with random "
                   "weights; run with sequence 128")


def make_gpt2_small(layers: int = 6, hidden: int = 512, heads: int = 8, vocab: int = 8192,
                    max_positions: int = 1024) -> onnx.ModelProto:
    b = Builder()
    wte = b.init("wte.weight", b.rng.standard_normal((vocab, hidden), dtype=np.float32) * 0.02)
    x = b.op("Add", [b.op("Gather", [wte, "input_ids"], axis=0),
                     position_embeddings(b, "input_ids", max_positions, hidden)])
    # The causal mask: a lower-triangular buffer sliced to [1, 1, seq, seq].
    seq = sequence_length(b, "input_ids")
    tril = b.const(np.tril(np.ones((max_positions, max_positions), bool))[None, None], bool)
    zeros = b.const([0, 0], np.int64)
    ends = b.op("Concat", [seq, seq], axis=0)
    causal = b.op("Slice", [tril, zeros, ends, b.const([2, 3], np.int64)])
    for _ in range(layers):
        x = b.op("Add", [x, self_attention(b, layer_norm(b, x, hidden, 1e-5), hidden, heads,
                                           None, causal)])
        h = gelu_tanh(b, linear(b, layer_norm(b, x, hidden, 1e-5), hidden, 4 * hidden,
                                "mlp.c_fc"))
        x = b.op("Add", [x, linear(b, h, 4 * hidden, hidden, "mlp.c_proj")])
    x = layer_norm(b, x, hidden, 1e-5)
    logits = b.op("MatMul", [x, b.op("Transpose", [wte], perm=[1, 0])])  # tied LM head
    b.nodes.append(helper.make_node("Identity", [logits], ["logits"], "out_logits"))
    inputs = [helper.make_tensor_value_info("input_ids", INT64, ["batch", "sequence"])]
    outputs = [helper.make_tensor_value_info("logits", FLOAT, ["batch", "sequence", vocab])]
    return b.model("gpt2_small", inputs, outputs,
                   f"GPT-2-style decoder ({layers} layers x {hidden}, vocab {vocab}) with random "
                   "weights; run with sequence 128")


# --- small models -------------------------------------------------------------------------------

def make_mlp(sizes: tuple[int, ...] = (1024, 4096, 4096, 1024)) -> onnx.ModelProto:
    b = Builder()
    x = "input"
    for i, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = b.weight("fc.weight", (d_out, d_in), d_in)
        x = b.op("Gemm", [x, w, b.uniform("fc.bias", (d_out,), -0.01, 0.01)], transB=1)
        if i < len(sizes) - 2:
            x = b.op("Relu", [x])
    b.nodes.append(helper.make_node("Identity", [x], ["output"], "out"))
    return b.model("mlp", [helper.make_tensor_value_info("input", FLOAT, ["batch", sizes[0]])],
                   [helper.make_tensor_value_info("output", FLOAT, ["batch", sizes[-1]])],
                   "MLP " + "-".join(map(str, sizes)) + " with Relu")


def make_tiny_vad(samples: int = 512, hidden: int = 64) -> onnx.ModelProto:
    """A Silero-VAD-like chunk model: learned STFT, 4 conv blocks, LSTM, sigmoid head."""
    b = Builder()
    x = b.op("Unsqueeze", ["input", b.const([1], np.int64)])               # [B, 1, T]
    bins = 65
    stft = b.weight("stft.basis", (2 * bins, 1, 128), 128)
    spec = b.op("Conv", [x, stft], kernel_shape=[128], strides=[64], pads=[64, 64])
    real = b.op("Slice", [spec, b.const([0], np.int64), b.const([bins], np.int64),
                          b.const([1], np.int64)])
    imag = b.op("Slice", [spec, b.const([bins], np.int64), b.const([2 * bins], np.int64),
                          b.const([1], np.int64)])
    power = b.op("Add", [b.op("Mul", [real, real]), b.op("Mul", [imag, imag])])
    x = b.op("Sqrt", [b.op("Add", [power, b.const(1e-6)])])
    channels = bins
    for c_out, stride in ((hidden, 1), (hidden, 2), (hidden, 2), (hidden, 1)):
        w = b.weight("encoder.weight", (c_out, channels, 3), channels * 3)
        bias = b.uniform("encoder.bias", (c_out,), -0.05, 0.05)
        x = b.op("Relu", [b.op("Conv", [x, w, bias], kernel_shape=[3], strides=[stride],
                                pads=[1, 1])])
        channels = c_out
    seq = b.op("Transpose", [x], perm=[2, 0, 1])                            # [T', B, C]
    w = b.weight("lstm.W", (1, 4 * hidden, channels), channels)
    r = b.weight("lstm.R", (1, 4 * hidden, hidden), hidden)
    bias = b.uniform("lstm.B", (1, 8 * hidden), -0.05, 0.05)
    y, h, c = b.op("LSTM", [seq, w, r, bias, "", "h", "c"], n_outputs=3, hidden_size=hidden)
    last = b.op("Squeeze", [h, b.const([0], np.int64)])                     # [B, H]
    head = b.weight("decoder.weight", (1, hidden), hidden)
    logit = b.op("Gemm", [b.op("Relu", [last]), head, b.const([0.0])], transB=1)
    b.nodes.append(helper.make_node("Sigmoid", [logit], ["output"], "out_prob"))
    b.nodes.append(helper.make_node("Identity", [h], ["hn"], "out_h"))
    b.nodes.append(helper.make_node("Identity", [c], ["cn"], "out_c"))
    del y
    inputs = [helper.make_tensor_value_info("input", FLOAT, ["batch", samples]),
              helper.make_tensor_value_info("h", FLOAT, [1, "batch", hidden]),
              helper.make_tensor_value_info("c", FLOAT, [1, "batch", hidden])]
    outputs = [helper.make_tensor_value_info("output", FLOAT, ["batch", 1]),
               helper.make_tensor_value_info("hn", FLOAT, [1, "batch", hidden]),
               helper.make_tensor_value_info("cn", FLOAT, [1, "batch", hidden])]
    return b.model("tiny_vad", inputs, outputs,
                   "Silero-VAD-like chunk model (Conv1d, LSTM, Sigmoid) for per-call overhead")


def _sklearn_model(name: str, build: Callable[[], Any]) -> onnx.ModelProto | None:
    """A scikit-learn estimator fitted on a synthetic 20-feature, 3-class set, through
    skl2onnx (``zipmap=False``); None with a message without those packages."""
    try:
        from sklearn.datasets import make_classification
        from skl2onnx import to_onnx
        estimator = build()
    except ImportError as error:
        print(f"{name}.onnx: skipped, scikit-learn/skl2onnx missing ({error.name})",
              file=sys.stderr)
        return None
    x, y = make_classification(n_samples=2000, n_features=20, n_informative=10, n_classes=3,
                               random_state=SEED)
    estimator.fit(x.astype(np.float32), y)
    return to_onnx(estimator, x[:1].astype(np.float32), options={"zipmap": False},
                   target_opset={"": OPSET, "ai.onnx.ml": 3})


def make_random_forest() -> onnx.ModelProto | None:
    """RandomForestClassifier(100 trees, depth 12)."""
    def build() -> Any:
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(n_estimators=100, max_depth=12, random_state=SEED,
                                      n_jobs=1)

    return _sklearn_model("random_forest", build)


def make_logistic_regression() -> onnx.ModelProto | None:
    """StandardScaler + LogisticRegression."""
    def build() -> Any:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))

    return _sklearn_model("logistic_regression", build)


def make_gradient_boosting() -> onnx.ModelProto | None:
    """GradientBoostingClassifier, 50 trees of depth 3."""
    def build() -> Any:
        from sklearn.ensemble import GradientBoostingClassifier

        return GradientBoostingClassifier(n_estimators=50, max_depth=3, random_state=SEED)

    return _sklearn_model("gradient_boosting", build)


def make_relu_chain(length: int) -> onnx.ModelProto:
    """``length`` Relu nodes in a row on a [batch, 16] float input."""
    names = ["input"] + [f"relu_{i}" for i in range(length)]
    nodes = [helper.make_node("Relu", [a], [b], name=b) for a, b in zip(names, names[1:])]
    graph = helper.make_graph(nodes, f"relu_chain_{length}",
                              [helper.make_tensor_value_info("input", FLOAT, ["batch", 16])],
                              [helper.make_tensor_value_info(names[-1], FLOAT, ["batch", 16])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


MODELS: dict[str, Callable[[], onnx.ModelProto | None]] = {
    "resnet18": make_resnet18,
    "mobilenetv2": make_mobilenetv2,
    "bert_base": make_bert_base,
    "gpt2_small": make_gpt2_small,
    "mlp": make_mlp,
    "tiny_vad": make_tiny_vad,
    "random_forest": make_random_forest,
    "logistic_regression": make_logistic_regression,
    "gradient_boosting": make_gradient_boosting,
    "relu_chain_1": lambda: make_relu_chain(1),
    "relu_chain_10": lambda: make_relu_chain(10),
    "relu_chain_30": lambda: make_relu_chain(30),
}


def chosen_models(parser: argparse.ArgumentParser, only: str, known: Any) -> list[str]:
    """The model names ``--only`` lists (all of ``known`` when empty); unknown ones end the
    program with the list of known ones."""
    names = [n for n in only.split(",") if n] or list(known)
    unknown = sorted(set(names) - set(known))
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return names


def prepare_outdir(outdir: Path, script: str) -> None:
    """Create the model folder, ignored by git (generated files, hundreds of MB)."""
    outdir.mkdir(parents=True, exist_ok=True)
    ignore = outdir / ".gitignore"
    if not ignore.exists():
        ignore.write_text(f"# written by benchmarks/{script}\n*\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path, help="folder to write the .onnx files into")
    parser.add_argument("--only", default="", help="comma-separated model names: "
                        + ",".join(MODELS))
    parser.add_argument("--no-check", action="store_true", help="skip onnx.checker")
    args = parser.parse_args(argv)
    names = chosen_models(parser, args.only, MODELS)
    prepare_outdir(args.outdir, "make_models.py")
    for name in names:
        start = time.perf_counter()
        model = MODELS[name]()
        if model is None:
            continue
        if not args.no_check:
            onnx.checker.check_model(model)
        path = args.outdir / f"{name}.onnx"
        onnx.save_model(model, path)
        print(f"{path}: {len(model.graph.node)} nodes, {path.stat().st_size / 1e6:.1f} MB, "
              f"{time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
