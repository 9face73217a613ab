"""Level-2 (ORT_ENABLE_EXTENDED) fusions: each pattern on a small model, the contrib ops they
produce, the passes' restraint (no kernel, wrong constants, shared intermediates), and the
generated ResNet/BERT/MLP models end to end at every level (outputs, saved model validity,
node counts, the fusions that fire, parity with onnxruntime's own optimizer and runtime)."""

from __future__ import annotations

import importlib.util
import math
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import ort
from ort.optimizer import OptimizerContext, optimize_model

F = TensorProto.FLOAT
MS = "com.microsoft"
LEVELS = [ort.GraphOptimizationLevel.ORT_DISABLE_ALL, ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
          ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, ort.GraphOptimizationLevel.ORT_ENABLE_ALL]
EXTENDED = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
RNG = np.random.default_rng(21)


def _session(model, level, path=None):
    so = ort.SessionOptions()
    so.graph_optimization_level = level
    if path:
        so.optimized_model_filepath = str(path)
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def _ops(model):
    model = getattr(model, "_optimized_model", model)
    return Counter((f"{n.domain}:" if n.domain else "") + n.op_type for n in model.graph.node)


def _check_saved(model):
    ms = any(n.domain == MS for n in model.graph.node)
    onnx.checker.check_model(model, full_check=not ms)
    if ms:
        assert any(o.domain == MS and o.version == 1 for o in model.opset_import)


def _fused(model, feeds, level=EXTENDED, rtol=1e-4, atol=1e-5):
    """Level 0 vs ``level``: equal outputs, valid saved model; returns the optimized model."""
    want = _session(model, ort.GraphOptimizationLevel.ORT_DISABLE_ALL).run(None, feeds)
    sess = _session(model, level)
    for got, expected in zip(sess.run(None, feeds), want):
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol)
    _check_saved(sess._optimized_model)
    return sess._optimized_model


def _model(nodes, inputs, outputs, inits=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=9)


def _init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def _vi(name, shape, elem=F):
    return helper.make_tensor_value_info(name, elem, shape)


def _rand(*shape, scale=1.0):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


# ------------------------------------------------------------------------------------------
# Conv and Gemm activations
# ------------------------------------------------------------------------------------------

ACTIVATIONS = [
    (helper.make_node("Relu", ["c"], ["y"]), [], 17),
    (helper.make_node("Sigmoid", ["c"], ["y"]), [], 17),
    (helper.make_node("Tanh", ["c"], ["y"]), [], 17),
    (helper.make_node("LeakyRelu", ["c"], ["y"], alpha=0.2), [], 17),
    (helper.make_node("HardSigmoid", ["c"], ["y"], alpha=0.3, beta=0.4), [], 17),
    (helper.make_node("Clip", ["c", "lo", "hi"], ["y"]),
     [_init("lo", np.float32(-0.5)), _init("hi", np.float32(0.5))], 17),
    (helper.make_node("Clip", ["c", "", "hi"], ["y"]), [_init("hi", np.float32(0.5))], 17),
    (helper.make_node("Clip", ["c"], ["y"], min=-0.25, max=0.75), [], 10),
]


@pytest.mark.parametrize("act,inits,opset", ACTIVATIONS,
                         ids=lambda v: getattr(v, "op_type", None) or str(v)[:6])
def test_conv_activation_becomes_fused_conv(act, inits, opset):
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["c"], pads=[1, 1, 1, 1]), act]
    model = _model(nodes, [_vi("x", [1, 2, 5, 5])], [_vi("y", None)],
                   [_init("W", _rand(3, 2, 3, 3)), _init("B", _rand(3))] + inits, opset)
    optimized = _fused(model, {"x": _rand(1, 2, 5, 5)})
    assert _ops(optimized) == {f"{MS}:FusedConv": 1}
    fused = optimized.graph.node[0]
    assert helper.get_attribute_value(fused.attribute[0]) == act.op_type.encode()


def test_conv_add_relu_becomes_fused_conv_with_sum_input():
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["z", "c"], ["s"]), helper.make_node("Relu", ["s"], ["y"])]
    model = _model(nodes, [_vi("x", ["n", 2, 5, 5]), _vi("z", ["n", 3, 5, 5])],
                   [_vi("y", None)], [_init("W", _rand(3, 2, 3, 3))])
    optimized = _fused(model, {"x": _rand(2, 2, 5, 5), "z": _rand(2, 3, 5, 5)})
    assert _ops(optimized) == {f"{MS}:FusedConv": 1}
    assert list(optimized.graph.node[0].input) == ["x", "W", "", "z"]


def test_conv_activation_is_not_fused_without_a_kernel_or_when_shared():
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"]), helper.make_node("Relu", ["c"], ["y"])]
    model = _model(nodes, [_vi("x", [1, 2, 5, 5])], [_vi("y", None), _vi("c", None)],
                   [_init("W", _rand(3, 2, 3, 3))])
    assert _ops(_session(model, EXTENDED)) == {"Conv": 1, "Relu": 1}  # c is a graph output
    del model.graph.output[1]
    no_contrib = OptimizerContext(has_kernel=lambda domain, op, version: domain != MS)
    assert _ops(optimize_model(model, 2, no_contrib)) == {"Conv": 1, "Relu": 1}


@pytest.mark.parametrize("c_shape,fused", [((4,), True), ((3, 1), True), ((), True),
                                           ((3, 4), True), ((2, 3, 4), False)])
def test_matmul_add_becomes_gemm_when_c_broadcasts_to_the_product(c_shape, fused):
    nodes = [helper.make_node("MatMul", ["a", "B"], ["m"]),
             helper.make_node("Add", ["m", "C"], ["y"])]
    model = _model(nodes, [_vi("a", [3, 5])], [_vi("y", None)],
                   [_init("B", _rand(5, 4)), _init("C", _rand(*c_shape))])
    optimized = _fused(model, {"a": _rand(3, 5)})
    assert _ops(optimized) == ({"Gemm": 1} if fused else {"MatMul": 1, "Add": 1})


def test_matmul_add_of_a_3d_input_stays():
    nodes = [helper.make_node("MatMul", ["a", "B"], ["m"]),
             helper.make_node("Add", ["C", "m"], ["y"])]
    model = _model(nodes, [_vi("a", [2, 3, 5])], [_vi("y", None)],
                   [_init("B", _rand(5, 4)), _init("C", _rand(4))])
    assert _ops(_fused(model, {"a": _rand(2, 3, 5)})) == {"MatMul": 1, "Add": 1}


@pytest.mark.parametrize("act", [helper.make_node("Relu", ["g"], ["y"]),
                                 helper.make_node("LeakyRelu", ["g"], ["y"], alpha=0.3),
                                 helper.make_node("Elu", ["g"], ["y"], alpha=0.5),
                                 helper.make_node("Tanh", ["g"], ["y"])],
                         ids=lambda n: n.op_type)
def test_gemm_activation_becomes_fused_gemm(act):
    nodes = [helper.make_node("Gemm", ["a", "B", "C"], ["g"], transB=1, alpha=0.5), act]
    model = _model(nodes, [_vi("a", [3, 5])], [_vi("y", None)],
                   [_init("B", _rand(4, 5)), _init("C", _rand(4))])
    assert _ops(_fused(model, {"a": _rand(3, 5)})) == {f"{MS}:FusedGemm": 1}


# ------------------------------------------------------------------------------------------
# Gelu
# ------------------------------------------------------------------------------------------


def _gelu_nodes(variant):
    """The erf GELU of 'x' into 'y' in one of the forms exporters write."""
    scaled = (helper.make_node("Mul", ["x", "inv_sqrt2"], ["d"]) if variant == "mul_scale"
              else helper.make_node("Div", ["x", "sqrt2"], ["d"]))
    core = [scaled, helper.make_node("Erf", ["d"], ["e"]),
            helper.make_node("Add", ["one", "e"], ["s"])]
    if variant in ("x_s_half", "mul_scale"):
        tail = [helper.make_node("Mul", ["x", "s"], ["m"]),
                helper.make_node("Mul", ["m", "half"], ["y"])]
    elif variant == "half_x_s":
        tail = [helper.make_node("Mul", ["half", "x"], ["h"]),
                helper.make_node("Mul", ["h", "s"], ["y"])]
    else:  # x * (s * 0.5)
        tail = [helper.make_node("Mul", ["s", "half"], ["t"]),
                helper.make_node("Mul", ["x", "t"], ["y"])]
    return core + tail


GELU_CONSTANTS = [_init("sqrt2", np.float32(math.sqrt(2))),
                  _init("inv_sqrt2", np.float32(1 / math.sqrt(2))),
                  _init("one", np.float32(1)), _init("half", np.float32(0.5))]


@pytest.mark.parametrize("variant", ["x_s_half", "half_x_s", "x_s_times_half", "mul_scale"])
def test_erf_gelu_variants_become_gelu(variant):
    model = _model(_gelu_nodes(variant), [_vi("x", [2, 8])], [_vi("y", None)], GELU_CONSTANTS)
    assert _ops(_fused(model, {"x": _rand(2, 8, scale=3)})) == {f"{MS}:Gelu": 1}


def test_gelu_is_the_onnx_op_from_opset_20():
    model = _model(_gelu_nodes("x_s_half"), [_vi("x", [2, 8])], [_vi("y", None)],
                   GELU_CONSTANTS, opset=20)
    assert _ops(_fused(model, {"x": _rand(2, 8)})) == {"Gelu": 1}


def test_gelu_with_a_wrong_constant_is_not_fused():
    constants = GELU_CONSTANTS[1:] + [_init("sqrt2", np.float32(1.5))]
    model = _model(_gelu_nodes("x_s_half"), [_vi("x", [2, 8])], [_vi("y", None)], constants)
    assert "Erf" in _ops(_fused(model, {"x": _rand(2, 8)}))


def test_bias_add_before_gelu_becomes_bias_gelu():
    nodes = [helper.make_node("MatMul", ["a", "W"], ["p"]),
             helper.make_node("Add", ["bias", "p"], ["x"])] + _gelu_nodes("x_s_half")
    model = _model(nodes, [_vi("a", [2, 3, 4])], [_vi("y", None)],
                   [_init("W", _rand(4, 8)), _init("bias", _rand(8))] + GELU_CONSTANTS)
    assert _ops(_fused(model, {"a": _rand(2, 3, 4)})) == {"MatMul": 1, f"{MS}:BiasGelu": 1}


@pytest.mark.parametrize("cube", ["pow", "mul"])
def test_tanh_gelu_becomes_fast_gelu(cube):
    if cube == "pow":
        cubed = [helper.make_node("Pow", ["x", "three"], ["x3"])]
    else:
        cubed = [helper.make_node("Mul", ["x", "x"], ["x2"]),
                 helper.make_node("Mul", ["x2", "x"], ["x3"])]
    nodes = cubed + [helper.make_node("Mul", ["x3", "k"], ["kx3"]),
                     helper.make_node("Add", ["x", "kx3"], ["inner"]),
                     helper.make_node("Mul", ["inner", "c"], ["scaled"]),
                     helper.make_node("Tanh", ["scaled"], ["t"]),
                     helper.make_node("Add", ["t", "one"], ["s"]),
                     helper.make_node("Mul", ["x", "half"], ["h"]),
                     helper.make_node("Mul", ["h", "s"], ["y"])]
    constants = [_init("three", np.float32(3)), _init("k", np.float32(0.044715)),
                 _init("c", np.float32(math.sqrt(2 / math.pi))), _init("one", np.float32(1)),
                 _init("half", np.float32(0.5))]
    model = _model(nodes, [_vi("x", [2, 8])], [_vi("y", None)], constants)
    assert _ops(_fused(model, {"x": _rand(2, 8, scale=3)})) == {f"{MS}:FastGelu": 1}


# ------------------------------------------------------------------------------------------
# LayerNormalization, SkipLayerNormalization
# ------------------------------------------------------------------------------------------


def _decomposed_ln(x="x", out="y", eps=1e-5, power=2.0, affine=True, opset=17):
    reduce = {"axes": [-1]} if opset < 18 else {}
    axes_input = [] if opset < 18 else ["axes"]
    nodes = [helper.make_node("ReduceMean", [x] + axes_input, ["mean"], **reduce),
             helper.make_node("Sub", [x, "mean"], ["d"]),
             helper.make_node("Pow", ["d", "p"], ["sq"]),
             helper.make_node("ReduceMean", ["sq"] + axes_input, ["var"], **reduce),
             helper.make_node("Add", ["var", "eps"], ["ve"]),
             helper.make_node("Sqrt", ["ve"], ["std"]),
             helper.make_node("Div", ["d", "std"], ["n" if affine else out])]
    if affine:
        nodes += [helper.make_node("Mul", ["n", "gamma"], ["g"]),
                  helper.make_node("Add", ["g", "beta"], [out])]
    inits = [_init("p", np.float32(power)), _init("eps", np.float32(eps)),
             _init("gamma", _rand(8)), _init("beta", _rand(8))]
    if opset >= 18:
        inits.append(_init("axes", np.array([-1], np.int64)))
    return nodes, inits


@pytest.mark.parametrize("opset,affine,expected", [
    (17, True, "LayerNormalization"), (18, False, "LayerNormalization"),
    (13, True, f"{MS}:LayerNormalization")])
def test_decomposed_layer_norm_becomes_layer_normalization(opset, affine, expected):
    nodes, inits = _decomposed_ln(affine=affine, opset=opset)
    model = _model(nodes, [_vi("x", ["n", 3, 8])], [_vi("y", None)], inits, opset)
    assert _ops(_fused(model, {"x": _rand(2, 3, 8, scale=2)})) == {expected: 1}


def test_layer_norm_of_a_value_of_unknown_shape_takes_the_size_from_its_scale():
    """Paddle exports reshape to a computed target before the norm, so the input's dims are
    unknown: the 1-D scale (gamma) gives the normalized size, as onnxruntime fuses it."""
    nodes, inits = _decomposed_ln(x="r", opset=17)
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Reshape", ["x", "s"], ["r"])] + nodes
    model = _model(nodes, [_vi("x", ["n", 3, 8])], [_vi("y", None)], inits, 17)
    assert _ops(_fused(model, {"x": _rand(2, 3, 8, scale=2)})) == {
        "Shape": 1, "Reshape": 1, "LayerNormalization": 1}
    no_scale, inits = _decomposed_ln(x="r", affine=False, opset=17)
    model = _model(nodes[:2] + no_scale, [_vi("x", ["n", 3, 8])], [_vi("y", None)], inits, 17)
    assert "ReduceMean" in _ops(_fused(model, {"x": _rand(2, 3, 8)}))  # nothing tells the size


def test_layer_norm_with_another_exponent_is_not_fused():
    nodes, inits = _decomposed_ln(power=3.0)
    model = _model(nodes, [_vi("x", [2, 3, 8])], [_vi("y", None)], inits)
    assert "ReduceMean" in _ops(_fused(model, {"x": _rand(2, 3, 8)}))


def _skip_ln_model(sum_is_read_elsewhere=False):
    nodes = [helper.make_node("MatMul", ["a", "W"], ["p"]),
             helper.make_node("Add", ["p", "bias"], ["dense"]),
             helper.make_node("Add", ["dense", "a"], ["res"]),
             helper.make_node("LayerNormalization", ["res", "gamma", "beta"], ["y"],
                              epsilon=1e-6)]
    outputs = [_vi("y", None)]
    if sum_is_read_elsewhere:
        nodes.append(helper.make_node("Neg", ["res"], ["z"]))
        outputs.append(_vi("z", None))
    return _model(nodes, [_vi("a", ["b", "s", 8])], outputs,
                  [_init("W", _rand(8, 8)), _init("bias", _rand(8)), _init("gamma", _rand(8)),
                   _init("beta", _rand(8))])


def test_add_before_layer_norm_becomes_skip_layer_norm_with_the_bias():
    optimized = _fused(_skip_ln_model(), {"a": _rand(2, 3, 8)})
    assert _ops(optimized) == {"MatMul": 1, f"{MS}:SkipLayerNormalization": 1}
    skip_ln = optimized.graph.node[-1]
    assert list(skip_ln.input) == ["p", "a", "gamma", "beta", "bias"]


def test_skip_layer_norm_feeds_other_readers_of_the_sum():
    optimized = _fused(_skip_ln_model(True), {"a": _rand(2, 3, 8)})
    skip_ln = next(n for n in optimized.graph.node if n.op_type == "SkipLayerNormalization")
    assert list(skip_ln.output) == ["y", "", "", "res"]


def test_skip_layer_norm_leaves_a_sum_that_computes_the_scale():
    """The LayerNorm's scale is computed from the sum itself (whisper's exported encoder
    does so through CastLike): a fused node whose own sum output fed its scale would be a
    cycle, so the Add stays."""
    model = _skip_ln_model()
    nodes = list(model.graph.node)
    nodes[-1].input[1] = "gamma_scaled"
    nodes.insert(3, helper.make_node("ReduceMax", ["res"], ["peak"], keepdims=0))
    nodes.insert(4, helper.make_node("Mul", ["gamma", "peak"], ["gamma_scaled"]))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    optimized = _fused(model, {"a": _rand(2, 3, 8)})
    assert f"{MS}:SkipLayerNormalization" not in _ops(optimized)


# ------------------------------------------------------------------------------------------
# the generated models end to end
# ------------------------------------------------------------------------------------------


def _load_generator():
    path = Path(__file__).resolve().parents[2] / "tests" / "models" / "generate.py"
    if not path.exists():
        pytest.skip("tests/models/generate.py is not in this checkout")
    name = "ort_tests_models_generate"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _feeds(name, batch=2, seq=7):
    rng = np.random.default_rng(0)
    if name == "resnet_cnn":
        return {"input": rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)}
    if name == "mlp":
        return {"input": rng.standard_normal((batch, 20)).astype(np.float32)}
    mask = np.ones((batch, seq), np.int64)
    mask[-1, seq - 2:] = 0
    return {"input_ids": rng.integers(0, 100, (batch, seq)), "attention_mask": mask,
            "token_type_ids": rng.integers(0, 2, (batch, seq))}


#: op counts at ORT_ENABLE_EXTENDED / ALL: fusions that must fire, ops that must be gone.
EXPECTED = {
    "resnet_cnn": ({f"{MS}:FusedConv": 5, "Conv": 1}, ["BatchNormalization", "Relu", "Add"]),
    "bert_encoder": ({f"{MS}:Attention": 2, f"{MS}:SkipLayerNormalization": 4,
                      f"{MS}:BiasGelu": 2, f"{MS}:FusedGemm": 1, "LayerNormalization": 1},
                     ["Softmax", "Erf", "ReduceMean", "Transpose", "Reshape", "Tanh"]),
    "mlp": ({f"{MS}:FusedGemm": 2, "Gemm": 1}, ["MatMul", "Add", "Relu"]),
}


@pytest.mark.parametrize("name", ["resnet_cnn", "bert_encoder", "mlp"])
def test_generated_models_at_every_level(name, tmp_path):
    generate = _load_generator()
    model = getattr(generate, name)()
    feeds = _feeds(name)
    want = None
    counts = []
    for level in LEVELS:
        path = tmp_path / f"{name}_{int(level)}.onnx"
        outputs = _session(model, level, path).run(None, feeds)
        if want is None:
            want = outputs
        for got, expected in zip(outputs, want):
            np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
        saved = onnx.load(str(path))
        _check_saved(saved)
        counts.append(len(saved.graph.node))
        if level >= EXTENDED:
            ops = _ops(saved)
            fired, gone = EXPECTED[name]
            assert {op: ops[op] for op in fired} == fired
            assert not any(ops[op] for op in gone)
    assert counts == sorted(counts, reverse=True) and counts[2] < counts[0], counts
    assert counts[2] == counts[3]


def test_static_shape_bert_folds_its_shape_chains_and_still_fuses():
    generate = _load_generator()
    model = generate.bert_encoder(batch=2, seq=7)
    optimized = _fused(model, _feeds("bert_encoder"), ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    ops = _ops(optimized)
    assert ops[f"{MS}:Attention"] == 2 and ops[f"{MS}:SkipLayerNormalization"] == 4
    assert "Shape" not in ops


onnxruntime = pytest.importorskip("onnxruntime")


def test_cnn_fusions_agree_with_onnxruntimes_own_optimizer(tmp_path):
    generate = _load_generator()
    model = generate.resnet_cnn()
    so = onnxruntime.SessionOptions()
    so.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.optimized_model_filepath = str(tmp_path / "onnxruntime.onnx")
    onnxruntime.InferenceSession(model.SerializeToString(), so,
                                 providers=["CPUExecutionProvider"])
    theirs = _ops(onnx.load(so.optimized_model_filepath))
    ours = _ops(_session(model, ort.GraphOptimizationLevel.ORT_ENABLE_ALL))
    assert theirs[f"{MS}:FusedConv"] and ours[f"{MS}:FusedConv"] >= theirs[f"{MS}:FusedConv"]
    assert not theirs["BatchNormalization"] and not ours["BatchNormalization"]
    assert set(ours) <= set(theirs)  # ours also folds the residual Add+Relu into FusedConv
    assert sum(ours.values()) <= sum(theirs.values())


@pytest.mark.parametrize("name", ["resnet_cnn", "bert_encoder", "mlp"])
def test_onnxruntime_runs_our_optimized_models_to_the_same_outputs(name, tmp_path):
    generate = _load_generator()
    model = generate.__dict__[name]()
    feeds = _feeds(name)
    path = tmp_path / "optimized.onnx"
    ours = _session(model, ort.GraphOptimizationLevel.ORT_ENABLE_ALL, path).run(None, feeds)
    so = onnxruntime.SessionOptions()
    so.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    theirs = onnxruntime.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    for got, want in zip(theirs.run(None, feeds), ours):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_attention_with_an_intermediate_graph_output_is_left_alone():
    generate = _load_generator()
    model = generate.bert_encoder()
    softmax = next(n for n in model.graph.node if n.op_type == "Softmax")
    model.graph.output.append(helper.make_tensor_value_info(softmax.output[0], F, None))
    optimized = _fused(model, _feeds("bert_encoder"), ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    assert _ops(optimized)[f"{MS}:Attention"] == 1 and _ops(optimized)["Softmax"] == 1


def test_no_contrib_op_is_produced_without_a_kernel_for_it():
    generate = _load_generator()
    context = OptimizerContext(has_kernel=lambda domain, op, version: domain != MS)
    optimized = optimize_model(generate.bert_encoder(), 99, context)
    assert not any(n.domain == MS for n in optimized.graph.node)
    assert not any(o.domain == MS for o in optimized.opset_import)
    onnx.checker.check_model(optimized, full_check=True)


def test_conv_add_without_activation_becomes_fused_conv_that_onnxruntime_runs():
    """MobileNetV2's residual: Conv -> Add(skip), no activation after it."""
    import onnxruntime

    w = _init("W", _rand(4, 4, 3, 3, scale=0.3))
    b = _init("B", _rand(4))
    nodes = [helper.make_node("Conv", ["X", "W", "B"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["c", "X"], ["Y"])]
    model = _model(nodes, [_vi("X", [2, 4, 5, 5])], [_vi("Y", [2, 4, 5, 5])], [w, b])
    x = _rand(2, 4, 5, 5)
    optimized = _fused(model, {"X": x})
    assert _ops(optimized) == Counter({"com.microsoft:FusedConv": 1})
    fused = optimized.graph.node[0]
    assert not any(a.name == "activation" for a in fused.attribute)
    theirs = onnxruntime.InferenceSession(optimized.SerializeToString(),
                                          providers=["CPUExecutionProvider"]).run(None, {"X": x})
    ours = _session(model, ort.GraphOptimizationLevel.ORT_DISABLE_ALL).run(None, {"X": x})
    np.testing.assert_allclose(theirs[0], ours[0], rtol=1e-4, atol=1e-5)
