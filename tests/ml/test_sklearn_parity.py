"""Parity of ``ort`` with onnxruntime on scikit-learn models converted by skl2onnx.

Every case trains one estimator or pipeline on a small deterministic data set, converts it with
``skl2onnx.convert_sklearn`` (default options and, for classifiers, ``zipmap=False`` too), runs
the model on both runtimes with the same inputs (a batch and a single row; onnxruntime on one
thread, whose tree ensembles otherwise add partial sums per thread) and compares:
labels and other integer/string outputs exactly, scores, probabilities, regression outputs and
transformed features to ``rtol=1e-5``, ``atol=1e-5``; ZipMap outputs (``list[dict]``) key by key.
A case whose model skl2onnx cannot convert is skipped with skl2onnx's reason; where skl2onnx
writes a model onnxruntime refuses as invalid (some double-input models), ort must refuse it too.
"""

from __future__ import annotations

import contextlib

import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
import pytest

import ort

onnxruntime = pytest.importorskip("onnxruntime")
pytest.importorskip("sklearn")
pytest.importorskip("skl2onnx")

from skl2onnx import convert_sklearn  # noqa: E402
from skl2onnx.common.data_types import (  # noqa: E402
    DoubleTensorType,
    FloatTensorType,
    Int64TensorType,
    StringTensorType,
)
from sklearn import (  # noqa: E402
    calibration,
    compose,
    decomposition,
    discriminant_analysis,
    ensemble,
    feature_extraction,
    impute,
    linear_model,
    multiclass,
    naive_bayes,
    neighbors,
    neural_network,
    pipeline,
    preprocessing,
    svm,
    tree,
)
from sklearn.datasets import load_iris, make_regression  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

RTOL = 1e-5
ATOL = 1e-5
PROVIDERS = ["CPUExecutionProvider"]

# scikit-learn 1.9 deprecates SVC(probability=True); skl2onnx still reads probA_/probB_.
pytestmark = pytest.mark.filterwarnings("ignore:.*(probability|probA_|probB_).*:FutureWarning")


# ------------------------------------------------------------------------------------------
# data sets
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Data:
    """Training data plus the ONNX inputs (names, types and test feeds) of a data set."""

    x_train: Any
    y_train: Any
    initial_types: list[tuple[str, Any]]
    feeds: dict[str, np.ndarray]


def _noisy(x: np.ndarray, rows: slice, scale: float, seed: int) -> np.ndarray:
    """Rows of ``x`` plus gaussian noise, as float32 (test inputs near the training data)."""
    rng = np.random.default_rng(seed)
    picked = x[rows]
    return (picked + rng.normal(0.0, scale, picked.shape)).astype(np.float32)


def _iris() -> Data:
    x, y = load_iris(return_X_y=True)
    x = x.astype(np.float32)
    return Data(x, y, [("X", FloatTensorType([None, 4]))], {"X": _noisy(x, slice(0, None, 3),
                                                                      0.2, 0)})


def _iris_binary() -> Data:
    """Iris versicolor/virginica (overlapping classes) with their labels 1 and 2."""
    x, y = load_iris(return_X_y=True)
    keep = y > 0
    x = x[keep].astype(np.float32)
    return Data(x, y[keep], [("X", FloatTensorType([None, 4]))],
                {"X": _noisy(x, slice(0, None, 2), 0.2, 1)})


def _iris_strings() -> Data:
    """Iris with string class labels."""
    data = _iris()
    names = np.array(["setosa", "versicolor", "virginica"], dtype=object)
    return Data(data.x_train, names[data.y_train], data.initial_types, data.feeds)


def _regression(targets: int = 1) -> Data:
    x, y = make_regression(n_samples=120, n_features=5, n_informative=4, n_targets=targets,
                           noise=5.0, random_state=0)
    x = x.astype(np.float32)
    return Data(x, y, [("X", FloatTensorType([None, 5]))],
                {"X": _noisy(x, slice(0, None, 3), 0.3, 2)})


def _as_double(data: Data) -> Data:
    """The same data set with a double input (skl2onnx then writes *_as_tensor attributes)."""
    (name, kind), = data.initial_types
    return Data(data.x_train.astype(np.float64), data.y_train,
                [(name, DoubleTensorType(kind.shape))],
                {k: v.astype(np.float64) for k, v in data.feeds.items()})


def _positive() -> Data:
    """Count-like non-negative features for the discrete naive Bayes models."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 90)
    x = rng.poisson(1.0 + 2.0 * np.eye(3)[y] @ np.ones((3, 6)) * (np.arange(6) % 3 == 0)
                    + y[:, None], (90, 6)).astype(np.float32)
    return Data(x, y, [("X", FloatTensorType([None, 6]))], {"X": x[::3].copy()})


def _missing() -> Data:
    """Regression data with NaNs in the features."""
    data = _regression()
    rng = np.random.default_rng(4)
    x = data.x_train.copy()
    x[rng.random(x.shape) < 0.15] = np.nan
    test = data.feeds["X"].copy()
    test[rng.random(test.shape) < 0.2] = np.nan
    return Data(x, data.y_train, data.initial_types, {"X": test})


_COLORS = ["red", "green", "blue", "black"]
_SIZES = ["S", "M", "L"]
_SHAPES = ["round", "square"]


def _category_table(rows: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    columns = [np.array(c, dtype=object)[rng.integers(0, len(c), rows)]
               for c in (_COLORS, _SIZES, _SHAPES)]
    return np.stack(columns, axis=1)


def _strings() -> Data:
    """Three string categorical columns."""
    x = _category_table(60, 5)
    return Data(x, None, [("X", StringTensorType([None, 3]))], {"X": _category_table(25, 6)})


def _strings_unknown() -> Data:
    """As :func:`_strings`, where the test rows contain unseen categories."""
    data = _strings()
    test = data.feeds["X"].copy()
    test[::4, 0] = "purple"
    test[1::5, 2] = "triangle"
    return Data(data.x_train, None, data.initial_types, {"X": test})


def _integers() -> Data:
    """Three int64 categorical columns."""
    rng = np.random.default_rng(7)
    x = np.stack([rng.integers(0, 4, 60), rng.integers(10, 13, 60), rng.integers(-2, 1, 60)],
                 axis=1).astype(np.int64)
    return Data(x, None, [("X", Int64TensorType([None, 3]))], {"X": x[::2].copy()})


def _labels_strings() -> Data:
    y = np.array(["cat", "dog", "bird", "dog", "fish", "cat", "bird", "cat"], dtype=object)
    return Data(y, None, [("X", StringTensorType([None]))], {"X": y[::-1].copy()})


def _labels_integers() -> Data:
    y = np.array([7, 3, 3, 11, -4, 7, 0, 11], dtype=np.int64)
    return Data(y, None, [("X", Int64TensorType([None]))], {"X": y[::-1].copy()})


_SENTENCES = [
    ("the cat sat on the mat", 0), ("a dog barked at the cat", 0),
    ("my cat likes warm milk", 0), ("the dog chased a ball", 0),
    ("cats and dogs are pets", 0), ("the puppy slept all day", 0),
    ("a kitten played with yarn", 0), ("our dog guards the house", 0),
    ("the bird sang in the tree", 0), ("pets need food and care", 0),
    ("stocks fell sharply today", 1), ("the market rallied on news", 1),
    ("investors bought more shares", 1), ("the bank raised interest rates", 1),
    ("bond yields rose again", 1), ("the company reported profits", 1),
    ("shares of the bank dropped", 1), ("oil prices hit a record", 1),
    ("the fund lost money this year", 1), ("traders sold their stocks", 1),
    ("the team won the final game", 2), ("a striker scored two goals", 2),
    ("the coach praised his players", 2), ("fans cheered at the stadium", 2),
    ("the match ended in a draw", 2), ("she ran the fastest race", 2),
    ("the goalkeeper saved a penalty", 2), ("our team lost the cup", 2),
    ("the player broke a record", 2), ("a late goal won the game", 2),
]


def _text() -> Data:
    texts = np.array([s for s, _ in _SENTENCES], dtype=object)
    labels = np.array([c for _, c in _SENTENCES])
    test = np.array(["the cat chased the dog", "the bank sold shares", "the team scored a goal",
                     "A Cat, a DOG and the Market!", "nothing known here", ""],
                    dtype=object)
    return Data(texts, labels, [("X", StringTensorType([None, 1]))],
                {"X": np.concatenate([texts[::4], test]).reshape(-1, 1)})


def _mixed() -> Data:
    """Three numeric and two string columns in one object array; ONNX gets two inputs."""
    rng = np.random.default_rng(8)
    rows = 90
    numeric = rng.normal(0.0, 1.0, (rows, 3)) * [1.0, 10.0, 0.1] + [0.0, 50.0, 1.0]
    strings = _category_table(rows, 9)[:, :2]
    y = ((numeric[:, 0] > 0).astype(int) + (strings[:, 0] == "red")
         + (strings[:, 1] == "L")).clip(0, 2)
    x = np.concatenate([numeric.astype(object), strings], axis=1)
    test_numeric = (numeric[::3] + rng.normal(0.0, 0.2, (rows // 3, 3))).astype(np.float32)
    return Data(x, y, [("num", FloatTensorType([None, 3])), ("cat", StringTensorType([None, 2]))],
                {"num": test_numeric, "cat": strings[::3].copy()})


DATASETS: dict[str, Callable[[], Data]] = {
    "iris": _iris, "iris_binary": _iris_binary, "iris_strings": _iris_strings,
    "regression": _regression, "regression2": functools.partial(_regression, 2),
    "positive": _positive, "missing": _missing, "strings": _strings,
    "strings_unknown": _strings_unknown, "integers": _integers,
    "labels_strings": _labels_strings, "labels_integers": _labels_integers,
    "text": _text, "mixed": _mixed,
    "iris_double": lambda: _as_double(_iris()),
    "iris_binary_double": lambda: _as_double(_iris_binary()),
    "regression_double": lambda: _as_double(_regression()),
}


@functools.cache
def dataset(name: str) -> Data:
    return DATASETS[name]()


# ------------------------------------------------------------------------------------------
# cases
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """An estimator factory, the data set it trains on and how its outputs compare."""

    make: Callable[[], Any]
    data: str
    classifier: bool = False
    rtol: float = RTOL
    atol: float = ATOL
    fit_y: bool = True
    zipmap_option: bool = True  # whether skl2onnx's converter has the 'zipmap' option
    target_opset: dict[str, int] | None = None
    options: dict[type, dict[str, Any]] = field(default_factory=dict)  # always applied


CASES: dict[str, Case] = {}


def case(name: str, make: Callable[[], Any], data: str, **kw: Any) -> None:
    assert name not in CASES, name
    CASES[name] = Case(make, data, **kw)


def clf(name: str, make: Callable[[], Any], data: str = "iris", **kw: Any) -> None:
    case(name, make, data, classifier=True, **kw)


def _pipe(*steps: Any) -> pipeline.Pipeline:
    return pipeline.make_pipeline(*steps)


# onnxruntime's StringNormalizer wants the en_US.UTF-8 locale by default, which machines
# without language packs lack; the sentences are ASCII, so the "C" locale lowercases the same.
_TEXT = {feature_extraction.text.CountVectorizer: {"locale": "C"},
         feature_extraction.text.TfidfVectorizer: {"locale": "C"}}


# linear models
case("LinearRegression", linear_model.LinearRegression, "regression")
case("LinearRegression_2targets", linear_model.LinearRegression, "regression2")
case("Ridge", linear_model.Ridge, "regression")
case("Lasso", lambda: linear_model.Lasso(alpha=0.5), "regression")
case("ElasticNet", lambda: linear_model.ElasticNet(alpha=0.2), "regression")
case("SGDRegressor", lambda: linear_model.SGDRegressor(random_state=0), "regression")
clf("LogisticRegression_binary", lambda: linear_model.LogisticRegression(max_iter=500),
    "iris_binary")
clf("LogisticRegression_multinomial", lambda: linear_model.LogisticRegression(max_iter=500))
clf("LogisticRegression_strings", lambda: linear_model.LogisticRegression(max_iter=500),
    "iris_strings")
clf("OneVsRestClassifier_LogisticRegression", lambda: multiclass.OneVsRestClassifier(
    linear_model.LogisticRegression(solver="liblinear")))
clf("SGDClassifier", lambda: linear_model.SGDClassifier(random_state=0))
clf("SGDClassifier_log_loss",
    lambda: linear_model.SGDClassifier(loss="log_loss", random_state=0))
clf("SGDClassifier_binary", lambda: linear_model.SGDClassifier(random_state=0), "iris_binary")
clf("Perceptron", lambda: linear_model.Perceptron(random_state=0))
clf("RidgeClassifier", linear_model.RidgeClassifier)
clf("RidgeClassifier_binary", linear_model.RidgeClassifier, "iris_binary")
clf("LinearSVC", lambda: svm.LinearSVC(random_state=0), zipmap_option=False)
clf("LinearSVC_binary", lambda: svm.LinearSVC(random_state=0), "iris_binary",
    zipmap_option=False)
case("LinearSVR", lambda: svm.LinearSVR(random_state=0, max_iter=5000), "regression")

# kernel SVMs
for _kernel in ("linear", "rbf", "poly", "sigmoid"):
    clf(f"SVC_{_kernel}", functools.partial(svm.SVC, kernel=_kernel, random_state=0))
    clf(f"SVC_{_kernel}_proba",
        functools.partial(svm.SVC, kernel=_kernel, probability=True, random_state=0))
clf("SVC_rbf_binary", lambda: svm.SVC(), "iris_binary")
clf("SVC_rbf_binary_proba", lambda: svm.SVC(probability=True, random_state=0), "iris_binary")
clf("SVC_rbf_strings", lambda: svm.SVC(), "iris_strings")
clf("NuSVC", lambda: svm.NuSVC(nu=0.3))
clf("NuSVC_proba", lambda: svm.NuSVC(nu=0.3, probability=True, random_state=0))
# Kernel SVR sums ~100 kernel values times dual coefficients up to C, terms of ~100 that
# cancel: onnxruntime's float32 GEMM is off the float64 result by up to ~1e-4 on outputs near
# 0 (ort sums in float64 and is 2-5x closer to scikit-learn's float64 predictions), so these
# compare with atol=1e-4.
_SVR_ATOL = 1e-4
case("SVR", lambda: svm.SVR(C=100.0), "regression", atol=_SVR_ATOL)
case("SVR_poly", lambda: svm.SVR(kernel="poly", degree=2, C=10.0), "regression")
case("SVR_linear", lambda: svm.SVR(kernel="linear"), "regression")
case("NuSVR", lambda: svm.NuSVR(C=100.0), "regression", atol=_SVR_ATOL)

# trees and ensembles
_SMALL = {"n_estimators": 10, "max_depth": 4, "random_state": 0}
clf("DecisionTreeClassifier", lambda: tree.DecisionTreeClassifier(random_state=0))
clf("DecisionTreeClassifier_binary", lambda: tree.DecisionTreeClassifier(max_depth=3),
    "iris_binary")
clf("DecisionTreeClassifier_strings", lambda: tree.DecisionTreeClassifier(max_depth=3),
    "iris_strings")
case("DecisionTreeRegressor", lambda: tree.DecisionTreeRegressor(max_depth=6, random_state=0),
     "regression")
case("DecisionTreeRegressor_missing",
     lambda: tree.DecisionTreeRegressor(max_depth=6, random_state=0), "missing")
case("RandomForestRegressor_missing", lambda: ensemble.RandomForestRegressor(**_SMALL),
     "missing")
clf("RandomForestClassifier", lambda: ensemble.RandomForestClassifier(**_SMALL))
clf("RandomForestClassifier_100", lambda: ensemble.RandomForestClassifier(random_state=0))
clf("RandomForestClassifier_binary", lambda: ensemble.RandomForestClassifier(**_SMALL),
    "iris_binary")
case("RandomForestRegressor", lambda: ensemble.RandomForestRegressor(**_SMALL), "regression")
case("RandomForestRegressor_2targets", lambda: ensemble.RandomForestRegressor(**_SMALL),
     "regression2")
clf("ExtraTreesClassifier", lambda: ensemble.ExtraTreesClassifier(**_SMALL))
case("ExtraTreesRegressor", lambda: ensemble.ExtraTreesRegressor(**_SMALL), "regression")
clf("GradientBoostingClassifier_binary",
    lambda: ensemble.GradientBoostingClassifier(**_SMALL), "iris_binary")
clf("GradientBoostingClassifier_multiclass",
    lambda: ensemble.GradientBoostingClassifier(**_SMALL))
case("GradientBoostingRegressor", lambda: ensemble.GradientBoostingRegressor(**_SMALL),
     "regression")
clf("HistGradientBoostingClassifier_binary",
    lambda: ensemble.HistGradientBoostingClassifier(max_iter=10, max_depth=4), "iris_binary")
clf("HistGradientBoostingClassifier_multiclass",
    lambda: ensemble.HistGradientBoostingClassifier(max_iter=10, max_depth=4))
case("HistGradientBoostingRegressor",
     lambda: ensemble.HistGradientBoostingRegressor(max_iter=10, max_depth=4), "regression")

# double inputs
case("LinearRegression_double", linear_model.LinearRegression, "regression_double")
clf("LogisticRegression_double", lambda: linear_model.LogisticRegression(max_iter=500),
    "iris_double")
case("DecisionTreeRegressor_double", lambda: tree.DecisionTreeRegressor(max_depth=6),
     "regression_double")
clf("RandomForestClassifier_double", lambda: ensemble.RandomForestClassifier(**_SMALL),
    "iris_double")
clf("GradientBoostingClassifier_binary_double",
    lambda: ensemble.GradientBoostingClassifier(**_SMALL), "iris_binary_double")
case("GradientBoostingRegressor_double", lambda: ensemble.GradientBoostingRegressor(**_SMALL),
     "regression_double")
case("StandardScaler_double", preprocessing.StandardScaler, "regression_double", fit_y=False)

# neighbours, naive Bayes, neural networks
clf("KNeighborsClassifier", neighbors.KNeighborsClassifier)
case("KNeighborsRegressor", neighbors.KNeighborsRegressor, "regression")
clf("GaussianNB", naive_bayes.GaussianNB)
clf("GaussianNB_binary", naive_bayes.GaussianNB, "iris_binary")
clf("MultinomialNB", naive_bayes.MultinomialNB, "positive")
clf("BernoulliNB", lambda: naive_bayes.BernoulliNB(binarize=2.0), "positive")
clf("MLPClassifier", lambda: neural_network.MLPClassifier(hidden_layer_sizes=(16,), max_iter=300,
                                                         random_state=0))
clf("MLPClassifier_binary", lambda: neural_network.MLPClassifier(
    hidden_layer_sizes=(16,), max_iter=300, random_state=0), "iris_binary")
case("MLPRegressor",
     lambda: neural_network.MLPRegressor(hidden_layer_sizes=(16,), max_iter=300,
                                         random_state=0), "regression")

# ensembles of other models, outlier detectors
clf("AdaBoostClassifier", lambda: ensemble.AdaBoostClassifier(n_estimators=10, random_state=0))
case("AdaBoostRegressor", lambda: ensemble.AdaBoostRegressor(n_estimators=10, random_state=0),
     "regression")
clf("BaggingClassifier", lambda: ensemble.BaggingClassifier(n_estimators=5, random_state=0))
clf("VotingClassifier_soft", lambda: ensemble.VotingClassifier(
    [("lr", linear_model.LogisticRegression(max_iter=500)),
     ("dt", tree.DecisionTreeClassifier(max_depth=3))], voting="soft", flatten_transform=False))
clf("CalibratedClassifierCV_LinearSVC",
    lambda: calibration.CalibratedClassifierCV(svm.LinearSVC(random_state=0), cv=3))
case("IsolationForest", lambda: ensemble.IsolationForest(n_estimators=10, random_state=0),
     "regression", fit_y=False, target_opset={"": 21, "ai.onnx.ml": 3})
case("OneClassSVM", lambda: svm.OneClassSVM(nu=0.2), "regression", fit_y=False)
clf("LinearDiscriminantAnalysis", discriminant_analysis.LinearDiscriminantAnalysis)

# transformers
case("Binarizer", lambda: preprocessing.Binarizer(threshold=0.3), "regression", fit_y=False)
case("KBinsDiscretizer", lambda: preprocessing.KBinsDiscretizer(n_bins=4, encode="onehot-dense"),
     "regression", fit_y=False)
case("PolynomialFeatures", lambda: preprocessing.PolynomialFeatures(2), "regression",
     fit_y=False)
case("StandardScaler", preprocessing.StandardScaler, "regression", fit_y=False)
case("MinMaxScaler", preprocessing.MinMaxScaler, "regression", fit_y=False)
case("RobustScaler", preprocessing.RobustScaler, "regression", fit_y=False)
case("MaxAbsScaler", preprocessing.MaxAbsScaler, "regression", fit_y=False)
for _norm in ("l1", "l2", "max"):
    case(f"Normalizer_{_norm}", functools.partial(preprocessing.Normalizer, norm=_norm),
         "regression", fit_y=False)
for _strategy in ("mean", "median", "most_frequent", "constant"):
    case(f"SimpleImputer_{_strategy}",
         functools.partial(impute.SimpleImputer, strategy=_strategy, fill_value=-1.5),
         "missing", fit_y=False)
case("OneHotEncoder_strings", preprocessing.OneHotEncoder, "strings", fit_y=False)
case("OneHotEncoder_unknown", lambda: preprocessing.OneHotEncoder(handle_unknown="ignore"),
     "strings_unknown", fit_y=False)
case("OneHotEncoder_integers", preprocessing.OneHotEncoder, "integers", fit_y=False)
case("OrdinalEncoder_strings", preprocessing.OrdinalEncoder, "strings", fit_y=False)
case("OrdinalEncoder_integers", preprocessing.OrdinalEncoder, "integers", fit_y=False)
case("LabelEncoder_strings", preprocessing.LabelEncoder, "labels_strings", fit_y=False)
case("LabelEncoder_integers", preprocessing.LabelEncoder, "labels_integers", fit_y=False)
case("PCA", lambda: decomposition.PCA(n_components=3), "regression", fit_y=False)
case("PCA_whiten", lambda: decomposition.PCA(n_components=3, whiten=True), "regression",
     fit_y=False)
case("TruncatedSVD", lambda: decomposition.TruncatedSVD(n_components=3, random_state=0),
     "regression", fit_y=False)

# pipelines
clf("Pipeline_StandardScaler_LogisticRegression",
    lambda: _pipe(preprocessing.StandardScaler(), linear_model.LogisticRegression()))
case("Pipeline_MinMaxScaler_PCA_SVR",
     lambda: _pipe(preprocessing.MinMaxScaler(), decomposition.PCA(3), svm.SVR(C=50.0)),
     "regression", atol=_SVR_ATOL)
clf("ColumnTransformer_mixed", lambda: _pipe(
    compose.ColumnTransformer([("num", preprocessing.StandardScaler(), [0, 1, 2]),
                               ("cat", preprocessing.OneHotEncoder(handle_unknown="ignore"),
                                [3, 4])]),
    linear_model.LogisticRegression(max_iter=500)), "mixed")
clf("CountVectorizer_MultinomialNB",
    lambda: _pipe(feature_extraction.text.CountVectorizer(), naive_bayes.MultinomialNB()),
    "text", options=_TEXT)
clf("TfidfVectorizer_LogisticRegression", lambda: _pipe(
    feature_extraction.text.TfidfVectorizer(), linear_model.LogisticRegression(max_iter=500)),
    "text", options=_TEXT)
case("TfidfVectorizer_bigrams",
     lambda: feature_extraction.text.TfidfVectorizer(ngram_range=(1, 2)), "text", fit_y=False,
     options=_TEXT)


@functools.cache
def fitted(name: str) -> Any:
    """The estimator of case ``name``, trained (once per test session)."""
    spec = CASES[name]
    data = dataset(spec.data)
    model = spec.make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if spec.fit_y and data.y_train is not None:
            model.fit(data.x_train, data.y_train)
        else:
            model.fit(data.x_train)
    return model


def _final_estimator(model: Any) -> Any:
    return model.steps[-1][1] if isinstance(model, pipeline.Pipeline) else model


def _params() -> list[Any]:
    params = []
    for name, spec in CASES.items():
        params.append(pytest.param(name, None, id=name))
        if spec.classifier and spec.zipmap_option:
            params.append(pytest.param(name, {"zipmap": False}, id=f"{name}-nozipmap"))
    return params


# ------------------------------------------------------------------------------------------
# comparison
# ------------------------------------------------------------------------------------------


def assert_same_output(name: str, got: Any, want: Any, rtol: float, atol: float) -> None:
    """Compare one output: arrays (dtype, shape, values) or ZipMap's list of dicts."""
    if isinstance(want, list):
        assert isinstance(got, list), f"{name}: expected a list of maps, got {type(got)}"
        assert len(got) == len(want), f"{name}: {len(got)} maps, expected {len(want)}"
        for row, (g, w) in enumerate(zip(got, want)):
            assert isinstance(g, dict), f"{name}[{row}]: expected a dict, got {type(g)}"
            assert list(g) == list(w), f"{name}[{row}]: keys {list(g)} != {list(w)}"
            assert [type(k) for k in g] == [type(k) for k in w], f"{name}[{row}]: key types"
            np.testing.assert_allclose(np.array(list(g.values()), dtype=np.float64),
                                       np.array(list(w.values()), dtype=np.float64),
                                       rtol=rtol, atol=atol, err_msg=f"{name}[{row}]")
        return
    want = np.asarray(want)
    assert isinstance(got, np.ndarray), f"{name}: expected an ndarray, got {type(got)}"
    assert got.dtype == want.dtype, f"{name}: dtype {got.dtype} != {want.dtype}"
    assert got.shape == want.shape, f"{name}: shape {got.shape} != {want.shape}"
    if want.dtype == object or want.dtype.kind in "iub":
        np.testing.assert_array_equal(got, want, err_msg=name)
    else:
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=name)


# ------------------------------------------------------------------------------------------
# the test
# ------------------------------------------------------------------------------------------


def _convert(name: str, options: dict[str, Any] | None) -> bytes:
    model = fitted(name)
    spec = CASES[name]
    data = dataset(spec.data)
    opts = dict(spec.options)
    if options is not None:
        opts[type(_final_estimator(model))] = options
    try:
        with _bools_as_ints_in_int_attributes():
            onx = convert_sklearn(model, initial_types=data.initial_types,
                                  options=opts or None, target_opset=spec.target_opset)
    except Exception as exc:  # skl2onnx's own limits, not ort's
        pytest.skip(f"skl2onnx cannot convert {name}: {type(exc).__name__}: {exc}")
    return onx.SerializeToString()


@contextlib.contextmanager
def _bools_as_ints_in_int_attributes():
    """skl2onnx 1.20 writes HistGradientBoosting's missing-value tracks as a list mixing
    Python bools and numpy ints, which onnx >= 1.19's ``make_attribute`` refuses ("Expected an
    int, got a boolean"); give it ints, which is what the converter means."""
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


# onnxruntime's words for a model that fails type or shape checks
_INVALID_MODEL = ("Type Error", "ShapeInferenceError", "This is an invalid model")


def _ort_session(model: bytes) -> ort.InferenceSession:
    return ort.InferenceSession(model, providers=PROVIDERS)


@pytest.mark.parametrize("name, options", _params())
def test_sklearn_parity(name: str, options: dict[str, Any] | None) -> None:
    spec = CASES[name]
    model = _convert(name, options)
    session_options = onnxruntime.SessionOptions()
    session_options.intra_op_num_threads = 1  # tree ensembles add per-thread sums otherwise
    try:
        expected_session = onnxruntime.InferenceSession(model, session_options,
                                                        providers=PROVIDERS)
    except onnxruntime.capi.onnxruntime_pybind11_state.NotImplemented as exc:
        pytest.skip(f"onnxruntime has no kernel for this model: {exc}")
    except Exception as exc:
        if not any(m in str(exc) for m in _INVALID_MODEL):
            raise
        # skl2onnx wrote an invalid model: ort must refuse it too
        with pytest.raises(ort.errors.OrtError) as refused:
            ort.InferenceSession(model, providers=PROVIDERS)
        assert not isinstance(refused.value, ort.errors.NotImplemented), refused.value
        return
    session = _ort_session(model)
    names = [o.name for o in expected_session.get_outputs()]
    assert [o.name for o in session.get_outputs()] == names
    feeds = dataset(spec.data).feeds
    for rows in (slice(None), slice(0, 1)):
        batch = {k: v[rows] for k, v in feeds.items()}
        want = expected_session.run(None, batch)
        got = session.run(None, batch)
        assert len(got) == len(want)
        for out_name, g, w in zip(names, got, want):
            assert_same_output(f"{name}:{out_name}", g, w, spec.rtol, spec.atol)


def test_case_count() -> None:
    """The brief asks for at least 30 estimators and pipelines."""
    assert len(CASES) >= 30


_LEVEL_CASES = ["LogisticRegression_multinomial", "RandomForestClassifier", "MLPClassifier",
                "KNeighborsClassifier", "Pipeline_StandardScaler_LogisticRegression",
                "ColumnTransformer_mixed", "TfidfVectorizer_LogisticRegression", "PCA"]


@pytest.mark.parametrize("name", _LEVEL_CASES)
def test_every_optimization_level_gives_level_0_outputs(name: str) -> None:
    """Graph optimization never changes a scikit-learn model's outputs, and never grows it."""
    model = _convert(name, None)
    feeds = dataset(CASES[name].data).feeds
    results, sizes = [], []
    for level in ort.GraphOptimizationLevel:
        options = ort.SessionOptions()
        options.graph_optimization_level = level
        session = ort.InferenceSession(model, options, providers=PROVIDERS)
        results.append(session.run(None, feeds))
        sizes.append(len(session._optimized_model.graph.node))
    assert sizes == sorted(sizes, reverse=True), sizes
    for outputs in results[1:]:
        for got, want in zip(outputs, results[0]):
            if isinstance(want, list):
                assert got == want or np.allclose(
                    [list(d.values()) for d in got], [list(d.values()) for d in want], rtol=1e-6)
            elif want.dtype == object or want.dtype.kind in "iub":
                np.testing.assert_array_equal(got, want)
            else:
                np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
