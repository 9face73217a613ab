"""Defaults of the single-node kernel tests over ``ort.testing``: opset 21, the oracle spelled
``"ort"`` (onnxruntime) or ``"ref"`` (onnx's reference evaluator), outputs that are tensors, and
one random stream for the sample data."""

import numpy as np

from ort.testing import assert_matches_onnxruntime, node_model


def make_model(op, inputs, attrs=None, opset=21, n_outputs=1, const=()):
    """A one-node model and its feeds (:func:`ort.testing.node_model`; ``n_outputs``: a count
    or one flag per output); trailing omitted inputs stay in the node as empty names."""
    return node_model(op, inputs, attrs, opset=opset, outputs=n_outputs, constants=const,
                      keep_trailing_omitted=True)


def check(op, inputs, attrs=None, opset=21, const=(), rtol=1e-5, atol=1e-6, oracle="ort",
          n_outputs=1):
    """Compare ours with onnxruntime (``"ort"``) or onnx's ReferenceEvaluator (otherwise):
    :func:`ort.testing.assert_matches_onnxruntime`, every output a tensor."""
    model, feeds = make_model(op, inputs, attrs, opset, n_outputs, const)
    return assert_matches_onnxruntime(model, feeds, rtol=rtol, atol=atol,
                                      oracle="onnxruntime" if oracle == "ort" else "reference")


RNG = np.random.default_rng(0)


def rand(shape, dtype=np.float32, low=-3.0, high=3.0):
    """Random array of ``dtype`` in [low, high) (integers rounded)."""
    values = np.asarray(RNG.uniform(low, high, size=shape))
    if np.dtype(dtype).kind in "iu":
        values = np.round(values)
    if np.dtype(dtype) == np.bool_:
        return np.asarray(values > 0)
    return np.asarray(values.astype(dtype))
