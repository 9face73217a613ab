"""The CPU provider's numpy kernels, one module per op family.

Each module defines ``kernels``, a :class:`ort.ep.KernelTable`; :data:`ALL_KERNELS` joins
them in a fixed order. Kernels written against ``node.xp`` work for numpy and cupy alike, which is
how the CUDA provider reuses them.
"""

from __future__ import annotations

from ort.ep import KernelTable

from . import (
    activations,
    arithmetic,
    attention,
    axis_ops,
    cast,
    control,
    fused,
    gradient,
    image,
    indexing,
    linalg,
    loss,
    ml,
    ml_maps,
    nn,
    quantize,
    random_ops,
    reduce,
    rnn,
    sequence,
    spectral,
    strings,
    tensor,
    training,
    unary_math,
)

__all__ = ["ALL_KERNELS", "FAMILIES"]

#: The op-family modules, in registration order.
FAMILIES = (
    arithmetic,
    unary_math,
    activations,
    linalg,
    axis_ops,
    reduce,
    cast,
    nn,
    tensor,
    indexing,
    attention,
    loss,
    image,
    quantize,
    rnn,
    spectral,
    random_ops,
    training,
    gradient,
    strings,
    ml,
    ml_maps,
    sequence,
    control,
    fused,
)

ALL_KERNELS = KernelTable()
for _family in FAMILIES:
    ALL_KERNELS.extend(_family.kernels)
