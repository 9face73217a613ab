"""CPU kernels: onnxruntime's GatherBlockQuantized (a Gather of block-quantized data), and the
bit unpacking the block-quantized ops of :mod:`.contrib_nbits` share.

Semantics follow onnxruntime's contrib operator spec (docs/ContribOperators.md) and its CPU
kernel's observed behaviour; :mod:`.contrib_nbits` adds this module's kernels and schemas to its
own tables.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ort.ep import DeclaredSchema, KernelTable

kernels = KernelTable()

#: The contrib ops of this module, declared to the core.
SCHEMAS: list[DeclaredSchema] = []

MS = "com.microsoft"


# --------------------------------------------------------------------------------------------
# bit unpacking shared by the ops of this family
# --------------------------------------------------------------------------------------------


def unpack_bits(xp: Any, packed: Any, bits: int, count: int | None = None) -> Any:
    """The ``bits``-wide codes packed low-first in the uint8 last axis of ``packed``: shape
    ``packed.shape[:-1] + (packed.shape[-1] * 8 // bits,)`` (uint8), cut to ``count`` codes
    along that axis when given."""
    packed = xp.asarray(packed, dtype=np.uint8)
    if bits == 8:
        codes = packed
    else:
        shifts = xp.arange(0, 8, bits, dtype=np.uint8)
        codes = (packed[..., None] >> shifts) & np.uint8((1 << bits) - 1)
        codes = codes.reshape(packed.shape[:-1] + (packed.shape[-1] * (8 // bits),))
    return codes if count is None else codes[..., :count]
