"""InferenceSession's API: metadata, outputs, options, providers — compared with onnxruntime."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper

import ort

X = np.arange(6, dtype=np.float32).reshape(2, 3) - 2


def both(model, **kwargs):
    data = model.SerializeToString()
    return (ort.InferenceSession(data, providers=["CPUExecutionProvider"], **kwargs),
            onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"]))


def args(node_args):
    return [(a.name, a.type, a.shape) for a in node_args]


def test_node_args_match_onnxruntime(add_model, relu_add_model):
    for model in (add_model, relu_add_model):
        ours, theirs = both(model)
        assert args(ours.get_inputs()) == args(theirs.get_inputs())
        assert args(ours.get_outputs()) == args(theirs.get_outputs())
        assert args(ours.get_overridable_initializers()) == args(theirs.get_overridable_initializers())
    assert str(ours.get_inputs()[0]) == "NodeArg(name='X', type='tensor(float)', shape=[2, 3])"


def test_modelmeta_matches_onnxruntime(add_model):
    add_model.producer_name = "tester"
    add_model.doc_string = "a model"
    onnx.helper.set_model_props(add_model, {"author": "me"})
    ours, theirs = both(add_model)
    for field in ("producer_name", "graph_name", "domain", "description", "graph_description",
                  "version", "custom_metadata_map"):
        assert getattr(ours.get_modelmeta(), field) == getattr(theirs.get_modelmeta(), field), field


def test_run_returns_list_in_requested_order(relu_add_model):
    sess = ort.InferenceSession(relu_add_model.SerializeToString())
    (z,) = sess.run(None, {"X": X})
    np.testing.assert_array_equal(z, np.maximum(X, 0) + 0.5)
    assert sess.run([], {"X": X})[0].shape == (2, 3)
    assert len(sess.run(["Z", "Z"], {"X": X})) == 2
    # feeding an overridable initializer overrides it
    (z2,) = sess.run(None, {"X": X, "W": np.zeros((2, 3), np.float32)})
    np.testing.assert_array_equal(z2, np.maximum(X, 0))


def test_feeds_lists_scalars_ortvalues_and_non_contiguous(add_model):
    sess = ort.InferenceSession(add_model.SerializeToString())
    (z,) = sess.run(None, {"X": [[1, 2, 3]], "Y": [[1, 1, 1]]})
    assert z.dtype == np.float32 and z.tolist() == [[2, 3, 4]]
    big = np.arange(12, dtype=np.float32).reshape(2, 6)
    (z,) = sess.run(None, {"X": big[:, ::2], "Y": ort.OrtValue.ortvalue_from_numpy(X)})
    np.testing.assert_array_equal(z, big[:, ::2] + X)


def test_outputs_never_alias_constants_or_inputs():
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [2, 3])
    c = helper.make_tensor_value_info("C", TensorProto.FLOAT, [3])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2, 3])
    nodes = [helper.make_node("Constant", [], ["C"], value=onnx.numpy_helper.from_array(np.ones(3, np.float32))),
             helper.make_node("Identity", ["X"], ["Y"])]
    graph = helper.make_graph(nodes, "g", [x], [c, y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    sess = ort.InferenceSession(model.SerializeToString())
    feed = X.copy()
    const, ident = sess.run(None, {"X": feed})
    const[:] = 7
    ident[:] = 7
    np.testing.assert_array_equal(feed, X)
    again, _ = sess.run(None, {"X": feed})
    np.testing.assert_array_equal(again, np.ones(3, np.float32))


def test_run_with_ort_values(add_model):
    sess = ort.InferenceSession(add_model.SerializeToString())
    value = ort.OrtValue.ortvalue_from_numpy(X)
    (out,) = sess.run_with_ort_values(None, {"X": value, "Y": value})
    assert isinstance(out, ort.OrtValue) and out.device_name() == "cpu"
    assert out.data_type() == "tensor(float)" and out.shape() == [2, 3]
    np.testing.assert_array_equal(out.numpy(), X + X)


def test_providers_and_options(add_model):
    data = add_model.SerializeToString()
    sess = ort.InferenceSession(data)
    assert sess.get_providers() == ["CPUExecutionProvider"]
    assert sess.get_provider_options() == {"CPUExecutionProvider": {}}
    with pytest.raises(TypeError, match="not a string"):
        ort.InferenceSession(data, providers="CPUExecutionProvider")
    with pytest.raises(ValueError, match="same length"):
        ort.InferenceSession(data, providers=["CPUExecutionProvider"], provider_options=[{}, {}])
    with pytest.raises(ort.InvalidArgument, match="bogus"):
        ort.InferenceSession(data, providers=[("CPUExecutionProvider", {"bogus": "1"})])


def test_cuda_first_list_runs_on_cpu_with_a_warning_when_cuda_is_unusable(add_model):
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("CUDA is usable here")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sess = ort.InferenceSession(add_model.SerializeToString(),
                                    providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert sess.get_providers() == ["CPUExecutionProvider"]
    assert any("CUDAExecutionProvider" in str(w.message) for w in caught)
    np.testing.assert_array_equal(sess.run(None, {"X": X, "Y": X})[0], X + X)


def test_session_options_defaults_config_and_typos():
    so = ort.SessionOptions()
    assert so.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL == 99
    assert so.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert so.profile_file_prefix == "onnxruntime_profile_"
    so.add_session_config_entry("session.key", "1")
    assert so.get_session_config_entry("session.key") == "1"
    with pytest.raises(RuntimeError, match="does not have configuration with key: x"):
        so.get_session_config_entry("x")
    with pytest.raises(AttributeError):
        so.intra_op_threads = 2  # typo of intra_op_num_threads
    ro = ort.RunOptions()
    with pytest.raises(RuntimeError, match="RunOptions does not have configuration with key: nope"):
        ro.get_run_config_entry("nope")


def test_free_dimension_override_and_add_initializer(add_model, relu_add_model, tmp_path):
    so = ort.SessionOptions()
    so.add_free_dimension_override_by_name("batch", 2)
    sess = ort.InferenceSession(add_model.SerializeToString(), so)
    assert sess.get_inputs()[0].shape == [2, 3]
    with pytest.raises(ort.InvalidArgument, match="index: 0 Got: 4 Expected: 2"):
        sess.run(None, {"X": np.ones((4, 3), np.float32), "Y": np.ones((4, 3), np.float32)})
    so = ort.SessionOptions()
    w = np.full((2, 3), 2.0, np.float32)
    so.add_initializer("W", w)
    so.optimized_model_filepath = str(tmp_path / "opt.onnx")
    sess = ort.InferenceSession(relu_add_model.SerializeToString(), so)
    np.testing.assert_array_equal(sess.run(None, {"X": X})[0], np.maximum(X, 0) + 2)
    assert w.flags.writeable  # the caller's array is not frozen by the session
    onnx.checker.check_model(onnx.load(str(tmp_path / "opt.onnx")))


def test_path_and_pathlike(add_model, tmp_path):
    path = tmp_path / "add.onnx"
    onnx.save(add_model, str(path))
    for source in (str(path), path, add_model):
        sess = ort.InferenceSession(source)
        np.testing.assert_array_equal(sess.run(None, {"X": X, "Y": X})[0], X + X)


def test_string_inputs_and_outputs():
    x = helper.make_tensor_value_info("X", TensorProto.STRING, [2])
    y = helper.make_tensor_value_info("Y", TensorProto.STRING, [2])
    model = helper.make_model(helper.make_graph([helper.make_node("Identity", ["X"], ["Y"])], "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    ours, theirs = both(model)
    for feed in (np.array(["a", "bc"]), np.array(["a", "bc"], dtype=object)):
        (a,) = ours.run(None, {"X": feed})
        (b,) = theirs.run(None, {"X": feed})
        assert a.dtype == b.dtype == np.dtype(object) and a.tolist() == b.tolist()


def test_partition_report(relu_add_model):
    sess = ort.InferenceSession(relu_add_model.SerializeToString())
    report = sess.get_partition()
    assert report.nodes_by_provider == {"CPUExecutionProvider": ["relu0", "add0"]}
    assert report.copies == []


def test_invalid_attribute_error_names_the_node_once():
    from onnx import TensorProto, helper

    node = helper.make_node("DepthToSpace", ["x"], ["y"], name="d2s", blocksize=2, mode="XYZ")
    graph = helper.make_graph([node], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 2, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=9)
    with pytest.raises(ort.InvalidGraph) as info:
        ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert str(info.value).count("node 'd2s'") == 1, str(info.value)
    assert "mode must be DCR or CRD" in str(info.value)


def test_running_emits_no_numpy_floating_point_warnings():
    """log(0) = -inf is the spec's answer; onnxruntime prints nothing and neither do we."""
    graph = helper.make_graph([helper.make_node("Log", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=9)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (y,) = sess.run(None, {"x": np.array([0, -1], np.float32)})
    assert np.isneginf(y[0]) and np.isnan(y[1])


def test_add_initializer_keeps_a_scalar_initializer_scalar():
    """np.ascontiguousarray turned 0-d overrides into shape (1,)."""
    graph = helper.make_graph([helper.make_node("Mul", ["x", "s"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [onnx.numpy_helper.from_array(np.array(2.0, np.float32), "s")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    so = ort.SessionOptions()
    so.add_initializer("s", ort.OrtValue.ortvalue_from_numpy(np.array(3.0, np.float32)))
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    (y,) = sess.run(None, {"x": np.array(2.0, np.float32)})
    assert y.shape == () and y == 6.0
