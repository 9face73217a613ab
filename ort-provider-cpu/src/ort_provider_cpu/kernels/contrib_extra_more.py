"""CPU kernels: part of :mod:`.contrib_extra` (see there)."""

from __future__ import annotations

from ort.ep import DeclaredSchema, KernelTable

kernels = KernelTable()

#: The contrib ops of this module, declared to the core.
SCHEMAS: list[DeclaredSchema] = []
