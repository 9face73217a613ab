"""Translation of RE2 regular expressions, the syntax of RegexFullMatch's ``pattern`` and of
com.microsoft Tokenizer's ``tokenexp``/``separators``, into Python ``re`` patterns that match
the same strings: ASCII-only ``\\d \\w \\s \\b`` and POSIX classes, ``$`` only at the end,
``\\z``, ``\\Q..\\E``, ``\\x{..}``, octal escapes, ``\\pN``/``\\p{Lu}`` general categories,
inline flags anywhere, literal ``{`` that starts no repetition. Constructs RE2 rejects
(lookaround, backreferences, possessive or doubled repetitions, ``\\C``) raise ValueError;
Unicode scripts (``\\p{Greek}``) are not supported. It holds no kernels; strings.py and
tokenizer.py use it.
"""

from __future__ import annotations

import functools
import re
import unicodedata

#: A set of code points as inclusive ``(first, last)`` ranges.
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
        """Return a ValueError saying ``what`` is wrong at the current offset."""
        return ValueError(f"{what} at offset {self.pos}")

    def translate(self) -> str:
        """Return the whole pattern translated to Python ``re`` syntax."""
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
        """Translate the escape at ``pos``: a class, an assertion, ``\\Q..\\E`` or one character."""
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
        """Translate the ``(`` at ``pos`` (a group or inline flags) and push its frame."""
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


def re2_to_python(pattern: str) -> re.Pattern[str]:
    """Compile an RE2 pattern with Python ``re``, keeping RE2's meaning where they differ:
    ASCII ``\\d \\w \\s \\b``, ``$`` only at the very end, ``\\z``, ``\\Q..\\E``, ``\\x{..}``,
    POSIX ``[[:alpha:]]`` classes and flags in the middle of a pattern."""
    try:
        return re.compile(_Re2Translator(pattern).translate())
    except (ValueError, re.error) as exc:
        raise ValueError(f"invalid RE2 pattern {pattern!r}: {exc}") from None
