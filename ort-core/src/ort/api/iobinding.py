"""``IOBinding``: inputs and outputs bound to memory before a run (``session.io_binding()``).

Inputs may live on the host or on a provider's device (an OrtValue, a numpy array, or a raw
``buffer_ptr`` wrapped without copying); the session plans once per combination of input
devices, so a device input consumed on its own device is never copied. Outputs are either
allocated by the session on the device asked for (shapes may be dynamic) or written into
pre-allocated memory (an OrtValue or a ``buffer_ptr`` of a fixed shape).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..ep import ExecutionProvider
from ..errors import Fail
from .metadata import NodeArg
from .ortvalue import OrtValue, _as_dtype, device_provider

__all__ = ["IOBinding", "BindableSession"]


class BindableSession(Protocol):
    """What an IOBinding needs of its session: the names it may bind (the session's public
    metadata; runs go through ``session.run_with_iobinding(binding)``)."""

    def get_inputs(self) -> list[NodeArg]:
        """The inputs callers feed."""

    def get_overridable_initializers(self) -> list[NodeArg]:
        """Initializers callers may feed too."""

    def get_outputs(self) -> list[NodeArg]:
        """The outputs."""


def _device_name(device_type: Any) -> str:
    """'cpu', 'cuda', ... from a string or an :class:`ort.OrtDevice`."""
    if hasattr(device_type, "type_name"):
        return str(device_type.type_name)
    return str(device_type).lower()


def _device_id(device_type: Any, device_id: int) -> int:
    return int(device_type.device_id()) if hasattr(device_type, "device_id") else int(device_id)


@dataclass
class _OutputBinding:
    """Where one output goes: a device to allocate on, or pre-allocated memory."""

    provider: ExecutionProvider | None  # None: host
    target: OrtValue | None = None  # pre-allocated memory, written into after the run


class IOBinding:
    """Inputs and outputs of one session bound ahead of :meth:`InferenceSession.run_with_iobinding`
    (``onnxruntime.IOBinding``)."""

    def __init__(self, session: BindableSession) -> None:
        self._session = session
        self._input_names = {arg.name for arg in session.get_inputs()} | {
            arg.name for arg in session.get_overridable_initializers()}
        self._output_names = {arg.name for arg in session.get_outputs()}
        self._inputs: dict[str, OrtValue] = {}
        self._outputs: dict[str, _OutputBinding] = {}
        self._results: list[OrtValue] = []

    # -- inputs -------------------------------------------------------------------------------
    def _check_input_name(self, name: str) -> None:
        if name not in self._input_names:
            raise Fail(f"Failed to find NodeArg with name: {name} in the def list")

    def bind_cpu_input(self, name: str, arr_on_cpu: Any) -> None:
        """Bind a host array (not copied) to input ``name``."""
        self._check_input_name(name)
        self._inputs[name] = OrtValue(np.asarray(arr_on_cpu))

    def bind_input(self, name: str, device_type: Any, device_id: int, element_type: Any,
                   shape: Sequence[int], buffer_ptr: int) -> None:
        """Bind memory at ``buffer_ptr`` on ``device_type``/``device_id`` (not copied, not
        owned: keep it alive until the run ends) as a tensor of ``element_type`` (numpy dtype
        or ONNX ``TensorProto`` enum) and ``shape``."""
        self._check_input_name(name)
        provider = device_provider(_device_name(device_type), _device_id(device_type, device_id))
        dtype = _as_dtype(element_type)
        dims = [int(d) for d in shape]
        host = provider if provider is not None else ExecutionProvider()
        self._inputs[name] = OrtValue(host.from_pointer(int(buffer_ptr), dims, dtype), provider)

    def bind_ortvalue_input(self, name: str, ortvalue: OrtValue) -> None:
        """Bind an OrtValue (on any device) to input ``name``."""
        self._check_input_name(name)
        if not isinstance(ortvalue, OrtValue):
            raise TypeError(f"bind_ortvalue_input takes an OrtValue, got {type(ortvalue).__name__}")
        self._inputs[name] = ortvalue

    # -- outputs ------------------------------------------------------------------------------
    def _check_output_name(self, name: str) -> None:
        if name not in self._output_names:
            raise Fail(f"Failed to find NodeArg with name: {name} in the def list")

    def bind_output(self, name: str, device_type: Any = "cpu", device_id: int = 0,
                    element_type: Any = None, shape: Sequence[int] | None = None,
                    buffer_ptr: int | None = None) -> None:
        """Bind output ``name``: without ``buffer_ptr`` the session allocates it on
        ``device_type`` at run time (any shape); with ``buffer_ptr``, ``element_type`` and
        ``shape`` the result is written into that memory, whose shape must match."""
        self._check_output_name(name)
        provider = device_provider(_device_name(device_type), _device_id(device_type, device_id))
        target = None
        if buffer_ptr is not None:
            if element_type is None or shape is None:
                raise ValueError("bind_output with buffer_ptr needs element_type and shape")
            host = provider if provider is not None else ExecutionProvider()
            dims = [int(d) for d in shape]
            target = OrtValue(host.from_pointer(int(buffer_ptr), dims, _as_dtype(element_type)),
                              provider)
        self._outputs[name] = _OutputBinding(provider, target)

    def bind_ortvalue_output(self, name: str, ortvalue: OrtValue) -> None:
        """Bind output ``name`` to pre-allocated memory held by an OrtValue."""
        self._check_output_name(name)
        if not isinstance(ortvalue, OrtValue):
            raise TypeError(f"bind_ortvalue_output takes an OrtValue, got {type(ortvalue).__name__}")
        self._outputs[name] = _OutputBinding(ortvalue.provider, ortvalue)

    # -- results ------------------------------------------------------------------------------
    def get_outputs(self) -> list[OrtValue]:
        """The outputs of the last run, in binding order, on their bound devices."""
        return list(self._results)

    def copy_outputs_to_cpu(self) -> list[Any]:
        """The outputs of the last run as host values (numpy arrays; sequences as lists)."""
        return [value.numpy() if value.is_tensor() else value.value for value in self._results]

    def clear_binding_inputs(self) -> None:
        """Forget every bound input."""
        self._inputs.clear()

    def clear_binding_outputs(self) -> None:
        """Forget every bound output (and the last results)."""
        self._outputs.clear()
        self._results = []

    def synchronize_inputs(self) -> None:
        """Wait until the devices holding bound inputs have finished writing them."""
        for value in self._inputs.values():
            if value.provider is not None:
                value.provider.synchronize()

    def synchronize_outputs(self) -> None:
        """Wait until the devices holding outputs have finished computing them."""
        for binding in self._outputs.values():
            if binding.provider is not None:
                binding.provider.synchronize()

    # -- used by the session ------------------------------------------------------------------
    @property
    def bound_inputs(self) -> dict[str, OrtValue]:
        """Input name -> bound value."""
        return self._inputs

    @property
    def bound_outputs(self) -> dict[str, _OutputBinding]:
        """Output name -> where it goes."""
        return self._outputs

    def _set_results(self, results: list[OrtValue]) -> None:
        self._results = results
