"""CPU kernels: onnxruntime's ``com.microsoft.nchwc`` ops (blocked-channel layout), which
models saved offline at onnxruntime's highest optimization level (ORT_ENABLE_ALL, the default
level of a session with ``optimized_model_filepath``) carry.

Semantics follow onnxruntime's NCHWc transformer and its CPU kernels' observed behaviour;
every op is declared to the core in ``SCHEMAS`` (:mod:`.contrib_schema`).
"""

from __future__ import annotations

from ort.ep import DeclaredSchema, KernelTable

kernels = KernelTable()

#: The contrib ops of this module, declared to the core.
SCHEMAS: list[DeclaredSchema] = []
