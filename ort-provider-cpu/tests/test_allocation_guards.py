"""Kernels whose output size comes from values (a shape input, repeats, pads, scales, a
range's limits, a depth, a shape attribute) refuse an output larger than the machine's memory
(or ``session.max_output_bytes``) before allocating anything: the run fails with the error
class onnxruntime raises (Fail; InvalidArgument for Tile), naming the node, and the session
stays usable. Without the guard numpy raises MemoryError, or on Linux with overcommit hands
out memory the machine does not have and the process is killed later."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

import ort
from ort.testing import node_model

BIG = 2 ** 20  # a dim; two of them make 2**40 elements
MS = "com.microsoft"


def _i64(*values: int) -> np.ndarray:
    return np.array(values, np.int64)


def _scalar(value: Any, dtype: Any = np.int64) -> np.ndarray:
    return np.array(value, dtype)


def _f32(*shape: int) -> np.ndarray:
    return np.ones(shape, np.float32)


@dataclass
class Case:
    """A one-node model and two sets of inputs: one asking for 2**40+ bytes, one that runs
    (None: the size comes from an attribute, no input makes the model run)."""

    op: str
    huge: list[Any]
    fine: list[Any] | None
    attrs: dict[str, Any] = field(default_factory=dict)
    opset: int = 21
    domain: str = ""
    error: str = "Fail"  # onnxruntime's class
    oracle: bool = True  # onnxruntime runs the op and fails the same way

    @property
    def id(self) -> str:
        return f"{self.domain + ':' if self.domain else ''}{self.op}" + \
            (f"-{self.attrs['mode']}" if "mode" in self.attrs else "")


CASES = [
    Case("ConstantOfShape", [_i64(BIG, BIG)], [_i64(2, 3)]),
    Case("Expand", [_f32(1), _i64(BIG, BIG)], [_f32(1), _i64(2, 3)]),
    Case("Tile", [_f32(1, 1), _i64(BIG, BIG)], [_f32(1, 1), _i64(2, 3)],
         error="InvalidArgument"),
    Case("Range", [_scalar(0), _scalar(2 ** 40), _scalar(1)], [_scalar(0), _scalar(5), _scalar(1)]),
    Case("Range", [_scalar(0.0, np.float32), _scalar(2.0 ** 40, np.float32),
                   _scalar(1.0, np.float32)],
         [_scalar(0.0, np.float32), _scalar(5.0, np.float32), _scalar(1.0, np.float32)]),
    Case("Resize", [_f32(1, 1, 2, 2), None, np.array([1, 1, BIG / 2, BIG / 2], np.float32)],
         [_f32(1, 1, 2, 2), None, np.array([1, 1, 2, 2], np.float32)], {"mode": "nearest"}),
    Case("Resize", [_f32(1, 1, 2, 2), None, None, _i64(1, 1, BIG, BIG)],
         [_f32(1, 1, 2, 2), None, None, _i64(1, 1, 3, 3)], {"mode": "linear"}),
    Case("Upsample", [_f32(1, 1, 2, 2), np.array([1, 1, BIG / 2, BIG / 2], np.float32)],
         [_f32(1, 1, 2, 2), np.array([1, 1, 2, 2], np.float32)], opset=9),
    Case("Pad", [_f32(1, 1), _i64(0, 0, BIG, BIG)], [_f32(1, 1), _i64(0, 0, 1, 1)]),
    Case("Pad", [_f32(2, 2), _i64(0, 0, BIG, BIG)], [_f32(2, 2), _i64(0, 0, 1, 1)],
         {"mode": "edge"}),
    Case("OneHot", [_i64(0, 1, 2, 3), _scalar(2 ** 40), np.array([0, 1], np.float32)],
         [_i64(0, 1, 2, 3), _scalar(5), np.array([0, 1], np.float32)]),
    Case("RandomNormal", [], None, {"shape": [BIG, BIG]}),
    Case("RandomUniform", [], None, {"shape": [BIG, BIG]}),
    Case("Multinomial", [_f32(2, 3)], None, {"sample_size": 2 ** 40}),
    Case("Col2Im", [_f32(1, 1, 1), _i64(BIG, BIG), _i64(1, 1)],
         [_f32(1, 1, 1), _i64(1, 1), _i64(1, 1)], {"strides": [BIG, BIG]}),
    Case("CenterCropPad", [_f32(2, 2), _i64(BIG, BIG)], [_f32(2, 2), _i64(3, 3)]),
    Case("MaxUnpool", [_f32(1, 1, 1, 1), np.zeros((1, 1, 1, 1), np.int64), _i64(1, 1, BIG, BIG)],
         [_f32(1, 1, 1, 1), np.zeros((1, 1, 1, 1), np.int64), _i64(1, 1, 2, 2)],
         {"kernel_shape": [2, 2], "strides": [2, 2]}),
    Case("HannWindow", [_scalar(2 ** 40)], [_scalar(8)]),
    Case("MelWeightMatrix",
         [_scalar(BIG), _scalar(2 * BIG), _scalar(16000), _scalar(0.0, np.float32),
          _scalar(4000.0, np.float32)],
         [_scalar(4), _scalar(16), _scalar(16000), _scalar(0.0, np.float32),
          _scalar(4000.0, np.float32)]),
    Case("DFT", [_f32(1, 4, 1), _scalar(2 ** 40)], [_f32(1, 4, 1), _scalar(8)]),
    # frames of 2**20 samples one sample apart: 2**20 frames (the input is 8 MB)
    Case("STFT", [_f32(1, 2 * BIG, 1), _scalar(1), None, _scalar(BIG)],
         [_f32(1, 2 * BIG, 1), _scalar(BIG), None, _scalar(BIG)]),
    Case("AffineGrid", [_f32(1, 2, 3), _i64(1, 1, BIG, BIG)], [_f32(1, 2, 3), _i64(1, 1, 3, 3)]),
    # outputs allocated through NodeInfo.empty, broadcast from inputs of 4 MB
    Case("Add", [_f32(BIG, 1), _f32(1, BIG)], [_f32(BIG, 1), _f32(1, 2)]),
    Case("MatMul", [_f32(BIG, 1), _f32(1, BIG)], [_f32(BIG, 1), _f32(1, 2)]),
    Case("Range", [_scalar(0), _scalar(2 ** 40)], [_scalar(0), _scalar(5)], domain=MS),
    Case("Pad", [_f32(1, 1), _i64(0, 0, BIG, BIG)], [_f32(1, 1), _i64(0, 0, 1, 1)], domain=MS),
    Case("CropAndResize",
         [_f32(1, 1, 2, 2), np.array([[0, 0, 1, 1]], np.float32), np.zeros(1, np.int32),
          np.array([BIG, BIG], np.int32)],
         [_f32(1, 1, 2, 2), np.array([[0, 0, 1, 1]], np.float32), np.zeros(1, np.int32),
          np.array([3, 3], np.int32)], domain=MS),
]


def _model(case: Case, name: str = "guarded"):
    model, _ = node_model(case.op, case.huge, case.attrs, domain=case.domain, opset=case.opset,
                          name=name, input_shapes=False)
    return model


def _feeds(model, values: list[Any]) -> dict[str, Any]:
    names = [vi.name for vi in model.graph.input]
    return dict(zip(names, [v for v in values if v is not None]))


def _onnxruntime_error(case: Case, model) -> str:
    onnxruntime = pytest.importorskip("onnxruntime")
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    with pytest.raises(Exception) as caught:
        session.run(None, _feeds(model, case.huge))
    return type(caught.value).__name__


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_an_output_of_terabytes_is_refused_before_allocating(case):
    model = _model(case)
    session = ort.InferenceSession(model)
    error = getattr(ort, case.error)
    for _ in range(2):  # the same again: the session stays usable
        with pytest.raises(error) as caught:
            session.run(None, _feeds(model, case.huge))
        message = str(caught.value)
        assert "Name:'guarded'" in message
        assert "node 'guarded': the output of shape" in message
        assert "bytes, more than the" in message and "memory of this machine" in message
    if case.fine is not None:
        outputs = session.run(None, _feeds(model, case.fine))
        assert all(np.asarray(out).nbytes < 2 ** 26 for out in outputs)
    if case.oracle:
        assert _onnxruntime_error(case, model) == case.error


LIMITED = [  # about 10 MB each, against a limit of 1 MiB
    Case("ConstantOfShape", [_i64(1000, 2500)], [_i64(512, 512)]),
    Case("Expand", [_f32(1), _i64(1000, 2500)], [_f32(1), _i64(512, 512)]),
    Case("Tile", [_f32(1, 1), _i64(1000, 2500)], [_f32(1, 1), _i64(512, 512)],
         error="InvalidArgument"),
    Case("Range", [_scalar(0), _scalar(1_250_000), _scalar(1)],
         [_scalar(0), _scalar(131_072), _scalar(1)]),
    Case("Pad", [_f32(1, 1), _i64(0, 0, 999, 2499)], [_f32(1, 1), _i64(0, 0, 511, 511)]),
    Case("Resize", [_f32(1, 1, 2, 2), None, None, _i64(1, 1, 1000, 2500)],
         [_f32(1, 1, 2, 2), None, None, _i64(1, 1, 512, 512)], {"mode": "nearest"}),
    Case("OneHot", [np.zeros(1000, np.int64), _scalar(2500), np.array([0, 1], np.float32)],
         [np.zeros(512, np.int64), _scalar(512), np.array([0, 1], np.float32)]),
]


@pytest.mark.parametrize("case", LIMITED, ids=lambda c: c.id)
def test_a_lowered_session_limit_refuses_ten_megabytes(case):
    model = _model(case)
    options = ort.SessionOptions()
    options.add_session_config_entry("session.max_output_bytes", str(2 ** 20))
    session = ort.InferenceSession(model, options)
    with pytest.raises(getattr(ort, case.error),
                       match=r"node 'guarded'.*more than the 1,048,576 bytes one output may "
                             r"take \(the session config entry session.max_output_bytes\)"):
        session.run(None, _feeds(model, case.huge))
    out = session.run(None, _feeds(model, case.fine))[0]
    assert out.nbytes <= 2 ** 20  # exactly at the limit passes
    # the same model in a session without the entry runs the 10 MB output
    assert ort.InferenceSession(model).run(None, _feeds(model, case.huge))[0].nbytes > 2 ** 23


def test_an_expand_within_the_limit_still_broadcasts():
    case = CASES[1]  # Expand
    model = _model(case)
    x = np.arange(3, dtype=np.float32)
    out = ort.InferenceSession(model).run(None, {"in0": x, "in1": _i64(4, 3)})[0]
    np.testing.assert_array_equal(out, np.broadcast_to(x, (4, 3)))


def test_an_nchwc_upsample_by_huge_scales_is_refused():
    model, feeds = node_model("Upsample", [np.zeros((1, 16, 2, 2), np.float32)],
                              {"scales": [1, 1, BIG, BIG]}, domain="com.microsoft.nchwc",
                              opset=17, name="guarded")
    session = ort.InferenceSession(model)
    with pytest.raises(ort.Fail, match=r"node 'guarded': the output of shape "
                                       r"\[1, 16, 2097152, 2097152\]"):
        session.run(None, feeds)


def test_a_constant_com_microsoft_range_is_counted_not_materialized_at_session_creation():
    # its declared schema infers the output length from constant start and limit
    model, _ = node_model("Range", [_scalar(0), _scalar(2 ** 40)], domain=MS, constants=(0, 1),
                          name="guarded")
    session = ort.InferenceSession(model)
    with pytest.raises(ort.Fail, match=r"node 'guarded': the output of shape \[1099511627776\]"):
        session.run(None, {})
