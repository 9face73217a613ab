"""CPU kernels: onnxruntime's com.microsoft QuantizeLinear and DequantizeLinear.

They are the ONNX operators of the same name as onnxruntime's CPU provider runs them in its own
domain (from before ONNX had per-axis quantization): ``axis`` (default 1) selects per-axis
scales and zero points, there is no ``block_size``, the quantized types are int8, uint8, int16,
uint16, int4 and uint4 (and int32 for DequantizeLinear), the float type is float (float16 in
the schema). The kernels are :mod:`.quantize`'s, run as ONNX's opset-21 versions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from onnx import TensorProto, TypeProto
from ort.ep import DeclaredSchema, KernelTable, NodeInfo

from .contrib_schema import MS, declare, dims, elem_type, tensor_type, typed
from .quantize import _dequantize_factory, _quantize_factory

kernels = KernelTable()


def _as_onnx(node: NodeInfo) -> NodeInfo:
    """A copy of ``node`` as the ONNX opset-21 op (axis defaulted to 1, per-axis allowed)."""
    axis = node.attrs.get("axis")
    return dataclasses.replace(node, domain="", since_version=21, opset=21,
                               attrs={"axis": 1 if axis is None else int(axis)})


@kernels.register("QuantizeLinear", since=1, domain=MS)
def quantize_linear(node: NodeInfo):
    """com.microsoft QuantizeLinear 1+: ``y = saturate(rint(x / y_scale) + y_zero_point)``,
    per tensor or per ``axis`` (default 1); y has the zero point's type (uint8 without)."""
    return _quantize_factory(_as_onnx(node))


@kernels.register("DequantizeLinear", since=1, domain=MS)
def dequantize_linear(node: NodeInfo):
    """com.microsoft DequantizeLinear 1+: ``y = (x - x_zero_point) * x_scale``, per tensor or
    per ``axis`` (default 1); y has the scale's type."""
    return _dequantize_factory(_as_onnx(node))


def _quantized(types: Sequence[TypeProto | None], attrs: Mapping[str, Any]) -> TypeProto | None:
    """QuantizeLinear's y: x's shape, the zero point's type (uint8 when omitted)."""
    zp = elem_type(types[2]) if len(types) > 2 else None
    return tensor_type(zp or TensorProto.UINT8, dims(types[0]))


def _dequantized(types: Sequence[TypeProto | None], attrs: Mapping[str, Any]
                 ) -> TypeProto | None:
    """DequantizeLinear's y: x's shape, the scale's type."""
    return tensor_type(elem_type(types[1]), dims(types[0]))


#: The contrib ops of this module, declared to the core.
SCHEMAS: list[DeclaredSchema] = [
    declare("QuantizeLinear", inputs=(2, 3), attributes={"axis": None},
            infer=typed(_quantized)),
    declare("DequantizeLinear", inputs=(2, 3), attributes={"axis": None},
            infer=typed(_dequantized)),
]
