"""Elementwise kernels of the CPU provider compared with onnxruntime on single-node models."""

import math

import numpy as np
import pytest
from single_node import check, make_model, rand

from ort.testing import run_ort


# ---- erf ---------------------------------------------------------------------------------

def test_erf_float64_matches_math_erf_on_dense_grid():
    from ort_provider_cpu.kernels.erf_gelu import erf

    x = np.concatenate([np.linspace(-7, 7, 400001), np.geomspace(1e-300, 1e-3, 1000)])
    want = np.array([math.erf(v) for v in x])
    got = erf(np, x)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-15, atol=0)


def test_erf_float32_and_special_values():
    from ort_provider_cpu.kernels.erf_gelu import erf

    x = np.linspace(-6, 6, 100001).astype(np.float32)
    want = np.array([math.erf(v) for v in x.astype(np.float64)]).astype(np.float32)
    got = erf(np, x)
    assert got.dtype == np.float32
    np.testing.assert_array_max_ulp(got, want, maxulp=1)
    special = erf(np, np.array([np.nan, np.inf, -np.inf, 0.0, -0.0]))
    assert np.isnan(special[0]) and special[1] == 1 and special[2] == -1
    assert special[3] == 0 and np.signbit(special[4])


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_erf_node(dtype):
    check("Erf", [rand((4, 33), dtype)], rtol=1e-3 if dtype == np.float16 else 1e-6)


# ---- binary arithmetic -------------------------------------------------------------------

SHAPES = [((3, 4), (3, 4)), ((2, 3, 4), (4,)), ((3, 1), (1, 5)), ((), (2, 2)), ((0, 3), (3,))]


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64])
@pytest.mark.parametrize("shapes", SHAPES)
def test_arithmetic(op, dtype, shapes):
    a = rand(shapes[0], dtype, -20, 20)
    b = rand(shapes[1], dtype, 1, 9)
    if np.dtype(dtype).kind == "i":
        b = b * np.where(rand(shapes[1], dtype, -1, 1) < 0, -1, 1).astype(dtype)
    check(op, [a, b], opset=14)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint32, np.float16])
def test_arithmetic_other_types(dtype):
    a, b = rand((5, 6), dtype, 0, 50), rand((6,), dtype, 1, 5)
    for op in ("Add", "Sub", "Mul", "Div"):
        check(op, [a, b], opset=14, rtol=1e-3)


def test_integer_div_truncates_toward_zero():
    a = np.array([7, -7, 7, -7, 0, -1, 6], np.int32)
    b = np.array([2, 2, -2, -2, 3, 4, -3], np.int32)
    (got,) = check("Div", [a, b])
    assert got.tolist() == [3, -3, -3, 3, 0, 0, -2]


def test_legacy_broadcast_axis():
    a = rand((2, 3, 4, 5))
    b = rand((3, 4))
    model, feeds = make_model("Add", [a, b], {"broadcast": 1, "axis": 1}, opset=6)
    (got,) = run_ort(model, feeds)
    np.testing.assert_allclose(got, a + b.reshape(3, 4, 1), rtol=1e-6)
    model, feeds = make_model("Mul", [a, rand((5,))], {"broadcast": 1}, opset=1)
    (got,) = run_ort(model, feeds)
    assert got.shape == a.shape


@pytest.mark.parametrize("opset", [6, 7, 13])
def test_old_opset_binary(opset):
    a, b = rand((3, 4)), rand((3, 4))
    for op in ("Add", "Sub", "Mul", "Div"):
        check(op, [a, b], opset=opset, oracle="ort" if opset >= 7 else "ref")


@pytest.mark.parametrize("base_type,exp_type", [
    (np.float32, np.float32), (np.float32, np.int64), (np.float64, np.float32),
    (np.int64, np.int64), (np.int32, np.float32), (np.float32, np.int32),
])
def test_pow(base_type, exp_type):
    base = rand((3, 4), base_type, 0.5, 4)
    exponent = rand((4,), exp_type, 0, 3)
    check("Pow", [base, exponent], opset=15, rtol=1e-5)


def test_pow_negative_integer_exponent():
    base = np.array([2, 1, -1, -1, 3], np.int64)
    exponent = np.array([-1, -3, -3, -2, 2], np.int64)
    check("Pow", [base, exponent], opset=15)


@pytest.mark.parametrize("dtype,fmod", [
    (np.int32, 0), (np.int64, 1), (np.int64, 0), (np.uint8, 0), (np.float32, 1),
    (np.float64, 1), (np.int8, 1), (np.float16, 1),
])
def test_mod(dtype, fmod):
    a = rand((4, 5), dtype, -30 if np.dtype(dtype).kind != "u" else 0, 30)
    b = rand((5,), dtype, 1, 7)
    if np.dtype(dtype).kind != "u":
        b = b * np.array([1, -1, 1, -1, 1], dtype)
    check("Mod", [a, b], {"fmod": fmod}, rtol=1e-3)


@pytest.mark.parametrize("opset", [10, 13, 21])
def test_mod_float_without_fmod_is_rejected(opset):
    model, feeds = make_model("Mod", [rand((3,)), rand((3,))], {"fmod": 0}, opset=opset)
    with pytest.raises(Exception, match="fmod"):
        run_ort(model, feeds)


def test_mod_invalid_fmod():
    model, feeds = make_model("Mod", [rand((3,), np.int32), rand((3,), np.int32)], {"fmod": 2})
    with pytest.raises(Exception, match="fmod"):
        run_ort(model, feeds)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, "bfloat16"])
@pytest.mark.parametrize("fmod", [0, 1])
def test_mod_opset28_floats(dtype, fmod):
    import ml_dtypes

    dtype = ml_dtypes.bfloat16 if dtype == "bfloat16" else dtype
    a = np.array([5.5, -5.5, 5.5, -5.5, 0.0, -0.0, 0.0, np.inf, 3.0, 3.0, -3.0, np.nan, 7.0],
                 np.float32)
    b = np.array([2.0, 2.0, -2.0, -2.0, 3.0, 3.0, -3.0, 2.0, 0.0, np.inf, np.inf, 1.0, -np.inf],
                 np.float32)
    model, feeds = make_model("Mod", [a.astype(dtype), b.astype(dtype)], {"fmod": fmod},
                              opset=28)
    (got,) = run_ort(model, feeds)
    assert got.dtype == np.dtype(dtype)
    with np.errstate(invalid="ignore", divide="ignore"):
        want = (np.fmod if fmod else np.remainder)(a.astype(np.float64), b.astype(np.float64))
    np.testing.assert_array_equal(got.astype(np.float64), want)
    np.testing.assert_array_equal(np.signbit(got.astype(np.float64)), np.signbit(want))


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8])
@pytest.mark.parametrize("opset", [13, 28])
def test_mod_integers_across_opsets(dtype, opset):
    a = rand((4, 5), dtype, -30 if np.dtype(dtype).kind != "u" else 0, 30)
    b = rand((5,), dtype, 1, 7)
    check("Mod", [a, b], {"fmod": 0}, opset=opset, oracle="ort" if opset < 28 else "ref")


# ---- comparisons, logic, bitwise ---------------------------------------------------------

@pytest.mark.parametrize("op", ["Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"])
@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.int32, np.float64])
def test_comparison(op, dtype):
    a, b = rand((3, 4), dtype, -2, 2), rand((4,), dtype, -2, 2)
    check(op, [a, b], opset=19)


def test_equal_strings():
    a = np.array(["a", "bc", ""], dtype=object)
    b = np.array(["a", "b", ""], dtype=object)
    check("Equal", [a, b], opset=19)


@pytest.mark.parametrize("op", ["And", "Or", "Xor"])
def test_logical(op):
    check(op, [rand((2, 3, 4), np.bool_), rand((3, 1), np.bool_)])


def test_not():
    check("Not", [rand((3, 5), np.bool_)])


@pytest.mark.parametrize("op", ["BitwiseAnd", "BitwiseOr", "BitwiseXor"])
@pytest.mark.parametrize("dtype", [np.int32, np.uint8, np.int64, np.uint16])
def test_bitwise(op, dtype):
    check(op, [rand((3, 4), dtype, 0, 200), rand((4,), dtype, 0, 200)])


@pytest.mark.parametrize("dtype", [np.int32, np.uint8])
def test_bitwise_not(dtype):
    check("BitwiseNot", [rand((3, 4), dtype, 0, 100)])


@pytest.mark.parametrize("direction", ["LEFT", "RIGHT"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint32, np.uint64])
def test_bitshift(direction, dtype):
    x = rand((3, 4), dtype, 0, 100)
    check("BitShift", [x, np.array([1, 2, 3, 0], dtype)], {"direction": direction})


# ---- variadic and Where ------------------------------------------------------------------

@pytest.mark.parametrize("op", ["Sum", "Mean", "Max", "Min"])
@pytest.mark.parametrize("count", [1, 2, 3])
def test_variadic(op, count):
    inputs = [rand((2, 3, 4)), rand((3, 1)), rand((4,))][:count]
    check(op, inputs)


@pytest.mark.parametrize("op", ["Max", "Min"])
def test_variadic_int(op):
    check(op, [rand((3, 4), np.int32, -9, 9), rand((4,), np.int32, -9, 9)])


def test_where():
    check("Where", [rand((3, 1), np.bool_), rand((3, 4)), rand((4,))])
    check("Where", [rand((2, 3), np.bool_), rand((2, 3), np.int64), rand((), np.int64)])


# ---- unary -------------------------------------------------------------------------------

UNARY = {
    "Sqrt": (0, 5), "Exp": (-5, 5), "Log": (0.1, 5), "Neg": (-5, 5), "Abs": (-5, 5),
    "Reciprocal": (0.5, 5), "Floor": (-5, 5), "Ceil": (-5, 5), "Tanh": (-5, 5),
    "Sign": (-5, 5), "Sin": (-5, 5), "Cos": (-5, 5), "Tan": (-1.4, 1.4),
    "Asin": (-1, 1), "Acos": (-1, 1), "Atan": (-5, 5), "Sinh": (-5, 5), "Cosh": (-5, 5),
    "Asinh": (-5, 5), "Acosh": (1, 5), "Atanh": (-0.99, 0.99), "Relu": (-5, 5),
    "Sigmoid": (-30, 30), "Softplus": (-30, 30), "Softsign": (-5, 5), "HardSwish": (-5, 5),
    "Mish": (-10, 10), "Erf": (-4, 4), "Identity": (-5, 5),
}


@pytest.mark.parametrize("op", sorted(UNARY))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unary(op, dtype):
    low, high = UNARY[op]
    check(op, [rand((4, 25), dtype, low, high)], opset=22, rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("op", ["Abs", "Neg", "Sign", "Relu"])
@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.int8])
def test_unary_integer(op, dtype):
    check(op, [rand((3, 7), dtype, -9, 9)], opset=22)


@pytest.mark.parametrize("op", ["Relu", "Sigmoid", "Tanh", "Exp", "Abs", "Neg", "Sqrt"])
def test_unary_float16(op):
    check(op, [rand((3, 7), np.float16, 0.1, 4)], opset=14, rtol=1e-3, atol=1e-3)


def test_round_half_to_even():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 2.4, 2.6, -2.6], np.float32)
    (got,) = check("Round", [x])
    assert got.tolist() == [0, 2, 2, -0, -2, 2, 3, -3]


def test_isnan_isinf():
    x = np.array([1.0, np.nan, np.inf, -np.inf, 0.0], np.float32)
    check("IsNaN", [x])
    for neg in (0, 1):
        for pos in (0, 1):
            check("IsInf", [x], {"detect_negative": neg, "detect_positive": pos})


@pytest.mark.parametrize("op,attrs", [
    ("LeakyRelu", {}), ("LeakyRelu", {"alpha": 0.3}), ("Elu", {}), ("Elu", {"alpha": 0.5}),
    ("Selu", {}), ("Selu", {"alpha": 2.0, "gamma": 0.5}), ("HardSigmoid", {}),
    ("HardSigmoid", {"alpha": 0.4, "beta": 0.3}), ("ThresholdedRelu", {}),
    ("ThresholdedRelu", {"alpha": 0.5}), ("Celu", {}), ("Celu", {"alpha": 2.0}),
    ("Gelu", {}), ("Gelu", {"approximate": "tanh"}),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activation_attributes(op, attrs, dtype):
    if op == "Celu" and dtype == np.float64:
        pytest.skip("Celu is defined for float only")
    check(op, [rand((5, 20), dtype, -4, 4)], attrs, opset=22 if op != "Celu" else 12,
          rtol=1e-5)


@pytest.mark.parametrize("slope_shape", [(1,), (4,), (3, 1), (3, 4)])
@pytest.mark.parametrize("opset", [7, 9, 16])
def test_prelu(slope_shape, opset):
    check("PRelu", [rand((2, 3, 4)), rand(slope_shape)], opset=opset)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float64])
def test_prelu_types(dtype):
    check("PRelu", [rand((2, 3, 4), dtype, -5, 5), rand((4,), dtype, -3, 3)], opset=16)


@pytest.mark.parametrize("x_shape,slope_shape", [((2, 3, 4), (3,)), ((2, 3, 4, 5), (3,)),
                                                 ((2, 3), (1,)), ((2, 3, 4), (2, 3, 4)),
                                                 ((3,), (3,))])
@pytest.mark.parametrize("opset", [1, 6])
def test_prelu_legacy_per_channel_slope(x_shape, slope_shape, opset):
    x, slope = rand(x_shape), rand(slope_shape)
    model, feeds = make_model("PRelu", [x, slope], opset=opset)
    (got,) = run_ort(model, feeds)
    if len(slope_shape) == 1 and len(x_shape) >= 2 and slope_shape[0] == x_shape[1]:
        slope = slope.reshape((-1,) + (1,) * (len(x_shape) - 2))
    np.testing.assert_allclose(got, np.where(x < 0, x * slope, x), rtol=1e-6)


def test_prelu_legacy_bad_slope():
    model, feeds = make_model("PRelu", [rand((2, 3, 4)), rand((5,))], opset=6)
    with pytest.raises(Exception):
        run_ort(model, feeds)


# ---- Shrink ------------------------------------------------------------------------------

@pytest.mark.parametrize("attrs", [{}, {"lambd": 1.5}, {"bias": 1.5}, {"lambd": 0.0,
                                                                       "bias": -0.7}])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int32, np.int8,
                                   np.uint8, np.int64])
def test_shrink(attrs, dtype):
    low = 0 if np.dtype(dtype).kind == "u" else -6
    check("Shrink", [rand((4, 6), dtype, low, 6)], attrs, opset=9, rtol=1e-3)


# ---- Clip --------------------------------------------------------------------------------

@pytest.mark.parametrize("bounds", [(-1.0, 1.0), (None, 0.5), (-0.5, None), (None, None),
                                    (1.0, -1.0)])
@pytest.mark.parametrize("const", [(), (1, 2)])
def test_clip_inputs(bounds, const):
    low, high = (None if b is None else np.array(b, np.float32) for b in bounds)
    inputs = [rand((3, 5)), low, high]
    while inputs[-1] is None:
        inputs.pop()
    check("Clip", inputs, const=tuple(i for i in const if i < len(inputs)
                                      and inputs[i] is not None))


def test_clip_integer():
    check("Clip", [rand((3, 5), np.int32, -9, 9), np.array(-2, np.int32),
                   np.array(4, np.int32)], opset=13)


@pytest.mark.parametrize("attrs", [{}, {"min": -0.5}, {"min": -1.0, "max": 0.25}])
def test_clip_attributes(attrs):
    check("Clip", [rand((3, 5))], attrs, opset=6, oracle="ref")
