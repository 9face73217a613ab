"""Expected outcomes of the contrib-op conformance table.

``expected/<family>.txt`` lists the cases of ``cases_<family>.py`` expected to fail, one per
line as ``<case name> <one-line reason>``; they are marked ``xfail(strict=True)``, so a fix
fails CI until the file records it, and a regression (a case not listed failing) fails CI.

    pytest ort-provider-cpu/tests/contrib --update-contrib-expected

reruns without the markers and rewrites the files (keeping reasons already written for cases
that still fail; a new failure gets its error's first line: edit it into a real reason).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))  # the case modules import contrib_case
EXPECTED_DIR = HERE / "expected"
_HEADER = ("# Expected failures of the {family} contrib-op cases (cases_{family}.py): "
           "<case> <reason>.\n# Cases not listed must pass. Regenerate with: "
           "pytest ort-provider-cpu/tests/contrib --update-contrib-expected\n")
_ID = re.compile(r"^test_contrib\[(?P<family>[a-z0-9_]+)-(?P<case>.+)\]$")


def _read(family: str) -> dict[str, str]:
    path = EXPECTED_DIR / f"{family}.txt"
    found: dict[str, str] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                name, _, reason = line.partition(" ")
                found[name] = reason.strip() or "no reason recorded"
    return found


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-contrib-expected", action="store_true",
                     help="run the contrib-op cases without expectations and rewrite "
                          "ort-provider-cpu/tests/contrib/expected/*.txt")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--update-contrib-expected"):
        config.pluginmanager.register(_Recorder(), "ort-contrib-recorder")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--update-contrib-expected"):
        return
    cache: dict[str, dict[str, str]] = {}
    for item in items:
        match = _ID.match(item.name)
        if match is None:
            continue
        family = match["family"]
        expected = cache.setdefault(family, _read(family))
        reason = expected.get(match["case"])
        if reason is not None:
            item.add_marker(pytest.mark.xfail(reason=reason, strict=True))


class _Recorder:
    """Records each case's outcome and rewrites the families' expected files at the end."""

    def __init__(self) -> None:
        self.outcomes: dict[str, dict[str, str]] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        match = _ID.match(report.nodeid.rsplit("::", 1)[-1])
        if match is None or report.when not in ("setup", "call"):
            return
        family = self.outcomes.setdefault(match["family"], {})
        if report.failed:
            crash = getattr(report.longrepr, "reprcrash", None)
            text = str(crash.message) if crash is not None else str(report.longrepr)
            line = next((p.strip() for p in text.splitlines() if p.strip()), "failed")
            family[match["case"]] = re.sub(r"\s+", " ", line)[:200]
        elif report.when == "call":
            family.setdefault(match["case"], "passed")

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        EXPECTED_DIR.mkdir(exist_ok=True)
        for family, outcomes in sorted(self.outcomes.items()):
            old = _read(family)
            failing = {name: reason for name, reason in old.items() if name not in outcomes}
            failing.update((name, old.get(name, outcome)) for name, outcome in outcomes.items()
                           if outcome != "passed")
            lines = [_HEADER.format(family=family)]
            lines += [f"{name} {reason}\n" for name, reason in sorted(failing.items())]
            (EXPECTED_DIR / f"{family}.txt").write_text("".join(lines), encoding="utf-8")
