"""Fusion parity with onnxruntime: small models in the node patterns torch.onnx.export (and
Paddle, and old IR 3 exporters) write, each optimized by ort and by onnxruntime at
ORT_ENABLE_EXTENDED (the level without onnxruntime's NCHWc layout); the saved models must
have the same op histogram (subgraphs included, Constant nodes aside: onnxruntime makes them
initializers, ort's runtime does the same when it loads the graph) and the outputs must
agree."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import onnx
import ort
import pytest
from onnx import TensorProto, helper, numpy_helper

onnxruntime = pytest.importorskip("onnxruntime")

F = TensorProto.FLOAT
RNG = np.random.default_rng(16)


def _histogram(model: onnx.ModelProto) -> Counter:
    counts: Counter = Counter()
    graphs = [model.graph]
    while graphs:
        graph = graphs.pop()
        for node in graph.node:
            if node.op_type != "Constant":
                counts[(f"{node.domain}:" if node.domain not in ("", "ai.onnx") else "")
                       + node.op_type] += 1
            for a in node.attribute:
                graphs.extend([a.g] if a.HasField("g") else list(a.graphs))
    return counts


def _init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def _weight(*shape, scale=0.3):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def _model(nodes, inputs, outputs, inits=(), opset=17, ir_version=8):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                             ir_version=ir_version)


def _vi(name, shape, elem=F):
    return helper.make_tensor_value_info(name, elem, shape)


# ---- the patterns -------------------------------------------------------------------------

def conv_relu():
    """nn.Conv2d + nn.ReLU."""
    return _model([helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
                   helper.make_node("Relu", ["c"], ["y"])],
                  [_vi("x", ["N", 3, 8, 8])], [_vi("y", None)],
                  [_init("w", _weight(4, 3, 3, 3)), _init("b", _weight(4))])


def conv_bn_relu6():
    """nn.Conv2d(bias=False) + nn.BatchNorm2d + nn.ReLU6 (Clip with initializer bounds)."""
    return _model([helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
                   helper.make_node("BatchNormalization", ["c", "s", "o", "m", "v"], ["n"]),
                   helper.make_node("Clip", ["n", "lo", "hi"], ["y"])],
                  [_vi("x", ["N", 3, 8, 8])], [_vi("y", None)],
                  [_init("w", _weight(4, 3, 3, 3)), _init("s", RNG.uniform(0.5, 2, 4)
                                                          .astype(np.float32)),
                   _init("o", _weight(4)), _init("m", _weight(4)),
                   _init("v", RNG.uniform(0.5, 2, 4).astype(np.float32)),
                   _init("lo", np.float32(0)), _init("hi", np.float32(6))])


def conv_relu6_constant_bounds():
    """ReLU6 as the TorchScript exporter writes it at opset 11: bounds from Constant nodes."""
    return _model([helper.make_node("Constant", [], ["lo"], value=_init("lo_v", np.float32(0))),
                   helper.make_node("Constant", [], ["hi"], value=_init("hi_v", np.float32(6))),
                   helper.make_node("Conv", ["x", "w", "b"], ["c"], group=3, pads=[1, 1, 1, 1]),
                   helper.make_node("Clip", ["c", "lo", "hi"], ["y"])],
                  [_vi("x", ["N", 3, 8, 8])], [_vi("y", None)],
                  [_init("w", _weight(3, 1, 3, 3)), _init("b", _weight(3))], opset=11)


def conv_silu():
    """nn.Conv2d + nn.SiLU (YOLO's Conv block): Sigmoid then Mul(x, sigmoid)."""
    return _model([helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
                   helper.make_node("Sigmoid", ["c"], ["s"]),
                   helper.make_node("Mul", ["c", "s"], ["y"])],
                  [_vi("x", ["N", 3, 8, 8])], [_vi("y", None)],
                  [_init("w", _weight(4, 3, 3, 3)), _init("b", _weight(4))])


def silu_swapped():
    """Mul(sigmoid, x): the operand order TensorFlow exports write."""
    return _model([helper.make_node("Sigmoid", ["x"], ["s"]),
                   helper.make_node("Mul", ["s", "x"], ["y"])],
                  [_vi("x", ["N", 16])], [_vi("y", None)])


def linear_relu():
    """nn.Linear + nn.ReLU on a 2-D input: MatMul + Add, then Relu."""
    return _model([helper.make_node("MatMul", ["x", "w"], ["m"]),
                   helper.make_node("Add", ["m", "b"], ["a"]),
                   helper.make_node("Relu", ["a"], ["y"])],
                  [_vi("x", ["N", 16])], [_vi("y", None)],
                  [_init("w", _weight(16, 8)), _init("b", _weight(8))])


def linear_erf_gelu():
    """nn.Linear + nn.GELU on [B, S, H]: MatMul, bias Add, x * 0.5 * (1 + erf(x / sqrt 2))."""
    return _model([helper.make_node("MatMul", ["x", "w"], ["m"]),
                   helper.make_node("Add", ["m", "b"], ["h"]),
                   helper.make_node("Div", ["h", "sqrt2"], ["d"]),
                   helper.make_node("Erf", ["d"], ["e"]),
                   helper.make_node("Add", ["e", "one"], ["e1"]),
                   helper.make_node("Mul", ["h", "e1"], ["p"]),
                   helper.make_node("Mul", ["p", "half"], ["y"])],
                  [_vi("x", ["B", "S", 16])], [_vi("y", None)],
                  [_init("w", _weight(16, 32)), _init("b", _weight(32)),
                   _init("sqrt2", np.float32(math.sqrt(2))), _init("one", np.float32(1)),
                   _init("half", np.float32(0.5))])


def _layer_norm_nodes(x):
    return [helper.make_node("ReduceMean", [x], ["mean"], axes=[-1]),
            helper.make_node("Sub", [x, "mean"], ["d"]),
            helper.make_node("Pow", ["d", "two"], ["sq"]),
            helper.make_node("ReduceMean", ["sq"], ["var"], axes=[-1]),
            helper.make_node("Add", ["var", "eps"], ["ve"]),
            helper.make_node("Sqrt", ["ve"], ["std"]),
            helper.make_node("Div", ["d", "std"], ["n"]),
            helper.make_node("Mul", ["n", "gamma"], ["g"]),
            helper.make_node("Add", ["g", "beta"], ["y"])]


_LN_INITS = [_init("two", np.float32(2)), _init("eps", np.float32(1e-5)),
             _init("gamma", RNG.uniform(0.5, 1.5, 16).astype(np.float32)),
             _init("beta", _weight(16))]


def layer_norm():
    """nn.LayerNorm as torch exported it before opset 17 (ReduceMean/Sub/Pow/Sqrt/Div)."""
    return _model(_layer_norm_nodes("x"), [_vi("x", ["B", "S", 16])], [_vi("y", None)],
                  _LN_INITS)


def layer_norm_after_computed_reshape():
    """Paddle's export: a Reshape to a computed target before the norm (input dims unknown)."""
    nodes = [helper.make_node("Shape", ["x"], ["shape"]),
             helper.make_node("Reshape", ["x", "shape"], ["r"])] + _layer_norm_nodes("r")
    return _model(nodes, [_vi("x", ["B", "S", 16])], [_vi("y", None)], _LN_INITS)


def matmul_transposed_scaled():
    """q @ k.transpose(-1, -2) / sqrt(d): Transpose into MatMul, then a scalar Div."""
    return _model([helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]),
                   helper.make_node("MatMul", ["q", "kt"], ["s"]),
                   helper.make_node("Div", ["s", "scale"], ["y"])],
                  [_vi("q", ["B", 5, 8]), _vi("k", ["B", 5, 8])], [_vi("y", None)],
                  [_init("scale", np.float32(math.sqrt(8)))])


def if_branches():
    """Silero VAD's layout: the network inside If branches (Conv+Relu, Conv+Sigmoid)."""
    def branch(name, act):
        nodes = [helper.make_node("Conv", ["x", f"{name}_w"], [f"{name}_c"], pads=[1, 1]),
                 helper.make_node(act, [f"{name}_c"], [f"{name}_y"])]
        return helper.make_graph(nodes, name, [], [_vi(f"{name}_y", None)],
                                 [_init(f"{name}_w", _weight(4, 4, 3))])
    node = helper.make_node("If", ["flag"], ["y"], then_branch=branch("t", "Relu"),
                            else_branch=branch("e", "Sigmoid"))
    return _model([node], [_vi("x", ["N", 4, 9]), _vi("flag", [], TensorProto.BOOL)],
                  [_vi("y", None)])


def ir3_conv_bn_relu6():
    """An IR 3 export: every initializer also a graph input (constants all the same)."""
    model = conv_bn_relu6()
    for tensor in model.graph.initializer:
        model.graph.input.append(_vi(tensor.name, list(tensor.dims), tensor.data_type))
    model.ir_version = 3
    model.opset_import[0].version = 11
    return model


def view_as_heads():
    """x.view(x.size(0), x.size(1), 4, -1), as the TorchScript exporter writes it (torch's
    ``Shape``/``Gather``/``Unsqueeze``/``Concat`` chain), then a no-op Cast(to=FLOAT)."""
    def dim(i):
        return [helper.make_node("Shape", ["x"], [f"shape{i}"]),
                helper.make_node("Gather", [f"shape{i}", f"i{i}"], [f"d{i}"], axis=0),
                helper.make_node("Unsqueeze", [f"d{i}", "zero"], [f"u{i}"])]
    nodes = dim(0) + dim(1) + [
        helper.make_node("Concat", ["u0", "u1", "heads", "rest"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["r"]),
        helper.make_node("Cast", ["r"], ["rc"], to=F),
        helper.make_node("Relu", ["rc"], ["y"])]
    return _model(nodes, [_vi("x", ["B", "S", 16])], [_vi("y", None)],
                  [_init("i0", np.int64(0)), _init("i1", np.int64(1)),
                   _init("zero", np.array([0], np.int64)), _init("heads", np.array([4], np.int64)),
                   _init("rest", np.array([-1], np.int64))])


def dynamo_module_functions():
    """torch's dynamo exporter (2.1 to 2.5): each nn.Module a model-local function, so the
    Conv and its ReLU6 / SiLU sit in different graphs until the functions are inlined."""
    opsets = [helper.make_opsetid("", 18)]
    relu6 = helper.make_function(
        "pkg.torch", "torch_nn_modules_activation_ReLU6_0", ["x"], ["y"],
        [helper.make_node("Constant", [], ["lo"], value_float=0.0),
         helper.make_node("Constant", [], ["hi"], value_float=6.0),
         helper.make_node("Clip", ["x", "lo", "hi"], ["y"])], opsets)
    silu = helper.make_function(
        "pkg.torch", "torch_nn_modules_activation_SiLU_1", ["x"], ["y"],
        [helper.make_node("Sigmoid", ["x"], ["s"]), helper.make_node("Mul", ["x", "s"], ["y"])],
        opsets)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node(relu6.name, ["c"], ["r"], domain="pkg.torch"),
             helper.make_node("Conv", ["r", "w2"], ["c2"], pads=[1, 1, 1, 1]),
             helper.make_node(silu.name, ["c2"], ["y"], domain="pkg.torch")]
    model = _model(nodes, [_vi("x", ["N", 3, 8, 8])], [_vi("y", None)],
                   [_init("w", _weight(4, 3, 3, 3)), _init("w2", _weight(3, 4, 3, 3))], opset=18)
    model.opset_import.append(helper.make_opsetid("pkg.torch", 1))
    model.functions.extend([relu6, silu])
    return model


def stft_halves():
    """Silero VAD's STFT: ``spec[0:]`` of a computed spectrum (a Slice keeping everything),
    then its real and imaginary halves ``[:, :129]`` and ``[:, 129:]``, squared and summed."""
    big = np.iinfo(np.int64).max
    nodes = [helper.make_node("Relu", ["x"], ["spec"]),
             helper.make_node("Slice", ["spec", "zero", "big", "ax0"], ["all"]),
             helper.make_node("Slice", ["all", "zero", "mid", "ax1"], ["re"]),
             helper.make_node("Slice", ["all", "mid", "big", "ax1"], ["im"]),
             helper.make_node("Mul", ["re", "re"], ["re2"]),
             helper.make_node("Mul", ["im", "im"], ["im2"]),
             helper.make_node("Add", ["re2", "im2"], ["y"])]
    return _model(nodes, [_vi("x", ["N", 258, 4])], [_vi("y", None)],
                  [_init("zero", np.array([0], np.int64)), _init("big", np.array([big])),
                   _init("ax0", np.array([0], np.int64)), _init("ax1", np.array([1], np.int64)),
                   _init("mid", np.array([129], np.int64))])


PATTERNS = {
    "conv_relu": (conv_relu, {"com.microsoft:FusedConv": 1}),
    "conv_bn_relu6": (conv_bn_relu6, {"com.microsoft:FusedConv": 1}),
    "conv_relu6_constant_bounds": (conv_relu6_constant_bounds, {"com.microsoft:FusedConv": 1}),
    "conv_silu": (conv_silu, {"Conv": 1, "com.microsoft:QuickGelu": 1}),
    "silu_swapped": (silu_swapped, {"com.microsoft:QuickGelu": 1}),
    "linear_relu": (linear_relu, {"com.microsoft:FusedGemm": 1}),
    "linear_erf_gelu": (linear_erf_gelu, {"MatMul": 1, "com.microsoft:BiasGelu": 1}),
    "layer_norm": (layer_norm, {"LayerNormalization": 1}),
    "layer_norm_after_computed_reshape": (layer_norm_after_computed_reshape,
                                          {"Shape": 1, "Reshape": 1, "LayerNormalization": 1}),
    "matmul_transposed_scaled": (matmul_transposed_scaled, {"com.microsoft:FusedMatMul": 1}),
    "if_branches": (if_branches, {"If": 1, "com.microsoft:FusedConv": 2}),
    "ir3_conv_bn_relu6": (ir3_conv_bn_relu6, {"com.microsoft:FusedConv": 1}),
    "view_as_heads": (view_as_heads, {"Reshape": 1, "Relu": 1}),
    "stft_halves": (stft_halves, {"Relu": 1, "Split": 1, "Mul": 2, "Add": 1}),
    "dynamo_module_functions": (dynamo_module_functions,
                                {"com.microsoft:FusedConv": 1, "Conv": 1,
                                 "com.microsoft:QuickGelu": 1}),
}


def _feeds(session):
    feeds = {}
    for arg in session.get_inputs():
        shape = [2 if not isinstance(d, int) else d for d in arg.shape]
        if arg.type == "tensor(bool)":
            feeds[arg.name] = np.array(True)
        else:
            feeds[arg.name] = (RNG.standard_normal(shape) * 4).astype(np.float32)
    return feeds


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_fused_ops_match_onnxruntime(name, tmp_path):
    build, expected = PATTERNS[name]
    model = build().SerializeToString()
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.optimized_model_filepath = str(tmp_path / "ort.onnx")
    ours = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    rso = onnxruntime.SessionOptions()
    rso.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    rso.optimized_model_filepath = str(tmp_path / "onnxruntime.onnx")
    rso.log_severity_level = 3
    theirs = onnxruntime.InferenceSession(model, rso, providers=["CPUExecutionProvider"])

    mine = _histogram(onnx.load(str(tmp_path / "ort.onnx")))
    reference = _histogram(onnx.load(str(tmp_path / "onnxruntime.onnx")))
    assert mine == reference == Counter(expected)

    feeds = _feeds(theirs)
    flags = [True, False] if "flag" in feeds else [None]
    for flag in flags:
        if flag is not None:
            feeds["flag"] = np.array(flag)
        for got, want in zip(ours.run(None, feeds), theirs.run(None, feeds)):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
