"""``OrtBackend`` and ``OrtBackendRep``: run ONNX models and single nodes through ort sessions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import ModelProto, NodeProto, helper
from onnx.backend.base import Backend, BackendRep, namedtupledict

import ort

__all__ = ["OrtBackend", "OrtBackendRep"]

#: The newest IR version sessions understand: that of the installed onnx package.
MAX_IR_VERSION = onnx.IR_VERSION


def element_type_of_dtype(dtype: Any) -> int:
    """The ``TensorProto`` element type of a numpy dtype (str/bytes/object: STRING)."""
    dtype = np.dtype(dtype)
    if dtype.kind in "USO":
        return onnx.TensorProto.STRING
    return helper.np_dtype_to_tensor_dtype(dtype)

#: Backend device name -> the provider list a session gets.
_DEVICE_PROVIDERS = {
    "CPU": ["CPUExecutionProvider"],
    "CUDA": ["CUDAExecutionProvider", "CPUExecutionProvider"],
}


def _providers_for(device: str) -> list[str]:
    kind = str(device).upper().split(":")[0]
    if kind not in _DEVICE_PROVIDERS:
        raise ValueError(f"unknown backend device {device!r}; use one of {sorted(_DEVICE_PROVIDERS)}")
    if kind != "CPU" and not OrtBackend.supports_device(kind):
        reasons = ort.unavailable_providers()
        raise ort.EPFail(
            f"device {device!r} is not usable here: "
            f"{reasons.get(_DEVICE_PROVIDERS[kind][0], 'its provider is not installed')}"
        )
    return _DEVICE_PROVIDERS[kind]


def _session_options(kwargs: Mapping[str, Any]) -> ort.SessionOptions:
    options = ort.SessionOptions()
    for key, value in kwargs.items():
        if key in ("rtol", "atol"):  # passed through by onnx's test runner
            continue
        if not hasattr(options, key) or key.startswith("_"):
            raise ValueError(f"unknown session option {key!r} passed to the backend")
        setattr(options, key, value)
    return options


class OrtBackendRep(BackendRep):
    """A prepared model: ``run(inputs)`` with inputs as a list (graph-input order), a dict, or
    a single array."""

    def __init__(self, session: ort.InferenceSession, input_names: Sequence[str]) -> None:
        self.session = session
        self.input_names = list(input_names)
        self.output_names = [o.name for o in session.get_outputs()]

    def run(self, inputs: Any, **kwargs: Any) -> tuple[Any, ...]:
        """Run the model; returns the outputs as a named tuple."""
        if isinstance(inputs, Mapping):
            feed = dict(inputs)
        elif isinstance(inputs, (list, tuple)):
            if len(inputs) > len(self.input_names):
                raise ValueError(
                    f"got {len(inputs)} inputs but the model has {len(self.input_names)}: {self.input_names}"
                )
            feed = dict(zip(self.input_names, inputs))
        else:
            feed = {self.input_names[0]: inputs}
        outputs = self.session.run(None, feed)
        return namedtupledict("Outputs", self.output_names)(*outputs)


class OrtBackend(Backend):
    """The ONNX backend over ort sessions; devices ``'CPU'`` and ``'CUDA'``."""

    @classmethod
    def is_compatible(cls, model: ModelProto, device: str = "CPU", **kwargs: Any) -> bool:
        """Whether ort can load the model's IR and opset versions on ``device``."""
        if model.ir_version > MAX_IR_VERSION:
            return False
        newest = onnx.defs.onnx_opset_version()
        for opset in model.opset_import:
            if opset.domain in ("", "ai.onnx") and opset.version > newest:
                return False
        return cls.supports_device(device)

    @classmethod
    def prepare(cls, model: ModelProto | bytes | str, device: str = "CPU", **kwargs: Any) -> OrtBackendRep:
        """Create a session for ``model`` on ``device``; kwargs set SessionOptions attributes,
        except ``providers``, which replaces the device's provider list (a third-party provider
        running the suite puts itself in front: ``providers=["MyEP", "CPUExecutionProvider"]``)."""
        kwargs = dict(kwargs)
        providers = kwargs.pop("providers", None) or _providers_for(device)
        session = ort.InferenceSession(
            model, sess_options=_session_options(kwargs), providers=providers
        )
        # positional inputs: the inputs callers must feed, then overridable initializers
        names = [i.name for i in session.get_inputs()]
        names += [i.name for i in session.get_overridable_initializers()]
        return OrtBackendRep(session, names)

    @classmethod
    def run_model(cls, model: ModelProto, inputs: Any, device: str = "CPU", **kwargs: Any) -> tuple[Any, ...]:
        """Prepare ``model`` and run it once on ``inputs``."""
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(cls, node: NodeProto, inputs: Any, device: str = "CPU",
                 outputs_info: Sequence[tuple[Any, Any]] | None = None, **kwargs: Any) -> tuple[Any, ...]:
        """Run one node on ``inputs`` (a list in the node's input order, or a dict).

        ``outputs_info`` optionally gives ``(element type, shape)`` per output; kwarg
        ``opset_version`` picks the ai.onnx opset (default: the newest onnx knows).
        """
        opset = kwargs.pop("opset_version", onnx.defs.onnx_opset_version())
        names = [n for n in node.input if n]
        if isinstance(inputs, Mapping):
            values = [inputs[n] for n in names]
        else:
            values = list(inputs)
            if len(values) != len(names):
                raise ValueError(f"node {node.op_type} has {len(names)} inputs, got {len(values)} values")
        graph_inputs = []
        for name, value in zip(names, values):
            array = np.asarray(value)
            graph_inputs.append(helper.make_tensor_value_info(
                name, element_type_of_dtype(array.dtype), array.shape))
        graph_outputs = []
        for i, name in enumerate(o for o in node.output if o):
            if outputs_info is not None and i < len(outputs_info):
                elem, shape = outputs_info[i]
                elem_type = elem if isinstance(elem, int) else element_type_of_dtype(np.dtype(elem))
                graph_outputs.append(helper.make_tensor_value_info(name, elem_type, shape))
            else:
                graph_outputs.append(helper.make_empty_tensor_value_info(name))
        imports = [helper.make_opsetid("", opset)]
        if node.domain not in ("", "ai.onnx"):
            imports.append(helper.make_opsetid(node.domain, kwargs.pop("domain_version", 1)))
        model = helper.make_model(
            helper.make_graph([node], f"run_node_{node.op_type}", graph_inputs, graph_outputs),
            opset_imports=imports,
        )
        model.ir_version = min(model.ir_version, MAX_IR_VERSION)
        rep = cls.prepare(model, device, **kwargs)
        return rep.run(dict(zip(names, values)))

    @classmethod
    def supports_device(cls, device: str) -> bool:
        """``'CPU'`` always; ``'CUDA'`` when CUDAExecutionProvider is installed and usable."""
        kind = str(device).upper().split(":")[0]
        if kind == "CPU":
            return "CPUExecutionProvider" in ort.get_available_providers()
        if kind == "CUDA":
            return "CUDAExecutionProvider" in ort.get_available_providers()
        return False
