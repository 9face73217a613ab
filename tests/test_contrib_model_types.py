"""The contrib-model set (``tests/contrib_models/``: models onnxruntime's own tools made, with
the ``com.microsoft`` ops real users bring) passes the type check of declared ops: each model,
validated and type-inferred as a session loads it, has only types onnxruntime's schemas allow
(:func:`ort.ir.declared_types.check_declared_types`). A refusal here is a wrong entry in the
CPU provider's type table or a bug of the check, since onnxruntime loads every one of them.
"""

from __future__ import annotations

import onnx
import pytest
from ort.ep import get_registry
from ort.ir import infer_types, load_model, validate_model
from ort.ir.declared_types import check_declared_types
from test_contrib_models import ROOT, model_paths


@pytest.mark.parametrize("path", model_paths())
def test_model_types_pass_the_declared_type_check(path: str):
    registry = get_registry()
    model, _ = load_model(str(ROOT / path))
    validate_model(model, registry.schemas, lambda domain, op_type: True)
    inferred = infer_types(model, registry.schemas)
    declared = {(n.domain, n.op_type) for n in inferred.graph.node
                if n.domain not in ("", "ai.onnx", "ai.onnx.ml")}
    check_declared_types(inferred, registry.schemas)
    if declared:  # the check had something to look at
        assert any(schema.input_types for schema in registry.schemas
                   if (schema.domain, schema.op_type) in declared), declared


def test_the_set_uses_contrib_ops():
    used = set()
    for path in model_paths():
        used |= {n.op_type for n in onnx.load(str(ROOT / path), load_external_data=False)
                 .graph.node if n.domain == "com.microsoft"}
    assert len(used) >= 10, sorted(used)
