"""CPU kernel: onnxruntime's QLinearSoftmax (com.microsoft), part of
:mod:`.contrib_qlinear`.

onnxruntime computes it without dequantizing: a 256-entry float32 table holds
``exp((i - 255 + shift) * x_scale)``, where ``shift`` (``log(FLT_MAX / D) - 5`` over
``x_scale``, at least 0) keeps the sum of ``D`` entries finite; each row of ``D`` values reads
the table shifted so that its maximum lands on entry 255, sums the entries in float32 in
order, and quantizes ``entry * floor(1 / y_scale) / sum`` half to even, adding the zero point
(the given ``x_zero_point`` is not used) and saturating to the output type. Opset < 13
softmax runs over the flattened dims from ``axis`` on, opset 13+ over ``axis`` alone;
``axis`` defaults to -1 for both.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from ort.ep import DeclaredSchema, KernelTable, NodeInfo

from .contrib_qlinear_common import (F32, QUANT_RANGES, check_quant_dtype,
                                     scalar_param, zero_point)
from .contrib_schema import MS, REQUIRED, declare, like_input
from .kernel_args import normalize_axis

kernels = KernelTable()

_FLT_MAX = float(np.finfo(np.float32).max)


def exp_table(x_scale: float, reduce_len: int) -> np.ndarray:
    """onnxruntime's QLinearSoftmax table (float32, 256 entries) for rows of ``reduce_len``."""
    # float32 log (onnxruntime's log of a float), the rest in double
    shift = float(F32(math.log(float(F32(_FLT_MAX) / F32(reduce_len)))))
    shift = max(0.0, shift - 5.0) / float(F32(x_scale))
    steps = np.arange(256, dtype=np.float64) - 255 + shift
    return np.exp(steps * float(F32(x_scale))).astype(F32)


def softmax_last_axis(x: np.ndarray, table: np.ndarray, y_scale: float, y_zero: int) -> np.ndarray:
    """QLinearSoftmax over the last axis of 2-D ``x`` (rows, D) with the table of D."""
    dtype = x.dtype
    values = x.astype(np.int32)
    index = values - values.max(axis=1, keepdims=True) + 255
    entries = table[index]
    sums = np.add.accumulate(entries, axis=1, dtype=F32)[:, -1:].astype(np.float64)  # in order
    multiplier = F32(math.floor(float(F32(1.0) / F32(y_scale))))
    # onnxruntime's ratio never overflows (rows of one value give 1 / y_scale): the float64
    # quotient matches its rounding
    quantized = np.rint(entries.astype(np.float64) * float(multiplier) / sums) + y_zero
    low, high = QUANT_RANGES[dtype]
    return np.clip(quantized, low, high).astype(dtype)  # an overflow (inf) saturates


@kernels.register("QLinearSoftmax", since=1, domain=MS)
def qlinear_softmax(node: NodeInfo) -> Callable[..., tuple]:
    """QLinearSoftmax 1+: Y = quantize(softmax(dequantize(X))) along ``axis`` (opset < 13:
    the flattened dims from ``axis``), computed with onnxruntime's exponential table."""
    where = node.describe()
    if node.attrs.get("opset") is None:
        raise ValueError(f"{where}: attribute opset is required")
    opset = int(node.attrs["opset"])
    # onnxruntime fills in the schema's default (-1) for every opset
    axis = int(node.attrs.get("axis", -1))
    tables: dict[tuple[float, int], np.ndarray] = {}

    def compute(x, x_scale, x_zero_point=None, y_scale=None, y_zero_point=None):
        dtype = check_quant_dtype(where, x.dtype)
        xs = scalar_param(where, "X_scale", x_scale)
        ys = scalar_param(where, "y_scale", y_scale)
        yz = zero_point(where, "y_zero_point", y_zero_point, dtype)
        if x.size == 0:
            return (np.empty(x.shape, dtype),)
        ax = normalize_axis(node, axis, x.ndim)
        if opset < 13:
            rows = x.reshape(math.prod(x.shape[:ax]), -1)
        else:
            rows = np.moveaxis(x, ax, -1).reshape(-1, x.shape[ax])
        key = (xs, rows.shape[1])
        table = tables.get(key)
        if table is None:
            if len(tables) >= 16:  # runtime scales that keep changing: do not pile up
                tables.clear()
            table = tables[key] = exp_table(xs, rows.shape[1])
        y = softmax_last_axis(rows, table, ys, yz)
        if opset < 13:
            return (y.reshape(x.shape),)
        moved = np.moveaxis(x, ax, -1).shape
        return (np.ascontiguousarray(np.moveaxis(y.reshape(moved), -1, ax)),)

    return compute


SCHEMAS: list[DeclaredSchema] = [
    declare("QLinearSoftmax", inputs=5, attributes={"opset": REQUIRED, "axis": -1},
            infer=like_input(0)),
]
