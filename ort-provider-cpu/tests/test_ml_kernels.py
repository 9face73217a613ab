"""ai.onnx.ml kernels compared with onnxruntime on many random models.

Trees, SVMs and linear models are generated with random attributes; where onnxruntime has no
kernel for a type the onnx ReferenceEvaluator is the oracle. Known, deliberate deviations from
onnxruntime (documented in the ``kernels/ml_*.py`` modules) are tested against the spec instead.
"""

import time

import numpy as np
import onnxruntime
import pytest
from onnx import TensorProto, helper

import ort
from ort.testing import (assert_outputs_match, expected_outputs, make_model, run_ort,
                         run_reference, tensor_type_of)
from ort_provider_cpu.kernels import ml_forest

MODES = ["BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ"]
TRANSFORMS = ["NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO", "PROBIT"]


def ml_model(op, attrs, x_dtypes, n_outputs=1, opset=3):
    """A one-node ai.onnx.ml model (:func:`ort.testing.make_model`) with inputs X0.. (of
    ``x_dtypes``, one dtype or a list; shapes left open) and outputs Y0.."""
    if not isinstance(x_dtypes, (list, tuple)):
        x_dtypes = [x_dtypes]
    names = [f"X{i}" for i in range(len(x_dtypes))]
    node = helper.make_node(op, names, [f"Y{i}" for i in range(n_outputs)], domain="ai.onnx.ml",
                            **attrs)
    return make_model(
        [node], [helper.make_tensor_value_info(n, tensor_type_of(d), None)
                 for n, d in zip(names, x_dtypes)],
        [helper.make_empty_tensor_value_info(f"Y{i}") for i in range(n_outputs)],
        opset=21, opsets={"ai.onnx.ml": opset}, ir_version=10)


def assert_same(actual, expected, rtol=1e-4, atol=1e-5):
    """Every output a tensor matching the expected one (:func:`ort.testing.assert_outputs_match`,
    each expected value taken as an array)."""
    assert_outputs_match(actual, [np.asarray(want) for want in expected], rtol, atol)


def check(op, attrs, *xs, n_outputs=1, opset=1, rtol=1e-4, atol=1e-5, oracle="ort"):
    """Ours vs onnxruntime (the reference evaluator where it has no kernel) or, with
    ``oracle="ref"``, the reference evaluator."""
    model = ml_model(op, attrs, [x.dtype for x in xs], n_outputs, opset)
    feeds = {f"X{i}": x for i, x in enumerate(xs)}
    actual = run_ort(model, feeds)
    expected = expected_outputs(model, feeds, "onnxruntime" if oracle == "ort" else "reference")
    assert_same(actual, expected, rtol, atol)
    return actual


# --------------------------------------------------------------------------------------------
# tree ensembles
# --------------------------------------------------------------------------------------------


@pytest.fixture(params=["walk", "jump"])
def traversal(request, monkeypatch):
    """Force one of the two numpy tree traversal strategies (level by level, or jumps through
    the successor map) by making numpy calls free or very expensive in the cost model (the
    compiled loops, off here, are tested in test_ml_compiled.py)."""
    monkeypatch.setenv("ORT_CPU_COMPILED_KERNELS", "0")
    monkeypatch.setattr(ml_forest, "_CALL_COST", 0 if request.param == "walk" else 10**12)
    return request.param


def random_trees(rng, n_trees, depth, n_features, modes, missing_p):
    """Random TreeEnsembleRegressor/Classifier node attributes and the (tree, node) leaves."""
    cols = {k: [] for k in ("treeids", "nodeids", "featureids", "values", "modes", "truenodeids",
                            "falsenodeids", "missing_value_tracks_true")}
    leaves = []
    for tree in range(n_trees):
        counter = [0]

        def build(level, tree=tree, counter=counter):
            nid = counter[0]
            counter[0] += 1
            i = len(cols["treeids"])
            for values in cols.values():
                values.append(0)
            cols["treeids"][i], cols["nodeids"][i] = tree, nid
            if level >= depth or (level and rng.random() < 0.2):
                cols["modes"][i], cols["values"][i] = "LEAF", float(rng.normal())
                leaves.append((tree, nid))
                return nid
            cols["modes"][i] = str(rng.choice(modes))
            cols["featureids"][i] = int(rng.integers(n_features))
            cols["values"][i] = float(np.round(rng.normal(), 1))
            cols["missing_value_tracks_true"][i] = int(rng.random() < missing_p)
            cols["truenodeids"][i] = build(level + 1)
            cols["falsenodeids"][i] = build(level + 1)
            return nid

        build(0)
    return {f"nodes_{k}": v for k, v in cols.items()}, leaves


def random_input(rng, n_features, dtype):
    x = np.round(rng.normal(size=(int(rng.integers(1, 7)), n_features)), 1)
    x[rng.random(x.shape) < 0.1] = np.nan
    if np.dtype(dtype).kind in "iu":
        return np.nan_to_num(x * 3).astype(dtype)
    return x.astype(dtype)


@pytest.mark.usefixtures("traversal")
@pytest.mark.parametrize("seed", range(4))
def test_tree_regressor_random(seed):
    rng = np.random.default_rng(seed)
    for _ in range(25):
        n_features = int(rng.integers(1, 5))
        modes = MODES if rng.random() < 0.5 else [str(rng.choice(MODES))]
        attrs, leaves = random_trees(rng, int(rng.integers(1, 6)), int(rng.integers(0, 5)),
                                     n_features, modes, rng.choice([0, 0.5]))
        targets = int(rng.integers(1, 4))
        tree_ids, node_ids, ids, weights = [], [], [], []
        for tree, nid in leaves:
            for _ in range(int(rng.integers(0 if rng.random() < 0.1 else 1, 3))):
                tree_ids.append(tree)
                node_ids.append(nid)
                ids.append(int(rng.integers(targets)))
                weights.append(float(np.round(rng.normal(), 2)))
        attrs.update(n_targets=targets, target_treeids=tree_ids, target_nodeids=node_ids,
                     target_ids=ids, target_weights=weights,
                     aggregate_function=str(rng.choice(["SUM", "AVERAGE", "MIN", "MAX"])),
                     post_transform=str(rng.choice(TRANSFORMS)))
        if rng.random() < 0.4:
            attrs["base_values"] = [float(v) for v in np.round(rng.normal(size=targets), 2)]
        opset = int(rng.choice([1, 3]))
        dtype = rng.choice([np.float32, np.float64])
        if opset == 3 and dtype == np.float64 and rng.random() < 0.5:
            values = attrs.pop("nodes_values")
            attrs["nodes_values_as_tensor"] = helper.make_tensor(
                "v", TensorProto.DOUBLE, [len(values)], values)
        check("TreeEnsembleRegressor", attrs, random_input(rng, n_features, dtype), opset=opset)


@pytest.mark.usefixtures("traversal")
@pytest.mark.parametrize("seed", range(4))
def test_tree_classifier_random(seed):
    rng = np.random.default_rng(100 + seed)
    for _ in range(25):
        n_features = int(rng.integers(1, 5))
        modes = MODES if rng.random() < 0.5 else [str(rng.choice(MODES))]
        attrs, leaves = random_trees(rng, int(rng.integers(1, 6)), int(rng.integers(0, 5)),
                                     n_features, modes, rng.choice([0, 0.5]))
        classes = int(rng.choice([2, 2, 2, 3, 4]))
        # binary models: weights for one class only (onnxruntime's "binary case") or both
        pool = ([int(rng.integers(classes))] if classes == 2 and rng.random() < 0.5
                else list(range(classes)))
        positive = rng.random() < 0.5
        tree_ids, node_ids, ids, weights = [], [], [], []
        for tree, nid in leaves:
            for cls in (pool if rng.random() < 0.5 else [int(rng.choice(pool))]):
                tree_ids.append(tree)
                node_ids.append(nid)
                ids.append(cls)
                weights.append(float(np.round(rng.random() if positive else rng.normal(), 2)))
        # PROBIT on one binary score leaves onnxruntime's second column unset
        transforms = TRANSFORMS if classes > 2 else TRANSFORMS[:4]
        attrs.update(class_treeids=tree_ids, class_nodeids=node_ids, class_ids=ids,
                     class_weights=weights, post_transform=str(rng.choice(transforms)))
        if rng.random() < 0.5:
            attrs["classlabels_int64s"] = [int(v) for v in rng.choice(20, classes, replace=False)]
        else:
            attrs["classlabels_strings"] = [f"c{v}" for v in range(classes)]
        if rng.random() < 0.4:
            attrs["base_values"] = [float(v) for v in np.round(rng.normal(size=classes), 2)]
        dtype = rng.choice([np.float32, np.float64, np.int64])
        check("TreeEnsembleClassifier", attrs, random_input(rng, n_features, dtype),
              n_outputs=2, opset=int(rng.choice([1, 3])))


def random_v5(rng, targets, dtype):
    """Random TreeEnsemble 5 attributes (set members are small non-negative integers, where
    onnxruntime's set membership is exact)."""
    tensor_type = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    cols = {k: [] for k in ("featureids", "splits", "modes", "truenodeids", "falsenodeids",
                            "trueleafs", "falseleafs", "missing_value_tracks_true")}
    leaf_targets, leaf_weights, members, roots = [], [], [], []
    one_mode = int(rng.integers(0, 7)) if rng.random() < 0.3 else None

    def build(level):
        if level >= 3 or (level and rng.random() < 0.3):
            leaf_targets.append(int(rng.integers(targets)))
            leaf_weights.append(float(np.round(rng.normal(), 2)))
            return 1, len(leaf_targets) - 1
        i = len(cols["modes"])
        for values in cols.values():
            values.append(0)
        mode = one_mode if one_mode is not None else int(rng.integers(0, 7))
        cols["modes"][i], cols["featureids"][i] = mode, int(rng.integers(n_features))
        cols["splits"][i] = float(np.round(rng.normal(), 1))
        cols["missing_value_tracks_true"][i] = int(rng.random() < 0.3)
        if mode == 6:
            size = int(rng.integers(1, 4))
            members.extend([float(v) for v in rng.choice(5, size, replace=False)] + [np.nan])
        cols["trueleafs"][i], cols["truenodeids"][i] = build(level + 1)
        cols["falseleafs"][i], cols["falsenodeids"][i] = build(level + 1)
        return 0, i

    n_features = int(rng.integers(1, 5))
    for _ in range(int(rng.integers(1, 5))):
        is_leaf, root = build(0)
        if not is_leaf:
            roots.append(root)
    if not roots:
        return None, n_features
    attrs = {f"nodes_{k}": v for k, v in cols.items() if k not in ("splits", "modes")}
    attrs.update(
        n_targets=targets, tree_roots=roots, leaf_targetids=leaf_targets,
        nodes_splits=helper.make_tensor("s", tensor_type, [len(cols["splits"])], cols["splits"]),
        nodes_modes=helper.make_tensor("m", TensorProto.UINT8, [len(cols["modes"])],
                                       cols["modes"]),
        leaf_weights=helper.make_tensor("w", tensor_type, [len(leaf_weights)], leaf_weights),
        aggregate_function=int(rng.integers(0, 4)))
    if members:
        attrs["membership_values"] = helper.make_tensor("mv", tensor_type, [len(members)],
                                                        members)
    return attrs, n_features


@pytest.mark.usefixtures("traversal")
@pytest.mark.parametrize("seed", range(3))
def test_tree_ensemble_5_random(seed):
    rng = np.random.default_rng(200 + seed)
    tested = 0
    while tested < 25:
        dtype = rng.choice([np.float32, np.float64])
        attrs, n_features = random_v5(rng, int(rng.integers(1, 4)), dtype)
        if attrs is None:
            continue
        tested += 1
        x = random_input(rng, n_features, dtype)
        x[rng.random(x.shape) < 0.3] = rng.integers(0, 5)  # hit set members
        transform = int(rng.integers(0, 5))
        ours = run_ort(ml_model("TreeEnsemble", dict(attrs, post_transform=transform), dtype,
                                 opset=5), {"X0": x})
        # onnxruntime numbers post_transform 1 LOGISTIC and 2 SOFTMAX (the spec: the reverse)
        theirs_id = {1: 2, 2: 1}.get(transform, transform)
        expected = expected_outputs(ml_model("TreeEnsemble",
                                             dict(attrs, post_transform=theirs_id), dtype,
                                             opset=5), {"X0": x})
        assert_same(ours, expected)


def test_tree_ensemble_5_spec_semantics():
    """Set membership is exact for negative members and post_transform 1 is SOFTMAX (where
    onnxruntime truncates values and swaps SOFTMAX/LOGISTIC): compare with the reference."""
    attrs = dict(
        n_targets=2, tree_roots=[0], nodes_featureids=[0], nodes_truenodeids=[0],
        nodes_falsenodeids=[1], nodes_trueleafs=[1], nodes_falseleafs=[1],
        nodes_splits=helper.make_tensor("s", TensorProto.FLOAT, [1], [0.0]),
        nodes_modes=helper.make_tensor("m", TensorProto.UINT8, [1], [6]),
        membership_values=helper.make_tensor("mv", TensorProto.FLOAT, [3], [-1, 2, np.nan]),
        leaf_targetids=[0, 1],
        leaf_weights=helper.make_tensor("w", TensorProto.FLOAT, [2], [1.0, 2.0]))
    x = np.array([[-1.5], [-1], [2], [2.5], [0]], np.float32)
    model = ml_model("TreeEnsemble", attrs, np.float32, opset=5)
    expected = run_reference(model, {"X0": x})
    assert_same(run_ort(model, {"X0": x}), expected)
    model = ml_model("TreeEnsemble", dict(attrs, post_transform=1), np.float32, opset=5)
    got = run_ort(model, {"X0": x})[0]
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-6)  # softmax rows


def test_tree_ensemble_5_single_leaf_and_float16():
    """A tree that is one leaf; float16 (no onnxruntime kernel: reference oracle)."""
    attrs = dict(
        n_targets=1, tree_roots=[0, 1], nodes_featureids=[0, 0], nodes_truenodeids=[0, 1],
        nodes_falsenodeids=[0, 2], nodes_trueleafs=[1, 1], nodes_falseleafs=[1, 1],
        nodes_splits=helper.make_tensor("s", TensorProto.FLOAT16, [2], [0.0, 0.5]),
        nodes_modes=helper.make_tensor("m", TensorProto.UINT8, [2], [0, 0]),
        leaf_targetids=[0, 0, 0],
        leaf_weights=helper.make_tensor("w", TensorProto.FLOAT16, [3], [10.0, 1.0, 2.0]))
    check("TreeEnsemble", attrs, np.array([[0.0], [1.0]], np.float16), opset=5, rtol=1e-3,
          oracle="ref")
    for aggregate in range(4):
        attrs32 = dict(attrs, aggregate_function=aggregate,
                       nodes_splits=helper.make_tensor("s", TensorProto.FLOAT, [2], [0, .5]),
                       leaf_weights=helper.make_tensor("w", TensorProto.FLOAT, [3], [10, 1, 2]))
        check("TreeEnsemble", attrs32, np.array([[0.0], [1.0]], np.float32), opset=5)


def test_tree_classifier_binary_rules():
    """onnxruntime's binary rules: one class id -> scores [1-p, p] / labels by threshold;
    weights for both classes -> raw 1/0 labels; base_values override."""
    base = dict(nodes_treeids=[0, 0, 0], nodes_nodeids=[0, 1, 2], nodes_featureids=[0, 0, 0],
                nodes_values=[0.5, 0, 0], nodes_modes=["BRANCH_LEQ", "LEAF", "LEAF"],
                nodes_truenodeids=[1, 0, 0], nodes_falsenodeids=[2, 0, 0],
                classlabels_int64s=[5, 7])
    x = np.array([[0.0], [1.0], [0.4]], np.float32)
    cases = [
        ([0, 1, 0, 1], [1, 1, 2, 2], [0.7, 0.3, 0.2, 0.8], {}),
        ([1, 1], [1, 2], [0.3, 0.8], {}),
        ([1, 1], [1, 2], [-0.3, 0.8], {"post_transform": "LOGISTIC"}),
        ([0, 0], [1, 2], [0.3, 0.8], {}),
        ([1, 1], [1, 2], [0.3, 0.8], {"base_values": [0.1, 0.2]}),
        ([0, 1, 0, 1], [1, 1, 2, 2], [0.7, 0.3, 0.2, 0.8], {"base_values": [0.1, 0.2]}),
        ([1, 0], [1, 2], [0.3, 0.8], {"post_transform": "SOFTMAX"}),
    ]
    for ids, nodes, weights, extra in cases:
        attrs = dict(base, class_treeids=[0] * len(ids), class_nodeids=nodes, class_ids=ids,
                     class_weights=weights, **extra)
        check("TreeEnsembleClassifier", attrs, x, n_outputs=2)


@pytest.mark.usefixtures("traversal")
@pytest.mark.parametrize("targets", [1, 2])
@pytest.mark.parametrize("rows", [0, 1, 3])
def test_tree_batch_sizes(targets, rows):
    """Both traversals handle empty, one-row and several-row batches."""
    rng = np.random.default_rng(targets)
    attrs, leaves = random_trees(rng, 3, 3, 2, ["BRANCH_LEQ"], 0.0)
    attrs.update(n_targets=targets, target_treeids=[t for t, _ in leaves],
                 target_nodeids=[n for _, n in leaves],
                 target_ids=[i % targets for i in range(len(leaves))],
                 target_weights=[float(v) for v in rng.normal(size=len(leaves))])
    check("TreeEnsembleRegressor", attrs, rng.normal(size=(rows, 2)).astype(np.float32))


def test_tree_classifier_single_base_value():
    """Two classes and one base value (skl2onnx's binary gradient boosting): it is added to
    class 0's score in float32 (0.2 + 0.3 is exactly 0.5, not above the 0.5 threshold)."""
    base = dict(nodes_treeids=[0, 0, 0], nodes_nodeids=[0, 1, 2], nodes_featureids=[0, 0, 0],
                nodes_values=[0.5, 0, 0], nodes_modes=["BRANCH_LEQ", "LEAF", "LEAF"],
                nodes_truenodeids=[1, 0, 0], nodes_falsenodeids=[2, 0, 0],
                classlabels_int64s=[5, 7], base_values=[0.3])
    x = np.array([[0.0], [1.0], [0.4]], np.float32)
    cases = [
        ([0, 0], [1, 2], [0.2, 0.9], {}),
        ([0, 0], [1, 2], [-2.2, 1.4], {"post_transform": "LOGISTIC"}),
        ([0, 0], [1, 2], [-2.2, 1.4], {}),
        ([1, 1], [1, 2], [0.2, 0.9], {"post_transform": "SOFTMAX"}),
        ([0, 1, 0, 1], [1, 1, 2, 2], [0.7, 0.3, 0.2, 0.8], {"post_transform": "LOGISTIC"}),
    ]
    for ids, nodes, weights, extra in cases:
        attrs = dict(base, class_treeids=[0] * len(ids), class_nodeids=nodes, class_ids=ids,
                     class_weights=weights, **extra)
        check("TreeEnsembleClassifier", attrs, x, n_outputs=2)
    three = dict(base, classlabels_int64s=[1, 2, 3], class_treeids=[0, 0], class_nodeids=[1, 2],
                 class_ids=[0, 1], class_weights=[1.0, 2.0])
    with pytest.raises(Exception, match="base_values"):
        run_ort(ml_model("TreeEnsembleClassifier", three, np.float32, 2), {"X0": x})


def _single_thread_oracle(model, feeds):
    """onnxruntime on one thread (its tree ensembles add partial sums per thread)."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    return onnxruntime.InferenceSession(model.SerializeToString(), options).run(None, feeds)


@pytest.mark.parametrize("classes", [3, 10])
@pytest.mark.parametrize("transform", ["NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO"])
def test_tree_scores_bit_for_bit(classes, transform):
    """Tree sums (tree by tree, in float32) and the post transforms (exp as C's expf, sums
    left to right, also from 8 classes on) give onnxruntime's exact bits; a softmax may
    differ by an ulp where float64 exp rounds to float32 differently from expf."""
    rng = np.random.default_rng(classes)
    attrs, leaves = random_trees(rng, 40, 4, 4, ["BRANCH_LEQ"], 0.0)
    ids = [c for _ in leaves for c in range(classes)]
    attrs.update(class_treeids=[t for t, _ in leaves for _ in range(classes)],
                 class_nodeids=[n for _, n in leaves for _ in range(classes)],
                 class_ids=ids, class_weights=[float(v) for v in rng.normal(size=len(ids))],
                 classlabels_int64s=list(range(classes)), post_transform=transform)
    model = ml_model("TreeEnsembleClassifier", attrs, np.float32, 2)
    feeds = {"X0": rng.normal(size=(64, 4)).astype(np.float32)}
    (label, z), (want_label, want_z) = run_ort(model, feeds), _single_thread_oracle(model, feeds)
    np.testing.assert_array_equal(label, want_label)
    if transform.startswith("SOFTMAX"):
        np.testing.assert_array_max_ulp(z, want_z, maxulp=1)
        assert (z == want_z).mean() > 0.99
    else:
        np.testing.assert_array_equal(z, want_z)


def test_svm_rbf_kernel_bit_for_bit():
    """RBF kernel values sum the squared differences feature by feature in float32 and take
    expf, as onnxruntime: a one-vector SVMRegressor outputs the kernel value itself."""
    rng = np.random.default_rng(5)
    attrs = dict(kernel_type="RBF", kernel_params=[0.37, 0.0, 0.0], n_supports=1,
                 support_vectors=[float(v) for v in rng.normal(size=9)], coefficients=[1.0],
                 rho=[0.0])
    model = ml_model("SVMRegressor", attrs, np.float32)
    feeds = {"X0": rng.normal(size=(200, 9)).astype(np.float32)}
    assert_outputs_match(run_ort(model, feeds), _single_thread_oracle(model, feeds), rtol=0,
                         atol=0)


def test_svr_sums_in_float64():
    """Large dual coefficients: the kernel values (float32) times the coefficients are summed
    in float64, so the output is the exact sum rounded once (onnxruntime's float32 GEMM is
    only within float32 rounding of the terms)."""
    rng = np.random.default_rng(6)
    vectors = rng.normal(size=(50, 3)).astype(np.float32)
    coefficients = (rng.normal(size=50) * 100).astype(np.float32)
    attrs = dict(kernel_type="RBF", kernel_params=[0.5, 0.0, 0.0], n_supports=50,
                 support_vectors=[float(v) for v in vectors.reshape(-1)],
                 coefficients=[float(v) for v in coefficients], rho=[0.25])
    x = rng.normal(size=(20, 3)).astype(np.float32)
    got = run_ort(ml_model("SVMRegressor", attrs, np.float32), {"X0": x})[0][:, 0]
    squares = (x[:, None, :] - vectors[None]) ** 2
    summed = squares[..., 0] + squares[..., 1] + squares[..., 2]  # float32, in order
    kernel = np.exp((-np.float32(0.5) * summed).astype(np.float64)).astype(np.float32)
    exact = kernel.astype(np.float64) @ coefficients.astype(np.float64) + np.float32(0.25)
    np.testing.assert_array_equal(got, exact.astype(np.float32))
    check("SVMRegressor", attrs, x, rtol=1e-4, atol=2e-4)


def test_tree_single_target_leaf_details():
    """One target: only a leaf's first weight counts, a leaf without weights adds its node
    value, weights on branch nodes are ignored, 1-D input is one row."""
    attrs = dict(nodes_treeids=[0, 0, 0], nodes_nodeids=[0, 1, 2], nodes_featureids=[0, 0, 0],
                 nodes_values=[0.5, 0.25, 0.75], nodes_modes=["BRANCH_LEQ", "LEAF", "LEAF"],
                 nodes_truenodeids=[1, 0, 0], nodes_falsenodeids=[2, 0, 0], n_targets=1,
                 target_treeids=[0, 0, 0], target_nodeids=[1, 1, 0], target_ids=[0, 0, 0],
                 target_weights=[0.3, 0.5, 9.0])
    check("TreeEnsembleRegressor", attrs, np.array([[0.0], [1.0]], np.float32))
    check("TreeEnsembleRegressor", attrs, np.array([1.0], np.float32))


def test_tree_ensemble_speed():
    """A 100-tree forest of depth 10 scores one row in well under a millisecond."""
    rng = np.random.default_rng(7)
    attrs, leaves = random_trees(rng, 100, 10, 20, ["BRANCH_LEQ"], 0.0)
    attrs.update(n_targets=1, target_treeids=[t for t, _ in leaves],
                 target_nodeids=[n for _, n in leaves], target_ids=[0] * len(leaves),
                 target_weights=[float(v) for v in rng.normal(size=len(leaves))])
    model = ml_model("TreeEnsembleRegressor", attrs, np.float32)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = rng.normal(size=(1, 20)).astype(np.float32)
    sess.run(None, {"X0": x})
    best = min(_timed(sess, x) for _ in range(5))
    assert best < 1e-3, f"{best * 1e6:.0f} us per run"


def _timed(sess, x, runs=20):
    start = time.perf_counter()
    for _ in range(runs):
        sess.run(None, {"X0": x})
    return (time.perf_counter() - start) / runs


@pytest.mark.parametrize("attrs, message", [
    (dict(nodes_truenodeids=[1, 0, 0], nodes_falsenodeids=[0, 0, 0]), "invalid false"),
    (dict(nodes_nodeids=[0, 1, 1]), "defined twice"),
    (dict(nodes_modes=["BRANCH_LEQ", "LEAF", "NOPE"]), "unknown node modes"),
    (dict(target_ids=[0, 3]), "target_ids must lie"),
    (dict(base_values=[1.0, 2.0]), "base_values"),
    (dict(aggregate_function="MEDIAN"), "aggregate_function"),
    (dict(post_transform="SQUARE"), "post_transform"),
    (dict(nodes_values=[0.5]), "same length"),
])
def test_tree_invalid_attributes(attrs, message):
    base = dict(nodes_treeids=[0, 0, 0], nodes_nodeids=[0, 1, 2], nodes_featureids=[0, 0, 0],
                nodes_values=[0.5, 0, 0], nodes_modes=["BRANCH_LEQ", "LEAF", "LEAF"],
                nodes_truenodeids=[1, 0, 0], nodes_falsenodeids=[2, 0, 0], n_targets=1,
                target_treeids=[0, 0], target_nodeids=[1, 2], target_ids=[0, 0],
                target_weights=[1.0, 2.0])
    model = ml_model("TreeEnsembleRegressor", dict(base, **attrs), np.float32)
    with pytest.raises(Exception, match=message):
        run_ort(model, {"X0": np.zeros((1, 1), np.float32)})


def test_tree_cycle_and_missing_feature():
    attrs = dict(nodes_treeids=[0, 0, 0], nodes_nodeids=[0, 1, 2], nodes_featureids=[0, 3, 0],
                 nodes_values=[0.5, 0, 0], nodes_modes=["BRANCH_LEQ", "BRANCH_LEQ", "LEAF"],
                 nodes_truenodeids=[1, 0, 0], nodes_falsenodeids=[2, 2, 0], n_targets=1,
                 target_treeids=[0], target_nodeids=[2], target_ids=[0], target_weights=[1.0])
    with pytest.raises(Exception, match="cycle"):
        run_ort(ml_model("TreeEnsembleRegressor", attrs, np.float32),
                 {"X0": np.zeros((1, 4), np.float32)})
    attrs["nodes_truenodeids"] = [1, 2, 0]
    with pytest.raises(Exception, match="feature 3"):
        run_ort(ml_model("TreeEnsembleRegressor", attrs, np.float32),
                 {"X0": np.zeros((1, 2), np.float32)})


# --------------------------------------------------------------------------------------------
# SVM and linear models
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_svm_classifier_random(seed):
    rng = np.random.default_rng(300 + seed)
    for _ in range(30):
        classes, features = int(rng.choice([2, 2, 3, 4])), int(rng.integers(1, 5))
        transform = str(rng.choice(TRANSFORMS))
        attrs = dict(kernel_type=str(rng.choice(["LINEAR", "POLY", "RBF", "SIGMOID"])),
                     kernel_params=[float(rng.uniform(0.1, 1)), float(rng.normal()),
                                    float(rng.choice([1, 2, 3]))])
        if rng.random() < 0.5:
            attrs["classlabels_ints"] = [int(v) for v in rng.choice(10, classes, replace=False)]
        else:
            attrs["classlabels_strings"] = [f"s{i}" for i in range(classes)]
        positive = rng.random() < 0.3
        if rng.random() < 0.7:  # SVC
            per_class = [int(v) for v in rng.integers(1, 4, classes)]
            vectors, pairs = sum(per_class), classes * (classes - 1) // 2
            coefficients = (rng.random((classes - 1) * vectors) if positive
                            else rng.normal(size=(classes - 1) * vectors))
            attrs.update(vectors_per_class=per_class,
                         support_vectors=[float(v) for v in rng.normal(size=vectors * features)],
                         coefficients=[float(v) for v in coefficients],
                         rho=[float(v) for v in rng.normal(size=pairs)])
            if rng.random() < 0.5:
                attrs.update(prob_a=[float(v) for v in rng.uniform(-3, -0.5, pairs)],
                             prob_b=[float(v) for v in rng.normal(size=pairs) * 0.3])
            elif classes == 2 and transform == "PROBIT":
                transform = "NONE"  # onnxruntime leaves the second score unset
        else:
            coefficients = (rng.random(classes * features) if positive
                            else rng.normal(size=classes * features))
            attrs.update(coefficients=[float(v) for v in coefficients],
                         rho=[float(rng.normal())])
        attrs["post_transform"] = transform
        x = rng.normal(size=(int(rng.integers(1, 6)), features))
        x = x.astype(rng.choice([np.float32, np.float64])) if rng.random() < 0.7 else \
            (x * 2).astype(np.int64)
        check("SVMClassifier", attrs, x, n_outputs=2, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("seed", range(2))
def test_svm_regressor_random(seed):
    rng = np.random.default_rng(400 + seed)
    for _ in range(30):
        features, vectors = int(rng.integers(1, 5)), int(rng.integers(0, 4))
        attrs = dict(kernel_type=str(rng.choice(["LINEAR", "POLY", "RBF", "SIGMOID"])),
                     kernel_params=[float(rng.uniform(0.1, 1)), float(rng.normal()),
                                    float(rng.choice([1, 2, 3]))],
                     n_supports=vectors, rho=[float(rng.normal())],
                     one_class=int(rng.random() < 0.3))
        if vectors:
            attrs.update(support_vectors=[float(v) for v in rng.normal(size=vectors * features)],
                         coefficients=[float(v) for v in rng.normal(size=vectors)])
        else:
            attrs["coefficients"] = [float(v) for v in rng.normal(size=features)]
        x = rng.normal(size=(int(rng.integers(1, 6)), features)).astype(np.float32)
        check("SVMRegressor", attrs, x, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("seed", range(2))
def test_linear_models_random(seed):
    rng = np.random.default_rng(500 + seed)
    for _ in range(40):
        features = int(rng.integers(1, 5))
        transform = str(rng.choice(TRANSFORMS))
        x = rng.normal(size=(int(rng.integers(1, 6)), features)).astype(np.float32)
        if rng.random() < 0.2:
            x = x[0]
        if rng.random() < 0.5:
            classes = int(rng.choice([1, 2, 3, 4]))
            n_labels = classes if classes > 1 else int(rng.choice([0, 2]))
            if classes == 1 and n_labels == 2 and transform == "PROBIT":
                transform = "NONE"  # onnxruntime leaves half of the scores unset
            attrs = dict(coefficients=[float(v) for v in rng.normal(size=classes * features)],
                         intercepts=[float(v) for v in rng.normal(size=classes)],
                         post_transform=transform)
            if n_labels and rng.random() < 0.5:
                attrs["classlabels_ints"] = [int(v) for v in rng.choice(9, n_labels, False)]
            elif n_labels:
                attrs["classlabels_strings"] = [f"s{i}" for i in range(n_labels)]
            x = x.astype(rng.choice([np.float32, np.float64, np.int64, np.int32]))
            check("LinearClassifier", attrs, x, n_outputs=2, rtol=1e-3, atol=1e-4)
        else:
            targets = int(rng.integers(1, 4))
            attrs = dict(coefficients=[float(v) for v in rng.normal(size=targets * features)],
                         targets=targets, post_transform=transform)
            if rng.random() < 0.7:
                attrs["intercepts"] = [float(v) for v in rng.normal(size=targets)]
            check("LinearRegressor", attrs, x, rtol=1e-3, atol=1e-4)


def test_linear_classifier_errors():
    x = np.zeros((1, 2), np.float32)
    with pytest.raises(Exception, match="intercepts"):
        run_ort(ml_model("LinearClassifier", dict(coefficients=[1.0, 2.0]), np.float32, 2,
                          opset=1), {"X0": x})
    with pytest.raises(Exception, match="exactly 2"):
        run_ort(ml_model("LinearClassifier", dict(coefficients=[1.0, 2.0], intercepts=[0.0],
                                                   classlabels_ints=[1, 2, 3]), np.float32, 2,
                          opset=1), {"X0": x})


# --------------------------------------------------------------------------------------------
# feature ops and encoders
# --------------------------------------------------------------------------------------------

def strings(*values):
    return np.array(values, dtype=object)


@pytest.mark.parametrize("x, y", [
    (np.arange(12, dtype=np.float32).reshape(3, 4), np.array([0, 3, 1], np.int64)),
    (np.arange(24, dtype=np.int64).reshape(2, 3, 4), np.array([[2], [2]], np.int64)),
    (np.arange(5, dtype=np.float64), np.array([4], np.int64)),
    (strings("a", "b", "c").reshape(1, 3), np.array([2, 0], np.int64)),
    (np.arange(6, dtype=np.int32).reshape(2, 3), np.array([1], np.int64)),
])
def test_array_feature_extractor(x, y):
    check("ArrayFeatureExtractor", {}, x, y)


def test_array_feature_extractor_out_of_range():
    model = ml_model("ArrayFeatureExtractor", {}, [np.float32, np.int64], opset=1)
    with pytest.raises(Exception, match="out of range"):
        run_ort(model, {"X0": np.zeros((2, 3), np.float32), "X1": np.array([3], np.int64)})


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.int32])
@pytest.mark.parametrize("threshold", [None, 0.5, -1.0])
def test_binarizer(dtype, threshold):
    x = (np.arange(-6, 6).reshape(3, 4) / 4).astype(dtype)
    check("Binarizer", {} if threshold is None else {"threshold": threshold}, x)


@pytest.mark.parametrize("x", [strings("a", "b", "z", "c").reshape(2, 2),
                               np.array([[1, 2], [3, 9]], np.int64), strings()])
def test_category_mapper(x):
    attrs = dict(cats_strings=["a", "b", "c", "a"], cats_int64s=[1, 2, 3, 4])
    check("CategoryMapper", attrs, x)
    check("CategoryMapper", dict(attrs, default_int64=42, default_string="?"), x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.int32])
def test_feature_vectorizer(dtype):
    """Inputs are truncated or zero-padded to their inputdimensions."""
    xs = [np.arange(6).reshape(2, 3), np.array([[1], [2]]), np.arange(8).reshape(2, 2, 2),
          np.array([[7, 8], [9, 10]])]
    check("FeatureVectorizer", {"inputdimensions": [2, 3, 4, 2]}, *[x.astype(dtype) for x in xs])
    check("FeatureVectorizer", {"inputdimensions": [4]}, np.arange(3).astype(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.int32])
def test_imputer(dtype):
    x = np.array([[1, 0, 3], [0, 5, 0]], dtype=dtype)
    if np.dtype(dtype).kind == "f":
        x[0, 0] = np.nan
        for attrs in (dict(imputed_value_floats=[9.0], replaced_value_float=np.nan),
                      dict(imputed_value_floats=[7.0, 8.0, 9.0], replaced_value_float=0.0),
                      dict(imputed_value_floats=[7.0, 8.0, 9.0], replaced_value_float=np.nan)):
            check("Imputer", attrs, x)
    else:
        for attrs in (dict(imputed_value_int64s=[9]),
                      dict(imputed_value_int64s=[7, 8, 9], replaced_value_int64=3)):
            check("Imputer", attrs, x)


def test_imputer_needs_one_value_list():
    with pytest.raises(Exception, match="exactly one"):
        run_ort(ml_model("Imputer", {}, np.float32, opset=1), {"X0": np.zeros(2, np.float32)})


@pytest.mark.parametrize("norm", ["MAX", "L1", "L2"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.int32])
def test_normalizer(norm, dtype):
    x = np.array([[-1, -2, 4], [0, 0, 0], [1, -3, 2]], dtype=dtype)
    check("Normalizer", {"norm": norm}, x)
    check("Normalizer", {"norm": norm}, x[2])


@pytest.mark.parametrize("x, attrs", [
    (np.array([[1, 3], [5, 2]], np.int64), dict(cats_int64s=[1, 2, 3, 5])),
    (np.array([1.7, 3.2, -2.5], np.float32), dict(cats_int64s=[1, 3, -2])),
    (np.array([1.0, 3.0], np.float64), dict(cats_int64s=[3, 1])),
    (strings("b", "x", "a"), dict(cats_strings=["a", "b"])),
    (np.array([[1, 4]], np.int32), dict(cats_int64s=[1, 4, 5])),
])
def test_one_hot_encoder(x, attrs):
    check("OneHotEncoder", attrs, x)


def test_one_hot_encoder_unknown_with_zeros_0():
    model = ml_model("OneHotEncoder", dict(cats_int64s=[1, 2], zeros=0), np.int64, opset=1)
    with pytest.raises(Exception, match="unknown category"):
        run_ort(model, {"X0": np.array([3], np.int64)})


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.int32])
def test_scaler(dtype):
    x = np.arange(6).reshape(2, 3).astype(dtype)
    check("Scaler", dict(offset=[1.0, 2.0, 3.0], scale=[0.5, 2.0, -1.0]), x)
    check("Scaler", dict(offset=[1.5], scale=[3.0]), x)
    check("Scaler", dict(offset=[1.5], scale=[3.0]), x[0])


def test_label_encoder_1():
    attrs = dict(classes_strings=["a", "b", "a", "c"])
    check("LabelEncoder", attrs, strings("a", "c", "z", "b"))
    check("LabelEncoder", attrs, np.array([0, 2, 5, -1], np.int64))
    check("LabelEncoder", dict(attrs, default_int64=9, default_string="?"),
          strings("zz", "b"))


@pytest.mark.parametrize("opset", [2, 4])
@pytest.mark.parametrize("keys, values, x", [
    ("strings", "int64s", strings("a", "q", "b", "a")),
    ("strings", "floats", strings("b", "q")),
    ("int64s", "strings", np.array([[1, 7], [2, 1]], np.int64)),
    ("int64s", "floats", np.array([2, 9], np.int64)),
    ("floats", "int64s", np.array([1.0, -0.0, np.nan, 2.5], np.float32)),
    ("floats", "strings", np.array([0.0, 2.5], np.float32)),
])
def test_label_encoder_lists(opset, keys, values, x):
    key_lists = {"strings": ["a", "b", "a"], "int64s": [1, 2, 1], "floats": [0.0, np.nan, 2.5]}
    value_lists = {"strings": ["x", "y", "z"], "int64s": [10, 20, 30], "floats": [.5, 1.5, 2.5]}
    attrs = {f"keys_{keys}": key_lists[keys], f"values_{values}": value_lists[values]}
    check("LabelEncoder", attrs, x, opset=opset)


def _tensor(name, elem, values):
    if elem == TensorProto.STRING:
        values = [str(v).encode() for v in values]
    return helper.make_tensor(name, elem, [len(values)], values)


@pytest.mark.parametrize("key_type, value_type, x", [
    (TensorProto.INT64, TensorProto.DOUBLE, np.array([1, 3, 2], np.int64)),
    (TensorProto.DOUBLE, TensorProto.DOUBLE, np.array([1.0, np.nan, 5.0], np.float64)),
    (TensorProto.INT64, TensorProto.STRING, np.array([2, 9], np.int64)),
    (TensorProto.STRING, TensorProto.INT16, strings("1", "x")),
])
@pytest.mark.parametrize("with_default", [False, True])
def test_label_encoder_4_tensors(key_type, value_type, x, with_default):
    keys = [1, 2, np.nan] if key_type == TensorProto.DOUBLE else [1, 2, 1]
    attrs = dict(keys_tensor=_tensor("k", key_type, keys),
                 values_tensor=_tensor("v", value_type, [7, 8, 9]))
    if with_default:
        attrs["default_tensor"] = _tensor("d", value_type, [-5])
    check("LabelEncoder", attrs, x, opset=4)


@pytest.mark.parametrize("key_type, key_dtype, value_type, value_dtype", [
    (TensorProto.INT32, np.int32, TensorProto.INT16, np.int16),
    (TensorProto.INT16, np.int16, TensorProto.INT32, np.int32),
    (TensorProto.INT32, np.int32, TensorProto.FLOAT, np.float32),
])
def test_label_encoder_4_small_ints(key_type, key_dtype, value_type, value_dtype):
    """Types onnxruntime has no kernel for: the first pairing of a repeated key wins; the
    default is default_tensor, else default_int64/default_float."""
    attrs = dict(keys_tensor=_tensor("k", key_type, [1, 2, 1]),
                 values_tensor=_tensor("v", value_type, [7, 8, 9]))
    x = np.array([[1, 3], [2, 1]], key_dtype)
    model = ml_model("LabelEncoder", attrs, key_dtype, opset=4)
    got = run_ort(model, {"X0": x})[0]
    default = -1 if np.dtype(value_dtype).kind == "i" else -0.0
    np.testing.assert_array_equal(got, np.array([[7, default], [8, 7]], value_dtype))
    assert got.dtype == value_dtype
    model = ml_model("LabelEncoder", dict(attrs, default_tensor=_tensor("d", value_type, [-5])),
                     key_dtype, opset=4)
    assert run_ort(model, {"X0": x})[0].tolist() == [[7, -5], [8, 7]]


def test_label_encoder_mismatched_lengths():
    model = ml_model("LabelEncoder", dict(keys_int64s=[1, 2], values_int64s=[1]), np.int64,
                     opset=2)
    with pytest.raises(Exception, match="same length"):
        run_ort(model, {"X0": np.array([1], np.int64)})


@pytest.mark.parametrize("op, attrs, n_outputs", [
    ("LinearClassifier", dict(coefficients=[1.0, 2, 3, 4, 5, 6], intercepts=[0.1, 0.2],
                              classlabels_ints=[1, 2]), 2),
    ("LinearRegressor", dict(coefficients=[1.0, 2, 3], targets=1), 1),
    ("SVMClassifier", dict(coefficients=[1.0, 2, 3, 4, 5, 6], rho=[0.1],
                           kernel_params=[1.0, 0.0, 1.0], classlabels_ints=[1, 2]), 2),
    ("SVMRegressor", dict(coefficients=[1.0, 2, 3], n_supports=0, rho=[0.0],
                          kernel_params=[1.0, 0.0, 1.0]), 1),
    ("Normalizer", dict(norm="L2"), 1),
    ("Scaler", dict(scale=[2.0], offset=[1.0]), 1),
    ("Imputer", dict(imputed_value_floats=[1.0]), 1),
    ("TreeEnsembleRegressor", dict(
        n_targets=2, nodes_treeids=[0, 0, 0], nodes_nodeids=[0, 1, 2], nodes_featureids=[2, 0, 0],
        nodes_values=[0.5, 0, 0], nodes_modes=["BRANCH_LEQ", "LEAF", "LEAF"],
        nodes_truenodeids=[1, 0, 0], nodes_falsenodeids=[2, 0, 0], target_treeids=[0, 0],
        target_nodeids=[1, 2], target_ids=[0, 1], target_weights=[1.0, 2.0]), 1),
])
def test_empty_batch(op, attrs, n_outputs):
    check(op, attrs, np.zeros((0, 3), np.float32), n_outputs=n_outputs)
