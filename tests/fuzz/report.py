"""Judging fuzz results: per-category agreement, causes of disagreement, known entries.

ort *fails* a mutant (:attr:`Result.problems`) when it crashes, hangs, raises an exception that
is not an ``ort.OrtError`` (``untyped``), or accepts what onnxruntime refuses or the reverse
(``disagrees``; judged only where onnxruntime itself neither crashed nor hung). Every failure
that is known is listed in ``known_disagreements.txt`` as ``<mutant id> <reason>``; an unlisted
failure, or a listed id that no longer fails (stale), is what the quick test reports.

:func:`cause` names a failure's likely cause in one line, from a table of message patterns
(:data:`REASONS`) or else from the refusing runtime's message with names and numbers blanked,
so that failures group by what would fix them.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from .harness import Outcome, Result

__all__ = ["KNOWN_PATH", "REASONS", "load_known", "write_known", "essence", "cause",
           "CategoryRow", "category_rows", "check_known", "markdown"]

KNOWN_PATH = Path(__file__).with_name("known_disagreements.txt")

#: (pattern over "<direction>: <message essence>", reason), first match wins. Directions:
#: ``ort accepts`` (onnxruntime refused), ``ort refuses`` (onnxruntime accepted), ``ort untyped``,
#: ``ort crash``, ``ort hang``.
REASONS: list[tuple[str, str]] = [
    (r"^ort untyped", "ort raises an untyped exception"),
    (r"^ort (crash|hang)", "ort crashes or hangs"),
    (r"^ort refuses: .*(reads '.*', which is not a graph input|expected to have type but instead is null)",
     "ort refuses nodes out of topological order (onnxruntime sorts them)"),
    (r"^ort refuses: .*sparse_tensor", "ort types a sparse initializer as sparse_tensor (onnxruntime makes it dense)"),
    (r"^ort refuses: .*names the external data location 'ort:",
     "ort reserves 'ort:' locations even where a real file has that name (by design)"),
    (r"^ort refuses: .*'\.\.' would leave", "ort refuses any '..' in a location, even one that stays inside"),
    (r"^ort refuses: .*Constant node .* must have exactly one value",
     "ort refuses a Constant with a repeated value attribute (onnxruntime takes it)"),
    (r"^ort refuses: .*Constant node .* has unknown attribute",
     "ort refuses a Constant with a misnamed value attribute (onnxruntime takes it)"),
    (r"^ort refuses: .*Status Message:", "ort fails at run where onnxruntime runs"),
    (r"^ort accepts: .*(Duplicate definition|Duplicate constant node|AddInitializedTensor)", "ort accepts a value defined twice"),
    (r"^ort accepts: .*Node input .* is not a graph input, initializer, or output of a previous node",
     "ort accepts a function body out of topological order (onnxruntime refuses)"),
    (r"^ort accepts: .*marked single but has an empty string", "ort accepts an empty name for a required input"),
    (r"^ort accepts: .*string tensor can not have raw data", "ort accepts a string tensor with raw_data"),
    (r"^ort accepts: .*appeared multiple times", "ort accepts a duplicated attribute"),
    (r"^ort accepts: .*type field and data field mismatch", "ort accepts an attribute of the wrong type"),
    (r"^ort accepts: .*Exception during initialization: .*(GetAttr|attribute)",
     "ort accepts a node without an attribute onnxruntime's kernel requires"),
    (r"^ort accepts: .*Could not find an implementation", "ort runs a type onnxruntime has no kernel for"),
    (r"^ort accepts: .*(Status Message|Exception during initialization)",
     "ort runs a node that onnxruntime's kernel refuses"),
    (r"^ort accepts: .*Unrecognized attribute", "ort accepts an unknown attribute"),
    (r"^ort accepts: .*Required attribute .* is missing", "ort accepts a missing required attribute"),
    (r"^ort accepts: .*Attribute .* is expected to have field", "ort accepts an attribute of the wrong type"),
    (r"^ort accepts: .*(Mismatched attribute type|attribute type)", "ort accepts an attribute of the wrong type"),
    (r"^ort accepts: .*Type parameter .* bound to different types", "ort accepts inputs whose types disagree"),
    (r"^ort accepts: .*(does not match expected type|Type Error)", "ort accepts a declared type that contradicts inference"),
    (r"^ort accepts: .*Invalid tensor data type", "ort accepts an unknown element type"),
    (r"^ort accepts: .*not currently registered or supported", "ort accepts an element type onnxruntime has no kernel type for"),
    (r"^ort accepts: .*(ShapeInferenceError|TypeInferenceError)", "ort accepts what onnx shape/type inference refuses"),
    (r"^ort accepts: .*Unsupported model IR version|^ort accepts: .*opset", "ort accepts an unsupported IR version or opset"),
    (r"^ort accepts: .*does not have type information", "ort accepts a graph input without a type"),
]


def load_known(path: Path = KNOWN_PATH) -> dict[str, str]:
    """``mutant id -> reason`` from ``path`` (``#`` comments and blank lines skipped)."""
    known = {}
    if not path.exists():
        return known
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            mutant_id, _, reason = line.partition(" ")
            known[mutant_id] = reason.strip()
    return known


def write_known(results: Sequence[Result], known: dict[str, str], path: Path = KNOWN_PATH) -> int:
    """Rewrite ``path`` with the failures among ``results`` plus the entries for mutants not
    run; a listed reason is kept, a new one is :func:`cause`'s guess. Returns the entry count."""
    run = {r.mutant.id for r in results}
    entries = {i: reason for i, reason in known.items() if i not in run}
    for result in results:
        if result.problems:
            entries[result.mutant.id] = known.get(result.mutant.id) or cause(result)
    header = [
        "# Known fuzz failures of ort: <mutant id> <reason>, one per line.",
        "# A failure is a crash, hang or untyped exception of ort, or an accept/reject",
        "# disagreement with onnxruntime. tests/fuzz/test_fuzz.py fails on a failure not listed",
        "# here and on a listed id that no longer fails; fix the cause, then remove its lines.",
        "# It covers the quick set and the long run (tox -e fuzz-long). After a fix, redraft it with",
        "# python tests/fuzz/run_fuzz.py --per-category 200 --jobs 2 --update-known",
        "# (reasons already listed are kept; new ones are guessed from the messages: check them).",
    ]
    lines = [f"{i} {entries[i]}" for i in sorted(entries, key=_id_order)]
    path.write_text("\n".join(header + lines) + "\n", encoding="utf-8")
    return len(lines)


def _id_order(mutant_id: str) -> tuple:
    parts = mutant_id.split("/")
    return tuple(int(p) if p.isdigit() else p for p in parts)


_PREFIXES = [
    re.compile(r"^\[ONNXRuntimeError\] : \d+ : \w+ : "),
    re.compile(r"^Load model from \S+ failed:"),
    re.compile(r"^/onnxruntime_src/\S+ [^(]*\((?:[^()]|\([^()]*\))*\)\s*"),
    re.compile(r"^Load model failed: "),
]


def essence(message: str) -> str:
    """The part of an error message that says what is wrong, names and numbers blanked."""
    text = message
    for prefix in _PREFIXES:
        text = prefix.sub("", text)
    if "In Node, (" in text and ", Error " in text:
        text = text.split(", Error ", 1)[1]
    text = re.sub(r"'[^']*'", "'…'", text)
    text = re.sub(r"\([^()]*\)", "(…)", text)
    text = re.sub(r"\d+", "N", text)
    return text.strip()[:160]


def _direction(result: Result) -> tuple[str, Outcome | None]:
    if result.ort.kind in ("crash", "hang", "untyped"):
        return f"ort {result.ort.kind}", result.ort
    if result.ort.accepted:
        return "ort accepts", result.oracle
    return "ort refuses", result.ort


def cause(result: Result) -> str:
    """One line naming why ort fails ``result`` (empty when it does not fail)."""
    if not result.problems:
        return ""
    direction, refusing = _direction(result)
    text = f"{direction}: {refusing.cls} {refusing.message}" if refusing is not None else direction
    for pattern, reason in REASONS:
        if re.search(pattern, text):
            if direction == "ort untyped":
                where = re.sub(r":\d+", "", result.ort.where)
                return f"{reason}: {result.ort.cls} in {where}"
            if direction in ("ort crash", "ort hang"):
                return f"{reason}: {result.ort.label}"
            return reason
    detail = essence(refusing.message) if refusing is not None else ""
    verb = "ort accepts; onnxruntime refuses" if direction == "ort accepts" else \
        "ort refuses, onnxruntime accepts"
    return f"{verb}: {refusing.cls if refusing else ''} {detail}".strip()


@dataclasses.dataclass
class CategoryRow:
    """Counts for one category."""

    category: str
    mutants: int = 0
    ort_accepted: int = 0
    ort_refused: int = 0
    oracle_accepted: int = 0
    oracle_refused: int = 0
    oracle_unusable: int = 0  # onnxruntime crashed or hung: not compared
    not_compared: int = 0  # onnxruntime was not run
    agree: int = 0
    phase_match: int = 0
    crashes: int = 0
    hangs: int = 0
    untyped: int = 0

    @property
    def compared(self) -> int:
        """Mutants where onnxruntime gave an answer."""
        return self.mutants - self.oracle_unusable - self.not_compared

    @property
    def agreement(self) -> float:
        """Percentage of compared mutants on which ort and onnxruntime agree."""
        return 100.0 * self.agree / self.compared if self.compared else 100.0


def category_rows(results: Iterable[Result]) -> list[CategoryRow]:
    """One row per category, in first-seen order, then a total row ``all``."""
    rows: dict[str, CategoryRow] = {}
    total = CategoryRow("all")
    for result in results:
        row = rows.setdefault(result.mutant.category, CategoryRow(result.mutant.category))
        for target in (row, total):
            target.mutants += 1
            target.ort_accepted += result.ort.accepted
            target.ort_refused += not result.ort.accepted
            if result.comparable:
                target.oracle_accepted += result.oracle.accepted
                target.oracle_refused += not result.oracle.accepted
                target.agree += result.agrees
                target.phase_match += result.agrees and result.phase_matches
            elif result.oracle is not None:
                target.oracle_unusable += 1
            else:
                target.not_compared += 1
            target.crashes += result.ort.kind == "crash"
            target.hangs += result.ort.kind == "hang"
            target.untyped += result.ort.kind == "untyped"
    return [*rows.values(), total]


def check_known(results: Sequence[Result], known: dict[str, str]) -> tuple[list[Result], list[str]]:
    """(failures not listed in ``known``, listed ids among ``results`` that no longer fail).

    Without onnxruntime's outcome a listed disagreement cannot be judged, so it is not stale."""
    unlisted = [r for r in results if r.problems and r.mutant.id not in known]
    stale = [r.mutant.id for r in results
             if not r.problems and r.mutant.id in known and r.oracle is not None]
    return unlisted, stale


def _table(results: Sequence[Result]) -> list[str]:
    lines = ["| category | mutants | ort acc/ref | onnxruntime acc/ref | agreement | same phase | "
             "ort crash | ort hang | ort untyped | onnxruntime crash/hang |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in category_rows(results):
        lines.append(
            f"| {row.category} | {row.mutants} | {row.ort_accepted}/{row.ort_refused} | "
            f"{row.oracle_accepted}/{row.oracle_refused} | "
            f"{f'{row.agreement:.1f}%' if row.compared else '-'} | "
            f"{row.phase_match}/{row.agree} | {row.crashes} | {row.hangs} | {row.untyped} | "
            f"{row.oracle_unusable} |")
    return lines


def _one_line(outcome: Outcome | None) -> str:
    if outcome is None:
        return "-"
    text = outcome.label
    detail = outcome.message or outcome.note
    if detail:
        text += f" — {detail[:200]}"
    if outcome.where:
        text += f" ({outcome.where})"
    return text.replace("|", "\\|")


def markdown(results: Sequence[Result], known: dict[str, str], title: str) -> str:
    """The whole report: table, failures grouped by cause, then every failure."""
    failing = [r for r in results if r.problems]
    unlisted, stale = check_known(results, known)
    out = [f"# {title}", "", *_table(results), ""]
    out.append(f"{len(failing)} failures of ort ({len(unlisted)} not in known_disagreements.txt), "
               f"{len(stale)} stale known entries.")
    by_cause: dict[str, list[Result]] = defaultdict(list)
    for result in failing:
        by_cause[cause(result)].append(result)
    out += ["", "## Failures by cause", "", "| count | cause | categories | example |", "|---:|---|---|---|"]
    for reason, group in sorted(by_cause.items(), key=lambda item: (-len(item[1]), item[0])):
        categories = Counter(r.mutant.category for r in group)
        listed = ", ".join(f"{c} {n}" for c, n in categories.most_common())
        out.append(f"| {len(group)} | {reason.replace('|', '/')} | {listed} | {group[0].mutant.id} |")
    crashed = [r for r in results if not r.comparable and r.oracle is not None]
    if crashed:
        out += ["", "## onnxruntime crashes and hangs (not compared)", ""]
        out += [f"- `{r.mutant.id}` ({r.mutant.note}): onnxruntime {_one_line(r.oracle)}; "
                f"ort {_one_line(r.ort)}" for r in crashed]
    if stale:
        out += ["", "## Stale known entries (these now pass: remove them)", ""]
        out += [f"- `{i}`" for i in stale]
    out += ["", "## Every failure", ""]
    for result in failing:
        flag = "" if result.mutant.id in known else " **(not listed)**"
        out.append(f"- `{result.mutant.id}`{flag} {result.mutant.note}  \n"
                   f"  ort: {_one_line(result.ort)}  \n  onnxruntime: {_one_line(result.oracle)}")
    return "\n".join(out) + "\n"
