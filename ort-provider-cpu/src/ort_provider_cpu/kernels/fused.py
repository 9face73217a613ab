"""CPU kernels: fused ops the optimizer produces (ONNX Runtime's com.microsoft contrib ops).

FusedConv and FusedGemm run the Conv/Gemm kernels of this provider (through a copy of the
node's :class:`NodeInfo` as the plain op) and apply the activation in place on the fresh result.
Gelu, FastGelu, BiasGelu, LayerNormalization and SkipLayerNormalization follow
ONNX Runtime's contrib operator specs (docs/ContribOperators.md); contrib ops have no ONNX
schema, so every attribute default is spelled out here. Reduced precision inputs are computed
in float32 and rounded once.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from ort.ep import KernelTable, NodeInfo

from .contrib_schema import (FLOAT, declare, dims, like_input, like_onnx,
                             tensor_type, typed)
from .conv import conv_kernel
from .erf_gelu import erf, fast_gelu_inplace, gelu_inplace, gelu_loops
from .float_work import LOW_PRECISION, work_dtype
from .linalg import gemm
from .normalization import (compiled_skip_norm, layer_normalization,
                            normalize_rows)

kernels = KernelTable()

MS = "com.microsoft"
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _as_plain_op(node: NodeInfo, op_type: str, since_version: int, drop: tuple[str, ...],
                 num_inputs: int, defaults: dict[str, Any]) -> NodeInfo:
    """A copy of ``node`` describing the ONNX op ``op_type`` it extends (first ``num_inputs``
    inputs, the fused attributes ``drop`` removed, ONNX schema defaults filled in)."""
    attrs = dict(defaults)
    attrs.update({k: v for k, v in node.attrs.items() if k not in drop})
    return dataclasses.replace(
        node, op_type=op_type, domain="", since_version=since_version, opset=since_version,
        attrs=attrs, input_names=node.input_names[:num_inputs],
        input_dtypes=node.input_dtypes[:num_inputs], input_shapes=node.input_shapes[:num_inputs],
        const_inputs=node.const_inputs[:num_inputs])


# --------------------------------------------------------------------------------------------
# activations applied in place
# --------------------------------------------------------------------------------------------


def _sigmoid_inplace(xp: Any, y: Any) -> None:
    """y <- 1 / (1 + exp(-y)) without overflow."""
    negative = y < 0
    e = xp.exp(-xp.abs(y))
    xp.divide(1, 1 + e, out=y)
    y[negative] *= e[negative]


def _activation(node: NodeInfo, name: str, params: dict[str, float]) -> Callable[[Any], None]:
    """An in-place activation of a fresh float array (ONNX semantics of ``name``)."""
    xp = node.xp
    get = lambda key, default: float(params.get(key, default))  # noqa: E731
    if name in ("", "Identity"):
        return lambda y: None
    if name == "Relu":
        return lambda y: xp.maximum(y, 0, out=y)
    if name == "Tanh":
        return lambda y: xp.tanh(y, out=y)
    if name == "Sigmoid":
        return lambda y: _sigmoid_inplace(xp, y)
    if name == "LeakyRelu":
        alpha = get("alpha", 0.01)
        return lambda y: xp.copyto(y, y * alpha, where=y < 0)
    if name == "Clip":
        low, high = get("min", -_FLOAT32_MAX), get("max", _FLOAT32_MAX)
        return lambda y: xp.clip(y, low, high, out=y)
    if name == "HardSigmoid":
        alpha, beta = get("alpha", 0.2), get("beta", 0.5)

        def hard_sigmoid(y: Any) -> None:
            y *= alpha
            y += beta
            xp.clip(y, 0, 1, out=y)

        return hard_sigmoid
    if name == "Elu":
        alpha = get("alpha", 1.0)
        return lambda y: xp.copyto(y, alpha * xp.expm1(xp.minimum(y, 0)), where=y < 0)
    if name == "Selu":
        alpha = get("alpha", 1.67326319217681884765625)
        gamma = get("gamma", 1.05070102214813232421875)

        def selu(y: Any) -> None:
            xp.copyto(y, alpha * xp.expm1(xp.minimum(y, 0)), where=y <= 0)
            y *= gamma

        return selu
    if name == "HardSwish":  # onnxruntime fuses it into its NCHWc Conv

        def hard_swish(y: Any) -> None:
            gate = y / 6 + 0.5
            xp.clip(gate, 0, 1, out=gate)
            y *= gate

        return hard_swish
    if name == "Softsign":
        return lambda y: xp.divide(y, 1 + xp.abs(y), out=y)
    if name == "Softplus":
        return lambda y: xp.copyto(y, xp.maximum(y, 0) + xp.log1p(xp.exp(-xp.abs(y))))
    if name == "ThresholdedRelu":
        alpha = get("alpha", 1.0)
        return lambda y: xp.copyto(y, 0, where=y <= alpha)
    raise ValueError(f"{node.describe()}: unsupported activation {name!r}")


def _fresh_float(result: Any, dtype: np.dtype) -> tuple[Any, Callable[[Any], Any]]:
    """(a writable array to activate in place, the function giving the output back)."""
    if result.dtype in LOW_PRECISION:
        return result.astype(np.float32), lambda y: y.astype(dtype)
    if not result.flags.writeable:
        result = result.copy()
    return result, lambda y: y


# --------------------------------------------------------------------------------------------
# FusedConv, FusedGemm
# --------------------------------------------------------------------------------------------

_CONV_ACTIVATION_PARAMS = {
    "LeakyRelu": ("alpha",), "Clip": ("min", "max"), "HardSigmoid": ("alpha", "beta"),
    "Relu": (), "Tanh": (), "Sigmoid": (), "Identity": (), "": (), "HardSwish": (),
}


def conv_activation(node: NodeInfo) -> tuple[str, dict[str, float]]:
    """FusedConv's activation name and its parameters (from ``activation_params``),
    validated; shared with the CUDA provider's FusedConv."""
    name = str(node.attrs.get("activation", ""))
    if name not in _CONV_ACTIVATION_PARAMS:
        raise ValueError(f"{node.describe()}: unsupported activation {name!r}; FusedConv takes "
                         f"{sorted(n for n in _CONV_ACTIVATION_PARAMS if n)}")
    keys = _CONV_ACTIVATION_PARAMS[name]
    values = list(node.attrs.get("activation_params", []) or [])
    if values and len(values) != len(keys):
        raise ValueError(
            f"{node.describe()}: activation {name} takes activation_params {list(keys)}, "
            f"got {values}")
    return name, dict(zip(keys, values))


def gemm_activation(node: NodeInfo) -> tuple[str, dict[str, float]]:
    """FusedGemm's activation name and its parameters (``activation_alpha``/``_beta``/
    ``_gamma``, or the older ``leaky_relu_alpha``); shared with the CUDA provider."""
    name = str(node.attrs.get("activation", ""))
    params: dict[str, float] = {}
    for key in ("alpha", "beta", "gamma"):
        if f"activation_{key}" in node.attrs:
            params[key] = float(node.attrs[f"activation_{key}"])
    if name == "LeakyRelu" and "alpha" not in params and "leaky_relu_alpha" in node.attrs:
        params["alpha"] = float(node.attrs["leaky_relu_alpha"])  # older FusedGemm models
    return name, params


@kernels.register("FusedConv", since=1, domain=MS)
def fused_conv(node: NodeInfo):
    """FusedConv 1+: activation(Conv(X, W, B) + Z); ``activation`` is Relu, LeakyRelu,
    Sigmoid, Tanh, Clip or HardSigmoid, its parameters listed in ``activation_params``."""
    name, params = conv_activation(node)
    activate = _activation(node, name, params)
    plain = _as_plain_op(node, "Conv", 11, ("activation", "activation_params"), 3,
                         {"auto_pad": "NOTSET", "group": 1})
    convolve = conv_kernel(plain, (name, params))
    if name in ("", "Identity"):
        activate = None

    def compute(x, w, b=None, z=None):
        if x.dtype not in LOW_PRECISION:  # bias, Z and activation applied per chunk
            return (convolve(x, w, b, z, activate),)
        y, finish = _fresh_float(convolve(x, w, b), x.dtype)
        if z is not None:
            y += z.astype(y.dtype, copy=False)
        if activate is not None:
            activate(y)
        return (finish(y),)

    return compute


@kernels.register("FusedGemm", since=1, domain=MS)
def fused_gemm(node: NodeInfo):
    """FusedGemm 1+: activation(alpha * A' B' + beta * C); the activation's attributes are
    ``activation_alpha``, ``activation_beta``, ``activation_gamma``."""
    name, params = gemm_activation(node)
    activate = _activation(node, name, params)
    plain = _as_plain_op(
        node, "Gemm", 13, ("activation", "activation_alpha", "activation_beta",
                           "activation_gamma", "leaky_relu_alpha"), 3,
        {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0})
    multiply = gemm(plain)

    def compute(a, b, c=None):
        y, finish = _fresh_float(multiply(a, b, c)[0], a.dtype)
        activate(y)
        return (finish(y),)

    return compute


# --------------------------------------------------------------------------------------------
# Gelu family
# --------------------------------------------------------------------------------------------


def _gelu_exact(xp: Any, x: Any, loop: Any = None) -> Any:
    """0.5 x (1 + erf(x / sqrt 2)) in x's (float32/float64) type, as a fresh array
    (``loop``: the compiled float32 loop, see :func:`.erf_gelu.gelu_loops`)."""
    if x.dtype == np.float32:
        y = xp.array(x, copy=True)
        gelu_inplace(xp, y, loop)
        return y
    return 0.5 * x * (1 + erf(xp, x * x.dtype.type(1 / math.sqrt(2))))


def _low_precision_wrapper(fn: Callable[..., Any]) -> Callable[..., tuple]:
    """Compute ``fn`` in float32 for float16/bfloat16 operands and round once."""

    def compute(x, *rest):
        if x.dtype in LOW_PRECISION:
            rest = tuple(r.astype(np.float32) if r is not None else None for r in rest)
            return (fn(x.astype(np.float32), *rest).astype(x.dtype),)
        return (fn(x, *rest),)

    return compute


@kernels.register("Gelu", since=1, domain=MS)
def gelu(node: NodeInfo):
    """Gelu 1+: 0.5 x (1 + erf(x / sqrt(2)))."""
    xp = node.xp
    loop = gelu_loops(node)[0]
    return _low_precision_wrapper(lambda x: _gelu_exact(xp, x, loop))


@kernels.register("BiasGelu", since=1, domain=MS)
def bias_gelu(node: NodeInfo):
    """BiasGelu 1+: Gelu(A + B) with B a 1-D bias over A's last axis."""
    xp = node.xp
    loop = gelu_loops(node)[0]

    def fn(a, b):
        y = a + b
        if y.dtype == np.float32:
            gelu_inplace(xp, y, loop)
            return y
        return _gelu_exact(xp, y)

    return _low_precision_wrapper(fn)


@kernels.register("FastGelu", since=1, domain=MS)
def fast_gelu(node: NodeInfo):
    """FastGelu 1+: the tanh approximation 0.5 y (1 + tanh(sqrt(2/pi) (y + 0.044715 y^3))) of
    GELU of y = X + bias (bias optional)."""
    xp = node.xp
    loop = gelu_loops(node)[1]

    def fn(x, bias=None):
        y = x + bias if bias is not None else xp.array(x, copy=True)
        fast_gelu_inplace(xp, y, loop)
        return y

    return _low_precision_wrapper(fn)


# --------------------------------------------------------------------------------------------
# layer normalization
# --------------------------------------------------------------------------------------------


@kernels.register("LayerNormalization", since=1, domain=MS)
def contrib_layer_normalization(node: NodeInfo):
    """LayerNormalization 1+ (contrib, for models below opset 17): normalize over axes
    [axis, rank) and apply scale and bias, as ONNX LayerNormalization-17."""
    plain = _as_plain_op(node, "LayerNormalization", 17, (), 3,
                         {"axis": -1, "epsilon": 1e-5, "stash_type": 1})
    return layer_normalization(plain)


@kernels.register("SkipLayerNormalization", since=1, domain=MS)
def skip_layer_normalization(node: NodeInfo):
    """SkipLayerNormalization 1+: LayerNorm over the last axis of input + skip (+ bias);
    optional outputs mean, inv_std_var (shape [..., 1], float32) and the sum itself."""
    xp = node.xp
    epsilon = float(node.attrs.get("epsilon", 1e-12))
    want_sum = node.has_output(3)
    want_stats = node.has_output(1) or node.has_output(2)
    skip_loop = compiled_skip_norm(node)

    def compute(x, skip, gamma, beta=None, bias=None):
        if x.ndim not in (2, 3):
            raise ValueError(f"{node.describe()}: input must be 2-D or 3-D, got {x.shape}")
        hidden = x.shape[-1]
        for label, value in (("gamma", gamma), ("beta", beta), ("bias", bias)):
            if value is not None and value.shape != (hidden,):
                raise ValueError(f"{node.describe()}: {label} of shape {value.shape} must be "
                                 f"({hidden},)")
        outs = skip_loop(x, skip, gamma, beta, bias, epsilon, False, want_sum) \
            if skip_loop is not None and skip.shape[-2:] == x.shape[-2:] else None
        if outs is not None:  # the compiled row loop
            y, mean, inv_std, summed = outs
            return (y, mean if want_stats else None, inv_std if want_stats else None, summed)
        work = work_dtype(x.dtype)
        total = xp.add(x.astype(work, copy=False), skip.astype(work, copy=False))
        if bias is not None:
            total += bias.astype(work, copy=False)
        summed = total.astype(x.dtype) if want_sum else None  # a copy: total is normalized
        y = xp.ascontiguousarray(total).reshape(-1, hidden)
        mean, inv_std = normalize_rows(xp, y, epsilon)
        y *= gamma.astype(work, copy=False)
        if beta is not None:
            y += beta.astype(work, copy=False)
        stat_shape = x.shape[:-1] + (1,)
        return (y.reshape(x.shape).astype(x.dtype, copy=False),
                mean.reshape(stat_shape).astype(np.float32) if want_stats else None,
                inv_std.reshape(stat_shape).astype(np.float32) if want_stats else None,
                summed)

    return compute


# --------------------------------------------------------------------------------------------
# schemas (contrib ops are unknown to ONNX: see .contrib_schema)
# --------------------------------------------------------------------------------------------

_CONV_ATTRS = {"auto_pad": "NOTSET", "dilations": None, "group": 1, "kernel_shape": None,
               "pads": None, "strides": None}


def _layer_norm_stats(types, attrs):
    """LayerNormalization's mean/inv_std_dev: float, X's shape with normalized axes as 1."""
    shape = dims(types[0])
    if shape is None:
        return tensor_type(FLOAT)
    axis = int(attrs.get("axis", -1))
    axis = axis + len(shape) if axis < 0 else axis
    return tensor_type(FLOAT, shape[:axis] + [1] * (len(shape) - axis))


def _skip_norm_stats(types, attrs):
    """SkipLayerNormalization's mean/inv_std_var: float, the input's shape with the last dim
    1 (rank unknown when the input's is)."""
    shape = dims(types[0])
    return tensor_type(FLOAT, None if shape is None else shape[:-1] + [1])


SCHEMAS = [
    declare("FusedConv", inputs=(2, 4),
            attributes={**_CONV_ATTRS, "activation": "", "activation_params": None},
            infer=like_onnx("Conv", 11, inputs=3, drop=("activation", "activation_params"))),
    declare("FusedGemm", inputs=(2, 3),
            attributes={"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0, "activation": "",
                        "activation_alpha": None, "activation_beta": None,
                        "activation_gamma": None, "leaky_relu_alpha": None},
            infer=like_onnx("Gemm", 13, drop=("activation", "activation_alpha",
                                              "activation_beta", "activation_gamma",
                                              "leaky_relu_alpha"))),
    declare("Gelu", inputs=1, infer=like_input(0)),
    declare("BiasGelu", inputs=2, infer=like_input(0)),
    declare("FastGelu", inputs=(1, 2), infer=like_input(0)),
    declare("LayerNormalization", inputs=(2, 3), outputs=(1, 3),
            attributes={"axis": -1, "epsilon": 1e-5, "stash_type": 1},
            infer=typed(lambda t, a: t[0], _layer_norm_stats, _layer_norm_stats)),
    declare("SkipLayerNormalization", inputs=(3, 5), outputs=(1, 4),
            attributes={"epsilon": 1e-12},
            infer=typed(lambda t, a: t[0], _skip_norm_stats, _skip_norm_stats,
                        lambda t, a: t[0])),
]
