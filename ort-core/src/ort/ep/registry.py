"""What the installed plugins registered: providers, their kernels and the op schemas they declare.

:class:`Registry` is filled once per process by :mod:`ort.ep.discovery` and answers the
questions a session asks: which providers exist, which are usable here (and if not, why), which
kernel a provider has for a node, and what the ops ONNX does not define look like.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .._version import __version__
from ..ir import DeclaredSchema, SchemaTable
from .kernels import KernelDef, KernelTable
from .provider import ExecutionProvider

__all__ = [
    "ProviderSpec",
    "ProviderRegistrar",
    "KernelRegistrar",
    "SchemaRegistrar",
    "Registry",
    "DuplicateRegistrationError",
    "version_satisfies",
]


class DuplicateRegistrationError(ValueError):
    """Two plugins registered the same provider or the same kernel."""


def always_available() -> str | None:
    """The default availability check: a provider with no requirements can always run."""
    return None


@dataclass(frozen=True)
class ProviderSpec:
    """How to make a provider, registered by a plugin.

    Attributes:
        name: the provider name users pass in ``providers=[...]``; it must equal the ``name``
            of the provider class (a provider registered under another name than its class
            declares is refused, since its kernels would never be found).
        factory: ``factory(options) -> ExecutionProvider``: the provider class itself, or a
            function that may import heavy dependencies first.
        check_available: returns None when the provider can run here, else one sentence saying
            why not and what to do (``"cupy is not installed: pip install
            ort-provider-cuda[cuda12]"``). Called lazily, at most once per process.
        priority: default priority order (higher first) of ``get_available_providers()``.
        core_requires: the ort-core versions the provider supports, e.g. ``">=0.1,<0.2"``.
        device_type: the device the provider's memory lives on (``'cpu'``, ``'cuda'``).
    """

    name: str
    factory: Callable[[Mapping[str, Any]], ExecutionProvider]
    check_available: Callable[[], str | None] = always_available
    priority: int = 0
    core_requires: str | None = None
    device_type: str = "cpu"

    def name_mismatch(self, provider_name: str) -> str | None:
        """Why a provider whose class declares ``provider_name`` cannot be registered under
        :attr:`name` (None when the names agree)."""
        if provider_name == self.name:
            return None
        return (f"the plugin registers it as {self.name!r} but its provider class declares "
                f"name = {provider_name!r}, so the kernels registered for one never reach the "
                f"other; set name = {self.name!r} on the class (or register "
                f"ProviderSpec(name={provider_name!r}, ...) and its kernels under that name)")

    def declared_class_name(self) -> str | None:
        """The ``name`` of the provider class when :attr:`factory` is the class itself."""
        factory = self.factory
        if isinstance(factory, type) and issubclass(factory, ExecutionProvider):
            return factory.name
        return None


_SPECIFIER = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*([0-9][0-9.]*)\s*$")


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = [int(p) for p in re.findall(r"\d+", text)[:3]]
    return tuple(parts + [0] * (3 - len(parts)))


def version_satisfies(version: str, requirement: str) -> bool:
    """Return whether ``version`` meets a comma-separated specifier such as ``">=0.1,<0.2"``."""
    current = _version_tuple(version)
    for clause in requirement.split(","):
        if not clause.strip():
            continue
        match = _SPECIFIER.match(clause)
        if match is None:
            raise ValueError(f"unsupported version specifier {clause!r} in {requirement!r}")
        op, bound = match.group(1), _version_tuple(match.group(2))
        ok = {
            ">=": current >= bound, "<=": current <= bound, "==": current == bound,
            "!=": current != bound, ">": current > bound, "<": current < bound,
        }[op]
        if not ok:
            return False
    return True


@dataclass
class _ProviderEntry:
    spec: ProviderSpec
    owner: str
    unavailable_reason: str | None = None
    checked: bool = False


class Registry:
    """Providers and kernels registered by plugins, with their owners."""

    def __init__(self) -> None:
        self._providers: dict[str, _ProviderEntry] = {}
        # provider -> (domain, op_type) -> kernels sorted by since_version
        self._kernels: dict[str, dict[tuple[str, str], list[tuple[KernelDef, str]]]] = {}
        #: the op schemas plugins declared (ops ONNX does not define)
        self.schemas = SchemaTable()

    # -- registration -------------------------------------------------------------------------
    def add_provider(self, spec: ProviderSpec, owner: str) -> None:
        """Record a provider; a second registration of the same name raises, naming both."""
        existing = self._providers.get(spec.name)
        if existing is not None:
            raise DuplicateRegistrationError(
                f"provider {spec.name!r} is registered twice: by {existing.owner!r} and by {owner!r}; "
                "uninstall one of the two distributions"
            )
        self._providers[spec.name] = _ProviderEntry(spec, owner)

    def add_kernel(self, provider: str, kernel: KernelDef, owner: str) -> None:
        """Record a kernel of ``provider``; the same op and since_version twice raises."""
        ops = self._kernels.setdefault(provider, {})
        versions = ops.setdefault((kernel.domain, kernel.op_type), [])
        for other, other_owner in versions:
            if other.since_version == kernel.since_version:
                op = f"{kernel.domain}:{kernel.op_type}" if kernel.domain else kernel.op_type
                raise DuplicateRegistrationError(
                    f"kernel {op} version {kernel.since_version} for {provider} is registered twice: "
                    f"by {other_owner!r} and by {owner!r}"
                )
        versions.append((kernel, owner))
        versions.sort(key=lambda item: item[0].since_version)

    # -- providers ----------------------------------------------------------------------------
    def provider_names(self) -> list[str]:
        """All registered providers, highest priority first (CPU, priority 0, comes last)."""
        entries = sorted(self._providers.values(), key=lambda e: (-e.spec.priority, e.spec.name))
        return [e.spec.name for e in entries]

    def has_provider(self, name: str) -> bool:
        """Whether a provider of that name is registered."""
        return name in self._providers

    def provider_spec(self, name: str) -> ProviderSpec:
        """The spec of a registered provider (KeyError if none)."""
        return self._providers[name].spec

    def provider_owner(self, name: str) -> str:
        """The plugin that registered a provider."""
        return self._providers[name].owner

    def unavailable_reason(self, name: str) -> str | None:
        """None if the provider can run here, else why not (checked once, then cached)."""
        entry = self._providers[name]
        if not entry.checked:
            entry.checked = True
            spec = entry.spec
            declared = spec.declared_class_name()
            mismatch = spec.name_mismatch(declared) if declared is not None else None
            if mismatch is not None:
                entry.unavailable_reason = f"{spec.name} (from {entry.owner}) is misregistered: {mismatch}"
            elif spec.core_requires and not version_satisfies(__version__, spec.core_requires):
                entry.unavailable_reason = (
                    f"{spec.name} (from {entry.owner}) supports ort-core {spec.core_requires} but "
                    f"ort-core {__version__} is installed: pip install 'ort-core{spec.core_requires}' "
                    f"or upgrade the plugin"
                )
            else:
                try:
                    entry.unavailable_reason = spec.check_available()
                except Exception as exc:  # a broken check must not break ort
                    entry.unavailable_reason = (
                        f"{spec.name} availability check raised {type(exc).__name__}: {exc}"
                    )
        return entry.unavailable_reason

    # -- kernels ------------------------------------------------------------------------------
    def kernels_for(self, provider: str, domain: str, op_type: str) -> list[KernelDef]:
        """All kernels of a provider for one op, oldest version range first."""
        return [k for k, _ in self._kernels.get(provider, {}).get((domain, op_type), [])]

    def lookup(
        self, provider: str, domain: str, op_type: str, version: int,
        input_types: list[str | None] | None = None,
    ) -> KernelDef | None:
        """The newest kernel of ``provider`` covering schema ``version`` whose type
        constraints accept ``input_types``; None if there is none."""
        for kernel in reversed(self.kernels_for(provider, domain, op_type)):
            if kernel.covers(version) and (input_types is None or kernel.accepts(input_types)):
                return kernel
        return None

    def mark_unavailable(self, name: str, reason: str) -> None:
        """Record that a registered provider cannot be used, and why."""
        entry = self._providers[name]
        entry.checked = True
        entry.unavailable_reason = reason

    def kernel_owners(self, provider: str) -> set[str]:
        """The plugins that registered kernels for ``provider``."""
        return {owner for versions in self._kernels.get(provider, {}).values()
                for _, owner in versions}

    def kernel_providers(self) -> list[str]:
        """Providers that have at least one kernel."""
        return list(self._kernels)

    def all_kernels(self, provider: str) -> list[KernelDef]:
        """Every kernel of a provider."""
        return [k for versions in self._kernels.get(provider, {}).values() for k, _ in versions]


class ProviderRegistrar:
    """Handed to ``ort_register_providers``; collects one plugin's providers."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.specs: list[ProviderSpec] = []

    def register(self, spec: ProviderSpec) -> None:
        """Register a provider (see :class:`ProviderSpec`)."""
        if not isinstance(spec, ProviderSpec):
            raise TypeError(f"register() takes a ProviderSpec, got {type(spec).__name__}")
        self.specs.append(spec)


class KernelRegistrar:
    """Handed to ``ort_register_kernels``; collects one plugin's kernels."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.tables: list[tuple[str, list[KernelDef]]] = []

    def add(self, provider: str, kernels: KernelTable | Iterable[KernelDef]) -> None:
        """Register ``kernels`` (a :class:`KernelTable` or KernelDefs) for ``provider``."""
        defs = list(kernels)
        for kernel in defs:
            if not isinstance(kernel, KernelDef):
                raise TypeError(f"add() takes KernelDef items, got {type(kernel).__name__}")
        self.tables.append((provider, defs))


class SchemaRegistrar:
    """Handed to ``ort_register_schemas``; collects one plugin's op schema declarations."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.schemas: list[DeclaredSchema] = []

    def declare(self, schema: DeclaredSchema) -> None:
        """Declare an op ONNX does not define (see :class:`~ort.ep.DeclaredSchema`)."""
        if not isinstance(schema, DeclaredSchema):
            raise TypeError(f"declare() takes a DeclaredSchema, got {type(schema).__name__}")
        self.schemas.append(schema)


@dataclass
class PluginFailure:
    """A plugin that could not be loaded or whose hook raised."""

    plugin: str
    stage: str
    error: str
    exception: BaseException | None = field(default=None, repr=False)
