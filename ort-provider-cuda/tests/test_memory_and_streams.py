"""The provider's memory pool (limit, arena strategy, sharing), its stream (kernels and copies
queued where the options say), devices and synchronization, with the cupy double."""

from __future__ import annotations

import numpy as np
import pytest

import fake_cupy as fake
import ort
from cuda_test_models import resnet_cnn
from ort_provider_cuda.provider import CUDAExecutionProvider, memory_pool

CUDA = "CUDAExecutionProvider"


def _image(batch=2):
    return {"input": np.random.default_rng(0).standard_normal((batch, 3, 32, 32),
                                                              dtype=np.float32)}


def _session(**options):
    return ort.InferenceSession(resnet_cnn().SerializeToString(),
                                providers=[(CUDA, {k: str(v) for k, v in options.items()})])


def _provider(sess) -> CUDAExecutionProvider:
    return next(p for p in sess._providers if p.name == CUDA)


def test_weights_and_activations_live_in_the_providers_pool(fake_cupy):
    sess = _session()
    pool = _provider(sess).pool
    weights = sum(a.nbytes for a in sess._graph.initializers.values())
    assert pool.used_bytes() >= weights
    assert fake_cupy.get_default_memory_pool().used_bytes() == 0
    sess.run(None, _image())
    assert fake_cupy.get_default_memory_pool().used_bytes() == 0


def test_gpu_mem_limit_caps_the_pool_and_the_session_survives_running_out(fake_cupy):
    small = _session(gpu_mem_limit=300_000)  # the weights fit, a batch of 64 images does not
    with pytest.raises(ort.Fail, match=r"Out of memory allocating .* limit set to: 300,000"):
        small.run(None, _image(64))
    np.testing.assert_allclose(small.run(None, _image(1))[0],
                               ort.InferenceSession(resnet_cnn().SerializeToString())
                               .run(None, _image(1))[0], rtol=1e-5, atol=1e-5)
    assert _provider(small).pool.get_limit() == 300_000


@pytest.mark.parametrize("strategy, check", [
    ("kNextPowerOfTwo", lambda size: size <= 512 or size & (size - 1) == 0),
    ("kSameAsRequested", lambda size: True),
])
def test_arena_extend_strategy_shapes_the_requests(fake_cupy, strategy, check):
    sess = _session(arena_extend_strategy=strategy)
    pool = _provider(sess).pool
    pool.requests.clear()
    sess.run(None, _image(3))
    assert pool.requests and all(check(size) for size in pool.requests)
    if strategy == "kSameAsRequested":
        assert any(size > 512 and size & (size - 1) for size in pool.requests)


def test_sessions_with_the_same_memory_settings_share_a_pool(fake_cupy):
    a, b = _session(), _session()
    c = _session(gpu_mem_limit=1 << 30)
    assert _provider(a).pool is _provider(b).pool is memory_pool(fake_cupy, 0, None,
                                                                 "kNextPowerOfTwo")
    assert _provider(c).pool is not _provider(a).pool


@pytest.mark.parametrize("default_stream", ["1", "0"])
def test_kernels_run_on_the_providers_stream_and_copies_where_the_option_says(
        fake_cupy, default_stream):
    sess = _session(do_copy_in_default_stream=default_stream)
    stream = _provider(sess).stream
    assert stream.is_non_blocking == (default_stream == "0")
    fake_cupy.stats.reset()
    sess.run(None, _image())
    streams = fake_cupy.stats.streams
    copies = {0} if default_stream == "1" else {stream.ptr}
    assert streams["ops"] == {stream.ptr}
    assert streams["h2d"] == copies and streams["d2h"] == copies


def test_copies_on_the_kernel_stream_wait_for_the_device(fake_cupy):
    sess = _session(do_copy_in_default_stream=0)
    fake_cupy.stats.reset()
    sess.run(None, _image())
    # a device synchronization precedes the output's copy (the value may come from another
    # provider instance's stream when an IOBinding hands it over)
    assert fake_cupy.stats.syncs == ["Device.synchronize", "ndarray.get"]


def test_each_provider_instance_has_its_own_stream(fake_cupy):
    assert _provider(_session()).stream is not _provider(_session()).stream


def test_device_id_selects_the_device_kernels_and_copies_use(fake_cupy):
    fake.set_device_count(2)
    sess = _session(device_id=1)
    provider = _provider(sess)
    assert provider.device.index == 1 and provider.stream.device_id == 1
    np.testing.assert_allclose(sess.run(None, _image())[0],
                               ort.InferenceSession(resnet_cnn().SerializeToString())
                               .run(None, _image())[0], rtol=1e-5, atol=1e-5)
    value = ort.OrtValue.ortvalue_from_numpy(np.ones(3, np.float32), "cuda", 1)
    assert value.value._device == 1 and value.device().device_id() == 1


def test_synchronize_waits_for_the_device(fake_cupy):
    sess = _session()
    binding = sess.io_binding()
    binding.bind_cpu_input("input", _image()["input"])
    binding.bind_output("logits", "cuda")
    sess.run_with_iobinding(binding)
    fake_cupy.stats.reset()
    binding.synchronize_outputs()
    assert fake_cupy.stats.syncs == ["Device.synchronize"]


def test_device_buffers_round_trip_through_pointers(fake_cupy):
    provider = CUDAExecutionProvider({})
    value = provider.to_device(np.arange(6, dtype=np.float32).reshape(2, 3))
    view = provider.from_pointer(provider.data_ptr(value), (3, 2), np.float32)
    np.testing.assert_array_equal(provider.to_host(view), np.arange(6).reshape(3, 2))
    target = provider.allocate((2, 3), np.float32)
    provider.copy_into(target, value)
    np.testing.assert_array_equal(provider.to_host(target), provider.to_host(value))
    with pytest.raises(ValueError, match="cannot hold"):
        provider.from_pointer(provider.data_ptr(value), (2,), np.dtype(object))
    assert provider.to_host(np.ones(2)) is not None  # host values pass through
