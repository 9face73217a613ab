"""Kernel declarations: what a provider can run, and what a kernel sees when it is prepared.

A *kernel factory* is called once per node at session creation with a :class:`NodeInfo`
(attributes parsed and defaulted, constant inputs, element types, the array namespace ``xp``)
and returns a *compute function*: a plain function of input arrays that returns a tuple with
one entry per node output. All parsing and validation of attributes happens in the factory, so
the compute function does only arithmetic::

    from ort.ep import KernelTable

    kernels = KernelTable()

    @kernels.register("LeakyRelu", since=6)
    def leaky_relu(node):
        alpha = node.attrs["alpha"]          # schema default (0.01) filled in
        xp = node.xp

        def compute(x):
            return (xp.where(x >= 0, x, x * x.dtype.type(alpha)),)

        return compute

A provider hands its table to core from its ``ort_register_kernels`` hook.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np
from onnx import GraphProto

from ..errors import Fail, OrtError
from .compile import CompiledGraph, CompileContext
from .limits import machine_memory_bytes, output_nbytes, output_size_error

__all__ = ["ComputeFn", "KernelFactory", "KernelDef", "KernelTable", "NodeInfo"]

#: A compute function: arrays in, a tuple of arrays (one per node output) out.
ComputeFn = Callable[..., Sequence[Any]]
#: A kernel factory: called once per node, returns the node's compute function.
KernelFactory = Callable[["NodeInfo"], ComputeFn]


@dataclass(frozen=True)
class KernelDef:
    """One registered kernel: an op of a domain over a range of opset versions.

    ``since_version``/``until_version`` bound the *schema* versions of the op this kernel
    implements (``until_version=None``: up to the newest). ``input_types`` optionally limits
    the element types (ONNX Runtime names such as ``'float'``) accepted per input index; an
    absent index accepts every type the schema allows. ``host_inputs`` lists input indices
    the kernel needs in host memory (shape-like inputs such as Reshape's ``shape``), as ONNX
    Runtime's ``InputMemoryType<OrtMemTypeCPUInput>`` does. ``shape_only_inputs`` lists inputs
    whose ``shape``/``dtype`` alone the kernel reads (Shape, Size): they are handed over from
    any device without a copy.
    """

    op_type: str
    domain: str
    since_version: int
    until_version: int | None
    factory: KernelFactory
    input_types: Mapping[int, frozenset[str]] = field(default_factory=dict)
    host_inputs: tuple[int, ...] = ()
    shape_only_inputs: tuple[int, ...] = ()

    def covers(self, version: int) -> bool:
        """Return whether this kernel implements schema version ``version`` of its op."""
        return self.since_version <= version and (
            self.until_version is None or version <= self.until_version
        )

    def accepts(self, input_type_names: Sequence[str | None]) -> bool:
        """Return whether the element types of a node's inputs are ones this kernel takes
        (``None``: unknown type, accepted)."""
        for index, allowed in self.input_types.items():
            if index < len(input_type_names):
                name = input_type_names[index]
                if name is not None and name not in allowed:
                    return False
        return True

    def version_range(self) -> str:
        """Return the version range as text, e.g. ``'13+'`` or ``'7-12'``."""
        if self.until_version is None:
            return f"{self.since_version}+"
        return f"{self.since_version}-{self.until_version}"


class KernelTable:
    """An ordered collection of :class:`KernelDef` that a provider fills with decorators."""

    def __init__(self) -> None:
        self._defs: list[KernelDef] = []

    def register(
        self,
        op_type: str,
        since: int,
        until: int | None = None,
        *,
        domain: str = "",
        input_types: Mapping[int, Sequence[str]] | None = None,
        host_inputs: Sequence[int] = (),
        shape_only_inputs: Sequence[int] = (),
    ) -> Callable[[KernelFactory], KernelFactory]:
        """Decorator: register the decorated factory for ``domain:op_type`` versions
        ``since..until`` (inclusive; ``until=None`` means no upper bound)."""
        if until is not None and until < since:
            raise ValueError(f"{op_type}: until_version {until} < since_version {since}")
        types = {int(i): frozenset(t) for i, t in (input_types or {}).items()}

        def decorate(factory: KernelFactory) -> KernelFactory:
            self._defs.append(
                KernelDef(op_type, domain, since, until, factory, types, tuple(host_inputs),
                          tuple(shape_only_inputs))
            )
            return factory

        return decorate

    def add(self, kernel_def: KernelDef) -> None:
        """Add a ready-made :class:`KernelDef` (e.g. one reused from another provider)."""
        self._defs.append(kernel_def)

    def extend(self, other: KernelTable) -> None:
        """Add every kernel of ``other``."""
        self._defs.extend(other._defs)

    def __iter__(self) -> Iterator[KernelDef]:
        return iter(self._defs)

    def __len__(self) -> int:
        return len(self._defs)


@dataclass
class NodeInfo:
    """What a kernel factory knows about the node it prepares.

    Attributes:
        name: the node's name (may be empty in the model; ort then names it ``<op>_<index>``).
        op_type, domain: the operator.
        opset: the model's opset for ``domain`` (not the schema's ``since_version``).
        since_version: the schema version of the op at that opset (what kernels key on).
        attrs: attribute values with schema defaults filled in: ints, floats, ``str`` for
            strings, lists, numpy arrays for tensors, ``onnx.GraphProto`` for subgraphs.
        input_names, output_names: value names (``''`` marks an omitted optional input).
        input_dtypes, output_dtypes: numpy dtypes when known from type inference, else None.
        input_shapes, output_shapes: shapes with ``int``/``str``/``None`` dims, or None.
        const_inputs: the value of each input that is a constant initializer, else None.
        xp: the array namespace of the provider (numpy on CPU, cupy on CUDA).
        provider: the provider instance the kernel runs on.
        graph: the :class:`ort.ep.Graph` the node belongs to.
        implicit_input_names: outer-scope values the node's subgraphs read; the compute
            function receives their values after the regular inputs, in this order.
        context: the session's :class:`~ort.ep.CompileContext` (what :meth:`subgraph` uses);
            None where kernels are prepared outside a session (tests).
    """

    name: str
    op_type: str
    domain: str
    opset: int
    since_version: int
    attrs: dict[str, Any]
    input_names: list[str]
    output_names: list[str]
    input_dtypes: list[np.dtype | None]
    output_dtypes: list[np.dtype | None]
    input_shapes: list[tuple[Any, ...] | None]
    output_shapes: list[tuple[Any, ...] | None]
    const_inputs: list[Any]
    xp: ModuleType = np
    provider: Any = None
    graph: Any = None
    implicit_input_names: list[str] = field(default_factory=list)
    context: CompileContext | None = None

    @property
    def num_inputs(self) -> int:
        """Number of inputs the node lists, omitted optional ones included."""
        return len(self.input_names)

    @property
    def num_outputs(self) -> int:
        """Number of outputs the node lists, omitted optional ones included."""
        return len(self.output_names)

    def has_input(self, index: int) -> bool:
        """Return whether optional input ``index`` is present (listed and not ``''``)."""
        return index < len(self.input_names) and self.input_names[index] != ""

    def has_output(self, index: int) -> bool:
        """Return whether optional output ``index`` is requested (listed and not ``''``)."""
        return index < len(self.output_names) and self.output_names[index] != ""

    def subgraph(self, body: str | GraphProto) -> CompiledGraph:
        """A graph compiled over the session's providers: the graph attribute named ``body``
        (control-flow kernels call this in their factory), or a ``GraphProto`` the kernel
        built from nodes of :attr:`graph`."""
        proto = self.attrs.get(body) if isinstance(body, str) else body
        if not isinstance(proto, GraphProto):
            raise ValueError(f"{self.describe()} has no graph attribute '{body}'")
        if self.context is None:
            raise RuntimeError(f"{self.describe()}: subgraphs cannot be compiled outside a "
                               "session (NodeInfo.context is None)")
        return self.context.compile_subgraph(proto, self.graph)

    @property
    def pooled_min_bytes(self) -> int | None:
        """The size from which :meth:`empty` takes memory from the session's arena (None: no
        arena); below it, a kernel may as well let numpy allocate."""
        arena = getattr(self.provider, "host_arena", None)
        return None if arena is None else arena.min_bytes

    @functools.cached_property
    def max_output_bytes(self) -> int | None:
        """The most bytes one output of this node may take: the session's
        ``session.max_output_bytes`` config entry, or None (the machine's memory)."""
        return getattr(self.context, "max_output_bytes", None)

    @property
    def intra_op_threads(self) -> int:
        """The threads one kernel call may use: the session's
        ``SessionOptions.intra_op_num_threads``, or 0 where it is 0 (the provider's default:
        one per core) or unknown (kernels prepared outside a session)."""
        return getattr(self.context, "intra_op_threads", 0)

    @functools.cached_property
    def _output_bound(self) -> int:
        """:attr:`max_output_bytes` resolved (the machine's memory where None)."""
        limit = self.max_output_bytes
        return machine_memory_bytes() if limit is None else limit

    def check_output_size(self, shape: Sequence[int], dtype: Any,
                          error: type[OrtError] = Fail) -> None:
        """Raise ``error`` (:class:`ort.Fail`) naming this node, the shape, the bytes and the
        limit when an output of ``shape`` and ``dtype`` would take more than
        :attr:`max_output_bytes` (see :mod:`ort.ep.limits`). Call it before allocating an
        output whose size comes from values (a shape input, repeats, pads, scales); it costs
        a product and a comparison."""
        nbytes = output_nbytes(shape, dtype)
        if nbytes > self._output_bound:
            raise output_size_error(self.describe, shape, dtype, nbytes,
                                    self.max_output_bytes, error)

    def empty(self, shape: Sequence[int], dtype: Any) -> Any:
        """An uninitialized output array on the provider's device: from the session's host
        arena when the provider has one, else ``xp.empty``. Kernels that fill a fresh output
        should allocate it here (and compute into it with ``out=``) so that large outputs
        reuse memory across runs instead of page-faulting. An output larger than
        :attr:`max_output_bytes` is :class:`ort.Fail` (:meth:`check_output_size`)."""
        nbytes = output_nbytes(shape, dtype)
        if nbytes > self._output_bound:
            raise output_size_error(self.describe, shape, dtype, nbytes, self.max_output_bytes)
        arena = getattr(self.provider, "host_arena", None)
        if arena is not None:
            return arena.empty(shape, dtype)
        return self.xp.empty(tuple(shape), dtype=dtype)

    def describe(self) -> str:
        """Return ``"Op(version) node 'name'"`` for error messages."""
        op = f"{self.domain}:{self.op_type}" if self.domain else self.op_type
        return f"{op}({self.since_version}) node '{self.name}'"
