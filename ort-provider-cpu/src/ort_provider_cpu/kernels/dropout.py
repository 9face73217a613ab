"""CPU kernels: Dropout, the nn family's regularizer: the identity at inference, random
dropping of units (scaled by 1 / (1 - ratio)) when opset 12+ asks for training mode."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ort.ep import KernelTable, NodeInfo

kernels = KernelTable()


@kernels.register("Dropout", since=1, until=11)
def dropout_legacy(node: NodeInfo) -> Callable[..., tuple]:
    """Dropout 1-11: ``ratio`` is an attribute; ort runs it in inference mode (identity).

    Opsets 1 and 6 say ``is_test=0`` means training, but converted inference models carry that
    default everywhere, so (like onnxruntime) no units are dropped. The mask is all ones, typed
    like the input before opset 10 and bool from 10 on.
    """
    xp = node.xp
    bool_mask = node.since_version >= 10
    want_mask = node.has_output(1)

    def compute(x: Any) -> tuple:
        y = xp.array(x, copy=True)
        if node.num_outputs < 2:
            return (y,)
        mask_dtype = np.dtype(bool) if bool_mask else x.dtype
        mask = xp.ones(x.shape, dtype=mask_dtype) if want_mask else None
        return (y, mask)

    return compute


@kernels.register("Dropout", since=12, host_inputs=(1, 2))
def dropout(node: NodeInfo) -> Callable[..., tuple]:
    """Dropout 12+: identity unless the ``training_mode`` input is true, then random dropout.

    In training mode an element is kept where a uniform draw in [0, 1) is ``>= ratio`` and
    scaled by ``1 / (1 - ratio)``. The draws come from the node's host generator
    (``RandomState(seed)`` when seeded, the generator onnx's reference and test data use, so a
    seeded node's first run reproduces them); later runs continue the stream.
    """
    from .random_ops import node_generator

    xp = node.xp
    rng = node_generator(node)
    want_mask = node.has_output(1)

    def compute(x: Any, ratio: Any = None, training_mode: Any = None) -> tuple:
        training = training_mode is not None and bool(training_mode)
        rate = np.asarray(0.5 if ratio is None else ratio)
        if not training or float(rate) == 0.0:
            y = xp.array(x, copy=True)
            mask = xp.ones(x.shape, dtype=bool) if want_mask else None
        else:
            if not 0.0 <= float(rate) < 1.0:
                raise ValueError(f"{node.describe()}: ratio must be in [0, 1), got {rate}")
            keep = xp.asarray(rng.random_sample(x.shape) >= float(rate))
            # the scale is computed in the ratio's type, as the reference does
            scale = (rate.dtype.type(1) / (rate.dtype.type(1) - rate)).astype(x.dtype)
            y = (x * keep * scale).astype(x.dtype, copy=False)
            mask = keep if want_mask else None
        return (y, mask) if node.num_outputs > 1 else (y,)

    return compute
