"""The compiled pooling loops (MaxPool with and without Indices, AveragePool, GlobalAveragePool)
against the numpy kernels (``compiled_kernels=0``) and onnxruntime: padding, strides,
dilations, ceil_mode, auto_pad, count_include_pad, storage_order, 1-D and 2-D, batch > 1,
float64 and threads that split the planes."""

from __future__ import annotations

import numpy as np
import pytest
from ort.testing import node_model

from compiled_checks import three_way

pytest.importorskip("numba")

RNG = np.random.default_rng(16)




def _distinct(shape, dtype=np.float32):
    """Values without ties (so that MaxPool's Indices are unique)."""
    return (RNG.permutation(int(np.prod(shape))).reshape(shape) * 0.37 - 50).astype(dtype)


WINDOWS_2D = [
    {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
    {"kernel_shape": [2, 2], "strides": [2, 2]},
    {"kernel_shape": [3, 2], "strides": [1, 2], "pads": [1, 0, 2, 1]},
    {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1},
    {"kernel_shape": [2, 3], "strides": [3, 2], "ceil_mode": 1},
    {"kernel_shape": [3, 3], "dilations": [2, 1], "pads": [2, 1, 2, 1]},
    {"kernel_shape": [2, 2], "strides": [2, 1], "dilations": [2, 3], "ceil_mode": 1},
    {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"},
    {"kernel_shape": [4, 2], "strides": [3, 1], "auto_pad": "SAME_LOWER"},
    {"kernel_shape": [3, 3], "auto_pad": "VALID"},
    {"kernel_shape": [1, 1], "strides": [2, 2]},
    {"kernel_shape": [7, 7]},
]


@pytest.mark.parametrize("attrs", WINDOWS_2D)
@pytest.mark.parametrize("shape", [(2, 3, 7, 9), (1, 5, 8, 8), (3, 2, 12, 7)])
def test_max_pool_2d(attrs, shape):
    x = _distinct(shape)
    model, feeds = node_model("MaxPool", [x], attrs, opset=12)
    three_way(model, feeds)


@pytest.mark.parametrize("attrs", WINDOWS_2D)
@pytest.mark.parametrize("storage_order", [0, 1])
def test_max_pool_2d_indices(attrs, storage_order):
    x = _distinct((2, 3, 9, 8))
    model, feeds = node_model("MaxPool", [x], {**attrs, "storage_order": storage_order},
                              opset=12, outputs=2)
    three_way(model, feeds)


@pytest.mark.parametrize("attrs", WINDOWS_2D)
@pytest.mark.parametrize("include_pad", [0, 1])
def test_average_pool_2d(attrs, include_pad):
    if "dilations" in attrs:
        opset = 19
    else:
        opset = 12
    x = RNG.standard_normal((2, 3, 9, 10)).astype(np.float32)
    model, feeds = node_model("AveragePool", [x], {**attrs, "count_include_pad": include_pad},
                              opset=opset)
    three_way(model, feeds, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("attrs", [{"kernel_shape": [3], "strides": [2], "pads": [1, 1]},
                                   {"kernel_shape": [4], "ceil_mode": 1, "strides": [3]},
                                   {"kernel_shape": [2], "dilations": [3], "pads": [1, 1]}])
def test_pool_1d(op, attrs):
    if op == "AveragePool" and "dilations" in attrs:
        opset = 19
    else:
        opset = 12
    x = _distinct((2, 4, 17))
    model, feeds = node_model(op, [x], attrs, opset=opset, outputs=2 if op == "MaxPool" else 1)
    three_way(model, feeds, rtol=1e-5)


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
def test_pool_float64_and_threads(op):
    x = RNG.standard_normal((4, 16, 40, 40))  # large enough to be split over the planes
    attrs = {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}
    model, feeds = node_model(op, [x], attrs, opset=12)
    # onnxruntime has no float64 AveragePool
    three_way(model, feeds, rtol=1e-12, atol=1e-12, threads=(1, 2, 3), oracle=op == "MaxPool")
    model, feeds = node_model(op, [x.astype(np.float32)], attrs, opset=12)
    three_way(model, feeds, rtol=1e-6, atol=1e-6, threads=(2, 3))


def test_max_pool_nan_and_infinities():
    x = RNG.standard_normal((1, 2, 6, 6)).astype(np.float32)
    x[0, 0, 0, 0] = np.nan  # skipped, as numpy's fmax: its windows keep the other maxima
    x[0, 0, 2:4, 2:4] = np.nan  # a window of NaN only gives NaN
    x[0, 1, 0, :] = np.inf
    x[0, 1, 5, :] = -np.inf
    model, feeds = node_model("MaxPool", [x], {"kernel_shape": [2, 2], "strides": [2, 2]},
                              opset=12)
    got = three_way(model, feeds, oracle=False)[0]
    assert np.isnan(got[0, 0, 1, 1]) and np.isfinite(got[0, 0, 0, 0])
    assert (got[0, 1, 0] == np.inf).all()


def test_max_pool_indices_ties_take_the_first_tap():
    x = np.zeros((1, 1, 4, 4), np.float32)
    model, feeds = node_model("MaxPool", [x], {"kernel_shape": [2, 2], "strides": [2, 2]},
                              opset=12, outputs=2)
    indices = three_way(model, feeds)[1]
    np.testing.assert_array_equal(indices[0, 0], [[0, 2], [8, 10]])


@pytest.mark.parametrize("shape", [(2, 7, 5, 3), (3, 40, 7, 7), (2, 3, 11), (1, 2, 3, 4, 5)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_global_average_pool(shape, dtype):
    x = RNG.standard_normal(shape).astype(dtype) + 3
    model, feeds = node_model("GlobalAveragePool", [x], {}, opset=12)
    tol = 1e-6 if dtype == np.float32 else 1e-12
    # onnxruntime has no float64 GlobalAveragePool
    three_way(model, feeds, rtol=tol, atol=tol, oracle=dtype == np.float32)


@pytest.mark.parametrize("p", [1, 2, 3])
@pytest.mark.parametrize("attrs", [{"kernel_shape": [3, 3], "strides": [2, 2],
                                    "pads": [1, 1, 1, 1]},
                                   {"kernel_shape": [2, 3], "strides": [1, 2], "ceil_mode": 1},
                                   {"kernel_shape": [2, 2], "dilations": [2, 2]},
                                   {"kernel_shape": [3], "strides": [2], "pads": [1, 1]}])
def test_lp_pool(p, attrs):
    spatial = (9, 10) if len(attrs["kernel_shape"]) == 2 else (13,)
    x = RNG.standard_normal((2, 3) + spatial).astype(np.float32)
    model, feeds = node_model("LpPool", [x], {**attrs, "p": p}, opset=18)
    # onnxruntime's LpPool has neither dilations nor ceil_mode: the numpy path is the oracle
    three_way(model, feeds, rtol=1e-5, atol=1e-6,
              oracle="dilations" not in attrs and "ceil_mode" not in attrs)


# --------------------------------------------------------------------------------------------
# com.microsoft quantized pools
# --------------------------------------------------------------------------------------------

MS = "com.microsoft"
QUANT_WINDOWS = [
    {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
    {"kernel_shape": [2, 3], "strides": [1, 2], "pads": [0, 1, 1, 2]},
    {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1},
    {"kernel_shape": [2, 2], "auto_pad": "SAME_UPPER"},
    {"kernel_shape": [3], "strides": [2], "pads": [1, 1]},
]


def _quantized(shape, dtype):
    info = np.iinfo(dtype)
    return RNG.integers(info.min, info.max + 1, size=shape, dtype=dtype)


def _quant_params(dtype):
    zero = 128 if dtype == np.uint8 else -3
    return (np.float32(0.05), np.array(zero + 5, dtype), np.float32(0.037), np.array(zero, dtype))


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("attrs", QUANT_WINDOWS)
@pytest.mark.parametrize("include_pad", [0, 1])
@pytest.mark.parametrize("channels_last", [0, 1])
def test_qlinear_average_pool(dtype, attrs, include_pad, channels_last):
    spatial = (9, 11) if len(attrs["kernel_shape"]) == 2 else (13,)
    shape = (2, 3) + spatial if not channels_last else (2,) + spatial + (3,)
    x = _quantized(shape, dtype)
    model, feeds = node_model("QLinearAveragePool", [x, *_quant_params(dtype)],
                              {**attrs, "count_include_pad": include_pad,
                               "channels_last": channels_last},
                              domain=MS, opset=17, constants=(1, 2, 3, 4))
    three_way(model, feeds, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("shape", [(2, 5, 7, 7), (1, 64, 3, 9), (2, 3, 11)])
def test_qlinear_global_average_pool(dtype, shape):
    x = _quantized(shape, dtype)
    model, feeds = node_model("QLinearGlobalAveragePool", [x, *_quant_params(dtype)], {},
                              domain=MS, opset=17, constants=(1, 2, 3, 4))
    three_way(model, feeds, rtol=0, atol=0)
    # a window that is the whole image takes the same path in QLinearAveragePool
    model, feeds = node_model("QLinearAveragePool", [x, *_quant_params(dtype)],
                              {"kernel_shape": list(shape[2:])}, domain=MS, opset=17,
                              constants=(1, 2, 3, 4))
    three_way(model, feeds, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("attrs", QUANT_WINDOWS + [{"kernel_shape": [2, 2],
                                                    "dilations": [2, 2], "pads": [1, 1, 1, 1]}])
def test_nhwc_max_pool(dtype, attrs):
    spatial = (9, 11) if len(attrs["kernel_shape"]) == 2 else (13,)
    x = _quantized((2,) + spatial + (5,), dtype)
    model, feeds = node_model("NhwcMaxPool", [x], attrs, domain=MS, opset=17)
    three_way(model, feeds, rtol=0, atol=0)
