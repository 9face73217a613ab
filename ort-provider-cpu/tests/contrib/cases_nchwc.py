"""Contrib-op cases of onnxruntime's com.microsoft.nchwc ops (blocked-channel layout):
ReorderInput, ReorderOutput, Conv, MaxPool, AveragePool, GlobalMaxPool, GlobalAveragePool,
Upsample.

onnxruntime runs these ops with its own CPU's block size (MLAS: 16 with AVX-512, 8 with AVX2),
so the blocked inputs and reordered weights here are built with the block size it reports
(the channel count a ReorderInput of 4 channels pads to). Every case keeps its weights'
channel counts ambiguous-free for ort: they fit the oracle's block size, and where they also
fit the other candidate, ort's tie-breaker (this machine's MLAS block size) agrees.
"""

from __future__ import annotations

import numpy as np
from contrib_case import Case, rng

NCHWC = "com.microsoft.nchwc"


def _oracle_block_size() -> int:
    """The block size onnxruntime uses on this machine (8 where it cannot be asked)."""
    try:
        import onnxruntime
        from ort.testing import node_model
    except ImportError:
        return 8
    model, feeds = node_model("ReorderInput", [np.zeros((1, 4, 1, 1), np.float32)],
                              domain=NCHWC, opset=17)
    try:
        session = onnxruntime.InferenceSession(model.SerializeToString(),
                                               providers=["CPUExecutionProvider"])
    except Exception:  # no NCHWc kernels on this CPU
        return 8
    return int(session.run(None, feeds)[0].shape[1])


B = _oracle_block_size()
r = rng(31)
f32 = np.float32


def blocked(x: np.ndarray) -> np.ndarray:
    """NCHW ``x`` (channels a multiple of B) in the blocked layout (N, C, H, W) whose memory
    is (N, C/B, H, W, B)."""
    n, c, h, w = x.shape
    return np.ascontiguousarray(
        x.reshape(n, c // B, B, h, w).transpose(0, 1, 3, 4, 2)).reshape(n, c, h, w)


def oihw_bibo(w: np.ndarray, group: int = 1) -> np.ndarray:
    """OIHW weights (channels multiples of B per group) reordered to OIHWBiBo per group."""
    o, i, kh, kw = w.shape
    g = w.reshape(group, o // group // B, B, i // B, B, kh, kw)
    return np.ascontiguousarray(g.transpose(0, 1, 3, 5, 6, 4, 2)).reshape(o, i, kh, kw)


def oihw_bo(w: np.ndarray) -> np.ndarray:
    """OIHW weights (O a multiple of B) reordered to OIHWBo."""
    o, i, kh, kw = w.shape
    return np.ascontiguousarray(
        w.reshape(o // B, B, i, kh, kw).transpose(0, 2, 3, 4, 1)).reshape(o, i, kh, kw)


def data(*shape: int) -> np.ndarray:
    """Random float32 sample data."""
    return r.standard_normal(shape).astype(f32)


C2 = 2 * B
X_NCHW = data(2, C2, 7, 6)
XB = blocked(data(2, C2, 7, 6))
XB1 = blocked(data(1, B, 9, 8))
W33 = data(C2, C2, 3, 3) * 0.3
W11 = data(B, C2, 1, 1) * 0.3
W_NCHW = data(C2, 3, 3, 3) * 0.3
W_DW = data(C2, 1, 3, 3)
W_G2 = data(C2, B, 3, 3) * 0.3
W_25 = data(B, B, 2, 5) * 0.3
BIAS = data(C2)
BIAS_B = data(B)
SUM = blocked(data(2, C2, 7, 6))
SUM_S2 = blocked(data(2, C2, 4, 3))
X3 = data(2, 3, 8, 7)

_CONV = dict(constants=(1, 2), atol=1e-5, rtol=1e-4)

CASES = [
    # ReorderInput: channels a multiple of B, padded (20: the padded count depends on the
    # saving machine's block size, so ort leaves that dim unknown), NHWC sources
    Case("ReorderInput_nchw", "ReorderInput", [X_NCHW], domain=NCHWC, opset=17),
    Case("ReorderInput_pad", "ReorderInput", [data(1, 20, 5, 4)], domain=NCHWC, opset=17,
         check_shapes=False),  # channels padded to the block size: unknown statically
    Case("ReorderInput_channels_last", "ReorderInput", [data(2, 5, 4, C2)],
         {"channels_last": 1}, domain=NCHWC, opset=17),
    Case("ReorderInput_channels_last_pad", "ReorderInput", [data(1, 3, 4, 12)],
         {"channels_last": 1}, domain=NCHWC, opset=17,
         check_shapes=False),  # channels padded to the block size: unknown statically
    # ReorderOutput: all channels, fewer channels (padded lanes dropped), NHWC
    Case("ReorderOutput_all", "ReorderOutput", [XB], {"channels": C2}, domain=NCHWC,
         opset=17),
    Case("ReorderOutput_fewer", "ReorderOutput", [XB], {"channels": C2 - 3}, domain=NCHWC,
         opset=17),
    Case("ReorderOutput_channels_last", "ReorderOutput", [XB], {"channels": B + 1,
                                                              "channels_last": 1},
         domain=NCHWC, opset=17),
    # Conv: blocked input (OIHWBiBo)
    Case("Conv_3x3_relu", "Conv", [XB, oihw_bibo(W33), BIAS],
         {"pads": [1, 1, 1, 1], "activation": "Relu"}, domain=NCHWC, opset=17, **_CONV),
    Case("Conv_3x3_nobias", "Conv", [XB, oihw_bibo(W33)], {"pads": [1, 1, 1, 1]},
         domain=NCHWC, opset=17, constants=(1,), atol=1e-5, rtol=1e-4),
    Case("Conv_stride2_clip", "Conv", [XB, oihw_bibo(W33), BIAS],
         {"pads": [1, 0, 1, 1], "strides": [2, 2], "activation": "Clip",
          "activation_params": [-0.5, 0.7]}, domain=NCHWC, opset=17, **_CONV),
    Case("Conv_sum_relu", "Conv", [XB, oihw_bibo(W33), BIAS, SUM],
         {"pads": [1, 1, 1, 1], "activation": "Relu"}, domain=NCHWC, opset=17, **_CONV),
    Case("Conv_sum_stride2", "Conv", [XB, oihw_bibo(W33), BIAS, SUM_S2],
         {"pads": [1, 1, 1, 1], "strides": [2, 2]}, domain=NCHWC, opset=17, **_CONV),
    Case("Conv_pointwise_leaky", "Conv", [XB, oihw_bibo(W11), BIAS_B],
         {"activation": "LeakyRelu", "activation_params": [0.1]}, domain=NCHWC, opset=17,
         **_CONV),
    Case("Conv_dilations_sigmoid", "Conv", [XB, oihw_bibo(W33), BIAS],
         {"dilations": [2, 1], "pads": [2, 1, 2, 1], "activation": "Sigmoid"},
         domain=NCHWC, opset=17, **_CONV),
    Case("Conv_same_upper_tanh", "Conv", [XB, oihw_bibo(W33), BIAS],
         {"auto_pad": "SAME_UPPER", "strides": [2, 2], "activation": "Tanh"},
         domain=NCHWC, opset=17, **_CONV),
    Case("Conv_hardsigmoid_kernel_shape", "Conv", [XB1, oihw_bibo(W_25), BIAS_B],
         {"kernel_shape": [2, 5], "pads": [0, 2, 1, 2], "activation": "HardSigmoid",
          "activation_params": [0.3, 0.4]}, domain=NCHWC, opset=17, **_CONV),
    Case("Conv_group2", "Conv", [XB, oihw_bibo(W_G2, 2), BIAS],
         {"group": 2, "pads": [1, 1, 1, 1]}, domain=NCHWC, opset=17, **_CONV),
    # Conv: NCHW input with fewer channels than B (OIHWBo)
    Case("Conv_nchw_input", "Conv", [X3, oihw_bo(W_NCHW), BIAS],
         {"pads": [1, 1, 1, 1], "strides": [2, 2], "activation": "Relu"}, domain=NCHWC,
         opset=17, **_CONV),
    # Conv: depthwise (group = channels, OIHWBo)
    Case("Conv_depthwise", "Conv", [XB, oihw_bo(W_DW), BIAS],
         {"group": C2, "pads": [1, 1, 1, 1], "activation": "Clip",
          "activation_params": [0.0, 6.0]}, domain=NCHWC, opset=17, **_CONV),
    Case("Conv_depthwise_stride2_sum", "Conv", [XB, oihw_bo(W_DW), BIAS, SUM_S2],
         {"group": C2, "pads": [1, 1, 1, 1], "strides": [2, 2]}, domain=NCHWC, opset=17,
         **_CONV),
    # MaxPool
    Case("MaxPool_3x3_s2", "MaxPool", [XB], {"kernel_shape": [3, 3], "strides": [2, 2],
                                             "pads": [1, 1, 1, 1]}, domain=NCHWC, opset=17),
    Case("MaxPool_ceil", "MaxPool", [XB], {"kernel_shape": [2, 2], "strides": [2, 2],
                                           "ceil_mode": 1}, domain=NCHWC, opset=17),
    Case("MaxPool_dilations", "MaxPool", [XB1], {"kernel_shape": [2, 3], "dilations": [2, 2]},
         domain=NCHWC, opset=17),
    Case("MaxPool_same_upper", "MaxPool", [XB1], {"kernel_shape": [3, 3], "strides": [2, 2],
                                                  "auto_pad": "SAME_UPPER"},
         domain=NCHWC, opset=17),
    # AveragePool
    Case("AveragePool_exclude_pad", "AveragePool", [XB],
         {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}, domain=NCHWC, opset=17),
    Case("AveragePool_include_pad", "AveragePool", [XB],
         {"kernel_shape": [3, 2], "strides": [2, 1], "pads": [1, 0, 1, 1],
          "count_include_pad": 1}, domain=NCHWC, opset=17),
    Case("AveragePool_ceil", "AveragePool", [XB1],
         {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1}, domain=NCHWC, opset=17),
    # global pools
    Case("GlobalAveragePool_blocked", "GlobalAveragePool", [XB], domain=NCHWC, opset=17),
    Case("GlobalMaxPool_blocked", "GlobalMaxPool", [XB], domain=NCHWC, opset=17),
    # Upsample
    Case("Upsample_nearest", "Upsample", [XB], {"scales": [1, 1, 2, 3]}, domain=NCHWC,
         opset=17),
    Case("Upsample_linear_asymmetric", "Upsample", [XB1], {"scales": [1, 1, 2, 2],
                                                           "mode": "linear"},
         domain=NCHWC, opset=17),
    Case("Upsample_linear_align_corners", "Upsample", [XB1],
         {"scales": [1, 1, 3, 2], "mode": "linear",
          "coordinate_transformation_mode": "align_corners"}, domain=NCHWC, opset=17),
    Case("Upsample_linear_half_pixel", "Upsample", [XB],
         {"scales": [1, 1, 2, 4], "mode": "linear",
          "coordinate_transformation_mode": "half_pixel"}, domain=NCHWC, opset=17),
    Case("Upsample_scale1", "Upsample", [XB1], {"scales": [1, 1, 1, 2], "mode": "linear"},
         domain=NCHWC, opset=17),
]
