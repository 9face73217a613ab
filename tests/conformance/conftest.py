"""Expected outcomes of the ONNX backend conformance suite.

``expected_outcomes.txt`` lists every test that is expected to fail, one per line as
``<test name> <one-line reason>``. Such a test is marked ``xfail(strict=True)``: if it fails,
CI stays green; if it starts passing, CI fails until the file is refreshed, so improvements are
recorded. Tests not listed must pass, so a regression fails CI.

Refresh the file after changing kernels::

    pytest tests/conformance --update-expected

``--ignore-expected`` runs without the markers and leaves the file alone (plain pass/fail).

The refresh keeps the reasons already written for tests that still fail and takes the first
line of the error for new failures; edit those into a real reason where the error is not one.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

EXPECTED_FILE = Path(__file__).with_name("expected_outcomes.txt")
_HEADER = """\
# Expected failures of the ONNX backend test suite over ort_backend (onnx {onnx_version}).
# One line per test: <test name> <reason>. Tests not listed are expected to pass.
# Regenerate with: pytest tests/conformance --update-expected
"""


def _read_expected() -> dict[str, str]:
    expected: dict[str, str] = {}
    if EXPECTED_FILE.exists():
        for line in EXPECTED_FILE.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, _, reason = line.partition(" ")
            expected[name] = reason.strip() or "no reason recorded"
    return expected


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-expected",
        action="store_true",
        help="run the conformance suite without expectations and rewrite expected_outcomes.txt",
    )
    parser.addoption(
        "--ignore-expected",
        action="store_true",
        help="run the conformance suite without expectations and leave expected_outcomes.txt "
        "alone (for looking at the real outcome of a few tests while developing)",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--update-expected"):
        config.pluginmanager.register(_OutcomeRecorder(_read_expected()), "ort-outcome-recorder")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--update-expected") or config.getoption("--ignore-expected"):
        return
    expected = _read_expected()
    for item in items:
        reason = expected.get(item.name)
        if reason is not None:
            item.add_marker(pytest.mark.xfail(reason=reason, strict=True))


def _first_line(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = str(crash.message) if crash is not None else str(report.longrepr)
    text = text.replace("[ONNXRuntimeError] : ", "")
    line = next((part.strip() for part in text.splitlines() if part.strip()), "failed")
    line = re.sub(r"^ort\.errors\.(\w+): \d+ : \w+ : ", r"\1: ", line)
    return re.sub(r"\s+", " ", line)[:200]


class _OutcomeRecorder:
    """Records each test's outcome and rewrites the expected-outcomes file at the end."""

    def __init__(self, old: dict[str, str]) -> None:
        self.old = old
        self.outcomes: dict[str, str] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        name = report.nodeid.rsplit("::", 1)[-1]
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            if report.skipped:
                self.outcomes[name] = "skipped"
            elif report.failed:
                self.outcomes[name] = _first_line(report)
            else:
                self.outcomes.setdefault(name, "passed")

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        import onnx

        merged = {n: r for n, r in self.old.items() if n not in self.outcomes}  # not run now
        for name, outcome in self.outcomes.items():
            if outcome not in ("passed", "skipped"):
                merged[name] = self.old.get(name, outcome)
        lines = [_HEADER.format(onnx_version=onnx.__version__)]
        lines += [f"{name} {reason}\n" for name, reason in sorted(merged.items())]
        EXPECTED_FILE.write_text("".join(lines), encoding="utf-8")
        passed = sum(1 for o in self.outcomes.values() if o == "passed")
        failed = sum(1 for o in self.outcomes.values() if o not in ("passed", "skipped"))
        print(f"\nexpected outcomes written to {EXPECTED_FILE}: {passed} passed, {failed} failed")


_KINDS = {
    "OnnxBackendNodeModelTest": "node",
    "OnnxBackendSimpleModelTest": "simple",
    "OnnxBackendPyTorchConvertedModelTest": "pytorch-converted",
    "OnnxBackendPyTorchOperatorModelTest": "pytorch-operator",
    "OnnxBackendRealModelTest": "real",
}


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """Print passed/run per kind of backend test (the figures issue notes quote); an expected
    failure (xfail) counts as not passed."""
    counts: dict[str, list[int]] = {}
    for outcome in ("passed", "failed", "xfailed", "xpassed"):
        for report in terminalreporter.stats.get(outcome, []):
            if getattr(report, "when", "call") != "call":
                continue
            parts = report.nodeid.split("::")
            kind = _KINDS.get(parts[-2] if len(parts) >= 2 else "", None)
            if kind is None:
                continue
            entry = counts.setdefault(kind, [0, 0])
            entry[1] += 1
            entry[0] += outcome in ("passed", "xpassed")
    if counts:
        terminalreporter.write_line(
            "conformance passed/run: " + ", ".join(
                f"{kind} {counts[kind][0]}/{counts[kind][1]}" for kind in _KINDS.values()
                if kind in counts))
