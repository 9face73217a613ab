"""The evaluation engines of the ai.onnx.ml tree ensembles (``ml_trees``): trees compiled once
per node into flat node arrays (:class:`_Forest`).

* :class:`_CompiledForest` (the default where numba imports): the forest packed for
  ``ml_loops.forest_scores``, one compiled walk over rows x trees (rows split over the
  session's intra-op threads for large batches), then ``ml_loops.finish_rows`` (average, base
  values, post transform, top class, two-class rules).
* The numpy engine (``compiled_kernels=0``), evaluating all (tree, row) pairs at once: a run
  either moves every pair one level down per step (a Python loop over the depth of the deepest
  tree) or, for small batches of small forests, decides every node at once and composes the
  successor map log2(depth) times; a cost estimate (:data:`_CALL_COST`) picks the cheaper.

Both add tree scores tree by tree per row, as ONNX Runtime adds them on one thread (with more
threads it adds partial sums per thread).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ort.ep import NodeInfo

from ..intra_op import resolve_threads, split_work
from ..jit import compiled_loops_enabled
from . import ml_loops
from .ml_common import _F32, _TRANSFORMS
from .ml_loops import (
    BY_FLAGS, LEAF, MISSING_TRUE, SIMPLE_LEQ, SIMPLE_LEQ_MISSING, SIMPLE_LT, SIMPLE_LT_MISSING,
)

# Node modes and their truth tables: bit c of a mode's mask says whether a node with that mode
# takes its true branch when the comparison code is c = (x < t) + 2 (x == t) + 4 (x > t)
# (c = 0 when x or t is NaN).
_MODES = ("BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ",
          "LEAF")
_MODE_MASKS = np.array([
    (1 << 1) | (1 << 2),                # LEQ: less or equal
    1 << 1,                             # LT
    (1 << 4) | (1 << 2),                # GTE
    1 << 4,                             # GT
    1 << 2,                             # EQ
    (1 << 0) | (1 << 1) | (1 << 4),     # NEQ (true for NaN, as C++ !=)
    0,                                  # LEAF (never branches)
], dtype=np.uint8)
_COMPARATORS: dict[int, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    0: np.less_equal, 1: np.less, 2: np.greater_equal, 3: np.greater, 4: np.equal,
    5: np.not_equal,
}
_LEAF = 6
# What one numpy call costs, in element operations of the walk (picks the tree traversal
# strategy; a jump's gathers over all nodes cost about 2 walk element operations each).
_CALL_COST = 1000


class _Forest:
    """Trees flattened into node arrays, evaluated for all (tree, row) pairs at once.

    Every node has a feature, a threshold, a mode, a true and a false successor (leaves point
    to themselves) and a missing-value flag. Leaves carry their weights as a dense
    [leaves, targets] matrix (``leaf_weight``/``leaf_has``, several weights of one target in
    one leaf combined by ``combine``) and the first weight (``leaf_first``, what ONNX Runtime
    adds for a single target).
    """

    def __init__(self, feature: np.ndarray, threshold: np.ndarray, mode: np.ndarray,
                 true_next: np.ndarray, false_next: np.ndarray, missing_true: np.ndarray,
                 roots: np.ndarray, describe: Callable[[str], ValueError]) -> None:
        self.feature = feature.astype(np.int64)
        self.threshold = threshold
        self.mode = mode.astype(np.int64)
        leaf = self.mode == _LEAF
        index = np.arange(len(mode))
        self.true_next = np.where(leaf, index, true_next).astype(np.int64)
        self.false_next = np.where(leaf, index, false_next).astype(np.int64)
        self.feature = np.where(leaf, 0, self.feature)
        self.missing_true = missing_true.astype(bool) & ~leaf
        self.has_missing = bool(self.missing_true.any())
        self.roots = roots.astype(np.int64)
        self.is_leaf = leaf
        branch_modes = np.unique(self.mode[~leaf])
        self.single_mode = int(branch_modes[0]) if len(branch_modes) == 1 else None
        self.mask = _MODE_MASKS[self.mode]
        self.max_feature = int(self.feature[~leaf].max(initial=-1))
        self.depth = self._depth(describe)
        # Slot 2 * node + go of ``successor`` is the node reached from ``node``; the walk
        # indexes nodes by 2 * node (``walk_*``), so one step is a handful of 1-D takes.
        self.successor = np.stack([self.false_next, self.true_next], axis=1).reshape(-1)
        self.slots = 2 * np.arange(len(mode))
        self.jumps = max(self.depth - 1, 0).bit_length()  # 2 ** jumps >= depth
        self.walk_roots = 2 * self.roots
        self.walk_feature = np.repeat(self.feature, 2)
        self.walk_next = 2 * self.successor
        self.walk_mask = np.repeat(self.mask, 2)
        self.walk_missing = np.repeat(self.missing_true, 2)

    def _depth(self, describe: Callable[[str], ValueError]) -> int:
        """Number of steps that take every root to a leaf; raise on a cycle."""
        frontier = np.unique(self.roots)
        steps = 0
        while True:
            frontier = frontier[~self.is_leaf[frontier]]
            if frontier.size == 0:
                return steps
            steps += 1
            if steps > len(self.mode):
                raise describe("the trees contain a cycle")
            frontier = np.unique(np.concatenate([self.true_next[frontier],
                                                 self.false_next[frontier]]))

    def set_weights(self, leaf: np.ndarray, target: np.ndarray, weight: np.ndarray,
                    targets: int, combine: str) -> None:
        """Attach weights to leaves (given in ONNX Runtime's order: sorted by tree and node,
        then by position). ``combine`` says how several weights of one target in one leaf
        add up: 'sum', 'min' or 'max'."""
        count = len(self.mode)
        self.targets = targets
        self.leaf_first = self.threshold.astype(np.float64)  # a leaf without weights uses it
        first_pos = np.unique(leaf, return_index=True)[1] if len(leaf) else np.zeros(0, int)
        self.leaf_first[leaf[first_pos]] = weight[first_pos]
        self.leaf_has = np.zeros((count, targets), dtype=bool)
        self.leaf_has[leaf, target] = True
        if combine == "sum":
            self.leaf_weight = np.zeros((count, targets), dtype=np.float64)
            np.add.at(self.leaf_weight, (leaf, target), weight)
        else:
            start = np.inf if combine == "min" else -np.inf
            self.leaf_weight = np.full((count, targets), start, dtype=np.float64)
            ufunc = np.minimum if combine == "min" else np.maximum
            ufunc.at(self.leaf_weight, (leaf, target), weight)
            self.leaf_weight[~self.leaf_has] = 0.0
        # every leaf weighs every target: every row gets a score for every target
        self.full = len(self.roots) > 0 and bool(self.leaf_has[self.is_leaf].all())
        self._typed: dict[np.dtype, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._walk_thresholds: dict[np.dtype, np.ndarray] = {}
        self._packed: dict[np.dtype, tuple[np.ndarray, ...]] = {}
        # the weights one by one, grouped by leaf in the given order (what the loop adds)
        order = np.argsort(leaf, kind="stable")
        self.weight_leaf = leaf[order].astype(np.int64)
        self.weight_target = target[order].astype(np.int32)
        self.weight_value = weight[order].astype(np.float64)

    def packed(self, dtype: np.dtype) -> tuple:
        """The forest as ``ml_loops.forest_scores`` reads it, thresholds and weights in
        ``dtype`` (cached): nodes [n, 4] int32 (feature, false and true successor, flags), the
        thresholds, the roots, the ``simple`` walk mode, each leaf's [start, count] of its
        weights, the weights' targets and values, each leaf's first weight."""
        dtype = np.dtype(dtype)
        cached = self._packed.get(dtype)
        if cached is None:
            count = len(self.mode)
            nodes = np.empty((count, 4), dtype=np.int32)
            nodes[:, 0] = self.feature  # leaves: 0, and they are their own successors
            nodes[:, 1] = self.false_next
            nodes[:, 2] = self.true_next
            nodes[:, 3] = np.where(self.is_leaf, LEAF, self.mask.astype(np.int32)
                                   | np.where(self.missing_true, MISSING_TRUE, 0))
            span = np.zeros((count, 2), dtype=np.int32)
            span[:, 0] = np.searchsorted(self.weight_leaf, np.arange(count))
            span[:, 1] = np.bincount(self.weight_leaf, minlength=count)
            if self.single_mode not in (0, 1):  # several modes, or none but LEQ/LT
                simple = BY_FLAGS
            elif self.has_missing:
                simple = SIMPLE_LEQ_MISSING if self.single_mode == 0 else SIMPLE_LT_MISSING
            else:
                simple = SIMPLE_LEQ if self.single_mode == 0 else SIMPLE_LT
            threshold, first, _ = self.typed(dtype)
            cached = self._packed[dtype] = (
                nodes, np.ascontiguousarray(threshold), self.roots.astype(np.int32), simple,
                span, self.weight_target, self.weight_value.astype(dtype),
                np.ascontiguousarray(first))
        return cached

    def typed(self, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Thresholds, first weights and weight matrix in the compute dtype (cached)."""
        cached = self._typed.get(dtype)
        if cached is None:
            cached = self._typed[dtype] = (self.threshold.astype(dtype),
                                           self.leaf_first.astype(dtype),
                                           self.leaf_weight.astype(dtype))
        return cached

    def _walk_threshold(self, threshold: np.ndarray) -> np.ndarray:
        """``threshold`` indexed by 2 * node (cached per dtype)."""
        cached = self._walk_thresholds.get(threshold.dtype)
        if cached is None:
            cached = self._walk_thresholds[threshold.dtype] = np.repeat(threshold, 2)
        return cached

    def _goes_true(self, value: np.ndarray, limit: np.ndarray, mask: Callable[[], np.ndarray],
                   missing: Callable[[], np.ndarray]) -> np.ndarray:
        """Whether nodes with these input values and thresholds take their true branch
        (``mask``/``missing`` give the nodes' mode masks and missing-value flags)."""
        if self.single_mode is not None:
            go = _COMPARATORS[self.single_mode](value, limit)
        else:
            code = ((value < limit).view(np.uint8)
                    | ((value == limit).view(np.uint8) << 1)
                    | ((value > limit).view(np.uint8) << 2))
            go = ((mask() >> code) & 1).view(bool)
        if self.has_missing:
            go |= missing() & np.isnan(value)
        return go

    def leaves(self, x: np.ndarray, threshold: np.ndarray) -> np.ndarray:
        """Return the leaf reached by every (tree, row) pair: [trees, rows].

        Two strategies, picked by an estimate of their cost: a walk moves every (tree, row)
        pair one level down per step (a Python loop over the depth, a few numpy calls per
        level); jumps decide every node of every row at once, then compose the successor map
        with itself log2(depth) times (few numpy calls, work proportional to the node count:
        the fast one for small batches).
        """
        rows, width = x.shape
        trees, nodes = len(self.roots), len(self.mode)
        walk_cost = self.depth * (6 * _CALL_COST + 6 * rows * trees)
        jump_cost = (8 + self.jumps) * _CALL_COST + 2 * (4 + self.jumps) * rows * nodes
        if width and jump_cost < walk_cost:  # (comparisons with NaN raise no warnings)
            return self._jump(x, threshold)
        return self._walk(x, self._walk_threshold(threshold))

    def _jump(self, x: np.ndarray, threshold: np.ndarray) -> np.ndarray:
        """:meth:`leaves` by composing the successor map of every row."""
        rows, nodes = x.shape[0], len(self.mode)
        value = x[0].take(self.feature) if rows == 1 else x.take(self.feature, axis=1)
        go = self._goes_true(value, threshold, lambda: self.mask, lambda: self.missing_true)
        reached = self.successor.take(self.slots + go)  # [rows, nodes]
        if rows == 1:
            for _ in range(self.jumps):
                reached = reached.take(reached)
            return reached.take(self.roots)[:, None]
        offset = (np.arange(rows) * nodes)[:, None]  # index the rows' maps as one flat map
        reached = (reached + offset).reshape(-1)
        for _ in range(self.jumps):
            reached = reached.take(reached)
        return (reached.reshape(rows, nodes).take(self.roots, axis=1) - offset).T

    def _walk(self, x: np.ndarray, threshold: np.ndarray) -> np.ndarray:
        """:meth:`leaves` level by level; ``threshold`` is indexed by 2 * node."""
        rows, width = x.shape
        flat = np.asarray(x, order="C").reshape(-1)
        node = np.repeat(self.walk_roots, rows)  # [trees * rows], tree-major
        offset = np.tile(np.arange(0, rows * width, width), len(self.roots)) if rows > 1 \
            else None
        for _ in range(self.depth):
            feature = self.walk_feature.take(node)
            if offset is not None:
                feature += offset
            value = flat.take(feature)
            go = self._goes_true(value, threshold.take(node),
                                 lambda: self.walk_mask.take(node),
                                 lambda: self.walk_missing.take(node))
            node = self.walk_next.take(node + go)
        return (node >> 1).reshape(len(self.roots), rows)

    def check_features(self, describe: Callable[[str], ValueError], x: np.ndarray) -> None:
        """Raise if a split reads a feature the input does not have."""
        if self.max_feature >= x.shape[1]:
            raise describe(f"a split reads feature {self.max_feature} but the input has "
                           f"{x.shape[1]} features")

    def single(self, x: np.ndarray, aggregate: str) -> np.ndarray:
        """Aggregate the first weight of each reached leaf over the trees: [rows]."""
        threshold, first, _ = self.typed(x.dtype)
        values = first[self.leaves(x, threshold)]
        if len(self.roots) == 0:
            return np.zeros(x.shape[0], dtype=x.dtype)
        if aggregate == "MIN":
            return values.min(axis=0)
        if aggregate == "MAX":
            return values.max(axis=0)
        total = np.add.reduce(values, axis=0)  # tree by tree, as ONNX Runtime sums
        return total / x.dtype.type(len(self.roots)) if aggregate == "AVERAGE" else total

    def multi(self, x: np.ndarray, aggregate: str) -> tuple[np.ndarray, np.ndarray]:
        """Aggregate the reached leaves' weights per target: scores and has-score [rows, T]."""
        threshold, _, weight = self.typed(x.dtype)
        rows = x.shape[0]
        if rows == 0:
            return (np.zeros((0, self.targets), dtype=x.dtype),
                    np.zeros((0, self.targets), dtype=bool))
        chunk = max(1, (1 << 22) // max(1, len(self.roots) * self.targets))
        parts = [self._aggregate(self.leaves(x[start:start + chunk], threshold), weight,
                                 aggregate) for start in range(0, rows, chunk)]
        scores, has = parts[0] if len(parts) == 1 else (
            np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
        if aggregate == "AVERAGE" and len(self.roots):
            scores = scores / x.dtype.type(len(self.roots))
        return scores, has

    def _aggregate(self, leaf: np.ndarray, weight: np.ndarray,
                   aggregate: str) -> tuple[np.ndarray, np.ndarray]:
        """Scores and has-score [rows, T] of the reached leaves ([trees, rows])."""
        if leaf.shape[0] == 0:  # no trees
            empty = (leaf.shape[1], self.targets)
            return np.zeros(empty, dtype=weight.dtype), np.zeros(empty, dtype=bool)
        if self.full:
            has = np.ones((leaf.shape[1], self.targets), dtype=bool)
        else:
            got = self.leaf_has[leaf]
            has = got.any(axis=0)
        if aggregate in ("SUM", "AVERAGE"):  # tree by tree, as ONNX Runtime adds
            return np.add.reduce(weight.take(leaf, axis=0), axis=0), has
        picked = weight[leaf]
        if not self.full:
            picked = np.where(got, picked, weight.dtype.type(np.inf if aggregate == "MIN"
                                                             else -np.inf))
        best = picked.min(axis=0) if aggregate == "MIN" else picked.max(axis=0)
        return (best if self.full else np.where(has, best, 0)), has


_AGGREGATE_CODES = {"SUM": ml_loops.AGG_SUM, "AVERAGE": ml_loops.AGG_SUM,
                    "MIN": ml_loops.AGG_MIN, "MAX": ml_loops.AGG_MAX}
_EMPTY_TOP = np.zeros(0, dtype=np.int64)
# A piece of a call handed to another thread should walk at least this many nodes (a hand-off
# costs 20-80 µs, a node a few ns).
_MIN_NODES_PER_THREAD = 200_000


class _CompiledForest:
    """A forest's compiled walk (``ml_loops.forest_scores``) and finish
    (``ml_loops.finish_rows``) for float32 and float64 rows, with the node's aggregate
    function, base values and post transform fixed; None from :meth:`create` where compiled
    loops are off for the node.

    ``first_only``: one score per row from each leaf's first weight (one target);
    ``keep_missing``: targets no leaf weighs get their base value rather than 0; ``binary``
    (>= 0: ``ml_loops.BINARY_CASE`` | ``ml_loops.ALL_POSITIVE``): a two-class classifier
    (``base``: 0, 1 or 2 values).
    """

    def __init__(self, node: NodeInfo, forest: _Forest, base: np.ndarray, aggregate: str,
                 transform: str, first_only: bool, keep_missing: bool, binary: int) -> None:
        self.forest = forest
        self.base = base
        self.binary = binary
        self.aggregate = _AGGREGATE_CODES[aggregate]
        trees = len(forest.roots)
        self.divisor = trees if aggregate == "AVERAGE" and trees else 1
        self.transform = _TRANSFORMS.index(transform)
        self.first_only = first_only
        self.keep_missing = keep_missing
        self.targets = 1 if first_only else forest.targets
        self.threads = resolve_threads(node.intra_op_threads)
        per_row = max(1, trees * max(forest.depth, 1))
        self.min_rows = max(1, _MIN_NODES_PER_THREAD // per_row)
        self._plans: dict[np.dtype, tuple] = {}
        dtype = node.input_dtypes[0] if node.input_dtypes else None
        self.plan(np.dtype(np.float64 if dtype == np.float64 else _F32))  # compile now

    @classmethod
    def create(cls, node: NodeInfo, forest: _Forest, base: np.ndarray, aggregate: str = "SUM",
               transform: str = "NONE", first_only: bool = False, keep_missing: bool = False,
               binary: int = -1) -> _CompiledForest | None:
        """The compiled forest of ``node`` (see the class), or None where its compiled loops
        are off."""
        if not compiled_loops_enabled(node):
            return None
        return cls(node, forest, base, aggregate, transform, first_only, keep_missing, binary)

    def plan(self, dtype: np.dtype) -> tuple:
        """For rows of ``dtype`` (prepared on first use): the walk and finish dispatchers,
        the packed forest, the finish's constants (divisor, base values) and an empty
        weight matrix."""
        plan = self._plans.get(dtype)
        if plan is None:
            array1, array2 = (dtype, 1), (dtype, 2)
            walk = ml_loops.forest_scores.prepare(
                array2, (np.int32, 2), array1, (np.int32, 1), int, (np.int32, 2),
                (np.int32, 1), array1, array1, int, bool, array2, (np.bool_, 2), int, int)
            finish = ml_loops.finish_rows.prepare(
                array2, (np.bool_, 2), array1, bool, int, (_F32, 2), (np.int64, 1), array2,
                array2, int)
            use_base = len(self.base) == self.targets or self.binary >= 0
            base = self.base if use_base else np.zeros(0)
            consts = np.concatenate([[self.divisor], base]).astype(dtype)
            plan = self._plans[dtype] = (walk, finish, self.forest.packed(dtype), consts,
                                         np.zeros((0, 0), dtype=dtype))
        return plan

    def scores(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Aggregated leaf weights [N, targets] (the sum for AVERAGE) and which targets got
        one, in the rows' type."""
        rows = np.ascontiguousarray(rows)
        walk, _, packed, _, _ = self.plan(rows.dtype)
        count = rows.shape[0]
        scores = np.empty((count, self.targets), dtype=rows.dtype)
        has = np.empty((count, self.targets), dtype=np.bool_)
        code, first_only = self.aggregate, self.first_only
        if self.threads > 1 and count >= 2 * self.min_rows:
            split_work(lambda start, stop: walk(rows, *packed, code, first_only, scores, has,
                                                start, stop),
                       count, self.threads, self.min_rows)
        else:
            walk(rows, *packed, code, first_only, scores, has, 0, count)
        return scores, has

    def predict(self, rows: np.ndarray, top: np.ndarray = _EMPTY_TOP) -> np.ndarray:
        """float32 [N, targets] outputs: the walk, then AVERAGE's division, the base values
        (when there is one per target), 0 for targets without a weight unless
        ``keep_missing``, the post transform; ``top`` (when not empty) gets each row's first
        top target."""
        scores, has = self.scores(rows)
        _, finish, _, consts, none = self.plan(scores.dtype)
        out = np.empty(scores.shape, dtype=_F32)
        finish(scores, has, consts, self.keep_missing, self.transform, out, top, none, none,
               self.binary)
        return out
