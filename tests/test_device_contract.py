"""The device contract without a GPU: a two-provider session over the test device
(``testing_device``), copies inserted exactly where needed, and IOBinding with pre-allocated,
session-allocated and raw-pointer buffers on the CPU and on the device."""

from __future__ import annotations

import ctypes

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import ort
import ort.ep
from testing_device import DEVICE, DeviceBuffer, Plugin, TestDeviceProvider

PROVIDERS = [TestDeviceProvider.name, "CPUExecutionProvider"]


@pytest.fixture(autouse=True)
def device_plugin():
    ort.ep.register_plugin(Plugin(), "testing-device")
    TestDeviceProvider.reset_counters()
    yield
    ort.ep.unregister_plugin("testing-device")


def _model():
    """R = Relu(X) [device]; S = Sigmoid(R) [CPU: no device kernel]; M = MatMul(R, W) [device];
    Z = Add(M, X) [device]; outputs Z and S. R crosses to the host once although only Sigmoid
    reads it there; X is copied to the device once although Relu and Add both read it."""
    w = onnx.numpy_helper.from_array(np.arange(9, dtype=np.float32).reshape(3, 3) / 10, "W")
    nodes = [helper.make_node("Relu", ["X"], ["R"], name="relu"),
             helper.make_node("Sigmoid", ["R"], ["S"], name="sigmoid"),
             helper.make_node("MatMul", ["R", "W"], ["M"], name="matmul"),
             helper.make_node("Add", ["M", "X"], ["Z"], name="add")]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("Z", TensorProto.FLOAT, ["N", 3]),
         helper.make_tensor_value_info("S", TensorProto.FLOAT, ["N", 3])], [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)


X = np.array([[-1, 2, 3], [4, -5, 6]], np.float32)


def _expected(x):
    r = np.maximum(x, 0)
    w = np.arange(9, dtype=np.float32).reshape(3, 3) / 10
    return r @ w + x, 1 / (1 + np.exp(-r))


def _session(**options):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    for key, value in options.items():
        setattr(so, key, value)
    return ort.InferenceSession(_model().SerializeToString(), so, providers=PROVIDERS)


def test_two_provider_session_inserts_each_copy_once():
    sess = _session()
    report = sess.get_partition()
    assert report.nodes_by_provider == {TestDeviceProvider.name: ["relu", "matmul", "add"],
                                        "CPUExecutionProvider": ["sigmoid"]}
    # copy steps between nodes (the constant W is copied once at session creation; outputs
    # are fetched to the host when returned)
    assert sorted(report.copies) == ["copy_R", "copy_X"]
    TestDeviceProvider.reset_counters()
    z, s = sess.run(None, {"X": X})
    want_z, want_s = _expected(X)
    np.testing.assert_allclose(z, want_z, rtol=1e-6)
    np.testing.assert_allclose(s, want_s, rtol=1e-6)
    # per run: X in once (W is a constant, copied at session creation); R out once, Z out once
    assert TestDeviceProvider.copies_in == 1
    assert TestDeviceProvider.copies_out == 2


def test_iobinding_on_cpu_with_session_allocated_and_preallocated_outputs():
    sess = _session()
    binding = sess.io_binding()
    binding.bind_cpu_input("X", X)
    binding.bind_output("Z")
    preallocated = ort.OrtValue.ortvalue_from_shape_and_type([2, 3], np.float32)
    binding.bind_ortvalue_output("S", preallocated)
    sess.run_with_iobinding(binding)
    z, s = binding.get_outputs()
    assert z.device_name() == "cpu" and s is preallocated
    want_z, want_s = _expected(X)
    np.testing.assert_allclose(z.numpy(), want_z, rtol=1e-6)
    np.testing.assert_allclose(preallocated.numpy(), want_s, rtol=1e-6)
    np.testing.assert_allclose(binding.copy_outputs_to_cpu()[0], want_z, rtol=1e-6)


def test_iobinding_raw_cpu_pointers_are_used_without_copies():
    sess = _session()
    x = X.copy()
    out = np.zeros((2, 3), np.float32)
    binding = sess.io_binding()
    binding.bind_input("X", "cpu", 0, np.float32, list(x.shape), x.ctypes.data)
    binding.bind_output("Z", "cpu", 0, TensorProto.FLOAT, list(out.shape), out.ctypes.data)
    sess.run_with_iobinding(binding)
    np.testing.assert_allclose(out, _expected(X)[0], rtol=1e-6)
    x[:] = 0  # the binding reads the caller's memory, not a copy made at bind time
    sess.run_with_iobinding(binding)
    np.testing.assert_allclose(out, _expected(np.zeros_like(X))[0], rtol=1e-6)
    ctypes_buffer = (ctypes.c_float * 6)(*X.reshape(-1))  # any address works, not just numpy
    binding.bind_input("X", "cpu", 0, np.float32, [2, 3], ctypes.addressof(ctypes_buffer))
    sess.run_with_iobinding(binding)
    np.testing.assert_allclose(out, _expected(X)[0], rtol=1e-6)


def test_iobinding_device_input_and_outputs_stay_on_the_device():
    sess = _session()
    x_dev = ort.OrtValue.ortvalue_from_numpy(X, DEVICE, 0)
    assert x_dev.device_name() == DEVICE and isinstance(x_dev.value, DeviceBuffer)
    binding = sess.io_binding()
    binding.bind_ortvalue_input("X", x_dev)
    binding.bind_output("Z", DEVICE)
    binding.bind_output("S")
    sess.run_with_iobinding(binding)  # plans for a device-resident X (copies W once)
    TestDeviceProvider.reset_counters()
    sess.run_with_iobinding(binding)
    z, s = binding.get_outputs()
    assert z.device_name() == DEVICE and isinstance(z.value, DeviceBuffer)
    assert s.device_name() == "cpu"
    # X already on the device: no host->device copy; only R leaves the device (for Sigmoid)
    assert TestDeviceProvider.copies_in == 0 and TestDeviceProvider.copies_out == 1
    want_z, want_s = _expected(X)
    np.testing.assert_allclose(z.numpy(), want_z, rtol=1e-6)
    np.testing.assert_allclose(binding.copy_outputs_to_cpu()[1], want_s, rtol=1e-6)


def test_iobinding_device_raw_pointers_and_preallocated_device_output():
    sess = _session()
    x_dev = ort.OrtValue.ortvalue_from_numpy(X, DEVICE, 0)
    out_dev = ort.OrtValue.ortvalue_from_shape_and_type([2, 3], np.float32, DEVICE, 0)
    binding = sess.io_binding()
    binding.bind_input("X", DEVICE, 0, np.float32, [2, 3], x_dev.data_ptr())
    binding.bind_output("Z", DEVICE, 0, np.float32, [2, 3], out_dev.data_ptr())
    binding.bind_output("S", "cpu")
    sess.run_with_iobinding(binding)
    np.testing.assert_allclose(out_dev.numpy(), _expected(X)[0], rtol=1e-6)


def test_iobinding_errors_match_onnxruntime():
    sess = _session()
    binding = sess.io_binding()
    with pytest.raises(RuntimeError, match="Failed to find NodeArg with name: nope in the def list"):
        binding.bind_cpu_input("nope", X)
    binding.bind_output("Z")
    with pytest.raises(RuntimeError, match="Missing Input: X"):
        sess.run_with_iobinding(binding)
    binding.bind_cpu_input("X", X)
    binding.bind_ortvalue_output("Z", ort.OrtValue.ortvalue_from_shape_and_type([4, 3], np.float32))
    with pytest.raises(RuntimeError, match=r"has shape \{4,3\} but the computed output shape "
                                           r"for this run is \{2,3\}"):
        sess.run_with_iobinding(binding)
    binding.clear_binding_outputs()
    binding.bind_output("Z")
    sess.run_with_iobinding(binding)  # the session is still usable
    assert binding.get_outputs()[0].shape() == [2, 3]
    binding.clear_binding_inputs()
    with pytest.raises(RuntimeError, match="Missing Input"):
        sess.run_with_iobinding(binding)


def test_device_input_with_wrong_type_is_refused_without_touching_its_memory():
    sess = _session()
    binding = sess.io_binding()
    binding.bind_ortvalue_input("X", ort.OrtValue.ortvalue_from_numpy(X.astype(np.float64), DEVICE))
    binding.bind_output("Z")
    with pytest.raises(ort.InvalidArgument, match="Unexpected input data type"):
        sess.run_with_iobinding(binding)


def test_run_accepts_device_ortvalues():
    sess = _session()
    z, _ = sess.run(None, {"X": ort.OrtValue.ortvalue_from_numpy(X, DEVICE)})
    np.testing.assert_allclose(z, _expected(X)[0], rtol=1e-6)


def test_fallback_is_explained_logged_and_can_be_refused(caplog):
    with caplog.at_level("WARNING", logger="ort"):
        sess = _session()
    assert sess.get_partition().fallbacks == {
        "sigmoid": "TestDeviceExecutionProvider has no kernel for Sigmoid"}
    assert "1 node(s) were not assigned to the preferred execution provider" in caplog.text
    assert "sigmoid -> CPUExecutionProvider" in caplog.text
    so = ort.SessionOptions()
    so.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    with pytest.raises(ort.EPFail, match="session.disable_cpu_ep_fallback.*sigmoid"):
        ort.InferenceSession(_model().SerializeToString(), so, providers=PROVIDERS)


def test_cpu_only_session_has_no_fallbacks():
    sess = ort.InferenceSession(_model().SerializeToString(), providers=["CPUExecutionProvider"])
    assert sess.get_partition().fallbacks == {}


def test_set_providers_repartitions():
    sess = _session()
    sess.set_providers(["CPUExecutionProvider"])
    assert sess.get_partition().nodes_by_provider == {
        "CPUExecutionProvider": ["relu", "sigmoid", "matmul", "add"]}
    np.testing.assert_allclose(sess.run(None, {"X": X})[0], _expected(X)[0], rtol=1e-6)
    sess.set_providers(PROVIDERS, [{"device_id": 0}, {}])
    assert sess.get_provider_options()[TestDeviceProvider.name] == {"device_id": "0"}
    assert sess.get_partition().nodes_by_provider[TestDeviceProvider.name] == ["relu", "matmul", "add"]


def test_fused_subgraph_runs_as_one_step_on_the_device(tmp_path):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.enable_profiling = True
    so.profile_file_prefix = str(tmp_path / "fused")
    sess = ort.InferenceSession(_model().SerializeToString(), so, providers=[
        (TestDeviceProvider.name, {"fuse": "MatMul+Add"}), "CPUExecutionProvider"])
    assert sess.get_partition().nodes_by_provider == {
        TestDeviceProvider.name: ["relu", "matmul_add"], "CPUExecutionProvider": ["sigmoid"]}
    TestDeviceProvider.reset_counters()
    z, s = sess.run(None, {"X": X})
    np.testing.assert_allclose(z, _expected(X)[0], rtol=1e-6)
    np.testing.assert_allclose(s, _expected(X)[1], rtol=1e-6)
    assert TestDeviceProvider.copies_in == 1  # X once; the fused step takes device values
    import json

    events = json.load(open(sess.end_profiling(), encoding="utf-8"))
    ops = [e["args"]["op_name"] for e in events if e["cat"] == "Node"]
    assert ops.count("MatMulAdd") == 1 and "MatMul" not in ops


def test_shape_computations_stay_on_the_host():
    """Shape -> Gather -> Unsqueeze -> Concat feeding Reshape's shape input run on the CPU
    although the device could run Shape, so no device round trip is made for the shape."""
    from testing_device import kernels as device_kernels

    nodes = [helper.make_node("Relu", ["X"], ["R"], name="relu"),
             helper.make_node("Shape", ["R"], ["shape"], name="shape"),
             helper.make_node("Gather", ["shape", "zero"], ["n"], name="gather", axis=0),
             helper.make_node("Unsqueeze", ["n", "zero1"], ["n1"], name="unsq"),
             helper.make_node("Concat", ["n1", "minus1"], ["new_shape"], name="concat", axis=0),
             helper.make_node("Reshape", ["R", "new_shape"], ["Y"], name="reshape")]
    inits = [onnx.numpy_helper.from_array(np.array(0, np.int64), "zero"),
             onnx.numpy_helper.from_array(np.array([0], np.int64), "zero1"),
             onnx.numpy_helper.from_array(np.array([-1], np.int64), "minus1")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [2, 3, 2])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    before = len(list(device_kernels))
    try:
        device_kernels.register("Shape", since=1)(lambda node: lambda x: (x._data.shape,))
        device_kernels.register("Reshape", since=14, host_inputs=(1,))(
            lambda node: lambda x, s: (DeviceBuffer(x._data.reshape(tuple(int(d) for d in s))),))
        ort.ep.unregister_plugin("testing-device")
        ort.ep.register_plugin(Plugin(), "testing-device")
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        sess = ort.InferenceSession(model.SerializeToString(), so, providers=PROVIDERS)
        report = sess.get_partition()
        assert report.nodes_by_provider[TestDeviceProvider.name] == ["relu", "reshape"]
        assert "shape computation kept on the host" in report.fallbacks["shape"]
        (y,) = sess.run(None, {"X": X.reshape(2, 3, 1).repeat(2, axis=2)})
        assert y.shape == (2, 6)
    finally:
        del device_kernels._defs[before:]


def test_session_creation_logs_the_assignment_and_copies(caplog):
    with caplog.at_level("INFO", logger="ort"):
        _session()
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("session for"))
    assert "TestDeviceExecutionProvider: 3 node(s) ['Add', 'MatMul', 'Relu']" in line
    assert "CPUExecutionProvider: 1 node(s) ['Sigmoid']" in line
    assert "2 copy step(s) ['copy_X', 'copy_R']" in line


def test_shape_reads_a_device_value_without_copying_it():
    """Shape/Size read only .shape: the device tensor is handed to the CPU kernel as is."""
    nodes = [helper.make_node("Relu", ["X"], ["R"], name="relu"),
             helper.make_node("Shape", ["R"], ["S"], name="shape"),
             helper.make_node("Add", ["R", "X"], ["Y"], name="add")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [2, 3])],
                              [helper.make_tensor_value_info("S", TensorProto.INT64, None),
                               helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=PROVIDERS)
    assert sess.get_partition().copies == ["copy_X"]
    TestDeviceProvider.reset_counters()
    s, y = sess.run(None, {"X": X})
    assert s.tolist() == [2, 3]
    assert TestDeviceProvider.copies_out == 1  # only Y at the end, never R for Shape


def test_device_ortvalues_share_one_provider_per_device():
    a = ort.OrtValue.ortvalue_from_numpy(X, DEVICE)
    b = ort.OrtValue.ortvalue_from_shape_and_type([2], np.float32, DEVICE)
    assert a.provider is b.provider
