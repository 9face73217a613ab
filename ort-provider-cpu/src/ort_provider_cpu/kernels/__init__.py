"""The CPU provider's numpy kernels, one module per op family.

Each module defines ``kernels``, a :class:`ort.ep.KernelTable`; :data:`ALL_KERNELS` joins
them in a fixed order. Kernels written against ``node.xp`` work for numpy and cupy alike, which is
how the CUDA provider reuses them. Some modules hold helpers and register no kernels:
``erf_gelu`` (erf and GELU numerics), ``windows`` (sliding-window geometry and buffers of Conv,
ConvTranspose and pooling), ``nn_common``, ``kernel_args`` and ``float_work`` (dtype, axis and
attribute helpers), ``re2_syntax`` (RE2 patterns), ``ml_common`` and ``ml_forest``
(ai.onnx.ml), ``contrib_schema`` (declaring contrib-op schemas). Modules with contrib ops list
their schemas in ``SCHEMAS``; :data:`ALL_SCHEMAS` joins them.
"""

from __future__ import annotations

from ort.ep import DeclaredSchema, KernelTable

from . import (
    activations,
    arithmetic,
    attention,
    axis_ops,
    cast,
    contrib_attention,
    contrib_extra,
    contrib_fusions,
    contrib_generation,
    contrib_misc,
    contrib_nbits,
    contrib_nchwc,
    contrib_qlinear,
    contrib_quant,
    control,
    conv,
    conv_transpose,
    detection,
    dropout,
    fused,
    generators,
    gradient,
    indexing,
    layout,
    linalg,
    linear_attention,
    loss,
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
    random_ops,
    reduce,
    resize,
    rnn,
    sampling,
    sequence,
    shape,
    softmax,
    spectral,
    strings,
    swish,
    tfidf,
    tokenizer,
    training,
    unary_math,
)

__all__ = ["ALL_KERNELS", "ALL_SCHEMAS", "FAMILIES"]

#: The op-family modules, in registration order.
FAMILIES = (
    arithmetic,
    unary_math,
    activations,
    linalg,
    axis_ops,
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
    spectral,
    random_ops,
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
    contrib_fusions,
    contrib_attention,
    contrib_quant,
    contrib_qlinear,
    contrib_nbits,
    contrib_misc,
    contrib_extra,
    contrib_generation,
    contrib_nchwc,
)

ALL_KERNELS = KernelTable()
#: The schemas of the contrib ops the families run (modules list theirs in ``SCHEMAS``).
ALL_SCHEMAS: list[DeclaredSchema] = []
for _family in FAMILIES:
    ALL_KERNELS.extend(_family.kernels)
    ALL_SCHEMAS.extend(getattr(_family, "SCHEMAS", ()))
