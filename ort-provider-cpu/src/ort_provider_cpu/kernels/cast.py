"""CPU kernels: Cast and CastLike between all numeric types (bfloat16, float8 and int4 via
ml_dtypes), bool and strings (numpy object arrays of ``str``)."""

from __future__ import annotations

import re
from collections.abc import Callable

import ml_dtypes
import numpy as np
from onnx import TensorProto

from ort.ep import KernelTable, NodeInfo
from ort.ep import np_dtype_of

kernels = KernelTable()

_STRING = np.dtype(object)
_FLOAT8 = frozenset(np.dtype(t) for t in (
    ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e4m3fnuz,
    ml_dtypes.float8_e5m2, ml_dtypes.float8_e5m2fnuz,
))
_E8M0 = np.dtype(ml_dtypes.float8_e8m0fnu)
_ROUND_MODES = ("up", "down", "nearest")
_NATIVE_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_FLOAT_PREFIX = re.compile(
    r"\s*[+-]?(?:inf(?:inity)?|nan|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)", re.IGNORECASE
)
_INT_PREFIX = re.compile(r"\s*[+-]?\d+")


# ---------------------------------------------------------------------------------------
# strings
# ---------------------------------------------------------------------------------------

def _format_float(value: float) -> str:
    """Format a float as onnxruntime does: ``%.8g``, ``NaN``, ``INF``, ``-INF``."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "INF" if value > 0 else "-INF"
    return "%.8g" % value


def _to_strings(x) -> np.ndarray:
    """Return an object array of the string forms of a numeric array."""
    if x.dtype == np.bool_:
        values = ["1" if v else "0" for v in x.ravel().tolist()]
    elif x.dtype.kind in "iu":
        values = [str(v) for v in x.ravel().tolist()]
    else:
        wide = x if x.dtype in _NATIVE_FLOATS else x.astype(np.float32)
        values = [_format_float(v) for v in wide.ravel().tolist()]
    out = np.empty(x.shape, dtype=object)
    out.reshape(-1)[:] = values
    return out


def _text(value) -> str:
    """Return a string tensor element as str."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def parse_float(text) -> float:
    """Parse a string like C ``strtod``: decimal, inf/nan, hex, or the longest numeric prefix."""
    text = _text(text)
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return float.fromhex(text.strip())
    except ValueError:
        pass
    match = _FLOAT_PREFIX.match(text)
    if match is None:
        raise ValueError(f"Cast: cannot parse {text!r} as a number")
    return float(match.group())


def parse_int(text) -> int:
    """Parse a string like C ``strtoll``: an optional sign and the leading digits."""
    text = _text(text)
    try:
        return int(text)
    except ValueError:
        match = _INT_PREFIX.match(text)
        if match is None:
            raise ValueError(f"Cast: cannot parse {text!r} as an integer") from None
        return int(match.group())


def _from_strings(x, dst: np.dtype, saturate: bool, round_mode: str = "up") -> np.ndarray:
    """Parse an object array of strings into ``dst``."""
    items = x.ravel().tolist()
    if dst == np.bool_:
        return np.array([parse_int(s) != 0 for s in items], dtype=np.bool_).reshape(x.shape)
    if dst.kind in "iu":
        return np.array([parse_int(s) for s in items], dtype=np.int64 if dst.kind == "i" else
                        np.uint64).reshape(x.shape).astype(dst)
    values = np.array([parse_float(s) for s in items], dtype=np.float64).reshape(x.shape)
    return _numeric_cast(values, dst, saturate, round_mode)


# ---------------------------------------------------------------------------------------
# numbers
# ---------------------------------------------------------------------------------------

def _saturate_float8(x, dst: np.dtype):
    """Clip x (infinities included, NaN kept) to the finite range of a float8 type, as
    onnxruntime saturates (for e5m2 too)."""
    limit = float(ml_dtypes.finfo(dst).max)
    return np.clip(x, -limit, limit)


def to_float8e8m0(x, saturate: bool = True, round_mode: str = "up") -> np.ndarray:
    """Return x as float8e8m0 (a power of two 2**(e - 127), 0xFF = NaN), the exponent of |x|
    rounded by ``round_mode``: ``up`` (away from zero), ``down`` (toward zero) or
    ``nearest`` (ties up). Out of range (and infinity, and 0) saturates to the extreme
    exponents with ``saturate``, else gives NaN; NaN stays NaN. The sign is ignored."""
    wide = np.abs(np.asarray(x).astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        mantissa, exponent = np.frexp(wide)  # wide = mantissa * 2**exponent, 0.5 <= m < 1
    biased = exponent.astype(np.int64) + 126  # floor(log2(wide)) + 127
    if round_mode == "up":
        biased += mantissa > 0.5
    elif round_mode == "nearest":
        biased += mantissa >= 0.75
    finite = np.isfinite(wide)
    if saturate:
        code = np.where(wide == 0, 0, np.clip(biased, 0, 254))
        code = np.where(np.isposinf(wide), 254, code)
    else:
        code = np.where((biased < 0) | (biased > 254) | (wide == 0) | ~finite, 255, biased)
    code = np.where(np.isnan(wide), 255, code)
    return code.astype(np.uint8).view(_E8M0)


def _numeric_cast(x, dst: np.dtype, saturate: bool, round_mode: str = "up"):
    """Cast a numeric array to numeric ``dst`` (float8 saturating when asked)."""
    if x.dtype == dst:
        return x.copy()
    if dst == _E8M0:
        return to_float8e8m0(x, saturate, round_mode)
    if saturate and dst in _FLOAT8 and x.dtype != np.bool_:
        x = _saturate_float8(x, dst)
    return x.astype(dst)


def _cast_function(dst: np.dtype, saturate: bool, round_mode: str = "up") -> Callable:
    """Return fn(x) casting any input (numeric or string) to ``dst``."""

    def cast(x):
        if dst == _STRING:
            return x.copy() if x.dtype == _STRING else _to_strings(np.asarray(x))
        if x.dtype == _STRING:
            return _from_strings(x, dst, saturate, round_mode)
        return _numeric_cast(x, dst, saturate, round_mode)

    return cast


def _round_mode(node: NodeInfo) -> str:
    """Return the ``round_mode`` attribute (24+; ``up`` before), validated."""
    mode = _text(node.attrs.get("round_mode", "up") or "up")
    if mode not in _ROUND_MODES:
        raise ValueError(
            f"{node.describe()}: round_mode must be one of {_ROUND_MODES}, got {mode!r}"
        )
    return mode


def _target_dtype(node: NodeInfo) -> np.dtype:
    """Return the dtype of Cast's ``to`` attribute (an enum, or a type name in Cast-1)."""
    to = node.attrs.get("to")
    if to is None:
        raise ValueError(f"{node.describe()}: the 'to' attribute is required")
    if isinstance(to, (str, bytes)):
        name = _text(to).upper()
        try:
            to = TensorProto.DataType.Value(name)
        except ValueError:
            raise ValueError(f"{node.describe()}: unknown type name {name!r}") from None
    try:
        return np_dtype_of(int(to))
    except ValueError as error:
        raise ValueError(f"{node.describe()}: {error}") from None


def _cast_factory(node: NodeInfo):
    """Prepare a Cast node (``saturate`` only matters for float8 targets, 19+; ``round_mode``
    for float8e8m0, 24+)."""
    saturate = bool(node.attrs.get("saturate", 1))
    cast = _cast_function(_target_dtype(node), saturate, _round_mode(node))

    def compute(x):
        return (cast(x),)

    return compute


kernels.register("Cast", 1, 5)(_cast_factory)
kernels.register("Cast", 6, 18)(_cast_factory)
kernels.register("Cast", 19, 23)(_cast_factory)
kernels.register("Cast", 24)(_cast_factory)


def _cast_like_factory(node: NodeInfo):
    """Prepare a CastLike node: cast input 0 to the element type of input 1."""
    saturate = bool(node.attrs.get("saturate", 1))
    round_mode = _round_mode(node)
    known = node.input_dtypes[1] if len(node.input_dtypes) > 1 else None
    cached = {}
    if known is not None:
        cached[np.dtype(known)] = _cast_function(np.dtype(known), saturate, round_mode)

    def compute(x, like):
        cast = cached.get(like.dtype)
        if cast is None:
            cast = cached[like.dtype] = _cast_function(like.dtype, saturate, round_mode)
        return (cast(x),)

    return compute


kernels.register("CastLike", 15, 18)(_cast_like_factory)
kernels.register("CastLike", 19, 23)(_cast_like_factory)
kernels.register("CastLike", 24)(_cast_like_factory)
