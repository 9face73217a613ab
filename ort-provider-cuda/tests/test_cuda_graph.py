"""``enable_cuda_graph=1`` with the cupy double: the fake records the ops issued on the
capturing stream, poisons the buffers the capture wrote (a real capture executes nothing) and
replays the record on ``Graph.launch``, so a graph that misses an op, reads a stale buffer or
is never launched gives wrong outputs here."""

from __future__ import annotations

import logging

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import ort
from cuda_test_models import bert_encoder, gpt_decoder, resnet_cnn
from ort.testing import make_model
from ort_provider_cuda.graph import MAX_GRAPHS

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
GRAPH = [(CUDA, {"enable_cuda_graph": "1"}), CPU]


def _sessions(model: onnx.ModelProto, providers=GRAPH):
    data = model.SerializeToString()
    return (ort.InferenceSession(data, providers=providers),
            ort.InferenceSession(data, providers=[CPU]))


def _bert_inputs(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    mask = (rng.random((2, 6)) > 0.2).astype(np.int64)
    mask[:, 0] = 1
    return {"input_ids": rng.integers(0, 100, (2, 6)), "attention_mask": mask,
            "token_type_ids": rng.integers(0, 2, (2, 6))}


CASES = {
    "resnet": (lambda: resnet_cnn(batch=2),
               lambda s: {"input": np.random.default_rng(s).standard_normal(
                   (2, 3, 32, 32), dtype=np.float32)}),
    "bert": (lambda: bert_encoder(batch=2, seq=6), _bert_inputs),
    "gpt": (lambda: gpt_decoder(batch=2, seq=7),
            lambda s: {"input_ids": np.random.default_rng(s).integers(0, 50, (2, 7))}),
}


@pytest.mark.parametrize("name", CASES)
def test_static_model_is_captured_once_and_replayed_with_new_inputs(fake_cupy, name):
    build, inputs = CASES[name]
    gpu, cpu = _sessions(build())
    assert gpu.get_partition().nodes_by_provider[CUDA] == [f"CUDAGraph_{build().graph.name}"]
    stats = fake_cupy.stats
    for run in range(4):
        feeds = inputs(run)
        for got, want in zip(gpu.run(None, feeds), cpu.run(None, feeds)):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
        # run 0 warms up, run 1 captures and launches, later runs only launch
        assert (stats.captures, stats.launches) == (int(run >= 1), max(run, 0))
    assert stats.syncs.count("ndarray.get") >= 4  # only outputs reach the host


def test_iobinding_with_device_buffers_replays_without_host_copies(fake_cupy):
    gpu, cpu = _sessions(resnet_cnn(batch=2))
    image = np.random.default_rng(1).standard_normal((2, 3, 32, 32), dtype=np.float32)
    x = ort.OrtValue.ortvalue_from_numpy(image, "cuda", 0)
    out = ort.OrtValue.ortvalue_from_shape_and_type([2, 10], np.float32, "cuda", 0)
    binding = gpu.io_binding()
    binding.bind_ortvalue_input("input", x)
    binding.bind_ortvalue_output("logits", out)
    for _ in range(3):
        gpu.run_with_iobinding(binding)
    fake_cupy.stats.reset()
    x.update_inplace(image * 2)  # the caller rewrites its input buffer between runs
    fake_cupy.stats.reset()
    gpu.run_with_iobinding(binding)
    assert fake_cupy.stats.launches == 1 and fake_cupy.stats.h2d == 0
    np.testing.assert_allclose(out.numpy(), cpu.run(None, {"input": image * 2})[0],
                               rtol=1e-5, atol=1e-5)


def test_each_input_shape_gets_its_own_graph(fake_cupy):
    gpu, cpu = _sessions(resnet_cnn())  # symbolic batch: every node still runs on CUDA
    for batch in (1, 3, 1, 3, 1):
        feeds = {"input": np.ones((batch, 3, 32, 32), np.float32) * batch}
        np.testing.assert_allclose(gpu.run(None, feeds)[0], cpu.run(None, feeds)[0],
                                   rtol=1e-5, atol=1e-5)
    assert fake_cupy.stats.captures == 2 and fake_cupy.stats.launches == 3


def test_shapes_beyond_the_limit_run_without_a_graph(fake_cupy, caplog):
    gpu, cpu = _sessions(resnet_cnn())
    with caplog.at_level(logging.WARNING, logger="ort.cuda"):
        for batch in range(1, MAX_GRAPHS + 3):
            feeds = {"input": np.full((batch, 3, 32, 32), 0.5, np.float32)}
            np.testing.assert_allclose(gpu.run(None, feeds)[0], cpu.run(None, feeds)[0],
                                       rtol=1e-5, atol=1e-5)
    assert "runs without a CUDA graph" in caplog.text


def test_weights_are_uploaded_once_with_cuda_graphs(fake_cupy):
    model = resnet_cnn(batch=2).SerializeToString()
    fake_cupy.stats.reset()
    ort.InferenceSession(model, providers=[CUDA])
    plain = fake_cupy.stats.h2d
    fake_cupy.stats.reset()
    ort.InferenceSession(model, providers=GRAPH)
    assert fake_cupy.stats.h2d == plain


def test_graph_is_not_claimed_when_nodes_fall_back_to_the_cpu(fake_cupy, caplog):
    with caplog.at_level(logging.WARNING, logger="ort.cuda"):
        gpu, cpu = _sessions(bert_encoder())  # dynamic shapes: Shape chains stay on the host
    assert "CUDA graph disabled for graph 'bert_encoder'" in caplog.text
    assert "do not run on CUDA" in caplog.text
    placed = gpu.get_partition().nodes_by_provider
    assert len(placed[CUDA]) > 1 and placed[CPU]
    feeds = _bert_inputs(0)
    for got, want in zip(gpu.run(None, feeds), cpu.run(None, feeds)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert fake_cupy.stats.captures == 0


def test_graph_is_not_claimed_for_host_inputs_computed_at_run_time(fake_cupy, caplog):
    # Abs is no shape op: it runs on CUDA, and Reshape needs its result on the host
    nodes = [helper.make_node("Abs", ["s"], ["shape"], name="abs"),
             helper.make_node("Reshape", ["x", "shape"], ["y"], name="reshape")]
    model = make_model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
                               helper.make_tensor_value_info("s", TensorProto.INT64, [2])],
                       [helper.make_empty_tensor_value_info("y")], opset=17,
                       ir_version=onnx.IR_VERSION)
    with caplog.at_level(logging.WARNING, logger="ort.cuda"):
        gpu, _ = _sessions(model)
    assert "reads its host input 'shape' from a value computed at run time" in caplog.text
    feeds = {"x": np.zeros((2, 3), np.float32), "s": np.array([-3, 2])}
    assert gpu.run(None, feeds)[0].shape == (3, 2)


def test_a_kernel_that_synchronizes_fails_the_capture_and_runs_uncaptured(fake_cupy, caplog):
    # Pow of integers checks `negative.any()` on the host: not capturable
    nodes = [helper.make_node("Pow", ["x", "e"], ["y"], name="pow")]
    model = make_model(nodes, [helper.make_tensor_value_info("x", TensorProto.INT64, [3]),
                               helper.make_tensor_value_info("e", TensorProto.INT64, [3])],
                       [helper.make_empty_tensor_value_info("y")], opset=17,
                       ir_version=onnx.IR_VERSION)
    gpu, cpu = _sessions(model)
    feeds = {"x": np.array([2, 3, 4]), "e": np.array([3, 2, -1])}
    with caplog.at_level(logging.WARNING, logger="ort.cuda"):
        for _ in range(3):
            np.testing.assert_array_equal(gpu.run(None, feeds)[0], cpu.run(None, feeds)[0])
    assert "CUDA graph capture failed" in caplog.text
    assert "cudaErrorStreamCaptureUnsupported" in caplog.text
    assert fake_cupy.stats.captures == 0 and fake_cupy.stats.launches == 0


def test_options_report_the_graph_setting_and_copies_on_the_kernel_stream(fake_cupy):
    gpu, _ = _sessions(resnet_cnn(batch=2))
    options = gpu.get_provider_options()[CUDA]
    assert options["enable_cuda_graph"] == "1" and options["do_copy_in_default_stream"] == "0"
