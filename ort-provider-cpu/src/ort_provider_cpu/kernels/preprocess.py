"""CPU kernels: image preprocessing, the ops ONNX added to decode and frame input images
(ImageDecoder, CenterCropPad).

ImageDecoder decodes with Pillow, an optional dependency imported only when a model uses it.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np

from ort.ep import KernelTable, NodeInfo

from .kernel_args import host_ints, normalize_axes
from .nn_common import str_attr

kernels = KernelTable()


# --------------------------------------------------------------------------------------------
# CenterCropPad
# --------------------------------------------------------------------------------------------


@kernels.register("CenterCropPad", since=18, host_inputs=(1,))
def center_crop_pad(node: NodeInfo) -> Callable[..., tuple]:
    """CenterCropPad 18+: crop or zero-pad ``axes`` symmetrically to ``shape`` (the odd
    element cropped or padded at the end)."""
    xp = node.xp
    axes_attr = node.attrs.get("axes")

    def compute(x: Any, shape: Any) -> tuple:
        target = host_ints(shape)
        axes = normalize_axes(node, axes_attr, x.ndim) if axes_attr else tuple(range(x.ndim))
        if len(target) != len(axes) or min(target, default=0) < 0:
            raise ValueError(f"{node.describe()}: shape {target} does not fit axes {axes}")
        out_shape = list(x.shape)
        source = [slice(None)] * x.ndim
        dest = [slice(None)] * x.ndim
        for axis, size in zip(axes, target):
            dim = x.shape[axis]
            out_shape[axis] = size
            if size < dim:
                start = (dim - size) // 2
                source[axis] = slice(start, start + size)
            elif size > dim:
                start = (size - dim) // 2
                dest[axis] = slice(start, start + dim)
        node.check_output_size(out_shape, x.dtype)
        if x.dtype == object:
            y = np.full(out_shape, "", dtype=object)
        else:
            y = xp.zeros(out_shape, dtype=x.dtype)
        y[tuple(dest)] = x[tuple(source)]
        return (y,)

    return compute


# --------------------------------------------------------------------------------------------
# ImageDecoder
# --------------------------------------------------------------------------------------------

_PIXEL_FORMATS = {"RGB": 3, "BGR": 3, "Grayscale": 1}


@kernels.register("ImageDecoder", since=20, host_inputs=(0,))
def image_decoder(node: NodeInfo) -> Callable[..., tuple]:
    """ImageDecoder 20+: decode an encoded image (BMP, JPEG, JPEG2000, TIFF, PNG, WebP, PNM)
    with Pillow to (H, W, C) uint8 RGB, BGR or Grayscale; an undecodable stream gives an
    empty (0, 0, C) image."""
    xp = node.xp
    pixel_format = str_attr(node, "pixel_format", "RGB")
    if pixel_format not in _PIXEL_FORMATS:
        raise ValueError(
            f"{node.describe()}: pixel_format must be one of {tuple(_PIXEL_FORMATS)}, "
            f"got {pixel_format!r}"
        )
    try:
        import PIL.Image  # noqa: PLC0415 (optional dependency, imported only when needed)
    except ImportError as exc:
        raise ImportError(
            f"{node.describe()} decodes images with Pillow, which is not installed: "
            "pip install pillow"
        ) from exc
    channels = _PIXEL_FORMATS[pixel_format]
    failures = (OSError, ValueError, SyntaxError, EOFError, PIL.Image.DecompressionBombError)

    def compute(encoded: Any) -> tuple:
        stream = io.BytesIO(np.asarray(encoded, dtype=np.uint8).tobytes())
        try:
            with PIL.Image.open(stream) as img:
                if pixel_format == "Grayscale":
                    image = np.asarray(img.convert("L"))[:, :, None]
                else:
                    image = np.asarray(img.convert("RGB"))
        except failures:
            image = np.zeros((0, 0, channels), dtype=np.uint8)
        if pixel_format == "BGR":
            image = image[:, :, ::-1]
        return (xp.asarray(np.asarray(image, dtype=np.uint8, order="C")),)

    return compute
