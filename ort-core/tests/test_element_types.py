"""Element types: every ONNX TensorProto type maps to a numpy dtype and back, and has
onnxruntime's type-string name."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto

from ort.element_types import element_type_of_dtype, np_dtype_of, type_string

ALL_TYPES = [v for k, v in TensorProto.DataType.items() if k != "UNDEFINED"]


@pytest.mark.parametrize("element_type", ALL_TYPES,
                         ids=[TensorProto.DataType.Name(t) for t in ALL_TYPES])
def test_every_onnx_element_type_has_a_dtype_and_round_trips(element_type):
    dtype = np_dtype_of(element_type)
    assert isinstance(dtype, np.dtype)
    if element_type != TensorProto.STRING:
        assert element_type_of_dtype(dtype) == element_type
    name = type_string(onnx.helper.make_tensor_type_proto(element_type, [2]))
    assert name.startswith("tensor(") and name != "tensor()"


def test_nested_type_strings():
    seq = onnx.helper.make_sequence_type_proto(
        onnx.helper.make_tensor_type_proto(TensorProto.FLOAT, None))
    assert type_string(seq) == "seq(tensor(float))"
    assert type_string(onnx.helper.make_optional_type_proto(seq)) == "optional(seq(tensor(float)))"
