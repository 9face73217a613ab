"""``NodeArg`` and ``ModelMetadata``: what a session reports about its model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from onnx import ModelProto, ValueInfoProto

from ..element_types import type_string

__all__ = ["NodeArg", "ModelMetadata", "node_arg_of"]

#: ONNX Runtime reports an unset model version as INT64_MAX.
_UNSET_VERSION = 9223372036854775807


class NodeArg:
    """Name, type string and shape of a model input or output (``onnxruntime.NodeArg``).

    ``shape`` lists ints for fixed dims, the symbol (``'batch'``) for symbolic ones and None for
    unknown ones; like ONNX Runtime it is ``[]`` for scalars, non-tensors and unknown rank.
    """

    __slots__ = ("name", "type", "shape")

    def __init__(self, name: str, type: str, shape: list[Any]) -> None:  # noqa: A002
        self.name = name
        self.type = type
        self.shape = shape

    def __str__(self) -> str:
        return f"NodeArg(name={self.name!r}, type={self.type!r}, shape={self.shape!r})"

    __repr__ = __str__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NodeArg) and (self.name, self.type, self.shape) == (
            other.name, other.type, other.shape)

    def __hash__(self) -> int:
        return hash((self.name, self.type))


def node_arg_of(value_info: ValueInfoProto) -> NodeArg:
    """Build the :class:`NodeArg` of a graph input or output."""
    tp = value_info.type
    shape: list[Any] = []
    if tp.WhichOneof("value") == "tensor_type" and tp.tensor_type.HasField("shape"):
        for dim in tp.tensor_type.shape.dim:
            if dim.HasField("dim_value"):
                shape.append(int(dim.dim_value))
            elif dim.HasField("dim_param") and dim.dim_param:
                shape.append(dim.dim_param)
            else:
                shape.append(None)
    return NodeArg(value_info.name, type_string(tp), shape)


@dataclass(frozen=True)
class ModelMetadata:
    """The model's descriptive fields (``onnxruntime.ModelMetadata``)."""

    producer_name: str = ""
    graph_name: str = ""
    domain: str = ""
    description: str = ""
    graph_description: str = ""
    version: int = _UNSET_VERSION
    custom_metadata_map: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of_model(cls, model: ModelProto) -> ModelMetadata:
        """Read the metadata of a ``ModelProto``."""
        return cls(
            producer_name=model.producer_name,
            graph_name=model.graph.name,
            domain=model.domain,
            description=model.doc_string,
            graph_description=model.graph.doc_string,
            version=model.model_version if model.HasField("model_version") else _UNSET_VERSION,
            custom_metadata_map={p.key: p.value for p in model.metadata_props},
        )
