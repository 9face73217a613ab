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
