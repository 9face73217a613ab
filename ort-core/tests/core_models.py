"""Helpers that build small models for the core tests."""

from __future__ import annotations

from onnx import ModelProto, helper


def make_model(nodes, inputs, outputs, initializers=(), opset=17, ir_version=8, **kwargs) -> ModelProto:
    """A model from onnx.helper pieces with one ai.onnx opset."""
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=ir_version, **kwargs
    )
