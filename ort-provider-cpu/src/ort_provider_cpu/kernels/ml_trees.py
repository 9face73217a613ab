"""CPU kernels: the ai.onnx.ml tree ensembles: TreeEnsembleRegressor and TreeEnsembleClassifier
(1-2, and 3 whose *_as_tensor attributes give double precision) and TreeEnsemble 5 (comparison
modes as integers, set membership, leaves apart from the nodes). Their attributes are validated
and compiled once per node into a forest (``ml_forest``), which a run walks; the kernels then
aggregate the reached leaves' weights per target, add the base values and apply the post
transform, and two-class classifiers fill their score columns and pick labels by ONNX Runtime's
rules. With compiled loops (the default) all of it runs in ``ml_loops``; the numpy code here
is the reference (``compiled_kernels=0``) and finishes the rare cases the loops leave out (one
class, several classes some rows score none of).
"""

from __future__ import annotations

import numpy as np

from ort.ep import KernelTable, NodeInfo

from . import ml_loops
from .ml_common import (
    ML, _F32, _as_float32, _class_labels, _fail, _first_argmax, _floats, _int_array, _ints,
    _logistic, _post_transform, _probit, _transform, _transform_single,
)
from .ml_forest import _LEAF, _MODES, _CompiledForest, _Forest

kernels = KernelTable()


def _tensor_attr(node: NodeInfo, name: str) -> np.ndarray | None:
    """Return a TENSOR attribute flattened, or None when absent."""
    value = node.attrs.get(name)
    return None if value is None else np.asarray(value).reshape(-1)


def _values_attr(node: NodeInfo, name: str) -> np.ndarray:
    """Return ``name``_as_tensor (float64) when given, else the FLOATS attribute ``name``."""
    tensor = _tensor_attr(node, f"{name}_as_tensor")
    if tensor is not None:
        if node.attrs.get(name):
            raise _fail(node, f"give {name} or {name}_as_tensor, not both")
        return tensor.astype(np.float64)
    return np.asarray(_floats(node, name), dtype=_F32).astype(np.float64)


def _node_keys(trees: np.ndarray, nodes: np.ndarray, span: int) -> np.ndarray:
    """One int64 key per (tree id, node id) pair (``span`` exceeds every node id)."""
    return trees * span + nodes


def _compile_v3(node: NodeInfo, prefix: str, targets: int, combine: str) -> _Forest:
    """Build a :class:`_Forest` from TreeEnsembleRegressor/Classifier attributes (``prefix``:
    'target' or 'class'), validating them as ONNX Runtime does. Vectorized: a forest of 100
    trees has tens of thousands of nodes, and session creation must not loop over them."""
    tree_ids = _int_array(node, "nodes_treeids")
    node_ids = _int_array(node, "nodes_nodeids")
    features = _int_array(node, "nodes_featureids")
    true_ids = _int_array(node, "nodes_truenodeids")
    false_ids = _int_array(node, "nodes_falsenodeids")
    mode_names = list(node.attrs.get("nodes_modes") or [])
    values = _values_attr(node, "nodes_values")
    count = len(tree_ids)
    if any(len(a) != count for a in (node_ids, features, true_ids, false_ids, mode_names,
                                      values)):
        raise _fail(node, "the nodes_* attributes must all have the same length")
    codes = {name: code for code, name in enumerate(_MODES)}
    unknown = sorted(set(mode_names) - set(codes))
    if unknown:
        raise _fail(node, f"unknown node modes {unknown}")
    modes = np.array([codes[m] for m in mode_names], dtype=np.int64)
    span = int(max(node_ids.max(initial=0), true_ids.max(initial=0),
                   false_ids.max(initial=0))) + 1
    keys = _node_keys(tree_ids, node_ids, span)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    repeated = np.nonzero(sorted_keys[1:] == sorted_keys[:-1])[0]
    if len(repeated):
        i = order[repeated[0] + 1]
        raise _fail(node, f"node {node_ids[i]} of tree {tree_ids[i]} is defined twice")

    def lookup(wanted: np.ndarray) -> np.ndarray:
        """Positions of the (tree, node) keys ``wanted`` (-1 where absent)."""
        at = np.minimum(np.searchsorted(sorted_keys, wanted), max(count - 1, 0))
        found = order[at] if count else np.zeros(len(wanted), np.int64)
        return np.where(sorted_keys[at] == wanted, found, -1) if count else found - 1

    positions = np.arange(count)
    branch = modes != _LEAF
    successors = []
    for ids, side in ((true_ids, "true"), (false_ids, "false")):
        target = lookup(_node_keys(tree_ids, ids, span))
        bad = np.nonzero(branch & ((target < 0) | (target == positions) | (ids < 0) |
                                   (ids >= span)))[0]
        if len(bad):
            i = bad[0]
            raise _fail(node, f"node {node_ids[i]} of tree {tree_ids[i]} has an invalid "
                              f"{side} successor {ids[i]}")
        successors.append(np.where(branch, target, 0))
    missing = np.zeros(count, dtype=bool)
    tracks = _int_array(node, "nodes_missing_value_tracks_true")[:count]
    missing[:len(tracks)] = tracks == 1
    roots = np.nonzero(np.r_[True, tree_ids[1:] != tree_ids[:-1]])[0] if count else \
        np.zeros(0, np.int64)
    forest = _Forest(features, values, modes, successors[0], successors[1], missing,
                     roots.astype(np.int64), lambda m: _fail(node, m))

    w_trees = _int_array(node, f"{prefix}_treeids")
    w_nodes = _int_array(node, f"{prefix}_nodeids")
    w_ids = _int_array(node, f"{prefix}_ids")
    weights = _values_attr(node, f"{prefix}_weights")
    if not len(w_trees) == len(w_nodes) == len(w_ids) == len(weights):
        raise _fail(node, f"the {prefix}_* attributes must all have the same length")
    if len(w_ids) and (w_ids.min() < 0 or w_ids.max() >= targets):
        raise _fail(node, f"{prefix}_ids must lie in [0, {targets})")
    ranked = np.lexsort((np.arange(len(w_ids)), w_nodes, w_trees))
    inside = (w_nodes[ranked] >= 0) & (w_nodes[ranked] < span)
    found = np.where(inside, lookup(_node_keys(w_trees[ranked], w_nodes[ranked], span)), -1)
    if len(found) and (found < 0).any():
        k = ranked[np.nonzero(found < 0)[0][0]]
        raise _fail(node, f"weight for unknown node {w_nodes[k]} of tree {w_trees[k]}")
    on_leaf = modes[found] == _LEAF if len(found) else np.zeros(0, bool)
    # weights on branch nodes are ignored, as ONNX Runtime does
    forest.set_weights(found[on_leaf].astype(np.int64), w_ids[ranked][on_leaf],
                       np.asarray(weights, dtype=np.float64)[ranked][on_leaf], targets, combine)
    return forest


def _tree_rows(node: NodeInfo, forest: _Forest, x: np.ndarray) -> np.ndarray:
    """The input as [N, F] rows in the dtype trees compare in (float64 for double inputs,
    float32 otherwise)."""
    if x.ndim == 0 or x.ndim > 2:
        raise _fail(node, f"input must be [F] or [N, F], got shape {list(x.shape)}")
    rows = x.reshape(1, -1) if x.ndim == 1 else x
    rows = rows.astype(np.float64 if x.dtype == np.float64 else _F32, copy=False)
    if forest.max_feature >= rows.shape[1]:
        forest.check_features(lambda m: _fail(node, m), rows)
    return rows


def _check_base(node: NodeInfo, base: np.ndarray, count: int, binary: bool = False) -> None:
    """ONNX Runtime accepts no base values or one per target/class (and a single base value
    for two classes: skl2onnx writes one for binary gradient boosting)."""
    if len(base) not in (0, count) and not (binary and len(base) == 1):
        raise _fail(node, f"base_values must have 0 or {count} values, got {len(base)}")


_AGGREGATES = ("AVERAGE", "SUM", "MIN", "MAX")
_COMBINE = {"AVERAGE": "sum", "SUM": "sum", "MIN": "min", "MAX": "max"}


def _compiled_regressor(node: NodeInfo, forest: _Forest, base: np.ndarray, aggregate: str,
                        transform: str) -> _CompiledForest | None:
    """A regressor's compiled forest: one target adds the leaves' first weights and gets
    PROBIT only (as ONNX Runtime); several targets no leaf weighs are 0."""
    if forest.targets == 1:
        return _CompiledForest.create(node, forest, base, aggregate,
                                      "PROBIT" if transform == "PROBIT" else "NONE",
                                      first_only=True, keep_missing=True)
    return _CompiledForest.create(node, forest, base, aggregate, transform)


def _regression_output(forest: _Forest, rows: np.ndarray, aggregate: str, base: np.ndarray,
                       transform: str, compiled: _CompiledForest | None) -> np.ndarray:
    """Tree regression scores [N, targets] after base values and post_transform (float32;
    the compiled loops where ``compiled`` is given, else numpy)."""
    if compiled is not None:
        return compiled.predict(rows)
    if forest.targets == 1:
        score = forest.single(rows, aggregate)
        if len(base) == 1:
            score = score + rows.dtype.type(base[0])
        return _transform_single(score.reshape(-1, 1), transform)
    scores, has = forest.multi(rows, aggregate)
    if len(base):
        scores = scores + base.astype(rows.dtype)
    return _transform(np.where(has, scores, 0), transform)


def _tree_regressor(node: NodeInfo):
    """TreeEnsembleRegressor body (versions 1 and 3+)."""
    targets = int(node.attrs.get("n_targets", 0))
    if targets <= 0:
        raise _fail(node, "n_targets must be positive")
    aggregate = node.attrs.get("aggregate_function", "SUM")
    if aggregate not in _AGGREGATES:
        raise _fail(node, f"aggregate_function must be one of {_AGGREGATES}, got {aggregate!r}")
    transform = _post_transform(node)
    base = _values_attr(node, "base_values")
    _check_base(node, base, targets)
    forest = _compile_v3(node, "target", targets, _COMBINE[aggregate])
    compiled = _compiled_regressor(node, forest, base, aggregate, transform)

    def compute(x):
        rows = _tree_rows(node, forest, x)
        return (_regression_output(forest, rows, aggregate, base, transform,
                                   compiled).astype(_F32, copy=False),)

    return compute


@kernels.register("TreeEnsembleRegressor", 1, 2, domain=ML)
def tree_ensemble_regressor_1(node: NodeInfo):
    """TreeEnsembleRegressor 1-2: sum/average/min/max of the leaf weights of every tree per
    target, plus base_values, then post_transform; float32 output [N, n_targets]."""
    return _tree_regressor(node)


@kernels.register("TreeEnsembleRegressor", 3, domain=ML)
def tree_ensemble_regressor_3(node: NodeInfo):
    """TreeEnsembleRegressor 3+: as 1, where *_as_tensor attributes may give thresholds,
    weights and base values in double precision."""
    return _tree_regressor(node)


def _binary_tree_scores(scores: np.ndarray, has: np.ndarray, base: np.ndarray,
                        binary_case: bool, all_positive: bool,
                        transform: str) -> tuple[np.ndarray, np.ndarray]:
    """ONNX Runtime's two-class TreeEnsembleClassifier rules, row by row.

    Returns whether the positive class wins and the [N, 2] scores. A row keeps two scores
    when two base values are given or class 1 got a weight; otherwise its one score s
    (plus the single base value, if one is given) becomes [1-s, s] (all-positive weights,
    one class id), [-s, s] (else) or, with LOGISTIC, [logistic(-s), logistic(s)].
    """
    s0, s1 = scores[:, 0], scores[:, 1]
    h0, h1 = has[:, 0], has[:, 1]
    base = base.astype(scores.dtype)  # added in the compute type, as ONNX Runtime adds
    two = np.ones(len(s0), dtype=bool)  # rows that keep two scores
    extra = np.full(len(s0), -1)        # ONNX Runtime's 'write_additional_scores'
    if len(base) == 2:
        summed = s0 + base[1]
        s0, s1 = np.where(h1, -summed, s0 + base[0]), np.where(h1, summed, s1 + base[1])
    elif len(base) == 1:  # added to class 0's score; 'has' is unchanged, as ONNX Runtime
        s0 = s0 + base[0]
        two = h1.copy()
    else:
        extra[:] = 3
        two = h1.copy()
    positive_weight = np.where(two & h1, s1, np.where(h0, s0, 0))
    if binary_case:
        wins = positive_weight > (0.5 if all_positive else 0)
        extra = np.where(wins, 0, 1) if all_positive else np.where(wins, 2, 3)
    else:
        wins = positive_weight > 0
    v0 = _as_float32(np.where(h0, s0, 0))
    v1 = _as_float32(np.where(h1, s1, 0))
    pair = _transform(np.stack([v0, v1], axis=1), transform)
    if transform == "PROBIT":
        single = np.stack([_probit(v0), np.zeros_like(v0)], axis=1)
    else:
        if transform == "LOGISTIC":
            mirrored = complement = np.stack([_logistic(-v0), _logistic(v0)], axis=1)
        else:
            mirrored = np.stack([-v0, v0], axis=1)
            complement = np.stack([_F32(1) - v0, v0], axis=1)
        single = np.where((extra <= 1)[:, None], complement, mirrored)
        single = np.where((extra < 0)[:, None], np.stack([v0, np.zeros_like(v0)], axis=1),
                          single)
    return wins, np.where(two[:, None], pair, single)


def _tree_classifier(node: NodeInfo):
    """TreeEnsembleClassifier body (versions 1 and 3+)."""
    labels = _class_labels(node, "classlabels_int64s")
    if labels is None:
        raise _fail(node, "one of classlabels_strings and classlabels_int64s is required")
    classes = len(labels)
    transform = _post_transform(node)
    base = _values_attr(node, "base_values")
    _check_base(node, base, classes, binary=classes == 2)
    forest = _compile_v3(node, "class", classes, "sum")
    class_ids = _ints(node, "class_ids")
    binary_case = classes == 2 and len(set(class_ids)) == 1
    all_positive = bool((_values_attr(node, "class_weights") >= 0).all())
    strings = labels.dtype == object
    # the compiled finish handles more than two classes when every class gets a score
    binary = -1
    if classes == 2:
        binary = ((ml_loops.BINARY_CASE if binary_case else 0)
                  | (ml_loops.ALL_POSITIVE if all_positive else 0))
    compiled = _CompiledForest.create(node, forest, base if classes > 1 else np.zeros(0),
                                      transform=transform, first_only=classes == 1,
                                      keep_missing=True, binary=binary)
    # the compiled finish covers two classes, and more when every class gets a score
    finish_compiled = compiled is not None and (
        classes == 2 or (classes > 2 and (forest.full or len(base) > 0)))

    def compute(x):
        rows = _tree_rows(node, forest, x)
        if compiled is None:
            if classes == 1:
                scores, has = forest.single(rows, "SUM").reshape(-1, 1), None
            else:
                scores, has = forest.multi(rows, "SUM")
        else:
            if finish_compiled:
                top = np.empty(rows.shape[0], dtype=np.int64)
                z = compiled.predict(rows, top)
                # With weights for both classes ONNX Runtime emits 1/0, not the int64 labels.
                if classes == 2 and not (strings or binary_case):
                    return top, z
                return labels[top], z
            scores, has = compiled.scores(rows)
        if classes == 1:  # a single score: ONNX Runtime labels it 1 if > 0, else 0
            score = scores[:, 0]
            if len(base):
                score = score + rows.dtype.type(base[0])
            raw = (score > 0).astype(np.int64)
            y = labels[np.minimum(raw, classes - 1)] if strings else raw
            return y, _transform_single(score.reshape(-1, 1), transform)
        if classes > 2:
            if len(base):
                scores = scores + base.astype(rows.dtype)
            if forest.full or len(base):  # every class has a score
                return labels[_first_argmax(scores)], _transform(scores, transform)
            top = _first_argmax(np.where(has, scores, -np.inf))
            y = labels[np.where(has.any(axis=1), top, -1)]
            return y, _transform(np.where(has, scores, 0), transform)
        wins, z = _binary_tree_scores(scores, has, base, binary_case, all_positive, transform)
        index = wins.astype(np.int64)
        # With weights for both classes ONNX Runtime emits 1/0, not the int64 labels.
        return (labels[index] if strings or binary_case else index), z

    return compute


@kernels.register("TreeEnsembleClassifier", 1, 2, domain=ML)
def tree_ensemble_classifier_1(node: NodeInfo):
    """TreeEnsembleClassifier 1-2: sum the class weights of the reached leaves (plus
    base_values), label the top class, then post_transform the scores; binary models follow
    ONNX Runtime's rules."""
    return _tree_classifier(node)


@kernels.register("TreeEnsembleClassifier", 3, domain=ML)
def tree_ensemble_classifier_3(node: NodeInfo):
    """TreeEnsembleClassifier 3+: as 1, with *_as_tensor attributes for double precision."""
    return _tree_classifier(node)


# TreeEnsemble 5 enumerations, as the spec numbers them.
_V5_AGGREGATES = ("AVERAGE", "SUM", "MIN", "MAX")
_V5_TRANSFORMS = ("NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO", "PROBIT")
_V5_MEMBER = 6


def _compile_v5(node: NodeInfo, combine: str, targets: int) -> _Forest:
    """Build a :class:`_Forest` from TreeEnsemble 5 attributes; a BRANCH_MEMBER node becomes
    a chain of BRANCH_EQ nodes, one per member (as ONNX Runtime unrolls it)."""
    attrs = node.attrs
    features = _ints(node, "nodes_featureids")
    true_ids, false_ids = _ints(node, "nodes_truenodeids"), _ints(node, "nodes_falsenodeids")
    true_leaf, false_leaf = _ints(node, "nodes_trueleafs"), _ints(node, "nodes_falseleafs")
    splits = np.asarray(attrs["nodes_splits"]).reshape(-1).astype(np.float64)
    modes = np.asarray(attrs["nodes_modes"]).reshape(-1).astype(np.int64)
    count = len(features)
    if any(len(a) != count for a in (true_ids, false_ids, true_leaf, false_leaf, splits, modes)):
        raise _fail(node, "the nodes_* attributes must all have the same length")
    if ((modes < 0) | (modes > _V5_MEMBER)).any():
        raise _fail(node, "nodes_modes must lie in [0, 6]")
    targets_of = _int_array(node, "leaf_targetids")
    weights = np.asarray(attrs["leaf_weights"]).reshape(-1).astype(np.float64)
    leaves = len(targets_of)
    if len(weights) != leaves:
        raise _fail(node, "leaf_targetids and leaf_weights must have the same length")
    if leaves and (targets_of.min() < 0 or targets_of.max() >= targets):
        raise _fail(node, f"leaf_targetids must lie in [0, {targets})")
    members = _membership_sets(node, modes)
    extra = sum(max(len(m) - 1, 0) for m in members.values())
    leaf_base = count + extra
    total = leaf_base + leaves
    feature = np.zeros(total, dtype=np.int64)
    threshold = np.zeros(total, dtype=np.float64)
    mode = np.full(total, _LEAF, dtype=np.int64)
    true_next = np.arange(total, dtype=np.int64)
    false_next = np.arange(total, dtype=np.int64)
    missing = np.zeros(total, dtype=bool)
    tracks = _ints(node, "nodes_missing_value_tracks_true")[:count]

    def successor(i: int, ids: list[int], is_leaf: list[int]) -> int:
        limit = leaves if is_leaf[i] else count
        if not 0 <= ids[i] < limit:
            raise _fail(node, f"node {i} points to a missing {'leaf' if is_leaf[i] else 'node'}")
        return leaf_base + ids[i] if is_leaf[i] else ids[i]

    next_free = count
    for i in range(count):
        on_true, on_false = successor(i, true_ids, true_leaf), successor(i, false_ids, false_leaf)
        chain = [i]
        values = [splits[i]]
        node_mode = int(modes[i])
        if node_mode == _V5_MEMBER:
            values = members[i] or [np.nan]  # an empty set never matches
            chain += list(range(next_free, next_free + len(values) - 1))
            next_free += len(values) - 1
            node_mode = 4  # BRANCH_EQ
        for link, (slot, value) in enumerate(zip(chain, values)):
            feature[slot], threshold[slot], mode[slot] = features[i], value, node_mode
            missing[slot] = i < len(tracks) and tracks[i] == 1
            true_next[slot] = on_true
            false_next[slot] = chain[link + 1] if link + 1 < len(chain) else on_false
    roots = []
    for r in _ints(node, "tree_roots"):
        if not 0 <= r < max(count, leaves):
            raise _fail(node, f"tree root {r} is out of range")
        single_leaf = (r < count and true_leaf[r] and false_leaf[r]
                       and true_ids[r] == false_ids[r])
        roots.append(leaf_base + r if single_leaf or r >= count else r)
    forest = _Forest(feature, threshold, mode, true_next, false_next, missing,
                     np.asarray(roots, dtype=np.int64), lambda m: _fail(node, m))
    forest.set_weights(leaf_base + np.arange(leaves), targets_of, weights, targets, combine)
    return forest


def _membership_sets(node: NodeInfo, modes: np.ndarray) -> dict[int, list[float]]:
    """Split membership_values (NaN-separated) among the BRANCH_MEMBER nodes, in order."""
    member_nodes = np.nonzero(modes == _V5_MEMBER)[0].tolist()
    if not member_nodes:
        return {}
    values = _tensor_attr(node, "membership_values")
    if values is None:
        raise _fail(node, "BRANCH_MEMBER nodes need membership_values")
    groups: list[list[float]] = [[]]
    for value in values.astype(np.float64).tolist():
        if np.isnan(value):
            groups.append([])
        else:
            groups[-1].append(value)
    if len(groups) < len(member_nodes):
        raise _fail(node, "membership_values has fewer sets than BRANCH_MEMBER nodes")
    return dict(zip(member_nodes, groups))


@kernels.register("TreeEnsemble", 5, domain=ML)
def tree_ensemble(node: NodeInfo):
    """TreeEnsemble 5+: aggregate the leaf weights per target over all trees (nodes compare
    with <=, <, >=, >, ==, != or set membership), then post_transform; output in X's type.

    Where ONNX Runtime (1.31) departs from the spec this kernel follows the spec:
    post_transform 1 is SOFTMAX and 2 LOGISTIC (ONNX Runtime swaps them), set membership is
    exact (ONNX Runtime truncates inputs to integers for sets with negative members), and a
    root is a single leaf only when both its branches are leaves with the same index (ONNX
    Runtime: when the two indices are equal).
    """
    targets = int(node.attrs.get("n_targets", 0))
    if targets <= 0:
        raise _fail(node, "n_targets must be positive")
    aggregate_id = int(node.attrs.get("aggregate_function", 1))
    transform_id = int(node.attrs.get("post_transform", 0))
    if not 0 <= aggregate_id < 4 or not 0 <= transform_id < 5:
        raise _fail(node, f"aggregate_function {aggregate_id} or post_transform {transform_id} "
                          f"is out of range")
    aggregate = _V5_AGGREGATES[aggregate_id]
    transform = _V5_TRANSFORMS[transform_id]
    forest = _compile_v5(node, _COMBINE[aggregate], targets)
    no_base = np.zeros(0)
    compiled = _compiled_regressor(node, forest, no_base, aggregate, transform)

    def compute(x):
        rows = _tree_rows(node, forest, x)
        out = _regression_output(forest, rows, aggregate, no_base, transform, compiled)
        return (out.astype(x.dtype, copy=False),)

    return compute
