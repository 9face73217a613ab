"""A fuzz suite for hostile and malformed models (issue 15, part 7).

A fixed seed corpus of small valid models (:mod:`corpus`) is mutated in fixed categories
(:mod:`mutate`, :mod:`mutate_attributes`), joined by hand-written hostile cases (:mod:`named`),
and every mutant is loaded and run by ort and by onnxruntime, each in a forked child under a
time and memory limit (:mod:`harness`, :mod:`worker`). :mod:`report` judges the outcomes: ort
must never crash, hang or raise an exception that is not an ``ort.OrtError``, and should
accept exactly what onnxruntime accepts; every current failure is listed with its reason in
``known_disagreements.txt``.

* ``tox -e fuzz`` (in every CI): ``test_fuzz.py`` runs the quick fixed-seed set
  (:func:`suite.quick_set`, about 1,300 mutants) and fails on a failure that is not listed or
  a listed one that passes now.
* ``tox -e fuzz-long``: ``run_fuzz.py`` over about 3,000 mutants, writing fuzz-report.md
  (per-category table, failures grouped by cause, every failure with both outcomes).
* ``python tests/fuzz/run_fuzz.py --help``: any seed, size or categories; ``--update-known``
  redrafts known_disagreements.txt after ort changes (keeping the reasons already written).
"""
