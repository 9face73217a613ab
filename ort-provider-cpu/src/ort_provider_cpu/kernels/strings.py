"""CPU kernels: string ops, elementwise or per-row work on string tensors: StringNormalizer,
StringSplit, StringConcat, RegexFullMatch.

String tensors are numpy ``object`` arrays of Python ``str``; numpy has no vectorized string
operations, so per-element work on strings is a comprehension over ``x.flat``.

Deviations from ONNX Runtime, where the spec leaves room:

* StringNormalizer ignores ``locale`` (ONNX Runtime needs the C++ locale installed); case changes
  map one code point to one code point as ``towupper``/``towlower`` do (``'ß'`` stays ``'ß'``).
* StringSplit without a delimiter splits on runs of any whitespace (Python ``str.split()``, as
  the spec and the reference implementation say), where ONNX Runtime splits on spaces only, and
  an empty string with a delimiter gives one empty substring (ONNX Runtime: none).
* RegexFullMatch runs Python ``re`` on the pattern translated from RE2 syntax by
  ``re2_syntax.py`` (whose docstring lists which RE2 meanings it keeps). Constructs RE2 rejects
  (lookaround, backreferences, possessive or doubled repetitions, ``\\C``) are rejected at
  session creation; Unicode scripts (``\\p{Greek}``) are not supported.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ort.ep import KernelTable, NodeInfo

from .re2_syntax import re2_to_python

kernels = KernelTable()


def _strings(shape: Sequence[int], values: Sequence[str] | None = None) -> np.ndarray:
    """Return an object array of ``shape`` holding ``values`` (or empty strings)."""
    out = np.empty(tuple(shape), dtype=object)
    if values is None:
        out.fill("")
    else:
        out.reshape(-1)[...] = list(values)
    return out


# --------------------------------------------------------------------------------------------
# StringNormalizer
# --------------------------------------------------------------------------------------------


def _change_case(text: str, upper: bool) -> str:
    """Return ``text`` upper- or lower-cased one code point at a time, as ``towupper`` and
    ``towlower`` do: no context rules (final sigma) and characters whose Python mapping is
    several code points (``'ß'``) stay unchanged."""
    if text.isascii():
        return text.upper() if upper else text.lower()
    out = []
    for char in text:
        conv = char.upper() if upper else char.lower()
        out.append(conv if len(conv) == 1 else char)
    return "".join(out)


@kernels.register("StringNormalizer", 10)
def string_normalizer(node: NodeInfo):
    """StringNormalizer 10+: drop stopwords from a [C] or [1, C] string tensor, change case."""
    action = node.attrs.get("case_change_action", "NONE")
    if action not in ("NONE", "LOWER", "UPPER"):
        raise ValueError(f"{node.describe()}: case_change_action must be NONE, LOWER or UPPER, "
                         f"got {action!r}")
    case_sensitive = bool(node.attrs.get("is_case_sensitive", 0))
    stopwords = list(node.attrs.get("stopwords", []))
    # Case-insensitive matching compares in the case the output uses (ONNX Runtime's choice).
    compare_upper = action == "UPPER"
    if case_sensitive:
        stops = frozenset(stopwords)
    else:
        stops = frozenset(_change_case(w, compare_upper) for w in stopwords)

    def keep(word: str) -> bool:
        key = word if case_sensitive else _change_case(word, compare_upper)
        return key not in stops

    def compute(x):
        if x.ndim not in (1, 2) or (x.ndim == 2 and x.shape[0] != 1):
            raise ValueError(f"{node.describe()}: input shape must be [C] or [1, C], "
                             f"got {list(x.shape)}")
        words = list(x.reshape(-1))
        if stops:
            words = [w for w in words if keep(w)]
        if action != "NONE":
            words = [_change_case(w, action == "UPPER") for w in words]
        if not words:
            words = [""]
        shape = (len(words),) if x.ndim == 1 else (1, len(words))
        return (_strings(shape, words),)

    return compute


# --------------------------------------------------------------------------------------------
# StringSplit, StringConcat
# --------------------------------------------------------------------------------------------


@kernels.register("StringSplit", 20)
def string_split(node: NodeInfo):
    """StringSplit 20+: split every string on a delimiter (whitespace runs when unset or empty),
    padding to the longest split with empty strings; also returns the substring counts."""
    delimiter = node.attrs.get("delimiter") or None
    maxsplit = int(node.attrs.get("maxsplit", -1))
    if maxsplit < 0:
        maxsplit = -1

    def compute(x):
        parts = [str(s).split(delimiter, maxsplit) for s in x.flat]
        counts = np.array([len(p) for p in parts], dtype=np.int64).reshape(x.shape)
        width = int(counts.max(initial=0))
        out = _strings(x.shape + (width,))
        flat = out.reshape(x.size, width)
        for row, pieces in enumerate(parts):
            flat[row, :len(pieces)] = pieces
        return out, counts

    return compute


@kernels.register("StringConcat", 20)
def string_concat(node: NodeInfo):
    """StringConcat 20+: elementwise concatenation of two string tensors, with broadcasting."""

    def compute(x, y):
        x = np.asarray(x, dtype=object)
        y = np.asarray(y, dtype=object)
        if x.size == 0 or y.size == 0:
            return (_strings(np.broadcast_shapes(x.shape, y.shape)),)
        return (np.asarray(np.add(x, y), dtype=object),)

    return compute


# --------------------------------------------------------------------------------------------
# RegexFullMatch
# --------------------------------------------------------------------------------------------


@kernels.register("RegexFullMatch", 20)
def regex_full_match(node: NodeInfo):
    """RegexFullMatch 20+: whether each string matches the RE2 ``pattern`` in full."""
    pattern = node.attrs.get("pattern")
    if pattern is None:
        raise ValueError(f"{node.describe()}: attribute 'pattern' is required")
    try:
        regex = re2_to_python(pattern)
    except ValueError as exc:
        raise ValueError(f"{node.describe()}: {exc}") from None

    def compute(x):
        flags = np.fromiter((regex.fullmatch(s) is not None for s in x.flat), dtype=np.bool_,
                            count=x.size)
        return (flags.reshape(x.shape),)

    return compute
