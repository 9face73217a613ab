"""The contrib-op conformance table: every case of ``cases_*.py`` against onnxruntime.

Expected failures live in ``expected/<family>.txt`` (see ``conftest.py``); refresh them with
``pytest ort-provider-cpu/tests/contrib --update-contrib-expected``.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
from contrib_case import Case

import ort
from ort.testing import assert_outputs_match

onnxruntime = pytest.importorskip("onnxruntime", reason="onnxruntime is the oracle of these tests")

HERE = Path(__file__).parent


def _all_cases() -> list[tuple[str, Case]]:
    cases = []
    for path in sorted(HERE.glob("cases_*.py")):
        family = path.stem[len("cases_"):]
        module = importlib.import_module(path.stem)
        names = set()
        for case in module.CASES:
            assert case.name not in names, f"{path.name}: case {case.name} twice"
            names.add(case.name)
            cases.append((family, case))
    return cases


CASES = _all_cases()


def _oracle(model_bytes: bytes, feeds):
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(model_bytes, options,
                                           providers=["CPUExecutionProvider"])
    return session, session.run(None, feeds)


@pytest.mark.parametrize("family,case", CASES, ids=[f"{f}-{c.name}" for f, c in CASES])
def test_contrib(family: str, case: Case) -> None:
    model, feeds = case.model()
    data = model.SerializeToString()
    oracle, expected = _oracle(data, {k: np.copy(v) for k, v in feeds.items()})
    before = {k: np.copy(v) for k, v in feeds.items()}
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    actual = session.run(None, feeds)
    for key, value in before.items():
        np.testing.assert_array_equal(feeds[key], value, err_msg=f"feed {key} was modified")
    assert_outputs_match(actual, expected, case.rtol, case.atol)
    for ours, theirs in zip(session.get_outputs(), oracle.get_outputs()):
        assert ours.type == theirs.type, f"{ours.name}: NodeArg type {ours.type}, " \
            f"onnxruntime {theirs.type}"
        fixed = isinstance(theirs.shape, list) and all(isinstance(d, int) for d in theirs.shape)
        if case.check_shapes and fixed:
            assert ours.shape == theirs.shape, f"{ours.name}: NodeArg shape {ours.shape}, " \
                f"onnxruntime {theirs.shape}"
