"""Gradient (ai.onnx.preview.training) against central finite differences of the same graph
(onnxruntime's inference build has no Gradient kernel to compare with)."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import ort
from ort.testing import make_model, run_ort

DOUBLE = TensorProto.DOUBLE


def _model(nodes, xs, y, inits=(), zs=()):
    grad_outputs = [f"d_{x}" for x in xs]
    grad = helper.make_node("Gradient", list(xs) + list(zs), grad_outputs, xs=list(xs), y=y,
                            zs=list(zs) or None, domain="ai.onnx.preview.training")
    inputs = [helper.make_tensor_value_info(n, DOUBLE, None) for n in list(xs) + list(zs)]
    outputs = [helper.make_tensor_value_info(n, DOUBLE, None) for n in [y] + grad_outputs]
    return make_model(nodes + [grad], inputs, outputs, inits, opset=13,
                      opsets={"ai.onnx.preview.training": 1}, ir_version=9)


def _finite_difference(sess, feeds, x, eps=1e-6):
    base = dict(feeds)
    grad = np.zeros_like(feeds[x])
    for index in np.ndindex(feeds[x].shape):
        plus, minus = feeds[x].copy(), feeds[x].copy()
        plus[index] += eps
        minus[index] -= eps
        up = sess.run(None, {**base, x: plus})[0].sum()
        down = sess.run(None, {**base, x: minus})[0].sum()
        grad[index] = (up - down) / (2 * eps)
    return grad


CASES = {
    "matmul_add_broadcast_relu": (
        [helper.make_node("MatMul", ["a", "w"], ["m"]),
         helper.make_node("Add", ["m", "bias"], ["s"]),
         helper.make_node("Relu", ["s"], ["y"])],
        {"a": (3, 4), "w": (4, 2)}, {"bias": np.array([0.1, -0.2])}),
    "softmax_mean": (
        [helper.make_node("Mul", ["a", "w"], ["m"]),
         helper.make_node("Softmax", ["m"], ["p"], axis=-1),
         helper.make_node("ReduceMean", ["p"], ["y"], axes=[1], keepdims=0)],
        {"a": (2, 5), "w": (5,)}, {}),
    "div_sub_tanh_gemm": (
        [helper.make_node("Gemm", ["a", "w"], ["g"], transB=1, alpha=0.5),
         helper.make_node("Div", ["g", "a2"], ["d"]),
         helper.make_node("Tanh", ["d"], ["t"]),
         helper.make_node("Sub", ["t", "g"], ["y"])],
        {"a": (3, 4), "w": (2, 4), "a2": (1, 2)}, {}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_gradient_matches_finite_differences(case):
    nodes, shapes, consts = CASES[case]
    rng = np.random.default_rng(0)
    feeds = {n: rng.uniform(0.5, 1.5, s) * rng.choice([-1, 1], s) for n, s in shapes.items()}
    if "a2" in feeds:
        feeds["a2"] = np.abs(feeds["a2"]) + 1
    inits = [onnx.numpy_helper.from_array(v, k) for k, v in consts.items()]
    model = _model(nodes, list(shapes), "y", inits)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, feeds)
    for x, grad in zip(shapes, got[1:]):
        np.testing.assert_allclose(grad, _finite_difference(sess, feeds, x), rtol=1e-5, atol=1e-7)


def test_zs_are_inputs_held_constant():
    nodes = [helper.make_node("Mul", ["a", "z"], ["y"])]
    model = _model(nodes, ["a"], "y", zs=["z"])
    a, z = np.array([1.0, 2.0]), np.array([3.0, 5.0])
    y, d_a = run_ort(model, {"a": a, "z": z})
    np.testing.assert_allclose(d_a, z)


def test_op_without_a_derivative_rule_is_refused_at_session_creation():
    nodes = [helper.make_node("Floor", ["a"], ["y"])]
    with pytest.raises(ort.NotImplemented, match="no derivative rule for \\['Floor'\\]"):
        ort.InferenceSession(_model(nodes, ["a"], "y").SerializeToString(),
                             providers=["CPUExecutionProvider"])
