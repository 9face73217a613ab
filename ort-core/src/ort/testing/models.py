"""Small models for tests: a graph from ``onnx.helper`` pieces, or one node fed sample arrays."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from onnx import FunctionProto, ModelProto, NodeProto, TensorProto, ValueInfoProto, helper, numpy_helper

__all__ = ["make_model", "node_model", "tensor_type_of", "DEFAULT_OPSET", "DEFAULT_IR_VERSION"]

#: The ai.onnx opset models get unless a test asks for another (one onnxruntime runs).
DEFAULT_OPSET = 21
#: The IR version models get unless a test asks for another (one onnxruntime reads).
DEFAULT_IR_VERSION = 10


def tensor_type_of(dtype: Any) -> int:
    """The ``TensorProto`` element type of a numpy dtype (str, bytes and object: STRING)."""
    dtype = np.dtype(dtype)
    if dtype.kind in "USO":
        return TensorProto.STRING
    return helper.np_dtype_to_tensor_dtype(dtype)


def make_model(nodes: Iterable[NodeProto], inputs: Iterable[ValueInfoProto],
               outputs: Iterable[ValueInfoProto], initializers: Iterable[TensorProto] = (), *,
               opset: int = DEFAULT_OPSET, opsets: Mapping[str, int] | None = None,
               ir_version: int = DEFAULT_IR_VERSION, functions: Iterable[FunctionProto] = (),
               name: str = "g", **kwargs: Any) -> ModelProto:
    """A model of one graph built from ``onnx.helper`` pieces.

    ``opset`` is the ai.onnx opset; ``opsets`` adds (or overrides) other domains'
    (``{"com.microsoft": 1}``); other keyword arguments go to ``helper.make_model``."""
    imports = {"": opset, **dict(opsets or {})}
    graph = helper.make_graph(list(nodes), name, list(inputs), list(outputs),
                              initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v)
                                                   for d, v in imports.items()],
                             ir_version=ir_version, functions=list(functions), **kwargs)


def node_model(op_type: str, inputs: Sequence[Any], attrs: Mapping[str, Any] | None = None, *,
               outputs: int | Sequence[bool] = 1, domain: str = "", opset: int = DEFAULT_OPSET,
               domain_opset: int = 1, constants: Collection[int] = (),
               output_types: Sequence[Any] | None = None, ir_version: int = DEFAULT_IR_VERSION,
               name: str = "", keep_trailing_omitted: bool = False,
               input_shapes: bool = True) -> tuple[ModelProto, dict[str, np.ndarray]]:
    """A one-node model of ``domain:op_type`` and the feeds that run it.

    Args:
        inputs: a sample value per input (converted with ``np.asarray``); None omits an
            optional input. Trailing omitted inputs are dropped (onnxruntime fails on them)
            unless ``keep_trailing_omitted``.
        attrs: the node's attributes.
        outputs: how many outputs the node lists, or one flag per output (False: omitted).
        constants: indices of ``inputs`` that become initializers instead of feeds.
        output_types: numpy dtypes of the outputs (None: outputs are declared untyped).
        domain, domain_opset: a non-ONNX domain and the opset imported for it.
        name: the node's name (partition reports and profiles name nodes by it).
        input_shapes: declare the inputs' shapes (False: their rank and dims are left open).

    Inputs are named ``in0, in1, ...`` and outputs ``out0, out1, ...``."""
    values = list(inputs)
    while values and values[-1] is None and not keep_trailing_omitted:
        values.pop()
    names: list[str] = []
    graph_inputs, initializers, feeds = [], [], {}
    for i, value in enumerate(values):
        if value is None:
            names.append("")
            continue
        input_name = f"in{i}"
        names.append(input_name)
        array = np.asarray(value)
        if i in constants:
            initializers.append(numpy_helper.from_array(array, input_name))
        else:
            graph_inputs.append(helper.make_tensor_value_info(
                input_name, tensor_type_of(array.dtype), array.shape if input_shapes else None))
            feeds[input_name] = value
    wanted = [True] * outputs if isinstance(outputs, int) else [bool(w) for w in outputs]
    out_names = [f"out{i}" if want else "" for i, want in enumerate(wanted)]
    declared = [n for n in out_names if n]
    if output_types is None:
        graph_outputs = [helper.make_empty_tensor_value_info(n) for n in declared]
    else:
        graph_outputs = [helper.make_tensor_value_info(n, tensor_type_of(t), None)
                         for n, t in zip(declared, output_types)]
    node = helper.make_node(op_type, names, out_names, name=name or None, domain=domain or None,
                            **dict(attrs or {}))
    model = make_model([node], graph_inputs, graph_outputs, initializers, opset=opset,
                       opsets={domain: domain_opset} if domain else None, ir_version=ir_version)
    return model, feeds
