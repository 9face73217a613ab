"""Contrib-op cases of the QOperator-format ops onnxruntime's static quantizer emits
(contrib_qlinear*.py): QLinearAdd, QLinearMul, QLinearSigmoid, QLinearLeakyRelu,
QLinearSoftmax, QLinearConcat, QLinearAveragePool, QLinearGlobalAveragePool, QLinearWhere,
QLinearReduceMean and NhwcMaxPool, for uint8 and int8 with scalar and one-element 1-D
parameters, omitted zero points and constant (initializer) parameters. Outputs must match
onnxruntime bit for bit (the default tolerance is below one quantization step)."""

from __future__ import annotations

import numpy as np
from contrib_case import Case, rng

r = rng(7)
U8, I8 = np.uint8, np.int8


def q(shape, dtype):
    """Random quantized values of ``dtype`` over its whole range."""
    info = np.iinfo(dtype)
    return r.integers(info.min, info.max + 1, shape).astype(dtype)


def s(value):
    """A float32 scalar scale."""
    return np.array(value, dtype=np.float32)


def z(value, dtype):
    """A scalar zero point."""
    return np.array(value, dtype=dtype)


def v1(array):
    """The one-element 1-D form of a scalar parameter."""
    return np.asarray(array).reshape(1)


ZP = {U8: 128, I8: 0}
NAME = {U8: "u8", I8: "i8"}

CASES = []

# ---------------------------------------------------------------------------------------------
# QLinearAdd, QLinearMul: same shape, trailing-dim, per-row, scalar broadcasts (both sides)
# ---------------------------------------------------------------------------------------------
_BROADCASTS = {
    "same": ((2, 3, 16), (2, 3, 16)),
    "trailing": ((2, 3, 16), (16,)),
    "rows": ((2, 3, 16), (2, 3, 1)),
    "rows_first": ((3, 1), (2, 3, 16)),
    "scalar_b": ((4, 9), ()),
    "scalar_a": ((), (4, 9)),
    "outer": ((5, 1), (1, 7)),
    "single": ((1, 1), (1,)),
    "rank0": ((), ()),
}
for op in ("QLinearAdd", "QLinearMul"):
    for dtype in (U8, I8):
        for name, (sa, sb) in _BROADCASTS.items():
            a, b = q(sa, dtype), q(sb, dtype)
            za, zb, zc = (z(r.integers(-20, 20) + ZP[dtype], dtype) for _ in range(3))
            scales = (s(0.05), s(0.1), s(0.15)) if name in ("same", "rows") else \
                tuple(s(r.uniform(0.01, 0.2)) for _ in range(3))
            CASES.append(Case(f"{op}_{NAME[dtype]}_{name}", op,
                              [a, scales[0], za, b, scales[1], zb, scales[2], zc]))
        a, b = q((3, 8), dtype), q((3, 8), dtype)
        # onnxruntime's type inference refuses omitted A/B zero points: C's only
        CASES.append(Case(f"{op}_{NAME[dtype]}_no_c_zero_point", op,
                          [a, s(0.02), z(ZP[dtype], dtype), b, s(0.03), z(1, dtype), s(0.04)]))
        # (onnxruntime's type inference wants rank-0 parameters here: no 1-D forms)
        CASES.append(Case(f"{op}_{NAME[dtype]}_const_params", op,
                          [a, s(0.02), z(3, dtype), b, s(0.05), z(-2 + ZP[dtype], dtype),
                           s(0.06), z(ZP[dtype], dtype)], constants=(1, 2, 4, 5, 6, 7)))
        CASES.append(Case(f"{op}_{NAME[dtype]}_saturating", op,
                          [a, s(0.5), z(0, dtype), b, s(0.5), z(0, dtype), s(0.001),
                           z(ZP[dtype], dtype)]))

# ---------------------------------------------------------------------------------------------
# QLinearSigmoid, QLinearLeakyRelu: every code, constant or runtime parameters
# ---------------------------------------------------------------------------------------------
for dtype in (U8, I8):
    every = np.arange(256).astype(np.uint8).view(dtype).reshape(4, 8, 8)
    lo = np.iinfo(dtype).min
    CASES += [
        Case(f"QLinearSigmoid_{NAME[dtype]}", "QLinearSigmoid",
             [every, s(0.05), z(ZP[dtype], dtype), s(1 / 256), z(lo, dtype)]),
        Case(f"QLinearSigmoid_{NAME[dtype]}_rank0", "QLinearSigmoid",
             [q((), dtype), s(0.05), z(ZP[dtype], dtype), s(1 / 256), z(lo, dtype)]),
        Case(f"QLinearSigmoid_{NAME[dtype]}_const", "QLinearSigmoid",
             [every, s(0.1), z(ZP[dtype] - 7, dtype), s(1 / 255), z(lo, dtype)],
             constants=(1, 2, 3, 4)),
        # (an omitted Y_zero_point crashes onnxruntime's kernel: X's only)
        Case(f"QLinearSigmoid_{NAME[dtype]}_no_x_zero_point", "QLinearSigmoid",
             [every, s(0.03), None, s(0.004), z(lo, dtype)]),
        Case(f"QLinearLeakyRelu_{NAME[dtype]}_default_alpha", "QLinearLeakyRelu",
             [every, s(0.05), z(ZP[dtype], dtype), s(0.04), z(ZP[dtype] - 10, dtype)]),
        Case(f"QLinearLeakyRelu_{NAME[dtype]}_alpha_const", "QLinearLeakyRelu",
             [every, v1(s(0.1)), v1(z(ZP[dtype] + 5, dtype)), v1(s(0.08)), v1(z(ZP[dtype], dtype))],
             {"alpha": 0.2}, constants=(1, 2, 3, 4)),
        Case(f"QLinearLeakyRelu_{NAME[dtype]}_no_x_zero_point", "QLinearLeakyRelu",
             [every, s(0.02), None, s(0.03), z(ZP[dtype], dtype)], {"alpha": 0.1}),
    ]

# ---------------------------------------------------------------------------------------------
# QLinearSoftmax: opset 12 (flattened from axis) and 13 (one axis), uint8 and int8
# ---------------------------------------------------------------------------------------------
for dtype in (U8, I8):
    x4 = q((2, 3, 4, 5), dtype)
    lo = np.iinfo(dtype).min
    base = [x4, s(0.08), z(ZP[dtype], dtype), s(1 / 256), z(lo, dtype)]
    CASES += [
        Case(f"QLinearSoftmax_{NAME[dtype]}_opset13_last", "QLinearSoftmax", base,
             {"opset": 13}),
        Case(f"QLinearSoftmax_{NAME[dtype]}_opset13_axis1", "QLinearSoftmax", base,
             {"opset": 13, "axis": 1}),
        Case(f"QLinearSoftmax_{NAME[dtype]}_opset12_axis1", "QLinearSoftmax", base,
             {"opset": 12, "axis": 1}),
        Case(f"QLinearSoftmax_{NAME[dtype]}_opset12_default", "QLinearSoftmax", base,
             {"opset": 12}),
        Case(f"QLinearSoftmax_{NAME[dtype]}_const_scale", "QLinearSoftmax",
             [q((3, 40), dtype), s(0.2), None, s(0.005), z(lo + 3, dtype)],
             {"opset": 13, "axis": -1}, constants=(1,)),
        Case(f"QLinearSoftmax_{NAME[dtype]}_single", "QLinearSoftmax",
             [q((4, 1), dtype), s(0.1), z(0, dtype), s(0.0052), z(lo, dtype)], {"opset": 13}),
    ]

# ---------------------------------------------------------------------------------------------
# QLinearConcat: requantized inputs, copied inputs (same parameters), negative axis
# ---------------------------------------------------------------------------------------------
for dtype in (U8, I8):
    yz = z(ZP[dtype] - 3, dtype)
    CASES += [
        Case(f"QLinearConcat_{NAME[dtype]}_axis1", "QLinearConcat",
             [s(0.05), yz, q((2, 3, 4), dtype), s(0.03), z(ZP[dtype], dtype),
              q((2, 5, 4), dtype), s(0.05), yz, q((2, 1, 4), dtype), s(0.1), z(7, dtype)],
             {"axis": 1}),
        Case(f"QLinearConcat_{NAME[dtype]}_negative_axis_const", "QLinearConcat",
             [s(0.04), yz, q((3, 2), dtype), s(0.02), z(ZP[dtype] + 9, dtype),
              q((3, 6), dtype), s(0.08), z(ZP[dtype], dtype)],
             {"axis": -1}, constants=(0, 1, 3, 4, 6, 7)),
        Case(f"QLinearConcat_{NAME[dtype]}_single_input", "QLinearConcat",
             [s(0.04), yz, q((2, 3), dtype), s(0.05), z(ZP[dtype], dtype)], {"axis": 0}),
    ]

# ---------------------------------------------------------------------------------------------
# QLinearAveragePool, QLinearGlobalAveragePool
# ---------------------------------------------------------------------------------------------
_POOLS = {
    "2d": ((2, 3, 7, 6), {"kernel_shape": [3, 2]}),
    "2d_pads_strides": ((2, 3, 7, 6), {"kernel_shape": [3, 3], "pads": [1, 1, 2, 1],
                                       "strides": [2, 2]}),
    "2d_include_pad": ((2, 3, 7, 6), {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1],
                                      "count_include_pad": 1}),
    "2d_ceil": ((1, 2, 8, 7), {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}),
    "2d_ceil_include_pad": ((1, 2, 8, 7), {"kernel_shape": [2, 3], "strides": [3, 2],
                                           "pads": [1, 0, 1, 1], "ceil_mode": 1,
                                           "count_include_pad": 1}),
    "2d_same_upper": ((1, 2, 7, 5), {"kernel_shape": [3, 2], "strides": [2, 2],
                                     "auto_pad": "SAME_UPPER"}),
    "2d_same_lower": ((1, 2, 7, 5), {"kernel_shape": [3, 2], "strides": [2, 1],
                                     "auto_pad": "SAME_LOWER"}),
    "2d_valid": ((1, 2, 7, 5), {"kernel_shape": [2, 2], "strides": [2, 2],
                                "auto_pad": "VALID"}),
    "2d_whole_image": ((2, 3, 5, 4), {"kernel_shape": [5, 4]}),
    "1d": ((2, 4, 9), {"kernel_shape": [3], "pads": [1, 1], "strides": [2]}),
    "3d": ((1, 2, 5, 4, 6), {"kernel_shape": [2, 2, 3], "pads": [1, 0, 1, 0, 1, 1]}),
}
for dtype in (U8, I8):
    for name, (shape, attrs) in _POOLS.items():
        for channels_last in ((0, 1) if name in ("2d_pads_strides", "1d", "3d",
                                                 "2d_whole_image") else (0,)):
            x = q(shape if not channels_last else (shape[0],) + shape[2:] + (shape[1],), dtype)
            suffix = "_nhwc" if channels_last else ""
            CASES.append(Case(
                f"QLinearAveragePool_{NAME[dtype]}_{name}{suffix}", "QLinearAveragePool",
                [x, s(0.04), z(ZP[dtype] + 3, dtype), s(0.03), z(ZP[dtype] - 5, dtype)],
                {**attrs, "channels_last": channels_last}))
    # (onnxruntime's type inference refuses an omitted x_zero_point: y's only)
    CASES.append(Case(f"QLinearAveragePool_{NAME[dtype]}_no_y_zero_point", "QLinearAveragePool",
                      [q((1, 2, 6, 6), dtype), s(0.05), z(ZP[dtype], dtype), s(0.05)],
                      {"kernel_shape": [2, 2], "strides": [2, 2]}))
    for name, shape, last in (("nchw", (2, 3, 5, 4), 0), ("nhwc", (2, 5, 4, 3), 1),
                              ("1d", (2, 6, 9), 0), ("3d_nhwc", (1, 3, 4, 2, 5), 1),
                              ("one_channel_nhwc", (2, 4, 4, 1), 1)):
        CASES.append(Case(
            f"QLinearGlobalAveragePool_{NAME[dtype]}_{name}", "QLinearGlobalAveragePool",
            [q(shape, dtype), s(0.03), z(ZP[dtype] - 2, dtype), s(0.02), z(ZP[dtype] + 4, dtype)],
            {"channels_last": last}))
    CASES.append(Case(f"QLinearGlobalAveragePool_{NAME[dtype]}_1d_params_const",
                      "QLinearGlobalAveragePool",
                      [q((1, 8, 6, 6), dtype), v1(s(0.05)), v1(z(ZP[dtype], dtype)),
                       v1(s(0.01)), v1(z(ZP[dtype], dtype))], constants=(1, 2, 3, 4)))

# ---------------------------------------------------------------------------------------------
# QLinearWhere, QLinearReduceMean, NhwcMaxPool
# ---------------------------------------------------------------------------------------------
for dtype in (U8, I8):
    zp = ZP[dtype]
    CASES += [
        Case(f"QLinearWhere_{NAME[dtype]}_same_shape", "QLinearWhere",
             [r.random((3, 5)) > 0.5, q((3, 5), dtype), s(0.02), z(zp, dtype),
              q((3, 5), dtype), s(0.05), z(zp + 9, dtype), s(0.04), z(zp - 4, dtype)]),
        Case(f"QLinearWhere_{NAME[dtype]}_broadcast_copy_const", "QLinearWhere",
             [r.random((4, 1)) > 0.5, q((1, 6), dtype), s(0.04), z(zp - 4, dtype),
              q((4, 6), dtype), s(0.03), z(zp, dtype), s(0.04), z(zp - 4, dtype)],
             constants=(2, 3, 5, 6, 7, 8)),
        Case(f"QLinearWhere_{NAME[dtype]}_rank0_condition", "QLinearWhere",
             [np.array(False), q((2, 3), dtype), s(0.02), z(zp, dtype),
              q((), dtype), s(0.05), z(zp + 9, dtype), s(0.04), z(zp - 4, dtype)]),
        Case(f"QLinearReduceMean_{NAME[dtype]}_keepdims", "QLinearReduceMean",
             [q((2, 3, 4), dtype), s(0.05), z(zp, dtype), s(0.02), z(zp + 1, dtype)],
             {"axes": [1, 2], "keepdims": 1}),
        Case(f"QLinearReduceMean_{NAME[dtype]}_drop", "QLinearReduceMean",
             [q((2, 3, 4), dtype), s(0.05), z(zp - 2, dtype), s(0.02), z(zp, dtype)],
             {"axes": [-1], "keepdims": 0}),
        Case(f"NhwcMaxPool_{NAME[dtype]}_2d", "NhwcMaxPool", [q((2, 7, 6, 3), dtype)],
             {"kernel_shape": [3, 2]}),
        Case(f"NhwcMaxPool_{NAME[dtype]}_pads_strides_ceil", "NhwcMaxPool",
             [q((1, 8, 7, 4), dtype)],
             {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "strides": [2, 2], "ceil_mode": 1}),
        Case(f"NhwcMaxPool_{NAME[dtype]}_dilations", "NhwcMaxPool", [q((1, 8, 8, 2), dtype)],
             {"kernel_shape": [2, 2], "dilations": [2, 2]}),
        Case(f"NhwcMaxPool_{NAME[dtype]}_same_upper", "NhwcMaxPool", [q((1, 7, 5, 2), dtype)],
             {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"}),
        Case(f"NhwcMaxPool_{NAME[dtype]}_1d", "NhwcMaxPool", [q((2, 9, 3), dtype)],
             {"kernel_shape": [3], "strides": [2]}),
    ]
