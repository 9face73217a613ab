"""A fuzz suite for hostile and malformed models (issue 15, part 7).

A fixed seed corpus of small valid models (:mod:`tests.fuzz.corpus`) is mutated in fixed
categories (:mod:`tests.fuzz.mutate`), and every mutant is loaded and run by ort and by
onnxruntime, each in its own forked child under a time and memory limit
(:mod:`tests.fuzz.harness`). ``test_fuzz.py`` runs a quick fixed-seed set in CI;
``run_fuzz.py`` runs any number of mutants and writes a report (``tox -e fuzz-long``).
"""
