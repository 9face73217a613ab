"""Models for the CUDA provider's tests, beside ``tests/models/generate.py`` (ResNet-style CNN,
BERT-style encoder): a GPT-style decoder, a small U-Net-like CNN exercising the other conv and
resampling ops, and an LSTM classifier. Built with onnx.helper, deterministic weights."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from models.generate import GraphBuilder, bert_encoder, resnet_cnn  # noqa: E402

__all__ = ["gpt_decoder", "unet_cnn", "lstm_classifier", "bert_encoder", "resnet_cnn",
           "gpt_feeds", "bert_feeds"]


def gpt_decoder(batch: int | str = "batch", seq: int | str = "seq", *, vocab: int = 50,
                hidden: int = 32, heads: int = 4, layers: int = 2, max_positions: int = 16,
                seed: int = 3) -> onnx.ModelProto:
    """A GPT-2-style decoder (opset 17): token + position embeddings (Range over the sequence
    length), pre-LayerNorm blocks with a fused QKV MatMul split by Split, a causal mask sliced
    from a constant and applied with Cast + Where, tanh-GELU written out with Pow/Tanh, and
    logits tied to the token embedding."""
    g = GraphBuilder(seed)
    ids = g.add_input("input_ids", TensorProto.INT64, [batch, seq])
    wte = g.weight("wte", (vocab, hidden), scale=0.5)
    wpe = g.weight("wpe", (max_positions, hidden), scale=0.1)
    shape = g.node("Shape", [ids], name="/Shape")
    seq_len = g.node("Gather", [shape, g.const("one", 1, np.int64)], name="/seq_len", axis=0)
    positions = g.node("Range", [g.const("zero", 0, np.int64), seq_len,
                                 g.const("step", 1, np.int64)], name="/positions")
    h = g.node("Add", [g.node("Gather", [wte, ids], name="/wte"),
                       g.node("Gather", [wpe, positions], name="/wpe")], name="/embed")
    tri = np.tril(np.ones((max_positions, max_positions), np.uint8))[None, None]
    causal_table = g.initializer("causal_table", tri)
    seq_1d = g.node("Unsqueeze", [seq_len, g.const("axes0", [0], np.int64)], name="/seq_1d")
    ends = g.node("Concat", [seq_1d, seq_1d], name="/mask_ends", axis=0)
    mask = g.node("Slice", [causal_table, g.const("starts", [0, 0], np.int64), ends,
                            g.const("mask_axes", [2, 3], np.int64)], name="/mask_slice")
    mask = g.node("Cast", [mask], name="/mask_bool", to=TensorProto.BOOL)
    head = hidden // heads
    split_shape = g.const("split_shape", [0, 0, heads, head], np.int64)
    merge_shape = g.const("merge_shape", [0, 0, hidden], np.int64)
    for layer in range(layers):
        p = f"h.{layer}"
        x = _layer_norm(g, h, hidden, f"{p}.ln_1")
        qkv = g.linear(x, hidden, 3 * hidden, f"{p}.attn.c_attn")
        q, k, v = g.node("Split", [qkv, g.const(f"{p}/split", [hidden] * 3, np.int64)],
                         name=f"{p}/Split", num_outputs=3, axis=-1)
        q, k, v = (g.node("Transpose", [g.node("Reshape", [t, split_shape], name=f"{p}/R{n}")],
                          name=f"{p}/T{n}", perm=perm)
                   for n, t, perm in (("q", q, [0, 2, 1, 3]), ("k", k, [0, 2, 3, 1]),
                                      ("v", v, [0, 2, 1, 3])))
        scores = g.node("Div", [g.node("MatMul", [q, k], name=f"{p}/QK"),
                                g.const(f"{p}/scale", math.sqrt(head))], name=f"{p}/scaled")
        scores = g.node("Where", [mask, scores, g.const(f"{p}/minus", -1e4)], name=f"{p}/mask")
        probs = g.node("Softmax", [scores], name=f"{p}/Softmax", axis=-1)
        context = g.node("Transpose", [g.node("MatMul", [probs, v], name=f"{p}/PV")],
                         name=f"{p}/Tout", perm=[0, 2, 1, 3])
        context = g.node("Reshape", [context, merge_shape], name=f"{p}/merge")
        h = g.node("Add", [h, g.linear(context, hidden, hidden, f"{p}.attn.c_proj")],
                   name=f"{p}/res1")
        x = _layer_norm(g, h, hidden, f"{p}.ln_2")
        x = _gelu_tanh(g, g.linear(x, hidden, 4 * hidden, f"{p}.mlp.c_fc"), f"{p}/gelu")
        h = g.node("Add", [h, g.linear(x, 4 * hidden, hidden, f"{p}.mlp.c_proj")],
                   name=f"{p}/res2")
    h = _layer_norm(g, h, hidden, "ln_f")
    logits = g.node("MatMul", [h, g.node("Transpose", [wte], name="/wte_T", perm=[1, 0])],
                    name="/lm_head")
    g.rename_output(logits, "logits")
    g.add_output("logits", TensorProto.FLOAT, [batch, seq, vocab])
    return g.build("gpt_decoder", doc="GPT-style decoder test model (ort-provider-cuda tests)")


def _layer_norm(g: GraphBuilder, x: str, hidden: int, prefix: str) -> str:
    scale = g.initializer(f"{prefix}.weight", g.rng.uniform(0.8, 1.2, hidden).astype(np.float32))
    bias = g.initializer(f"{prefix}.bias", g.rng.normal(0, 0.1, hidden).astype(np.float32))
    return g.node("LayerNormalization", [x, scale, bias], name=f"{prefix}/LN", axis=-1,
                  epsilon=1e-5)


def _gelu_tanh(g: GraphBuilder, x: str, prefix: str) -> str:
    """GPT-2's gelu_new: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    cube = g.node("Pow", [x, g.const(f"{prefix}/three", 3.0)], name=f"{prefix}/Pow")
    inner = g.node("Add", [x, g.node("Mul", [cube, g.const(f"{prefix}/c", 0.044715)],
                                     name=f"{prefix}/Mul")], name=f"{prefix}/Add")
    t = g.node("Tanh", [g.node("Mul", [inner, g.const(f"{prefix}/k", math.sqrt(2 / math.pi))],
                               name=f"{prefix}/Mul_k")], name=f"{prefix}/Tanh")
    t = g.node("Add", [t, g.const(f"{prefix}/one", 1.0)], name=f"{prefix}/Add_1")
    return g.node("Mul", [g.node("Mul", [x, g.const(f"{prefix}/half", 0.5)],
                                 name=f"{prefix}/Mul_half"), t], name=f"{prefix}/Mul_out")


def unet_cnn(batch: int | str = "batch", seed: int = 4) -> onnx.ModelProto:
    """A small encoder/decoder CNN: Conv, depthwise and grouped Conv, BatchNormalization,
    LeakyRelu, AveragePool, MaxPool, ConvTranspose, Resize (nearest and linear), Concat,
    Sigmoid, GlobalAveragePool."""
    g = GraphBuilder(seed)
    x = g.add_input("image", TensorProto.FLOAT, [batch, 3, 16, 16])
    c1 = g.node("Conv", [x, g.weight("c1.w", (8, 3, 3, 3)), g.weight("c1.b", (8,), 0.1)],
                name="/c1", pads=[1, 1, 1, 1])
    bn = [g.initializer(f"bn.{n}", v) for n, v in (
        ("scale", g.rng.uniform(0.5, 1.5, 8).astype(np.float32)),
        ("bias", g.rng.normal(0, 0.1, 8).astype(np.float32)),
        ("mean", g.rng.normal(0, 0.1, 8).astype(np.float32)),
        ("var", g.rng.uniform(0.5, 1.5, 8).astype(np.float32)))]
    c1 = g.node("LeakyRelu", [g.node("BatchNormalization", [c1, *bn], name="/bn")], name="/lr",
                alpha=0.1)
    dw = g.node("Conv", [c1, g.weight("dw.w", (8, 1, 3, 3))], name="/dw", group=8,
                pads=[1, 1, 1, 1])
    down = g.node("AveragePool", [dw], name="/avg", kernel_shape=[2, 2], strides=[2, 2])
    grouped = g.node("Relu", [g.node("Conv", [down, g.weight("gc.w", (8, 4, 3, 3))],
                                     name="/gc", group=2, pads=[1, 1, 1, 1])], name="/gc_relu")
    deeper = g.node("MaxPool", [grouped], name="/max", kernel_shape=[2, 2], strides=[2, 2])
    up1 = g.node("ConvTranspose", [deeper, g.weight("up.w", (8, 8, 2, 2))], name="/up",
                 strides=[2, 2])
    empty = g.initializer("no_roi", np.zeros(0, np.float32))
    up2 = g.node("Resize", [up1, empty, g.initializer("scales2", np.array([1, 1, 2, 2],
                                                                          np.float32))],
                 name="/resize_nearest", mode="nearest")
    skip = g.node("Resize", [down, empty, g.initializer("scales_lin", np.array(
        [1, 1, 2, 2], np.float32))], name="/resize_linear", mode="linear")
    merged = g.node("Concat", [up2, skip], name="/concat", axis=1)
    out = g.node("Sigmoid", [g.node("Conv", [merged, g.weight("head.w", (2, 16, 1, 1))],
                                    name="/head")], name="/sigmoid")
    out = g.rename_output(out, "mask")
    g.add_output("mask", TensorProto.FLOAT, [batch, 2, 16, 16])
    pooled = g.node("GlobalAveragePool", [out], name="/gap")
    g.rename_output(pooled, "score")
    g.add_output("score", TensorProto.FLOAT, [batch, 2, 1, 1])
    return g.build("unet_cnn", doc="U-Net-like CNN test model (ort-provider-cuda tests)")


def lstm_classifier(seed: int = 5) -> onnx.ModelProto:
    """A bidirectional LSTM over ``float[seq, batch, 6]`` with per-sequence lengths, its
    final hidden states concatenated and classified by Gemm."""
    g = GraphBuilder(seed)
    x = g.add_input("x", TensorProto.FLOAT, ["seq", "batch", 6])
    lengths = g.add_input("lengths", TensorProto.INT32, ["batch"])
    hidden = 5
    w, r, b = (g.weight(n, s) for n, s in (("W", (2, 4 * hidden, 6)), ("R", (2, 4 * hidden,
                                                                              hidden)),
                                           ("B", (2, 8 * hidden))))
    _, y_h, _ = g.node("LSTM", [x, w, r, b, lengths], name="/lstm", num_outputs=3,
                       hidden_size=hidden, direction="bidirectional")
    states = g.node("Transpose", [y_h], name="/states_T", perm=[1, 0, 2])
    flat = g.node("Flatten", [states], name="/flat", axis=1)
    logits = g.node("Gemm", [flat, g.weight("fc.w", (3, 2 * hidden)), g.weight("fc.b", (3,))],
                    name="/fc", transB=1)
    g.rename_output(logits, "logits")
    g.add_output("logits", TensorProto.FLOAT, ["batch", 3])
    return g.build("lstm_classifier", doc="LSTM test model (ort-provider-cuda tests)")


def gpt_feeds(batch: int = 2, seq: int = 7, vocab: int = 50) -> dict[str, np.ndarray]:
    return {"input_ids": np.random.default_rng(7).integers(0, vocab, (batch, seq))}


def bert_feeds(batch: int = 2, seq: int = 6, vocab: int = 100) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(8)
    mask = np.ones((batch, seq), np.int64)
    mask[0, -2:] = 0
    return {"input_ids": rng.integers(0, vocab, (batch, seq)), "attention_mask": mask,
            "token_type_ids": (rng.random((batch, seq)) > 0.5).astype(np.int64)}


def to_float16(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with float32 initializers, float inputs/outputs, Casts to float and float
    Constants turned into float16 (enough for the models of this module; a float value left
    next to a float16 one would make the model invalid)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    keep = {name for node in out.graph.node if node.op_type == "Resize"
            for name in node.input[1:3]}  # roi and scales are float whatever X is
    for tensor in out.graph.initializer:
        if tensor.data_type == TensorProto.FLOAT and tensor.name not in keep:
            tensor.CopyFrom(numpy_helper.from_array(
                numpy_helper.to_array(tensor).astype(np.float16), tensor.name))
    for value in list(out.graph.input) + list(out.graph.output):
        if value.type.tensor_type.elem_type == TensorProto.FLOAT:
            value.type.tensor_type.elem_type = TensorProto.FLOAT16
    for node in out.graph.node:  # Casts to float and float Constants: to float16 too
        for attr in node.attribute:
            if node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT:
                attr.i = TensorProto.FLOAT16
            if node.op_type == "Constant" and attr.name == "value" and \
                    attr.t.data_type == TensorProto.FLOAT:
                attr.t.CopyFrom(numpy_helper.from_array(
                    numpy_helper.to_array(attr.t).astype(np.float16), attr.t.name))
    del out.graph.value_info[:]
    return out
