"""CPU kernels: one-input math, logic and predicates: Sqrt, Exp, Log, Neg, Abs, Floor, Ceil,
Tanh, Round, Sign, Reciprocal, the trigonometric and hyperbolic functions, IsNaN, Not,
BitwiseNot (each one ``xp`` ufunc, see :data:`UFUNC_OPS`), and Erf, IsInf, Identity.

All compute in the input's type (numpy's float16/bfloat16 ufuncs included).
"""

from __future__ import annotations

from ort.ep import KernelTable, NodeInfo

from .erf_gelu import erf

kernels = KernelTable()


#: Ops that are one ufunc of the array namespace applied to the input:
#: (op, first opset version, name of the ufunc in ``xp``), registered to :func:`unary_ufunc`.
UFUNC_OPS: tuple[tuple[str, int, str], ...] = (
    ("Abs", 1, "absolute"),
    ("Neg", 1, "negative"),
    ("Sign", 9, "sign"),
    ("Reciprocal", 1, "reciprocal"),
    ("Sqrt", 1, "sqrt"),
    ("Exp", 1, "exp"),
    ("Log", 1, "log"),
    ("Floor", 1, "floor"),
    ("Ceil", 1, "ceil"),
    ("Round", 11, "rint"),
    ("Sin", 7, "sin"),
    ("Cos", 7, "cos"),
    ("Tan", 7, "tan"),
    ("Asin", 7, "arcsin"),
    ("Acos", 7, "arccos"),
    ("Atan", 7, "arctan"),
    ("Sinh", 9, "sinh"),
    ("Cosh", 9, "cosh"),
    ("Tanh", 1, "tanh"),
    ("Asinh", 9, "arcsinh"),
    ("Acosh", 9, "arccosh"),
    ("Atanh", 9, "arctanh"),
    ("IsNaN", 9, "isnan"),
    ("Not", 1, "logical_not"),
    ("BitwiseNot", 18, "invert"),
)
_UFUNC_NAMES = {op: name for op, _, name in UFUNC_OPS}


def unary_ufunc(node: NodeInfo):
    """The ops of :data:`UFUNC_OPS`: ``xp.<ufunc>(x)``, in x's type."""
    ufunc = getattr(node.xp, _UFUNC_NAMES[node.op_type])
    asarray = node.xp.asarray

    def compute(x):
        return (asarray(ufunc(x)),)

    return compute


for _op, _since, _ in UFUNC_OPS:
    kernels.register(_op, _since)(unary_ufunc)


@kernels.register("Erf", 9)
def erf_kernel(node: NodeInfo):
    """Erf 9+: erf(x) in x's type, accurate to float64 (float32 and narrower: float32)
    rounding (:func:`~ort_provider_cpu.kernels.erf_gelu.erf`)."""
    xp = node.xp
    asarray = xp.asarray

    def compute(x):
        return (asarray(erf(xp, x)),)

    return compute


@kernels.register("IsInf", 10)
def is_inf(node: NodeInfo):
    """IsInf 10+: whether x is infinite, of the signs ``detect_negative`` and
    ``detect_positive`` select (integers are never infinite)."""
    xp = node.xp
    asarray = xp.asarray
    negative = bool(node.attrs.get("detect_negative", 1))
    positive = bool(node.attrs.get("detect_positive", 1))

    def either(x):
        return (asarray(xp.isinf(x)),)

    def positive_only(x):
        return (asarray(xp.isposinf(x) if x.dtype.kind == "f" else xp.zeros(x.shape, bool)),)

    def negative_only(x):
        return (asarray(xp.isneginf(x) if x.dtype.kind == "f" else xp.zeros(x.shape, bool)),)

    def neither(x):
        return (asarray(xp.zeros(x.shape, dtype=bool)),)

    if negative and positive:
        return either
    if positive:
        return positive_only
    if negative:
        return negative_only
    return neither


@kernels.register("Identity", 1)
def identity(node: NodeInfo):
    """Identity: the input itself (kernels never write to their outputs' inputs)."""

    def compute(x):
        return (x,)

    return compute
