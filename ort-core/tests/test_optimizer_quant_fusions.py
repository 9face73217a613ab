"""Level-2 fusions of the chains ``onnxruntime.quantization.quantize_dynamic`` writes:
``MatMulInteger -> Cast -> Mul(scales) [-> Add(bias)]`` -> MatMulIntegerToFloat, then
``DynamicQuantizeLinear -> MatMulIntegerToFloat`` -> DynamicQuantizeMatMul.

Models are quantized by onnxruntime's own quantizer from small float MatMul / Gemm models;
each fused model is checked for the ops onnxruntime's optimizer leaves and for outputs equal
to onnxruntime's on the same quantized model (its fused kernels round differently from the
unfused chain), and near misses must stay unfused."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic

import ort
from ort.optimizer import PASSES, OptimizerContext, optimize_model

F = TensorProto.FLOAT
RNG = np.random.default_rng(11)
NO_KERNEL = OptimizerContext(has_kernel=lambda domain, op, version: False)


def _float_model(kind: str, bias: bool = True, k: int = 8, n: int = 16):
    """A float model ``x [batch, seq, k] -> y`` with a constant weight, of ``kind``:
    ``matmul`` (MatMul [+ Add]), ``gemm`` (2-D x), ``shared`` (two MatMuls reading x)."""
    w = RNG.standard_normal((k, n)).astype(np.float32)
    b = RNG.standard_normal(n).astype(np.float32)
    inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")]
    x_shape, y_shape = ["batch", "seq", k], ["batch", "seq", n]
    if kind == "gemm":
        x_shape, y_shape = ["rows", k], ["rows", n]
        nodes = [helper.make_node("Gemm", ["x", "W"] + (["B"] if bias else []), ["y"])]
    elif kind == "shared":
        inits.append(numpy_helper.from_array(RNG.standard_normal((k, n)).astype(np.float32),
                                             "W2"))
        nodes = [helper.make_node("MatMul", ["x", "W"], ["m1"]),
                 helper.make_node("MatMul", ["x", "W2"], ["m2"]),
                 helper.make_node("Add", ["m1", "m2"], ["y"])]
    else:
        nodes = [helper.make_node("MatMul", ["x", "W"], ["m" if bias else "y"])]
        if bias:
            nodes.append(helper.make_node("Add", ["m", "B"], ["y"]))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", F, x_shape)],
                              [helper.make_tensor_value_info("y", F, y_shape)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)


def _quantized(tmp_path, kind: str, name: str = "q", **options) -> onnx.ModelProto:
    """``_float_model(kind)`` quantized by ``quantize_dynamic`` (``options``: its keyword
    arguments, plus ``bias``)."""
    bias = options.pop("bias", True)
    src, dst = tmp_path / f"{name}_float.onnx", tmp_path / f"{name}.onnx"
    onnx.save(_float_model(kind, bias), src)
    quantize_dynamic(src, dst, **options)
    return onnx.load(dst)


def _feeds(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    x = model.graph.input[0]
    shape = [d.dim_value or 3 for d in x.type.tensor_type.shape.dim]
    return {x.name: (RNG.standard_normal(shape) * 2).astype(np.float32)}


def _ops(model: onnx.ModelProto) -> Counter:
    return Counter(n.op_type for n in model.graph.node)


def _ort_fused(model, tmp_path, disabled=()):
    """(ops of ort's level-2 optimized model, its outputs)."""
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.optimized_model_filepath = str(tmp_path / "ort_optimized.onnx")
    kwargs = {"disabled_optimizers": list(disabled)} if disabled else {}
    session = ort.InferenceSession(model.SerializeToString(), so, **kwargs)
    feeds = _feeds(model)
    outputs = session.run(None, feeds)
    return _ops(onnx.load(so.optimized_model_filepath)), outputs, feeds


def _onnxruntime(model, feeds, tmp_path, disabled=()):
    """(ops of onnxruntime's level-2 optimized model, its outputs)."""
    so = onnxruntime.SessionOptions()
    so.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.optimized_model_filepath = str(tmp_path / "onnxruntime_optimized.onnx")
    session = onnxruntime.InferenceSession(model.SerializeToString(), so,
                                           providers=["CPUExecutionProvider"],
                                           disabled_optimizers=list(disabled))
    outputs = session.run(None, feeds)
    return _ops(onnx.load(so.optimized_model_filepath)), outputs


def _check_like_onnxruntime(model, tmp_path, expected: dict[str, int], disabled=()) -> None:
    ops, outputs, feeds = _ort_fused(model, tmp_path, disabled)
    reference_ops, reference = _onnxruntime(model, feeds, tmp_path, disabled)
    for op, count in expected.items():
        assert ops[op] == count, (op, ops)
    assert ops == reference_ops
    for got, want in zip(outputs, reference):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind,options", [
    ("matmul", {}),
    ("matmul", {"bias": False}),
    ("matmul", {"per_channel": True}),
    ("matmul", {"weight_type": QuantType.QUInt8}),
    ("matmul", {"per_channel": True, "weight_type": QuantType.QUInt8, "bias": False}),
    ("gemm", {}),
    ("gemm", {"bias": False}),
])
def test_dynamic_quantize_matmul_fuses_quantize_dynamic_chain(tmp_path, kind, options):
    model = _quantized(tmp_path, kind, **options)
    assert _ops(model)["MatMulInteger"] == 1
    _check_like_onnxruntime(model, tmp_path, {
        "DynamicQuantizeMatMul": 1, "MatMulIntegerToFloat": 0, "DynamicQuantizeLinear": 0,
        "MatMulInteger": 0, "Cast": 0, "Mul": 0, "Add": 0})


def test_matmul_integer_to_float_alone_when_quantized_input_is_shared(tmp_path):
    # two MatMuls reading one DynamicQuantizeLinear: both become MatMulIntegerToFloat, the
    # quantization stays (DynamicQuantizeMatMul would quantize x twice)
    model = _quantized(tmp_path, "shared")
    assert _ops(model)["MatMulInteger"] == 2
    _check_like_onnxruntime(model, tmp_path, {
        "MatMulIntegerToFloat": 2, "DynamicQuantizeLinear": 1, "DynamicQuantizeMatMul": 0})


def test_matmul_integer_to_float_with_dynamic_quantize_matmul_disabled(tmp_path):
    model = _quantized(tmp_path, "matmul", per_channel=True)
    _check_like_onnxruntime(model, tmp_path, {
        "MatMulIntegerToFloat": 1, "DynamicQuantizeLinear": 1, "Add": 0},
        disabled=["DynamicQuantizeMatMulFusion"])


def test_non_constant_weight_fuses_too(tmp_path):
    # onnxruntime 1.32 fuses an overridable (graph input) weight as well
    model = _quantized(tmp_path, "matmul")
    weight = next(t for t in model.graph.initializer if t.name.endswith("_quantized"))
    model.graph.input.append(helper.make_tensor_value_info(weight.name, weight.data_type,
                                                           list(weight.dims)))
    _check_like_onnxruntime(model, tmp_path, {"DynamicQuantizeMatMul": 1})


def test_non_constant_bias_stays_add(tmp_path):
    model = _quantized(tmp_path, "matmul")
    model.graph.input.append(helper.make_tensor_value_info("B", F, [16]))
    _check_like_onnxruntime(model, tmp_path, {"DynamicQuantizeMatMul": 1, "Add": 1})


def test_bias_of_shape_1_n_is_fused_one_dimensional(tmp_path):
    model = _quantized(tmp_path, "matmul")
    bias = next(t for t in model.graph.initializer if t.name == "B")
    bias.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(bias).reshape(1, 1, 16), "B"))
    _check_like_onnxruntime(model, tmp_path, {"DynamicQuantizeMatMul": 1, "Add": 0})


def test_bias_first_in_add_is_fused(tmp_path):
    # exporters write Add(bias, product) as well as Add(product, bias)
    model = _quantized(tmp_path, "matmul")
    add = _node(model, "Add")
    add.input[0], add.input[1] = add.input[1], add.input[0]
    _check_like_onnxruntime(model, tmp_path, {"DynamicQuantizeMatMul": 1, "Add": 0})


def test_one_element_bias_stays_add(tmp_path):
    model = _quantized(tmp_path, "matmul")
    bias = next(t for t in model.graph.initializer if t.name == "B")
    bias.CopyFrom(numpy_helper.from_array(np.array([0.5], np.float32), "B"))
    _check_like_onnxruntime(model, tmp_path, {"DynamicQuantizeMatMul": 1, "Add": 1})


def test_rank_raising_bias_stays_add(tmp_path):
    # onnxruntime fuses a [1, 1, N] bias on a 2-D product and returns [M, N] where the model
    # computes [1, M, N]; ort keeps the Add
    model = _quantized(tmp_path, "gemm")
    bias = next(t for t in model.graph.initializer if t.name == "B")
    bias.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(bias).reshape(1, 1, 16), "B"))
    del model.graph.output[0].type.tensor_type.shape.dim[:]
    ops, outputs, feeds = _ort_fused(model, tmp_path)
    assert ops["DynamicQuantizeMatMul"] == 1 and ops["Add"] == 1
    assert outputs[0].shape == (1, 3, 16)


def _node(model, op_type):
    return next(n for n in model.graph.node if n.op_type == op_type)


def _level2(model, context=None):
    model = onnx.shape_inference.infer_shapes(model)
    if context is None:
        context = OptimizerContext(has_kernel=lambda domain, op, version: True)
    return _ops(optimize_model(model, 2, context))


@pytest.mark.parametrize("change", ["cast_read_twice", "scale_read_twice", "product_output",
                                    "cast_to_double", "scale_not_mul"])
def test_near_misses_stay_unfused(tmp_path, change):
    model = _quantized(tmp_path, "matmul", bias=False)
    cast = _node(model, "Cast")
    scales = next(n for n in model.graph.node
                  if n.op_type == "Mul" and cast.output[0] not in n.input)
    if change == "cast_read_twice":
        model.graph.output.append(helper.make_tensor_value_info(cast.output[0], F, None))
    elif change == "scale_read_twice":
        model.graph.output.append(helper.make_tensor_value_info(scales.output[0], F, None))
    elif change == "product_output":
        mmi = _node(model, "MatMulInteger")
        model.graph.output.append(helper.make_tensor_value_info(mmi.output[0],
                                                                TensorProto.INT32, None))
    elif change == "cast_to_double":
        cast.attribute[0].i = TensorProto.DOUBLE
        fix = helper.make_node("Cast", [cast.output[0]], ["as_float"], to=F)
        model.graph.node.insert(list(model.graph.node).index(cast) + 1, fix)
        for node in model.graph.node:
            if node.op_type == "Mul" and cast.output[0] in node.input:
                node.input[list(node.input).index(cast.output[0])] = "as_float"
    elif change == "scale_not_mul":
        scales.op_type = "Div"
    ops = _level2(model)
    assert ops["MatMulIntegerToFloat"] == 0 and ops["DynamicQuantizeMatMul"] == 0, ops
    assert ops["MatMulInteger"] == 1


def test_no_fusion_without_kernels(tmp_path):
    model = _quantized(tmp_path, "matmul")
    ops = _level2(model, NO_KERNEL)
    assert ops["MatMulInteger"] == 1 and ops["DynamicQuantizeLinear"] == 1
    assert ops["MatMulIntegerToFloat"] == 0 and ops["DynamicQuantizeMatMul"] == 0


def test_dynamic_quantize_linear_read_elsewhere_stays(tmp_path):
    model = _quantized(tmp_path, "matmul")
    quantize = _node(model, "DynamicQuantizeLinear")
    model.graph.output.append(helper.make_tensor_value_info(quantize.output[1], F, None))
    ops = _level2(model)
    assert ops["MatMulIntegerToFloat"] == 1 and ops["DynamicQuantizeLinear"] == 1
    assert ops["DynamicQuantizeMatMul"] == 0


def test_level_two_as_onnxruntime(tmp_path):
    # onnxruntime runs both at ORT_ENABLE_EXTENDED, MatMulIntegerToFloat first
    levels = {name: (level, i) for i, (level, name, _) in enumerate(PASSES)}
    assert levels["MatMulIntegerToFloatFusion"][0] == 2
    assert levels["DynamicQuantizeMatMulFusion"][0] == 2
    assert levels["MatMulIntegerToFloatFusion"][1] < levels["DynamicQuantizeMatMulFusion"][1]
    model = onnx.shape_inference.infer_shapes(_quantized(tmp_path, "matmul"))
    context = OptimizerContext(has_kernel=lambda domain, op, version: True)
    assert _ops(optimize_model(model, 1, context))["MatMulInteger"] == 1
