"""Checks shared by the compiled-loop tests: a model run with the compiled loops (on several
thread counts), with the numpy kernels (``compiled_kernels=0``) and on onnxruntime; the inputs
of a QLinearConv node."""

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


def qlinear_conv_inputs(rng, x_shape, w_shape, x_dtype=np.uint8, w_dtype=np.int8,
                        per_channel=True, bias=True, w_zp=0) -> list:
    """The nine inputs of a QLinearConv node: X and W over their types' whole ranges, per
    channel (or per tensor) weight scales, zero points inside the ranges, an int32 bias (or
    None)."""
    def ints(shape, dtype):
        info = np.iinfo(dtype)
        return rng.integers(info.min, int(info.max) + 1, shape).astype(dtype)

    m = w_shape[0]
    w_scale = (rng.uniform(0.002, 0.02, m) if per_channel else np.array(0.01)).astype(np.float32)
    unsigned = np.dtype(x_dtype) == np.uint8
    return [ints(x_shape, x_dtype), np.array(0.05, np.float32),
            np.array(128 if unsigned else -3, x_dtype), ints(w_shape, w_dtype), w_scale,
            np.full(w_scale.shape, w_zp, w_dtype), np.array(0.7, np.float32),
            np.array(100 if unsigned else 5, x_dtype),
            rng.integers(-5000, 5000, m).astype(np.int32) if bias else None]
