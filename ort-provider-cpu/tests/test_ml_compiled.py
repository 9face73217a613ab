"""The compiled ai.onnx.ml kernels (``kernels/ml_loops.py``) against the numpy kernels
(``compiled_kernels=0``) and onnxruntime on one thread: hand-built tree ensembles covering every
node mode, aggregate, post transform and missing-value rule, scikit-learn models through
skl2onnx (with NaN inputs), batches across the loops' block and lane boundaries, rows split
over threads, and the small linear and feature kernels. Labels must match exactly, scores to
1e-5.
"""

import contextlib

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper
from test_ml_kernels import MODES, TRANSFORMS, ml_model, random_trees, random_v5

import ort
from ort_provider_cpu.kernels import ml_trees

pytest.importorskip("numba")

COMPILED = [("CPUExecutionProvider", {"compiled_kernels": "1"})]
NUMPY = [("CPUExecutionProvider", {"compiled_kernels": "0"})]
RTOL = ATOL = 1e-5


def _onnxruntime(model, feeds):
    """onnxruntime on one thread (its tree ensembles add partial sums per thread); None where
    it has no kernel for the input type (int64 for TreeEnsembleRegressor 3)."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    try:
        session = onnxruntime.InferenceSession(model, options)
    except onnxruntime.capi.onnxruntime_pybind11_state.NotImplemented:
        return None
    return session.run(None, feeds)


def _ours(model, feeds, providers, threads=1):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(model, options, providers=providers).run(None, feeds)


def assert_close(got, want, what, rtol=RTOL, atol=ATOL):
    """Integer and string outputs exactly, floats to 1e-5 (NaN where the other has NaN)."""
    assert len(got) == len(want), what
    for i, (g, w) in enumerate(zip(got, want)):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape, (what, i, g.shape, w.shape)
        if w.dtype == object or w.dtype.kind in "iub":
            np.testing.assert_array_equal(g, w, err_msg=f"{what} output {i}")
        else:
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=f"{what} output {i}")


@pytest.fixture
def compiled_calls(monkeypatch):
    """Counts the compiled forest walks, so that a test fails if the loop was not used."""
    calls = []
    original = ml_trees._CompiledForest.scores

    def scores(self, *args, **kwargs):
        calls.append(args[0].shape)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ml_trees._CompiledForest, "scores", scores)
    return calls


def check_three(model, feeds, *, oracle=True, threads=1, rtol=RTOL, atol=ATOL):
    """Compiled == numpy (to 1e-5, labels exactly) == onnxruntime; returns the compiled
    outputs."""
    if isinstance(model, onnx.ModelProto):
        model = model.SerializeToString()
    compiled = _ours(model, feeds, COMPILED, threads)
    numpy_outputs = _ours(model, feeds, NUMPY)
    assert_close(compiled, numpy_outputs, "compiled vs numpy", rtol, atol)
    expected = _onnxruntime(model, feeds) if oracle else None
    if expected is not None:
        assert_close(compiled, expected, "compiled vs onnxruntime", rtol, atol)
    return compiled


def _inputs(rng, rows, features, dtype):
    """Values rounded to 0.1 (so that some equal the thresholds), 10% NaN, some infinities."""
    x = np.round(rng.normal(size=(rows, features)), 1)
    x[rng.random(x.shape) < 0.1] = np.nan
    x[rng.random(x.shape) < 0.02] = np.inf
    x[rng.random(x.shape) < 0.02] = -np.inf
    if np.dtype(dtype).kind in "iu":
        return np.nan_to_num(x * 3, posinf=7, neginf=-7).astype(dtype)
    return x.astype(dtype)


# rows: one (lanes over trees), fewer than the 4 lanes, a block boundary (128) and past it
ROWS = [1, 3, 5, 128, 131, 300]


def _leaf_weights(rng, leaves, targets, prefix, duplicates=True):
    """Weights for the leaves: 1-2 per leaf (some leaves none, some twice the same target)."""
    tree_ids, node_ids, ids, weights = [], [], [], []
    for tree, nid in leaves:
        for _ in range(int(rng.integers(0 if rng.random() < 0.1 else 1, 3 if duplicates else 2))):
            tree_ids.append(tree)
            node_ids.append(nid)
            ids.append(int(rng.integers(targets)))
            weights.append(float(np.round(rng.normal(), 2)))
    return {f"{prefix}_treeids": tree_ids, f"{prefix}_nodeids": node_ids,
            f"{prefix}_ids": ids, f"{prefix}_weights": weights}


@pytest.mark.parametrize("seed", range(4))
def test_regressor_random(seed, compiled_calls):
    rng = np.random.default_rng(1000 + seed)
    for _ in range(12):
        features = int(rng.integers(1, 5))
        modes = MODES if rng.random() < 0.5 else [str(rng.choice(MODES))]
        attrs, leaves = random_trees(rng, int(rng.integers(1, 9)), int(rng.integers(0, 6)),
                                     features, modes, rng.choice([0, 0.5]))
        targets = int(rng.integers(1, 4))
        attrs.update(_leaf_weights(rng, leaves, targets, "target"), n_targets=targets,
                     aggregate_function=str(rng.choice(["SUM", "AVERAGE", "MIN", "MAX"])),
                     post_transform=str(rng.choice(TRANSFORMS)))
        if rng.random() < 0.4:
            attrs["base_values"] = [float(v) for v in np.round(rng.normal(size=targets), 2)]
        opset = int(rng.choice([1, 3]))
        dtype = rng.choice([np.float32, np.float64, np.int64])
        if opset == 3 and dtype == np.float64 and rng.random() < 0.5:
            values = attrs.pop("nodes_values")
            attrs["nodes_values_as_tensor"] = helper.make_tensor(
                "v", TensorProto.DOUBLE, [len(values)], values)
        model = ml_model("TreeEnsembleRegressor", attrs, dtype, opset=opset)
        x = _inputs(rng, int(rng.choice(ROWS)), features, dtype)
        check_three(model, {"X0": x})
    assert compiled_calls


@pytest.mark.parametrize("seed", range(4))
def test_classifier_random(seed, compiled_calls):
    rng = np.random.default_rng(2000 + seed)
    for _ in range(12):
        features = int(rng.integers(1, 5))
        modes = MODES if rng.random() < 0.5 else [str(rng.choice(MODES))]
        attrs, leaves = random_trees(rng, int(rng.integers(1, 9)), int(rng.integers(0, 6)),
                                     features, modes, rng.choice([0, 0.5]))
        classes = int(rng.choice([2, 2, 3, 4, 7]))
        pool = ([int(rng.integers(classes))] if classes == 2 and rng.random() < 0.5
                else list(range(classes)))
        positive = rng.random() < 0.5
        tree_ids, node_ids, ids, weights = [], [], [], []
        for tree, nid in leaves:  # every class (as random forests) or one (as boosting)
            for cls in (pool if rng.random() < 0.5 else [int(rng.choice(pool))]):
                tree_ids.append(tree)
                node_ids.append(nid)
                ids.append(cls)
                weights.append(float(np.round(rng.random() if positive else rng.normal(), 2)))
        transforms = TRANSFORMS if classes > 2 else TRANSFORMS[:4]
        attrs.update(class_treeids=tree_ids, class_nodeids=node_ids, class_ids=ids,
                     class_weights=weights, post_transform=str(rng.choice(transforms)))
        if rng.random() < 0.5:
            attrs["classlabels_int64s"] = [int(v) for v in rng.choice(20, classes, replace=False)]
        else:
            attrs["classlabels_strings"] = [f"c{v}" for v in range(classes)]
        if rng.random() < 0.5:
            attrs["base_values"] = [float(v) for v in np.round(rng.normal(size=classes), 2)]
        dtype = rng.choice([np.float32, np.float64, np.int64])
        model = ml_model("TreeEnsembleClassifier", attrs, dtype, 2, opset=int(rng.choice([1, 3])))
        x = _inputs(rng, int(rng.choice(ROWS)), features, dtype)
        check_three(model, {"X0": x})
    assert compiled_calls


@pytest.mark.parametrize("seed", range(3))
def test_tree_ensemble_5_random(seed, compiled_calls):
    rng = np.random.default_rng(3000 + seed)
    tested = 0
    while tested < 12:
        dtype = rng.choice([np.float32, np.float64])
        attrs, features = random_v5(rng, int(rng.integers(1, 4)), dtype)
        if attrs is None:
            continue
        tested += 1
        x = _inputs(rng, int(rng.choice(ROWS)), features, dtype)
        x[rng.random(x.shape) < 0.3] = rng.integers(0, 5)  # hit set members
        transform = int(rng.integers(0, 5))
        feeds = {"X0": x}
        model = ml_model("TreeEnsemble", dict(attrs, post_transform=transform), dtype, opset=5)
        ours = check_three(model, feeds, oracle=False)
        # onnxruntime numbers post_transform 1 LOGISTIC and 2 SOFTMAX (the spec: the reverse)
        theirs = ml_model("TreeEnsemble", dict(attrs, post_transform={1: 2, 2: 1}.get(
            transform, transform)), dtype, opset=5)
        assert_close(ours, _onnxruntime(theirs.SerializeToString(), feeds), "onnxruntime")
    assert compiled_calls


def _one_split(mode, threshold, missing, leaf_weights=(1.0, 2.0)):
    """A one-split regressor: feature 0 against ``threshold``, true leaf 1, false leaf 2."""
    return dict(
        n_targets=1, nodes_treeids=[0, 0, 0], nodes_nodeids=[0, 1, 2],
        nodes_featureids=[0, 0, 0], nodes_values=[threshold, 0.0, 0.0],
        nodes_modes=[mode, "LEAF", "LEAF"], nodes_truenodeids=[1, 0, 0],
        nodes_falsenodeids=[2, 0, 0], nodes_missing_value_tracks_true=[missing, 0, 0],
        target_treeids=[0, 0], target_nodeids=[1, 2], target_ids=[0, 0],
        target_weights=list(leaf_weights))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("missing", [0, 1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_mode(mode, missing, dtype, compiled_calls):
    """Below, at and above the threshold, NaN and the infinities, for each comparison."""
    x = np.array([[-1.0], [0.5], [2.0], [np.nan], [np.inf], [-np.inf], [0.5]], dtype)
    for threshold in (0.5, np.inf):
        got = check_three(ml_model("TreeEnsembleRegressor", _one_split(mode, threshold, missing),
                                   dtype), {"X0": x})
        want = {"BRANCH_LEQ": x <= threshold, "BRANCH_LT": x < threshold,
                "BRANCH_GTE": x >= threshold, "BRANCH_GT": x > threshold,
                "BRANCH_EQ": x == threshold, "BRANCH_NEQ": x != threshold}[mode]
        want = want | (np.isnan(x) & bool(missing))
        np.testing.assert_array_equal(got[0], np.where(want, 1.0, 2.0).astype(np.float32))
    assert compiled_calls


def test_mixed_modes_in_one_forest(compiled_calls):
    """Trees whose nodes use different modes (the loop reads each node's flags)."""
    rng = np.random.default_rng(7)
    attrs, leaves = random_trees(rng, 30, 6, 4, MODES, 0.3)
    attrs.update(_leaf_weights(rng, leaves, 3, "target"), n_targets=3,
                 post_transform="SOFTMAX")
    check_three(ml_model("TreeEnsembleRegressor", attrs, np.float32),
                {"X0": _inputs(rng, 300, 4, np.float32)})
    assert compiled_calls


@pytest.mark.parametrize("aggregate", ["SUM", "AVERAGE", "MIN", "MAX"])
def test_several_weights_for_one_target_in_a_leaf(aggregate, compiled_calls):
    """Added one by one, as onnxruntime does (not summed first)."""
    attrs = _one_split("BRANCH_LEQ", 0.0, 0)
    attrs.update(n_targets=2, target_treeids=[0] * 5, target_nodeids=[1, 1, 1, 2, 2],
                 target_ids=[0, 0, 1, 1, 1], target_weights=[0.1, 1e8, -0.3, 0.7, 0.2],
                 aggregate_function=aggregate, base_values=[1e-3, 2.0])
    x = np.array([[-1.0], [1.0]], np.float32)
    check_three(ml_model("TreeEnsembleRegressor", attrs, np.float32), {"X0": x})
    assert compiled_calls


@pytest.mark.parametrize("op", ["TreeEnsembleRegressor", "TreeEnsembleClassifier"])
def test_empty_batch_and_one_dimensional_input(op, compiled_calls):
    attrs = _one_split("BRANCH_LEQ", 0.0, 0)
    outputs = 1
    if op == "TreeEnsembleClassifier":
        for key in ("target_treeids", "target_nodeids", "target_ids", "target_weights"):
            attrs["class" + key[len("target"):]] = attrs.pop(key)
        del attrs["n_targets"]
        attrs.update(class_ids=[0, 1], classlabels_int64s=[0, 1, 2])
        outputs = 2
    model = ml_model(op, attrs, np.float32, outputs)
    empty = check_three(model, {"X0": np.zeros((0, 1), np.float32)}, oracle=False)
    assert empty[-1].shape[0] == 0
    check_three(model, {"X0": np.array([0.5], np.float32)})
    assert compiled_calls


@pytest.mark.parametrize("targets", [1, 3])
def test_rows_split_over_threads(targets, compiled_calls):
    """Two threads give the same bits as one (each row is summed by one thread, tree by
    tree), and onnxruntime's single-thread result."""
    rng = np.random.default_rng(targets)
    attrs, leaves = random_trees(rng, 60, 7, 6, ["BRANCH_LEQ"], 0.0)
    attrs.update(_leaf_weights(rng, leaves, targets, "target", duplicates=False),
                 n_targets=targets, aggregate_function="AVERAGE")
    model = ml_model("TreeEnsembleRegressor", attrs, np.float32).SerializeToString()
    feeds = {"X0": rng.normal(size=(4000, 6)).astype(np.float32)}
    two = check_three(model, feeds, threads=2)
    one = _ours(model, feeds, COMPILED, threads=1)
    np.testing.assert_array_equal(two[0], one[0])
    assert len(compiled_calls) >= 2


# ------------------------------------------------------------------------------------------
# scikit-learn models
# ------------------------------------------------------------------------------------------

@contextlib.contextmanager
def _bools_as_ints_in_int_attributes():
    """skl2onnx writes HistGradientBoosting's missing-value tracks as Python bools, which
    onnx's ``make_attribute`` refuses in an INTS list; give it ints."""
    original = onnx.helper.make_attribute

    def make_attribute(key, value, *args, **kwargs):
        if isinstance(value, (list, tuple)) and any(isinstance(v, bool) for v in value):
            value = [int(v) for v in value]
        return original(key, value, *args, **kwargs)

    onnx.helper.make_attribute = make_attribute
    try:
        yield
    finally:
        onnx.helper.make_attribute = original


def _sklearn_cases():
    from sklearn import ensemble

    small = dict(n_estimators=12, max_depth=6, random_state=0)
    return {
        "RandomForestClassifier": lambda: ensemble.RandomForestClassifier(**small),
        "ExtraTreesClassifier": lambda: ensemble.ExtraTreesClassifier(**small),
        "GradientBoostingClassifier": lambda: ensemble.GradientBoostingClassifier(
            n_estimators=15, max_depth=3, random_state=0),
        "HistGradientBoostingClassifier": lambda: ensemble.HistGradientBoostingClassifier(
            max_iter=15, max_depth=4, random_state=0),
        "RandomForestRegressor": lambda: ensemble.RandomForestRegressor(**small),
        "ExtraTreesRegressor": lambda: ensemble.ExtraTreesRegressor(**small),
        "GradientBoostingRegressor": lambda: ensemble.GradientBoostingRegressor(
            n_estimators=15, max_depth=3, random_state=0),
        "HistGradientBoostingRegressor": lambda: ensemble.HistGradientBoostingRegressor(
            max_iter=15, max_depth=4, random_state=0),
    }


SKLEARN = ["RandomForestClassifier", "ExtraTreesClassifier", "GradientBoostingClassifier",
           "HistGradientBoostingClassifier", "RandomForestRegressor", "ExtraTreesRegressor",
           "GradientBoostingRegressor", "HistGradientBoostingRegressor"]


@pytest.mark.parametrize("name, classes", [(n, c) for n in SKLEARN for c in (2, 3)
                                            if c == 2 or n.endswith("Classifier")])
def test_sklearn_tree_models(name, classes, compiled_calls):
    pytest.importorskip("sklearn")
    skl2onnx = pytest.importorskip("skl2onnx")
    from sklearn.datasets import make_classification

    regressor = name.endswith("Regressor")
    x, y = make_classification(n_samples=400, n_features=8, n_informative=5,
                               n_classes=classes, random_state=1)
    x = x.astype(np.float32)
    nan_ok = name.startswith(("Hist", "RandomForest", "ExtraTrees"))
    rng = np.random.default_rng(5)
    if nan_ok:  # these learn where missing values go
        x[rng.random(x.shape) < 0.05] = np.nan
    estimator = _sklearn_cases()[name]()
    try:
        estimator.fit(x, y.astype(np.float32) if regressor else y)
    except ValueError as error:  # an older scikit-learn without missing-value support
        pytest.skip(str(error))
    options = None if regressor else {id(estimator): {"zipmap": False}}
    with _bools_as_ints_in_int_attributes():
        model = skl2onnx.to_onnx(estimator, x[:1], options=options,
                                 target_opset={"": 17, "ai.onnx.ml": 3})
    for rows in (1, 7, 200):
        feeds = {"X": x[:rows]}
        check_three(model, feeds)
    assert compiled_calls


# ------------------------------------------------------------------------------------------
# linear models and feature transforms
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(3))
def test_linear_models_random(seed):
    """Scores from the loop's own product (small calls) and from BLAS (above 64k
    multiply-adds), every post transform, the top class, 1-D inputs and int inputs."""
    rng = np.random.default_rng(4000 + seed)
    for _ in range(20):
        features = int(rng.choice([1, 3, 20, 200]))
        rows = int(rng.choice([1, 4, 300]))
        transform = str(rng.choice(TRANSFORMS))
        x = rng.normal(size=(rows, features))
        x[rng.random(x.shape) < 0.02] = np.nan
        x = x.astype(rng.choice([np.float32, np.float64]))
        if rng.random() < 0.1:
            x = x[0]
        if rng.random() < 0.5:
            classes = int(rng.choice([2, 3, 4, 11]))
            attrs = dict(coefficients=[float(v) for v in rng.normal(size=classes * features)],
                         intercepts=[float(v) for v in rng.normal(size=classes)],
                         post_transform=transform)
            if rng.random() < 0.5:
                attrs["classlabels_ints"] = [int(v) for v in rng.choice(20, classes, False)]
            else:
                attrs["classlabels_strings"] = [f"s{i}" for i in range(classes)]
            model = ml_model("LinearClassifier", attrs, x.dtype, 2, opset=1)
        else:
            targets = int(rng.integers(1, 4))
            attrs = dict(coefficients=[float(v) for v in rng.normal(size=targets * features)],
                         targets=targets, post_transform=transform)
            if rng.random() < 0.7:
                attrs["intercepts"] = [float(v) for v in rng.normal(size=targets)]
            model = ml_model("LinearRegressor", attrs, x.dtype, opset=1)
        # sums of up to 200 products: onnxruntime's GEMM adds in another order
        check_three(model, {"X0": x}, rtol=1e-4, atol=1e-4)


def test_linear_classifier_scores_are_the_loops():
    """The compiled product, intercepts and softmax give the numpy kernel's scores (the same
    float32 sums where the features are exact in few bits)."""
    rng = np.random.default_rng(9)
    x = rng.integers(-4, 5, size=(50, 6)).astype(np.float32)
    attrs = dict(coefficients=[float(v) for v in rng.integers(-3, 4, size=18)],
                 intercepts=[0.5, -0.25, 1.0], classlabels_ints=[4, 5, 6],
                 post_transform="SOFTMAX")
    model = ml_model("LinearClassifier", attrs, np.float32, 2, opset=1).SerializeToString()
    compiled = _ours(model, {"X0": x}, COMPILED)
    numpy_outputs = _ours(model, {"X0": x}, NUMPY)
    np.testing.assert_array_equal(compiled[0], numpy_outputs[0])
    np.testing.assert_array_equal(compiled[1], numpy_outputs[1])


@pytest.mark.parametrize("norm", ["MAX", "L1", "L2"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_normalizer(norm, dtype):
    rng = np.random.default_rng(3)
    x = np.round(rng.normal(size=(40, 9)) * 4, 1)
    x[1] = 0  # a row of norm 0 is copied
    x[2, 3] = np.nan
    x[3] = -np.abs(x[3])  # MAX of a negative row
    x = x.astype(dtype) if dtype != np.int64 else np.nan_to_num(x).astype(dtype)
    model = ml_model("Normalizer", {"norm": norm}, dtype, opset=1)
    got = check_three(model, {"X0": x})
    compiled = _ours(model.SerializeToString(), {"X0": x}, COMPILED)
    np.testing.assert_array_equal(compiled[0], _ours(model.SerializeToString(), {"X0": x},
                                                     NUMPY)[0])
    assert got[0].dtype == np.float32
    check_three(model, {"X0": x[4]})  # one row as a 1-D input


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("shape", [(7, 3), (3,), (1, 3)])
def test_scaler(dtype, shape):
    x = (np.arange(np.prod(shape)).reshape(shape) - 4).astype(dtype)
    check_three(ml_model("Scaler", dict(offset=[1.0, 2.0, 3.3], scale=[0.5, 2.0, -1.1]), dtype,
                         opset=1), {"X0": x})
    check_three(ml_model("Scaler", dict(offset=[1.5], scale=[3.1]), dtype, opset=1),
                {"X0": x})


def test_array_feature_extractor_constant_indices():
    """Indices from an initializer are checked once; a narrower input still fails."""
    node = helper.make_node("ArrayFeatureExtractor", ["X", "I"], ["Y"], domain="ai.onnx.ml")
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        [helper.make_tensor("I", TensorProto.INT64, [3], [2, 0, 2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21),
                                                    helper.make_opsetid("ai.onnx.ml", 1)],
                              ir_version=10).SerializeToString()
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    check_three(model, {"X": x})
    check_three(model, {"X": x[0]})
    with pytest.raises(Exception, match="out of range"):
        _ours(model, {"X": x[:, :2]}, COMPILED)


@pytest.mark.parametrize("base", [[], [0.3], [0.1, -0.2]])
@pytest.mark.parametrize("ids", [[1, 1], [0, 0], [0, 1], [1, 0, 1, 0]])
@pytest.mark.parametrize("signs", [1, -1])
@pytest.mark.parametrize("transform", TRANSFORMS)
def test_two_class_rules(base, ids, signs, transform, compiled_calls):
    """onnxruntime's two-class rules (one class id or both, positive or mixed weights, 0-2
    base values) in the compiled finish, against numpy and onnxruntime (but where it leaves
    the second score column unset: PROBIT on one score, and one base value with weights for
    both classes on a row class 1 does not reach)."""
    leaves = [1, 2] if len(ids) == 2 else [1, 1, 2, 2]
    weights = [0.7, -0.4, 0.2, 0.9][:len(ids)]
    attrs = dict(nodes_treeids=[0, 0, 0], nodes_nodeids=[0, 1, 2], nodes_featureids=[0, 0, 0],
                 nodes_values=[0.5, 0, 0], nodes_modes=["BRANCH_LEQ", "LEAF", "LEAF"],
                 nodes_truenodeids=[1, 0, 0], nodes_falsenodeids=[2, 0, 0],
                 classlabels_int64s=[5, 7], class_treeids=[0] * len(ids), class_nodeids=leaves,
                 class_ids=ids, class_weights=[abs(w) if signs > 0 else w for w in weights],
                 post_transform=transform)
    if base:
        attrs["base_values"] = base
    x = np.array([[0.0], [1.0], [0.5], [np.nan]], np.float32)
    model = ml_model("TreeEnsembleClassifier", attrs, np.float32, 2)
    unset = (transform == "PROBIT" and len(base) < 2) or (len(base) == 1 and len(set(ids)) == 2)
    check_three(model, {"X0": x}, oracle=not unset)
    assert compiled_calls


def test_linear_scores_match_onnxruntime_bits():
    """Several rows of up to 128 features: the loop's float32 fused multiply-adds in feature
    order give onnxruntime's GEMM scores bit for bit (the iris tutorial prints them)."""
    rng = np.random.default_rng(11)
    for features in (4, 20, 128):
        attrs = dict(coefficients=[float(v) for v in rng.normal(size=3 * features)],
                     intercepts=[0.1, -0.2, 0.3], classlabels_ints=[0, 1, 2],
                     post_transform="NONE")
        model = ml_model("LinearClassifier", attrs, np.float32, 2, opset=1).SerializeToString()
        feeds = {"X0": rng.normal(size=(7, features)).astype(np.float32)}
        np.testing.assert_array_equal(_ours(model, feeds, COMPILED)[1],
                                      _onnxruntime(model, feeds)[1])
