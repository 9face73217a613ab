"""Which of onnxruntime's CPU contrib ops ort runs: every op onnxruntime's CPU provider
registers beyond ONNX's own must either have a CPU kernel here or be listed in
``expected/missing_ops.txt`` with the reason it is left out. A new kernel fails this test
until its line is removed (so the list stays true), and an op onnxruntime adds shows up."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from ort_provider_cpu.kernels import ALL_KERNELS

onnxruntime = pytest.importorskip("onnxruntime", reason="onnxruntime's kernel registry is the list")

MISSING_FILE = Path(__file__).parent / "expected" / "missing_ops.txt"
#: onnxruntime's own copy nodes (its partitioner inserts them; models never hold them).
_INTERNAL = {("", "MemcpyFromHost"), ("", "MemcpyToHost")}


def _onnxruntime_contrib_ops() -> dict[tuple[str, str], int]:
    """(domain, op) -> the first version onnxruntime's CPU provider runs."""
    from onnxruntime.capi import _pybind_state

    ops: dict[tuple[str, str], int] = {}
    for kernel in _pybind_state.get_all_opkernel_def():
        if kernel.provider != "CPUExecutionProvider":
            continue
        domain = "" if kernel.domain in ("", "ai.onnx") else kernel.domain
        if domain == "ai.onnx.ml":
            continue
        if domain == "":
            since = kernel.version_range[0]
            try:  # an ONNX op at this version: not a contrib op
                onnx.defs.get_schema(kernel.op_name, max_inclusive_version=since, domain="")
                continue
            except onnx.defs.SchemaError:
                pass
        if (domain, kernel.op_name) not in _INTERNAL:
            ops[(domain, kernel.op_name)] = kernel.version_range[0]
    return ops


def _missing() -> set[tuple[str, str]]:
    """onnxruntime's contrib ops with no CPU kernel here covering their first version."""
    ours = {}
    for kernel in ALL_KERNELS:
        ours.setdefault((kernel.domain, kernel.op_type), []).append(kernel)
    return {key for key, since in _onnxruntime_contrib_ops().items()
            if not any(k.covers(since) for k in ours.get(key, ()))}


def _listed() -> dict[tuple[str, str], str]:
    listed = {}
    for line in MISSING_FILE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, reason = line.partition(" ")
        domain, _, op = name.rpartition(":")
        assert reason.strip(), f"{MISSING_FILE.name}: {name} has no reason"
        listed[("" if domain == "ai.onnx" else domain, op)] = reason.strip()
    return listed


def test_every_missing_contrib_op_is_listed_with_a_reason():
    missing = _missing()
    listed = _listed()
    unlisted = sorted(f"{d or 'ai.onnx'}:{o}" for d, o in missing - set(listed))
    implemented = sorted(f"{d or 'ai.onnx'}:{o}" for d, o in set(listed) - missing)
    assert not unlisted, f"onnxruntime's CPU provider has these contrib ops and ort does not; " \
        f"implement them or list them in {MISSING_FILE.name} with a reason: {unlisted}"
    assert not implemented, f"remove these from {MISSING_FILE.name} (ort runs them now, or " \
        f"onnxruntime no longer has them): {implemented}"
