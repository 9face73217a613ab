"""The official ONNX backend test suite (``onnx.backend.test``) run over ``ort_backend``.

Node, simple, pytorch-converted, pytorch-operator and the bundled real ("light") models, on
every device ``ort_backend.supports_device`` accepts. Expected outcomes live in
``expected_outcomes.txt`` beside this file (see ``conftest.py``).
"""

import onnx.backend.test

import ort_backend

backend_test = onnx.backend.test.BackendTest(ort_backend, __name__)

globals().update(backend_test.test_cases)
