"""Level-2 fusion of QDQ node groups (``quant_fusions.fuse_qdq``): the DequantizeLinear ->
op -> QuantizeLinear groups ``onnxruntime.quantization.quantize_static`` writes in QDQ format
become the QOperator ops onnxruntime's QDQ transformer makes of them (QLinearConv,
QLinearAdd, QLinearMatMul, QGemm, ...), with onnxruntime's outputs bit for bit.

Models are small float CNNs and MLPs quantized by onnxruntime's own tool; each is compared
with onnxruntime's level-2 session on the same file: the same op counts and equal outputs."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import onnxruntime
import ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import (CalibrationDataReader, QuantFormat,
                                      QuantType, quantize_static)
from ort.optimizer import PASSES

F = TensorProto.FLOAT
RNG = np.random.default_rng(5)


def _init(name, *shape, scale=0.3):
    return numpy_helper.from_array((RNG.standard_normal(shape) * scale).astype(np.float32), name)


def _cnn() -> onnx.ModelProto:
    """Conv+Relu, Conv, residual Add, MaxPool, AveragePool, GlobalAveragePool, Flatten, Gemm."""
    nodes = [
        helper.make_node("Conv", ["x", "W1", "B1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "W2", "B2"], ["c2"], pads=[1, 1, 1, 1], group=2),
        helper.make_node("Add", ["c2", "r1"], ["a"]),
        helper.make_node("MaxPool", ["a"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("AveragePool", ["p"], ["ap"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["ap", "W3"], ["c3"], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["c3"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "W4", "B4"], ["y"], transB=1),
    ]
    inits = [_init("W1", 8, 3, 3, 3), _init("B1", 8), _init("W2", 8, 4, 3, 3), _init("B2", 8),
             _init("W3", 6, 8, 1, 1), _init("W4", 5, 6), _init("B4", 5)]
    graph = helper.make_graph(nodes, "cnn", [helper.make_tensor_value_info("x", F, [1, 3, 9, 11])],
                              [helper.make_tensor_value_info("y", F, [1, 5])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)


def _mlp() -> onnx.ModelProto:
    """MatMul + Add, Relu, MatMul (a float output after the last MatMul)."""
    nodes = [helper.make_node("MatMul", ["x", "W1"], ["m1"]),
             helper.make_node("Add", ["m1", "B1"], ["h"]),
             helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("MatMul", ["r", "W2"], ["y"])]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", F, [2, 4, 16])],
                              [helper.make_tensor_value_info("y", F, [2, 4, 8])],
                              [_init("W1", 16, 24), _init("B1", 24), _init("W2", 24, 8)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)


class _Reader(CalibrationDataReader):
    def __init__(self, model: onnx.ModelProto) -> None:
        x = model.graph.input[0]
        shape = [d.dim_value for d in x.type.tensor_type.shape.dim]
        self.samples = iter([{x.name: RNG.standard_normal(shape).astype(np.float32)}
                             for _ in range(3)])

    def get_next(self):
        return next(self.samples, None)


def _qdq(tmp_path, model, **options) -> onnx.ModelProto:
    src, dst = tmp_path / "float.onnx", tmp_path / "qdq.onnx"
    onnx.save(model, src)
    quantize_static(str(src), str(dst), _Reader(model), quant_format=QuantFormat.QDQ, **options)
    return onnx.load(dst)


def _ops(path) -> Counter:
    return Counter(n.op_type for n in onnx.load(path).graph.node)


def _compare(tmp_path, model) -> tuple[Counter, Counter]:
    """Run ``model`` in ort and onnxruntime at level 2; assert equal outputs; return the op
    counts of both optimized models."""
    x = model.graph.input[0]
    shape = [d.dim_value for d in x.type.tensor_type.shape.dim]
    feeds = {x.name: (RNG.standard_normal(shape) * 1.5).astype(np.float32)}
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.optimized_model_filepath = str(tmp_path / "ours.onnx")
    got = ort.InferenceSession(model.SerializeToString(), so).run(None, feeds)
    ref_so = onnxruntime.SessionOptions()
    ref_so.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    ref_so.optimized_model_filepath = str(tmp_path / "theirs.onnx")
    want = onnxruntime.InferenceSession(model.SerializeToString(), ref_so,
                                        providers=["CPUExecutionProvider"]).run(None, feeds)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    return _ops(tmp_path / "ours.onnx"), _ops(tmp_path / "theirs.onnx")


U8 = QuantType.QUInt8


@pytest.mark.parametrize("options", [
    {"per_channel": False, "activation_type": U8},
    {"per_channel": True, "activation_type": U8},
    {"per_channel": False, "activation_type": U8, "weight_type": U8},
])
def test_cnn_runs_as_onnxruntime_runs_it(tmp_path, options):
    model = _qdq(tmp_path, _cnn(), **options)
    ours, theirs = _compare(tmp_path, model)
    assert ours["QLinearConv"] == 3 and ours["Conv"] == 0, ours
    assert ours["QLinearAdd"] == 1 and ours["QGemm"] == 1, ours
    assert ours["QLinearGlobalAveragePool"] == 1 and ours["QLinearAveragePool"] == 1, ours
    assert ours["DequantizeLinear"] == 1 and ours["QuantizeLinear"] == 1, ours
    assert ours == theirs


@pytest.mark.parametrize("per_channel", [False, True])
def test_int8_activations_fuse_where_onnxruntime_makes_them_uint8(tmp_path, per_channel):
    # int8 Q -> DQ pairs become uint8 where the Q has one DQ with one reader; the groups
    # left with int8 activations stay float, as onnxruntime on x86 leaves them
    model = _qdq(tmp_path, _cnn(), per_channel=per_channel, activation_type=QuantType.QInt8)
    ours, theirs = _compare(tmp_path, model)
    del ours["DequantizeLinear"], theirs["DequantizeLinear"]  # onnxruntime copies shared ones
    assert ours == theirs
    assert 0 < ours["QLinearConv"] < 3, ours


def test_mlp_matmuls_become_qlinear_matmul_and_matmul_integer_to_float(tmp_path):
    model = _qdq(tmp_path, _mlp(), per_channel=True, activation_type=U8)
    ours, theirs = _compare(tmp_path, model)
    assert ours["MatMul"] == 0 and ours["QLinearMatMul"] >= 1, ours
    assert ours["MatMul"] == theirs["MatMul"] and ours["QLinearMatMul"] == theirs["QLinearMatMul"]


def test_maxpool_between_different_scales_keeps_its_qdq(tmp_path):
    model = _qdq(tmp_path, _cnn(), activation_type=U8)
    pool = next(n for n in model.graph.node if n.op_type == "MaxPool")
    q = next(n for n in model.graph.node if n.op_type == "QuantizeLinear"
             and n.input[0] == pool.output[0])
    model.graph.initializer.append(numpy_helper.from_array(np.array(0.05, np.float32),
                                                           "other_scale"))
    q.input[1] = "other_scale"
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] == q.output[0]:
            node.input[1] = "other_scale"
    ours, theirs = _compare(tmp_path, model)
    assert ours["MaxPool"] == 1 and ours["QuantizeLinear"] == 2, ours


def test_conv_with_float_bias_stays_float(tmp_path):
    # onnxruntime fuses a Conv's bias only when a DequantizeLinear of int32 gives it
    model = _qdq(tmp_path, _cnn(), activation_type=U8)
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    model.graph.initializer.append(_init("float_bias", 8))
    conv.input[2] = "float_bias"
    ours, _ = _compare(tmp_path, model)
    assert ours["Conv"] == 1 and ours["QLinearConv"] == 2, ours


def test_qdq_fusion_runs_at_level_two():
    names = [name for _, name, _ in PASSES]
    levels = {name: level for level, name, _ in PASSES}
    assert levels["QDQFusion"] == levels["QDQS8ToU8"] == 2
    assert names.index("QDQS8ToU8") < names.index("QDQFusion")


def test_basic_level_keeps_dequantize_linear_of_weights(tmp_path):
    # as onnxruntime: constant folding leaves DequantizeLinear for the QDQ fusions
    model = _qdq(tmp_path, _cnn())
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    so.optimized_model_filepath = str(tmp_path / "basic.onnx")
    ort.InferenceSession(model.SerializeToString(), so)
    before = Counter(n.op_type for n in model.graph.node)
    assert _ops(tmp_path / "basic.onnx")["DequantizeLinear"] == before["DequantizeLinear"]
