"""Compiled loops of the ai.onnx.ml kernels (see :mod:`ort_provider_cpu.jit`).

* :func:`forest_scores`: walks every row through every tree of a flattened forest
  (``ml_forest._Forest.packed``) and aggregates the reached leaves' weights per target, as ONNX
  Runtime's TreeEnsemble kernels do on one thread: rows in blocks of 128, trees in order within
  a block, each row's running score in the compute type (float32 for float inputs), one weight
  at a time (SUM), or the smallest/largest (MIN/MAX).
* :func:`finish_rows`: the rest of a tree model row by row: AVERAGE's division, base values,
  the post transform and (classifiers) the index of the top class, or ONNX Runtime's
  two-class rules; the linear models use it too, with their product X @ W.T computed in it.
* :func:`normalize_rows`: Normalizer's MAX, L1 and L2 norms.

The post transforms reproduce :mod:`ml_common`'s numpy versions bit for bit: exp is computed in
float64 and rounded to float32 (C's expf), sums run left to right, the rest in float32. Each
loop is one function (numba compiles helpers only as closures inside it): a session loads the
few it uses from numba's cache.
"""

from __future__ import annotations

import math

import numpy as np

from ..jit import compiled

# Node flags (``_Forest.packed``): bit c says whether a branch takes its true side when the
# comparison code is c = (x < t) | (x == t) << 1 | (x > t) << 2 (c = 0 when x or t is NaN:
# BRANCH_NEQ's bit 0); MISSING_TRUE sends a NaN input to the true side; LEAF marks a leaf.
MISSING_TRUE = 32
LEAF = 128
# ``simple`` modes of :func:`forest_scores`: every branch compares with <= (or <), with or
# without missing-value tracks; else the flags decide.
SIMPLE_LEQ = 0
SIMPLE_LT = 1
BY_FLAGS = 2
SIMPLE_LEQ_MISSING = 3
SIMPLE_LT_MISSING = 4
# Aggregations of :func:`forest_scores`.
AGG_SUM = 0
AGG_MIN = 1
AGG_MAX = 2
# Post transforms, as :data:`ml_common._TRANSFORMS` numbers them.
NONE, LOGISTIC, SOFTMAX, SOFTMAX_ZERO, PROBIT = 0, 1, 2, 3, 4
_BLOCK = 128

_F32_1 = np.float32(1.0)
_F32_2 = np.float32(2.0)
_F32_HALF = np.float32(0.5)
_FLT_MAX = np.float32(np.finfo(np.float32).max)
_ZERO_LIMIT = np.float32(1e-7)
_PROBIT_A = np.float32(2) / (np.float32(np.pi) * np.float32(0.147))
_PROBIT_B = np.float32(1) / np.float32(0.147)
_SQRT2 = np.float32(np.sqrt(2))


@compiled()
def forest_scores(x, nodes, thresholds, roots, simple, weight_span, weight_target, weight_value,
                  first_weight, aggregate, first_only, scores, has, start, stop):
    """Aggregate the leaves rows ``[start, stop)`` of ``x`` reach into ``scores``/``has``
    ([rows, targets], zeroed here; ``has`` says which targets got a weight).

    ``nodes`` [n, 4] int32: feature, false successor, true successor, flags (see
    :data:`LEAF`); a leaf is its own successor, so walking on from a leaf stays there.
    ``simple``: :data:`SIMPLE_LEQ`, :data:`SIMPLE_LT` (with ``_MISSING``: NaN inputs follow
    the nodes' MISSING_TRUE flags) or :data:`BY_FLAGS`. Leaf ``i``'s weights are
    ``weight_span[i, 1]`` entries of ``weight_target``/``weight_value`` from
    ``weight_span[i, 0]``; ``first_weight`` is its first weight (what ONNX Runtime adds for one
    target: ``first_only``). ``aggregate``: :data:`AGG_SUM`, :data:`AGG_MIN` or
    :data:`AGG_MAX`.

    Rows go in blocks of 128: first the leaf of every (tree, row) pair of the block, four
    pairs walked side by side (independent chains of loads keep the core busy; a lane that
    reaches its leaf takes the next pair), then the weights are added row by row in tree
    order, as ONNX Runtime adds them on one thread.
    """
    def step(node, r):
        value = x[r, nodes[node, 0]]
        limit = thresholds[node]
        if simple == SIMPLE_LEQ:
            return nodes[node, 1 + np.int32(value <= limit)]
        if simple == SIMPLE_LT:
            return nodes[node, 1 + np.int32(value < limit)]
        flags = nodes[node, 3]
        missing = (flags >> 5) & np.int32(value != value)
        if simple == SIMPLE_LEQ_MISSING:
            go = np.int32(value <= limit) | missing
        elif simple == SIMPLE_LT_MISSING:
            go = np.int32(value < limit) | missing
        else:
            code = (np.int32(value < limit) | (np.int32(value == limit) << 1)
                    | (np.int32(value > limit) << 2))
            go = ((flags >> code) | missing) & 1
        return nodes[node, 1 + go]

    targets = scores.shape[1]
    trees = roots.shape[0]
    for r in range(start, stop):
        for t in range(targets):
            scores[r, t] = 0
            has[r, t] = False
    reached = np.empty(trees * min(_BLOCK, max(stop - start, 1)), dtype=np.int32)
    for block in range(start, stop, _BLOCK):
        size = min(stop, block + _BLOCK) - block
        pairs = trees * size  # pair p: tree p // size, row block + p % size
        if pairs < 4:
            for p in range(pairs):
                node = roots[p // size]
                while (nodes[node, 3] & LEAF) == 0:
                    node = step(node, block + p % size)
                reached[p] = node
        else:
            # four lanes, each on one pair (p_i; -1 once there is none left)
            p0, p1, p2, p3 = 0, 1, 2, 3
            n0, r0 = roots[p0 // size], block + p0 % size
            n1, r1 = roots[p1 // size], block + p1 % size
            n2, r2 = roots[p2 // size], block + p2 % size
            n3, r3 = roots[p3 // size], block + p3 % size
            following = 4  # the next pair: tree next_tree, row block + next_row
            next_tree, next_row = 4 // size, 4 % size
            active = 4
            while active > 0:
                if (nodes[n0, 3] & LEAF) == 0:
                    n0 = step(n0, r0)
                elif p0 >= 0:
                    reached[p0] = n0
                    if following < pairs:
                        p0 = following
                        n0, r0 = roots[next_tree], block + next_row
                        following += 1
                        next_row += 1
                        if next_row == size:
                            next_row = 0
                            next_tree += 1
                    else:
                        p0 = -1
                        active -= 1
                if (nodes[n1, 3] & LEAF) == 0:
                    n1 = step(n1, r1)
                elif p1 >= 0:
                    reached[p1] = n1
                    if following < pairs:
                        p1 = following
                        n1, r1 = roots[next_tree], block + next_row
                        following += 1
                        next_row += 1
                        if next_row == size:
                            next_row = 0
                            next_tree += 1
                    else:
                        p1 = -1
                        active -= 1
                if (nodes[n2, 3] & LEAF) == 0:
                    n2 = step(n2, r2)
                elif p2 >= 0:
                    reached[p2] = n2
                    if following < pairs:
                        p2 = following
                        n2, r2 = roots[next_tree], block + next_row
                        following += 1
                        next_row += 1
                        if next_row == size:
                            next_row = 0
                            next_tree += 1
                    else:
                        p2 = -1
                        active -= 1
                if (nodes[n3, 3] & LEAF) == 0:
                    n3 = step(n3, r3)
                elif p3 >= 0:
                    reached[p3] = n3
                    if following < pairs:
                        p3 = following
                        n3, r3 = roots[next_tree], block + next_row
                        following += 1
                        next_row += 1
                        if next_row == size:
                            next_row = 0
                            next_tree += 1
                    else:
                        p3 = -1
                        active -= 1
        for tree in range(trees):
            for i in range(size):
                node = reached[tree * size + i]
                r = block + i
                if first_only:
                    w = first_weight[node]
                    if aggregate == AGG_SUM:
                        scores[r, 0] += w
                    elif aggregate == AGG_MIN:
                        if not has[r, 0] or w < scores[r, 0]:
                            scores[r, 0] = w
                    elif not has[r, 0] or w > scores[r, 0]:
                        scores[r, 0] = w
                    has[r, 0] = True
                    continue
                begin = weight_span[node, 0]
                for k in range(begin, begin + weight_span[node, 1]):
                    t = weight_target[k]
                    w = weight_value[k]
                    if aggregate == AGG_SUM:
                        scores[r, t] += w
                    elif aggregate == AGG_MIN:
                        if not has[r, t] or w < scores[r, t]:
                            scores[r, t] = w
                    elif not has[r, t] or w > scores[r, t]:
                        scores[r, t] = w
                    has[r, t] = True


# ``binary`` flags of :func:`finish_rows`: two-class tree classifiers.
BINARY_CASE = 1       # ONNX Runtime's "binary case": weights for one class id only
ALL_POSITIVE = 2      # every class weight is >= 0


@compiled()
def finish_rows(scores, has, consts, keep_missing, transform, out, top, x, weights, binary):
    """Finish scores row by row into ``out`` (float32 [rows, targets]).

    Where ``weights`` ([targets, features], float32) is not empty, each row's scores are first
    computed as ``x[r] @ weights.T`` (float32 fused multiply-adds in feature order, as BLAS
    and ONNX Runtime's GEMM kernels add; the linear models, whose intercepts are the base
    values).

    ``consts`` (scores' type): a divisor (AVERAGE: the tree count, else 1), then the base
    values when there is one per target. Each score is divided by the divisor, plus its base
    value; a target no tree scored (``has`` False) is 0 unless ``keep_missing`` (then its base
    value; ``has`` may be empty). ``top`` ([rows] int64, or empty) gets the index of each row's
    first largest score (NaN never wins). Then the post transform (:data:`NONE`,
    :data:`LOGISTIC`, :data:`SOFTMAX`, :data:`SOFTMAX_ZERO`, :data:`PROBIT`), with exp rounded
    from float64 and left-to-right sums as ``ml_common``.

    ``binary`` >= 0 (:data:`BINARY_CASE` | :data:`ALL_POSITIVE`): a two-class tree
    classifier, by ONNX Runtime's rules as ``ml_trees._binary_tree_scores`` writes them
    (``consts``' base values: 0, 1 or 2 of them); ``top`` gets 1 where the positive class
    wins.
    """
    rows, targets = scores.shape
    divisor = consts[0]
    zero = consts[0] - consts[0]  # 0 in scores' type
    use_base = consts.shape[0] == targets + 1
    linear = weights.shape[0] > 0
    features = weights.shape[1]
    row = np.empty(targets, dtype=scores.dtype)
    for r in range(rows):
        code = transform
        probit_single = False
        if binary >= 0:
            s0, s1 = scores[r, 0], scores[r, 1]
            h0, h1 = has[r, 0], has[r, 1]
            two = True  # the row keeps two scores
            extra = -1  # ONNX Runtime's 'write_additional_scores'
            if consts.shape[0] == 3:
                if h1:
                    s1 = s0 + consts[2]
                    s0 = -s1
                else:
                    s0 = s0 + consts[1]
                    s1 = s1 + consts[2]
            elif consts.shape[0] == 2:
                s0 = s0 + consts[1]
                two = h1
            else:
                extra = 3
                two = h1
            if two and h1:
                positive = s1
            elif h0:
                positive = s0
            else:
                positive = zero
            if binary & BINARY_CASE:
                if binary & ALL_POSITIVE:
                    wins = positive > 0.5
                    extra = 0 if wins else 1
                else:
                    wins = positive > 0
                    extra = 2 if wins else 3
            else:
                wins = positive > 0
            top[r] = 1 if wins else 0
            v0 = np.float32(s0) if h0 else np.float32(0)
            v1 = np.float32(s1) if h1 else np.float32(0)
            if two:
                row[0], row[1] = v0, v1
            elif transform == PROBIT:
                row[0], row[1] = v0, v0
                probit_single = True
            elif extra < 0:
                row[0], row[1] = v0, 0
                code = NONE
            elif transform == LOGISTIC:
                row[0], row[1] = -v0, v0
            else:
                row[0], row[1] = (_F32_1 - v0 if extra <= 1 else -v0), v0
                code = NONE
        else:
            if linear:  # float32 fused multiply-adds in feature order, as GEMM kernels
                for t in range(targets):  # (products are exact in float64); the targets'
                    scores[r, t] = 0      # independent sums side by side (scores may be out)
                for f in range(features):
                    value = np.float64(x[r, f])
                    for t in range(targets):
                        scores[r, t] = np.float32(np.float64(scores[r, t])
                                                  + value * np.float64(weights[t, f]))
            for t in range(targets):
                if keep_missing or has[r, t]:
                    v = scores[r, t]
                    if divisor != 1:
                        v = v / divisor
                    if use_base:
                        v = v + consts[1 + t]
                    row[t] = v
                else:
                    row[t] = 0
            if top.shape[0] > 0:
                best = 0
                best_value = row[0] if row[0] == row[0] else -np.inf
                for t in range(1, targets):
                    if row[t] > best_value:  # NaN never wins, as ml_common._first_argmax
                        best = t
                        best_value = row[t]
                top[r] = best
        if code == NONE:
            for t in range(targets):
                out[r, t] = np.float32(row[t])
        elif code == LOGISTIC:
            for t in range(targets):
                v32 = np.float32(row[t])
                e = _F32_1 / (_F32_1 + np.float32(math.exp(np.float64(-abs(v32)))))
                out[r, t] = _F32_1 - e if v32 < 0 else e
        elif code == PROBIT:
            for t in range(targets):
                p = np.float32(row[t]) * _F32_2 - _F32_1
                sign = np.float32(-1) if p < 0 else _F32_1
                log = np.float32(math.log(np.float64((_F32_1 - p) * (_F32_1 + p))))
                a = _PROBIT_A + _F32_HALF * log
                b = _PROBIT_B * log
                c = -a + np.sqrt(a * a - b)
                out[r, t] = _SQRT2 * sign * np.sqrt(c)
            if probit_single:  # one binary score: its probit, then 0
                out[r, 1] = 0
        else:
            peak = -_FLT_MAX
            for t in range(targets):
                v32 = np.float32(row[t])
                if v32 > peak:
                    peak = v32
            total = np.float32(0)
            for t in range(targets):
                v32 = np.float32(row[t])
                if code == SOFTMAX or abs(v32) > _ZERO_LIMIT:
                    e = np.float32(math.exp(np.float64(v32 - peak)))
                    total += e
                else:  # SOFTMAX_ZERO leaves (near) zero scores near zero
                    e = v32 * np.float32(math.exp(np.float64(-peak)))
                out[r, t] = e
            for t in range(targets):
                out[r, t] = out[r, t] / total


@compiled()
def normalize_rows(x, norm, out):
    """Normalizer: each row of ``x`` (float32 or float64) divided by its MAX (``norm`` 0), L1
    (1) or L2 (2) norm into float32 ``out`` (rows of norm 0 copied), as ``ml_features``'s
    numpy version: the norm in float32 added left to right, L2 as sqrt(x² / sum) with x's
    sign."""
    rows, cols = x.shape
    for r in range(rows):
        if norm == 0:
            scale = -_FLT_MAX
            for c in range(cols):
                v = np.float32(x[r, c])
                if v > scale:
                    scale = v
        elif norm == 1:
            scale = np.float32(0)
            for c in range(cols):
                scale += np.float32(abs(x[r, c]))
        else:
            scale = np.float32(0)
            for c in range(cols):
                scale += np.float32(x[r, c] * x[r, c])
        for c in range(cols):
            v = np.float32(x[r, c])
            if scale == 0:
                out[r, c] = v
            elif norm == 2:
                root = np.sqrt(np.float32(x[r, c] * x[r, c]) / scale)
                out[r, c] = -root if x[r, c] < 0 else root
            else:
                out[r, c] = v / scale
