"""Everything an execution-provider author uses, in one namespace.

A provider distribution imports ``ort`` and ``ort.ep`` and nothing else of ort's::

    import ort
    from ort.ep import ExecutionProvider, KernelTable, NodeInfo, ProviderSpec

    kernels = KernelTable()

    @kernels.register("Relu", since=6)
    def relu(node: NodeInfo):
        def compute(x):
            return (node.xp.maximum(x, 0),)
        return compute

    class FooExecutionProvider(ExecutionProvider):
        name = "FooExecutionProvider"

    @ort.hookimpl
    def ort_register_providers(registry):
        registry.register(ProviderSpec(name=FooExecutionProvider.name,
                                       factory=FooExecutionProvider))

    @ort.hookimpl
    def ort_register_kernels(registry):
        registry.add(FooExecutionProvider.name, kernels)

What is here:

* the provider contract: :class:`ExecutionProvider` (capability, compile, device copies),
  :class:`FusedSubgraph` claims, :class:`OrtDevice` and the allocator contract;
* kernels: :class:`KernelTable` (the ``register`` decorator), :class:`KernelDef`,
  :class:`NodeInfo` (what a kernel factory sees);
* the output-size guard (:mod:`ort.ep.limits`): :func:`check_output_size`, which kernels apply
  (through ``NodeInfo.check_output_size``) before allocating an output sized by values, so that
  an output larger than the machine's memory or ``session.max_output_bytes`` is
  :class:`ort.Fail`, never ``MemoryError`` or the OOM killer;
* the compiler as providers see it: :class:`CompileContext`, :class:`CompiledGraph`;
* plugins: :data:`hookimpl`, the hook specifications (:mod:`ort.ep.hookspecs`), the
  registrars the hooks receive, :class:`ProviderSpec`, :class:`DeclaredSchema`, and discovery
  (:func:`register_plugin` for plugins that are not installed distributions,
  :func:`plugin_failures`);
* the graph a provider inspects in ``get_capability`` (:class:`Graph`, :class:`Node`) and
  the element-type tables (``np_dtype_of``, ...).
"""

from ..ir import REQUIRED, DeclaredSchema, Graph, Node, attribute_value
from ..element_types import ELEMENT_TYPE_NAMES, dtype_name, element_type_of_dtype, np_dtype_of
from .compile import CompileContext, CompiledGraph
from .device import HostAllocator, OrtAllocatorType, OrtDevice, OrtMemoryInfo, OrtMemType
from .discovery import (
    ENTRY_POINT_GROUP,
    get_registry,
    loaded_plugins,
    plugin_failures,
    register_plugin,
    reset,
    unregister_plugin,
)
from .hookspecs import hookimpl, hookspec
from .kernels import ComputeFn, KernelDef, KernelFactory, KernelTable, NodeInfo
from .limits import (
    MAX_OUTPUT_BYTES_KEY,
    check_output_size,
    machine_memory_bytes,
    max_output_bytes_of,
    output_nbytes,
)
from .provider import ExecutionProvider, FusedSubgraph, KernelLookup
from .registry import (
    DuplicateRegistrationError,
    KernelRegistrar,
    PluginFailure,
    ProviderRegistrar,
    ProviderSpec,
    Registry,
    SchemaRegistrar,
)

__all__ = [
    "ExecutionProvider", "FusedSubgraph", "KernelLookup",
    "OrtDevice", "OrtMemoryInfo", "OrtAllocatorType", "OrtMemType", "HostAllocator",
    "KernelTable", "KernelDef", "NodeInfo", "ComputeFn", "KernelFactory",
    "check_output_size", "output_nbytes", "machine_memory_bytes", "max_output_bytes_of",
    "MAX_OUTPUT_BYTES_KEY",
    "CompileContext", "CompiledGraph",
    "hookimpl", "hookspec", "ProviderSpec", "ProviderRegistrar", "KernelRegistrar",
    "SchemaRegistrar", "DeclaredSchema", "REQUIRED", "Registry", "DuplicateRegistrationError",
    "PluginFailure", "ENTRY_POINT_GROUP", "get_registry", "register_plugin",
    "unregister_plugin", "plugin_failures", "loaded_plugins", "reset",
    "Graph", "Node", "attribute_value",
    "ELEMENT_TYPE_NAMES", "np_dtype_of", "element_type_of_dtype", "dtype_name",
]
