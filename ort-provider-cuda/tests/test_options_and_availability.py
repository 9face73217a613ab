"""Provider options (parsing, validation messages, what is reported) and the availability
check's one-sentence reasons, each failure simulated with a stand-in cupy."""

from __future__ import annotations

import types

import numpy as np
import pytest

import ort
import ort.ep
from cuda_test_models import resnet_cnn
from ort_provider_cuda import availability
from ort_provider_cuda.options import NO_LIMIT, CudaOptions, parse_options

CUDA = "CUDAExecutionProvider"


# -- options -----------------------------------------------------------------------------------

def test_defaults_are_onnxruntimes():
    assert parse_options({}) == CudaOptions()
    assert CudaOptions().reported() == {
        "device_id": "0", "gpu_mem_limit": str(NO_LIMIT),
        "arena_extend_strategy": "kNextPowerOfTwo", "cudnn_conv_algo_search": "EXHAUSTIVE",
        "do_copy_in_default_stream": "1", "enable_cuda_graph": "0"}


@pytest.mark.parametrize("options, expected", [
    ({"device_id": "1"}, {"device_id": 1}),
    ({"device_id": 2}, {"device_id": 2}),
    ({"gpu_mem_limit": "2147483648"}, {"gpu_mem_limit": 2 << 30}),
    ({"gpu_mem_limit": str(NO_LIMIT)}, {"gpu_mem_limit": None}),
    ({"arena_extend_strategy": "kSameAsRequested"}, {"arena_extend_strategy": "kSameAsRequested"}),
    ({"arena_extend_strategy": "1"}, {"arena_extend_strategy": "kSameAsRequested"}),
    ({"arena_extend_strategy": 0}, {"arena_extend_strategy": "kNextPowerOfTwo"}),
    ({"cudnn_conv_algo_search": "HEURISTIC"}, {"cudnn_conv_algo_search": "HEURISTIC"}),
    ({"cudnn_conv_algo_search": "2"}, {"cudnn_conv_algo_search": "DEFAULT"}),
    ({"do_copy_in_default_stream": "0"}, {"do_copy_in_default_stream": False}),
    ({"do_copy_in_default_stream": "true"}, {"do_copy_in_default_stream": True}),
    ({"enable_cuda_graph": "1"}, {"enable_cuda_graph": True}),
    ({"enable_cuda_graph": True}, {"enable_cuda_graph": True}),
])
def test_valid_options(options, expected):
    parsed = parse_options(options)
    for key, value in expected.items():
        assert getattr(parsed, key) == value


@pytest.mark.parametrize("options, message", [
    ({"device_id": "-1"}, "device_id='-1' is invalid: expected a non-negative integer"),
    ({"device_id": "gpu0"}, "device_id='gpu0' is invalid"),
    ({"gpu_mem_limit": "2GB"}, "gpu_mem_limit='2GB' is invalid: expected a non-negative integer"),
    ({"gpu_mem_limit": "0"}, "gpu_mem_limit='0' is invalid: expected a positive number of bytes"),
    ({"arena_extend_strategy": "kDouble"},
     "arena_extend_strategy='kDouble' is invalid: expected kNextPowerOfTwo or kSameAsRequested"),
    ({"arena_extend_strategy": "2"}, "arena_extend_strategy='2' is invalid"),
    ({"cudnn_conv_algo_search": "FAST"},
     "cudnn_conv_algo_search='FAST' is invalid: expected EXHAUSTIVE or HEURISTIC or DEFAULT"),
    ({"do_copy_in_default_stream": "yes"}, "do_copy_in_default_stream='yes' is invalid: "
                                           "expected 0 or 1"),
    ({"enable_cuda_graph": "2"}, "enable_cuda_graph='2' is invalid: expected 0 or 1"),
    ({"cuda_graph": "1"}, r"does not know the option\(s\) \['cuda_graph'\]; known options"),
])
def test_invalid_options_say_what_is_expected(options, message):
    with pytest.raises(ValueError, match=message):
        parse_options(options)


def test_cuda_graphs_move_copies_to_the_kernel_stream():
    options = parse_options({"enable_cuda_graph": "1", "do_copy_in_default_stream": "1"})
    assert not options.copies_on_default_stream
    assert options.reported()["do_copy_in_default_stream"] == "0"


def test_sessions_report_and_refuse_options(fake_cupy):
    data = resnet_cnn().SerializeToString()
    sess = ort.InferenceSession(data, providers=[(CUDA, {"gpu_mem_limit": 1 << 30,
                                                         "cudnn_conv_algo_search": "DEFAULT"})])
    reported = sess.get_provider_options()[CUDA]
    assert reported["gpu_mem_limit"] == str(1 << 30)
    assert reported["cudnn_conv_algo_search"] == "DEFAULT"
    with pytest.raises(ort.InvalidArgument, match="Invalid options for CUDAExecutionProvider: "
                                                  ".*gpu_mem_limit='lots'"):
        ort.InferenceSession(data, providers=[(CUDA, {"gpu_mem_limit": "lots"})])
    with pytest.raises(ort.InvalidArgument, match=r"device_id 1 is out of range: 1 CUDA "
                                                  r"device\(s\) are visible \(device_id 0..0\)"):
        ort.InferenceSession(data, providers=[(CUDA, {"device_id": "1"})])
    with pytest.raises(ort.InvalidArgument, match="does not know the option"):
        ort.InferenceSession(data, providers=[(CUDA, {"arena": "1"})])


def test_cudnn_conv_algo_search_runs_the_same_convolution(fake_cupy):
    data = resnet_cnn().SerializeToString()
    image = np.random.default_rng(0).standard_normal((1, 3, 32, 32), dtype=np.float32)
    results = [ort.InferenceSession(data, providers=[(CUDA, {"cudnn_conv_algo_search": v})])
               .run(None, {"input": image})[0] for v in ("EXHAUSTIVE", "HEURISTIC", "DEFAULT")]
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(results[0], results[2])


# -- availability --------------------------------------------------------------------------------

class _RuntimeError(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status


def _cupy(version="14.0.0", count=1, driver=12040, runtime=12040, count_error=None):
    def device_count():
        if count_error is not None:
            raise count_error
        return count

    runtime_api = types.SimpleNamespace(getDeviceCount=device_count,
                                        driverGetVersion=lambda: driver,
                                        runtimeGetVersion=lambda: runtime)
    return types.SimpleNamespace(__version__=version, cuda=types.SimpleNamespace(
        runtime=runtime_api))


def _fail(exc):
    def load():
        raise exc

    return load


@pytest.mark.parametrize("load, expected", [
    (_fail(ImportError("No module named 'cupy'")),
     "cupy is not installed (No module named 'cupy'): pip install 'ort-provider-cuda[cuda12]'"),
    (_fail(OSError("libcudart.so.12: cannot open shared object file")),
     "cupy failed to import (OSError: libcudart.so.12: cannot open shared object file): "
     "reinstall it with pip install"),
    (lambda: _cupy(version="12.3.0"), "cupy 12.3.0 is older than 13.0: pip install -U"),
    (lambda: _cupy(count_error=_RuntimeError(35, "cudaErrorInsufficientDriver: CUDA driver "
                                                 "version is insufficient")),
     "the NVIDIA driver is missing or older than the CUDA 12.4 runtime cupy was built for "
     "(_RuntimeError: cudaErrorInsufficientDriver"),
    (lambda: _cupy(count_error=_RuntimeError(100, "cudaErrorNoDevice")),
     "no CUDA device is visible (_RuntimeError: cudaErrorNoDevice): check CUDA_VISIBLE_DEVICES"),
    (lambda: _cupy(count_error=_RuntimeError(999, "cudaErrorUnknown")),
     "the CUDA driver could not be queried (_RuntimeError: cudaErrorUnknown): check the driver"),
    (lambda: _cupy(count=0), "no CUDA device is visible: check CUDA_VISIBLE_DEVICES"),
    (lambda: _cupy(driver=11080, runtime=12040),
     "the NVIDIA driver supports CUDA 11.8 but cupy was built for CUDA 12.4: upgrade the driver "
     "or install the cupy build for CUDA 11 (cupy-cuda11x)"),
])
def test_unavailable_reasons_say_what_to_do(monkeypatch, load, expected):
    monkeypatch.setattr(availability, "_import_cupy", load)
    reason = availability.cuda_unavailable_reason()
    assert reason is not None and reason.startswith(expected), reason
    ort.ep.reset()
    try:
        assert ort.unavailable_providers()[CUDA] == reason
        with pytest.warns(UserWarning, match="not available on this machine"):
            sess = ort.InferenceSession(resnet_cnn().SerializeToString(),
                                        providers=[CUDA, "CPUExecutionProvider"])
        assert sess.get_providers() == ["CPUExecutionProvider"]
    finally:
        ort.ep.reset()


def test_minor_driver_versions_behind_the_runtime_are_fine(monkeypatch):
    monkeypatch.setattr(availability, "_import_cupy", lambda: _cupy(driver=12020, runtime=12080))
    assert availability.cuda_unavailable_reason() is None
