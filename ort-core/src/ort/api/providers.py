"""Provider selection: turning ``providers=[...]``/``provider_options`` into provider instances,
and the module-level queries ``get_all_providers()``/``get_available_providers()``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from typing import Any

from ..ep import ExecutionProvider, get_registry
from ..errors import EPFail, InvalidArgument

__all__ = ["get_all_providers", "get_available_providers", "create_providers", "unavailable_providers"]

logger = logging.getLogger("ort")

CPU = "CPUExecutionProvider"

#: Where to get providers users commonly ask for when they are not installed.
_INSTALL_HINTS = {
    CPU: "pip install ort-provider-cpu",
    "CUDAExecutionProvider": "pip install 'ort-provider-cuda[cuda12]' (or [cuda13])",
}


def get_all_providers() -> list[str]:
    """Every installed provider, usable here or not, in default priority order."""
    return get_registry().provider_names()


def get_available_providers() -> list[str]:
    """The installed providers that can run on this machine, in default priority order."""
    registry = get_registry()
    return [n for n in registry.provider_names() if registry.unavailable_reason(n) is None]


def unavailable_providers() -> dict[str, str]:
    """Installed providers that cannot run here, with the reason for each."""
    registry = get_registry()
    reasons = {n: registry.unavailable_reason(n) for n in registry.provider_names()}
    return {n: r for n, r in reasons.items() if r is not None}


def _normalize(providers: Any, provider_options: Any) -> list[tuple[str, dict[str, Any]]]:
    if providers is None:
        providers = [CPU]
    if isinstance(providers, (str, bytes)):
        raise TypeError(
            f"providers must be a list such as [{providers!r}], not a string "
            "(ONNX Runtime would iterate it character by character)"
        )
    entries: list[tuple[str, dict[str, Any]]] = []
    for item in providers:
        if isinstance(item, str):
            entries.append((item, {}))
        elif (isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str)
              and isinstance(item[1], Mapping)):
            entries.append((item[0], dict(item[1])))
        else:
            raise TypeError(
                f"each provider must be a name or a (name, options dict) tuple, got {item!r}"
            )
    if provider_options is not None:
        if isinstance(provider_options, Mapping) or len(provider_options) != len(entries):
            raise ValueError(
                "'providers' and 'provider_options' should be the same length if both are given."
            )
        for i, options in enumerate(provider_options):
            if not isinstance(options, Mapping):
                raise TypeError(f"provider_options[{i}] must be a dict, got {type(options).__name__}")
            entries[i][1].update(options)
    return entries


def create_providers(providers: Any, provider_options: Any) -> list[ExecutionProvider]:
    """Instantiate the requested providers in priority order, CPU appended last.

    A provider that is not installed or cannot run here is skipped with a ``UserWarning`` that
    says why and what to install; a provider that fails to start raises ``EPFail``.
    """
    registry = get_registry()
    entries = _normalize(providers, provider_options)
    chosen: list[tuple[str, dict[str, Any]]] = []
    seen: set[str] = set()
    for name, options in entries:
        if name in seen:
            warnings.warn(f"Duplicate provider '{name}' encountered, ignoring.", UserWarning, stacklevel=3)
            continue
        seen.add(name)
        if not registry.has_provider(name):
            hint = _INSTALL_HINTS.get(name, "install the distribution that provides it")
            warnings.warn(
                f"Specified provider '{name}' is not installed ({hint}). Installed providers: "
                f"{registry.provider_names()}. Running on the other providers of the list.",
                UserWarning, stacklevel=3,
            )
            continue
        reason = registry.unavailable_reason(name)
        if reason is not None:
            warnings.warn(
                f"Specified provider '{name}' is not available on this machine: {reason}. "
                "Running on the other providers of the list.",
                UserWarning, stacklevel=3,
            )
            continue
        chosen.append((name, options))
    if CPU not in seen and registry.has_provider(CPU) and registry.unavailable_reason(CPU) is None:
        chosen.append((CPU, {}))
    if not chosen:
        raise EPFail(
            "No execution provider is available to run the model. Installed providers: "
            f"{registry.provider_names() or 'none'}. Install one, e.g. 'pip install ort-provider-cpu'."
        )
    instances = []
    for name, options in chosen:
        spec = registry.provider_spec(name)
        try:
            instance = spec.factory(options)
        except ValueError as exc:
            raise InvalidArgument(f"Invalid options for {name}: {exc}") from exc
        except Exception as exc:
            raise EPFail(
                f"Failed to create {name} (from {registry.provider_owner(name)}): "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        mismatch = spec.name_mismatch(instance.name)
        if mismatch is not None:  # a factory function hid the class from discovery's check
            reason = f"{name} (from {registry.provider_owner(name)}) is misregistered: {mismatch}"
            registry.mark_unavailable(name, reason)
            warnings.warn(f"Specified provider '{name}' cannot be used: {reason}. Running on the "
                          "other providers of the list.", UserWarning, stacklevel=3)
            continue
        instances.append(instance)
    if not instances:
        raise EPFail("No execution provider is available to run the model: "
                     f"{unavailable_providers()}")
    return instances
