"""The model as ort holds it: loading, type inference, validation, the graph IR, op schemas
and the weights a session moves out of the protobuf.

Everything above this layer (providers, the optimizer, the runtime, the public API) reads
models through it; it imports only the base (:mod:`ort.errors`, :mod:`ort.element_types`).
"""

from .graph import Graph, Node, subgraph_free_names, subgraphs_of
from .loading import MAX_IR_VERSION, infer_types, load_model
from .schemas import REQUIRED, DeclaredSchema, SchemaTable, attribute_defaults, schema_version
from .tensors import attribute_value, constant_value, tensor_to_array
from .validation import validate_model
from .weights import DETACH_BYTES, WeightStore

__all__ = [
    "Graph", "Node", "subgraph_free_names", "subgraphs_of", "MAX_IR_VERSION", "infer_types",
    "load_model", "REQUIRED", "DeclaredSchema", "SchemaTable", "attribute_defaults",
    "schema_version", "attribute_value", "constant_value", "tensor_to_array", "DETACH_BYTES",
    "WeightStore", "validate_model",
]
