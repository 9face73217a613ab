"""CPU kernels: random generators: RandomUniform(Like), RandomNormal(Like), Multinomial,
Bernoulli.

Each node owns one generator, created when the session prepares the node: with a ``seed``
attribute it is ``numpy.random.RandomState(seed)`` (the generator onnx's reference
implementation uses, so a seeded node's first run equals the reference's output), without one it
draws fresh OS entropy. As in onnxruntime, successive runs continue the node's stream: a seeded
node yields the same sequence of outputs in every session, and different values on each run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ort.ep import KernelTable, NodeInfo
from ort.ep import np_dtype_of

kernels = KernelTable()

_FLOAT_TYPES = (1, 10, 11)  # float, float16, double
_FLOAT_TYPES_22 = (1, 10, 11, 16)  # ... and bfloat16 from opset 22
_BERNOULLI_TYPES = (1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 16)


def node_generator(node: NodeInfo) -> np.random.RandomState:
    """Return the node's generator: seeded from the ``seed`` attribute, else from OS entropy."""
    seed = node.attrs.get("seed")
    if seed is None or np.isnan(seed):
        return np.random.RandomState()
    return np.random.RandomState(int(seed) % 2**32)


def _float_types(node: NodeInfo) -> Sequence[int]:
    """Return the element types a generator op may produce at this version."""
    return _FLOAT_TYPES_22 if node.since_version >= 22 else _FLOAT_TYPES


def _dtype_attr(node: NodeInfo, allowed: Sequence[int], default: int | None) -> np.dtype | None:
    """Return the dtype named by the ``dtype`` attribute (None: absent, no default), or raise."""
    element_type = node.attrs.get("dtype", default)
    if element_type is None:
        return None
    if int(element_type) not in allowed:
        raise ValueError(
            f"{node.describe()}: dtype {element_type} is not allowed; expected one of "
            f"{list(allowed)}"
        )
    return np_dtype_of(int(element_type))


def _like_dtype(node: NodeInfo, input_dtype: np.dtype | None) -> np.dtype | None:
    """Return the output dtype of a *Like op: the attribute, else the input's type."""
    allowed = _float_types(node)
    dtype = _dtype_attr(node, allowed, None)
    if dtype is None and input_dtype is not None:
        if np.dtype(input_dtype) not in {np_dtype_of(t) for t in allowed}:
            raise ValueError(
                f"{node.describe()}: input type {input_dtype} is not a float type; set the "
                f"dtype attribute"
            )
        dtype = np.dtype(input_dtype)
    return dtype


def _shape_attr(node: NodeInfo) -> tuple[int, ...]:
    """Return the required ``shape`` attribute, validated."""
    shape = node.attrs.get("shape")
    if shape is None or any(int(d) < 0 for d in shape):
        raise ValueError(f"{node.describe()}: needs a shape attribute of non-negative dims")
    return tuple(int(d) for d in shape)


def _uniform(rng: np.random.RandomState, shape: tuple[int, ...], dtype: np.dtype, low: float,
             high: float) -> np.ndarray:
    """Uniform values in [low, high) of ``dtype`` (drawn in double, scaled in ``dtype``)."""
    values = rng.random_sample(shape).astype(dtype)
    return values * dtype.type(high - low) + dtype.type(low)


def _normal(rng: np.random.RandomState, shape: tuple[int, ...], dtype: np.dtype, mean: float,
            scale: float) -> np.ndarray:
    """Normal values of ``dtype`` (drawn in double, scaled in ``dtype``)."""
    values = rng.standard_normal(shape).astype(dtype)
    return values * dtype.type(scale) + dtype.type(mean)


@kernels.register("RandomUniform", since=1)
def random_uniform(node: NodeInfo) -> Callable[..., tuple]:
    """RandomUniform 1+: tensor of ``shape`` uniform in [low, high), type ``dtype``."""
    dtype = _dtype_attr(node, _float_types(node), 1)
    shape = _shape_attr(node)
    low, high = float(node.attrs.get("low", 0.0)), float(node.attrs.get("high", 1.0))
    rng = node_generator(node)

    def compute() -> tuple:
        node.check_output_size(shape, np.float64)  # drawn in double
        return (_uniform(rng, shape, dtype, low, high),)

    return compute


@kernels.register("RandomNormal", since=1)
def random_normal(node: NodeInfo) -> Callable[..., tuple]:
    """RandomNormal 1+: tensor of ``shape`` from N(mean, scale²), type ``dtype``."""
    dtype = _dtype_attr(node, _float_types(node), 1)
    shape = _shape_attr(node)
    mean, scale = float(node.attrs.get("mean", 0.0)), float(node.attrs.get("scale", 1.0))
    rng = node_generator(node)

    def compute() -> tuple:
        node.check_output_size(shape, np.float64)  # drawn in double
        return (_normal(rng, shape, dtype, mean, scale),)

    return compute


@kernels.register("RandomUniformLike", since=1)
def random_uniform_like(node: NodeInfo) -> Callable[..., tuple]:
    """RandomUniformLike 1+: uniform values in [low, high) shaped like the input."""
    dtype = _like_dtype(node, node.input_dtypes[0] if node.input_dtypes else None)
    low, high = float(node.attrs.get("low", 0.0)), float(node.attrs.get("high", 1.0))
    rng = node_generator(node)

    def compute(x: Any) -> tuple:
        out = dtype if dtype is not None else _like_dtype(node, x.dtype)
        return (_uniform(rng, x.shape, out, low, high),)

    return compute


@kernels.register("RandomNormalLike", since=1)
def random_normal_like(node: NodeInfo) -> Callable[..., tuple]:
    """RandomNormalLike 1+: values from N(mean, scale²) shaped like the input."""
    dtype = _like_dtype(node, node.input_dtypes[0] if node.input_dtypes else None)
    mean, scale = float(node.attrs.get("mean", 0.0)), float(node.attrs.get("scale", 1.0))
    rng = node_generator(node)

    def compute(x: Any) -> tuple:
        out = dtype if dtype is not None else _like_dtype(node, x.dtype)
        return (_normal(rng, x.shape, out, mean, scale),)

    return compute


@kernels.register("Multinomial", since=7)
def multinomial(node: NodeInfo) -> Callable[..., tuple]:
    """Multinomial 7+: ``sample_size`` class indices per row of unnormalized log-probabilities.
    """
    dtype = _dtype_attr(node, (6, 7), 6)
    sample_size = int(node.attrs.get("sample_size", 1))
    if sample_size < 0:
        raise ValueError(f"{node.describe()}: sample_size must be >= 0, got {sample_size}")
    rng = node_generator(node)

    def compute(logits: Any) -> tuple:
        if logits.ndim != 2:
            raise ValueError(
                f"{node.describe()}: input must be [batch_size, class_size], got {logits.shape}"
            )
        batch, classes = logits.shape
        node.check_output_size((batch, sample_size), np.float64)  # the draws, in double
        draws = rng.random_sample((batch, sample_size))
        if batch == 0 or sample_size == 0 or classes == 0:
            return (np.zeros((batch, sample_size), dtype),)
        return (_sample_categorical(logits.astype(np.float64), draws).astype(dtype),)

    return compute


def _sample_categorical(logits: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Return, per row, the classes whose cumulative softmax first exceeds each uniform draw."""
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    cdf = np.cumsum(weights, axis=1)
    cdf /= cdf[:, -1:]
    # searchsorted on every row at once: row b's cdf is shifted into [b, b + 1]
    batch, classes = cdf.shape
    offsets = np.arange(batch, dtype=np.float64)[:, None]
    index = np.searchsorted((cdf + offsets).ravel(), (draws + offsets).ravel(), side="right")
    index = index.reshape(draws.shape) - np.arange(batch)[:, None] * classes
    return np.minimum(index, classes - 1)


@kernels.register("Bernoulli", since=15)
def bernoulli(node: NodeInfo) -> Callable[..., tuple]:
    """Bernoulli 15+: 1 with probability p (the input), else 0, as ``dtype`` (default: the
    input's type)."""
    dtype = _dtype_attr(node, _BERNOULLI_TYPES, None)
    rng = node_generator(node)

    def compute(p: Any) -> tuple:
        probabilities = np.asarray(p, dtype=np.float64)
        if probabilities.size and not (np.all(probabilities >= 0) and np.all(probabilities <= 1)):
            raise ValueError(f"{node.describe()}: input probabilities must lie in [0, 1]")
        values = rng.binomial(1, probabilities) if probabilities.size else probabilities
        return (np.asarray(values).astype(dtype if dtype is not None else p.dtype),)

    return compute
