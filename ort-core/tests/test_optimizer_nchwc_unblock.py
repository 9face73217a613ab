"""The NchwcUnblock pass: models onnxruntime saved at ORT_ENABLE_ALL (com.microsoft.nchwc
regions) become plain NCHW Conv/FusedConv/pools/Resize, match onnxruntime, and regions the
pass cannot prove stay as they are (the CPU provider's nchwc kernels run them).

The models are optimized by onnxruntime at test time, so their block size is the one of the
CPU the tests run on; a hand-written block-8 model covers the other block size.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from ort.optimizer import OptimizerContext, optimize_model
from ort.optimizer.nchwc_unblock import NCHWC, decode_nchwc_weight

onnxruntime = pytest.importorskip("onnxruntime", reason="onnxruntime saves the models")

RTOL = ATOL = 1e-4
ALL = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
BASIC = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
EVERY_KERNEL = OptimizerContext(has_kernel=lambda domain, op, version: True)


class _Net:
    """Builds a float CNN from ONNX nodes with random weights."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def const(self, value) -> str:
        self.count += 1
        self.inits.append(numpy_helper.from_array(np.asarray(value), f"k{self.count}"))
        return f"k{self.count}"

    def op(self, op: str, inputs: list[str], **attrs) -> str:
        self.count += 1
        self.nodes.append(helper.make_node(op, inputs, [f"t{self.count}"], **attrs))
        return f"t{self.count}"

    def conv(self, x: str, cin: int, cout: int, k: int = 3, stride: int = 1, group: int = 1,
             dilation: int = 1, bias: bool = True) -> str:
        w = self.rng.standard_normal((cout, cin // group, k, k)).astype(np.float32)
        w *= np.float32(1.5 / np.sqrt(cin // group * k * k))
        inputs = [x, self.const(w)]
        if bias:
            inputs.append(self.const((self.rng.standard_normal(cout) * 0.1).astype(np.float32)))
        pad = dilation * (k - 1) // 2
        return self.op("Conv", inputs, pads=[pad] * 4, strides=[stride] * 2, group=group,
                       dilations=[dilation] * 2)

    def clip(self, x: str) -> str:
        return self.op("Clip", [x, self.const(np.float32(0)), self.const(np.float32(6))])

    def resize(self, x: str, scales, **attrs) -> str:
        return self.op("Resize", [x, "", self.const(np.array(scales, np.float32))], **attrs)

    def model(self, inputs, outputs) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes, "cnn",
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
            [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
            self.inits)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _odd_channels():
    """3 -> 20 -> 36 channels (padded), Relu/Clip, a residual Add without activation (Sum),
    max/average pools, nearest Upsample, both global pools, several outputs."""
    b = _Net(1)
    y = b.op("Relu", [b.conv("x", 3, 20, stride=2)])
    y = b.clip(b.conv(y, 20, 36))
    z = b.conv(y, 36, 36, k=1)
    y = b.op("Add", [b.conv(z, 36, 36, bias=False), z])
    y = b.op("MaxPool", [y], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    y = b.op("AveragePool", [y], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    y = b.conv(y, 36, 20)
    y = b.resize(y, [1, 1, 2, 2], mode="nearest", coordinate_transformation_mode="asymmetric",
                 nearest_mode="floor")
    y = b.conv(y, 20, 24)
    g1, g2 = b.op("GlobalAveragePool", [y]), b.op("GlobalMaxPool", [y])
    x = np.random.default_rng(2).standard_normal((2, 3, 33, 30)).astype(np.float32)
    return b.model([("x", ["N", 3, 33, 30])], [g1, g2, y]), {"x": x}


def _mobilenet():
    """Inverted residual blocks: expand + Clip, depthwise (strides 1, 2) + Clip, project,
    residual Add with Relu (Sum + activation); a head."""
    b = _Net(3)
    y = b.clip(b.conv("x", 16, 24, stride=2))
    for stride, cin, cout in ((1, 24, 24), (2, 24, 40), (1, 40, 40)):
        e = b.clip(b.conv(y, cin, cin * 3, k=1))
        d = b.clip(b.conv(e, cin * 3, cin * 3, stride=stride, group=cin * 3))
        p = b.conv(d, cin * 3, cout, k=1)
        y = b.op("Relu", [b.op("Add", [p, y])]) if stride == 1 and cin == cout else p
    y = b.op("GlobalAveragePool", [b.clip(b.conv(y, 40, 64, k=1))])
    x = np.random.default_rng(4).standard_normal((1, 16, 40, 40)).astype(np.float32)
    return b.model([("x", [1, 16, 40, 40])], [y]), {"x": x}


def _pools_upsample():
    """A channels-last input, grouped dilated Conv, LeakyRelu/Sigmoid/Tanh, pools with
    ceil_mode and count_include_pad, linear Upsample (asymmetric, half_pixel, align_corners)."""
    b = _Net(5)
    x = b.op("Transpose", ["x"], perm=[0, 3, 1, 2])
    y = b.op("LeakyRelu", [b.conv(x, 32, 32)], alpha=0.2)
    y = b.op("MaxPool", [y], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)
    y = b.op("Sigmoid", [b.conv(y, 32, 64, group=2, dilation=2)])
    y = b.op("AveragePool", [y], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
             count_include_pad=1)
    y = b.resize(y, [1, 1, 2, 2], mode="linear", coordinate_transformation_mode="asymmetric")
    y = b.op("Tanh", [b.conv(y, 64, 32)])
    y = b.resize(y, [1, 1, 3, 2], mode="linear", coordinate_transformation_mode="half_pixel")
    y = b.conv(y, 32, 48)
    y = b.resize(y, [1, 1, 2, 2], mode="linear",
                 coordinate_transformation_mode="align_corners")
    y = b.conv(y, 48, 16, k=1)
    g = b.op("GlobalMaxPool", [y])
    x_value = np.random.default_rng(6).standard_normal((2, 21, 19, 32)).astype(np.float32)
    return b.model([("x", [2, 21, 19, 32])], [y, g]), {"x": x_value}


def _plain_ops_on_blocked():
    """Plain ops onnxruntime leaves on blocked tensors: Concat of two Convs, Relu after a
    MaxPool, Mul of two Convs, Add after a Sigmoid Conv; a BatchNormalization it turns into
    an nchwc Conv; a padded 20-channel residual; a Concat after the region."""
    b = _Net(9)
    y = b.op("Concat", [b.conv("x", 16, 32), b.conv("x", 16, 32)], axis=1)
    y = b.op("Relu", [b.op("MaxPool", [y], kernel_shape=[2, 2], strides=[2, 2])])
    y = b.op("Mul", [b.conv(y, 64, 32), b.conv(y, 64, 32)])
    y = b.op("Add", [b.op("Sigmoid", [b.conv(y, 32, 32)]), y])
    rng = np.random.default_rng(10)
    stats = [rng.uniform(0.5, 1.5, 32), rng.standard_normal(32), rng.standard_normal(32) * 0.1,
             rng.uniform(0.5, 1.5, 32)]
    y = b.op("BatchNormalization", [y] + [b.const(s.astype(np.float32)) for s in stats])
    y = b.conv(y, 32, 20)
    y = b.op("Add", [b.conv(y, 20, 20), y])
    y = b.op("Concat", [b.conv(y, 20, 16), y], axis=1)
    x = np.random.default_rng(12).standard_normal((2, 16, 16, 12)).astype(np.float32)
    return b.model([("x", [2, 16, 16, 12])], [y]), {"x": x}


def _squeeze_excite():
    """HardSwish Conv (onnxruntime fuses it into the nchwc Conv; FusedConv does not take it),
    a squeeze-excite gate (GlobalAveragePool, Relu and HardSigmoid 1x1 Convs, Mul), a
    channels-last output next to the NCHW one."""
    b = _Net(31)
    y = b.op("HardSwish", [b.conv("x", 16, 40)])
    s = b.op("Relu", [b.conv(b.op("GlobalAveragePool", [y]), 40, 10, k=1)])
    s = b.op("HardSigmoid", [b.conv(s, 10, 40, k=1)], alpha=1 / 6, beta=0.5)
    y = b.op("Mul", [b.op("Mul", [y, s]), b.const(np.float32(0.5))])
    y2 = b.conv(y, 40, 24, k=1)
    y = b.op("Transpose", [y2], perm=[0, 2, 3, 1])
    x = np.random.default_rng(32).standard_normal((2, 16, 20, 20)).astype(np.float32)
    return b.model([("x", [2, 16, 20, 20])], [y, y2]), {"x": x}


def _shared_output():
    """A graph output (after a plain Relu on blocked values) that a later Conv also reads:
    the Relu writes the output and the Conv reads it, no Identity left."""
    b = _Net(41)
    y = b.op("MaxPool", [b.conv("x", 16, 32)], kernel_shape=[2, 2], strides=[2, 2])
    y = b.op("Relu", [y])
    x = np.random.default_rng(42).standard_normal((1, 16, 12, 12)).astype(np.float32)
    return b.model([("x", [1, 16, 12, 12])], [y, b.conv(y, 32, 32)]), {"x": x}


MODELS = {"odd_channels": _odd_channels, "mobilenet": _mobilenet, "shared": _shared_output,
          "pools_upsample": _pools_upsample, "plain_ops": _plain_ops_on_blocked,
          "squeeze_excite": _squeeze_excite}


def _save_optimized(model: onnx.ModelProto, path: Path) -> onnx.ModelProto:
    """The model onnxruntime writes at ORT_ENABLE_ALL; skips where it writes no nchwc op."""
    options = onnxruntime.SessionOptions()
    options.optimized_model_filepath = str(path)
    options.log_severity_level = 3
    onnxruntime.InferenceSession(model.SerializeToString(), options,
                                 providers=["CPUExecutionProvider"])
    saved = onnx.load(str(path))
    if not any(n.domain == NCHWC for n in saved.graph.node):
        pytest.skip("onnxruntime has no NCHWc kernels on this CPU")
    return saved


def _onnxruntime(model, feeds, level=None):
    options = onnxruntime.SessionOptions()
    if level is not None:
        options.graph_optimization_level = level
    source = model if isinstance(model, str) else model.SerializeToString()
    return onnxruntime.InferenceSession(source, options,
                                        providers=["CPUExecutionProvider"]).run(None, feeds)


def _ort(model, level):
    so = ort.SessionOptions()
    so.graph_optimization_level = level
    source = model if isinstance(model, str) else model.SerializeToString()
    return ort.InferenceSession(source, so)


def _nchwc_ops(model) -> Counter:
    return Counter(n.op_type for n in model.graph.node if n.domain == NCHWC)


def _assert_close(got, want) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_saved_nchwc_model_is_unblocked(name: str, tmp_path: Path) -> None:
    """No nchwc op is left; outputs equal onnxruntime's (saved and original model) and the
    nchwc kernels' (level 1, where the pass does not run)."""
    model, feeds = MODELS[name]()
    path = tmp_path / f"{name}.onnx"
    _save_optimized(model, path)
    session = _ort(str(path), ALL)
    optimized = session._optimized_model
    assert not _nchwc_ops(optimized), _nchwc_ops(optimized)
    if name == "plain_ops":  # the plain ops onnxruntime ran on blocked tensors stay
        assert {"Concat", "Relu", "Mul", "Add"} <= {n.op_type for n in optimized.graph.node}
    got = session.run(None, feeds)
    _assert_close(got, _onnxruntime(str(path), feeds))
    _assert_close(got, _onnxruntime(model, feeds, onnxruntime.GraphOptimizationLevel.
                                    ORT_DISABLE_ALL))
    if name in ("shared", "squeeze_excite", "mobilenet"):
        assert "Identity" not in {n.op_type for n in optimized.graph.node}
    _assert_close(got, _ort(str(path), BASIC).run(None, feeds))  # the nchwc kernels
    # the rewritten model is valid ONNX and onnxruntime runs it too
    out = tmp_path / "unblocked.onnx"
    so = ort.SessionOptions()
    so.optimized_model_filepath = str(out)
    ort.InferenceSession(str(path), so)
    _assert_close(_onnxruntime(str(out), feeds), got)


def test_padded_channels_are_dropped(tmp_path: Path) -> None:
    """Convs of 20 and 36 output channels (padded to whole blocks in the saved model) get
    weights with exactly those channels, the next Conv's input channels sliced to match."""
    model, _ = _odd_channels()
    _save_optimized(model, tmp_path / "odd.onnx")
    optimized = _ort(str(tmp_path / "odd.onnx"), ALL)._optimized_model
    inits = {t.name: tuple(t.dims) for t in optimized.graph.initializer}
    shapes = sorted(inits[n.input[1]] for n in optimized.graph.node
                    if n.op_type in ("Conv", "FusedConv"))
    want = sorted([(20, 3, 3, 3), (36, 20, 3, 3), (36, 36, 1, 1), (36, 36, 3, 3),
                   (20, 36, 3, 3), (24, 20, 3, 3)])
    assert shapes == want


def _encode(w: np.ndarray, block: int, group: int = 1, nchw_input: bool = False) -> np.ndarray:
    """OIHW weights padded to whole blocks and reordered as onnxruntime's NCHWc transformer
    writes them (OIHWBo for NCHW-input and depthwise convs, OIHWBiBo per group else)."""
    o, i, kh, kw = w.shape
    po = -(-o // block) * block
    plain = nchw_input or (i == 1 and group > 1)
    pi = i if plain else -(-i // block) * block
    padded = np.zeros((po, pi, kh, kw), np.float32)
    padded[:o, :i] = w
    if plain:
        out = padded.reshape(po // block, block, pi, kh, kw).transpose(0, 2, 3, 4, 1)
    else:
        out = padded.reshape(group, po // group // block, block, pi // block, block, kh, kw)
        out = out.transpose(0, 1, 3, 5, 6, 4, 2)
    return np.ascontiguousarray(out).reshape(po, pi, kh, kw)


@pytest.mark.parametrize("block", [8, 16])
@pytest.mark.parametrize("shape,group,nchw_input", [
    ((24, 40, 3, 3), 1, False), ((32, 16, 1, 1), 2, False), ((24, 1, 3, 3), 24, False),
    ((20, 3, 3, 3), 1, True), ((48, 48, 3, 3), 1, False)])
def test_weight_decoding_inverts_the_layout(block, shape, group, nchw_input) -> None:
    """decode_nchwc_weight undoes the transformer's reordering for every weight form."""
    rng = np.random.default_rng(sum(shape) + block)
    w = rng.standard_normal(shape).astype(np.float32)
    if group > 1 and shape[1] != 1 and (shape[0] // group % block or shape[1] % block):
        pytest.skip("this grouped weight has no blocked form at this block size")
    padded_group = -(-shape[0] // block) * block if shape[1] == 1 and group > 1 else group
    blocked = _encode(w, block, group, nchw_input)
    decoded = decode_nchwc_weight(blocked, padded_group, block)
    np.testing.assert_array_equal(decoded[:shape[0], :shape[1]], w)
    assert not decoded[shape[0]:].any() and not decoded[:, shape[1]:].any()


def _block8_model(weights_as_input: bool = False, activation: str = "Relu"):
    """A model written by hand as a block-8 machine writes it: a padded 12-channel Conv with
    a Relu, an NCHW-input Conv with Sum, a depthwise Conv with Clip, a MaxPool."""
    rng = np.random.default_rng(11)
    block = 8
    w1 = (rng.standard_normal((12, 20, 3, 3)) * 0.2).astype(np.float32)
    b1 = rng.standard_normal(12).astype(np.float32)
    wd = rng.standard_normal((12, 1, 3, 3)).astype(np.float32)
    w3 = (rng.standard_normal((12, 3, 3, 3)) * 0.3).astype(np.float32)
    inits = [numpy_helper.from_array(_encode(w1, block), "w1"),
             numpy_helper.from_array(np.concatenate([b1, np.zeros(4, np.float32)]), "b1"),
             numpy_helper.from_array(_encode(wd, block, group=12), "wd"),
             numpy_helper.from_array(_encode(w3, block, nchw_input=True), "w3")]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 20, 7, 6]),
              helper.make_tensor_value_info("x3", TensorProto.FLOAT, [2, 3, 7, 6])]
    if weights_as_input:
        inputs.append(helper.make_tensor_value_info("w1", TensorProto.FLOAT, [16, 24, 3, 3]))
    conv1 = {"activation": activation} if activation else {}
    nodes = [
        helper.make_node("ReorderInput", ["x"], ["xb"], domain=NCHWC),
        helper.make_node("Conv", ["xb", "w1", "b1"], ["c1"], domain=NCHWC, pads=[1] * 4,
                         **conv1),
        helper.make_node("Conv", ["x3", "w3", "", "c1"], ["c3"], domain=NCHWC, pads=[1] * 4),
        helper.make_node("Conv", ["c3", "wd"], ["cd"], domain=NCHWC, pads=[1] * 4, group=16,
                         activation="Clip", activation_params=[0.0, 6.0]),
        helper.make_node("MaxPool", ["cd"], ["p"], domain=NCHWC, kernel_shape=[2, 2],
                         strides=[2, 2]),
        helper.make_node("ReorderOutput", ["p"], ["y"], domain=NCHWC, channels=12),
    ]
    graph = helper.make_graph(nodes, "block8", inputs,
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid(NCHWC, 1)])
    feeds = {"x": rng.standard_normal((2, 20, 7, 6)).astype(np.float32),
             "x3": rng.standard_normal((2, 3, 7, 6)).astype(np.float32)}
    if weights_as_input:
        feeds["w1"] = onnx.numpy_helper.to_array(inits[0])
    b = _Net(0)
    b.nodes = [
        helper.make_node("Conv", ["x", b.const(w1), b.const(b1)], ["c1"], pads=[1] * 4),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["x3", b.const(w3)], ["c3"], pads=[1] * 4),
        helper.make_node("Add", ["c3", "r1"], ["s"]),
        helper.make_node("Conv", ["s", b.const(wd)], ["cd"], pads=[1] * 4, group=12),
        helper.make_node("Clip", ["cd", b.const(np.float32(0)), b.const(np.float32(6))],
                         ["r2"]),
        helper.make_node("MaxPool", ["r2"], ["y"], kernel_shape=[2, 2], strides=[2, 2])]
    plain = b.model([("x", [2, 20, 7, 6]), ("x3", [2, 3, 7, 6])], ["y"])
    return model, feeds, plain


def test_block_8_model_is_unblocked_and_matches_the_kernels() -> None:
    """A block-8 model (the size read off its shapes) is rewritten and matches the nchwc
    kernels (level 1) and onnxruntime."""
    model, feeds, plain = _block8_model()
    session = _ort(model, ALL)
    assert not _nchwc_ops(session._optimized_model)
    got = session.run(None, feeds)
    _assert_close(got, _ort(model, BASIC).run(None, feeds))
    # onnxruntime runs a saved model with its own machine's block size: the plain model
    _assert_close(got, _onnxruntime(plain, feeds))
    assert got[0].shape == (2, 12, 3, 3)


def test_regions_the_pass_cannot_prove_are_left_alone() -> None:
    """Weights fed as a graph input, an unknown activation, no MaxPool kernel: the region
    keeps its nchwc ops (and still runs on the kernels)."""
    model, feeds, plain = _block8_model(weights_as_input=True)
    assert _nchwc_ops(optimize_model(model, ALL, EVERY_KERNEL)) == _nchwc_ops(model)
    _assert_close(_ort(model, ALL).run(None, feeds),
                  _onnxruntime(plain, {k: feeds[k] for k in ("x", "x3")}))

    model, _, _ = _block8_model(activation="Softsign")
    assert _nchwc_ops(optimize_model(model, ALL, EVERY_KERNEL)) == _nchwc_ops(model)

    model, _, _ = _block8_model()
    no_max_pool = OptimizerContext(has_kernel=lambda domain, op, version: op != "MaxPool")
    assert _nchwc_ops(optimize_model(model, ALL, no_max_pool)) == _nchwc_ops(model)
    assert not _nchwc_ops(optimize_model(model, ALL, EVERY_KERNEL))


def test_without_fused_conv_the_activations_become_their_own_nodes() -> None:
    """Where the provider has no FusedConv, Conv (+ Add for the Sum) + the activation op."""
    model, feeds, plain = _block8_model()
    no_contrib = OptimizerContext(has_kernel=lambda domain, op, version: domain == "")
    optimized = optimize_model(model, ALL, no_contrib)
    ops = Counter(n.op_type for n in optimized.graph.node)
    assert not _nchwc_ops(optimized) and "FusedConv" not in ops
    assert ops["Conv"] == 3 and ops["Relu"] == 1 and ops["Clip"] == 1 and ops["Add"] == 1
    _assert_close(_ort(optimized, BASIC).run(None, feeds), _onnxruntime(plain, feeds))


def test_blocked_graph_output_and_unfit_graphs_are_left_alone() -> None:
    """A region whose blocked value is a graph output, and a graph whose channel counts fit
    no block size, keep their nchwc ops."""
    model, _, _ = _block8_model()
    model.graph.output.append(helper.make_tensor_value_info("c3", TensorProto.FLOAT, None))
    assert _nchwc_ops(optimize_model(model, ALL, EVERY_KERNEL)) == _nchwc_ops(model)

    model, _, _ = _block8_model()
    for node in model.graph.node:
        if node.op_type == "ReorderOutput":
            node.attribute[0].i = 3  # 16 padded channels cannot hold 3 real ones
    assert _nchwc_ops(optimize_model(model, ALL, EVERY_KERNEL)) == _nchwc_ops(model)


def test_other_regions_are_still_rewritten() -> None:
    """Two regions: the one with runtime weights stays, the other is rewritten."""
    model, feeds, plain = _block8_model(weights_as_input=True)
    # a second, independent region reading x: ReorderInput -> GlobalMaxPool -> ReorderOutput
    model.graph.node.extend([
        helper.make_node("ReorderInput", ["x"], ["xb2"], domain=NCHWC),
        helper.make_node("GlobalMaxPool", ["xb2"], ["gp"], domain=NCHWC),
        helper.make_node("ReorderOutput", ["gp"], ["g"], domain=NCHWC, channels=20)])
    model.graph.output.append(helper.make_tensor_value_info("g", TensorProto.FLOAT, None))
    optimized = optimize_model(model, ALL, EVERY_KERNEL)
    assert _nchwc_ops(optimized) == _nchwc_ops(model) - Counter(
        {"ReorderInput": 1, "GlobalMaxPool": 1, "ReorderOutput": 1})
    got = _ort(model, ALL).run(None, feeds)
    _assert_close(got[:1], _onnxruntime(plain, {k: feeds[k] for k in ("x", "x3")}))
    np.testing.assert_array_equal(got[1], feeds["x"].max(axis=(2, 3), keepdims=True))


def test_unknown_plain_op_on_a_blocked_value_keeps_the_region() -> None:
    """A plain op the pass does not know (Softmax) reading a blocked value: left alone."""
    model, feeds, plain = _block8_model()
    for node in model.graph.node:
        if node.op_type == "ReorderOutput":
            node.input[0] = "sm"
    model.graph.node.insert(len(model.graph.node) - 1,
                            helper.make_node("Softmax", ["p"], ["sm"], axis=1))
    assert _nchwc_ops(optimize_model(model, ALL, EVERY_KERNEL)) == _nchwc_ops(model)


@pytest.mark.parametrize("opset", [11, 12])
def test_old_opsets_get_a_resize_with_roi(opset: int, tmp_path: Path) -> None:
    """Before opset 13 Resize needs its roi input: the rewritten model still runs on
    onnxruntime and matches it."""
    model, feeds = _pools_upsample()
    model.opset_import[0].version = opset
    model.graph.initializer.append(numpy_helper.from_array(np.zeros(0, np.float32), "roi0"))
    for node in model.graph.node:
        if node.op_type == "Resize":
            node.input[1] = "roi0"
    path = tmp_path / "saved.onnx"
    _save_optimized(model, path)
    so = ort.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "unblocked.onnx")
    session = ort.InferenceSession(str(path), so)
    assert not _nchwc_ops(session._optimized_model)
    got = session.run(None, feeds)
    _assert_close(got, _onnxruntime(str(path), feeds))
    _assert_close(_onnxruntime(so.optimized_model_filepath, feeds), got)


@pytest.mark.parametrize("mode,transform", [("nearest", "half_pixel"), ("nearest", "asymmetric"),
                                            ("linear", "half_pixel"),
                                            ("linear", "align_corners")])
def test_upsample_becomes_a_resize_computing_what_the_kernel_does(mode, transform) -> None:
    """An nchwc Upsample (nearest repeats pixels whatever the coordinate mode) as Resize:
    same outputs as the nchwc kernels (level 1)."""
    nodes = [helper.make_node("ReorderInput", ["x"], ["xb"], domain=NCHWC),
             helper.make_node("Upsample", ["xb"], ["u"], domain=NCHWC, scales=[1, 1, 3, 2],
                              mode=mode, coordinate_transformation_mode=transform),
             helper.make_node("ReorderOutput", ["u"], ["y"], domain=NCHWC, channels=12)]
    graph = helper.make_graph(
        nodes, "up", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 12, 5, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid(NCHWC, 1)])
    feeds = {"x": np.random.default_rng(51).standard_normal((2, 12, 5, 4)).astype(np.float32)}
    session = _ort(model, ALL)
    assert Counter(n.op_type for n in session._optimized_model.graph.node) == {"Resize": 1}
    _assert_close(session.run(None, feeds), _ort(model, BASIC).run(None, feeds))
