"""Contrib-op cases of the quantized matrix ops: DynamicQuantizeMatMul, MatMulIntegerToFloat,
QGemm, com.microsoft QuantizeLinear/DequantizeLinear and DynamicQuantizeLSTM (u8/s8 weights,
per-tensor and per-column parameters, constant and fed weights, optional inputs)."""

from __future__ import annotations

import ml_dtypes
import numpy as np
from contrib_case import Case, rng

r = rng(7)
f32, u8, s8, i32 = np.float32, np.uint8, np.int8, np.int32


def ints(dtype, shape):
    """Random integers over the whole range of ``dtype``."""
    info = np.iinfo(dtype)
    return r.integers(info.min, info.max, shape, endpoint=True).astype(dtype)


def scales(*shape):
    """Positive float32 scales."""
    return (r.random(shape) * 0.05 + 0.001).astype(f32)


def scalar(value, dtype):
    """A 0-d array."""
    return np.array(value, dtype=dtype)


# DynamicQuantizeMatMul -------------------------------------------------------------------
A3 = r.standard_normal((2, 4, 16)).astype(f32)
A2 = (r.standard_normal((5, 16)) * 3 + 1).astype(f32)
A_POS = (r.random((3, 16)) + 0.5).astype(f32)  # all positive: zero point 0
B_S8, B_U8 = ints(s8, (16, 6)), ints(u8, (16, 6))
B3_S8 = ints(s8, (2, 16, 6))
BIAS6 = r.standard_normal(6).astype(f32)
A_TIES = np.array([[-127.5, 127.5, 0.5, 1.5, 2.5, 3.5, -0.5, -1.5, -2.5, -3.5, 10.5, 11.5,
                    -10.5, 100.5, -100.5, 7.5], np.arange(16) - 7.5], f32)

DQMM = "DynamicQuantizeMatMul"
CASES = [
    Case(f"{DQMM}_s8_tensor", DQMM, [A3, B_S8, scalar(0.02, f32)]),
    Case(f"{DQMM}_s8_tensor_const", DQMM, [A3, B_S8, scalar(0.02, f32)], constants=(1, 2)),
    Case(f"{DQMM}_u8_zp_bias", DQMM, [A2, B_U8, scalar(0.01, f32), scalar(131, u8), BIAS6]),
    Case(f"{DQMM}_u8_zp_bias_const", DQMM,
         [A2, B_U8, scalar(0.01, f32), scalar(131, u8), BIAS6], constants=(1, 2, 3, 4)),
    Case(f"{DQMM}_s8_column", DQMM, [A3, B_S8, scales(6), np.zeros(6, s8), BIAS6]),
    Case(f"{DQMM}_u8_column_const", DQMM, [A2, B_U8, scales(6), ints(u8, (6,))],
         constants=(1, 2, 3)),
    Case(f"{DQMM}_u8_column_zp_only", DQMM, [A2, B_U8, scalar(0.03, f32), ints(u8, (6,))]),
    Case(f"{DQMM}_positive", DQMM, [A_POS, B_S8, scales(1)]),
    Case(f"{DQMM}_batched_b", DQMM, [A3, B3_S8, scales(2, 1, 6), ints(s8, (2, 1, 6))]),
    Case(f"{DQMM}_batched_b_const", DQMM, [A3, B3_S8, scales(2, 1, 6), ints(s8, (2, 1, 6))],
         constants=(1, 2, 3)),
    Case(f"{DQMM}_scale_broadcast", DQMM, [A3, B_S8, scales(4, 1), None, BIAS6]),
    Case(f"{DQMM}_zeros", DQMM, [np.zeros((3, 16), f32), B_S8, scalar(0.02, f32)]),
    # range [-127.5, 127.5]: scale 1, zero point rint(127.5) = 128, values on rounding ties
    Case(f"{DQMM}_ties", DQMM, [A_TIES, B_U8, scalar(0.5, f32), scalar(77, u8)]),
]

# MatMulIntegerToFloat ---------------------------------------------------------------------
QA_U8, QA_S8 = ints(u8, (2, 3, 16)), ints(s8, (5, 16))
MITF = "MatMulIntegerToFloat"
CASES += [
    Case(f"{MITF}_u8s8", MITF, [QA_U8, B_S8, scalar(0.05, f32), scalar(0.02, f32)]),
    Case(f"{MITF}_u8u8_zp_bias", MITF,
         [QA_U8, B_U8, scalar(0.05, f32), scalar(0.02, f32), scalar(128, u8), scalar(120, u8),
          BIAS6]),
    Case(f"{MITF}_u8u8_zp_bias_const", MITF,
         [QA_U8, B_U8, scalar(0.05, f32), scalar(0.02, f32), scalar(128, u8), scalar(120, u8),
          BIAS6], constants=(1, 3, 5, 6)),
    Case(f"{MITF}_u8s8_column", MITF,
         [QA_U8, B_S8, scales(1), scales(6), ints(u8, (1,)), ints(s8, (6,)), BIAS6]),
    Case(f"{MITF}_u8s8_column_const", MITF,
         [QA_U8, B_S8, scales(1), scales(6), ints(u8, (1,)), ints(s8, (6,))],
         constants=(1, 3, 5)),
    Case(f"{MITF}_s8s8", MITF, [QA_S8, B_S8, scalar(0.05, f32), scales(6), scalar(-3, s8)]),
    Case(f"{MITF}_s8s8_zp_const", MITF,
         [QA_S8, B_S8, scalar(0.05, f32), scales(6), scalar(5, s8), ints(s8, (6,)), BIAS6],
         constants=(1,)),
    Case(f"{MITF}_u8_batched_b", MITF,
         [QA_U8, ints(u8, (2, 16, 6)), scalar(0.05, f32), scales(2, 1, 6), None,
          ints(u8, (2, 1, 6))]),
    Case(f"{MITF}_row_scale", MITF, [QA_U8, B_S8, scales(2, 3, 1), scales(6)]),
    Case(f"{MITF}_swapped_scales", MITF, [QA_U8, B_S8, scales(6), scalar(0.05, f32), None,
                                           None, BIAS6]),
]

# large K: accumulators beyond float32's exact integers, MLAS's threaded tiles
A_BIG = r.standard_normal((64, 700)).astype(f32)
B_BIG_S8, B_BIG_U8 = ints(s8, (700, 48)), ints(u8, (700, 48))
CASES += [
    Case(f"{DQMM}_large_s8_column", DQMM, [A_BIG, B_BIG_S8, scales(48), None,
                                             r.standard_normal(48).astype(f32)],
         constants=(1, 2)),
    Case(f"{MITF}_large_u8u8", MITF,
         [ints(u8, (64, 700)), B_BIG_U8, scalar(0.05, f32), scalar(0.02, f32), scalar(3, u8),
          scalar(250, u8)]),
]

# QGemm ----------------------------------------------------------------------------------
QG = "QGemm"
GA_U8, GA_S8 = ints(u8, (5, 12)), ints(s8, (5, 12))
GB_U8, GB_S8 = ints(u8, (12, 7)), ints(s8, (12, 7))
GC = r.integers(-5000, 5000, (7,)).astype(i32)
CASES += [
    Case(f"{QG}_u8u8_float", QG, [GA_U8, scalar(0.02, f32), scalar(128, u8), GB_U8,
                                   scalar(0.03, f32), scalar(100, u8)]),
    Case(f"{QG}_u8s8_bias_alpha", QG, [GA_U8, scalar(0.02, f32), scalar(3, u8), GB_S8,
                                        scalar(0.03, f32), scalar(0, s8), GC],
         {"alpha": 0.75}),
    Case(f"{QG}_u8s8_trans_const", QG,
         [GA_U8.T.copy(), scalar(0.02, f32), scalar(3, u8), GB_S8.T.copy(), scales(7),
          np.zeros(7, s8), r.integers(-5000, 5000, (5, 7)).astype(i32)],
         {"transA": 1, "transB": 1}, constants=(3, 4, 5, 6)),
    Case(f"{QG}_u8u8_requant", QG,
         [GA_U8, scalar(0.02, f32), scalar(128, u8), GB_U8, scalar(0.03, f32),
          scalar(100, u8), GC, scalar(0.5, f32), scalar(120, u8)]),
    Case(f"{QG}_u8s8_column_requant_const", QG,
         [GA_U8, scalar(0.02, f32), scalar(7, u8), GB_S8, scales(7), np.zeros(7, s8), GC,
          scalar(0.25, f32), scalar(10, u8)], {"alpha": 2.0}, constants=(3, 4, 5, 6)),
    Case(f"{QG}_s8s8_requant", QG,
         [GA_S8, scalar(0.02, f32), scalar(-4, s8), GB_S8, scalar(0.03, f32), scalar(0, s8),
          r.integers(-5000, 5000, (1, 7)).astype(i32), scalar(0.4, f32), scalar(-10, s8)],
         {"transB": 0}),
    Case(f"{QG}_s8s8_float_transB", QG,
         [GA_S8, scalar(0.02, f32), scalar(5, s8), GB_S8.T.copy(), scales(7), ints(s8, (7,))],
         {"transB": 1}),
    Case(f"{QG}_u8u8_column_zp", QG,
         [GA_U8, scalar(0.02, f32), scalar(128, u8), GB_U8, scales(7), ints(u8, (7,)),
          scalar(1000, i32)]),
    # multiplier 0.5: odd accumulators fall on ties (half to even), large ones saturate
    Case(f"{QG}_u8s8_requant_ties", QG,
         [GA_U8, scalar(1.0, f32), scalar(128, u8), GB_S8, scalar(0.5, f32), scalar(0, s8),
          None, scalar(1.0, f32), scalar(128, u8)]),
    Case(f"{QG}_u8u8_yscale_only", QG,
         [GA_U8, scalar(0.02, f32), scalar(128, u8), GB_U8, scalar(0.03, f32),
          scalar(100, u8), None, scalar(0.5, f32)]),
]

# com.microsoft QuantizeLinear / DequantizeLinear -------------------------------------------
X3 = (r.standard_normal((2, 3, 4)) * 40).astype(f32)
X_TIES = np.array([[-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 1e9, -1e9]], f32)  # half to even, saturate
Q, DQ = "QuantizeLinear", "DequantizeLinear"
CASES += [
    Case(f"{Q}_default_u8", Q, [X3, scalar(0.5, f32)]),
    Case(f"{Q}_u8", Q, [X3, scalar(0.5, f32), scalar(128, u8)]),
    Case(f"{Q}_s8_ties", Q, [X_TIES, scalar(1.0, f32), scalar(1, s8)]),
    Case(f"{Q}_u16_const", Q, [X3, scalar(0.01, f32), scalar(30000, np.uint16)],
         constants=(1, 2)),
    Case(f"{Q}_s16", Q, [X3 * 100, scalar(0.01, f32), scalar(-7, np.int16)]),
    Case(f"{Q}_axis_default", Q, [X3, scales(3) * 10, ints(u8, (3,))]),
    Case(f"{Q}_axis0", Q, [X3, scales(2) * 10, ints(s8, (2,))], {"axis": 0}),
    Case(f"{Q}_axis_neg", Q, [X3, scales(4) * 10, ints(s8, (4,))], {"axis": -1}),
    Case(f"{Q}_axis_scalar_scale", Q, [X3, scalar(0.3, f32), scalar(9, u8)], {"axis": 2}),
    Case(f"{DQ}_u8", DQ, [ints(u8, (2, 3, 4)), scalar(0.5, f32), scalar(128, u8)]),
    Case(f"{DQ}_s8_nozp", DQ, [ints(s8, (2, 3, 4)), scalar(0.5, f32)]),
    Case(f"{DQ}_u16_const", DQ, [ints(np.uint16, (2, 3, 4)), scalar(0.01, f32),
                                     scalar(30000, np.uint16)], constants=(0, 1, 2)),
    Case(f"{DQ}_s16", DQ, [ints(np.int16, (6,)), scalar(0.01, f32), scalar(-7, np.int16)]),
    Case(f"{DQ}_s32", DQ, [r.integers(-10**6, 10**6, (2, 5)).astype(i32), scalar(0.01, f32)]),
    Case(f"{DQ}_axis_default", DQ, [ints(u8, (2, 3, 4)), scales(3), ints(u8, (3,))]),
    Case(f"{DQ}_axis0_const", DQ, [ints(s8, (2, 3, 4)), scales(2), ints(s8, (2,))],
         {"axis": 0}, constants=(0, 1, 2)),
    Case(f"{DQ}_axis_neg", DQ, [ints(s8, (2, 3, 4)), scales(4), ints(s8, (4,))],
         {"axis": -1}),
]
I4 = ml_dtypes.int4
U4 = ml_dtypes.uint4
CASES += [  # onnxruntime's Python API exchanges no 4-bit tensors: they are initializers
    Case(f"{DQ}_int4_const", DQ, [r.integers(-8, 8, (3, 5)).astype(I4), scalar(0.5, f32),
                                   scalar(-1, I4)], constants=(0, 2)),
    Case(f"{DQ}_uint4_axis0_const", DQ, [r.integers(0, 16, (3, 5)).astype(U4), scales(3),
                                          r.integers(0, 16, (3,)).astype(U4)],
         {"axis": 0}, constants=(0, 2)),
    Case(f"{DQ}_int4_odd_nozp", DQ, [r.integers(-8, 8, (7,)).astype(I4), scalar(0.25, f32)],
         constants=(0,)),
]

# DynamicQuantizeLSTM ----------------------------------------------------------------------
# onnxruntime quantizes the hidden state per block of batch rows, one block per thread, when
# the batch is split across threads (batch > 4, or batch >= 2 with hidden_size <= 256): results
# then depend on the machine's thread count. ort quantizes the whole batch at once (onnxruntime
# with one thread); the cases use batch 1, or batch 3 with hidden_size 260 (never split).
LSTM = "DynamicQuantizeLSTM"
SEQ, INP, HID, WIDE = 5, 6, 4, 260


def lstm_inputs(dirs: int, wtype, per_channel: bool, *, batch: int = 1, hidden: int = HID,
                bias: bool = True, seq_lens=None, initial: bool = False,
                peephole: bool = False):
    """The 12 inputs of a DynamicQuantizeLSTM node."""
    x = r.standard_normal((SEQ, batch, INP)).astype(f32)
    w, rr = ints(wtype, (dirs, INP, 4 * hidden)), ints(wtype, (dirs, hidden, 4 * hidden))
    pshape = (dirs, 4 * hidden) if per_channel else (dirs,)
    zp = np.zeros(pshape, wtype)
    if wtype == u8:  # per channel: one value throughout; per tensor: one per direction
        zp = np.full(pshape, 131, u8) if per_channel else ints(u8, pshape)
    weight_scale = f32(0.5 / np.sqrt(hidden))
    return [x, w, rr,
            (r.standard_normal((dirs, 8 * hidden)) * 0.5).astype(f32) if bias else None,
            None if seq_lens is None else np.array(seq_lens, i32),
            r.standard_normal((dirs, batch, hidden)).astype(f32) if initial else None,
            r.standard_normal((dirs, batch, hidden)).astype(f32) if initial else None,
            r.standard_normal((dirs, 3 * hidden)).astype(f32) if peephole else None,
            scales(*pshape) * weight_scale, zp, scales(*pshape) * weight_scale, zp.copy()]


H_ATTR = {"hidden_size": HID}
W_ATTR = {"hidden_size": WIDE}
CASES += [
    Case(f"{LSTM}_forward_s8_tensor", LSTM, lstm_inputs(1, s8, False), H_ATTR, outputs=3),
    Case(f"{LSTM}_forward_u8_channel_const", LSTM, lstm_inputs(1, u8, True), H_ATTR,
         outputs=3, constants=(1, 2, 8, 9, 10, 11)),
    Case(f"{LSTM}_reverse_s8_channel", LSTM, lstm_inputs(1, s8, True, initial=True),
         {**H_ATTR, "direction": "reverse"}, outputs=3),
    Case(f"{LSTM}_bidirectional_u8", LSTM, lstm_inputs(2, u8, False, initial=True),
         {**H_ATTR, "direction": "bidirectional"}, outputs=3),
    Case(f"{LSTM}_bidirectional_s8_channel_const", LSTM, lstm_inputs(2, s8, True),
         {**H_ATTR, "direction": "bidirectional"}, outputs=3,
         constants=(1, 2, 3, 8, 9, 10, 11)),
    Case(f"{LSTM}_seq_lens_short", LSTM, lstm_inputs(1, s8, False, seq_lens=[3]), H_ATTR,
         outputs=3),
    Case(f"{LSTM}_peephole_clip", LSTM, lstm_inputs(1, s8, True, peephole=True, initial=True),
         {**H_ATTR, "clip": 0.8}, outputs=3),
    Case(f"{LSTM}_input_forget_no_bias", LSTM, lstm_inputs(1, u8, False, bias=False),
         {**H_ATTR, "input_forget": 1}, outputs=3),
    Case(f"{LSTM}_activations", LSTM, lstm_inputs(1, s8, False),
         {**H_ATTR, "activations": ["HardSigmoid", "Tanh", "Softsign"],
          "activation_alpha": [0.3], "activation_beta": [0.4]}, outputs=3),
    Case(f"{LSTM}_y_only", LSTM, lstm_inputs(1, u8, True, initial=True), H_ATTR),
    Case(f"{LSTM}_y_h_only", LSTM, lstm_inputs(2, s8, False),
         {**H_ATTR, "direction": "bidirectional"}, outputs=[False, True]),
    Case(f"{LSTM}_batch_wide", LSTM, lstm_inputs(1, s8, True, batch=3, hidden=WIDE,
                                                 initial=True), W_ATTR, outputs=3),
    Case(f"{LSTM}_batch_seq_lens_bidirectional", LSTM,
         lstm_inputs(2, u8, True, batch=3, hidden=WIDE, seq_lens=[3, 5, 0], initial=True),
         {**W_ATTR, "direction": "bidirectional"}, outputs=3, constants=(1, 2)),
    # (without Y, onnxruntime quantizes Y_h's uninitialized row of a zero-length sequence)
    Case(f"{LSTM}_batch_seq_lens_no_y", LSTM,
         lstm_inputs(1, s8, False, batch=3, hidden=WIDE, seq_lens=[4, 2, 3]), W_ATTR,
         outputs=[False, True, True]),
    Case(f"{LSTM}_batch_seq_lens_reverse", LSTM,
         lstm_inputs(1, u8, False, batch=3, hidden=WIDE, seq_lens=[2, 4, 3], peephole=True),
         {**W_ATTR, "direction": "reverse"}, outputs=3),
]
