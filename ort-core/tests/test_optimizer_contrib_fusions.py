"""Level-2 fusions into the contrib ops of Llama-style models: SiLU -> QuickGelu, RMSNorm ->
SimplifiedLayerNormalization, Add + RMSNorm -> SkipSimplifiedLayerNormalization.

Each pattern is checked in the forms torch exports, against near misses that must stay
unfused (other readers of an intermediate, wrong constants, non-trailing axes), and end to
end: the rewritten model runs on onnxruntime to the outputs ort computes unoptimized, and a
session fuses exactly when the CPU provider has the kernel."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

import ort
from ort.ep import get_registry
from ort.optimizer import OptimizerContext, optimize_model

F, F16 = TensorProto.FLOAT, TensorProto.FLOAT16
MS = "com.microsoft"
RNG = np.random.default_rng(7)
EVERY_KERNEL = OptimizerContext(has_kernel=lambda domain, op, version: True)


def _model(nodes, inputs, outputs, inits=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=9)


def _init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def _vi(name, shape, elem=F):
    return helper.make_tensor_value_info(name, elem, shape)


def _rand(*shape, scale=1.0, dtype=np.float32):
    return (RNG.standard_normal(shape) * scale).astype(dtype)


def _ops(model):
    return Counter((f"{n.domain}:" if n.domain else "") + n.op_type for n in model.graph.node)


def _optimize(model, context=EVERY_KERNEL):
    """``model`` with its types inferred (as a session does first), optimized at level 2."""
    return optimize_model(onnx.shape_inference.infer_shapes(model), 2, context)


def _reference(model, feeds):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), so).run(None, feeds)


def _rewritten(model, feeds, rtol=1e-4, atol=1e-5):
    """``model`` optimized for a provider with every kernel; checks that onnxruntime (with
    its own optimizer off) runs the result to the outputs ort computes for ``model``."""
    optimized = _optimize(model)
    so = onnxruntime.SessionOptions()
    so.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    theirs = onnxruntime.InferenceSession(optimized.SerializeToString(), so,
                                          providers=["CPUExecutionProvider"])
    for got, want in zip(theirs.run(None, feeds), _reference(model, feeds)):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
    return optimized


def _cpu_has(domain, op):
    return get_registry().lookup("CPUExecutionProvider", domain, op, 1, []) is not None


def _session_fuses(model, feeds, domain, op, rtol=1e-4, atol=1e-5):
    """A level-2 ort session fuses into ``op`` exactly when the CPU provider has its kernel,
    and computes the unoptimized outputs either way."""
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    sess = ort.InferenceSession(model.SerializeToString(), so)
    for got, want in zip(sess.run(None, feeds), _reference(model, feeds)):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
    name = f"{domain}:{op}" if domain else op
    assert (_ops(sess._optimized_model)[name] > 0) == _cpu_has(domain, op)


# ------------------------------------------------------------------------------------------
# SiLU -> QuickGelu
# ------------------------------------------------------------------------------------------


def _silu(alpha=None, alpha_first=False, extra_reader=None):
    nodes = [helper.make_node("MatMul", ["a", "W"], ["x"])]
    inits = [_init("W", _rand(8, 8))]
    s_in = "x"
    if alpha is not None:
        inits.append(_init("alpha", np.asarray(alpha, np.float32)))
        operands = ["alpha", "x"] if alpha_first else ["x", "alpha"]
        nodes.append(helper.make_node("Mul", operands, ["ax"]))
        s_in = "ax"
    nodes += [helper.make_node("Sigmoid", [s_in], ["s"]),
              helper.make_node("Mul", ["s", "x"], ["y"])]
    outputs = [_vi("y", None)]
    if extra_reader:
        nodes.append(helper.make_node("Neg", [extra_reader], ["z"]))
        outputs.append(_vi("z", None))
    return _model(nodes, [_vi("a", ["b", 3, 8])], outputs, inits)


@pytest.mark.parametrize("alpha,alpha_first,expected", [
    (None, False, 1.0), (1.702, False, 1.702), (1.702, True, 1.702), ([0.5], False, 0.5)])
def test_silu_and_scaled_sigmoid_become_quick_gelu(alpha, alpha_first, expected):
    optimized = _rewritten(_silu(alpha, alpha_first), {"a": _rand(2, 3, 8)})
    assert _ops(optimized) == {"MatMul": 1, f"{MS}:QuickGelu": 1}
    node = optimized.graph.node[-1]
    assert list(node.input) == ["x"] and list(node.output) == ["y"]
    assert helper.get_attribute_value(node.attribute[0]) == pytest.approx(expected)


def test_quick_gelu_reads_alpha_through_castlike():
    nodes = [helper.make_node("CastLike", ["alpha", "x"], ["alpha_c"]),
             helper.make_node("Mul", ["x", "alpha_c"], ["ax"]),
             helper.make_node("Sigmoid", ["ax"], ["s"]), helper.make_node("Mul", ["x", "s"], ["y"])]
    model = _model(nodes, [_vi("x", [2, 8])], [_vi("y", None)], [_init("alpha", np.float64(1.702))])
    optimized = _rewritten(model, {"x": _rand(2, 8)})
    assert _ops(optimized) == {f"{MS}:QuickGelu": 1}


@pytest.mark.parametrize("reader", ["s", "ax"])
def test_quick_gelu_leaves_intermediates_read_elsewhere(reader):
    optimized = _rewritten(_silu(1.702, extra_reader=reader), {"a": _rand(2, 3, 8)})
    if reader == "s":
        assert f"{MS}:QuickGelu" not in _ops(optimized)
    else:  # the scaled input survives: QuickGelu(ax) is not x * Sigmoid(ax)
        assert _ops(optimized)[f"{MS}:QuickGelu"] == 0 and _ops(optimized)["Sigmoid"] == 1


def test_quick_gelu_needs_a_scalar_alpha_and_the_same_x():
    model = _silu([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    assert "Sigmoid" in _ops(_rewritten(model, {"a": _rand(2, 3, 8)}))
    nodes = [helper.make_node("Sigmoid", ["x"], ["s"]), helper.make_node("Mul", ["s", "u"], ["y"])]
    model = _model(nodes, [_vi("x", [2, 8]), _vi("u", [2, 8])], [_vi("y", None)])
    assert _ops(_optimize(model)) == {"Sigmoid": 1, "Mul": 1}


def test_quick_gelu_without_a_kernel_or_on_float16_is_not_produced():
    no_contrib = OptimizerContext(has_kernel=lambda domain, op, version: domain != MS)
    assert "Sigmoid" in _ops(_optimize(_silu(), no_contrib))
    nodes = [helper.make_node("Sigmoid", ["x"], ["s"]), helper.make_node("Mul", ["x", "s"], ["y"])]
    model = _model(nodes, [_vi("x", [2, 8], F16)], [_vi("y", None, F16)])
    assert _ops(_optimize(model)) == {"Sigmoid": 1, "Mul": 1}


def test_session_fuses_silu_when_the_cpu_provider_has_quick_gelu():
    _session_fuses(_silu(), {"a": _rand(2, 3, 8)}, MS, "QuickGelu")


# ------------------------------------------------------------------------------------------
# RMSNorm -> SimplifiedLayerNormalization
# ------------------------------------------------------------------------------------------


def _rms_nodes(x="x", out="y", variant="div", eps=1e-6, power=2.0, cast_in=False,
               cast_out=None, scale="w", opset=17, axes=(-1,), prefix=""):
    """torch's RMSNorm: (x.float() * rsqrt(mean(x.float()^2) + eps)).to(dtype) * w."""
    p = prefix
    nodes, inits = [], [_init(f"{p}p", np.float32(power)), _init(f"{p}eps", np.float32(eps)),
                        _init(f"{p}one", np.float32(1.0))]
    x0 = x
    if cast_in:
        nodes.append(helper.make_node("Cast", [x], [f"{p}x0"], to=F))
        x0 = f"{p}x0"
    if variant == "square_mul":
        nodes.append(helper.make_node("Mul", [x0, x0], [f"{p}sq"]))
    else:
        nodes.append(helper.make_node("Pow", [x0, f"{p}p"], [f"{p}sq"]))
    if opset >= 18:
        inits.append(_init(f"{p}axes", np.array(axes, np.int64)))
        nodes.append(helper.make_node("ReduceMean", [f"{p}sq", f"{p}axes"], [f"{p}ms"]))
    else:
        nodes.append(helper.make_node("ReduceMean", [f"{p}sq"], [f"{p}ms"], axes=list(axes)))
    nodes += [helper.make_node("Add", [f"{p}ms", f"{p}eps"], [f"{p}ve"]),
              helper.make_node("Sqrt", [f"{p}ve"], [f"{p}std"])]
    if variant == "reciprocal":
        nodes += [helper.make_node("Reciprocal", [f"{p}std"], [f"{p}r"]),
                  helper.make_node("Mul", [x0, f"{p}r"], [f"{p}n"])]
    elif variant == "one_over":
        nodes += [helper.make_node("Div", [f"{p}one", f"{p}std"], [f"{p}r"]),
                  helper.make_node("Mul", [f"{p}r", x0], [f"{p}n"])]
    else:
        nodes.append(helper.make_node("Div", [x0, f"{p}std"], [f"{p}n"]))
    n = f"{p}n"
    if cast_out is not None:
        nodes.append(helper.make_node("Cast", [n], [f"{p}nc"], to=cast_out))
        n = f"{p}nc"
    if scale:
        nodes.append(helper.make_node("Mul", [scale, n], [out]))
    else:
        nodes.append(helper.make_node("Identity", [n], [out]))
    return nodes, inits


def _rms_model(elem=F, hidden=8, scale_shape=None, extra_reader=None, shape=("b", "s"),
               **kw):
    nodes, inits = _rms_nodes(**kw)
    scale_type = kw.get("cast_out") or F
    w = _rand(*(scale_shape or (hidden,)), dtype=helper.tensor_dtype_to_np_dtype(scale_type))
    inits.append(_init("w", w))
    outputs = [_vi("y", None, scale_type)]
    if extra_reader:
        nodes.append(helper.make_node("Identity", [extra_reader], ["z"]))
        outputs.append(_vi("z", None))
    return _model(nodes, [_vi("x", [*shape, hidden], elem)], outputs, inits,
                  kw.get("opset", 17))


@pytest.mark.parametrize("kw", [
    {}, {"variant": "reciprocal"}, {"variant": "one_over"}, {"variant": "square_mul"},
    {"opset": 18}, {"cast_in": True, "cast_out": F}, {"axes": (2,)},
    {"scale": ""}], ids=str)
def test_rms_norm_forms_become_simplified_layer_norm(kw):
    optimized = _rewritten(_rms_model(**kw), {"x": _rand(2, 3, 8, scale=3)})
    rest = {"Identity": 1} if kw.get("scale") == "" else {}  # the model's own output node
    assert _ops(optimized) == {"SimplifiedLayerNormalization": 1, **rest}
    node = optimized.graph.node[0]
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    assert attrs["epsilon"] == pytest.approx(1e-6, rel=1e-6) and attrs["axis"] == -1
    assert attrs["stash_type"] == 1 and node.input[0] == "x"
    assert list(node.output) == (["n"] if rest else ["y"])


def test_dynamo_rms_norm_with_castlike_scalars_becomes_simplified_layer_norm():
    """torch's dynamo exporter (and onnxscript) write Python scalars as CastLike(c, x)."""
    nodes = [helper.make_node("CastLike", ["two", "x"], ["two_c"]),
             helper.make_node("Pow", ["x", "two_c"], ["sq"]),
             helper.make_node("ReduceMean", ["sq", "axes"], ["ms"], keepdims=1),
             helper.make_node("CastLike", ["eps", "ms"], ["eps_c"]),
             helper.make_node("Add", ["ms", "eps_c"], ["ve"]),
             helper.make_node("Sqrt", ["ve"], ["std"]),
             helper.make_node("Reciprocal", ["std"], ["r"]),
             helper.make_node("Mul", ["x", "r"], ["n"]),
             helper.make_node("Mul", ["w", "n"], ["y"])]
    inits = [_init("two", np.float64(2.0)), _init("eps", np.float64(1e-5)),
             _init("axes", np.array([-1], np.int64)), _init("w", _rand(8))]
    model = _model(nodes, [_vi("x", [1, 5, 8])], [_vi("y", None)], inits, opset=18)
    optimized = _rewritten(model, {"x": _rand(1, 5, 8)})
    assert _ops(optimized) == {"SimplifiedLayerNormalization": 1}


@pytest.mark.parametrize("cast_out", [F16, F])
def test_rms_norm_of_float16_through_casts_keeps_the_types(cast_out):
    model = _rms_model(elem=F16, cast_in=True, cast_out=cast_out)
    optimized = _rewritten(model, {"x": _rand(2, 3, 8, dtype=np.float16)}, rtol=2e-3, atol=2e-3)
    assert _ops(optimized) == {"SimplifiedLayerNormalization": 1}


def test_rms_norm_over_two_trailing_axes_broadcasts_its_scale():
    model = _rms_model(scale_shape=(8,), axes=(-2, -1), shape=(2, 3))
    optimized = _rewritten(model, {"x": _rand(2, 3, 8)})
    assert _ops(optimized) == {"SimplifiedLayerNormalization": 1}
    name = optimized.graph.node[0].input[1]
    scale = next(t for t in optimized.graph.initializer if t.name == name)
    assert list(scale.dims) == [3, 8]


@pytest.mark.parametrize("kw", [
    {"power": 3.0}, {"axes": (1,)}, {"extra_reader": "std"}, {"extra_reader": "sq"},
    {"axes": (-2, -1)}], ids=str)
def test_inexact_rms_norm_is_left_alone(kw):
    model = _rms_model(**kw)  # axes (-2, -1): the sequence length is not known
    optimized = _rewritten(model, {"x": _rand(2, 3, 8)})
    assert "SimplifiedLayerNormalization" not in _ops(optimized)


def test_a_scale_that_broadcasts_beyond_the_normalized_axes_stays_a_mul():
    model = _rms_model(scale_shape=(2, 1, 8))
    optimized = _rewritten(model, {"x": _rand(2, 3, 8)})
    assert _ops(optimized) == {"SimplifiedLayerNormalization": 1, "Mul": 1}
    assert "w" in optimized.graph.node[-1].input


def test_rms_norm_keeps_a_cast_read_elsewhere_and_needs_known_hidden_size():
    optimized = _rewritten(_rms_model(elem=F16, cast_in=True, extra_reader="x0"),
                           {"x": _rand(2, 3, 8, dtype=np.float16)})
    assert _ops(optimized) == {"Cast": 1, "SimplifiedLayerNormalization": 1, "Identity": 1}
    assert optimized.graph.node[-2].input[0] == "x0" or optimized.graph.node[1].input[0] == "x0"
    model = _rms_model()
    model.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "h"
    assert "Sqrt" in _ops(_optimize(model))


def test_session_fuses_rms_norm_when_the_cpu_provider_has_the_kernel():
    _session_fuses(_rms_model(variant="reciprocal"), {"x": _rand(2, 3, 8)}, "",
                   "SimplifiedLayerNormalization")


# ------------------------------------------------------------------------------------------
# Add + RMSNorm -> SkipSimplifiedLayerNormalization
# ------------------------------------------------------------------------------------------


def _skip_rms_model(sum_read_elsewhere=False, bias=True, shape=("b", 3, 8)):
    nodes = [helper.make_node("MatMul", ["a", "W"], ["p"])]
    dense = "p"
    if bias:
        nodes.append(helper.make_node("Add", ["p", "bias"], ["dense"]))
        dense = "dense"
    nodes.append(helper.make_node("Add", ["a", dense], ["res"]))
    norm, inits = _rms_nodes("res", "y", variant="reciprocal", prefix="rms_")
    nodes += norm
    outputs = [_vi("y", None)]
    if sum_read_elsewhere:
        nodes.append(helper.make_node("Add", ["res", "y"], ["z"]))
        outputs.append(_vi("z", None))
    inits += [_init("W", _rand(8, 8)), _init("bias", _rand(8)), _init("w", _rand(8))]
    return _model(nodes, [_vi("a", list(shape))], outputs, inits)


def test_add_and_rms_norm_become_skip_simplified_layer_norm_with_the_bias():
    optimized = _rewritten(_skip_rms_model(), {"a": _rand(2, 3, 8)})
    assert _ops(optimized) == {"MatMul": 1, f"{MS}:SkipSimplifiedLayerNormalization": 1}
    node = optimized.graph.node[-1]
    assert list(node.input) == ["a", "p", "w", "bias"] and list(node.output) == ["y"]


def test_skip_simplified_layer_norm_feeds_other_readers_of_the_sum():
    optimized = _rewritten(_skip_rms_model(True, bias=False), {"a": _rand(2, 3, 8)})
    node = next(n for n in optimized.graph.node
                if n.op_type == "SkipSimplifiedLayerNormalization")
    assert list(node.output) == ["y", "", "", "res"] and list(node.input) == ["a", "p", "w"]


def test_skip_rms_norm_leaves_a_sum_that_computes_the_scale():
    """The scale is CastLike(w, sum), as the dynamo exporter writes it: the fused node's own
    sum output cannot feed its scale."""
    model = _skip_rms_model(bias=False)
    norm = next(n for n in model.graph.node if n.op_type == "Mul" and "w" in n.input)
    norm.input[list(norm.input).index("w")] = "w_cast"
    model.graph.node.insert(2, helper.make_node("CastLike", ["w", "res"], ["w_cast"]))
    kept = optimize_model(onnx.shape_inference.infer_shapes(model), 2, EVERY_KERNEL,
                          disabled={"CastLikeToCast"})
    assert f"{MS}:SkipSimplifiedLayerNormalization" not in _ops(kept)
    assert _ops(kept)["SimplifiedLayerNormalization"] == 1
    # CastLikeToCast makes the scale a Cast of w, independent of the sum: then it fuses
    optimized = _rewritten(model, {"a": _rand(2, 3, 8)})
    assert _ops(optimized)[f"{MS}:SkipSimplifiedLayerNormalization"] == 1


@pytest.mark.parametrize("shape", [(2, 2, 3, 8), (3, "h")])
def test_skip_rms_norm_needs_rank_2_or_3_and_known_sizes(shape):
    model = _skip_rms_model(shape=shape)
    optimized = _optimize(model)
    assert f"{MS}:SkipSimplifiedLayerNormalization" not in _ops(optimized)


def test_session_fuses_the_residual_add_when_the_cpu_provider_has_the_kernel():
    _session_fuses(_skip_rms_model(True), {"a": _rand(2, 3, 8)}, MS,
                   "SkipSimplifiedLayerNormalization")


# ------------------------------------------------------------------------------------------
# MatMul + scalar scale / Transpose -> FusedMatMul
# ------------------------------------------------------------------------------------------


def _attention_scores(perm=(0, 1, 3, 2), scale_op="Mul", scale=0.125, scale_on="product",
                      k_read_elsewhere=False):
    """Q @ K^T scaled, as attention computes its scores."""
    inits = [_init("c", np.asarray(scale, np.float32))]
    nodes = [helper.make_node("Transpose", ["k"], ["kt"], perm=list(perm))]
    q, product = "q", "s"
    if scale_on == "q":
        nodes.append(helper.make_node(scale_op, ["q", "c"], ["qs"]))
        q, product = "qs", "y"
    nodes.append(helper.make_node("MatMul", [q, "kt"], [product]))
    if scale_on == "product":
        nodes.append(helper.make_node(scale_op, ["s", "c"], ["y"]))
    outputs = [_vi("y", None)]
    if k_read_elsewhere:
        outputs.append(_vi("kt", None))
    return _model(nodes, [_vi("q", [2, 2, 4, 4]), _vi("k", [2, 2, 4, 4])], outputs, inits)


def _fused_matmul_attrs(model):
    node = next(n for n in model.graph.node if n.op_type == "FusedMatMul")
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}, list(node.input)


@pytest.mark.parametrize("scale_op,scale_on,alpha", [
    ("Mul", "product", 0.125), ("Div", "product", 0.5), ("Mul", "q", 0.125), ("Div", "q", 0.5)])
def test_scaled_transposed_matmul_becomes_fused_matmul(scale_op, scale_on, alpha):
    model = _attention_scores(scale_op=scale_op, scale=0.125 if scale_op == "Mul" else 2.0,
                              scale_on=scale_on)
    optimized = _rewritten(model, {"q": _rand(2, 2, 4, 4), "k": _rand(2, 2, 4, 4)})
    assert _ops(optimized) == {f"{MS}:FusedMatMul": 1}
    attrs, inputs = _fused_matmul_attrs(optimized)
    assert attrs == {"alpha": pytest.approx(alpha), "transB": 1} and inputs == ["q", "k"]


@pytest.mark.parametrize("kw", [{"perm": (1, 0, 2, 3)}, {"scale": [0.5, 0.25, 1, 2]},
                                {"k_read_elsewhere": True}], ids=str)
def test_inexact_matmul_operands_stay(kw):
    model = _attention_scores(**kw)
    optimized = _rewritten(model, {"q": _rand(2, 2, 4, 4), "k": _rand(2, 2, 4, 4)})
    ops = _ops(optimized)
    if "scale" in kw:  # the transpose still fuses; the per-column scale stays a Mul
        assert ops == {f"{MS}:FusedMatMul": 1, "Mul": 1}
        assert _fused_matmul_attrs(optimized)[0] == {"alpha": 1.0, "transB": 1}
    else:  # the transpose stays; the scale still fuses
        assert ops == {f"{MS}:FusedMatMul": 1, "Transpose": 1}
        assert _fused_matmul_attrs(optimized)[0] == {"alpha": 0.125}


def test_divisor_first_is_not_a_scale():
    nodes = [helper.make_node("MatMul", ["a", "b"], ["p"]),
             helper.make_node("Div", ["c", "p"], ["y"])]
    model = _model(nodes, [_vi("a", [3, 4]), _vi("b", [4, 2])], [_vi("y", None)],
                   [_init("c", np.float32(2))])
    assert _ops(_optimize(model)) == {"MatMul": 1, "Div": 1}


def test_session_fuses_matmul_scale_when_the_cpu_provider_has_fused_matmul():
    _session_fuses(_attention_scores(), {"q": _rand(2, 2, 4, 4), "k": _rand(2, 2, 4, 4)}, MS,
                   "FusedMatMul")


# ------------------------------------------------------------------------------------------
# CastLike -> Cast (level 1), so dynamo exports' scalars fold and their patterns fuse
# ------------------------------------------------------------------------------------------


def _session_model(model, level):
    so = ort.SessionOptions()
    so.graph_optimization_level = level
    return ort.InferenceSession(model.SerializeToString(), so)


def test_castlike_of_a_constant_folds_at_level_1():
    nodes = [helper.make_node("CastLike", ["c", "x"], ["cc"]),
             helper.make_node("Add", ["x", "cc"], ["y"])]
    model = _model(nodes, [_vi("x", [2, 3], F16)], [_vi("y", None, F16)],
                   [_init("c", np.float64(0.5))])
    x = _rand(2, 3, dtype=np.float16)
    sess = _session_model(model, ort.GraphOptimizationLevel.ORT_ENABLE_BASIC)
    assert _ops(sess._optimized_model) == {"Add": 1}
    np.testing.assert_array_equal(sess.run(None, {"x": x})[0], _reference(model, {"x": x})[0])


def test_castlike_to_an_unknown_type_stays():
    nodes = [helper.make_node("CastLike", ["x", "t"], ["y"])]
    model = _model(nodes, [_vi("x", [2, 3]), helper.make_value_info("t", onnx.TypeProto())],
                   [_vi("y", None)])
    assert _ops(_optimize(model)) == {"CastLike": 1}
    nodes = [helper.make_node("CastLike", ["x", "t"], ["y"])]
    model = _model(nodes, [_vi("x", [2, 3]), _vi("t", [1], F16)], [_vi("y", None, F16)])
    optimized = _optimize(model)
    assert _ops(optimized) == {"Cast": 1}
    assert helper.get_attribute_value(optimized.graph.node[0].attribute[0]) == F16


def test_dynamo_gelu_with_castlike_constants_becomes_gelu():
    """x * 0.5 * (1 + erf(x / sqrt(2))) with each scalar behind CastLike, as whisper's."""
    nodes = [helper.make_node("MatMul", ["a", "W"], ["x"])]
    for name in ("sqrt2", "one", "half"):
        nodes.append(helper.make_node("CastLike", [name, "x"], [f"{name}_c"]))
    nodes += [helper.make_node("Div", ["x", "sqrt2_c"], ["d"]),
              helper.make_node("Erf", ["d"], ["e"]),
              helper.make_node("Add", ["e", "one_c"], ["p"]),
              helper.make_node("Mul", ["x", "p"], ["m"]),
              helper.make_node("Mul", ["m", "half_c"], ["y"])]
    inits = [_init("W", _rand(8, 8)), _init("sqrt2", np.float64(np.sqrt(2))),
             _init("one", np.float64(1)), _init("half", np.float64(0.5))]
    model = _model(nodes, [_vi("a", [2, 8])], [_vi("y", None)], inits, opset=18)
    feeds = {"a": _rand(2, 8)}
    sess = _session_model(model, ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED)
    assert _ops(sess._optimized_model) == {"MatMul": 1, f"{MS}:Gelu": 1}
    np.testing.assert_allclose(sess.run(None, feeds)[0], _reference(model, feeds)[0],
                               rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------
# a Llama-style decoder end to end
# ------------------------------------------------------------------------------------------


def llama_model(layers=2, hidden=64, ffn=172, seq=None, batch=None, seed=0):
    """A Llama-style decoder stack on hidden states, as torch exports it: RMSNorm (Cast,
    Pow, ReduceMean, Add, Sqrt, Reciprocal, Mul, Cast, Mul), one-head attention (MatMul,
    Transpose, scaled MatMul, Softmax), residual Adds and a SiLU-gated MLP."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []

    def weight(name, *shape):
        inits.append(_init(name, (rng.standard_normal(shape) / np.sqrt(shape[0]))
                           .astype(np.float32)))
        return name

    inits.append(_init("attn_scale", np.float32(1 / np.sqrt(hidden))))
    h = "hidden"
    for i in range(layers):
        p = f"l{i}_"
        inits.append(_init(f"{p}ln1_w", (1 + 0.1 * rng.standard_normal(hidden)).astype(np.float32)))
        norm, more = _rms_nodes(h, f"{p}n1", variant="reciprocal", cast_in=True, cast_out=F,
                                scale=f"{p}ln1_w", prefix=f"{p}a_")
        nodes += norm
        inits += more
        q, k, v = (weight(f"{p}w{c}", hidden, hidden) for c in "qkv")
        nodes += [helper.make_node("MatMul", [f"{p}n1", q], [f"{p}q"]),
                  helper.make_node("MatMul", [f"{p}n1", k], [f"{p}k"]),
                  helper.make_node("MatMul", [f"{p}n1", v], [f"{p}v"]),
                  helper.make_node("Transpose", [f"{p}k"], [f"{p}kt"], perm=[0, 2, 1]),
                  helper.make_node("MatMul", [f"{p}q", f"{p}kt"], [f"{p}s0"]),
                  helper.make_node("Mul", [f"{p}s0", "attn_scale"], [f"{p}s"]),
                  helper.make_node("Softmax", [f"{p}s"], [f"{p}pr"], axis=-1),
                  helper.make_node("MatMul", [f"{p}pr", f"{p}v"], [f"{p}ctx"]),
                  helper.make_node("MatMul", [f"{p}ctx", weight(f"{p}wo", hidden, hidden)],
                                   [f"{p}o"]),
                  helper.make_node("Add", [h, f"{p}o"], [f"{p}h1"])]
        inits.append(_init(f"{p}ln2_w", (1 + 0.1 * rng.standard_normal(hidden)).astype(np.float32)))
        norm, more = _rms_nodes(f"{p}h1", f"{p}n2", variant="reciprocal", cast_in=True,
                                cast_out=F, scale=f"{p}ln2_w", prefix=f"{p}b_")
        nodes += norm
        inits += more
        nodes += [helper.make_node("MatMul", [f"{p}n2", weight(f"{p}wg", hidden, ffn)], [f"{p}g"]),
                  helper.make_node("Sigmoid", [f"{p}g"], [f"{p}sg"]),
                  helper.make_node("Mul", [f"{p}g", f"{p}sg"], [f"{p}act"]),
                  helper.make_node("MatMul", [f"{p}n2", weight(f"{p}wu", hidden, ffn)], [f"{p}u"]),
                  helper.make_node("Mul", [f"{p}act", f"{p}u"], [f"{p}gu"]),
                  helper.make_node("MatMul", [f"{p}gu", weight(f"{p}wd", ffn, hidden)],
                                   [f"{p}d"]),
                  helper.make_node("Add", [f"{p}h1", f"{p}d"], [f"{p}h2"])]
        h = f"{p}h2"
    inits.append(_init("final_w", (1 + 0.1 * rng.standard_normal(hidden)).astype(np.float32)))
    norm, more = _rms_nodes(h, "out", variant="reciprocal", cast_in=True, cast_out=F,
                            scale="final_w", prefix="final_")
    nodes += norm
    inits += more
    return _model(nodes, [_vi("hidden", [batch or "batch", seq or "seq", hidden])],
                  [_vi("out", [batch or "batch", seq or "seq", hidden])], inits)


def test_llama_decoder_fuses_every_norm_and_silu_and_matches_onnxruntime():
    model = llama_model()
    optimized = _rewritten(model, {"hidden": _rand(2, 5, 64)}, rtol=1e-4, atol=1e-4)
    ops = _ops(optimized)
    assert ops[f"{MS}:QuickGelu"] == 2
    # the first norm reads the graph input; the others follow a residual Add
    assert ops["SimplifiedLayerNormalization"] == 1
    assert ops[f"{MS}:SkipSimplifiedLayerNormalization"] == 4
    assert ops[f"{MS}:FusedMatMul"] == 2  # the scaled Q @ K^T of each layer
    gone = {"Pow", "Sqrt", "Reciprocal", "Cast", "Sigmoid", "ReduceMean", "Transpose"}
    assert not gone & set(ops)
