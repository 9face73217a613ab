"""CPU kernels: com.microsoft Tokenizer (1), ONNX Runtime's contrib op that splits each string
into tokens along a new last axis, by RE2 ``tokenexp`` matches, by RE2 ``separators`` or into
characters; skl2onnx's CountVectorizer/TfidfVectorizer conversions put it before
TfIdfVectorizer.
"""

from __future__ import annotations

import re

import numpy as np
from ort.ep import KernelTable, NodeInfo

from .contrib_schema import (REQUIRED, declare, dims, elem_type, tensor_type,
                             typed)
from .re2_syntax import re2_to_python

kernels = KernelTable()

SCHEMAS = [
    declare("Tokenizer", inputs=1,
            attributes={"mark": REQUIRED, "pad_value": REQUIRED, "mincharnum": REQUIRED,
                        "separators": None, "tokenexp": None},
            infer=typed(lambda t, a: tensor_type(elem_type(t[0]), dims(t[0]) + [None]))),
]


def _tokenizer_split(node: NodeInfo):
    """The function splitting one string into raw tokens, by ``tokenexp`` matches, by
    ``separators`` (RE2 patterns), or into characters (``separators == ['']``)."""
    tokenexp = str(node.attrs.get("tokenexp") or "")
    separators = [str(s) for s in node.attrs.get("separators") or []]
    if tokenexp and separators:
        raise ValueError(f"{node.describe()}: set either 'tokenexp' or 'separators', not both")
    if tokenexp:
        pattern = re2_to_python(tokenexp)
        return lambda text: [m.group(0) for m in pattern.finditer(text) if m.group(0)]
    if not separators:
        raise ValueError(f"{node.describe()}: one of 'tokenexp' or 'separators' is required")
    if separators == [""]:
        return list
    if "" in separators:
        raise ValueError(f"{node.describe()}: the empty separator (character mode) must be "
                         "the only separator")
    combined = re.compile("|".join(f"(?:{re2_to_python(s).pattern})" for s in separators))
    return lambda text: [piece for piece in combined.split(text) if piece]


@kernels.register("Tokenizer", 1, domain="com.microsoft")
def tokenizer(node: NodeInfo):
    """com.microsoft:Tokenizer 1: split each string of a [C] or [N, C] tensor into tokens
    along a new last axis, dropping tokens shorter than ``mincharnum``, framing each row with
    \\x02/\\x03 when ``mark`` is set and padding with ``pad_value`` (ONNX Runtime's contrib op,
    which skl2onnx's CountVectorizer/TfidfVectorizer conversions use)."""
    for required in ("mark", "pad_value", "mincharnum"):
        if required not in node.attrs:
            raise ValueError(f"{node.describe()}: attribute '{required}' is required")
    mark = bool(node.attrs["mark"])
    pad = str(node.attrs["pad_value"])
    mincharnum = int(node.attrs["mincharnum"])
    if mincharnum < 1:
        raise ValueError(f"{node.describe()}: mincharnum must be positive, got {mincharnum}")
    split = _tokenizer_split(node)

    def compute(x):
        if x.ndim not in (1, 2):
            raise ValueError(f"{node.describe()}: input must be [C] or [N, C], got {x.shape}")
        rows = []
        for text in x.reshape(-1).tolist():
            tokens = [t for t in split(text) if len(t) >= mincharnum]
            rows.append(["\x02", *tokens, "\x03"] if mark else tokens)
        width = max((len(r) for r in rows), default=0)
        out = np.full((len(rows), width), pad, dtype=object)
        for i, tokens in enumerate(rows):
            out[i, :len(tokens)] = tokens
        return (out.reshape(x.shape + (width,)),)

    return compute
