"""The CPU provider's kernels this provider runs unchanged with ``xp = cupy``.

Each entry was audited: the kernel's compute function calls only ``node.xp`` functions and
ndarray methods cupy has, with keywords cupy accepts; it applies ``numpy`` only to host values
(attributes, shapes, host inputs, numpy scalars such as ``x.dtype.type(alpha)``) and never
reads device data on the host. ``tests/test_kernels_on_fake_cupy.py`` runs every one of them
through the strict cupy double (``tests/fake_cupy``) against the CPU provider, in float32 and
float16 where the op takes floats.

Ops of the CPU modules that are *not* listed here either have a GPU version in this package
(the module docstring there says why) or run on the CPU provider.
"""

from __future__ import annotations

__all__ = ["REUSED"]

_ELEMENTWISE = (
    # binary arithmetic/comparison/logic (numpy broadcasting, legacy broadcast before 7)
    "Add", "Sub", "Mul", "Div", "Pow", "Mod", "Equal", "Less", "Greater", "LessOrEqual",
    "GreaterOrEqual", "And", "Or", "Xor", "BitShift", "BitwiseAnd", "BitwiseOr", "BitwiseXor",
    "PRelu", "Sum", "Mean", "Max", "Min",
    # unary math and activations (float16 composites computed in float32, as on the CPU)
    "Sqrt", "Exp", "Log", "Neg", "Abs", "Floor", "Ceil", "Tanh", "Round", "Sign", "Sin", "Cos",
    "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "IsNaN", "IsInf",
    "Not", "BitwiseNot", "Reciprocal", "Relu", "Sigmoid", "Softplus", "Softsign", "Mish",
    "HardSwish", "LeakyRelu", "Elu", "Selu", "HardSigmoid", "ThresholdedRelu", "Celu",
    "Where", "Clip", "Shrink", "Identity",
)
_REDUCE = (
    "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
    "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare", "ArgMax", "ArgMin",
)
_NN = (
    # ConvTranspose: one GEMM per group, then a scatter-add per kernel tap into strided slices
    # (no duplicate indices); pooling: a running max/sum over kernel taps of strided slices
    "ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
    "BatchNormalization", "InstanceNormalization", "LayerNormalization", "LRN", "Softmax",
    "LogSoftmax", "Dropout",
)
_TENSOR = (
    "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Concat", "Split",
    "ConstantOfShape", "Expand", "Tile", "Range", "Pad", "DepthToSpace", "SpaceToDepth",
    "Trilu", "EyeLike", "Slice", "OneHot",
)
_MATH = ("Gemm",)
_CONTRIB = ("FastGelu", "LayerNormalization", "SkipLayerNormalization", "Attention")

#: (domain, op_type) of every reused CPU kernel (all its registered version ranges).
REUSED: frozenset[tuple[str, str]] = frozenset(
    [("", op) for op in _ELEMENTWISE + _REDUCE + _NN + _TENSOR + _MATH]
    + [("com.microsoft", op) for op in _CONTRIB]
)
