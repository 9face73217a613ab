"""Every kernel of CUDAExecutionProvider, run through the strict cupy double against the CPU
provider: single-node models, float32 and (where the op takes floats) float16.

Reused CPU kernels must give bit-identical results (the same code on numpy-backed device
arrays): a failure here means the kernel calls something cupy lacks (a numpy function on a
device array, a keyword cupy refuses, ``flags.writeable``, a numpy operand...). GPU-specific
kernels are compared within a tolerance. ``test_every_registered_op_has_a_case`` keeps the case
list complete.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import ort
from ort.testing import assert_outputs_match, make_model, node_model
from ort_provider_cuda.kernels import gpu_kernels, gpu_specific_kernels

CUDA = "CUDAExecutionProvider"
MS = "com.microsoft"
_RNG = np.random.default_rng(0)


@dataclass
class Const:
    """An input given as an initializer (so host inputs are constants, as in real models)."""

    value: np.ndarray


@dataclass
class Case:
    op: str
    inputs: list[Any]
    attrs: dict[str, Any] = field(default_factory=dict)
    opset: int = 18
    domain: str = ""
    outputs: int | list[str] = 1
    half: bool = True  # also run with float32 inputs as float16
    name: str = ""
    exact: bool | None = None  # default: exact for reused kernels

    @property
    def id(self) -> str:
        return self.name or self.op


def f(*shape: int, lo: float = -2.0, hi: float = 2.0) -> np.ndarray:
    return _RNG.uniform(lo, hi, shape).astype(np.float32)


def i64(*shape: int, lo: int = 0, hi: int = 5, dtype: Any = np.int64) -> np.ndarray:
    return _RNG.integers(lo, hi, shape).astype(dtype)


def flag(*shape: int) -> np.ndarray:
    return _RNG.random(shape) > 0.5


def ints(*values: int) -> Const:
    return Const(np.array(values, dtype=np.int64))


def with_specials(x: np.ndarray) -> np.ndarray:
    x = x.copy()
    x.reshape(-1)[:3] = [np.nan, np.inf, -np.inf]
    return x


UNARY = ["Abs", "Neg", "Floor", "Ceil", "Tanh", "Sign", "Sin", "Cos", "Tan", "Atan", "Sinh",
         "Cosh", "Asinh", "Relu", "Sigmoid", "Softplus", "Softsign", "Mish", "HardSwish", "Elu",
         "Selu", "HardSigmoid", "ThresholdedRelu", "Celu", "Exp", "Erf", "Identity", "Shrink"]

CASES: list[Case] = [
    *[Case(op, [f(2, 3, 4)]) for op in UNARY],
    Case("Round", [f(2, 3, 4) * 3]),
    Case("LeakyRelu", [f(2, 3, 4)], {"alpha": 0.1}),
    Case("Reciprocal", [f(2, 3, lo=0.5)]),
    Case("Sqrt", [f(2, 3, lo=0.1)]), Case("Log", [f(2, 3, lo=0.1)]),
    Case("Acosh", [f(2, 3, lo=1.1, hi=3)]),
    *[Case(op, [f(2, 3, lo=-0.9, hi=0.9)]) for op in ("Asin", "Acos", "Atanh")],
    Case("IsNaN", [with_specials(f(2, 3))]), Case("IsInf", [with_specials(f(2, 3))]),
    Case("IsInf", [with_specials(f(2, 3))], {"detect_negative": 0}, name="IsInf_positive"),
    Case("Not", [flag(2, 3)]), Case("BitwiseNot", [i64(2, 3, dtype=np.int32)]),
    Case("Gelu", [f(2, 3, 4)], opset=20), Case("Gelu", [f(2, 3, 4)], {"approximate": "tanh"},
                                               opset=20, name="Gelu_tanh"),
    # binary, broadcasting
    *[Case(op, [f(2, 3, 4), f(3, 1)]) for op in ("Add", "Sub", "Mul", "Max", "Min")],
    Case("Div", [f(2, 3, 4), f(4, lo=0.5)]),
    Case("Div", [i64(2, 3, lo=-9, hi=9, dtype=np.int32), i64(3, lo=1, hi=4, dtype=np.int32)],
         name="Div_int"),
    Case("Add", [f(2, 3), f(3)], {"broadcast": 1}, opset=6, name="Add_legacy_broadcast"),
    Case("Pow", [f(2, 3, lo=0.5), f(2, 3)]),
    Case("Pow", [f(2, 3), Const(np.array(2.0, np.float32))], name="Pow_square"),
    Case("Mod", [i64(2, 3, lo=-9, hi=9), i64(2, 3, lo=1, hi=4)]),
    Case("Mod", [f(2, 3), f(2, 3, lo=0.5)], {"fmod": 1}, name="Mod_fmod"),
    *[Case(op, [i64(2, 3), i64(2, 3)]) for op in ("Equal", "Less", "Greater", "LessOrEqual",
                                                   "GreaterOrEqual")],
    Case("Less", [f(2, 3), f(3)], name="Less_float"),
    *[Case(op, [flag(2, 3), flag(2, 3)]) for op in ("And", "Or", "Xor")],
    *[Case(op, [i64(2, 3, dtype=np.int32), i64(3, dtype=np.int32)])
      for op in ("BitwiseAnd", "BitwiseOr", "BitwiseXor")],
    Case("BitShift", [i64(2, 3, dtype=np.uint32), i64(3, hi=3, dtype=np.uint32)],
         {"direction": "LEFT"}),
    Case("PRelu", [f(2, 3, 4), f(4)]),
    Case("PRelu", [f(2, 3, 4), f(3)], opset=6, name="PRelu_per_channel"),
    *[Case(op, [f(2, 3), f(3), f(1, 3)]) for op in ("Sum", "Mean")],
    Case("Where", [flag(2, 3), f(2, 3), f(3)]),
    Case("Clip", [f(2, 3), Const(np.array(-0.5, np.float32)), Const(np.array(0.7, np.float32))]),
    Case("Clip", [f(2, 3)], {"min": -0.5, "max": 0.5}, opset=6, name="Clip_attrs"),
    # reductions
    *[Case(op, [f(2, 3, 4, lo=0.1), ints(1)], {"keepdims": 0})
      for op in ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
                 "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare")],
    Case("ReduceMean", [f(2, 3, 4)], {"axes": [-1]}, opset=17, name="ReduceMean_attr"),
    Case("ReduceSum", [f(2, 3, 4), ints(0, 2)], opset=13, name="ReduceSum_13"),
    Case("ReduceMax", [i64(2, 3)], {"keepdims": 1}, name="ReduceMax_all_int"),
    Case("ArgMax", [f(2, 3, 4)], {"axis": 1}),
    Case("ArgMin", [i64(3, 4)], {"axis": -1, "keepdims": 0, "select_last_index": 1}),
    # nn
    Case("Conv", [f(1, 3, 8, 8), Const(f(4, 3, 3, 3)), Const(f(4))],
         {"pads": [1, 1, 1, 1], "strides": [2, 2]}),
    Case("Conv", [f(1, 4, 6, 6), Const(f(4, 1, 3, 3))], {"group": 4, "pads": [1, 1, 1, 1]},
         name="Conv_depthwise"),
    Case("Conv", [f(2, 4, 7, 7), Const(f(6, 2, 3, 3))],
         {"group": 2, "dilations": [2, 2], "auto_pad": "SAME_UPPER"}, name="Conv_grouped"),
    Case("Conv", [f(1, 3, 10), f(2, 3, 3)], name="Conv_1d_runtime_weights"),
    Case("Conv", [f(1, 2, 4, 5, 4), Const(f(3, 2, 2, 3, 2)), Const(f(3))],
         {"strides": [1, 2, 1], "pads": [0, 1, 1, 1, 0, 0]}, name="Conv_3d"),
    Case("Conv", [f(2, 3, 6, 7), Const(f(6, 1, 3, 3)), Const(f(6))],
         {"group": 3, "strides": [2, 2], "auto_pad": "SAME_LOWER"}, name="Conv_depthwise_x2"),
    Case("Conv", [f(2, 4, 5, 5), Const(f(6, 4, 1, 1))], name="Conv_pointwise"),
    Case("Conv", [f(1, 2, 5, 5), Const(f(2, 2, 3, 3))], {"auto_pad": "VALID"},
         name="Conv_valid"),
    Case("ConvTranspose", [f(1, 3, 4, 4), Const(f(3, 2, 3, 3)), Const(f(2))],
         {"strides": [2, 2], "output_padding": [1, 1], "pads": [1, 1, 1, 1]}),
    Case("ConvTranspose", [f(1, 4, 5, 5), Const(f(4, 1, 2, 2))], {"group": 2},
         name="ConvTranspose_grouped"),
    Case("MaxPool", [f(1, 2, 7, 7)], {"kernel_shape": [3, 3], "strides": [2, 2],
                                      "pads": [1, 1, 1, 1]}, outputs=2),
    Case("MaxPool", [f(1, 2, 6, 6)], {"kernel_shape": [2, 2], "strides": [2, 2],
                                      "ceil_mode": 1}, name="MaxPool_ceil"),
    Case("AveragePool", [f(1, 2, 7, 7)], {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1],
                                          "count_include_pad": 1}),
    Case("GlobalAveragePool", [f(2, 3, 5, 5)]), Case("GlobalMaxPool", [f(2, 3, 5, 5)]),
    Case("BatchNormalization", [f(2, 3, 4, 4), Const(f(3)), Const(f(3)), Const(f(3)),
                                Const(f(3, lo=0.5))], {"epsilon": 1e-3}),
    Case("InstanceNormalization", [f(2, 3, 4, 4), Const(f(3)), Const(f(3))]),
    Case("LayerNormalization", [f(2, 3, 8), Const(f(8)), Const(f(8))], {"axis": -1},
         outputs=3),
    Case("LRN", [f(1, 5, 3, 3)], {"size": 3}),
    Case("Softmax", [f(2, 3, 5)], {"axis": -1}), Case("LogSoftmax", [f(2, 3, 5)]),
    Case("Softmax", [f(2, 3, 5)], {"axis": 1}, opset=11, name="Softmax_11_coerced"),
    Case("Dropout", [f(2, 3)], outputs=2),
    # tensor ops
    Case("Reshape", [f(2, 3, 4), ints(0, -1)]),
    Case("Flatten", [f(2, 3, 4)], {"axis": 2}),
    Case("Transpose", [f(2, 3, 4)], {"perm": [2, 0, 1]}),
    Case("Squeeze", [f(2, 1, 4), ints(1)]), Case("Unsqueeze", [f(2, 4), ints(0, -1)]),
    Case("Concat", [f(2, 1, 3), f(2, 2, 3), f(2, 3, 3)], {"axis": 1}),
    Case("Split", [f(2, 6), ints(2, 4)], {"axis": 1}, outputs=2),
    Case("Split", [f(2, 6)], {"axis": 1, "num_outputs": 3}, outputs=3, name="Split_num_outputs"),
    Case("ConstantOfShape", [ints(2, 3)],
         {"value": numpy_helper.from_array(np.array([1.5], np.float32))}, half=False),
    Case("Expand", [f(3, 1), ints(2, 3, 4)]), Case("Tile", [f(2, 3), ints(2, 1)]),
    Case("Range", [Const(np.array(1.0, np.float32)), Const(np.array(4.0, np.float32)),
                   Const(np.array(0.5, np.float32))], half=False),
    Case("Range", [Const(np.array(0)), Const(np.array(7)), Const(np.array(2))], name="Range_int"),
    Case("Pad", [f(2, 3), ints(1, 0, 0, 2), Const(np.array(9.0, np.float32))]),
    Case("Pad", [f(2, 3), ints(1, 1, 1, 1)], {"mode": "reflect"}, name="Pad_reflect"),
    Case("Pad", [f(2, 3), ints(1, 0, 0, 2)], {"mode": "edge"}, name="Pad_edge"),
    Case("DepthToSpace", [f(1, 8, 2, 3)], {"blocksize": 2, "mode": "CRD"}),
    Case("SpaceToDepth", [f(1, 2, 4, 6)], {"blocksize": 2}),
    Case("Trilu", [f(2, 4, 5), Const(np.array(1))], {"upper": 0}),
    Case("EyeLike", [f(3, 4)], {"k": 1}),
    Case("Slice", [f(4, 6), ints(1, -1), ints(3, 0), ints(0, 1), ints(1, -2)]),
    Case("Slice", [f(4, 6)], {"starts": [1], "ends": [3], "axes": [1]}, opset=9,
         name="Slice_1"),
    Case("OneHot", [i64(2, 3, lo=-3, hi=3), Const(np.array(4)),
                    Const(np.array([0.0, 1.0], np.float32))], {"axis": 1}),
    # math
    Case("MatMul", [f(2, 3, 4), f(4, 5)]), Case("MatMul", [f(4), f(2, 4, 3)], name="MatMul_1d"),
    Case("MatMul", [i64(3, 4, dtype=np.int32), i64(4, 2, dtype=np.int32)], name="MatMul_int"),
    Case("Gemm", [f(4, 3), f(5, 4), f(5)], {"transA": 1, "transB": 1, "alpha": 0.5,
                                            "beta": 2.0}),
    Case("CumSum", [f(2, 5), Const(np.array(1))], {"exclusive": 1, "reverse": 1}),
    Case("CumSum", [i64(2, 5), Const(np.array(-2))], name="CumSum_int"),
    # indexing
    Case("Gather", [f(5, 3), i64(2, 4, lo=-5, hi=5)]),
    Case("Gather", [f(2, 5, 3), Const(np.array(-1))], {"axis": 1}, name="Gather_scalar"),
    Case("GatherElements", [f(3, 4), i64(3, 2, lo=-4, hi=4)], {"axis": 1}),
    Case("ScatterElements", [f(3, 4), Const(np.array([[1, -1], [0, 2], [3, 0]])), f(3, 2)],
         {"axis": 1}),
    Case("ScatterElements", [f(3, 4), Const(np.array([[1, 1], [0, 2], [3, 3]])), f(3, 2)],
         {"axis": 1, "reduction": "add"}, name="ScatterElements_add_duplicates", half=False),
    Case("ScatterElements", [f(3, 4), Const(np.array([[1], [0], [2]])), f(3, 1)],
         {"axis": 0, "reduction": "max"}, name="ScatterElements_max", half=False),
    Case("ScatterND", [f(4, 3), Const(np.array([[0], [-1]])), f(2, 3)]),
    Case("ScatterND", [f(4, 3), Const(np.array([[1, 1], [1, 1], [2, 0]])), f(3)],
         {"reduction": "add"}, name="ScatterND_add_duplicates", half=False),
    # casts
    Case("Cast", [f(2, 3) * 10], {"to": TensorProto.INT32}),
    Case("Cast", [f(2, 3)], {"to": TensorProto.FLOAT16}, half=False, name="Cast_to_half"),
    Case("Cast", [i64(2, 3)], {"to": TensorProto.DOUBLE}, name="Cast_int_to_double"),
    Case("Cast", [flag(2, 3)], {"to": TensorProto.FLOAT}, name="Cast_bool"),
    Case("CastLike", [i64(2, 3), f(1)], half=False),
    # resampling
    Case("Resize", [f(1, 2, 3, 4), Const(np.zeros(0, np.float32)),
                    Const(np.array([1, 1, 2, 2], np.float32))], {"mode": "nearest"}),
    Case("Resize", [f(1, 2, 4, 4), Const(np.zeros(0, np.float32)), Const(np.zeros(0, np.float32)),
                    ints(1, 2, 6, 3)], {"mode": "linear"}, name="Resize_linear_sizes"),
    Case("Resize", [f(1, 1, 4, 4), Const(np.zeros(0, np.float32)),
                    Const(np.array([1, 1, 1.5, 1.5], np.float32))],
         {"mode": "cubic", "coordinate_transformation_mode": "align_corners"},
         name="Resize_cubic"),
    Case("Upsample", [f(1, 1, 2, 3), Const(np.array([1, 1, 2, 2], np.float32))], opset=9),
    # recurrent
    Case("LSTM", [f(5, 2, 3), Const(f(1, 16, 3)), Const(f(1, 16, 4)), Const(f(1, 32))],
         {"hidden_size": 4}, outputs=3),
    Case("LSTM", [f(5, 2, 3), Const(f(2, 16, 3)), Const(f(2, 16, 4)), Const(f(2, 32)),
                  Const(np.array([5, 3], np.int32)), f(2, 2, 4), f(2, 2, 4), Const(f(2, 12))],
         {"hidden_size": 4, "direction": "bidirectional"}, outputs=3,
         name="LSTM_bidirectional_lengths_peepholes"),
    Case("LSTM", [f(2, 5, 3), Const(f(1, 16, 3)), Const(f(1, 16, 4))],
         {"hidden_size": 4, "layout": 1, "direction": "reverse"}, opset=14, outputs=3,
         name="LSTM_layout1_reverse"),
    Case("GRU", [f(4, 2, 3), Const(f(1, 12, 3)), Const(f(1, 12, 4)), Const(f(1, 24))],
         {"hidden_size": 4, "linear_before_reset": 1}, outputs=2),
    Case("RNN", [f(4, 2, 3), Const(f(1, 4, 3)), Const(f(1, 4, 4))], {"hidden_size": 4},
         outputs=2),
    # com.microsoft fused ops (what the optimizer emits)
    Case("Gelu", [f(2, 3, 8)], domain=MS, opset=1, name="ms_Gelu"),
    Case("BiasGelu", [f(2, 3, 8), Const(f(8))], domain=MS, opset=1),
    Case("FastGelu", [f(2, 3, 8), Const(f(8))], domain=MS, opset=1),
    Case("LayerNormalization", [f(2, 3, 8), Const(f(8)), Const(f(8))], domain=MS, opset=1,
         name="ms_LayerNormalization"),
    Case("SkipLayerNormalization", [f(2, 3, 8), f(2, 3, 8), Const(f(8)), Const(f(8)),
                                    Const(f(8))], {"epsilon": 1e-5}, domain=MS, opset=1,
         outputs=["out0", "out1", "out2", "out3"]),
    Case("Attention", [f(2, 4, 8), Const(f(8, 24)), Const(f(24)),
                       Const(np.array([[1, 1, 1, 0], [1, 1, 0, 0]], np.int32))],
         {"num_heads": 2}, domain=MS, opset=1),
    Case("Attention", [f(2, 4, 8), Const(f(8, 24)), Const(f(24))],
         {"num_heads": 2, "unidirectional": 1}, domain=MS, opset=1, name="Attention_causal"),
    Case("FusedConv", [f(1, 3, 6, 6), Const(f(4, 3, 3, 3)), Const(f(4)), f(1, 4, 4, 4)],
         {"activation": "Relu"}, domain=MS, opset=1),
    Case("FusedConv", [f(1, 3, 6, 6), Const(f(4, 3, 3, 3))],
         {"activation": "Sigmoid"}, domain=MS, opset=1, name="FusedConv_sigmoid"),
    Case("FusedConv", [f(1, 4, 6, 6), Const(f(4, 1, 3, 3)), Const(f(4)), f(1, 4, 6, 6)],
         {"activation": "Clip", "activation_params": [0.0, 6.0], "group": 4,
          "pads": [1, 1, 1, 1]}, domain=MS, opset=1, name="FusedConv_depthwise_clip"),
    Case("FusedGemm", [f(3, 4), f(4, 5), f(5)],
         {"activation": "LeakyRelu", "activation_alpha": 0.2}, domain=MS, opset=1),
]


def _model(case: Case, half: bool) -> tuple[bytes, dict[str, np.ndarray], str]:
    """The serialized one-node model of ``case`` (:func:`ort.testing.node_model`: inputs in0..,
    outputs out0..; the node named "node", the graph after the case), its feeds and its id."""
    halves = _half_inputs(case)
    values = [value.value if isinstance(value, Const) else value for value in case.inputs]
    values = [a.astype(np.float16) if half and h else a for a, h in zip(values, halves)]
    model, feeds = node_model(
        case.op, values, case.attrs,
        outputs=case.outputs if isinstance(case.outputs, int) else [bool(o) for o in case.outputs],
        domain=case.domain, opset=case.opset if not case.domain else 18, domain_opset=case.opset,
        constants=[i for i, value in enumerate(case.inputs) if isinstance(value, Const)],
        ir_version=8, name="node")
    model.graph.name = case.id
    return model.SerializeToString(), feeds, case.id


def _session(data: bytes, providers: list[str]) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    # the CPU provider runs its numpy kernels, which the CUDA provider shares (its compiled
    # loops may sum in another order)
    chosen = [(p, {"compiled_kernels": "0"}) if p == "CPUExecutionProvider" else p
              for p in providers]
    return ort.InferenceSession(data, so, providers=chosen)


def _specific_ops() -> set[tuple[str, str]]:
    return {(k.domain, k.op_type) for k in gpu_specific_kernels()}


def _half_inputs(case: Case) -> list[bool]:
    """Per input: whether it is float32 and the op's schema allows float16 there."""
    arrays = [v.value if isinstance(v, Const) else v for v in case.inputs]
    if case.domain:
        return [a.dtype == np.float32 for a in arrays]
    schema = onnx.defs.get_schema(case.op, max_inclusive_version=case.opset)
    allowed = {c.type_param_str: set(c.allowed_type_strs) for c in schema.type_constraints}
    formals = list(schema.inputs)
    formals += [formals[-1]] * (len(arrays) - len(formals))  # variadic
    return [a.dtype == np.float32
            and "tensor(float16)" in allowed.get(formal.type_str, {formal.type_str})
            for formal, a in zip(formals, arrays)]


def _params() -> list[Any]:
    params = []
    for case in CASES:
        params.append(pytest.param(case, False, id=f"{case.id}-float32"))
        if case.half and any(_half_inputs(case)):
            params.append(pytest.param(case, True, id=f"{case.id}-float16"))
    return params


@pytest.mark.parametrize("case, half", _params())
def test_kernel_matches_the_cpu_provider(fake_cupy, case: Case, half: bool):
    data, feeds, _ = _model(case, half)
    cuda = _session(data, [CUDA, "CPUExecutionProvider"])
    assert cuda.get_partition().nodes_by_provider[CUDA] == ["node"], cuda.get_partition()
    cpu = _session(data, ["CPUExecutionProvider"])
    got, want = cuda.run(None, feeds), cpu.run(None, feeds)
    exact = case.exact if case.exact is not None else (case.domain, case.op) not in _specific_ops()
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert w is None or isinstance(g, np.ndarray), type(g)
        tol = 0 if exact or w is None else 2e-3 if w.dtype == np.float16 else 2e-6
        assert_outputs_match([g], [w], rtol=tol, atol=tol)


def test_every_registered_op_has_a_case():
    registered = {(k.domain, k.op_type) for k in gpu_kernels()}
    covered = {(c.domain, c.op) for c in CASES}
    assert registered - covered == set()


def test_conv_splits_large_batches_into_groups_of_images(fake_cupy, monkeypatch):
    from ort_provider_cuda.kernels import conv

    case = Case("Conv", [f(5, 3, 6, 6), Const(f(4, 3, 3, 3))], {"pads": [1, 1, 1, 1]})
    data, feeds, _ = _model(case, False)
    whole = _session(data, [CUDA]).run(None, feeds)[0]
    monkeypatch.setattr(conv, "COLUMN_BUDGET", 3 * 9 * 36 * 2)  # two images per GEMM
    fake_cupy.stats.reset()
    np.testing.assert_array_equal(_session(data, [CUDA]).run(None, feeds)[0], whole)
    np.testing.assert_allclose(whole, _session(data, ["CPUExecutionProvider"]).run(None, feeds)[0],
                               rtol=1e-5, atol=1e-5)


def test_gather_gives_zeros_for_out_of_range_indices_without_synchronizing(fake_cupy):
    """GPU semantics (the CPU kernel raises): no host check, out-of-range rows are zero."""
    data, _, _ = _model(Case("Gather", [f(4, 3), Const(np.array([0, 7, -1, -9]))]), False)
    table = np.arange(12, dtype=np.float32).reshape(4, 3)
    fake_cupy.stats.reset()
    (out,) = _session(data, [CUDA]).run(None, {"in0": table})
    np.testing.assert_array_equal(out, [table[0], [0, 0, 0], table[3], [0, 0, 0]])
    assert fake_cupy.stats.syncs == ["ndarray.get"]  # only the output's copy to the host


@pytest.mark.parametrize("reduction, dtype", [("mul", np.float32), ("add", np.int64),
                                              ("max", np.float16)])
def test_scatter_reductions_without_cupy_atomics_run_on_the_cpu(fake_cupy, reduction, dtype):
    case = Case("ScatterND", [f(4, 3).astype(dtype), Const(np.array([[1], [1]])),
                              f(2, 3).astype(dtype)], {"reduction": reduction})
    data, feeds, _ = _model(case, False)
    sess = _session(data, [CUDA, "CPUExecutionProvider"])
    assert sess.get_partition().nodes_by_provider[CUDA] == []
    assert "atomic" in _provider_of(sess).declined["node"]


def _provider_of(sess):
    return next(p for p in sess._providers if p.name == CUDA)


def test_cast_to_types_cupy_lacks_runs_on_the_cpu(fake_cupy):
    data, feeds, _ = _model(Case("Cast", [f(2, 3)], {"to": TensorProto.BFLOAT16}), False)
    sess = _session(data, [CUDA, "CPUExecutionProvider"])
    report = sess.get_partition()
    assert report.nodes_by_provider[CUDA] == []
    assert report.fallbacks["node"] == f"{CUDA} declined the node"
    assert sess.run(None, feeds)[0].dtype.name == "bfloat16"


def test_string_inputs_are_refused_by_type(fake_cupy):
    x = helper.make_tensor_value_info("x", TensorProto.STRING, [2])
    node = helper.make_node("Cast", ["x"], ["y"], name="node", to=TensorProto.FLOAT)
    model = make_model([node], [x], [helper.make_empty_tensor_value_info("y")], opset=18,
                       ir_version=onnx.IR_VERSION)
    sess = _session(model.SerializeToString(), [CUDA, "CPUExecutionProvider"])
    assert "no Cast kernel for input types ['string']" in sess.get_partition().fallbacks["node"]
    np.testing.assert_array_equal(sess.run(None, {"x": np.array(["1.5", "2"])})[0], [1.5, 2])


def test_gelu_erf_is_computed_on_the_device_without_host_round_trips(fake_cupy):
    data, feeds, _ = _model(Case("Erf", [f(64, 64)]), False)
    sess = _session(data, [CUDA])
    fake_cupy.stats.reset()
    (out,) = sess.run(None, feeds)
    assert fake_cupy.stats.syncs == ["ndarray.get"]
    np.testing.assert_allclose(out, np.vectorize(math.erf)(feeds["in0"]), rtol=1e-6, atol=1e-7)
