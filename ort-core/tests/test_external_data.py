"""External data resolves as onnxruntime resolves it, and a model cannot use it to read
outside its folder: absolute paths, '..' that leaves it, escaping symbolic links, bad ranges are refused
with Fail saying why (missing files: NoSuchFile); the caller's ModelProto is never filled in."""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import ort

WEIGHT = np.arange(16, dtype=np.float32) - 7.5


def _model(location: str, offset: int | None = None, length: int | None = None,
           in_constant: bool = False) -> onnx.ModelProto:
    """Y = X + W, W (16 floats) stored externally at ``location``."""
    weight = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[16])
    weight.data_location = TensorProto.EXTERNAL
    entries = {"location": location}
    if offset is not None:
        entries["offset"] = str(offset)
    if length is not None:
        entries["length"] = str(length)
    for key, value in entries.items():
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    nodes = [helper.make_node("Add", ["X", "W"], ["Y"])]
    inits = [weight]
    if in_constant:
        nodes.insert(0, helper.make_node("Constant", [], ["W"], value=weight))
        inits = []
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("X", 1, [16])],
                              [helper.make_tensor_value_info("Y", 1, [16])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _write_weight(path, prefix: bytes = b"") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(prefix + WEIGHT.tobytes())


def _run(source, options=None):
    session = ort.InferenceSession(source, options)
    x = np.ones(16, np.float32)
    return session.run(None, {"X": x})[0] - x


@pytest.mark.parametrize("in_constant", [False, True])
def test_external_data_beside_the_model_file(tmp_path, in_constant):
    _write_weight(tmp_path / "data" / "w.bin", prefix=b"\0" * 8)
    path = tmp_path / "m.onnx"
    onnx.save(_model("data/w.bin", offset=8, length=64, in_constant=in_constant), str(path))
    np.testing.assert_array_equal(_run(str(path)), WEIGHT)


def test_bytes_and_protos_resolve_against_the_working_directory(tmp_path, monkeypatch):
    _write_weight(tmp_path / "w.bin")
    monkeypatch.chdir(tmp_path)
    model = _model("w.bin")
    before = model.SerializeToString()
    np.testing.assert_array_equal(_run(model.SerializeToString()), WEIGHT)
    np.testing.assert_array_equal(_run(model), WEIGHT)
    assert model.SerializeToString() == before  # the caller's proto is not filled in


def test_the_session_option_names_the_folder_for_bytes(tmp_path):
    _write_weight(tmp_path / "elsewhere" / "w.bin")
    options = ort.SessionOptions()
    options.add_session_config_entry("session.model_external_initializers_file_folder_path",
                                     str(tmp_path / "elsewhere"))
    np.testing.assert_array_equal(_run(_model("w.bin").SerializeToString(), options), WEIGHT)


def test_a_dotdot_that_stays_inside_the_folder_is_followed(tmp_path):
    _write_weight(tmp_path / "w.bin")
    (tmp_path / "sub").mkdir()
    path = tmp_path / "m.onnx"
    onnx.save(_model("sub/../w.bin"), str(path))
    np.testing.assert_array_equal(_run(str(path)), WEIGHT)


def test_a_symbolic_link_inside_the_folder_is_followed(tmp_path):
    _write_weight(tmp_path / "real.bin")
    os.symlink(tmp_path / "real.bin", tmp_path / "link.bin")
    path = tmp_path / "m.onnx"
    onnx.save(_model("link.bin"), str(path))
    np.testing.assert_array_equal(_run(str(path)), WEIGHT)


@pytest.mark.parametrize("location,why", [
    ("{secret}", "absolute path"),
    ("../secret/w.bin", "'..'"),
    ("sub/../../secret/w.bin", "'..'"),
    ("..\\secret\\w.bin", "'..'"),
    ("C:\\secret\\w.bin", "absolute path"),
    ("\\\\server\\share\\w.bin", "absolute path"),
    ("escape.bin", "symbolic link"),
    ("", "names no location"),
])
@pytest.mark.parametrize("form", ["file", "bytes", "proto"])
def test_locations_outside_the_folder_are_refused(tmp_path, monkeypatch, location, why, form):
    secret = tmp_path / "secret" / "w.bin"
    _write_weight(secret)  # a real file of the right size: only containment stops the read
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    os.symlink(secret, model_dir / "escape.bin")
    monkeypatch.chdir(model_dir)
    model = _model(location.format(secret=secret))
    if form == "file":
        source = str(model_dir / "m.onnx")
        onnx.save(model, source)
    elif form == "bytes":
        source = model.SerializeToString()
    else:
        source = model
    with pytest.raises(ort.Fail, match=f"initializer 'W'.*{why}") as info:
        ort.InferenceSession(source)
    assert "Load model failed" in str(info.value)


@pytest.mark.parametrize("offset,length,why", [
    (0, 65, "holds 64 bytes"),
    (60, 8, "holds 64 bytes"),
    (100, None, "holds 64 bytes"),
    (-1, None, "non-negative integer"),
    (None, -4, "non-negative integer"),
])
def test_byte_ranges_outside_the_file_are_refused(tmp_path, offset, length, why):
    _write_weight(tmp_path / "w.bin")
    path = tmp_path / "m.onnx"
    onnx.save(_model("w.bin", offset, length), str(path))
    with pytest.raises(ort.Fail, match=why):
        ort.InferenceSession(str(path))


def test_a_missing_external_file_is_no_such_file(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(_model("missing.bin"), str(path))
    with pytest.raises(ort.NoSuchFile, match="missing.bin.*does not exist"):
        ort.InferenceSession(str(path))


@pytest.mark.parametrize("location", ["{secret}", "../secret/w.bin", "escape.bin", "w.bin",
                                      "sub/../w.bin", "./w.bin"])
def test_onnxruntime_gives_the_same_verdict(tmp_path, location):
    onnxruntime = pytest.importorskip("onnxruntime")
    secret = tmp_path / "secret" / "w.bin"
    _write_weight(secret)
    model_dir = tmp_path / "model"
    _write_weight(model_dir / "w.bin")
    (model_dir / "sub").mkdir()
    os.symlink(secret, model_dir / "escape.bin")
    path = str(model_dir / "m.onnx")
    onnx.save(_model(location.format(secret=secret)), path)
    try:
        onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        theirs = None
    except onnxruntime.capi.onnxruntime_pybind11_state.Fail:
        theirs = "Fail"
    try:
        ort.InferenceSession(path)
        ours = None
    except ort.Fail:
        ours = "Fail"
    assert ours == theirs
