"""Which mutants a run takes: the quick CI set and any larger selection.

Pseudo-categories ``corpus`` (the unmutated seeds) and ``named`` (the fixed hostile cases of
:mod:`named`) are taken whole; every random category of :data:`mutate.CATEGORIES` gives
``per_category`` mutants drawn with ``seed``.
"""

from __future__ import annotations

from collections.abc import Iterable

from .mutate import CATEGORIES, Mutant, corpus_mutants, mutants
from .named import named_mutants

__all__ = ["QUICK_SEED", "QUICK_PER_CATEGORY", "ALL_CATEGORIES", "select", "quick_set"]

#: The seed of the quick set every CI run takes.
QUICK_SEED = 0
#: Mutants per random category in the quick set (about 1.5 minutes on 2 cores, all categories;
#: enough that the 99% agreement goal is judged per category, one failure in 100 allowed).
QUICK_PER_CATEGORY = 300
#: Every category a run can name, in report order.
ALL_CATEGORIES = ("corpus", "named", *CATEGORIES)


def select(seed: int, per_category: int, categories: Iterable[str] | None = None) -> list[Mutant]:
    """The mutants of ``categories`` (all when None), in :data:`ALL_CATEGORIES` order."""
    chosen = set(ALL_CATEGORIES if categories is None else categories)
    unknown = chosen - set(ALL_CATEGORIES)
    if unknown:
        raise ValueError(f"unknown categories {sorted(unknown)}; known: {', '.join(ALL_CATEGORIES)}")
    selected: list[Mutant] = []
    if "corpus" in chosen:
        selected += corpus_mutants()
    if "named" in chosen:
        selected += named_mutants()
    selected += mutants(seed, per_category, [c for c in CATEGORIES if c in chosen])
    return selected


def quick_set() -> list[Mutant]:
    """The fixed-seed set ``test_fuzz.py`` runs in every CI."""
    return select(QUICK_SEED, QUICK_PER_CATEGORY)
