"""String kernels: StringNormalizer, StringSplit, StringConcat, RegexFullMatch, TfIdfVectorizer.

onnxruntime is the oracle where its behaviour is usable here (its StringNormalizer needs a C++
locale this machine lacks, its StringSplit splits on spaces only): elsewhere the expected
values are spelled out or come from onnx's ReferenceEvaluator.
"""

import numpy as np
import pytest
from onnx import TensorProto, helper

from ort.testing import assert_outputs_match, make_model, node_model, run_onnxruntime, run_ort
from ort.testing import run_reference


def strings(*values, shape=None):
    out = np.array(values, dtype=object)
    return out.reshape(shape) if shape is not None else out


def run(op, attrs, *inputs, n_outputs=1, oracle=None):
    """Run ours on a one-node opset-21 model (the inputs' shapes left open); with ``oracle``
    ('ort' or 'ref') also run it and compare."""
    model, feeds = node_model(op, inputs, attrs, outputs=n_outputs, opset=21, ir_version=10,
                              input_shapes=False)
    got = run_ort(model, feeds)
    if oracle is not None:
        want = (run_onnxruntime if oracle == "ort" else run_reference)(model, feeds)
        assert_outputs_match(got, want, rtol=1e-6, atol=0)
    return got


# --------------------------------------------------------------------------------------------
# StringNormalizer
# --------------------------------------------------------------------------------------------

MONDAY = strings("monday", "tuesday", "MONDAY", "Wednesday", "monday")


@pytest.mark.parametrize("attrs, x, expected", [
    ({}, MONDAY, MONDAY.tolist()),
    (dict(stopwords=["monday"], is_case_sensitive=1), MONDAY,
     ["tuesday", "MONDAY", "Wednesday"]),
    (dict(stopwords=["monday"]), MONDAY, ["tuesday", "Wednesday"]),
    (dict(stopwords=["MONDAY"], case_change_action="LOWER"), MONDAY, ["tuesday", "wednesday"]),
    (dict(stopwords=["monday"], case_change_action="UPPER", is_case_sensitive=1), MONDAY,
     ["TUESDAY", "MONDAY", "WEDNESDAY"]),
    (dict(stopwords=["monday", "tuesday", "wednesday"]), MONDAY, [""]),
    (dict(case_change_action="UPPER"), strings("straße", "ǆ", "é"), ["STRAßE", "Ǆ", "É"]),
    (dict(case_change_action="LOWER"), strings("ÀB", "ΣΑΣ"), ["àb", "σασ"]),
])
def test_string_normalizer(attrs, x, expected):
    assert run("StringNormalizer", attrs, x)[0].tolist() == expected
    got = run("StringNormalizer", attrs, x.reshape(1, -1))[0]
    assert got.tolist() == [expected] and got.dtype == object


def test_string_normalizer_matches_onnxruntime_case_sensitive():
    attrs = dict(stopwords=["a", "b c"], is_case_sensitive=1)
    run("StringNormalizer", attrs, strings("a", "A", "b c", "b", "", shape=(1, 5)),
        oracle="ort")


def test_string_normalizer_errors():
    with pytest.raises(Exception, match="case_change_action"):
        run("StringNormalizer", dict(case_change_action="TITLE"), MONDAY)
    with pytest.raises(Exception, match=r"\[C\] or \[1, C\]"):
        run("StringNormalizer", {}, strings("a", "b", "c", "d", shape=(2, 2)))


# --------------------------------------------------------------------------------------------
# StringSplit, StringConcat
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("attrs, x", [
    (dict(delimiter="."), strings("abc.com", "def.net", "x")),
    (dict(delimiter="-", maxsplit=1), strings("a-b-c", "-", "abc", shape=(3, 1))),
    (dict(delimiter="--"), strings("a--b----c", "--", "")),
    (dict(), strings("  hello world ", "one\ttwo\nthree", "", "   ")),
    (dict(maxsplit=1), strings(" a b  c ", "x")),
    (dict(delimiter=""), strings("a b", "c")),
    (dict(delimiter=" "), strings(" a  b ")),
    (dict(), strings()),
    (dict(delimiter=","), strings(shape=(0, 3))),
    (dict(delimiter=","), strings("a,b", "c", "d,e,f", "", shape=(2, 1, 2))),
])
def test_string_split(attrs, x):
    run("StringSplit", attrs, x, n_outputs=2, oracle="ref")


def test_string_split_matches_onnxruntime_on_spaces():
    run("StringSplit", {}, strings(" a  b ", "c", "d e f"), n_outputs=2, oracle="ort")
    run("StringSplit", dict(delimiter=";", maxsplit=2), strings("a;b;c;d", "x;", ";"),
        n_outputs=2, oracle="ort")


@pytest.mark.parametrize("x, y", [
    (strings("a", "bc"), strings("x", "yz")),
    (strings("a", "b", shape=(2, 1)), strings("x", "y", "z")),
    (strings("abc"), strings("")),
    (np.array("a", dtype=object), np.array("b", dtype=object)),
    (strings("π", "日本"), strings("語", "😀")),
    (strings(shape=(0, 2)), strings("a", "b")),
])
def test_string_concat(x, y):
    got = run("StringConcat", {}, x, y, oracle="ort")[0]
    assert got.dtype == object


# --------------------------------------------------------------------------------------------
# RegexFullMatch: onnxruntime uses RE2 itself, so it checks the RE2 -> Python translation
# --------------------------------------------------------------------------------------------

SAMPLES = strings("abc", "ABC", "a1", "١٢", "a b", "é", "_x", "a\n", "a.*b", "A", "ab12", "aB",
                  "xéy", "tab\t", "", "{", "a{,2}", "aa", "Ω", "ω1", "www.google.com",
                  "www.x-y.com")


@pytest.mark.parametrize("pattern", [
    r"\d+", r"\w+", r"\s*", r"\W+", r"\D+", r"[\w]+", r"[^\d]+", r"[\D]+", r"[\W\d]+",
    r"[[:alpha:]]+", r"[[:^alpha:]]+", r"[[:word:]]+", r"(?i)[[:upper:]]+",
    r"a$", r"a$\n", r"(?m)^a$\n?", r"a\z", r"\Aab\z",
    r"(?i)abc", r"a(?i)b|c", r"(?i:A)b", r"(?i)ω1", r"(?U)a+", r"(?s).+", r".+",
    r"\Qa.*b\E", r"\x{41}", r"\101", r".*\bb.*", r"\Bb.*",
    r"\pL+", r"\p{Lu}", r"\PL+", r"[\pL\d]+", r"[^\pN]+", r"\p{^L}+",
    r"a{,2}", r"a{2}", r"a{1,}", r"a*?", r"{", r"[]a]+", r"[^]a]+", r"(?P<n>a)b", r"(?<n>a)b",
    r"www\.[\w.-]+\.\bcom\b",
])
def test_regex_full_match(pattern):
    run("RegexFullMatch", {"pattern": pattern}, SAMPLES, oracle="ort")


@pytest.mark.parametrize("pattern", [r"(?=a)a", r"(a)\1", r"a{2}+", r"a**", r"a++", r"(",
                                     r"\p{Greek}", r"x\Cy", r"\e"])
def test_regex_full_match_rejects(pattern):
    with pytest.raises(Exception, match="RE2 pattern"):
        run("RegexFullMatch", {"pattern": pattern}, SAMPLES)


def test_regex_full_match_shapes():
    got = run("RegexFullMatch", {"pattern": "a.c"}, strings("abc", "a", "axc", "ac",
                                                            shape=(2, 2)))[0]
    assert got.dtype == np.bool_ and got.tolist() == [[True, False], [True, False]]
    assert run("RegexFullMatch", {"pattern": "a"}, strings(shape=(0,)))[0].shape == (0,)


# --------------------------------------------------------------------------------------------
# TfIdfVectorizer
# --------------------------------------------------------------------------------------------


def random_pool(rng, vocab, max_len):
    """Distinct random n-grams of sizes 1..max_len, as (pool, ngram_counts, count)."""
    pool, counts, total = [], [], 0
    for size in range(1, max_len + 1):
        counts.append(len(pool))
        grams = {tuple(rng.choice(vocab, size)) for _ in range(int(rng.integers(0, 5)))}
        for gram in sorted(grams):
            pool.extend(gram)
        total += len(grams)
    return pool, counts, total


@pytest.mark.parametrize("seed", range(6))
def test_tfidf_random(seed):
    rng = np.random.default_rng(seed)
    tested = 0
    while tested < 15:
        max_len = int(rng.integers(1, 4))
        use_strings = rng.random() < 0.4
        vocab = np.arange(5) if not use_strings else np.array(list("abcde"))
        pool, counts, total = random_pool(rng, vocab, max_len)
        if total == 0:
            continue
        tested += 1
        indexes = [int(v) for v in rng.permutation(total + int(rng.integers(0, 3)))[:total]]
        attrs = dict(mode=str(rng.choice(["TF", "IDF", "TFIDF"])),
                     min_gram_length=int(rng.integers(1, max_len + 1)),
                     max_gram_length=max_len, max_skip_count=int(rng.integers(0, 3)),
                     ngram_counts=counts, ngram_indexes=indexes)
        attrs["min_gram_length"] = min(attrs["min_gram_length"], attrs["max_gram_length"])
        if use_strings:
            attrs["pool_strings"] = [str(v) for v in pool]
        else:
            attrs["pool_int64s"] = [int(v) for v in pool]
        if rng.random() < 0.5:
            attrs["weights"] = [float(v) for v in np.round(rng.uniform(0.5, 2, total), 2)]
        shape = (int(rng.integers(1, 4)), int(rng.integers(1, 12)))
        x = rng.choice(np.append(vocab, "z" if use_strings else 9), shape)  # one unknown
        if use_strings:
            x = x.astype(object)
        else:
            x = x.astype(rng.choice([np.int64, np.int32]))
        run("TfIdfVectorizer", attrs, x, oracle="ort")
        run("TfIdfVectorizer", attrs, x[0], oracle="ort")


TFIDF = dict(mode="TF", min_gram_length=1, max_gram_length=2, max_skip_count=1,
             ngram_counts=[0, 3], ngram_indexes=[0, 1, 2, 3, 4],
             pool_int64s=[1, 2, 3, 1, 2, 2, 3])


def test_tfidf_empty_inputs():
    assert run("TfIdfVectorizer", TFIDF, np.zeros(0, np.int64), oracle="ort")[0].shape == (5,)
    run("TfIdfVectorizer", TFIDF, np.zeros((2, 0), np.int64), oracle="ort")


@pytest.mark.parametrize("attrs, message", [
    (dict(pool_int64s=[1, 2, 1, 1, 2, 1, 2]), "duplicate"),
    (dict(ngram_counts=[0, 4], pool_int64s=[1, 2, 3, 4, 5, 6, 7]), "whole 2-grams"),
    (dict(mode="TFIDF", weights=[1.0, 2.0]), "same size"),
    (dict(ngram_indexes=[0, 1, 2]), "fewer than"),
    (dict(mode="BM25"), "mode"),
    (dict(min_gram_length=3), "min_gram_length"),
])
def test_tfidf_invalid_attributes(attrs, message):
    with pytest.raises(Exception, match=message):
        run("TfIdfVectorizer", dict(TFIDF, **attrs), np.array([1, 2], np.int64))


# -- com.microsoft:Tokenizer ------------------------------------------------------------------

_TOKENIZER_CASES = [
    (["the cat sat", "a bb", ""], {"tokenexp": "[a-zA-Z0-9_]+"}),
    (["", ""], {"tokenexp": "[a-zA-Z0-9_]+"}),
    ([["ab cd", "e"], ["f g h", ""]], {"tokenexp": "[a-zA-Z0-9_]+"}),
    (["the cat sat", "a bb"], {"tokenexp": "[a-zA-Z0-9_]+", "mark": 1, "mincharnum": 2}),
    (["the cat;sat", "a  bb"], {"separators": [" ", ";"]}),
    (["the cat;sat", "a  bb"], {"separators": [" ", ";"], "mincharnum": 2}),
    (["abc", "de"], {"separators": [""]}),
    (["abc", "de"], {"separators": [""], "mark": 1}),
    (["x1y22z", "q"], {"separators": ["[0-9]+"]}),
    (["héllo wörld"], {"tokenexp": "\\w+"}),
]


@pytest.mark.parametrize("texts,attrs", _TOKENIZER_CASES)
def test_tokenizer_matches_onnxruntime(texts, attrs):
    attrs = {"mark": 0, "mincharnum": 1, "pad_value": "#", **attrs}
    node = helper.make_node("Tokenizer", ["x"], ["y"], domain="com.microsoft", **attrs)
    model = make_model([node], [helper.make_tensor_value_info("x", TensorProto.STRING, None)],
                       [helper.make_tensor_value_info("y", TensorProto.STRING, None)],
                       opset=17, opsets={"com.microsoft": 1}, ir_version=8)
    feeds = {"x": np.array(texts, dtype=object)}
    assert_outputs_match(run_ort(model, feeds), run_onnxruntime(model, feeds))
