"""The CPU provider's numpy kernels, one module per op family.

Each module defines ``kernels``, a :class:`ort.ep.KernelTable`; :data:`ALL_KERNELS` joins
them in a fixed order. Kernels written against ``node.xp`` work for numpy and cupy alike, which is
how the CUDA provider reuses them. Two modules hold helpers and register no kernels: ``windows``
(sliding-window geometry and buffers of Conv, ConvTranspose and pooling) and ``nn_common``
(dtype, axis and attribute helpers of the nn and image families).
"""

from __future__ import annotations

from ort.ep import KernelTable

from . import (
    attention,
    cast,
    control,
    conv,
    conv_transpose,
    detection,
    dropout,
    elementwise,
    fused,
    generators,
    gradient,
    indexing,
    layout,
    linear_attention,
    loss,
    math,
    ml_encoders,
    ml_features,
    ml_linear,
    ml_maps,
    ml_svm,
    ml_trees,
    norm_functions,
    normalization,
    pooling,
    preprocess,
    quantize,
    random,
    reduce,
    resize,
    rnn,
    sampling,
    sequence,
    shape,
    signal,
    softmax,
    strings,
    swish,
    tfidf,
    tokenizer,
    training,
)

__all__ = ["ALL_KERNELS", "FAMILIES"]

#: The op-family modules, in registration order.
FAMILIES = (
    elementwise,
    math,
    reduce,
    cast,
    conv,
    conv_transpose,
    pooling,
    normalization,
    softmax,
    dropout,
    shape,
    layout,
    generators,
    indexing,
    attention,
    linear_attention,
    norm_functions,
    swish,
    loss,
    resize,
    sampling,
    detection,
    preprocess,
    quantize,
    rnn,
    signal,
    random,
    training,
    gradient,
    strings,
    tokenizer,
    tfidf,
    ml_features,
    ml_encoders,
    ml_linear,
    ml_svm,
    ml_trees,
    ml_maps,
    sequence,
    control,
    fused,
)

ALL_KERNELS = KernelTable()
for _family in FAMILIES:
    ALL_KERNELS.extend(_family.kernels)
