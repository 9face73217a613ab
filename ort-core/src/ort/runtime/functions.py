"""Function expansion: nodes no provider has a kernel for, but whose op is defined by an ONNX
function body (a schema function such as Gelu or MeanVarianceNormalization, a
context-dependent one such as LayerNormalization, or a model-local function), run as the
primitive ops of that body.

The body is instantiated per node at session creation (attribute references resolved, omitted
optional inputs removed, the body's own opset imports kept) and compiled by the session's
compiler into a nested plan partitioned over the same providers, so kernels still win wherever
they exist.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, Protocol

import onnx
from onnx import FunctionProto, ModelProto, helper

from ..ep import CompiledGraph, ComputeFn, KernelDef, NodeInfo
from ..errors import NotImplemented as OrtNotImplemented
from ..ir import Graph, Node

__all__ = ["function_body", "function_kernel"]

_counter = itertools.count()


class ModelCompiler(Protocol):
    """What function kernels need of the session's compile context."""

    def compile_model(self, model: ModelProto, parent: Graph) -> CompiledGraph:
        """Compile a standalone model (its own opsets) over the session's providers."""


def _pick_version(versions: Sequence[int], opset: int) -> int:
    usable = [v for v in versions if v <= opset]
    return max(usable) if usable else min(versions)


def function_body(graph: Graph, node: Node) -> FunctionProto | None:
    """The function that defines ``node``'s op at the model's opset, or None."""
    local = graph.functions.get((node.domain, node.op_type))
    if local is not None:
        return local
    schema = graph.onnx_schema(node)
    if schema is None:
        return None
    opset = graph.opset_of(node.domain) or schema.since_version
    if schema.has_function:
        data = schema.get_function_with_opset_version(_pick_version(schema.function_opset_versions, opset))
    elif schema.has_context_dependent_function:
        types = []
        for name in node.inputs:
            tp = graph.value_types.get(name) if name else None
            types.append((tp or onnx.TypeProto()).SerializeToString())
        version = _pick_version(schema.context_dependent_function_opset_versions, opset)
        data = schema.get_context_dependent_function_with_opset_version(
            version, node.proto.SerializeToString(), types)
    else:
        return None
    if not data:
        return None
    function = FunctionProto()
    function.ParseFromString(data)
    return function if function.node else None


def _attribute_defaults(graph: Graph, node: Node, function: FunctionProto) -> dict[str, onnx.AttributeProto]:
    """Defaults of the function's attributes: the op schema's, then the function's own."""
    defaults: dict[str, onnx.AttributeProto] = {}
    schema = graph.onnx_schema(node)
    if schema is not None:
        for name, spec in schema.attributes.items():
            if spec.default_value is not None and spec.default_value.type != onnx.AttributeProto.UNDEFINED:
                defaults[name] = spec.default_value
    defaults.update({a.name: a for a in function.attribute_proto})
    return defaults


def _instantiate(function: FunctionProto, node: Node,
                 defaults: dict[str, onnx.AttributeProto]) -> list[onnx.NodeProto]:
    """The body's nodes for one call: attribute references resolved, names made unique."""
    given = {a.name: a for a in node.attributes}
    prefix = f"_fn{next(_counter)}_{node.name}_"
    rename: dict[str, str] = {}
    for formal, actual in zip(function.input, list(node.inputs) + [""] * len(function.input)):
        rename[formal] = actual and formal  # absent optional inputs become ''
    for formal in function.output:
        rename[formal] = formal

    def mapped(name: str) -> str:
        if not name:
            return ""
        if name not in rename:
            rename[name] = prefix + name
        return rename[name]

    def resolve_attributes(source_node: onnx.NodeProto, target: onnx.NodeProto,
                           scope: set[str]) -> None:
        """Copy attributes, resolving ``@ref`` attributes and renaming the body's values that
        nested graphs (If branches, Loop bodies) read; ``scope`` holds those names."""
        del target.attribute[:]
        for attr in source_node.attribute:
            if attr.ref_attr_name:
                source = given.get(attr.ref_attr_name) or defaults.get(attr.ref_attr_name)
                if source is None:
                    continue  # the attribute is optional and the caller left it out
                resolved = onnx.AttributeProto()
                resolved.CopyFrom(source)
                resolved.name = attr.name
                target.attribute.append(resolved)
                continue
            copied = target.attribute.add()
            copied.CopyFrom(attr)
            for graph in ([copied.g] if copied.type == onnx.AttributeProto.GRAPH else
                          list(copied.graphs)):
                rewrite_nested(graph, scope)

    def rewrite_nested(graph: onnx.GraphProto, scope: set[str]) -> None:
        local = {i.name for i in graph.input} | {t.name for t in graph.initializer}
        local |= {o for n in graph.node for o in n.output if o}
        outer = scope - local
        for nested in graph.node:
            original = onnx.NodeProto()
            original.CopyFrom(nested)
            resolve_attributes(original, nested, outer)
            for i, name in enumerate(nested.input):
                if name in outer:
                    nested.input[i] = mapped(name)
        for output in graph.output:
            if output.name in outer:
                output.name = mapped(output.name)

    body_names = set(function.input) | {o for n in function.node for o in n.output if o}
    nodes = []
    for body_node in function.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(body_node)
        resolve_attributes(body_node, copy, body_names)
        copy.ClearField("input")
        copy.input.extend(mapped(n) for n in body_node.input)
        copy.ClearField("output")
        copy.output.extend(mapped(n) for n in body_node.output)
        copy.name = prefix + (body_node.name or body_node.op_type)
        nodes.append(copy)
    return nodes


def function_kernel(graph: Graph, node: Node, function: FunctionProto) -> KernelDef:
    """A one-node kernel that runs ``function``'s body as a nested plan compiled by the
    session's compiler (``NodeInfo.context``)."""

    def factory(info: NodeInfo) -> ComputeFn:
        body_nodes = _instantiate(function, node, _attribute_defaults(graph, node, function))
        inputs = []
        for formal, actual in zip(function.input, node.inputs):
            if actual:
                tp = graph.value_types.get(actual)
                inputs.append(helper.make_value_info(formal, tp) if tp is not None
                              else helper.make_empty_tensor_value_info(formal))
        outputs = [helper.make_empty_tensor_value_info(o) for o in function.output]
        opsets = {o.domain: o.version for o in function.opset_import}
        opsets.setdefault("", graph.opset_of("") or onnx.defs.onnx_opset_version())
        model = helper.make_model(
            helper.make_graph(body_nodes, f"{node.op_type}_body", inputs, outputs),
            opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()],
            functions=list(graph.functions.values()),
        )
        compiler: ModelCompiler = info.context  # type: ignore[assignment]
        try:
            body = compiler.compile_model(model, graph)
        except OrtNotImplemented as exc:
            raise OrtNotImplemented(
                f"expanding {info.describe()} into its function body: {exc.message}") from exc
        present = [i for i, actual in enumerate(node.inputs) if actual]
        listed = min(len(function.output), len(node.outputs))

        def compute(*values: Any) -> tuple[Any, ...]:
            return tuple(body.run([values[i] for i in present])[:listed])

        return compute

    return KernelDef(node.op_type, node.domain, 1, None, factory)
