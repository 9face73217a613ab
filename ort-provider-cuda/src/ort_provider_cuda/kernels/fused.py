"""GPU kernels: com.microsoft FusedConv and FusedGemm (the optimizer's Conv/Gemm + activation).

The convolution is this package's GPU Conv, the GEMM the CPU provider's xp-generic Gemm; the
activation differs from the CPU fused kernels, which test ``result.flags.writeable`` (cupy's
flags have no ``writeable``) and compute Sigmoid with a boolean-mask assignment (a host
synchronization on a GPU). Here every activation is one or two elementwise kernels.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from ort.ep import KernelTable, NodeInfo
from ort_provider_cpu.kernels.fused import conv_activation, gemm_activation
from ort_provider_cpu.kernels.linalg import gemm

from .conv import conv_compute

kernels = KernelTable()

MS = "com.microsoft"
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _plain(node: NodeInfo, op_type: str, since: int, drop: tuple[str, ...],
           defaults: dict[str, Any]) -> NodeInfo:
    """A copy of ``node`` describing the ONNX op it extends (three inputs, the fused
    attributes removed, the ONNX schema defaults filled in)."""
    attrs = dict(defaults)
    attrs.update({k: v for k, v in node.attrs.items() if k not in drop})
    return dataclasses.replace(
        node, op_type=op_type, domain="", since_version=since, opset=since, attrs=attrs,
        input_names=node.input_names[:3], input_dtypes=node.input_dtypes[:3],
        input_shapes=node.input_shapes[:3], const_inputs=node.const_inputs[:3])


def activation(xp: Any, name: str, params: dict[str, float],
               where: str) -> Callable[[Any], Any]:
    """ONNX activation ``name`` as a function of a float32/float64 array."""
    get = lambda key, default: float(params.get(key, default))  # noqa: E731
    if name in ("", "Identity"):
        return lambda y: y
    if name == "Relu":
        return lambda y: xp.maximum(y, 0)
    if name == "Tanh":
        return xp.tanh
    if name == "Sigmoid":
        def sigmoid(y: Any) -> Any:
            e = xp.exp(-xp.abs(y))
            return xp.where(y >= 0, 1, e) / (1 + e)

        return sigmoid
    if name == "LeakyRelu":
        alpha = get("alpha", 0.01)
        return lambda y: xp.where(y >= 0, y, y * y.dtype.type(alpha))
    if name == "Clip":
        low, high = get("min", -_FLOAT32_MAX), get("max", _FLOAT32_MAX)
        return lambda y: xp.clip(y, low, high)
    if name == "HardSigmoid":
        alpha, beta = get("alpha", 0.2), get("beta", 0.5)
        return lambda y: xp.clip(y * y.dtype.type(alpha) + y.dtype.type(beta), 0, 1)
    if name == "Elu":
        alpha = get("alpha", 1.0)
        return lambda y: xp.where(y >= 0, y, y.dtype.type(alpha) * xp.expm1(xp.minimum(y, 0)))
    if name == "Selu":
        alpha = get("alpha", 1.67326319217681884765625)
        gamma = get("gamma", 1.05070102214813232421875)
        return lambda y: y.dtype.type(gamma) * xp.where(
            y > 0, y, y.dtype.type(alpha) * xp.expm1(xp.minimum(y, 0)))
    if name == "Softsign":
        return lambda y: y / (1 + xp.abs(y))
    if name == "Softplus":
        return lambda y: xp.maximum(y, 0) + xp.log1p(xp.exp(-xp.abs(y)))
    if name == "ThresholdedRelu":
        alpha = get("alpha", 1.0)
        return lambda y: xp.where(y > alpha, y, 0).astype(y.dtype, copy=False)
    raise ValueError(f"{where}: unsupported activation {name!r}")


def _wide(y: Any) -> Any:
    return y if y.dtype == np.float64 else y.astype(np.float32, copy=False)


@kernels.register("FusedConv", since=1, domain=MS)
def fused_conv(node: NodeInfo):
    """FusedConv 1+: activation(Conv(X, W, B) + Z), activation one of Relu, LeakyRelu,
    Sigmoid, Tanh, Clip, HardSigmoid (parameters in ``activation_params``)."""
    name, params = conv_activation(node)
    activate = activation(node.xp, name, params, node.describe())
    convolve = conv_compute(_plain(node, "Conv", 11, ("activation", "activation_params"),
                                   {"auto_pad": "NOTSET", "group": 1}))

    def compute(x: Any, w: Any, b: Any = None, z: Any = None) -> tuple:
        y = _wide(convolve(x, w, b))
        if z is not None:
            y = y + z.astype(y.dtype, copy=False)
        return (activate(y).astype(x.dtype, copy=False),)

    return compute


@kernels.register("FusedGemm", since=1, domain=MS)
def fused_gemm(node: NodeInfo):
    """FusedGemm 1+: activation(alpha * A' B' + beta * C), the activation's parameters in
    ``activation_alpha``/``activation_beta``/``activation_gamma``."""
    name, params = gemm_activation(node)
    activate = activation(node.xp, name, params, node.describe())
    multiply = gemm(_plain(node, "Gemm", 13,
                           ("activation", "activation_alpha", "activation_beta",
                            "activation_gamma", "leaky_relu_alpha"),
                           {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0}))

    def compute(a: Any, b: Any, c: Any = None) -> tuple:
        return (activate(_wide(multiply(a, b, c)[0])).astype(a.dtype, copy=False),)

    return compute
