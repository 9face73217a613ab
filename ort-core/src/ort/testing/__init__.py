"""The oracle kit that ort's own tests and third-party provider authors share.

* models: :func:`make_model` (a graph from ``onnx.helper`` pieces), :func:`node_model` (one
  node and the feeds that run it);
* oracles: :func:`assert_matches_onnxruntime` runs a model on ort and on onnxruntime (or onnx's
  ``ReferenceEvaluator``, ``oracle="reference"``) and compares every output;
  :func:`check_node` does it for one node; :func:`assert_outputs_match` compares outputs;
* conformance: :mod:`ort.testing.conformance` runs ONNX's backend node tests on the providers
  you name.

onnxruntime is only ever the oracle, imported when an oracle run needs it (``pip install
'ort-core[testing]'``); importing this package loads neither it nor any provider.
"""

from .models import DEFAULT_IR_VERSION, DEFAULT_OPSET, make_model, node_model, tensor_type_of
from .oracle import (
    assert_matches_onnxruntime,
    assert_outputs_match,
    check_node,
    expected_outputs,
    run_onnxruntime,
    run_ort,
    run_reference,
)

__all__ = ["make_model", "node_model", "tensor_type_of", "DEFAULT_OPSET", "DEFAULT_IR_VERSION",
           "assert_matches_onnxruntime", "assert_outputs_match", "check_node",
           "expected_outputs", "run_onnxruntime", "run_ort", "run_reference"]
