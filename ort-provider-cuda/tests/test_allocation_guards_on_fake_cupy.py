"""The output-size guard on CUDAExecutionProvider (with the cupy double): the CPU kernels it
reuses (ConstantOfShape, Tile, ...) and its own Resize refuse an output larger than the limit
before allocating device memory, naming the node, and the session stays usable."""

from __future__ import annotations

import numpy as np
import pytest

import ort
from ort.testing import node_model
from ort.testing.conformance import ran_on

CUDA = "CUDAExecutionProvider"
BIG = 2 ** 20


def _i64(*values: int) -> np.ndarray:
    return np.array(values, np.int64)


@pytest.mark.parametrize("op,huge,fine,attrs,error", [
    ("ConstantOfShape", [_i64(BIG, BIG)], [_i64(2, 3)], {}, ort.Fail),
    ("Tile", [np.ones((1, 1), np.float32), _i64(BIG, BIG)],
     [np.ones((1, 1), np.float32), _i64(2, 3)], {}, ort.InvalidArgument),
    ("Resize", [np.ones((1, 1, 2, 2), np.float32), None, None, _i64(1, 1, BIG, BIG)],
     [np.ones((1, 1, 2, 2), np.float32), None, None, _i64(1, 1, 3, 3)], {"mode": "linear"},
     ort.Fail),
])
def test_an_oversized_output_on_the_gpu_is_refused(fake_cupy, op, huge, fine, attrs, error):
    model, _ = node_model(op, huge, attrs, name="guarded", opset=18, input_shapes=False)
    names = [vi.name for vi in model.graph.input]
    session = ort.InferenceSession(model, providers=[CUDA])
    assert ran_on(session, CUDA) == ["guarded"]
    with pytest.raises(error, match=r"node 'guarded': the output of shape .* bytes, more than"):
        session.run(None, dict(zip(names, [v for v in huge if v is not None])))
    assert session.run(None, dict(zip(names, [v for v in fine if v is not None])))[0].size


def test_the_session_limit_applies_on_the_gpu(fake_cupy):
    model, _ = node_model("ConstantOfShape", [_i64(1000, 2500)], name="guarded", opset=18)
    options = ort.SessionOptions()
    options.add_session_config_entry("session.max_output_bytes", str(2 ** 20))
    session = ort.InferenceSession(model, options, providers=[CUDA])
    with pytest.raises(ort.Fail, match="more than the 1,048,576 bytes"):
        session.run(None, {"in0": _i64(1000, 2500)})
    assert session.run(None, {"in0": _i64(512, 512)})[0].shape == (512, 512)
