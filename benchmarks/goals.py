"""The speed goals of the CPU provider (issue 16) as groups of benchmark rows, and the goal table.

Each group lists (model, batch) rows; its figure is the geometric mean of ort / onnxruntime over
the rows that were measured, at each thread count, next to the group's goal (at most that
ratio). A model missing from a run (not made, not fetched, failed) is left out of its group and
counted in the "rows" column (measured of listed).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

#: Batch of the sklearn rows that measure throughput.
SKLEARN_LARGE = 1000


@dataclass(frozen=True)
class Group:
    """One goal: a label, the ratio to stay under, and the (model, batch) rows it covers."""

    label: str
    goal: float
    rows: tuple[tuple[str, int], ...]
    #: real-model rows are taken from the real-model set, whatever their names
    real: bool = False


def _rows(models: Iterable[str], batches: Iterable[int]) -> tuple[tuple[str, int], ...]:
    return tuple((m, b) for m in models for b in batches)


SKLEARN = ("random_forest", "logistic_regression", "gradient_boosting")
CNNS = ("resnet18", "mobilenetv2", "mobilenetv2_extended")
GROUPS = (
    Group("CNNs, batch 1", 1.3, _rows(CNNS, [1])),
    Group("CNNs, batch 8", 1.3, _rows(CNNS, [8])),
    Group("small recurrent (tiny_vad b1/b8, silero_vad)", 1.5,
          _rows(["tiny_vad"], [1, 8]) + (("silero_vad", 1),)),
    Group("sklearn, batch 1", 2.0, _rows(SKLEARN, [1])),
    Group(f"sklearn, batch {SKLEARN_LARGE}", 1.2, _rows(SKLEARN, [SKLEARN_LARGE])),
    Group("small per-node models (Relu chains, b1)", 2.0,
          _rows(["relu_chain_1", "relu_chain_10", "relu_chain_30"], [1])),
    Group("int8 quantized", 2.0,
          _rows(["resnet18_qdq_u8s8", "mobilenetv2_qdq", "resnet18_qop",
                 "bert_base_dynamic_u8s8"], [1, 8]) + (("ddddocr_rec_int8", 1),)),
    Group("GEMM-bound (mlp, bert, gpt2; b1/b8)", 1.1,
          _rows(["mlp", "bert_base", "bert_base_fused", "gpt2_small"], [1, 8])),
    Group("real-model set (batch 1)", 1.5, (), real=True),
)
#: Peak resident set ours / onnxruntime (each engine alone in a fresh process).
MEMORY_GOAL = 1.5


def geomean(values: Iterable[float]) -> float | None:
    """Geometric mean of positive values (None for none)."""
    values = [v for v in values if v and v > 0]
    if not values:
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values))


def ratio_of(report: dict[str, Any]) -> float | None:
    """ort / onnxruntime of one bench report (None where either did not run)."""
    comparison = report.get("comparisons", {}).get("onnxruntime")
    return comparison["ratio"] if comparison else None


def group_rows(group: Group, reports: list[dict[str, Any]], threads: int
               ) -> tuple[list[tuple[str, int, float]], int]:
    """The measured (model, batch, ratio) rows of a group at a thread count, and how many rows
    it lists."""
    at_threads = [r for r in reports if r["config"]["threads"] == threads]
    if group.real:
        wanted = [(r["name"], r["config"]["batch"]) for r in at_threads if r.get("real")]
    else:
        wanted = list(group.rows)
    measured = []
    for name, batch in wanted:
        for report in at_threads:
            if report["name"] == name and report["config"]["batch"] == batch:
                ratio = ratio_of(report)
                if ratio is not None:
                    measured.append((name, batch, ratio))
                break
    return measured, len(wanted)


def _verdict(value: float | None, goal: float) -> str:
    if value is None:
        return "—"
    return "met" if value <= goal else "**NOT met**"


def goal_table(reports: list[dict[str, Any]], thread_counts: list[int],
               memory: dict[str, Any] | None = None) -> list[str]:
    """The goal table (markdown): one row per group with the geomean ratio at each thread
    count, the goal and whether it is met, the slowest row; then the memory rows."""
    head = ["goal group", "goal ≤"]
    for threads in thread_counts:
        head += [f"ours/ortx t{threads}", f"met t{threads}", f"rows t{threads}"]
    head.append(f"slowest row (t{thread_counts[0]})")
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join("---" if i in (0, len(head) - 1) else "---:"
                            for i in range(len(head))) + "|"]
    for group in GROUPS:
        cells = [group.label, f"{group.goal:g}"]
        slowest = "—"
        for index, threads in enumerate(thread_counts):
            measured, listed = group_rows(group, reports, threads)
            value = geomean(r for _, _, r in measured)
            cells += ["—" if value is None else f"{value:.2f}", _verdict(value, group.goal),
                      f"{len(measured)}/{listed}"]
            if index == 0 and measured:
                name, batch, ratio = max(measured, key=lambda row: row[2])
                slowest = f"{name} b{batch} {ratio:.2f}"
        cells.append(slowest)
        lines.append("| " + " | ".join(cells) + " |")
    for label, figures in (memory or {}).items():
        ratio = figures.get("ratio")
        cells = [f"peak RSS {label}", f"{MEMORY_GOAL:g}"]
        for index, _ in enumerate(thread_counts):
            if index == 0:
                cells += ["—" if ratio is None else f"{ratio:.2f}", _verdict(ratio, MEMORY_GOAL),
                          "1/1" if ratio is not None else "0/1"]
            else:
                cells += ["", "", ""]
        cells.append(figures.get("detail", ""))
        lines.append("| " + " | ".join(cells) + " |")
    return lines
