"""OrtValue on the CPU, compared with onnxruntime.OrtValue."""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest
from onnx import TensorProto

import ort

X = np.arange(6, dtype=np.float32).reshape(2, 3)


def test_from_numpy_is_zero_copy_and_reports_like_onnxruntime():
    ours = ort.OrtValue.ortvalue_from_numpy(X)
    theirs = onnxruntime.OrtValue.ortvalue_from_numpy(X)
    for method in ("shape", "data_type", "element_type", "device_name", "is_tensor", "has_value",
                   "is_tensor_sequence", "tensor_size_in_bytes"):
        assert getattr(ours, method)() == getattr(theirs, method)(), method
    assert ours.data_ptr() == X.ctypes.data
    assert np.shares_memory(ours.numpy(), X)
    np.testing.assert_array_equal(np.asarray(ours), X)


@pytest.mark.parametrize("element_type", [np.int64, TensorProto.INT64, np.dtype("int64")])
def test_from_shape_and_type(element_type):
    value = ort.OrtValue.ortvalue_from_shape_and_type([3, 2], element_type)
    assert value.shape() == [3, 2] and value.data_type() == "tensor(int64)"
    assert value.element_type() == TensorProto.INT64


def test_update_inplace_and_size_check():
    value = ort.OrtValue.ortvalue_from_shape_and_type([2, 3], np.float32)
    value.update_inplace(X)
    np.testing.assert_array_equal(value.numpy(), X)
    with pytest.raises(ValueError, match="does not match the size of the OrtValue"):
        value.update_inplace(np.ones(4, np.float32))


def test_dlpack_both_ways():
    value = ort.OrtValue.ortvalue_from_numpy(X)
    back = np.from_dlpack(value)
    assert np.shares_memory(back, X)
    again = ort.OrtValue.from_dlpack(X)
    assert again.data_ptr() == X.ctypes.data
    assert value.__dlpack_device__() == (1, 0)


def test_bfloat16_values_keep_their_type():
    import ml_dtypes

    value = ort.OrtValue.ortvalue_from_numpy(np.ones(2, ml_dtypes.bfloat16))
    assert value.data_type() == "tensor(bfloat16)" and value.element_type() == TensorProto.BFLOAT16
