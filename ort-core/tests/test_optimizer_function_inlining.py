"""FunctionInlining: calls of model-local functions become the functions' bodies, so the
fusions see through torch's per-module functions; functions the provider has a kernel for
stay calls, as onnxruntime leaves them to the provider that claims them."""

from __future__ import annotations

from collections import Counter

import numpy as np
from onnx import AttributeProto, TensorProto, helper
from ort.optimizer import OptimizerContext, optimize_model

F = TensorProto.FLOAT


def _model_with_function(name="SiLU_0", domain="pkg.torch", attribute=False):
    body = [helper.make_node("Sigmoid", ["x"], ["s"]),
            helper.make_node("Mul", ["x", "s"], ["y"])]
    attributes = []
    if attribute:  # a function attribute bound at the call (alpha of a LeakyRelu)
        leaky = helper.make_node("LeakyRelu", ["y"], ["z"])
        leaky.attribute.append(helper.make_attribute_ref("alpha", AttributeProto.FLOAT))
        body.append(leaky)
        attributes = ["alpha"]
    out = "z" if attribute else "y"
    function = helper.make_function(domain, name, ["x"], [out], body,
                                    [helper.make_opsetid("", 18)], attributes)
    call = helper.make_node(name, ["a"], ["b"], domain=domain)
    if attribute:
        call.attribute.append(helper.make_attribute("alpha", 0.5))
    graph = helper.make_graph([helper.make_node("Relu", ["in"], ["a"]), call], "g",
                              [helper.make_tensor_value_info("in", F, [2, 3])],
                              [helper.make_tensor_value_info("b", F, None)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18),
                                                   helper.make_opsetid(domain, 1)],
                             functions=[function], ir_version=9)


def _ops(model):
    return Counter((f"{n.domain}:" if n.domain else "") + n.op_type for n in model.graph.node)


def test_a_local_function_call_is_inlined_and_then_fused():
    context = OptimizerContext(has_kernel=lambda domain, op, version: domain != "pkg.torch")
    optimized = optimize_model(_model_with_function(), 2, context)
    assert _ops(optimized) == {"Relu": 1, "com.microsoft:QuickGelu": 1}
    assert [o.name for o in optimized.graph.output] == ["b"]


def test_attribute_references_are_bound_at_the_call():
    context = OptimizerContext(has_kernel=lambda domain, op, version: domain != "pkg.torch")
    optimized = optimize_model(_model_with_function(attribute=True), 1, context)
    leaky = next(n for n in optimized.graph.node if n.op_type == "LeakyRelu")
    assert np.isclose(leaky.attribute[0].f, 0.5)


def test_a_function_the_provider_has_a_kernel_for_stays_a_call():
    context = OptimizerContext(has_kernel=lambda domain, op, version: True)
    optimized = optimize_model(_model_with_function(), 2, context)
    assert _ops(optimized)["pkg.torch:SiLU_0"] == 1
