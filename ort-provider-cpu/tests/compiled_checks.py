"""Checks shared by the compiled-loop tests: a model run with the compiled loops (on several
thread counts), with the numpy kernels (``compiled_kernels=0``) and on onnxruntime."""

from __future__ import annotations

import numpy as np

from ort import InferenceSession, SessionOptions
from ort.testing import run_onnxruntime


def run_paths(model, feeds, compiled: bool, threads: int) -> list:
    """``model``'s outputs on the CPU provider with (``compiled``) or without its compiled
    loops, on ``threads`` intra-op threads."""
    options = SessionOptions()
    options.intra_op_num_threads = threads
    provider = ("CPUExecutionProvider", {"compiled_kernels": "1" if compiled else "0"})
    session = InferenceSession(model.SerializeToString(), options, providers=[provider])
    return session.run(None, feeds)


def three_way(model, feeds, rtol=1e-6, atol=1e-6, oracle=True, threads=(1, 2)) -> list:
    """Run ``model`` compiled (on each thread count), with the numpy kernels and on
    onnxruntime (unless not ``oracle``); assert that all agree (outputs that are None are
    skipped) and have the numpy kernels' dtypes and shapes; return the compiled outputs."""
    numpy_outs = run_paths(model, feeds, False, 1)
    expected = run_onnxruntime(model, feeds) if oracle else None
    got: list = []
    for count in threads:
        got = run_paths(model, feeds, True, count)
        for i, value in enumerate(got):
            if value is None:
                continue
            assert value.dtype == numpy_outs[i].dtype and value.shape == numpy_outs[i].shape
            np.testing.assert_allclose(value, numpy_outs[i], rtol=rtol, atol=atol,
                                       err_msg=f"output {i} vs numpy, {count} threads")
            if expected is not None:
                np.testing.assert_allclose(value, expected[i], rtol=rtol, atol=atol,
                                           err_msg=f"output {i} vs onnxruntime")
    return got
