"""The ``ort`` command."""

from __future__ import annotations

import numpy as np
import onnx

from ort.tools.cli import main


def test_providers_lists_cpu(capsys):
    assert main(["providers"]) == 0
    assert "CPUExecutionProvider" in capsys.readouterr().out


def test_run_with_random_and_given_inputs(tmp_path, add_model, capsys):
    path = tmp_path / "add.onnx"
    onnx.save(add_model, str(path))
    x = np.ones((2, 3), np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", x)
    assert main(["run", str(path), "--input", f"X={tmp_path / 'x.npy'}", "--input", f"Y={tmp_path / 'y.npy'}"]) == 0
    out = capsys.readouterr().out
    assert "Z: shape=[2, 3] dtype=float32" in out and "2." in out
    assert main(["run", str(path), "--dim", "batch=4"]) == 0
    assert "Z: shape=[4, 3]" in capsys.readouterr().out


def test_kernels_lists_providers_versions_and_types(capsys):
    assert main(["kernels", "relu"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("CPUExecutionProvider"))
    assert row.split()[1:4] == ["ai.onnx", "Relu", "1+"]
    assert main(["kernels", "--domain", "com.microsoft", "--provider", "CPUExecutionProvider"]) == 0
    out = capsys.readouterr().out
    assert "FusedConv" in out and "ai.onnx " not in out


def test_kernels_for_an_unknown_op_suggests_close_names(capsys):
    assert main(["kernels", "Rellu"]) == 1
    assert "did you mean Relu" in capsys.readouterr().out
