"""Models of IR version 3 list every initializer as a graph input; onnxruntime reads them as
constants (none is overridable), so its optimizer folds Conv+BatchNormalization and fuses
Conv+Clip there. ort did neither: it took them for overridable inputs."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import ort
import pytest
from onnx import TensorProto, helper, numpy_helper

ort_rt = pytest.importorskip("onnxruntime")
F = TensorProto.FLOAT
RNG = np.random.default_rng(3)


def _ir3_conv_bn_relu6(opset=11):
    """Conv -> BatchNormalization -> Clip(0, 6) (bounds as initializers), IR 3, every
    initializer also a graph input, as old exporters wrote them."""
    inits = {
        "w": (RNG.standard_normal((4, 3, 3, 3)) * 0.3).astype(np.float32),
        "scale": RNG.uniform(0.5, 1.5, 4).astype(np.float32),
        "bias": RNG.uniform(-0.5, 0.5, 4).astype(np.float32),
        "mean": RNG.uniform(-0.5, 0.5, 4).astype(np.float32),
        "var": RNG.uniform(0.5, 1.5, 4).astype(np.float32),
        "lo": np.array(0.0, np.float32), "hi": np.array(6.0, np.float32),
    }
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "scale", "bias", "mean", "var"],
                              ["b"]),
             helper.make_node("Clip", ["b", "lo", "hi"], ["y"])]
    inputs = [helper.make_tensor_value_info("x", F, [1, 3, 8, 8])]
    inputs += [helper.make_tensor_value_info(n, F, list(a.shape)) for n, a in inits.items()]
    graph = helper.make_graph(nodes, "g", inputs, [helper.make_tensor_value_info("y", F, None)],
                              [numpy_helper.from_array(a, n) for n, a in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                             ir_version=3)


def test_ir3_initializers_are_constants_and_get_fused(tmp_path):
    model = _ir3_conv_bn_relu6()
    so = ort.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "ort.onnx")
    ours = ort.InferenceSession(model.SerializeToString(), so,
                                providers=["CPUExecutionProvider"])
    theirs = ort_rt.InferenceSession(model.SerializeToString(),
                                     providers=["CPUExecutionProvider"])
    assert [i.name for i in ours.get_inputs()] == [i.name for i in theirs.get_inputs()] == ["x"]
    assert ours.get_overridable_initializers() == [] == theirs.get_overridable_initializers()
    x = (RNG.standard_normal((1, 3, 8, 8)) * 3).astype(np.float32)
    np.testing.assert_allclose(ours.run(None, {"x": x})[0], theirs.run(None, {"x": x})[0],
                               rtol=1e-5, atol=1e-5)
    ops = Counter(n.op_type for n in onnx.load(str(tmp_path / "ort.onnx")).graph.node)
    assert ops == Counter({"FusedConv": 1})


def test_feeding_an_ir3_initializer_is_an_invalid_input_name():
    model = _ir3_conv_bn_relu6()
    ours = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.zeros((1, 3, 8, 8), np.float32)
    with pytest.raises(ort.InvalidArgument, match="Invalid input name: hi"):
        ours.run(None, {"x": x, "hi": np.array(1.0, np.float32)})
