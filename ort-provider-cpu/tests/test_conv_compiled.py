"""Conv and FusedConv on the compiled loops (kernels/conv_loops.py) against the numpy kernels
(provider option ``compiled_kernels=0``) and onnxruntime: depthwise convolutions of many
geometries (padding read in the loop), the GEMM path's compiled im2col and epilogue, every
FusedConv activation with and without the sum input Z, several intra-op threads."""

from __future__ import annotations

import numpy as np
import pytest
from ort import InferenceSession, SessionOptions
from ort.testing import (assert_outputs_match, node_model, run_onnxruntime,
                         run_ort)

pytest.importorskip("numba")

RNG = np.random.default_rng(16)
MS = "com.microsoft"
COMPILED = [("CPUExecutionProvider", {"compiled_kernels": "1"})]
NUMPY = [("CPUExecutionProvider", {"compiled_kernels": "0"})]


@pytest.fixture(autouse=True)
def short_rows_compiled(monkeypatch):
    """The compiled im2col for every output width (it leaves rows under 16 values to numpy
    by default: these tests use small images)."""
    from ort_provider_cpu.kernels import conv_compiled

    monkeypatch.setattr(conv_compiled, "MIN_LOOP_ROW", 1)


def rand(shape, dtype=np.float32):
    """Uniform values in [-2, 2) of ``shape`` and ``dtype``."""
    return RNG.uniform(-2.0, 2.0, size=shape).astype(dtype)


def out_size(size, k, s, d, begin, end):
    """Output extent of one axis with explicit pads."""
    return (size + begin + end - (k - 1) * d - 1) // s + 1


def one_node(op, inputs, attrs, const, domain):
    """A one-node model (opset 17, IR 9) and its feeds."""
    return node_model(op, inputs, attrs, domain=domain, opset=17, constants=const,
                      output_types=[inputs[0].dtype], ir_version=9)


def check(op, inputs, attrs, const=(1, 2), threads=1, tol=1e-4, domain=""):
    """Compiled loops vs numpy kernels (to ``tol``) vs onnxruntime (to 1e-4; float64
    models, which onnxruntime's Conv lacks, compared in float32) on a one-node model."""
    model, feeds = one_node(op, inputs, attrs, const, domain)
    options = SessionOptions()
    options.intra_op_num_threads = threads
    compiled = run_ort(model, feeds, COMPILED, options)
    reference = run_ort(model, feeds, NUMPY, options)
    assert compiled[0].dtype == inputs[0].dtype
    assert_outputs_match(compiled, reference, tol, tol)
    if inputs[0].dtype == np.float64:
        inputs = [v.astype(np.float32) for v in inputs]
        model, feeds = one_node(op, inputs, attrs, const, domain)
    want = [np.asarray(v) for v in run_onnxruntime(model, feeds)]
    assert compiled[0].shape == want[0].shape
    assert_outputs_match([compiled[0].astype(want[0].dtype)], want, 1e-4, 1e-4)
    assert_outputs_match([reference[0].astype(want[0].dtype)], want, 1e-4, 1e-4)
    return compiled[0]


@pytest.fixture(autouse=True)
def no_direct_loop(request, monkeypatch):
    """The small shapes of these tests would all take the direct loop: each test runs the
    path it names (the direct loop's own tests, ``test_direct*``, keep it)."""
    from ort_provider_cpu.kernels import conv_compiled

    if not request.node.name.startswith("test_direct"):
        monkeypatch.setattr(conv_compiled, "DIRECT_MAX_MACS", 0)


# ------------------------------------------------------------------------------------------
# depthwise
# ------------------------------------------------------------------------------------------

DEPTHWISE_2D = [
    ((1, 4, 7, 9), (3, 3), {"pads": [1, 1, 1, 1]}),
    ((2, 3, 8, 8), (3, 3), {"pads": [0, 1, 2, 0]}),  # asymmetric
    ((1, 5, 9, 10), (3, 3), {"pads": [1, 1, 1, 1], "strides": [2, 2]}),
    ((1, 5, 10, 9), (3, 3), {"pads": [0, 0, 1, 1], "strides": [2, 2]}),
    ((1, 3, 11, 12), (3, 3), {"pads": [2, 2, 2, 2], "dilations": [2, 2]}),
    ((1, 3, 11, 12), (3, 3), {"pads": [1, 2, 0, 1], "dilations": [2, 1], "strides": [1, 2]}),
    ((1, 2, 13, 9), (5, 5), {"pads": [2, 2, 2, 2]}),
    ((3, 2, 9, 13), (5, 3), {"pads": [1, 0, 2, 1], "strides": [3, 2]}),
    ((1, 4, 6, 6), (2, 2), {}),
    ((1, 4, 6, 7), (1, 1), {"strides": [2, 2]}),
    ((1, 3, 2, 2), (3, 3), {"pads": [1, 1, 1, 1]}),  # the kernel is larger than the input
    ((1, 3, 1, 5), (3, 3), {"pads": [1, 1, 1, 1]}),
    ((1, 3, 7, 7), (3, 3), {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    ((1, 3, 8, 8), (4, 4), {"auto_pad": "SAME_LOWER"}),
    ((1, 3, 8, 7), (3, 3), {"auto_pad": "VALID", "strides": [2, 1]}),
    ((1, 6, 3, 3), (7, 7), {"pads": [3, 3, 3, 3]}),
]


@pytest.mark.parametrize("x_shape,kernel,attrs", DEPTHWISE_2D,
                         ids=[f"{x}-{k}-{sorted(a.items())}" for x, k, a in DEPTHWISE_2D])
def test_depthwise_2d(x_shape, kernel, attrs):
    c = x_shape[1]
    x, w, b = rand(x_shape), rand((c, 1) + kernel), rand((c,))
    check("Conv", [x, w, b], dict(attrs, group=c))


def test_depthwise_without_bias_and_float64():
    x, w = rand((2, 3, 9, 8), np.float64), rand((3, 1, 3, 3), np.float64)
    check("Conv", [x, w], {"group": 3, "pads": [1, 0, 1, 2], "strides": [2, 1]}, const=(1,),
          tol=1e-10)


@pytest.mark.parametrize("attrs", [{"pads": [1, 1]}, {"pads": [0, 2], "strides": [2]},
                                   {"dilations": [3], "pads": [3, 3]},
                                   {"auto_pad": "SAME_UPPER", "strides": [3]}])
def test_depthwise_1d(attrs):
    x, w, b = rand((2, 5, 17)), rand((5, 1, 3)), rand((5,))
    check("Conv", [x, w, b], dict(attrs, group=5))


def test_depthwise_3d_falls_back_to_numpy():
    x, w, b = rand((1, 3, 5, 6, 4)), rand((3, 1, 3, 3, 3)), rand((3,))
    check("Conv", [x, w, b], {"group": 3, "pads": [1] * 6})


def test_depthwise_weights_as_input():
    x, w, b = rand((1, 4, 6, 6)), rand((4, 1, 3, 3)), rand((4,))
    check("Conv", [x, w, b], {"group": 4, "pads": [1, 1, 1, 1]}, const=())


@pytest.mark.parametrize("threads", [2, 3])
def test_depthwise_split_over_threads(threads, monkeypatch):
    from ort_provider_cpu.kernels import conv_compiled

    monkeypatch.setattr(conv_compiled, "MIN_PIECE_OUTPUTS", 1)  # every image x channel a piece
    x, w, b = rand((3, 7, 10, 9)), rand((7, 1, 3, 3)), rand((7,))
    z = rand((3, 7, 5, 5))
    check("FusedConv", [x, w, b, z], {"group": 7, "pads": [1, 1, 1, 1], "strides": [2, 2],
                                      "activation": "Relu"}, threads=threads, domain=MS)


@pytest.mark.parametrize("x_shape,w_shape,attrs", [
    ((1, 5, 12, 11), (40, 5, 1, 1), {}),  # 1x1, rows of W split
    ((1, 6, 12, 11), (9, 6, 1, 1), {}),  # 1x1, few rows: columns split
    ((1, 4, 12, 11), (36, 4, 3, 3), {"pads": [1, 1, 1, 1], "strides": [1, 2]}),  # im2col
    ((1, 4, 12, 11), (7, 4, 3, 3), {"pads": [1, 0, 1, 2], "strides": [2, 1]}),
    ((5, 3, 4, 4), (33, 3, 3, 3), {"pads": [1, 1, 1, 1], "strides": [2, 2]}),  # images merged
    ((5, 3, 4, 4), (6, 3, 3, 3), {"pads": [1, 1, 1, 1], "strides": [2, 2]}),
])
@pytest.mark.parametrize("threads", [2, 3])
def test_gemm_pieces_finish_their_own_block(x_shape, w_shape, attrs, threads, monkeypatch):
    """Each thread multiplies and finishes (bias, Z, activation) its own block of rows or
    columns (conv_compiled.product_finished), for 1x1, im2col and several-image chunks."""
    from ort_provider_cpu import threaded_gemm
    from ort_provider_cpu.kernels import conv, conv_compiled

    monkeypatch.setattr(threaded_gemm, "MIN_MACS_PER_PIECE", 1)
    monkeypatch.setattr(conv_compiled, "DIRECT_MAX_MACS", 0)
    monkeypatch.setattr(conv_compiled, "WINOGRAD_MIN_TILES", 1 << 30)
    if x_shape[0] > 1:
        monkeypatch.setattr(conv, "_COLUMN_BUDGET", 4096)  # chunks of several images
    calls = []
    finish = conv_compiled.product_finished
    monkeypatch.setattr(conv_compiled, "product_finished",
                        lambda *a: calls.append(a[3]) or finish(*a))
    x, w, b = rand(x_shape), rand(w_shape), rand(w_shape[:1])
    y = check("Conv", [x, w, b], attrs, threads=threads)
    z = rand(y.shape)
    check("FusedConv", [x, w, b, z], dict(attrs, activation="Clip",
                                          activation_params=[-1.0, 1.5]),
          threads=threads, domain=MS)
    assert calls and set(calls) == {threads}


@pytest.mark.parametrize("x_shape,w_shape,attrs", [
    ((1, 4, 12, 11), (6, 4, 3, 3), {"pads": [1, 1, 1, 1], "strides": [1, 2]}),  # rows
    ((1, 3, 9, 5), (5, 3, 3, 3), {"pads": [1, 0, 1, 2]}),  # short rows
    ((5, 3, 4, 4), (6, 3, 3, 3), {"pads": [1, 1, 1, 1], "strides": [2, 2]}),  # images merged
    ((3, 4, 6, 7), (6, 2, 3, 3), {"pads": [1, 1, 1, 1], "group": 2}),
    ((4, 5, 6, 7), (6, 5, 1, 1), {}),  # 1x1: whole images per thread
])
@pytest.mark.parametrize("threads", [2, 3])
def test_chunks_split_over_threads(x_shape, w_shape, attrs, threads, monkeypatch):
    """Several chunks (or 1x1 images) go to the threads whole (each builds, multiplies and
    finishes its own columns in buffers of its own), with Z and a fused activation."""
    from ort_provider_cpu import threaded_gemm
    from ort_provider_cpu.kernels import conv, conv_compiled

    monkeypatch.setattr(threaded_gemm, "MIN_MACS_PER_PIECE", 1)
    monkeypatch.setattr(conv_compiled, "WINOGRAD_MIN_TILES", 1 << 30)
    monkeypatch.setattr(conv, "_COLUMN_BUDGET", 256)
    monkeypatch.setattr(conv, "_MIN_COLUMNS", 8)
    splits = []
    split = conv_compiled.split_work
    monkeypatch.setattr(conv_compiled, "split_work",
                        lambda work, total, *a: splits.append(total) or split(work, total, *a))
    x, w, b = rand(x_shape), rand(w_shape), rand(w_shape[:1])
    y = check("Conv", [x, w, b], attrs, threads=threads)
    check("FusedConv", [x, w, b, rand(y.shape)],
          dict(attrs, activation="LeakyRelu", activation_params=[0.2]), threads=threads,
          domain=MS)
    assert splits and min(splits) >= 2


def test_one_image_chunks_are_a_multiple_of_the_threads():
    """An image split into chunks of rows is split into a multiple of the threads."""
    from ort_provider_cpu.kernels import conv

    for threads in (1, 2, 3, 4):
        chunks = conv._conv_chunks(1, (100, 100), 600, 64, threads)
        assert len(chunks) % threads == 0
        assert chunks[0][2] == 0 and chunks[-1][3] == 100
        assert all(a[3] == b[2] for a, b in zip(chunks, chunks[1:]))
    assert len(conv._conv_chunks(1, (3, 1000), 4000, 64, 4)) == 3  # no more chunks than rows


# ------------------------------------------------------------------------------------------
# the GEMM path: compiled im2col and epilogue
# ------------------------------------------------------------------------------------------

DENSE = [
    ((1, 3, 10, 11), (4, 3, 3, 3), {"pads": [1, 1, 1, 1]}),
    ((2, 3, 10, 11), (4, 3, 3, 3), {"pads": [0, 2, 1, 0], "strides": [2, 2]}),
    ((1, 2, 12, 12), (5, 2, 3, 3), {"pads": [2, 2, 2, 2], "dilations": [2, 2]}),
    ((1, 3, 16, 15), (6, 3, 7, 7), {"pads": [3, 3, 3, 3], "strides": [2, 2]}),
    ((2, 4, 7, 7), (6, 2, 3, 3), {"pads": [1, 1, 1, 1], "group": 2}),
    ((2, 6, 5, 6), (6, 2, 3, 1), {"pads": [1, 0, 1, 0], "group": 3, "strides": [1, 2]}),
    ((3, 5, 6, 7), (4, 5, 1, 1), {}),  # pointwise: X itself
    ((2, 5, 6, 7), (4, 5, 1, 1), {"strides": [2, 2]}),
    ((2, 5, 6, 7), (4, 5, 1, 1), {"pads": [1, 0, 0, 1]}),
    ((1, 3, 9, 9), (4, 3, 3, 3), {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    ((1, 3, 8, 8), (4, 3, 4, 4), {"auto_pad": "SAME_LOWER"}),
    ((1, 3, 2, 3), (2, 3, 3, 3), {"pads": [1, 1, 1, 1]}),
    ((4, 3, 3, 3), (2, 3, 2, 2), {}),
]


@pytest.mark.parametrize("x_shape,w_shape,attrs", DENSE,
                         ids=[f"{x}-{w}-{sorted(a.items())}" for x, w, a in DENSE])
def test_dense_2d(x_shape, w_shape, attrs):
    x, w, b = rand(x_shape), rand(w_shape), rand(w_shape[:1])
    check("Conv", [x, w, b], attrs)


@pytest.mark.parametrize("x_shape,w_shape,attrs", DENSE[:7], ids=range(7))
def test_dense_2d_in_small_chunks(x_shape, w_shape, attrs, monkeypatch):
    """Column budgets this small split the GEMM into chunks of rows and of images."""
    from ort_provider_cpu.kernels import conv

    monkeypatch.setattr(conv, "_COLUMN_BUDGET", 64)
    monkeypatch.setattr(conv, "_MIN_COLUMNS", 8)
    x, w, b = rand(x_shape), rand(w_shape), rand(w_shape[:1])
    check("Conv", [x, w, b], attrs)


def test_dense_float64_and_no_bias():
    x, w = rand((2, 3, 8, 9), np.float64), rand((4, 3, 3, 3), np.float64)
    check("Conv", [x, w], {"pads": [1, 2, 0, 1]}, const=(1,), tol=1e-10)


@pytest.mark.parametrize("attrs", [{"pads": [1, 2]}, {"strides": [2], "dilations": [2]}])
def test_dense_1d(attrs):
    x, w, b = rand((2, 3, 15)), rand((4, 3, 3)), rand((4,))
    check("Conv", [x, w, b], attrs)


def test_dense_3d():
    x, w, b = rand((1, 2, 5, 4, 6)), rand((3, 2, 3, 3, 3)), rand((3,))
    check("Conv", [x, w, b], {"pads": [1, 0, 1, 1, 1, 0], "strides": [1, 2, 1]})


def test_empty_batch():
    x, w, b = rand((0, 3, 5, 5)), rand((3, 1, 3, 3)), rand((3,))
    y = run_ort(*node_model("Conv", [x, w, b], {"group": 3, "pads": [1, 1, 1, 1]},
                            opset=17, constants=(1, 2)), COMPILED)[0]
    assert y.shape == (0, 3, 5, 5)


# ------------------------------------------------------------------------------------------
# FusedConv: activations and Z in the loops' epilogue
# ------------------------------------------------------------------------------------------

ACTIVATIONS = [
    {}, {"activation": "Relu"}, {"activation": "Sigmoid"}, {"activation": "Tanh"},
    {"activation": "LeakyRelu", "activation_params": [0.2]},
    {"activation": "Clip", "activation_params": [-0.5, 0.7]},
    {"activation": "Clip", "activation_params": [0.0, 6.0]},
    {"activation": "HardSigmoid", "activation_params": [0.3, 0.4]},
]
SHAPES = [
    ((2, 6, 9, 8), (6, 1, 3, 3), {"pads": [1, 1, 1, 1], "group": 6}),  # depthwise
    ((1, 6, 9, 8), (6, 1, 3, 3), {"pads": [0, 1, 1, 0], "strides": [2, 2], "group": 6}),
    ((2, 4, 9, 8), (5, 4, 3, 3), {"pads": [1, 1, 1, 1]}),  # im2col
    ((2, 4, 9, 8), (5, 4, 1, 1), {}),  # pointwise
    ((3, 4, 3, 3), (6, 2, 3, 3), {"pads": [1, 1, 1, 1], "group": 2}),  # images per chunk
]


@pytest.mark.parametrize("with_z", [False, True], ids=["", "z"])
@pytest.mark.parametrize("act", ACTIVATIONS,
                         ids=[a.get("activation", "none") + str(a.get("activation_params", ""))
                              for a in ACTIVATIONS])
@pytest.mark.parametrize("x_shape,w_shape,attrs", SHAPES,
                         ids=["depthwise", "depthwise-s2", "im2col", "pointwise", "images"])
def test_fused_conv(x_shape, w_shape, attrs, act, with_z):
    x, w, b = rand(x_shape), rand(w_shape), rand(w_shape[:1])
    pads = attrs.get("pads", [0] * 4)
    strides = attrs.get("strides", [1, 1])
    out = [out_size(x_shape[2 + i], w_shape[2 + i], strides[i], 1, pads[i], pads[i + 2])
           for i in range(2)]
    inputs = [x, w, b] + ([rand((x_shape[0], w_shape[0], *out))] if with_z else [])
    check("FusedConv", inputs, dict(act, **attrs), domain=MS)


def test_fused_conv_z_broadcast_is_added_after_the_loop():
    """A Z of another shape than Y (broadcast) is added outside the loops, then activated."""
    x, w, b = rand((1, 4, 6, 6)), rand((4, 1, 3, 3)), rand((4,))
    z = rand((1, 4, 6, 6))
    check("FusedConv", [x, w, b, z], {"group": 4, "pads": [1, 1, 1, 1],
                                      "activation": "LeakyRelu", "activation_params": [0.1]},
          domain=MS)


# ------------------------------------------------------------------------------------------
# the loops run at all (a silently skipped loop would make every comparison above vacuous)
# ------------------------------------------------------------------------------------------


def test_compiled_paths_are_taken(monkeypatch):
    from ort_provider_cpu.kernels import conv_compiled

    calls = []
    depthwise, gemm = conv_compiled.ConvLoops.depthwise, conv_compiled.conv_gemm_compiled

    def spy_depthwise(self, *args):
        calls.append("depthwise")
        return depthwise(self, *args)

    def spy_gemm(*args):
        calls.append("gemm")
        return gemm(*args)

    monkeypatch.setattr(conv_compiled.ConvLoops, "depthwise", spy_depthwise)
    monkeypatch.setattr(conv_compiled, "conv_gemm_compiled", spy_gemm)
    check("Conv", [rand((1, 3, 5, 5)), rand((3, 1, 3, 3))], {"group": 3}, const=(1,))
    check("Conv", [rand((1, 3, 5, 5)), rand((2, 3, 3, 3))], {}, const=(1,))
    check("Conv", [rand((2, 3, 5, 5)), rand((2, 3, 1, 1))], {}, const=(1,))  # images merged
    assert calls == ["depthwise", "gemm", "gemm"]


def test_short_rows_use_numpy_columns(monkeypatch):
    """Output rows under MIN_LOOP_ROW (where it is raised) build their columns with numpy;
    wider rows with the loop."""
    from ort_provider_cpu.kernels import conv_compiled

    monkeypatch.setattr(conv_compiled, "MIN_LOOP_ROW", 16)
    calls = []
    gemm = conv_compiled.conv_gemm_compiled
    monkeypatch.setattr(conv_compiled, "conv_gemm_compiled", lambda *a: calls.append(1) or gemm(*a))
    check("FusedConv", [rand((1, 2, 6, 15)), rand((3, 2, 3, 3)), rand((3,))],
          {"pads": [1, 1, 1, 1], "activation": "Relu"}, domain=MS)
    assert not calls
    check("FusedConv", [rand((1, 2, 6, 16)), rand((3, 2, 3, 3)), rand((3,))],
          {"pads": [1, 1, 1, 1], "activation": "Relu"}, domain=MS)
    assert calls


def test_compiled_kernels_off_runs_numpy(monkeypatch):
    from ort_provider_cpu.kernels import conv_compiled

    def fail(*args):
        raise AssertionError("compiled loop used with compiled_kernels=0")

    monkeypatch.setattr(conv_compiled.ConvLoops, "depthwise", fail)
    monkeypatch.setattr(conv_compiled, "conv_gemm_compiled", fail)
    model, feeds = node_model("Conv", [rand((1, 3, 5, 5)), rand((3, 1, 3, 3))], {"group": 3},
                              opset=17, constants=(1,))
    run_ort(model, feeds, NUMPY)


# ------------------------------------------------------------------------------------------
# Winograd F(2x2, 3x3)
# ------------------------------------------------------------------------------------------

WINOGRAD = [
    ((1, 16, 8, 8), 16, {"pads": [1, 1, 1, 1]}),
    ((2, 17, 9, 7), 18, {"pads": [1, 1, 1, 1]}),  # odd output height and width
    ((1, 16, 10, 11), 20, {"pads": [0, 2, 1, 0]}),  # asymmetric
    ((3, 16, 6, 6), 16, {}),  # no padding
    ((1, 16, 7, 8), 16, {"auto_pad": "SAME_UPPER"}),
    ((2, 16, 5, 5), 24, {"pads": [2, 2, 2, 2]}),  # pads wider than the kernel's reach
]


@pytest.fixture
def winograd_everywhere(monkeypatch):
    """Winograd for the small test shapes, in chunks of at most 20 tiles (several chunks,
    the last one partial)."""
    from ort_provider_cpu.kernels import conv_compiled

    monkeypatch.setattr(conv_compiled, "WINOGRAD_MIN_TILES", 1)
    monkeypatch.setattr(conv_compiled, "WINOGRAD_TILES", 20)
    calls = []
    winograd = conv_compiled.ConvLoops.winograd
    monkeypatch.setattr(conv_compiled.ConvLoops, "winograd",
                        lambda self, *a: calls.append(1) or winograd(self, *a))
    return calls


@pytest.mark.parametrize("x_shape,m,attrs", WINOGRAD,
                         ids=[f"{x}-{m}-{sorted(a.items())}" for x, m, a in WINOGRAD])
def test_winograd(x_shape, m, attrs, winograd_everywhere):
    x, w, b = rand(x_shape), rand((m, x_shape[1], 3, 3)), rand((m,))
    check("Conv", [x, w, b], attrs)
    assert winograd_everywhere


@pytest.mark.parametrize("act", ACTIVATIONS[:6], ids=range(6))
def test_winograd_fused(act, winograd_everywhere):
    x, w, b = rand((2, 16, 9, 8)), rand((16, 16, 3, 3)), rand((16,))
    z = rand((2, 16, 9, 8))
    check("FusedConv", [x, w, b, z], dict(act, pads=[1, 1, 1, 1]), domain=MS)
    assert winograd_everywhere


@pytest.mark.parametrize("x_shape,m,attrs", WINOGRAD,
                         ids=[f"{x}-{m}-{sorted(a.items())}" for x, m, a in WINOGRAD])
@pytest.mark.parametrize("threads", [2, 3])
def test_winograd_pieces_over_threads(x_shape, m, attrs, threads, winograd_everywhere,
                                      monkeypatch):
    """Chunks split into pieces of tile rows (one image) or of images, each transformed,
    multiplied and finished on one thread, with Z and an activation."""
    from ort_provider_cpu import threaded_gemm
    from ort_provider_cpu.kernels import conv_compiled

    monkeypatch.setattr(threaded_gemm, "MIN_MACS_PER_PIECE", 1)
    monkeypatch.setattr(conv_compiled, "WINOGRAD_PIECE_TILES", 1)
    monkeypatch.setattr(conv_compiled, "WINOGRAD_TILES", 1 << 20)  # one chunk: all images
    pieces = []
    split = conv_compiled.split_work
    monkeypatch.setattr(conv_compiled, "split_work",
                        lambda work, total, count, *a: pieces.append(count)
                        or split(work, total, count, *a))
    x, w, b = rand(x_shape), rand((m, x_shape[1], 3, 3)), rand((m,))
    y = check("Conv", [x, w, b], attrs, threads=threads)
    check("FusedConv", [x, w, b, rand(y.shape)], dict(attrs, activation="Relu"),
          threads=threads, domain=MS)
    assert winograd_everywhere and pieces and max(pieces) >= 2


def test_winograd_float64_weights_as_input(winograd_everywhere):
    x, w = rand((1, 16, 7, 9), np.float64), rand((16, 16, 3, 3), np.float64)
    check("Conv", [x, w], {"pads": [1, 0, 1, 2]}, const=(), tol=1e-10)
    assert winograd_everywhere


def test_winograd_not_for_strides_dilations_groups_or_few_channels(winograd_everywhere):
    check("Conv", [rand((1, 16, 9, 9)), rand((16, 16, 3, 3))], {"strides": [2, 2]},
          const=(1,))
    check("Conv", [rand((1, 16, 9, 9)), rand((16, 16, 3, 3))], {"dilations": [2, 2]},
          const=(1,))
    check("Conv", [rand((1, 32, 9, 9)), rand((32, 16, 3, 3))], {"group": 2}, const=(1,))
    check("Conv", [rand((1, 8, 9, 9)), rand((16, 8, 3, 3))], {}, const=(1,))
    assert not winograd_everywhere


def test_winograd_input_weights_changed_in_place_between_runs(winograd_everywhere):
    """An input W is transformed on every run: the same array with new values gives the new
    convolution."""
    x, w = rand((1, 16, 6, 6)), rand((16, 16, 3, 3))
    model, feeds = one_node("Conv", [x, w], {"pads": [1, 1, 1, 1]}, (), "")
    from ort import InferenceSession

    session = InferenceSession(model.SerializeToString(), providers=COMPILED)
    first = session.run(None, feeds)[0]
    feeds["in1"] *= -2
    second = session.run(None, feeds)[0]
    assert_outputs_match([second], [first * -2], 1e-4, 1e-4)
    assert len(winograd_everywhere) == 2


# ------------------------------------------------------------------------------------------
# direct (small convs in one call)
# ------------------------------------------------------------------------------------------

DIRECT = [
    ((1, 65, 9), (64, 65, 3), {"pads": [1, 1]}),  # a VAD encoder's Conv1d
    ((2, 65, 9), (64, 65, 3), {"pads": [1, 1], "strides": [2]}),
    ((1, 1, 640), (130, 1, 128), {"pads": [64, 64], "strides": [64]}),  # a learned STFT
    ((1, 8, 7, 9), (16, 8, 3, 3), {"pads": [1, 2, 0, 1]}),  # asymmetric
    ((2, 8, 9, 9), (16, 4, 3, 3), {"pads": [1, 1, 1, 1], "group": 2, "strides": [2, 1]}),
    ((1, 6, 11, 12), (8, 6, 3, 3), {"pads": [2, 2, 2, 2], "dilations": [2, 2]}),
    ((1, 16, 5, 5), (8, 16, 1, 1), {}),
    ((1, 16, 4, 4), (24, 16, 5, 5), {"auto_pad": "SAME_UPPER"}),
    ((1, 128, 1), (1, 128, 1), {}),  # one output channel
    ((2, 4, 3, 3), (3, 4, 1, 1), {}),
]


@pytest.mark.parametrize("x_shape,w_shape,attrs", DIRECT,
                         ids=[f"{x}-{w}-{sorted(a.items())}" for x, w, a in DIRECT])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_direct(x_shape, w_shape, attrs, dtype, monkeypatch):
    from ort_provider_cpu.kernels import conv_compiled

    monkeypatch.setattr(conv_compiled, "DIRECT_MAX_POSITIONS", 1 << 20)  # every shape here
    calls = []
    direct = conv_compiled.ConvLoops.direct
    monkeypatch.setattr(conv_compiled.ConvLoops, "direct",
                        lambda self, *a: calls.append(1) or direct(self, *a))
    x, w, b = rand(x_shape, dtype), rand(w_shape, dtype), rand((w_shape[0],), dtype)
    check("Conv", [x, w, b], attrs)
    check("Conv", [x, w], attrs, const=(1,))
    assert calls


def test_direct_only_for_few_positions():
    """The direct loop runs position by position: few positions (a VAD's Conv1d, a 1x1 on
    a 1x1 squeeze-excitation map, one output channel) take it, a 2304-position first layer
    does not."""
    from ort_provider_cpu.kernels import conv_compiled
    from ort_provider_cpu.kernels.windows import WindowAttrs, WindowGeometry

    def fits(out_shape, n, c, m, kernel):
        wa = WindowAttrs(kernel, (1,) * len(kernel), (1,) * len(kernel),
                         (0,) * 2 * len(kernel), "NOTSET", 0)
        geo = WindowGeometry(out_shape, out_shape, (0,) * len(kernel), (0,) * len(kernel),
                             (0,) * len(kernel))
        return conv_compiled.direct_fits(wa, geo, n, c, m, 1)

    assert fits((9,), 1, 65, 64, (3,))
    assert fits((1, 1), 1, 512, 128, (1, 1))
    assert fits((1,), 1, 128, 1, (1,))  # one output channel (silero's decoder)
    assert not fits((9,), 8, 65, 64, (3,))  # 72 positions over the batch
    assert not fits((24, 96), 1, 3, 8, (3, 3))
    assert not fits((6, 24), 1, 88, 16, (1, 1))


@pytest.mark.parametrize("act", ACTIVATIONS[:6], ids=range(6))
def test_direct_fused_activation_and_z(act):
    x, w, b = rand((1, 65, 9)), rand((64, 65, 3)), rand((64,))
    z = rand((1, 64, 9))
    attrs = {"pads": [1, 1], **act}
    check("FusedConv", [x, w, b], attrs, domain="com.microsoft")
    check("FusedConv", [x, w, b, z], attrs, domain="com.microsoft")


def test_conv_and_pooling_nodes_of_a_session_share_one_scratch_pool():
    """Per-node pools kept every node's work buffers for the session's life."""
    from onnx import TensorProto, helper, numpy_helper

    import ort
    from ort.testing import make_model
    from ort_provider_cpu.kernels.windows import shared_scratch

    w = numpy_helper.from_array(rand((8, 8, 3, 3)), "W")
    model = make_model(
        [helper.make_node("Conv", ["X", "W"], ["A"], pads=[1, 1, 1, 1]),
         helper.make_node("MaxPool", ["A"], ["B"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
         helper.make_node("Conv", ["B", "W"], ["Y"], pads=[1, 1, 1, 1])],
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 8, 20, 20])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)], [w])
    session = ort.InferenceSession(model.SerializeToString())
    session.run(None, {"X": rand((1, 8, 20, 20))})
    provider = session._providers[0]
    pools = provider.__dict__["_ort_scratch_pools"]
    assert len(pools) == 1
    node = type("Node", (), {"provider": provider, "xp": np})()
    assert shared_scratch(node) is next(iter(pools.values()))


@pytest.mark.parametrize("op,attrs,with_bias", [
    ("Conv", {"pads": [1, 1], "kernel_shape": [3]}, True),
    ("Conv", {"pads": [0, 2], "strides": [2], "kernel_shape": [3]}, False),
    ("FusedConv", {"pads": [1, 1], "activation": "LeakyRelu", "activation_params": [0.2]}, True),
    ("FusedConv", {"pads": [1, 1], "activation": "Sigmoid"}, True),
])
def test_direct_calls_bound_to_a_shape_repeat_exactly(op, attrs, with_bias):
    """From its second call a small Conv runs a call bound to X's shape: every later run,
    with new values, equals the numpy kernels."""
    w, b = rand((16, 8, 3)), rand((16,))
    inputs = [rand((1, 8, 9)), w] + ([b] if with_bias else [])
    domain = MS if op == "FusedConv" else ""
    model, feeds = one_node(op, inputs, attrs, (1, 2) if with_bias else (1,), domain)
    data = model.SerializeToString()
    compiled = InferenceSession(data, providers=COMPILED)
    reference = InferenceSession(data, providers=NUMPY)
    (name,) = feeds
    for _ in range(4):
        feeds = {name: rand((1, 8, 9))}
        np.testing.assert_allclose(compiled.run(None, feeds)[0],
                                   reference.run(None, feeds)[0], rtol=1e-5, atol=1e-5)
