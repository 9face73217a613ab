"""Whole models over CUDA + CPU with the cupy double: which nodes run where, which copies the
plan inserts, and outputs equal to the CPU provider's (float32 and float16, at every
optimization level, with the com.microsoft fusions the optimizer emits for CUDA)."""

from __future__ import annotations

import numpy as np
import pytest

import ort
from cuda_test_models import (bert_encoder, bert_feeds, gpt_decoder, gpt_feeds,
                              lstm_classifier, resnet_cnn, to_float16, unet_cnn)
from ort.testing import assert_outputs_match

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
LEVELS = {"disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
          "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
          "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
          "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}


def _session(model, providers, level="disabled", **provider_options):
    so = ort.SessionOptions()
    so.graph_optimization_level = LEVELS[level]
    if provider_options:
        providers = [(providers[0], provider_options)] + list(providers[1:])
    return ort.InferenceSession(model.SerializeToString(), so, providers=providers)


def _image(batch=2, size=32):
    return {"input": np.random.default_rng(9).standard_normal((batch, 3, size, size),
                                                              dtype=np.float32)}


def _unet_feeds(batch=2):
    return {"image": np.random.default_rng(10).standard_normal((batch, 3, 16, 16),
                                                               dtype=np.float32)}


def _lstm_feeds():
    rng = np.random.default_rng(11)
    return {"x": rng.standard_normal((6, 3, 6), dtype=np.float32),
            "lengths": np.array([6, 4, 1], np.int32)}


MODELS = {
    "resnet": (resnet_cnn, _image),
    "unet": (unet_cnn, _unet_feeds),
    "bert": (bert_encoder, bert_feeds),
    "gpt": (gpt_decoder, gpt_feeds),
    "lstm": (lstm_classifier, _lstm_feeds),
}


def _assert_close(got, want, rtol, atol):
    """Tensors matching the CPU provider's (:func:`ort.testing.assert_outputs_match`)."""
    assert all(isinstance(g, np.ndarray) for g in got), [type(g) for g in got]
    assert_outputs_match(got, want, rtol, atol)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("name", MODELS)
def test_model_matches_the_cpu_provider(fake_cupy, name, level):
    build, feeds = MODELS[name]
    model, inputs = build(), feeds()
    gpu = _session(model, [CUDA, CPU], level)
    cpu = _session(model, [CPU], level)
    placed = gpu.get_partition().nodes_by_provider
    assert placed[CUDA], placed
    _assert_close(gpu.run(None, inputs), cpu.run(None, inputs), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["resnet", "unet", "bert", "gpt"])
def test_model_in_float16_matches_the_cpu_provider(fake_cupy, name):
    build, feeds = MODELS[name]
    model = to_float16(build())
    inputs = {k: v.astype(np.float16) if v.dtype == np.float32 else v
              for k, v in feeds().items()}
    gpu = _session(model, [CUDA, CPU], "all")
    cpu = _session(model, [CPU], "all")
    assert all(n in gpu.get_partition().nodes_by_provider[CUDA]
               for n in gpu.get_partition().nodes_by_provider[CUDA])
    _assert_close(gpu.run(None, inputs), cpu.run(None, inputs), rtol=2e-3, atol=2e-3)


def test_cnn_runs_entirely_on_cuda_with_one_copy_in_and_one_out(fake_cupy):
    sess = _session(resnet_cnn(), [CUDA, CPU])
    report = sess.get_partition()
    assert report.nodes_by_provider[CPU] == [] and report.fallbacks == {}
    assert report.copies == ["copy_input"]  # host -> device; the output's copy is the fetch
    fake_cupy.stats.reset()
    sess.run(None, _image())
    assert fake_cupy.stats.h2d == 1 and fake_cupy.stats.d2h == 1
    assert fake_cupy.stats.syncs == ["ndarray.get"]  # no kernel reads device data on the host


def test_cnn_optimized_for_cuda_uses_fused_conv_on_the_device(fake_cupy):
    sess = _session(resnet_cnn(), [CUDA, CPU], "extended")
    ops = {a.node.op_type for a in sess._partition.assignments if a.provider.name == CUDA}
    assert "FusedConv" in ops and "BatchNormalization" not in ops
    assert sess.get_partition().nodes_by_provider[CPU] == []


def test_bert_shape_computations_stay_on_the_host_and_the_math_on_cuda(fake_cupy):
    sess = _session(bert_encoder(), [CUDA, CPU])
    report = sess.get_partition()
    by_op = {}
    for assignment in sess._partition.assignments:
        by_op.setdefault(assignment.node.op_type, set()).add(assignment.provider.name)
    for op in ("MatMul", "Softmax", "LayerNormalization", "Erf", "Transpose", "Reshape",
               "Gather", "Tanh", "Gemm", "ReduceMean", "Cast", "Expand"):
        assert CUDA in by_op[op], (op, by_op[op])
    assert by_op["Shape"] == {CPU}  # CUDA has no Shape kernel: the value's shape is read on CPU
    kept = {n for n, why in report.fallbacks.items() if "kept on the host" in why}
    assert kept and all(by_op[op] == {CPU} for op in ("Shape",))
    # every copy is a graph input going to the device, a host-computed value going to a CUDA
    # kernel, or a device value read on the host by shape logic: the CPU's Shape kernel (the
    # core copies the whole tensor for it) or a shape computation kept on the host (e.g. the
    # Equal of torch's expand pattern: bool results are not kept on the host by the core)
    producer = {o: a for a in sess._partition.assignments for o in a.node.outputs}
    host_readers = {i: a.node for a in sess._partition.assignments if a.provider.name == CPU
                    for i in a.node.inputs}
    inputs = {"input_ids", "token_type_ids", "attention_mask"}
    for copy in report.copies:
        value = copy.removeprefix("copy_")
        if value in inputs or producer[value].provider.name == CPU:
            continue
        reader = host_readers[value]
        assert reader.op_type == "Shape" or reader.name in kept, copy
    assert inputs <= {c.removeprefix("copy_") for c in report.copies}


def test_bert_at_level_all_runs_the_fused_attention_on_cuda(fake_cupy):
    sess = _session(bert_encoder(), [CUDA, CPU], "all")
    cuda_ops = {a.node.op_type for a in sess._partition.assignments if a.provider.name == CUDA}
    assert {"Attention", "SkipLayerNormalization"} & cuda_ops, cuda_ops
    _assert_close(sess.run(None, bert_feeds()),
                  _session(bert_encoder(), [CPU], "all").run(None, bert_feeds()), 1e-5, 1e-5)


def test_gpt_decoder_places_everything_but_shape_logic_on_cuda(fake_cupy):
    sess = _session(gpt_decoder(), [CUDA, CPU])
    placed = sess.get_partition().nodes_by_provider
    cpu_ops = {a.node.op_type for a in sess._partition.assignments if a.provider.name == CPU}
    assert cpu_ops <= {"Shape", "Gather", "Unsqueeze", "Concat"}, cpu_ops
    assert "/positions" in placed[CUDA] and "/mask_bool" in placed[CUDA]


def test_lstm_classifier_reads_sequence_lengths_on_the_host(fake_cupy):
    sess = _session(lstm_classifier(), [CUDA, CPU])
    assert sess.get_partition().nodes_by_provider[CPU] == []
    assert "copy_lengths" not in sess.get_partition().copies  # a host input stays on the host
    fake_cupy.stats.reset()
    sess.run(None, _lstm_feeds())
    assert fake_cupy.stats.syncs == ["ndarray.get"]


def test_disable_cpu_fallback_refuses_models_cuda_cannot_run_alone(fake_cupy):
    so = ort.SessionOptions()
    so.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    with pytest.raises(ort.EPFail, match="Shape"):
        ort.InferenceSession(bert_encoder().SerializeToString(), so, providers=[CUDA, CPU])
    ort.InferenceSession(resnet_cnn().SerializeToString(), so, providers=[CUDA, CPU])


def test_iobinding_keeps_inputs_and_outputs_on_the_device(fake_cupy):
    sess = _session(resnet_cnn(), [CUDA, CPU])
    image = _image()["input"]
    x = ort.OrtValue.ortvalue_from_numpy(image, "cuda", 0)
    assert x.device_name() == "cuda" and isinstance(x.value, fake_cupy.ndarray)
    out = ort.OrtValue.ortvalue_from_shape_and_type([2, 10], np.float32, "cuda", 0)
    binding = sess.io_binding()
    binding.bind_ortvalue_input("input", x)
    binding.bind_ortvalue_output("logits", out)
    sess.run_with_iobinding(binding)  # plans for a device-resident input
    fake_cupy.stats.reset()
    sess.run_with_iobinding(binding)
    assert fake_cupy.stats.h2d == 0 and fake_cupy.stats.d2h == 0
    binding.synchronize_outputs()
    want = _session(resnet_cnn(), [CPU]).run(None, {"input": image})[0]
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-5, atol=1e-6)
    ptr_binding = sess.io_binding()
    ptr_binding.bind_input("input", "cuda", 0, np.float32, list(image.shape), x.data_ptr())
    ptr_binding.bind_output("logits", "cuda")
    sess.run_with_iobinding(ptr_binding)
    (logits,) = ptr_binding.get_outputs()
    assert logits.device_name() == "cuda"
    np.testing.assert_allclose(logits.numpy(), want, rtol=1e-5, atol=1e-6)
