"""The quick fixed-seed fuzz set (issue 15, part 7), run in every CI by ``tox -e fuzz``.

Every seed model runs in both runtimes; then every mutant of the quick set is loaded and run
by ort and by onnxruntime, each in a forked child under a time and memory limit. A failure of
ort (crash, hang, untyped exception, or an accept/reject disagreement with onnxruntime) must
be listed with its reason in known_disagreements.txt, and a listed id that no longer fails is
stale. The issue's goal, >= 99% agreement in every random category, is asserted (listed
deliberate differences aside; the named edge cases may differ only deliberately).
``run_fuzz.py --quick`` prints the same run as a table.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path

import pytest

from . import report, suite
from .harness import RUNTIMES, Harness, materialize
from .mutate import MODEL_PATH, Mutant, mutants
from .named import named_mutants

HAVE_ORACLE = importlib.util.find_spec("onnxruntime") is not None
NO_ORACLE = "onnxruntime (the oracle) is not installed: agreement is not judged"
#: The goal of issue 15: per-category agreement with onnxruntime, counting every disagreement.
GOAL_AGREEMENT = 99.0


def _jobs() -> int:
    return max(1, min(2, os.cpu_count() or 1))


@pytest.fixture(scope="module")
def results():
    """The quick set's results (ort only when onnxruntime is missing)."""
    runtimes = RUNTIMES if HAVE_ORACLE else ("ort",)
    with Harness(runtimes, jobs=_jobs()) as harness:
        return harness.run(suite.quick_set())


@pytest.fixture(scope="module")
def known():
    """known_disagreements.txt."""
    return report.load_known()


def _listing(results) -> str:
    return "\n".join(f"  {r.mutant.id} ({r.mutant.note}): ort {r.ort.label} {r.ort.message[:160]}"
                     f"{' ' + r.ort.where if r.ort.where else ''}; onnxruntime "
                     f"{r.oracle.label + ' ' + r.oracle.message[:160] if r.oracle else '-'}; "
                     f"cause: {report.cause(r)}" for r in results)


def test_every_seed_runs_in_onnxruntime(results):
    if not HAVE_ORACLE:
        pytest.skip(NO_ORACLE)
    refused = [r for r in results if r.mutant.category == "corpus" and not r.oracle.accepted]
    assert not refused, "seed models onnxruntime does not run (the corpus must be valid):\n" + _listing(refused)


def test_every_seed_runs_in_ort(results, known):
    refused = [r for r in results if r.mutant.category == "corpus" and not r.ort.accepted
               and r.mutant.id not in known]
    assert not refused, "seed models ort does not run:\n" + _listing(refused)


def test_no_unlisted_crash_hang_or_untyped_exception(results, known):
    bad = [r for r in results if r.ort.kind in ("crash", "hang", "untyped") and r.mutant.id not in known]
    assert not bad, ("ort crashed, hung or raised an exception that is not an ort.OrtError "
                     "(fix it, or list it in known_disagreements.txt with a reason):\n" + _listing(bad))


def test_no_unlisted_disagreement(results, known):
    if not HAVE_ORACLE:
        pytest.skip(NO_ORACLE)
    unlisted, _ = report.check_known(results, known)
    assert not unlisted, ("ort and onnxruntime disagree on mutants not in known_disagreements.txt "
                          "(fix ort, or list them with a reason; `python tests/fuzz/run_fuzz.py "
                          "--quick --update-known` drafts the lines):\n" + _listing(unlisted))


def test_no_stale_known_entry(results, known):
    if not HAVE_ORACLE:
        pytest.skip(NO_ORACLE)
    _, stale = report.check_known(results, known)
    assert not stale, ("these known_disagreements.txt entries pass now; remove them:\n  "
                       + "\n  ".join(f"{i} {known[i]}" for i in stale))


def test_agreement_goal(results, known):
    """Issue 15's goal: >= 99% accept/reject agreement with onnxruntime in every random
    category. In this sample of 300 a category may hold a cluster of deliberate differences
    (ort running a type onnxruntime has no kernel for), so those, listed as 'deliberate:', do
    not count against the goal here; the long run (tox -e fuzz-long) meets it counting them
    too. The named cases are chosen edge cases, not a sample: there every disagreement must be
    a listed, deliberate difference."""
    if not HAVE_ORACLE:
        pytest.skip(NO_ORACLE)
    deliberate = {i for i, why in known.items() if why.startswith("deliberate")}
    judged = [r for r in results if r.mutant.id not in deliberate]
    rows = report.category_rows(judged)
    short = [row for row in rows if row.category != "named" and row.agreement < GOAL_AGREEMENT]
    assert not short, "agreement with onnxruntime below the goal of 99%: " + ", ".join(
        f"{row.category} {row.agreement:.1f}% ({row.compared - row.agree} of {row.compared})"
        for row in short)
    named = [r for r in results if r.mutant.category == "named" and r.problems]
    assert all(r.mutant.id in deliberate for r in named), [r.mutant.id for r in named]


def test_known_file_is_well_formed(known):
    text = report.KNOWN_PATH.read_text(encoding="utf-8")
    ids = [line.split(" ", 1)[0] for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert len(ids) == len(set(ids)), "duplicate ids in known_disagreements.txt"
    assert all(known[i] for i in ids), "every known entry needs a reason after its id"
    categories = {i.split("/", 1)[0] for i in ids}
    assert categories <= set(suite.ALL_CATEGORIES), f"unknown categories {categories - set(suite.ALL_CATEGORIES)}"


def test_mutant_ids_are_stable_and_independent_of_the_set_size():
    small = {m.id: m for m in mutants(7, 3)}
    large = {m.id: m for m in mutants(7, 6)}
    assert small and set(small) <= set(large)
    assert all(small[i].model == large[i].model for i in small)
    again = {m.id: m.model for m in mutants(7, 3)}
    assert again == {i: m.model for i, m in small.items()}
    assert len({m.id for m in suite.quick_set()}) == len(suite.quick_set())


def test_materialize_keeps_files_inside_the_folder(tmp_path):
    bad = Mutant("named/x", "escapes", b"", files={"../escaped.bin": b"x"})
    with pytest.raises(ValueError, match="outside its folder"):
        materialize(bad, tmp_path / "m")
    assert not (tmp_path / "escaped.bin").exists()


def _selftest(words: list[str], **limits) -> list[str]:
    cases = [Mutant(f"named/{w}", w, f"{w} model".encode()) for w in words]
    with Harness(("selftest",), **limits) as harness:
        return [r.outcomes["selftest"].label for r in harness.run(cases)]


def test_worker_reports_crash_hang_exit_memory_and_untyped():
    labels = _selftest(["fine", "raise", "untyped", "crash", "exit", "memory", "hang"], timeout=2.0)
    assert labels == ["accepted", "rejected:ValueError@load", "untyped:KeyError@run",
                      "crash:SIGSEGV", "crash:exit 3", "untyped:MemoryError@run", "hang"]


def test_harness_leaves_no_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = set(os.listdir(tempfile.gettempdir()))
    cases = [m for m in named_mutants() if m.links or m.template or "outside/weights.bin" in m.files]
    assert cases
    with Harness(("ort",), jobs=1) as harness:
        harness.run(cases)
    assert list(tmp_path.iterdir()) == []
    assert {n for n in set(os.listdir(tempfile.gettempdir())) - before if n.startswith("ort-fuzz-")} == set()
    assert not Path(MODEL_PATH).exists()
