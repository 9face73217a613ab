"""Panelled products of few rows with a constant weight (ort_provider_cpu.skinny_gemm)."""

import numpy as np
import pytest

from ort_provider_cpu import skinny_gemm
from ort_provider_cpu.skinny_gemm import PanelledWeight

from single_node import check


@pytest.fixture
def panels_forced(monkeypatch):
    """Make the panel path win whatever this machine's BLAS measures."""
    monkeypatch.setattr(skinny_gemm, "panels_pay", lambda: True)


@pytest.mark.parametrize("rows,depth,columns", [
    (2, 64, 64), (3, 100, 70), (8, 1024, 4096), (8, 4096, 130), (32, 768, 80), (16, 300, 77),
])
def test_panelled_product_equals_the_plain_one(panels_forced, rows, depth, columns):
    rng = np.random.default_rng(rows + depth)
    a = rng.standard_normal((rows, depth), dtype=np.float32)
    b = rng.standard_normal((depth, columns), dtype=np.float32)
    product = PanelledWeight(b).product(a)
    assert product is not None and product.flags.c_contiguous
    expected = a.astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_allclose(product, expected, rtol=1e-4, atol=1e-3 * np.sqrt(depth) / 8)


def test_transposed_view_weight(panels_forced):
    rng = np.random.default_rng(1)
    w = rng.standard_normal((96, 40), dtype=np.float32)  # (N, K) as Gemm's transB weight
    a = rng.standard_normal((4, 40), dtype=np.float32)
    np.testing.assert_allclose(PanelledWeight(w.T).product(a), a @ w.T, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("rows,depth,dtype", [
    (64, 256, np.float32),  # too many rows: the plain product is as fast
    (1, 1024, np.float32),  # one row: BLAS's GEMV streams the weight faster
    (16, 8192, np.float32),  # too deep for the small-matrix kernels
    (4, 64, np.float64),  # float32 only
])
def test_declines_what_does_not_pay(panels_forced, rows, depth, dtype):
    b = np.ones((depth, 64), dtype=dtype)
    assert PanelledWeight(b).product(np.ones((rows, depth), dtype=dtype)) is None


def test_declines_weights_narrower_than_two_panels(panels_forced):
    rows, depth, dtype = 4, 64, np.float32
    b = np.ones((depth, 40), dtype=dtype)
    assert PanelledWeight(b).product(np.ones((rows, depth), dtype=dtype)) is None


def test_declines_when_the_probe_says_no(monkeypatch):
    monkeypatch.setattr(skinny_gemm, "panels_pay", lambda: False)
    b = np.ones((64, 64), dtype=np.float32)
    assert PanelledWeight(b).product(np.ones((2, 64), dtype=np.float32)) is None


def test_probe_is_measured_once_per_thread_count(monkeypatch):
    monkeypatch.setattr(skinny_gemm, "_probed", {})
    first = skinny_gemm.panels_pay()
    assert isinstance(first, bool)
    assert list(skinny_gemm._probed.values()) == [first]
    monkeypatch.setattr(skinny_gemm, "_best_time", lambda *a, **k: pytest.fail("re-probed"))
    assert skinny_gemm.panels_pay() is first


@pytest.mark.parametrize("batch", [1, 5, 8])
def test_matmul_and_gemm_with_constant_weights_match_onnxruntime(panels_forced, batch):
    rng = np.random.default_rng(batch)
    x = rng.standard_normal((batch, 200), dtype=np.float32)
    w = rng.standard_normal((200, 90), dtype=np.float32)
    bias = rng.standard_normal(90).astype(np.float32)
    check("MatMul", [x, w], const=(1,), rtol=1e-4, atol=1e-4)
    check("Gemm", [x, np.ascontiguousarray(w.T), bias], attrs={"transB": 1}, const=(1, 2),
          rtol=1e-4, atol=1e-4)
    check("Gemm", [x, w, bias], attrs={"alpha": 0.5, "beta": 2.0}, const=(1, 2),
          rtol=1e-4, atol=1e-4)
    # a stack of rows (batch, 3, K) @ (K, N) goes through the same path
    check("MatMul", [rng.standard_normal((batch, 3, 200), dtype=np.float32), w], const=(1,),
          rtol=1e-4, atol=1e-4)
