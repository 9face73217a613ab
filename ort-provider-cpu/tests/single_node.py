"""Single-node models for kernel tests: build one, run it on ort and on an oracle, compare."""

import numpy as np
import onnx
import onnxruntime
from onnx import helper


def make_model(op, inputs, attrs=None, opset=21, n_outputs=1, const=()):
    """Build a one-node model; ``inputs`` are arrays (None: omitted), indices in ``const``
    become initializers."""
    names, graph_inputs, inits, feeds = [], [], [], {}
    for i, value in enumerate(inputs):
        if value is None:
            names.append("")
            continue
        name = f"in{i}"
        names.append(name)
        if i in const:
            inits.append(onnx.numpy_helper.from_array(np.asarray(value), name))
        else:
            elem = onnx.helper.np_dtype_to_tensor_dtype(np.asarray(value).dtype)
            if np.asarray(value).dtype == object:
                elem = onnx.TensorProto.STRING
            graph_inputs.append(helper.make_tensor_value_info(name, elem, np.shape(value)))
            feeds[name] = value
    outputs = [f"out{i}" for i in range(n_outputs)]
    node = helper.make_node(op, names, outputs, **(attrs or {}))
    graph = helper.make_graph([node], "g", graph_inputs,
                              [helper.make_empty_tensor_value_info(o) for o in outputs], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              ir_version=10)
    return model, feeds


def run_onnxruntime(model, feeds):
    """Run with onnxruntime's CPU provider."""
    sess = onnxruntime.InferenceSession(model.SerializeToString(),
                                        providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def run_ours(model, feeds):
    """Run with ort's session on the CPU provider."""
    import ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def check(op, inputs, attrs=None, opset=21, const=(), rtol=1e-5, atol=1e-6, oracle="ort",
          n_outputs=1):
    """Compare ours with onnxruntime (or onnx's ReferenceEvaluator): dtype, shape, values."""
    model, feeds = make_model(op, inputs, attrs, opset, n_outputs, const)
    expected = None
    if oracle == "ort":
        try:
            expected = run_onnxruntime(model, feeds)
        except onnxruntime.capi.onnxruntime_pybind11_state.NotImplemented:
            pass  # onnxruntime has no kernel for this type: use the reference instead
    if expected is None:
        from onnx.reference import ReferenceEvaluator
        expected = ReferenceEvaluator(model).run(None, feeds)
    actual = run_ours(model, feeds)
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected):
        want = np.asarray(want)
        assert isinstance(got, np.ndarray), type(got)
        assert got.shape == want.shape, (got.shape, want.shape)
        if want.dtype == object or got.dtype == object:
            assert got.dtype == object
            assert got.tolist() == want.tolist()
            continue
        if want.dtype != got.dtype and want.dtype == np.uint8 and got.dtype.kind == "V":
            got = got.view(np.uint8)  # onnxruntime returns float8 as raw bytes
        assert got.dtype == want.dtype, (got.dtype, want.dtype)
        if got.dtype.kind in "fV":
            np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64),
                                       rtol=rtol, atol=atol, equal_nan=True)
        else:
            np.testing.assert_array_equal(got, want)
    return actual


RNG = np.random.default_rng(0)


def rand(shape, dtype=np.float32, low=-3.0, high=3.0):
    """Random array of ``dtype`` in [low, high) (integers rounded)."""
    values = np.asarray(RNG.uniform(low, high, size=shape))
    if np.dtype(dtype).kind in "iu":
        values = np.round(values)
    if np.dtype(dtype) == np.bool_:
        return np.asarray(values > 0)
    return np.asarray(values.astype(dtype))
