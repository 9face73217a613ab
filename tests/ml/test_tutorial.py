"""ONNX Runtime's scikit-learn tutorial prints the same with ``import ort as rt``."""

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sklearn", reason="the ml tox env installs scikit-learn")
pytest.importorskip("skl2onnx", reason="the ml tox env installs skl2onnx")

TUTORIAL = Path(__file__).resolve().parents[2] / "examples" / "sklearn_iris_tutorial.py"


def _run(*args: str) -> str:
    done = subprocess.run([sys.executable, str(TUTORIAL), *args], capture_output=True, text=True,
                          timeout=300, check=True)
    return done.stdout


def test_tutorial_prints_the_same_labels_and_list_of_dicts_as_onnxruntime():
    ours, theirs = _run(), _run("onnxruntime")
    assert "seq(map(int64,tensor(float)))" in ours and "{0: " in ours
    assert ours == theirs
