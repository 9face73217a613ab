"""Placeholder."""

from __future__ import annotations

from ort.ep import DeclaredSchema, KernelTable

kernels = KernelTable()
SCHEMAS: list[DeclaredSchema] = []
