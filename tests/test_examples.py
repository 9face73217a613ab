"""The bundled example the README's first command runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime

import ort

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_predict_digits_script_prints_predictions():
    result = subprocess.run([sys.executable, str(EXAMPLES / "predict_digits.py")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "pred" in result.stdout
    assert "accuracy: 12/12" in result.stdout


def test_digits_model_matches_onnxruntime():
    path = str(EXAMPLES / "digits.onnx")
    samples = np.load(EXAMPLES / "digits_samples.npy", allow_pickle=False)
    ours = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    theirs = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    name = ours.get_inputs()[0].name
    images = np.ascontiguousarray(samples["image"])
    np.testing.assert_allclose(ours.run(None, {name: images})[0], theirs.run(None, {name: images})[0],
                               rtol=1e-4, atol=1e-6)
