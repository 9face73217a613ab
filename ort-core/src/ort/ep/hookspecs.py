"""The hooks a plugin implements: the whole plugin API of ort, in one module.

A plugin is any module or object with ``@ort.hookimpl`` functions whose names match the specs
below. Installed distributions expose it in the entry-point group ``ort``::

    # pyproject.toml of ort-provider-foo
    [project.entry-points.ort]
    foo = "ort_provider_foo.plugin"

Plugins are found at first use (not at ``import ort``). Hooks receive a *registrar* and call
it, rather than returning lists, so that every registration is checked (duplicates raise and
name both owners) and attributed to the plugin that made it. A plugin whose import or hook
raises is reported by :func:`ort.ep.plugin_failures` and a warning, and the others go on.

The CPU provider is an ordinary plugin built on exactly these hooks.
"""

from __future__ import annotations

import pluggy

from .registry import KernelRegistrar, ProviderRegistrar, SchemaRegistrar

__all__ = ["hookspec", "hookimpl", "ort_register_providers", "ort_register_kernels",
           "ort_register_schemas"]

#: Marks a function of this module as a hook specification.
hookspec = pluggy.HookspecMarker("ort")
#: Marks a plugin's function as the implementation of a hook (``@ort.hookimpl``).
hookimpl = pluggy.HookimplMarker("ort")


@hookspec
def ort_register_providers(registry: ProviderRegistrar) -> None:
    """Register execution providers.

    Call ``registry.register(ProviderSpec(name=..., factory=..., check_available=...,
    priority=..., core_requires=...))`` once per provider. Registration must be cheap: import
    heavy dependencies (cupy, a vendor SDK) inside ``factory`` and ``check_available``, never at
    module import, so that ``ort.get_all_providers()`` stays fast and works without them.
    """


@hookspec
def ort_register_kernels(registry: KernelRegistrar) -> None:
    """Register kernels for a provider.

    Call ``registry.add(provider_name, table)`` with a :class:`ort.ep.KernelTable`. A
    plugin may add kernels to a provider another plugin registered (custom ops on CPU, say).
    Two kernels for the same provider, domain, op and ``since_version`` raise an error naming
    both plugins.
    """


@hookspec
def ort_register_schemas(registry: SchemaRegistrar) -> None:
    """Declare ops ONNX does not define (contrib and custom ops) that your kernels run.

    Call ``registry.declare(DeclaredSchema(op_type=..., domain=..., since_version=...,
    attributes={...}, infer=...))`` once per op version. Sessions then fill in the op's
    attribute defaults, refuse nodes with unknown attributes or wrong input counts, and infer
    the types of its outputs (so ``NodeArg`` shapes and the optimizer see past it).
    Declarations live in ort's own table, never in onnx's process-wide schema registry; the
    same op and version declared twice raises an error naming both plugins.
    """
