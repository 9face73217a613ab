"""CPU kernels: com.microsoft ops that extend ONNX ones or stand alone (Inverse, Trilu, Range,
GridSample in the com.microsoft domain, CDist, WordConvEmbedding).

Semantics follow onnxruntime's contrib operator spec (docs/ContribOperators.md) and its CPU
kernels' observed behaviour; every op is declared to the core in ``SCHEMAS``
(:mod:`.contrib_schema`).

com.microsoft Trilu and GridSample are the ONNX ops under an older name: they run this
provider's ONNX kernels (GridSample at version 1 takes the opset-16 modes bilinear/nearest/
bicubic on 4-D inputs). com.microsoft Range differs from ONNX Range (delta is optional) and
has its own kernel.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from ort.ep import DeclaredSchema, KernelTable, NodeInfo

from .contrib_schema import (FLOAT, MS, declare, elem_type, like_input,
                             like_onnx, tensor_type, typed)
from .generators import trilu
from .kernel_args import host_scalar
from .sampling import grid_sample

kernels = KernelTable()

# The element types onnxruntime's CPU provider runs each op with (its kernels' type
# constraints; float16 Trilu and GridSample run through its float fallback): a node of any
# other type finds no kernel here either.
_FLOATS = ("float16", "float", "double")
_RANGE_TYPES = ("float", "double", "int16", "int32", "int64")

# --------------------------------------------------------------------------------------------
# Inverse
# --------------------------------------------------------------------------------------------


def _gauss_jordan_inverse(xp: Any, a: Any) -> Any:
    """Inverses of the batch ``a`` (..., n, n) by Gauss-Jordan elimination with partial
    pivoting, vectorized over the batch; a singular matrix gives inf/nan entries instead of
    an error (as onnxruntime's Eigen LU does). Loops over the n pivot columns only."""
    n = a.shape[-1]
    batch = a.shape[:-2]
    m = a.reshape((-1, n, n)).copy()
    inv = xp.broadcast_to(xp.eye(n, dtype=a.dtype), m.shape).copy()
    rows = xp.arange(m.shape[0])
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for col in range(n):
            pivot = col + xp.argmax(xp.abs(m[:, col:, col]), axis=1)
            for mat in (m, inv):  # swap the pivot row up
                top = mat[rows, col].copy()
                mat[rows, col] = mat[rows, pivot]
                mat[rows, pivot] = top
            scale = 1 / m[:, col, col]
            m[:, col] *= scale[:, None]
            inv[:, col] *= scale[:, None]
            factor = m[:, :, col].copy()
            factor[:, col] = 0
            m -= factor[:, :, None] * m[:, None, col]
            inv -= factor[:, :, None] * inv[:, None, col]
    return inv.reshape(batch + (n, n))


@kernels.register("Inverse", since=1, domain=MS, input_types={0: _FLOATS})
def inverse(node: NodeInfo) -> Callable[..., tuple]:
    """Inverse 1: the inverse of each matrix of the last two dims (float16, float, double;
    float16 computed in float32 and rounded once). Singular matrices give inf/nan."""
    xp = node.xp
    where = node.describe()

    def compute(x: Any) -> tuple:
        if x.ndim < 2 or x.shape[-1] != x.shape[-2]:
            raise ValueError(f"{where}: input must be a batch of square matrices (..., n, n), "
                             f"got shape {tuple(x.shape)}")
        work = x.astype(np.float64 if x.dtype == np.float64 else np.float32, copy=False)
        if work.size == 0:
            return (xp.empty_like(x),)
        try:
            y = xp.linalg.inv(work)
        except np.linalg.LinAlgError:  # a singular matrix in the batch
            y = _gauss_jordan_inverse(xp, work)
        return (y.astype(x.dtype, copy=False),)

    return compute


# --------------------------------------------------------------------------------------------
# Trilu, GridSample (the ONNX kernels), Range
# --------------------------------------------------------------------------------------------

kernels.register("Trilu", since=1, domain=MS, host_inputs=(1,),
                 input_types={0: _FLOATS + ("int64",)})(trilu)
kernels.register("GridSample", since=1, domain=MS,
                 input_types={0: ("float16", "float"), 1: ("float16", "float")})(grid_sample)


@kernels.register("Range", since=1, domain=MS, host_inputs=(0, 1, 2),
                  input_types={i: _RANGE_TYPES for i in range(3)})
def range_ms(node: NodeInfo) -> Callable[..., tuple]:
    """Range 1 (com.microsoft): ``start, start + delta, ...`` below ``limit`` (delta
    optional, default 1); the count is ``ceil((limit - start) / delta)`` with the difference
    taken in the input type, values accumulate in the input type like onnxruntime."""
    xp = node.xp
    where = node.describe()

    def compute(start: Any, limit: Any, delta: Any = None) -> tuple:
        dtype = np.asarray(start).dtype
        for name, value in (("start", start), ("limit", limit), ("delta", delta)):
            if value is not None and np.asarray(value).size != 1:
                raise ValueError(f"{where}: {name} must be a scalar, got shape "
                                 f"{np.asarray(value).shape}")
        s, lim = host_scalar(start), host_scalar(limit)
        d = dtype.type(1) if delta is None else host_scalar(delta)
        if d == 0:
            raise ValueError(f"{where}: delta must not be zero")
        n = _range_count(dtype, s, lim, d)
        if n is None:
            raise ValueError(f"{where}: (limit - start) / delta is not finite (start {s}, "
                             f"limit {lim}, delta {d})")
        node.check_output_size((n,), np.int64 if dtype.kind in "iu" else dtype)
        return (xp.asarray(_range_values(dtype, s, lim, d, n)),)

    return compute


def _range_count(dtype: np.dtype, s: Any, lim: Any, d: Any) -> int | None:
    """How many values com.microsoft Range makes: ``ceil((lim - s) / d)`` (the difference
    in the input type), at least 0; None where that is not a finite number."""
    if dtype.kind in "iu":
        return max(math.ceil((int(lim) - int(s)) / int(d)), 0)
    s, lim, d = dtype.type(s), dtype.type(lim), dtype.type(d)
    count = float(dtype.type(lim - s)) / float(d)
    return max(math.ceil(count), 0) if math.isfinite(count) else None


def _range_values(dtype: np.dtype, s: Any, lim: Any, d: Any, n: int) -> np.ndarray:
    """com.microsoft Range's ``n`` values (:func:`_range_count`), accumulated in the input
    type as onnxruntime does."""
    if dtype.kind in "iu":
        return (np.arange(n, dtype=np.int64) * int(d) + int(s)).astype(dtype)
    s, d = dtype.type(s), dtype.type(d)
    steps = np.full(n, d, dtype=dtype)
    if n:
        steps[0] = s
    return np.cumsum(steps, dtype=dtype)  # start += delta, in the input type


def _range_shape(types: Sequence[Any], attrs: Mapping[str, Any], values: Sequence[Any]):
    """Range's output: 1-D, its length known when start, limit (and delta) are constants."""
    start, limit = values[0], values[1]
    delta = values[2] if len(values) > 2 else None
    length = None
    if start is not None and limit is not None and (len(values) < 3 or delta is not None):
        dtype = np.asarray(start).dtype
        step = dtype.type(1) if delta is None else np.asarray(delta).reshape(-1)[0]
        if step != 0:  # counted, never materialized: the limits may ask for any size
            length = _range_count(dtype, np.asarray(start).reshape(-1)[0],
                                  np.asarray(limit).reshape(-1)[0], step)
    return [tensor_type(elem_type(types[0]), [length])]


# --------------------------------------------------------------------------------------------
# CDist
# --------------------------------------------------------------------------------------------

_METRICS = ("sqeuclidean", "euclidean")


@kernels.register("CDist", since=1, domain=MS,
                  input_types={0: ("float", "double"), 1: ("float", "double")})
def cdist(node: NodeInfo) -> Callable[..., tuple]:
    """CDist 1: pairwise distances (M, N) between the rows of A (M, K) and B (N, K), metric
    ``sqeuclidean`` (default) or ``euclidean``; float and double. Computed like onnxruntime:
    ``|a|^2 + |b|^2 - 2 a.b`` with one GEMM, then abs (and sqrt)."""
    xp = node.xp
    where = node.describe()
    metric = str(node.attrs.get("metric", "sqeuclidean"))
    if metric not in _METRICS:
        raise ValueError(f"{where}: metric {metric!r} is not supported; use one of {_METRICS}")
    euclidean = metric == "euclidean"

    def compute(a: Any, b: Any) -> tuple:
        if a.ndim != 2 or a.shape[1] <= 0:
            raise ValueError(f"{where}: A must be 2-D (M, K) with K > 0, got {tuple(a.shape)}")
        if b.ndim != 2 or b.shape[1] != a.shape[1]:
            raise ValueError(f"{where}: B must be 2-D (N, K) with A's K={a.shape[1]}, got "
                             f"{tuple(b.shape)}")
        out = xp.matmul(a, b.T)
        out *= -2
        out += xp.einsum("ik,ik->i", a, a)[:, None]
        out += xp.einsum("jk,jk->j", b, b)[None, :]
        xp.abs(out, out=out)
        if euclidean:
            xp.sqrt(out, out=out)
        return (out,)

    return compute


# --------------------------------------------------------------------------------------------
# WordConvEmbedding
# --------------------------------------------------------------------------------------------


def _word_conv_sizes(node: NodeInfo, w: Any, c: Any) -> tuple[int, int, int]:
    """(filters, window, char embedding size) of W (M, 1, window, E) and C (chars, E),
    checked against the node's attributes."""
    where = node.describe()
    if w.ndim != 4 or w.shape[1] != 1 or c.ndim != 2 or w.shape[3] != c.shape[1]:
        raise ValueError(f"{where}: W must be (embedding_size, 1, conv_window_size, "
                         f"char_embedding_size) and C (chars, char_embedding_size), got W "
                         f"{tuple(w.shape)} and C {tuple(c.shape)}")
    sizes = {"embedding_size": w.shape[0], "conv_window_size": w.shape[2],
             "char_embedding_size": c.shape[1]}
    for name, actual in sizes.items():
        wanted = node.attrs.get(name)
        if wanted is not None and int(wanted) != -1 and int(wanted) != actual:
            raise ValueError(f"{where}: attribute {name}={wanted} does not match the "
                             f"inputs' {actual}")
    return w.shape[0], w.shape[2], c.shape[1]


@kernels.register("WordConvEmbedding", since=1, domain=MS,
                  input_types={0: ("int32",), 1: ("float",), 2: ("float",), 3: ("float",)})
def word_conv_embedding(node: NodeInfo) -> Callable[..., tuple]:
    """WordConvEmbedding 1: word embeddings (words, M) from character ids (words,
    word_length): each word's characters are looked up in C, convolved with the filters W
    (M, 1, window, E) plus B, tanh, and max-pooled over the word's windows.

    A word's length is its number of positive ids (0 when its first id is not positive); its
    first ``max(length, window)`` ids are looked up, giving ``max(length, window) - window + 1``
    windows. Words of length 0 give zeros (onnxruntime leaves them unwritten)."""
    xp = node.xp
    where = node.describe()

    def compute(seq: Any, w: Any, bias: Any, chars: Any) -> tuple:
        filters, window, width = _word_conv_sizes(node, w, chars)
        if seq.ndim != 2:
            raise ValueError(f"{where}: Sequence must be 2-D (words, word_length), got "
                             f"{tuple(seq.shape)}")
        words, word_len = seq.shape
        positive = seq > 0
        lengths = xp.where(positive[:, 0], positive.sum(axis=1), 0) if word_len else \
            xp.zeros(words, dtype=np.int64)
        used = xp.maximum(lengths, window) * (lengths > 0)  # ids looked up per word
        out = xp.zeros((words, filters), dtype=np.float32)
        if not words or not used.any():
            return (out,)
        if window > word_len:
            raise ValueError(f"{where}: conv_window_size {window} exceeds the word length "
                             f"{word_len}")
        looked_up = xp.arange(word_len)[None, :] < used[:, None]
        ids = xp.where(looked_up, seq, 0)
        if (ids < 0).any() or (ids >= chars.shape[0]).any():
            raise ValueError(f"{where}: character ids must lie in [0, {chars.shape[0]})")
        embedded = chars[ids]  # (words, word_len, E)
        views = np.lib.stride_tricks.sliding_window_view(embedded, window, axis=1)
        windows = views.transpose(0, 1, 3, 2).reshape(words, word_len - window + 1,
                                                      window * width)
        conv = xp.matmul(windows, w.reshape(filters, window * width).T)
        conv += bias
        xp.tanh(conv, out=conv)
        valid = xp.arange(word_len - window + 1)[None, :] < (used - window + 1)[:, None]
        conv[~valid] = -np.inf
        pooled = conv.max(axis=1)
        return (xp.where((lengths > 0)[:, None], pooled, 0).astype(np.float32),)

    return compute


# --------------------------------------------------------------------------------------------
# schemas
# --------------------------------------------------------------------------------------------


def _untyped_shape(index: int, element: int | None = None):
    """Inference of an output typed like input ``index`` (or ``element``), shape unknown."""
    return lambda t, a: tensor_type(element or elem_type(t[index]))


#: The contrib ops of this module, declared to the core.
SCHEMAS: list[DeclaredSchema] = [
    declare("Inverse", inputs=1, infer=like_input(0)),
    declare("Trilu", inputs=(1, 2), attributes={"upper": 1}, infer=like_input(0)),
    declare("Range", inputs=(2, 3), infer=_range_shape, uses_values=True),
    declare("GridSample", inputs=2,
            attributes={"mode": "bilinear", "padding_mode": "zeros", "align_corners": 0},
            infer=like_onnx("GridSample", 16)),
    declare("CDist", inputs=2, attributes={"metric": "sqeuclidean"},
            infer=typed(_untyped_shape(0))),
    declare("WordConvEmbedding", inputs=4,
            attributes={"embedding_size": None, "conv_window_size": None,
                        "char_embedding_size": None},
            infer=typed(_untyped_shape(0, FLOAT))),
]
