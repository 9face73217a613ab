"""The cupy test double itself: it must refuse what cupy refuses (so kernels that pass here do
not fail on a GPU for the same reasons), it must stay a test double, and it shows why some CPU
kernels needed GPU versions."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

import fake_cupy as fake
import ort
import ort.ep
from ort.testing import node_model
import ort_provider_cuda.kernels as cuda_kernels

SRC = Path(__file__).resolve().parents[1] / "src" / "ort_provider_cuda"


def test_the_provider_never_imports_the_double():
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names = [node.value] if node.value in ("fake_cupy", "sys.modules") else []
            else:
                continue
            assert not any(n.split(".")[0] in ("fake_cupy", "tests", "conftest")
                           for n in names), (path, names)


def test_importing_ort_and_the_plugin_does_not_import_cupy():
    code = ("import sys, ort, ort_provider_cuda.plugin, ort_provider_cuda.kernels; "
            "ort.get_all_providers(); assert 'cupy' not in sys.modules, 'cupy imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_double_says_it_is_one(fake_cupy):
    import cupy

    assert cupy is fake_cupy and cupy.IS_TEST_DOUBLE and cupy.__version__.endswith("+fake")


def test_device_arrays_refuse_implicit_host_conversion_and_numpy_operands(fake_cupy):
    cp = fake_cupy
    a = cp.asarray(np.arange(6, dtype=np.float32).reshape(2, 3))
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array"):
        np.asarray(a)
    with pytest.raises(TypeError, match="Unsupported type"):
        a + np.ones(3, np.float32)
    with pytest.raises(TypeError, match="Unsupported type"):
        cp.where(a > 1, a, np.zeros(3, np.float32))
    assert isinstance(a + np.float32(1), cp.ndarray)  # numpy scalars are fine
    assert isinstance(np.maximum(a, 0), cp.ndarray)  # __array_ufunc__ dispatches to cupy
    assert isinstance(np.concatenate([a, a]), cp.ndarray)  # __array_function__ too
    with pytest.raises(TypeError):
        np.lib.stride_tricks.as_strided(a, (2, 2), (4, 4))  # no cupy function at that path


def test_api_surface_is_cupys(fake_cupy):
    cp = fake_cupy
    a = cp.ones((2, 3), dtype=np.float32)
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) \['where'\]"):
        cp.sum(a, where=a > 0)
    with pytest.raises(TypeError, match="unexpected keyword"):
        cp.add(a, a, where=a > 0)
    with pytest.raises(AttributeError, match="writeable"):
        a.flags.writeable
    with pytest.raises(AttributeError):
        a.tofile_or_anything
    with pytest.raises(TypeError, match="Unsupported dtype"):
        cp.asarray(np.array(["x"], dtype=object))
    assert a.sum().shape == () and isinstance(a.sum(), cp.ndarray)  # 0-d, not a scalar
    assert not hasattr(cp, "unravel_index_or_anything")
    assert cp.float32 is np.float32 and cp.dtype is np.dtype


def test_host_synchronizations_are_counted(fake_cupy):
    cp, stats = fake_cupy, fake_cupy.stats
    a = cp.asarray(np.arange(4.0))
    stats.reset()
    bool((a > 1).any()), int(a[0]), a.tolist(), a[a > 1], cp.asnumpy(a)
    assert stats.syncs == ["bool(ndarray)", "int(ndarray)", "ndarray.tolist",
                           "boolean mask indexing", "ndarray.get"]


def test_arrays_belong_to_their_device(fake_cupy):
    fake.set_device_count(2)
    cp = fake_cupy
    with cp.cuda.Device(1):
        a = cp.ones(3)
    with pytest.raises(ValueError, match="different from the current device"):
        a + 1
    with cp.cuda.Device(1):
        assert isinstance(a + 1, cp.ndarray)


def test_capture_records_poisons_and_replays(fake_cupy):
    cp = fake_cupy
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        x = cp.asarray(np.arange(3, dtype=np.float32))
        stream.begin_capture()
        y = x * 2
        y += 1
        graph = stream.end_capture()
        assert np.isnan(y.get()).all()  # nothing ran during the capture
        graph.launch()
        np.testing.assert_array_equal(y.get(), [1, 3, 5])
        cp.copyto(x, cp.asarray(np.full(3, 10, np.float32)))
        graph.launch()
        np.testing.assert_array_equal(y.get(), [21, 21, 21])


def test_capture_refuses_host_synchronization_and_other_streams(fake_cupy):
    cp = fake_cupy
    stream = cp.cuda.Stream(non_blocking=True)
    x = cp.asarray(np.arange(3.0))
    with stream:
        stream.begin_capture()
        with pytest.raises(cp.cuda.runtime.CUDARuntimeError, match="CaptureUnsupported"):
            bool(x.any())
        with pytest.raises(cp.cuda.runtime.CUDARuntimeError, match="Invalidated"):
            stream.end_capture()
        stream.begin_capture()
        with cp.cuda.Stream.null, pytest.raises(cp.cuda.runtime.CUDARuntimeError,
                                                match="CaptureImplicit"):
            x + 1
        with pytest.raises(cp.cuda.runtime.CUDARuntimeError):
            stream.end_capture()


def test_memory_pools_enforce_their_limit(fake_cupy):
    cp = fake_cupy
    pool = cp.cuda.MemoryPool()
    pool.set_limit(size=4096)
    with cp.cuda.using_allocator(pool.malloc):
        a = cp.zeros(512, np.float32)  # 2 KiB
        assert pool.used_bytes() == 2048
        with pytest.raises(MemoryError, match="limit set to: 4,096 bytes"):
            cp.zeros(1024, np.float32)
        del a
        assert pool.used_bytes() == 0
        cp.zeros(1024, np.float32)


# -- why some CPU kernels have GPU versions ------------------------------------------------

def _one_node(op, inputs, consts=(), attrs=None, domain="", opset=17, outputs=1):
    """The serialized one-node model (:func:`ort.testing.node_model`, the node named "node")
    of ``inputs`` then ``consts`` (initializers), and its feeds."""
    values = [a for _, a in inputs] + [a for _, a in consts]
    model, feeds = node_model(op, values, attrs, outputs=outputs, domain=domain, opset=opset,
                              constants=range(len(inputs), len(values)),
                              ir_version=onnx.IR_VERSION, name="node")
    return model.SerializeToString(), feeds


_F = np.random.default_rng(0).standard_normal((1, 3, 5, 5)).astype(np.float32)
WHY = {
    "FusedGemm": (_one_node("FusedGemm", [("a", _F[0, 0]), ("b", _F[0, 1])], [],
                            {"activation": "Relu"}, "com.microsoft"), "error", "writeable"),
    "LSTM": (_one_node("LSTM", [("x", _F[0])], [("w", np.full((1, 4, 5), 0.1, np.float32)),
                                                ("r", np.full((1, 4, 1), 0.1, np.float32))],
                       {"hidden_size": 1}), "error", "Implicit conversion|Unsupported type"),
    "CumSum": (_one_node("CumSum", [("x", _F)], [("axis", np.array(1))]), "error",
               "Implicit conversion"),
    "Gather": (_one_node("Gather", [("x", _F[0, 0]), ("i", np.array([0, 2]))]), "syncs",
               "int(ndarray)"),
    "Erf": (_one_node("Erf", [("x", _F * 2)]), "syncs", "bool(ndarray)"),
    "Resize": (_one_node("Resize", [("x", _F)], [("roi", np.zeros(0, np.float32)),
                                                 ("scales", np.array([1, 1, 2, 2],
                                                                     np.float32))],
                         {"mode": "linear"}), "uploads", None),
}


@pytest.mark.parametrize("op", WHY)
def test_why_some_cpu_kernels_have_gpu_versions(fake_cupy, monkeypatch, op):
    """With the CPU kernel of ``op`` registered for CUDA instead of the GPU version, the
    kernel fails on device arrays, synchronizes with the host, or re-uploads host tables."""
    (data, feeds), outcome, detail = WHY[op]
    specific = cuda_kernels.gpu_specific_kernels
    monkeypatch.setattr(cuda_kernels, "gpu_specific_kernels",
                        lambda: [k for k in specific() if k.op_type != op])
    domain = "com.microsoft" if op.startswith("Fused") else ""
    monkeypatch.setattr(cuda_kernels, "REUSED", cuda_kernels.REUSED | {(domain, op)})
    ort.ep.reset()
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(data, so, providers=["CUDAExecutionProvider"])
    assert sess.get_partition().nodes_by_provider["CUDAExecutionProvider"] == ["node"]
    if outcome == "error":
        with pytest.raises(ort.Fail, match=detail):
            sess.run(None, feeds)
        return
    sess.run(None, feeds)
    fake_cupy.stats.reset()
    sess.run(None, feeds)
    if outcome == "syncs":
        assert detail in fake_cupy.stats.syncs
    else:
        assert fake_cupy.stats.h2d > len(feeds)  # tables uploaded again on every run
