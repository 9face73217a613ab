"""CPU kernels: String ops: StringNormalizer, StringSplit, StringConcat, RegexFullMatch,
TfIdfVectorizer.

String tensors are numpy ``object`` arrays of Python ``str``; numpy has no vectorized string
hashing, so per-element work on strings is a comprehension over ``x.flat`` while everything
after tokenization (TfIdfVectorizer's n-gram walk) is integer numpy.

Deviations from ONNX Runtime, where the spec leaves room:

* StringNormalizer ignores ``locale`` (ONNX Runtime needs the C++ locale installed); case changes
  map one code point to one code point as ``towupper``/``towlower`` do (``'ß'`` stays ``'ß'``).
* StringSplit without a delimiter splits on runs of any whitespace (Python ``str.split()``, as
  the spec and the reference implementation say), where ONNX Runtime splits on spaces only, and
  an empty string with a delimiter gives one empty substring (ONNX Runtime: none).
* RegexFullMatch runs Python ``re`` on the pattern translated from RE2 syntax (see
  :class:`_Re2Translator`): ASCII-only ``\\d \\w \\s \\b`` and POSIX classes, ``$`` only at the
  end, ``\\z``, ``\\Q..\\E``, ``\\x{..}``, octal escapes, ``\\pN``/``\\p{Lu}`` general categories,
  inline flags anywhere, literal ``{`` that starts no repetition. Constructs RE2 rejects
  (lookaround, backreferences, possessive or doubled repetitions, ``\\C``) are rejected at
  session creation; Unicode scripts (``\\p{Greek}``) are not supported.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

import numpy as np

from ort.ep import KernelTable, NodeInfo

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

Ranges = list[tuple[int, int]]

# RE2's Perl and POSIX classes are ASCII-only (Python's are Unicode): code point ranges.
_PERL_CLASSES: dict[str, Ranges] = {
    "d": [(0x30, 0x39)], "s": [(0x09, 0x0A), (0x0C, 0x0D), (0x20, 0x20)],
    "w": [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)],
}
_POSIX_CLASSES: dict[str, Ranges] = {
    "alnum": [(0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)], "alpha": [(0x41, 0x5A), (0x61, 0x7A)],
    "ascii": [(0x00, 0x7F)], "blank": [(0x09, 0x09), (0x20, 0x20)],
    "cntrl": [(0x00, 0x1F), (0x7F, 0x7F)], "digit": [(0x30, 0x39)], "graph": [(0x21, 0x7E)],
    "lower": [(0x61, 0x7A)], "print": [(0x20, 0x7E)],
    "punct": [(0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)],
    "space": [(0x09, 0x0D), (0x20, 0x20)], "upper": [(0x41, 0x5A)],
    "word": _PERL_CLASSES["w"], "xdigit": [(0x30, 0x39), (0x41, 0x46), (0x61, 0x66)],
}
_WORD = "[0-9A-Za-z_]"
_BOUNDARY = f"(?:(?<={_WORD})(?!{_WORD})|(?<!{_WORD})(?={_WORD}))"
_NOT_BOUNDARY = f"(?:(?<={_WORD})(?={_WORD})|(?<!{_WORD})(?!{_WORD}))"
_UNSUPPORTED_GROUPS = ("(?=", "(?!", "(?<=", "(?<!", "(?P=", "(?#", "(?>", "(?(")
_REPEAT = re.compile(r"\{(\d+)(,(\d*))?\}")


def _complement(ranges: Ranges) -> Ranges:
    """Return the code points not in ``ranges``."""
    out, start = [], 0
    for lo, hi in sorted(ranges):
        if lo > start:
            out.append((start, lo - 1))
        start = max(start, hi + 1)
    if start <= 0x10FFFF:
        out.append((start, 0x10FFFF))
    return out


def _class_text(ranges: Ranges) -> str:
    """Return ``ranges`` as the inside of a Python character class."""
    def esc(cp: int) -> str:
        return f"\\x{cp:02x}" if cp < 0x100 else f"\\U{cp:08x}"
    return "".join(esc(lo) if lo == hi else f"{esc(lo)}-{esc(hi)}" for lo, hi in ranges)


@functools.lru_cache(maxsize=1)
def _unicode_categories() -> dict[str, Ranges]:
    """Code point ranges of every Unicode general category (and each major class)."""
    table: dict[str, Ranges] = {}
    current, start = unicodedata.category("\0"), 0
    for cp in range(1, 0x110001):
        cat = unicodedata.category(chr(cp)) if cp <= 0x10FFFF else ""
        if cat != current:
            for key in (current, current[0]):
                table.setdefault(key, []).append((start, cp - 1))
            current, start = cat, cp
    table["Any"] = [(0, 0x10FFFF)]
    return table


class _Re2Translator:
    """Translate an RE2 pattern into a Python ``re`` pattern with the same full matches.

    Each open group keeps a frame ``(wraps, flags)``: ``wraps`` are the scoped-flag groups
    ``(?i:`` opened for an inline ``(?i)`` (closed at ``|`` and reopened after it, and closed at
    the group's end), ``flags`` the flags in force (``$`` depends on ``m``).
    """

    def __init__(self, pattern: str) -> None:
        self.src = pattern
        self.pos = 0
        self.out: list[str] = []
        self.frames: list[tuple[list[str], set[str]]] = [([], set())]

    def error(self, what: str) -> ValueError:
        return ValueError(f"{what} at offset {self.pos}")

    def translate(self) -> str:
        src = self.src
        while self.pos < len(src):
            char = src[self.pos]
            if char == "\\":
                self.out.append(self.escape())
            elif char == "[":
                self.out.append(f"[{self.char_class()}]")
            elif char == "(":
                self.open_group()
            elif char == ")":
                if len(self.frames) == 1:
                    raise self.error("unexpected )")
                wraps, _ = self.frames.pop()
                self.out.append(")" * (len(wraps) + 1))
                self.pos += 1
            elif char == "|":
                wraps = self.frames[-1][0]
                self.out.append(")" * len(wraps) + "|" + "".join(wraps))
                self.pos += 1
            elif char == "$":
                self.out.append("$" if "m" in self.frames[-1][1] else "(?!\\n)$")
                self.pos += 1
            elif char in "*+?" or _REPEAT.match(src, self.pos):
                self.repetition()
            else:
                self.out.append("\\{" if char == "{" else char)  # RE2: a bad {..} is literal
                self.pos += 1
        if len(self.frames) != 1:
            raise self.error("missing )")
        self.out.append(")" * len(self.frames[0][0]))
        return "".join(self.out)

    def repetition(self) -> None:
        """Copy a repetition operator (and its lazy ``?``); RE2 rejects a repeated one."""
        match = _REPEAT.match(self.src, self.pos)
        end = match.end() if match else self.pos + 1
        self.out.append(self.src[self.pos:end])
        self.pos = end
        if self.src.startswith("?", self.pos):
            self.out.append("?")
            self.pos += 1
        if self.pos < len(self.src) and (self.src[self.pos] in "*+?"
                                         or _REPEAT.match(self.src, self.pos)):
            raise self.error("bad repetition operator")

    def class_escape(self) -> Ranges | None:
        """Parse a class escape (``\\d``, ``\\pL``, ...) at ``pos``: its ranges, or None."""
        src = self.src
        code = src[self.pos + 1:self.pos + 2]
        if code.lower() in _PERL_CLASSES:
            self.pos += 2
            ranges = _PERL_CLASSES[code.lower()]
            return _complement(ranges) if code.isupper() else ranges
        if code not in ("p", "P"):
            return None
        negate = code == "P"
        if src.startswith("{", self.pos + 2):
            end = src.find("}", self.pos)
            if end < 0:
                raise self.error("missing } in \\p{...}")
            name = src[self.pos + 3:end]
            self.pos = end + 1
        else:
            name = src[self.pos + 2:self.pos + 3]
            self.pos += 3
        if name.startswith("^"):
            negate, name = not negate, name[1:]
        ranges = _unicode_categories().get(name)
        if ranges is None:
            raise self.error(f"unsupported Unicode class {name!r}")
        return _complement(ranges) if negate else ranges

    def escape(self) -> str:
        src = self.src
        if self.pos + 1 >= len(src):
            raise self.error("trailing backslash")
        ranges = self.class_escape()
        if ranges is not None:
            return f"[{_class_text(ranges)}]"
        code = src[self.pos + 1]
        if code in "zbB":
            self.pos += 2
            return {"z": "\\Z", "b": _BOUNDARY, "B": _NOT_BOUNDARY}[code]
        if code == "Q":
            end = src.find("\\E", self.pos + 2)
            end = len(src) if end < 0 else end
            text = src[self.pos + 2:end]
            self.pos = min(end + 2, len(src))
            return re.escape(text)
        return self.literal_escape()

    def literal_escape(self) -> str:
        """An escape that stands for one character (``\\x{..}``, octal, ``\\.``...)."""
        src = self.src
        code = src[self.pos + 1]
        self.pos += 2
        if code == "x" and src.startswith("{", self.pos):
            end = src.find("}", self.pos)
            if end < 0:
                raise self.error("unterminated \\x{")
            value = int(src[self.pos + 1:end], 16)
            self.pos = end + 1
            return f"\\U{value:08x}"
        if code.isdigit():
            if code != "0" and not (code < "8" and src[self.pos:self.pos + 1].isdigit()):
                raise self.error("backreferences are not RE2 syntax")
            digits = code
            while len(digits) < 3 and self.pos < len(src) and src[self.pos] in "01234567":
                digits += src[self.pos]
                self.pos += 1
            return f"\\x{int(digits, 8):02x}"
        if code.isalpha() and code not in "afnrtvA":
            raise self.error(f"\\{code} is not RE2 syntax")
        return "\\" + code

    def char_class(self) -> str:
        """Translate ``[...]`` at ``pos``; return the inside of the Python class."""
        src = self.src
        self.pos += 1
        negate = src.startswith("^", self.pos)
        self.pos += negate
        parts: list[str] = []
        first = True
        while True:
            if self.pos >= len(src):
                raise self.error("missing ]")
            char = src[self.pos]
            if char == "]" and not first:
                self.pos += 1
                break
            first = False
            if src.startswith("[:", self.pos):
                end = src.find(":]", self.pos + 2)
                name = src[self.pos + 2:end] if end > 0 else ""
                ranges = _POSIX_CLASSES.get(name.lstrip("^"))
                if ranges is None:
                    raise self.error(f"unsupported class [:{name}:]")
                parts.append(_class_text(_complement(ranges) if name.startswith("^")
                                         else ranges))
                self.pos = end + 2
            elif char == "\\":
                ranges = self.class_escape() if self.pos + 1 < len(src) else None
                parts.append(_class_text(ranges) if ranges is not None
                             else self.literal_escape())
            else:
                parts.append("\\" + char if char in "[&~|" else char)
                self.pos += 1
        return ("^" if negate else "") + "".join(parts)

    def open_group(self) -> None:
        rest = self.src[self.pos:]
        if rest.startswith(_UNSUPPORTED_GROUPS):
            raise self.error("lookaround, backreferences, comments and atomic groups are not "
                             "RE2 syntax")
        flags = set(self.frames[-1][1])
        match = re.match(r"\(\?([imsU]*)(?:-([imsU]*))?([:)])", rest)
        if match and (match.group(1) or match.group(2) is not None):
            # U (ungreedy) changes which match is found, never whether a full match exists.
            on, off = match.group(1).replace("U", ""), (match.group(2) or "").replace("U", "")
            opener = f"(?{on}{'-' + off if off else ''}:" if on or off else "(?:"
            flags = (flags | set(on)) - set(off)
            self.pos += match.end()
            self.out.append(opener)
            if match.group(3) == ")":  # inline flags: the rest of the enclosing group
                wraps, _ = self.frames[-1]
                self.frames[-1] = (wraps + [opener], flags)
                return
        elif rest.startswith(("(?P<", "(?<")):
            self.out.append("(?P<")
            self.pos += 4 if rest.startswith("(?P<") else 3
        elif rest.startswith("(?:"):
            self.out.append("(?:")
            self.pos += 3
        elif rest.startswith("(?"):
            raise self.error("unknown group syntax")
        else:
            self.out.append("(")
            self.pos += 1
        self.frames.append(([], flags))


def _re2_to_python(pattern: str) -> re.Pattern[str]:
    """Compile an RE2 pattern with Python ``re``, keeping RE2's meaning where they differ:
    ASCII ``\\d \\w \\s \\b``, ``$`` only at the very end, ``\\z``, ``\\Q..\\E``, ``\\x{..}``,
    POSIX ``[[:alpha:]]`` classes and flags in the middle of a pattern."""
    try:
        return re.compile(_Re2Translator(pattern).translate())
    except (ValueError, re.error) as exc:
        raise ValueError(f"invalid RE2 pattern {pattern!r}: {exc}") from None


@kernels.register("RegexFullMatch", 20)
def regex_full_match(node: NodeInfo):
    """RegexFullMatch 20+: whether each string matches the RE2 ``pattern`` in full."""
    pattern = node.attrs.get("pattern")
    if pattern is None:
        raise ValueError(f"{node.describe()}: attribute 'pattern' is required")
    try:
        regex = _re2_to_python(pattern)
    except ValueError as exc:
        raise ValueError(f"{node.describe()}: {exc}") from None

    def compute(x):
        flags = np.fromiter((regex.fullmatch(s) is not None for s in x.flat), dtype=np.bool_,
                            count=x.size)
        return (flags.reshape(x.shape),)

    return compute


# --------------------------------------------------------------------------------------------
# TfIdfVectorizer
# --------------------------------------------------------------------------------------------


class _NgramTrie:
    """The pool's n-grams as a trie over token ids, in arrays for a vectorized walk.

    Node 0 is the root; the child of ``node`` through token ``t`` is found by looking up
    ``node * radix + t`` in the sorted ``keys`` (``children`` holds the matching node ids).
    ``column[node]`` is the output column of the n-gram ending at ``node``, or -1.
    """

    def __init__(self, vocab: np.ndarray, grams: list[tuple[int, ...]],
                 columns: list[int]) -> None:
        self.vocab = vocab
        self.radix = len(vocab) + 1
        edges: dict[int, int] = {}
        column = [-1]
        for gram, col in zip(grams, columns):
            node = 0
            for token in gram:
                key = node * self.radix + token
                child = edges.get(key)
                if child is None:
                    child = edges[key] = len(column)
                    column.append(-1)
                node = child
            column[node] = col
        order = sorted(edges)
        self.keys = np.array(order, dtype=np.int64)
        self.children = np.array([edges[k] for k in order], dtype=np.int64)
        self.column = np.array(column, dtype=np.int64)
        self.max_len = max((len(g) for g in grams), default=0)

    def token_ids(self, x: np.ndarray) -> np.ndarray:
        """Map input tokens to vocabulary ids (-1: not in the pool)."""
        if len(self.vocab) == 0 or x.size == 0 or (x.dtype == object) != (
                self.vocab.dtype == object):  # a string pool never matches numbers and back
            return np.full(x.shape, -1, dtype=np.int64)
        if x.dtype == object:
            pos = np.searchsorted(self.vocab, x)
        else:
            pos = np.searchsorted(self.vocab, x.astype(np.int64))
        pos = np.minimum(pos, len(self.vocab) - 1)
        return np.where(self.vocab[pos] == x, pos, -1).astype(np.int64)

    def child(self, node: np.ndarray, token: np.ndarray) -> np.ndarray:
        """The child of each ``node`` through ``token`` (-1: none)."""
        if len(self.keys) == 0:
            return np.full(node.shape, -1, dtype=np.int64)
        key = node * self.radix + token
        pos = np.minimum(np.searchsorted(self.keys, key), len(self.keys) - 1)
        found = (self.keys[pos] == key) & (node >= 0) & (token >= 0)
        return np.where(found, self.children[pos], -1)


def _tfidf_trie(node: NodeInfo, pool: list[Any], counts: list[int], indexes: list[int],
                min_len: int, max_len: int) -> _NgramTrie:
    """Split the pool into n-grams (``ngram_counts`` gives where each size starts) and build
    the trie of those with ``min_len <= n <= max_len``; raise ValueError on a bad layout."""
    vocab = np.array(sorted(set(pool)), dtype=object if pool and isinstance(pool[0], str)
                     else np.int64)
    lookup = {tok: i for i, tok in enumerate(vocab.tolist())}
    grams: list[tuple[int, ...]] = []
    columns: list[int] = []
    seen: set[tuple[int, ...]] = set()
    gram_id = 0
    bounds = list(counts) + [len(pool)]
    for size, (start, end) in enumerate(zip(bounds[:-1], bounds[1:]), start=1):
        if not 0 <= start <= end <= len(pool):
            raise ValueError(f"{node.describe()}: ngram_counts {counts} do not fit a pool of "
                             f"{len(pool)} items")
        if (end - start) % size:
            raise ValueError(f"{node.describe()}: {end - start} items do not make whole "
                             f"{size}-grams")
        for first in range(start, end, size):
            if gram_id >= len(indexes):
                raise ValueError(f"{node.describe()}: ngram_indexes has {len(indexes)} entries,"
                                 f" fewer than the pool's n-grams")
            tokens = pool[first:first + size]
            gram = tuple(lookup[t] for t in tokens)
            if gram in seen:
                raise ValueError(f"{node.describe()}: duplicate {size}-gram {tokens}")
            seen.add(gram)
            if min_len <= size <= max_len:
                grams.append(gram)
                columns.append(int(indexes[gram_id]))
            gram_id += 1
    return _NgramTrie(vocab, grams, columns)


@kernels.register("TfIdfVectorizer", 9)
def tfidf_vectorizer(node: NodeInfo):
    """TfIdfVectorizer 9+: count the pool's n-grams (with skips) in each row of a [C] or [N, C]
    tensor and weight them as TF, IDF or TFIDF."""
    attrs = node.attrs
    mode = attrs.get("mode")
    if mode not in ("TF", "IDF", "TFIDF"):
        raise ValueError(f"{node.describe()}: mode must be TF, IDF or TFIDF, got {mode!r}")
    min_len, max_len = int(attrs["min_gram_length"]), int(attrs["max_gram_length"])
    max_skip = int(attrs["max_skip_count"])
    if min_len < 1 or max_len < min_len or max_skip < 0:
        raise ValueError(f"{node.describe()}: need 1 <= min_gram_length <= max_gram_length and "
                         f"max_skip_count >= 0")
    indexes = [int(i) for i in attrs["ngram_indexes"]]
    if not indexes or min(indexes) < 0:
        raise ValueError(f"{node.describe()}: ngram_indexes must be non-empty and non-negative")
    pool = attrs.get("pool_strings") or attrs.get("pool_int64s") or []
    if attrs.get("pool_strings") and attrs.get("pool_int64s"):
        raise ValueError(f"{node.describe()}: give pool_strings or pool_int64s, not both")
    weights = attrs.get("weights")
    if weights and len(weights) != len(indexes):
        raise ValueError(f"{node.describe()}: weights ({len(weights)}) and ngram_indexes "
                         f"({len(indexes)}) must have the same size")
    trie = _tfidf_trie(node, list(pool), [int(c) for c in attrs["ngram_counts"]], indexes,
                       min_len, max_len)
    out_size = max(indexes) + 1
    column_weights = None
    if weights:
        column_weights = np.zeros(out_size, dtype=np.float32)
        column_weights[indexes] = np.asarray(weights, dtype=np.float32)

    def count(ids: np.ndarray) -> np.ndarray:
        rows, width = ids.shape
        freq = np.zeros((rows, out_size), dtype=np.int64)
        if width == 0 or trie.max_len == 0:
            return freq
        row_of = np.repeat(np.arange(rows), width).reshape(rows, width)
        starts = np.arange(width)
        for skip in range(1, max_skip + 2):
            shortest = min_len if skip == 1 else max(min_len, 2)
            if shortest > trie.max_len:
                break
            state = np.zeros((rows, width), dtype=np.int64)
            for level in range(trie.max_len):
                pos = starts + level * skip
                inside = pos < width
                if not inside.any():
                    break
                tokens = np.where(inside, ids[:, np.minimum(pos, width - 1)], -1)
                state = trie.child(state, tokens)
                if level + 1 >= shortest:
                    col = np.where(state >= 0, trie.column[state], -1)
                    hit = col >= 0
                    np.add.at(freq, (row_of[hit], col[hit]), 1)
                if not (state >= 0).any():
                    break
        return freq

    def compute(x):
        if x.ndim not in (1, 2):
            raise ValueError(f"{node.describe()}: input must be [C] or [N, C], "
                             f"got shape {list(x.shape)}")
        rows = x.reshape(1, -1) if x.ndim == 1 else x
        freq = count(trie.token_ids(rows))
        if mode == "TF":
            y = freq.astype(np.float32)
        elif mode == "IDF":
            present = (freq > 0).astype(np.float32)
            y = present * column_weights if column_weights is not None else present
        else:
            y = freq.astype(np.float32)
            if column_weights is not None:
                y = y * column_weights
        return (y.reshape(out_size) if x.ndim == 1 else y,)

    return compute


# ---------------------------------------------------------------------------------------------
# com.microsoft:Tokenizer (ONNX Runtime's contrib op; skl2onnx's text vectorizers use it)


def _tokenizer_split(node: NodeInfo):
    """The function splitting one string into raw tokens, by ``tokenexp`` matches, by
    ``separators`` (RE2 patterns), or into characters (``separators == ['']``)."""
    tokenexp = str(node.attrs.get("tokenexp") or "")
    separators = [str(s) for s in node.attrs.get("separators") or []]
    if tokenexp and separators:
        raise ValueError(f"{node.describe()}: set either 'tokenexp' or 'separators', not both")
    if tokenexp:
        pattern = _re2_to_python(tokenexp)
        return lambda text: [m.group(0) for m in pattern.finditer(text) if m.group(0)]
    if not separators:
        raise ValueError(f"{node.describe()}: one of 'tokenexp' or 'separators' is required")
    if separators == [""]:
        return list
    if "" in separators:
        raise ValueError(f"{node.describe()}: the empty separator (character mode) must be "
                         "the only separator")
    combined = re.compile("|".join(f"(?:{_re2_to_python(s).pattern})" for s in separators))
    return lambda text: [piece for piece in combined.split(text) if piece]


@kernels.register("Tokenizer", 1, domain="com.microsoft")
def tokenizer(node: NodeInfo):
    """com.microsoft:Tokenizer 1: split each string of a [C] or [N, C] tensor into tokens
    along a new last axis, dropping tokens shorter than ``mincharnum``, framing each row with
    \\x02/\\x03 when ``mark`` is set and padding with ``pad_value`` (ONNX Runtime's contrib op,
    which skl2onnx's CountVectorizer/TfidfVectorizer conversions use)."""
    for required in ("mark", "pad_value", "mincharnum"):
        if required not in node.attrs:
            raise ValueError(f"{node.describe()}: attribute '{required}' is required")
    mark = bool(node.attrs["mark"])
    pad = str(node.attrs["pad_value"])
    mincharnum = int(node.attrs["mincharnum"])
    if mincharnum < 1:
        raise ValueError(f"{node.describe()}: mincharnum must be positive, got {mincharnum}")
    split = _tokenizer_split(node)

    def compute(x):
        if x.ndim not in (1, 2):
            raise ValueError(f"{node.describe()}: input must be [C] or [N, C], got {x.shape}")
        rows = []
        for text in x.reshape(-1).tolist():
            tokens = [t for t in split(text) if len(t) >= mincharnum]
            rows.append(["\x02", *tokens, "\x03"] if mark else tokens)
        width = max((len(r) for r in rows), default=0)
        out = np.full((len(rows), width), pad, dtype=object)
        for i, tokens in enumerate(rows):
            out[i, :len(tokens)] = tokens
        return (out.reshape(x.shape + (width,)),)

    return compute
