"""A third-party provider distribution, installed from a fixture folder, plugs into ort."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

FIXTURE = Path(__file__).resolve().parents[1] / "examples" / "ort-provider-example"


@pytest.fixture(scope="module")
def installed_example_provider():
    """pip-install the fixture distribution into this environment; uninstall afterwards."""
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", str(FIXTURE)],
                   check=True, timeout=600)
    yield
    subprocess.run([sys.executable, "-m", "pip", "uninstall", "--quiet", "--yes", "ort-provider-example"],
                   check=True, timeout=300)


def test_installed_provider_is_listed_and_takes_nodes(installed_example_provider):
    code = textwrap.dedent(
        """
        import numpy as np
        from onnx import TensorProto, helper
        import ort
        from ort_provider_example.plugin import ExampleExecutionProvider

        print(ort.get_available_providers())
        x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [2, 3])
        z = helper.make_tensor_value_info("Z", TensorProto.FLOAT, [2, 3])
        nodes = [helper.make_node("Relu", ["X"], ["R"], name="relu0"),
                 helper.make_node("Mul", ["R", "X"], ["M"], name="mul0"),
                 helper.make_node("Add", ["M", "X"], ["Z"], name="add0")]
        model = helper.make_model(helper.make_graph(nodes, "g", [x], [z]),
                                  opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
        sess = ort.InferenceSession(model.SerializeToString(),
                                    providers=["ExampleExecutionProvider", "CPUExecutionProvider"])
        print(sess.get_providers())
        print(sess.get_partition().nodes_by_provider)
        x = np.array([[-1, 2, -3], [4, -5, 6]], np.float32)
        (out,) = sess.run(None, {"X": x})
        assert np.array_equal(out, np.maximum(x, 0) * x + x), out
        print(ExampleExecutionProvider.calls)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    available, providers, partition, calls = result.stdout.splitlines()
    assert "ExampleExecutionProvider" in available
    assert providers == "['ExampleExecutionProvider', 'CPUExecutionProvider']"
    assert partition == ("{'ExampleExecutionProvider': ['relu0', 'mul0', 'add0'], "
                         "'CPUExecutionProvider': []}")
    assert calls == "['relu0', 'mul0', 'add0']"
