"""Models onnxruntime saved at ORT_ENABLE_ALL (its NCHWc transformer on: com.microsoft.nchwc
ReorderInput/ReorderOutput, Conv with fused activation and Sum, pools, Upsample) run on ort
and match onnxruntime.

The models are built with onnx.helper and optimized by onnxruntime at test time
(``SessionOptions.optimized_model_filepath``), so their block size is the one of the CPU the
test runs on; onnxruntime then runs the original model (optimizations off) as the oracle.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from ort.testing import node_model

onnxruntime = pytest.importorskip("onnxruntime", reason="onnxruntime saves the models")

NCHWC = "com.microsoft.nchwc"
RTOL = ATOL = 1e-4


class _Builder:
    """Collects the nodes and initializers of a float CNN."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def const(self, value: np.ndarray) -> str:
        """An initializer holding ``value``."""
        self.count += 1
        name = f"k{self.count}"
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], **attrs) -> str:
        """Add a node; return its (first) output's name."""
        self.count += 1
        out = f"v{self.count}"
        self.nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def conv(self, x: str, cin: int, cout: int, k: int = 3, stride: int = 1, group: int = 1,
             bias: bool = True, dilation: int = 1) -> str:
        """A Conv with random weights, 'same' padding for odd k."""
        w = self.rng.standard_normal((cout, cin // group, k, k)).astype(np.float32)
        w *= np.float32(1.5 / np.sqrt(cin // group * k * k))
        inputs = [x, self.const(w)]
        if bias:
            inputs.append(self.const(self.rng.standard_normal(cout).astype(np.float32) * 0.1))
        pad = dilation * (k - 1) // 2
        return self.node("Conv", inputs, pads=[pad] * 4, strides=[stride] * 2, group=group,
                         dilations=[dilation] * 2)

    def clip(self, x: str, low: float = 0.0, high: float = 6.0) -> str:
        """Clip(x, low, high) with constant bounds."""
        return self.node("Clip", [x, self.const(np.float32(low)), self.const(np.float32(high))])

    def model(self, inputs: list[tuple[str, list]], outputs: list[str]) -> onnx.ModelProto:
        """The model (opset 17) with float inputs of the given shapes."""
        graph = helper.make_graph(
            self.nodes, "cnn",
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
            [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
            self.inits)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _odd_channels_cnn() -> tuple[onnx.ModelProto, dict]:
    """Channels 3 -> 20 -> 36 (not multiples of the block size), Relu/Clip, residual Add,
    MaxPool, AveragePool, nearest Resize, both global pools."""
    b = _Builder(1)
    y = b.node("Relu", [b.conv("x", 3, 20, stride=2)])
    y = b.clip(b.conv(y, 20, 36))
    z = b.conv(y, 36, 36, k=1)
    y = b.node("Relu", [b.node("Add", [b.conv(z, 36, 36, bias=False), z])])
    y = b.node("MaxPool", [y], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    y = b.node("AveragePool", [y], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    y = b.conv(y, 36, 20, k=3)
    y = b.node("Resize", [y, "", b.const(np.array([1, 1, 2, 2], np.float32))],
               mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    y = b.conv(y, 20, 24, k=3)
    g1 = b.node("GlobalAveragePool", [y])
    g2 = b.node("GlobalMaxPool", [y])
    x = np.random.default_rng(2).standard_normal((2, 3, 33, 30)).astype(np.float32)
    return b.model([("x", ["N", 3, 33, 30])], [g1, g2, y]), {"x": x}


def _mobilenet_block() -> tuple[onnx.ModelProto, dict]:
    """Inverted residual blocks: pointwise expand + Clip(0, 6), depthwise 3x3 (strides 1 and
    2) + Clip, pointwise project, residual Add; then a head."""
    b = _Builder(3)
    y = b.clip(b.conv("x", 16, 32, k=3, stride=2))
    for stride, cin, cout in ((1, 32, 32), (2, 32, 48), (1, 48, 48)):
        e = b.clip(b.conv(y, cin, cin * 3, k=1))
        d = b.clip(b.conv(e, cin * 3, cin * 3, stride=stride, group=cin * 3))
        p = b.conv(d, cin * 3, cout, k=1)
        y = b.node("Add", [p, y]) if stride == 1 and cin == cout else p
    y = b.clip(b.conv(y, 48, 64, k=1))
    y = b.node("GlobalAveragePool", [y])
    x = np.random.default_rng(4).standard_normal((1, 16, 40, 40)).astype(np.float32)
    return b.model([("x", [1, 16, 40, 40])], [y]), {"x": x}


def _pools_and_upsample() -> tuple[onnx.ModelProto, dict]:
    """Pools with ceil_mode, count_include_pad, dilations, strides; linear Resize (NCHWc
    Upsample); a channels-last input (Transpose NHWC -> NCHW before the first Conv);
    grouped and dilated Convs; LeakyRelu/Sigmoid/Tanh activations."""
    b = _Builder(5)
    x = b.node("Transpose", ["x"], perm=[0, 3, 1, 2])
    y = b.node("LeakyRelu", [b.conv(x, 32, 32)], alpha=0.2)
    y = b.node("MaxPool", [y], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)
    y = b.node("Sigmoid", [b.conv(y, 32, 64, group=2, dilation=2)])
    y = b.node("AveragePool", [y], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
               count_include_pad=1)
    y = b.node("Resize", [y, "", b.const(np.array([1, 1, 2, 2], np.float32))],
               mode="linear", coordinate_transformation_mode="asymmetric")
    y = b.node("Tanh", [b.conv(y, 64, 32)])
    y = b.node("MaxPool", [y], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1])
    y = b.conv(y, 32, 16, k=1)
    g = b.node("GlobalMaxPool", [y])
    x_value = np.random.default_rng(6).standard_normal((2, 21, 19, 32)).astype(np.float32)
    return b.model([("x", [2, 21, 19, 32])], [y, g]), {"x": x_value}


def _upsample_modes() -> tuple[onnx.ModelProto, dict]:
    """Resizes onnxruntime turns into NCHWc Upsample: nearest (asymmetric, floor) and linear
    (half_pixel, align_corners), non-square integer scales; unpadded pools."""
    b = _Builder(7)
    y = b.node("Relu", [b.conv("x", 16, 32)])
    y = b.node("Resize", [y, "", b.const(np.array([1, 1, 2, 3], np.float32))],
               mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    y = b.conv(y, 32, 32)
    y = b.node("MaxPool", [y], kernel_shape=[3, 3], strides=[2, 2])
    y = b.node("Resize", [y, "", b.const(np.array([1, 1, 3, 2], np.float32))],
               mode="linear", coordinate_transformation_mode="half_pixel")
    y = b.conv(y, 32, 48)
    y = b.node("AveragePool", [y], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)
    y = b.node("Resize", [y, "", b.const(np.array([1, 1, 2, 2], np.float32))],
               mode="linear", coordinate_transformation_mode="align_corners")
    y = b.conv(y, 48, 16, k=1)
    x = np.random.default_rng(8).standard_normal((1, 16, 9, 7)).astype(np.float32)
    return b.model([("x", [1, 16, 9, 7])], [y]), {"x": x}


MODELS = {
    "odd_channels": _odd_channels_cnn,
    "mobilenet": _mobilenet_block,
    "pools_upsample": _pools_and_upsample,
    "upsample_modes": _upsample_modes,
}


def _save_optimized(model: onnx.ModelProto, path: Path) -> onnx.ModelProto:
    """The model onnxruntime writes at ORT_ENABLE_ALL (its default level)."""
    options = onnxruntime.SessionOptions()
    options.optimized_model_filepath = str(path)
    options.log_severity_level = 3
    onnxruntime.InferenceSession(model.SerializeToString(), options,
                                 providers=["CPUExecutionProvider"])
    return onnx.load(str(path))


def _reference(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    """onnxruntime's outputs of the original model, optimizations off."""
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = onnxruntime.InferenceSession(model.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_saved_nchwc_model_matches_onnxruntime(name: str, tmp_path: Path) -> None:
    """ort runs the saved model (NCHWc ops included) and matches onnxruntime's outputs."""
    model, feeds = MODELS[name]()
    saved = _save_optimized(model, tmp_path / f"{name}.onnx")
    ops = {n.op_type for n in saved.graph.node if n.domain == NCHWC}
    if not ops:
        pytest.skip("onnxruntime has no NCHWc kernels on this CPU (MLAS block size 1)")
    assert {"ReorderOutput", "Conv"} <= ops, ops
    want = _reference(model, feeds)
    got = ort.InferenceSession(str(tmp_path / f"{name}.onnx")).run(None, feeds)
    oracle = onnxruntime.InferenceSession(str(tmp_path / f"{name}.onnx"),
                                          providers=["CPUExecutionProvider"]).run(None, feeds)
    for g, w, o in zip(got, want, oracle):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(g, o, rtol=RTOL, atol=ATOL)


def test_saved_models_use_the_nchwc_ops(tmp_path: Path) -> None:
    """The models above exercise every NCHWc op onnxruntime's transformer writes."""
    seen: set[str] = set()
    for name, build in MODELS.items():
        model, _ = build()
        seen |= {n.op_type for n in _save_optimized(model, tmp_path / f"{name}.onnx").graph.node
                 if n.domain == NCHWC}
    if not seen:
        pytest.skip("onnxruntime has no NCHWc kernels on this CPU (MLAS block size 1)")
    assert seen == {"ReorderInput", "ReorderOutput", "Conv", "MaxPool", "AveragePool",
                    "GlobalAveragePool", "GlobalMaxPool", "Upsample"}, seen


def _blocked_weight(w: np.ndarray, block: int, group: int = 1, nchw_input: bool = False,
                    ) -> np.ndarray:
    """OIHW weights zero-padded to whole blocks and reordered as onnxruntime's transformer
    writes them (OIHWBo for NCHW-input and depthwise convs, else OIHWBiBo per group)."""
    o, i, kh, kw = w.shape
    po = -(-o // block) * block
    depthwise = i == 1 and group > 1
    pi = i if nchw_input or depthwise else -(-i // block) * block
    padded = np.zeros((po, pi, kh, kw), np.float32)
    padded[:o, :i] = w
    if nchw_input or depthwise:
        out = padded.reshape(po // block, block, pi, kh, kw).transpose(0, 2, 3, 4, 1)
    else:
        out = padded.reshape(group, po // group // block, block, pi // block, block, kh, kw)
        out = out.transpose(0, 1, 3, 5, 6, 4, 2)
    return np.ascontiguousarray(out).reshape(po, pi, kh, kw)


def test_model_saved_with_block_size_8_runs_anywhere() -> None:
    """A model written on an AVX2 machine (block size 8) runs on any CPU: ort reads the block
    size off the model's padded channel counts, not off the CPU it runs on."""
    rng = np.random.default_rng(11)
    block = 8
    x = rng.standard_normal((2, 20, 7, 6)).astype(np.float32)
    x3 = rng.standard_normal((2, 3, 7, 6)).astype(np.float32)
    w1 = (rng.standard_normal((12, 20, 3, 3)) * 0.2).astype(np.float32)
    b1 = rng.standard_normal(12).astype(np.float32)
    wd = rng.standard_normal((12, 1, 3, 3)).astype(np.float32)
    w3 = (rng.standard_normal((12, 3, 3, 3)) * 0.3).astype(np.float32)
    b_pad = np.concatenate([b1, np.zeros(4, np.float32)])
    inits = [numpy_helper.from_array(_blocked_weight(w1, block), "w1"),
             numpy_helper.from_array(b_pad, "b1"),
             numpy_helper.from_array(_blocked_weight(wd, block, group=12), "wd"),
             numpy_helper.from_array(_blocked_weight(w3, block, nchw_input=True), "w3")]
    nodes = [
        helper.make_node("ReorderInput", ["x"], ["xb"], domain=NCHWC),
        helper.make_node("Conv", ["xb", "w1", "b1"], ["c1"], domain=NCHWC, pads=[1] * 4,
                         activation="Relu"),
        helper.make_node("Conv", ["x3", "w3", "", "c1"], ["c3"], domain=NCHWC, pads=[1] * 4),
        helper.make_node("Conv", ["c3", "wd"], ["cd"], domain=NCHWC, pads=[1] * 4, group=16,
                         activation="Clip", activation_params=[0.0, 6.0]),
        helper.make_node("MaxPool", ["cd"], ["p"], domain=NCHWC, kernel_shape=[2, 2],
                         strides=[2, 2]),
        helper.make_node("ReorderOutput", ["p"], ["y"], domain=NCHWC, channels=12),
    ]
    graph = helper.make_graph(
        nodes, "block8",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 20, 7, 6]),
         helper.make_tensor_value_info("x3", TensorProto.FLOAT, [2, 3, 7, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid(NCHWC, 1)])
    got = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x, "x3": x3})[0]

    b = _Builder(0)
    plain = [
        helper.make_node("Conv", ["x", b.const(w1), b.const(b1)], ["c1"], pads=[1] * 4),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["x3", b.const(w3)], ["c3"], pads=[1] * 4),
        helper.make_node("Add", ["c3", "r1"], ["s"]),
        helper.make_node("Conv", ["s", b.const(wd)], ["cd"], pads=[1] * 4, group=12),
        helper.make_node("Clip", ["cd", b.const(np.float32(0)), b.const(np.float32(6))],
                         ["r2"]),
        helper.make_node("MaxPool", ["r2"], ["y"], kernel_shape=[2, 2], strides=[2, 2]),
    ]
    b.nodes = plain
    want = _reference(b.model([("x", [2, 20, 7, 6]), ("x3", [2, 3, 7, 6])], ["y"]),
                      {"x": x, "x3": x3})[0]
    assert got.shape == want.shape == (2, 12, 3, 3)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("op,shape,attrs,message", [
    ("ReorderInput", (1, 6, 4, 4), {}, "multiple of 4"),
    ("ReorderOutput", (1, 32, 4, 4), {"channels": 8}, "channels=8"),
    ("MaxPool", (1, 12, 4, 4), {"kernel_shape": [2, 2]}, "blocked layout"),
    ("Upsample", (1, 32, 4, 4), {"scales": [1, 2, 2, 2]}, "scales"),
])
def test_bad_nchwc_inputs_are_refused(op: str, shape: tuple, attrs: dict,
                                      message: str) -> None:
    """Inputs onnxruntime's NCHWc kernels refuse fail on ort too, saying what is wrong."""
    model, feeds = node_model(op, [np.zeros(shape, np.float32)], attrs, domain=NCHWC,
                              opset=17)
    with pytest.raises(Exception, match=message):
        ort.InferenceSession(model.SerializeToString()).run(None, feeds)
    with pytest.raises(Exception):
        onnxruntime.InferenceSession(model.SerializeToString(),
                                     providers=["CPUExecutionProvider"]).run(None, feeds)
