"""CPU kernels: the ai.onnx.ml feature transforms of numeric tensors: ArrayFeatureExtractor,
Binarizer, FeatureVectorizer, Imputer, Normalizer and Scaler. They select, concatenate, replace,
threshold, normalize or rescale features (the last axis, or the columns of [N, F]); Binarizer,
Imputer and ArrayFeatureExtractor keep X's type, the others return float32 as ONNX Runtime does.
"""

from __future__ import annotations

import numpy as np

from ort.ep import KernelTable, NodeInfo

from ..jit import compiled_loops_enabled
from . import ml_loops
from .ml_common import ML, _F32, _as_float32, _fail, _floats, _ints, _row_max, _row_sum

kernels = KernelTable()


@kernels.register("ArrayFeatureExtractor", 1, domain=ML)
def array_feature_extractor(node: NodeInfo):
    """ArrayFeatureExtractor 1+: gather the indices Y along the last axis of X (a 1-D X gives
    a [1, len(Y)] result, as ONNX Runtime returns)."""

    const_y = node.const_inputs[1] if len(node.const_inputs) > 1 else None
    const_index = None
    if const_y is not None and np.size(const_y):  # the usual case: an initializer
        const_index = np.asarray(const_y).reshape(-1).astype(np.int64)
        bounds = (int(const_index.min()), int(const_index.max()))

    def compute(x, y):
        if x.ndim == 0:
            raise _fail(node, "X must have at least one dimension")
        size = x.shape[-1]
        if const_index is not None:
            index = const_index
            if bounds[0] < 0 or bounds[1] >= size:
                raise _fail(node, f"index out of range [0, {size}): {index.tolist()}")
        else:
            index = np.asarray(y).reshape(-1).astype(np.int64)
            if index.size == 0:
                raise _fail(node, "Y must hold at least one index")
            if ((index < 0) | (index >= size)).any():
                raise _fail(node, f"index out of range [0, {size}): {index.tolist()}")
        z = np.take(x, index, axis=-1)
        return (z.reshape(1, -1) if x.ndim == 1 else z,)

    return compute


@kernels.register("Binarizer", 1, domain=ML)
def binarizer(node: NodeInfo):
    """Binarizer 1+: 1 where X > threshold, else 0, in X's type (NaN gives 0; ONNX Runtime
    rejects NaN inputs)."""
    threshold = float(node.attrs.get("threshold", 0.0))

    def compute(x):
        values = x if x.dtype.kind == "f" else x.astype(_F32)
        return ((values > values.dtype.type(_F32(threshold))).astype(x.dtype),)

    return compute


@kernels.register("FeatureVectorizer", 1, domain=ML)
def feature_vectorizer(node: NodeInfo):
    """FeatureVectorizer 1+: concatenate the inputs' features into [N, sum(inputdimensions)]
    float32 columns, truncating or zero-padding each input to its declared size."""
    dims = _ints(node, "inputdimensions")
    if any(d < 0 for d in dims):
        raise _fail(node, f"inputdimensions must be non-negative, got {dims}")
    offsets = np.concatenate([[0], np.cumsum(dims)]).astype(int)

    def compute(*xs):
        if len(xs) != len(dims):
            raise _fail(node, f"{len(xs)} inputs but {len(dims)} inputdimensions")
        first = xs[0]
        rows = 1 if first.ndim <= 1 else first.shape[0]
        y = np.zeros((rows, int(offsets[-1])), dtype=_F32)
        for x, size, start in zip(xs, dims, offsets):
            flat = x.reshape(1, -1) if x.ndim <= 1 else x.reshape(x.shape[0], -1)
            if flat.shape[0] != rows:
                raise _fail(node, f"inputs have different batch sizes ({flat.shape[0]} and "
                                  f"{rows})")
            width = min(size, flat.shape[1])
            y[:, start:start + width] = flat[:, :width]
        return (y,)

    return compute


@kernels.register("Imputer", 1, domain=ML)
def imputer(node: NodeInfo):
    """Imputer 1+: replace values equal to replaced_value_* (NaN matches NaN) by the imputed
    value of their feature (or the single imputed value)."""
    floats = _floats(node, "imputed_value_floats")
    ints = _ints(node, "imputed_value_int64s")
    if bool(floats) == bool(ints):
        raise _fail(node, "give exactly one of imputed_value_floats and imputed_value_int64s")
    replaced_float = float(node.attrs.get("replaced_value_float", 0.0))
    replaced_int = int(node.attrs.get("replaced_value_int64", 0))

    def compute(x):
        if x.ndim == 0:
            raise _fail(node, "input must have at least one dimension")
        is_float = x.dtype.kind == "f"
        imputed = floats if is_float else ints
        if not imputed:
            raise _fail(node, f"no imputed values for a {x.dtype} input")
        stride = x.shape[0] if x.ndim == 1 else x.shape[1]
        values = np.asarray(imputed).astype(x.dtype)
        if len(values) == stride and stride > 0:
            fill = values[np.arange(x.size) % stride].reshape(x.shape)
        else:
            fill = values[0]
        if is_float:
            target = x.dtype.type(_F32(replaced_float))
            hit = np.isnan(x) if np.isnan(target) else x == target
        else:
            hit = x == replaced_int
        return (np.where(hit, fill, x).astype(x.dtype, copy=False),)

    return compute


@kernels.register("Normalizer", 1, domain=ML)
def normalizer(node: NodeInfo):
    """Normalizer 1+: divide each row by its MAX, L1 or L2 norm (rows of norm 0 are copied);
    float32 output."""
    norm = node.attrs.get("norm", "MAX")
    if norm not in ("MAX", "L1", "L2"):
        raise _fail(node, f"norm must be MAX, L1 or L2, got {norm!r}")

    loop = None
    if compiled_loops_enabled(node):
        code = ("MAX", "L1", "L2").index(norm)
        loop = {np.dtype(t): ml_loops.normalize_rows.prepare((t, 2), int, (_F32, 2))
                for t in (_F32, np.float64)}

    def compute(x):
        if x.ndim > 2:
            raise _fail(node, f"input rank must be at most 2, got {x.ndim}")
        rows = x.reshape(1, -1) if x.ndim <= 1 else x
        if loop is not None and x.ndim and x.dtype in loop:
            out = np.empty(rows.shape, dtype=_F32)
            loop[x.dtype](np.ascontiguousarray(rows), code, out)
            return (out.reshape(x.shape),)
        xf = _as_float32(rows)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if norm == "MAX":
                scale = _row_max(xf)
                y = np.where(scale != 0, xf / scale, xf)
            elif norm == "L1":
                scale = _row_sum(_as_float32(np.abs(rows)))
                y = np.where(scale != 0, xf / scale, xf)
            else:
                squares = _as_float32(rows * rows)
                scale = _row_sum(squares)
                root = np.sqrt(squares / scale)
                y = np.where(scale != 0, np.where(rows < 0, -root, root), xf)
        return (y.astype(_F32, copy=False).reshape(x.shape),)

    return compute


@kernels.register("Scaler", 1, domain=ML)
def scaler(node: NodeInfo):
    """Scaler 1+: (X - offset) * scale per feature (or one offset/scale for all); float32."""
    scale = _floats(node, "scale")
    offset = _floats(node, "offset")
    if not scale or len(scale) != len(offset):
        raise _fail(node, f"scale ({len(scale)}) must be non-empty and as long as offset "
                          f"({len(offset)})")

    # offset and scale in each compute type: float32 values, widened for float64 inputs
    typed = {np.dtype(t): (np.asarray(offset, dtype=_F32).astype(t),
                           np.asarray(scale, dtype=_F32).astype(t)) for t in (_F32, np.float64)}

    def compute(x):
        if x.ndim == 0:
            raise _fail(node, "input must have at least one dimension")
        stride = x.shape[0] if x.ndim == 1 else x.shape[1]
        dtype = np.dtype(np.float64 if x.dtype == np.float64 else _F32)
        off, sca = typed[dtype]
        if x.ndim <= 2 and (len(off) == stride or len(off) == 1):
            # per feature (the last axis) or one value for all: broadcasting does it
            y = x.astype(dtype, copy=False) - off
            y *= sca
            return (y.astype(_F32, copy=False),)
        if len(off) == stride:
            index = np.arange(x.size) % max(stride, 1)
            off, sca = off[index].reshape(x.shape), sca[index].reshape(x.shape)
        elif len(off) != 1:
            raise _fail(node, f"scale and offset must have 1 or {stride} (feature count) "
                              f"values, got {len(off)}")
        return (((x.astype(dtype) - off) * sca).astype(_F32),)

    return compute
