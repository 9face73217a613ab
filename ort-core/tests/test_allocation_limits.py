"""The output-size guard (ort.ep.limits): an output whose size comes from values and exceeds
the machine's memory, or the session config entry ``session.max_output_bytes``, is Fail naming
the node, the shape, the bytes and the limit, raised before anything is allocated; constant
folding never materializes such an output at session creation."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import ort
from ort.ep import (
    MAX_OUTPUT_BYTES_KEY,
    NodeInfo,
    check_output_size,
    machine_memory_bytes,
    max_output_bytes_of,
    output_nbytes,
)
from ort.testing import make_model

TERABYTES = (2 ** 20, 2 ** 20)  # 2**40 float32 elements: 4 TiB


def _node_info(context=None) -> NodeInfo:
    return NodeInfo(name="grow", op_type="ConstantOfShape", domain="", opset=17,
                    since_version=9, attrs={}, input_names=["s"], output_names=["y"],
                    input_dtypes=[None], output_dtypes=[None], input_shapes=[None],
                    output_shapes=[None], const_inputs=[None], context=context)


class _Context:
    """What NodeInfo reads of a session's compile context."""

    def __init__(self, limit: int | None) -> None:
        self.max_output_bytes = limit


def _constant_of_shape_model(shape_from_input: bool = True):
    """``y = ConstantOfShape(s)`` (float32 zeros), ``s`` a feed or a constant initializer."""
    node = helper.make_node("ConstantOfShape", ["s"], ["y"], name="grow")
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    if shape_from_input:
        return make_model([node], [helper.make_tensor_value_info("s", TensorProto.INT64, [2])],
                          [out], opset=17)
    sum_node = helper.make_node("ReduceSum", ["y"], ["total"], name="total", keepdims=0)
    shape = numpy_helper.from_array(np.array(TERABYTES, np.int64), "s")
    return make_model([node, sum_node], [],
                      [helper.make_tensor_value_info("total", TensorProto.FLOAT, None)],
                      [shape], opset=17)


def _options(limit: str) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.add_session_config_entry(MAX_OUTPUT_BYTES_KEY, limit)
    return options


# ---- the mechanism --------------------------------------------------------------------------

def test_machine_memory_is_the_physical_memory_or_less():
    physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert 0 < machine_memory_bytes() <= physical
    assert machine_memory_bytes() is machine_memory_bytes()  # read once


def test_sizes_are_python_ints_that_do_not_overflow():
    assert output_nbytes((2 ** 40, 2 ** 40), np.float32) == 2 ** 82
    # numpy ints in the shape would wrap around in int64; the count does not
    assert output_nbytes(np.array([2 ** 32, 2 ** 32], np.int64), np.dtype(np.int64)) == 2 ** 67
    assert output_nbytes((3, 0, 2 ** 62), np.float64) == 0
    assert output_nbytes((2, 3), np.float16) == 12
    assert output_nbytes((), np.dtype(np.complex128)) == 16


def test_under_the_limit_passes_and_over_it_is_fail_naming_everything():
    check_output_size("Op node 'n'", (1000, 1000), np.float32, limit=4_000_000)
    with pytest.raises(ort.Fail) as caught:
        check_output_size("Op node 'n'", (1000, 1001), np.float32, limit=4_000_000)
    message = str(caught.value)
    assert "Op node 'n'" in message
    assert "[1000, 1001]" in message and "float32" in message
    assert "4,004,000 bytes" in message and "4,000,000 bytes" in message
    assert MAX_OUTPUT_BYTES_KEY in message and "Nothing was allocated" in message


def test_the_default_limit_is_the_machine_memory():
    with pytest.raises(ort.Fail, match="the memory of this machine"):
        check_output_size("Op node 'n'", TERABYTES, np.float32)


def test_the_error_class_and_a_lazy_node_name():
    asked = []

    def where() -> str:
        asked.append(1)
        return "Tile node 't'"

    check_output_size(where, (10,), np.int8, limit=10)
    assert not asked  # the name is built only for the message
    with pytest.raises(ort.InvalidArgument, match="Tile node 't'"):
        check_output_size(where, (11,), np.int8, limit=10, error=ort.InvalidArgument)


@pytest.mark.parametrize("text,expected", [("1048576", 2 ** 20), (" 42 ", 42)])
def test_the_config_entry_is_read(text, expected):
    assert max_output_bytes_of({}) is None
    assert max_output_bytes_of({MAX_OUTPUT_BYTES_KEY: text}) == expected


@pytest.mark.parametrize("text", ["", "abc", "0", "-5", "1.5", "1e9"])
def test_a_malformed_config_entry_is_invalid_argument(text):
    with pytest.raises(ort.InvalidArgument, match=f"{MAX_OUTPUT_BYTES_KEY} must be a positive"):
        max_output_bytes_of({MAX_OUTPUT_BYTES_KEY: text})


def test_node_info_applies_the_session_limit():
    node = _node_info(_Context(1000))
    assert node.max_output_bytes == 1000
    node.check_output_size((250,), np.float32)
    with pytest.raises(ort.Fail, match=r"ConstantOfShape\(9\) node 'grow'.*1,004 bytes.*"
                                       r"session config entry session.max_output_bytes"):
        node.check_output_size((251,), np.float32)
    assert _node_info().max_output_bytes is None  # no session: the machine's memory


def test_node_info_empty_refuses_before_allocating():
    with pytest.raises(ort.Fail, match="4,398,046,511,104 bytes"):
        _node_info().empty(TERABYTES, np.float32)
    with pytest.raises(ort.Fail, match="4,000 bytes"):
        _node_info(_Context(100)).empty((1000,), np.float32)
    assert _node_info(_Context(4000)).empty((1000,), np.float32).shape == (1000,)


# ---- through a session ----------------------------------------------------------------------

def test_an_output_larger_than_memory_is_fail_and_the_session_stays_usable():
    session = ort.InferenceSession(_constant_of_shape_model())
    with pytest.raises(ort.Fail, match=r"Name:'grow'.*\[1048576, 1048576\].*4,398,046,511,104"):
        session.run(None, {"s": np.array(TERABYTES, np.int64)})
    out = session.run(None, {"s": np.array([2, 3], np.int64)})[0]
    np.testing.assert_array_equal(out, np.zeros((2, 3), np.float32))


def test_a_lowered_session_limit_refuses_moderate_outputs():
    session = ort.InferenceSession(_constant_of_shape_model(), _options(str(2 ** 20)))
    with pytest.raises(ort.Fail, match=r"10,000,000 bytes, more than the 1,048,576 bytes.*"
                                       r"session config entry session.max_output_bytes"):
        session.run(None, {"s": np.array([1000, 2500], np.int64)})  # 10 MB
    assert session.run(None, {"s": np.array([512, 512], np.int64)})[0].nbytes == 2 ** 20


def test_the_limit_is_per_session():
    small = ort.InferenceSession(_constant_of_shape_model(), _options("1000"))
    default = ort.InferenceSession(_constant_of_shape_model())
    feed = {"s": np.array([100, 100], np.int64)}
    with pytest.raises(ort.Fail, match="40,000 bytes"):
        small.run(None, feed)
    assert default.run(None, feed)[0].shape == (100, 100)


def test_a_malformed_limit_fails_session_creation():
    with pytest.raises(ort.InvalidArgument, match="session.max_output_bytes.*'lots'"):
        ort.InferenceSession(_constant_of_shape_model(), _options("lots"))


def test_constant_folding_skips_a_huge_constant_and_the_run_fails(caplog):
    model = _constant_of_shape_model(shape_from_input=False)
    with caplog.at_level(logging.WARNING, logger="ort"):
        session = ort.InferenceSession(model)  # nothing of 4 TiB is allocated
    warnings = [r.getMessage() for r in caplog.records
                if "Skipping constant folding" in r.getMessage()]
    assert len(warnings) == 1
    assert "ConstantOfShape node 'grow'" in warnings[0]
    assert "(4398046511104 bytes) exceeds the limit (1073741824 bytes)" in warnings[0]
    for _ in range(2):  # and the session stays usable
        with pytest.raises(ort.Fail, match="Name:'grow'.*4,398,046,511,104 bytes"):
            session.run(None, {})


def test_constant_folding_sizes_shapes_without_int64_overflow():
    # the shape is computed by a node folded first, so folding sizes it from the value:
    # 2**32 * 2**32 wraps to 0 in int64, which once made it look small enough to fold
    parts = [numpy_helper.from_array(np.array([2 ** 32], np.int64), name) for name in "ab"]
    nodes = [helper.make_node("Concat", ["a", "b"], ["s"], axis=0),
             helper.make_node("ConstantOfShape", ["s"], ["y"], name="grow"),
             helper.make_node("ReduceSum", ["y"], ["total"], keepdims=0)]
    model = make_model(nodes, [], [helper.make_tensor_value_info("total", TensorProto.FLOAT,
                                                                 None)], parts, opset=17)
    session = ort.InferenceSession(model)
    with pytest.raises(ort.Fail, match=r"Name:'grow'.*\[4294967296, 4294967296\]"):
        session.run(None, {})


def test_constant_folding_leaves_a_range_of_infinite_length_to_the_run():
    values = [numpy_helper.from_array(np.array(v, np.float32), n)
              for n, v in (("start", 0.0), ("limit", np.inf), ("delta", 1.0))]
    node = helper.make_node("Range", ["start", "limit", "delta"], ["y"], name="count")
    model = make_model([node], [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                       values, opset=17)
    session = ort.InferenceSession(model)  # folding does not trip over it
    with pytest.raises(ort.InvalidArgument, match="Name:'count'.*not a finite value"):
        session.run(None, {})
    onnxruntime = pytest.importorskip("onnxruntime")
    with pytest.raises(onnxruntime.capi.onnxruntime_pybind11_state.InvalidArgument):
        onnxruntime.InferenceSession(model.SerializeToString(),
                                     providers=["CPUExecutionProvider"]).run(None, {})
