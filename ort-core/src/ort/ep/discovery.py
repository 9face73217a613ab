"""Plugin discovery: finds plugins, calls their hooks, and fills the process's :class:`Registry`.

Discovery is lazy (the first call that needs providers or kernels), isolated (a plugin whose
import or hook raises is recorded in :func:`plugin_failures` and warned about; the others
load) and controllable from the environment:

``ORT_DISABLE_PLUGIN_AUTOLOAD=1``
    load no entry-point plugins; only those given to :func:`register_plugin` are used.
``ORT_PLUGINS_BLOCK=name,other``
    skip the entry points with these names (e.g. ``cuda`` to hide the CUDA provider).
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from typing import Any

import pluggy

from . import hookspecs
from .registry import KernelRegistrar, PluginFailure, ProviderRegistrar, Registry, SchemaRegistrar

from importlib.metadata import entry_points

__all__ = [
    "ENTRY_POINT_GROUP",
    "get_registry",
    "register_plugin",
    "unregister_plugin",
    "plugin_failures",
    "loaded_plugins",
    "reset",
]

logger = logging.getLogger("ort.ep.discovery")

#: The entry-point group installed distributions expose their plugin module in.
ENTRY_POINT_GROUP = "ort"

_lock = threading.RLock()
_registry: Registry | None = None
_failures: list[PluginFailure] = []
_loaded: list[str] = []
_manual_plugins: list[tuple[Any, str]] = []


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


def _blocked_names() -> set[str]:
    return {n.strip() for n in os.environ.get("ORT_PLUGINS_BLOCK", "").split(",") if n.strip()}


def _record_failure(plugin: str, stage: str, exc: BaseException) -> None:
    failure = PluginFailure(plugin, stage, f"{type(exc).__name__}: {exc}", exc)
    _failures.append(failure)
    message = f"ort plugin {plugin!r} failed to {stage} and was skipped: {failure.error}"
    logger.warning(message)
    warnings.warn(message, RuntimeWarning, stacklevel=4)


def _plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("ort")
    pm.add_hookspecs(hookspecs)
    blocked = _blocked_names()
    for name in blocked:
        pm.set_blocked(name)
    if not _env_flag("ORT_DISABLE_PLUGIN_AUTOLOAD"):
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in blocked or pm.is_registered(ep.name) or pm.has_plugin(ep.name):
                continue
            try:
                plugin = ep.load()
                pm.register(plugin, name=ep.name)
            except Exception as exc:
                _record_failure(ep.name, "load", exc)
    for plugin, name in _manual_plugins:
        if name in blocked or pm.has_plugin(name):
            continue
        try:
            pm.register(plugin, name=name)
        except Exception as exc:
            _record_failure(name, "register", exc)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        _record_failure(getattr(exc, "plugin_name", "?"), "validate", exc)
    return pm


def _commit(registrar: Any, registry: Registry) -> None:
    owner = registrar.owner
    if isinstance(registrar, ProviderRegistrar):
        for spec in registrar.specs:
            registry.add_provider(spec, owner)
    elif isinstance(registrar, SchemaRegistrar):
        for schema in registrar.schemas:
            registry.schemas.add(schema, owner)
    else:
        for provider, defs in registrar.tables:
            for kernel in defs:
                registry.add_kernel(provider, kernel, owner)


def _call_isolated(pm: pluggy.PluginManager, registry: Registry) -> None:
    """Call each plugin's hooks on its own registrar; commit only what a plugin finished."""
    for hook_name, registrar_cls in (
        ("ort_register_providers", ProviderRegistrar),
        ("ort_register_schemas", SchemaRegistrar),
        ("ort_register_kernels", KernelRegistrar),
    ):
        hook = getattr(pm.hook, hook_name)
        for impl in hook.get_hookimpls():  # registration order
            owner = impl.plugin_name
            if any(f.plugin == owner for f in _failures):
                continue
            registrar = registrar_cls(owner)
            try:
                impl.function(registrar)
                _commit(registrar, registry)
            except Exception as exc:
                _record_failure(owner, f"run {hook_name}", exc)
    _loaded.extend(name for name, _ in pm.list_name_plugin() if name not in _loaded)
    _check_names(registry)


def _distribution_of(plugin: str) -> str:
    """The installed distribution whose entry point is named ``plugin`` (for messages)."""
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == plugin and ep.dist is not None:
            return ep.dist.name
    return plugin


def _check_names(registry: Registry) -> None:
    """Warn about providers whose registration disagrees with what they declare, and keep them
    out of ``get_available_providers()``: a provider registered under another name than its
    class declares, or a plugin that registers a provider and kernels under another name."""
    registered = set(registry.provider_names())
    for name in registry.provider_names():
        spec, owner = registry.provider_spec(name), registry.provider_owner(name)
        declared = spec.declared_class_name()
        mismatch = spec.name_mismatch(declared) if declared is not None else None
        if mismatch is None:
            stray = [p for p in registry.kernel_providers()
                     if p not in registered and owner in registry.kernel_owners(p)]
            if stray and not registry.all_kernels(name):
                mismatch = (f"the plugin registers the provider as {name!r} but its kernels "
                            f"under {stray}; register both under {name!r}")
        if mismatch is not None:
            reason = f"{name} (from {owner}) is misregistered: {mismatch}"
            registry.mark_unavailable(name, reason)
            message = (f"ort plugin {owner!r} (package {_distribution_of(owner)}) registers a "
                       f"provider it cannot run: {mismatch}. {name} is not available until the "
                       "package is fixed.")
            logger.warning(message)
            warnings.warn(message, RuntimeWarning, stacklevel=4)


def get_registry() -> Registry:
    """Return the process's registry, discovering plugins on first call."""
    global _registry
    if _registry is None:
        with _lock:
            if _registry is None:
                registry = Registry()
                _failures.clear()
                _loaded.clear()
                _call_isolated(_plugin_manager(), registry)
                _registry = registry
    return _registry


def register_plugin(plugin: Any, name: str | None = None) -> None:
    """Add a plugin that is not an installed distribution (a module or an object with
    ``@ort.hookimpl`` functions). Discovery runs again at next use."""
    with _lock:
        plugin_name = name or getattr(plugin, "__name__", None) or repr(plugin)
        _manual_plugins.append((plugin, plugin_name))
        reset()


def unregister_plugin(name: str) -> None:
    """Remove a plugin added with :func:`register_plugin`."""
    with _lock:
        _manual_plugins[:] = [(p, n) for p, n in _manual_plugins if n != name]
        reset()


def plugin_failures() -> list[PluginFailure]:
    """Plugins that failed to load or whose hooks raised, with the reason."""
    get_registry()
    return list(_failures)


def loaded_plugins() -> list[str]:
    """Names of the plugins that were loaded (entry-point names or given names)."""
    get_registry()
    return list(_loaded)


def reset() -> None:
    """Forget what was discovered; the next use discovers plugins again."""
    global _registry
    with _lock:
        _registry = None
