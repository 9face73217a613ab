"""CPU kernels: String ops: StringNormalizer, StringSplit, StringConcat, RegexFullMatch, TfIdfVectorizer."""

from __future__ import annotations

from ort.kernels import KernelTable

kernels = KernelTable()
