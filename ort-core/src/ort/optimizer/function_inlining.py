"""Level-1 (``ORT_ENABLE_BASIC``) inlining of model-local functions.

torch's dynamo exporter (torch 2.1 to 2.5) writes every ``nn.Module`` as a model-local
function: ``SiLU`` is a function holding ``Sigmoid`` and ``Mul``, ``ReLU6`` one holding
``Clip``, so a Conv and the activation after it sit in different graphs and no fusion sees
them together. onnxruntime inlines model-local functions when it loads a model (except those
an execution provider has a kernel for) and then fuses, so

* ``FunctionInlining``: every call of a model-local function the session's first-choice
  provider has no kernel for is replaced by the function's body (onnx's inliner: values
  renamed apart, attribute references bound, nested calls inlined too, subgraphs
  included); the model's types are inferred again, so the fusions know the element types
  of the values the bodies bring in.
"""

from __future__ import annotations

import onnx
import onnx.inliner
from onnx import GraphProto, ModelProto

from .context import OptimizerContext
from .view import model_opset

__all__ = ["inline_local_functions"]


def _called(graph: GraphProto, functions: set[tuple[str, str]]) -> bool:
    """Whether ``graph`` (or a subgraph of it) calls one of ``functions``."""
    for node in graph.node:
        if (node.domain, node.op_type) in functions:
            return True
        for attribute in node.attribute:
            subs = [attribute.g] if attribute.HasField("g") else list(attribute.graphs)
            if any(_called(sub, functions) for sub in subs):
                return True
    return False


def inline_local_functions(model: ModelProto, context: OptimizerContext) -> bool:
    """Calls of model-local functions without a kernel -> the functions' bodies."""
    if not len(model.functions):
        return False
    local = {(f.domain, f.name) for f in model.functions}
    with_kernel = {(domain, name) for domain, name in local
                   if context.has_kernel(domain, name, model_opset(model, domain) or 1)}
    if not _called(model.graph, local - with_kernel):
        return False
    inlined = onnx.inliner.inline_selected_functions(model, sorted(with_kernel), exclude=True)
    try:
        inlined = onnx.shape_inference.infer_shapes(inlined)
    except Exception:  # noqa: BLE001 - types help the fusions; the inlined graph stands alone
        pass
    model.CopyFrom(inlined)
    return True
