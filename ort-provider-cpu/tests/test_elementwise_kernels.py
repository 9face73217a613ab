"""Elementwise kernels of the CPU provider compared with onnxruntime on single-node models."""

import math

# ---- single-node model helpers (same in test_math_reduce_cast_kernels.py) ----
import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import helper


def make_model(op, inputs, attrs=None, opset=21, n_outputs=1, const=()):
    """Build a one-node model; ``inputs`` are arrays (None: omitted), indices in ``const``
    become initializers."""
    names, graph_inputs, inits, feeds = [], [], [], {}
    for i, value in enumerate(inputs):
        if value is None:
            names.append("")
            continue
        name = f"in{i}"
        names.append(name)
        if i in const:
            inits.append(onnx.numpy_helper.from_array(np.asarray(value), name))
        else:
            elem = onnx.helper.np_dtype_to_tensor_dtype(np.asarray(value).dtype)
            if np.asarray(value).dtype == object:
                elem = onnx.TensorProto.STRING
            graph_inputs.append(helper.make_tensor_value_info(name, elem, np.shape(value)))
            feeds[name] = value
    outputs = [f"out{i}" for i in range(n_outputs)]
    node = helper.make_node(op, names, outputs, **(attrs or {}))
    graph = helper.make_graph([node], "g", graph_inputs,
                              [helper.make_empty_tensor_value_info(o) for o in outputs], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              ir_version=10)
    return model, feeds


def run_onnxruntime(model, feeds):
    """Run with onnxruntime's CPU provider."""
    sess = onnxruntime.InferenceSession(model.SerializeToString(),
                                        providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def _run_direct(model, feeds):
    """Run the node straight through our kernel factory (used until ort's session exists)."""
    from ort.kernels import NodeInfo
    from ort_provider_cpu.kernels import ALL_KERNELS

    node = model.graph.node[0]
    opset = model.opset_import[0].version
    schema = onnx.defs.get_schema(node.op_type, opset, node.domain)
    attrs = {name: helper.get_attribute_value(a.default_value)
             for name, a in schema.attributes.items() if a.default_value.name}
    attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in attrs.items()}
    for a in node.attribute:
        value = helper.get_attribute_value(a)
        if isinstance(value, bytes):
            value = value.decode()
        if a.type == onnx.AttributeProto.TENSOR:
            value = onnx.numpy_helper.to_array(a.t)
        attrs[a.name] = value
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    values = [feeds.get(n, inits.get(n)) if n else None for n in node.input]
    info = NodeInfo(
        name="n", op_type=node.op_type, domain=node.domain, opset=opset,
        since_version=schema.since_version, attrs=attrs,
        input_names=list(node.input), output_names=list(node.output),
        input_dtypes=[None if v is None else np.asarray(v).dtype for v in values],
        output_dtypes=[None] * len(node.output),
        input_shapes=[None if v is None else np.shape(v) for v in values],
        output_shapes=[None] * len(node.output),
        const_inputs=[inits.get(n) for n in node.input])
    matches = [k for k in ALL_KERNELS if k.op_type == node.op_type
               and k.domain == node.domain and k.covers(schema.since_version)]
    assert matches, f"no kernel for {node.op_type}({schema.since_version})"
    compute = matches[0].factory(info)
    while values and values[-1] is None:
        values.pop()
    return list(compute(*values))


def run_ours(model, feeds):
    """Run with ort's session (or the kernel directly while the session is unavailable)."""
    try:
        import ort
        session_class = ort.InferenceSession
    except (ImportError, AttributeError):
        return _run_direct(model, feeds)
    sess = session_class(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def check(op, inputs, attrs=None, opset=21, const=(), rtol=1e-5, atol=1e-6, oracle="ort",
          n_outputs=1):
    """Compare ours with onnxruntime (or onnx's ReferenceEvaluator): dtype, shape, values."""
    model, feeds = make_model(op, inputs, attrs, opset, n_outputs, const)
    expected = None
    if oracle == "ort":
        try:
            expected = run_onnxruntime(model, feeds)
        except onnxruntime.capi.onnxruntime_pybind11_state.NotImplemented:
            pass  # onnxruntime has no kernel for this type: use the reference instead
    if expected is None:
        from onnx.reference import ReferenceEvaluator
        expected = ReferenceEvaluator(model).run(None, feeds)
    actual = run_ours(model, feeds)
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected):
        want = np.asarray(want)
        assert isinstance(got, np.ndarray), type(got)
        assert got.shape == want.shape, (got.shape, want.shape)
        if want.dtype == object or got.dtype == object:
            assert got.dtype == object
            assert got.tolist() == want.tolist()
            continue
        if want.dtype != got.dtype and want.dtype == np.uint8 and got.dtype.kind == "V":
            got = got.view(np.uint8)  # onnxruntime returns float8 as raw bytes
        assert got.dtype == want.dtype, (got.dtype, want.dtype)
        if got.dtype.kind in "fV":
            np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64),
                                       rtol=rtol, atol=atol, equal_nan=True)
        else:
            np.testing.assert_array_equal(got, want)
    return actual


RNG = np.random.default_rng(0)


def rand(shape, dtype=np.float32, low=-3.0, high=3.0):
    """Random array of ``dtype`` in [low, high) (integers rounded)."""
    values = np.asarray(RNG.uniform(low, high, size=shape))
    if np.dtype(dtype).kind in "iu":
        values = np.round(values)
    if np.dtype(dtype) == np.bool_:
        return np.asarray(values > 0)
    return np.asarray(values.astype(dtype))


# ---- erf ---------------------------------------------------------------------------------

def test_erf_float64_matches_math_erf_on_dense_grid():
    from ort_provider_cpu.kernels.elementwise import erf

    x = np.concatenate([np.linspace(-7, 7, 400001), np.geomspace(1e-300, 1e-3, 1000)])
    want = np.array([math.erf(v) for v in x])
    got = erf(np, x)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-15, atol=0)


def test_erf_float32_and_special_values():
    from ort_provider_cpu.kernels.elementwise import erf

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
    (got,) = run_ours(model, feeds)
    np.testing.assert_allclose(got, a + b.reshape(3, 4, 1), rtol=1e-6)
    model, feeds = make_model("Mul", [a, rand((5,))], {"broadcast": 1}, opset=1)
    (got,) = run_ours(model, feeds)
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


def test_mod_float_without_fmod_is_rejected():
    model, feeds = make_model("Mod", [rand((3,)), rand((3,))], {"fmod": 0})
    with pytest.raises(Exception):
        run_ours(model, feeds)


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
def test_prelu(slope_shape):
    check("PRelu", [rand((2, 3, 4)), rand(slope_shape)])


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
