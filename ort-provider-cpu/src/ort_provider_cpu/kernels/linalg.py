"""CPU kernels: linear algebra: the matrix products MatMul, Gemm, MatMulInteger and Einsum,
and Det.

MatMul and Gemm take the fastest BLAS path for the operands' layout, multiply few rows by a
constant float32 weight through its panels (:mod:`ort_provider_cpu.skinny_gemm`), allocate
fresh products from the session's arena and split large ones over the intra-op threads
(:mod:`ort_provider_cpu.threaded_gemm`).
"""

from __future__ import annotations

import math

import numpy as np

from ort.ep import KernelTable, NodeInfo

from ..intra_op import resolve_threads
from ..skinny_gemm import PanelledWeight
from ..threaded_gemm import matmul_into
from .contrib_quant_common import IntegerOperand, integer_matmul
from .float_work import LOW_PRECISION

kernels = KernelTable()

# Types numpy's einsum/linalg compute poorly in (or not at all): computed in float32 instead.


#: Up to this many rows of A, a product with a transposed (Fortran-ordered) B runs faster in
#: OpenBLAS as (B^T @ A^T)^T: its kernels for few rows are slow when B is transposed.
_FEW_ROWS = 64


def _product_2d(xp, a, b, node: NodeInfo | None = None, threads: int = 1):
    """Return the (fresh, C-ordered) product of 2-D ``a`` and ``b`` on the fastest BLAS
    path: few rows of A times a transposed B run as (B^T @ A^T)^T; the result is allocated by
    ``node`` (its session's arena) when given, and split over ``threads`` intra-op threads."""
    if a.shape[0] <= _FEW_ROWS and b.flags.f_contiguous and not b.flags.c_contiguous:
        product = xp.matmul(b.T, a.T)
        return xp.ascontiguousarray(product.T)
    if node is not None and a.dtype == b.dtype and a.dtype.kind == "f":
        out = node.empty((a.shape[0], b.shape[1]), a.dtype)
        if xp is np:
            return matmul_into(a, b, out, threads)
        return xp.matmul(a, b, out=out)
    return xp.matmul(a, b)


class ConstantCopies:
    """C-ordered copies of transposed views of the graph's constant initializers (a Transpose
    of a weight that constant folding left to run time, e.g. a tied LM head): BLAS runs
    faster on them. A view qualifies when its root array is one of the constants (which
    never change while the session lives); one copy per node is kept."""

    def __init__(self, node: NodeInfo) -> None:
        self._graph = node.graph
        self._roots: dict[int, object] | None = None
        self._cached: tuple = (None, None)

    def _constant_roots(self) -> dict[int, object]:
        if self._roots is None:
            graph, roots = self._graph, {}
            if graph is not None:
                overridable = {vi.name for vi in graph.overridable}
                for name, value in graph.initializers.items():
                    if name not in overridable and isinstance(value, np.ndarray):
                        roots[id(_root(value))] = value
            self._roots = roots
        return self._roots

    def c_ordered(self, b):
        """``b``, or a C-ordered copy of it when it is a 2-D transposed constant view."""
        if not isinstance(b, np.ndarray) or b.ndim != 2 or b.flags.c_contiguous or \
                not b.flags.f_contiguous or b.flags.writeable:
            return b
        root = _root(b)
        if id(root) not in self._constant_roots():
            return b
        key = (id(root), b.ctypes.data, b.shape, b.strides)
        if self._cached[0] != key:
            self._cached = (key, np.ascontiguousarray(b))
        return self._cached[1]


def _root(array: np.ndarray) -> np.ndarray:
    """The last ndarray in ``array``'s chain of bases."""
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


def _matmul(xp, a, b, weight: PanelledWeight | None = None, node: NodeInfo | None = None,
            threads: int = 1):
    """Return numpy's matmul of ``a`` and ``b``; a stack of rows times a 2-D matrix runs as
    one 2-D GEMM over all the rows instead of one GEMM per stacked matrix, and few rows times
    a constant ``weight`` (``b`` itself, panelled) through its panels when they pay; large
    products are split over ``threads`` intra-op threads (the factory resolves them once)."""
    if a.ndim > 2 and b.ndim == 2:
        rows = xp.reshape(a, (math.prod(a.shape[:-1]), a.shape[-1]))
        return xp.reshape(_matmul(xp, rows, b, weight, node, threads),
                          a.shape[:-1] + (b.shape[1],))
    if a.ndim == 2 and b.ndim == 2:
        if weight is not None:
            product = weight.product(a, threads)
            if product is not None:
                return product
        return _product_2d(xp, a, b, node, threads)
    if node is not None and a.ndim >= 2 and b.ndim >= 2 and a.dtype == b.dtype and \
            a.dtype.kind == "f":
        shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1])
        out = node.empty(shape, a.dtype)
        if xp is np:
            return matmul_into(a, b, out, threads)
        return xp.matmul(a, b, out=out)
    return xp.matmul(a, b)


def _constant_weight(node: NodeInfo, b) -> PanelledWeight | None:
    """``b`` (a constant input's value, possibly a transposed view) as a panelled weight when
    products with it may take that path: a 2-D float32 numpy matrix."""
    if node.xp is not np or not isinstance(b, np.ndarray) or b.ndim != 2 or \
            b.dtype != np.float32:
        return None
    return PanelledWeight(b)


@kernels.register("MatMul", 1)
def matmul(node: NodeInfo):
    """MatMul 1+: numpy matmul semantics (1-D operands promoted, batch dims broadcast);
    float16/bfloat16 are multiplied in float32 and rounded once to the operand type."""
    xp = node.xp
    constant = node.const_inputs[1] if len(node.const_inputs) > 1 else None
    const_b = None
    if constant is not None and constant.ndim == 2 and not constant.flags.c_contiguous:
        # a constant B that is a transposed view (a folded Transpose): BLAS runs faster on a
        # C-ordered copy, made once
        const_b = xp.ascontiguousarray(constant)
    ordered = ConstantCopies(node)
    weight = _constant_weight(node, const_b if const_b is not None else constant)
    threads = resolve_threads(node.intra_op_threads)

    def compute(a, b):
        b = const_b if const_b is not None else ordered.c_ordered(b)
        if a.dtype in LOW_PRECISION:  # numpy returns float32 for bfloat16 operands
            product = _matmul(xp, a.astype(np.float32), b.astype(np.float32))
            return (xp.asarray(product).astype(a.dtype),)
        return (xp.asarray(_matmul(xp, a, b, weight, node, threads)),)

    return compute


def _gemm_compute(node: NodeInfo, legacy_broadcast: bool):
    """Return Gemm's compute: alpha * op(A) @ op(B) + beta * C, scaled and biased in place
    on the fresh product."""
    xp = node.xp
    alpha = float(node.attrs.get("alpha", 1.0))
    beta = float(node.attrs.get("beta", 1.0))
    trans_a = bool(node.attrs.get("transA", 0))
    trans_b = bool(node.attrs.get("transB", 0))
    use_c = node.has_input(2) and beta != 0.0
    check_c = legacy_broadcast and not node.attrs.get("broadcast", 0)
    const_b = node.const_inputs[1] if len(node.const_inputs) > 1 else None
    weight = _constant_weight(node, const_b.T if trans_b and const_b is not None else const_b)
    threads = resolve_threads(node.intra_op_threads)

    def compute(a, b, c=None):
        if trans_a:
            a = a.T
        if trans_b:
            b = b.T
        if a.ndim == 2 and b.ndim == 2:
            result = _matmul(xp, a, b, weight, node, threads)
        else:
            result = xp.matmul(a, b)
        in_place = result.dtype.kind == "f" and result.dtype == a.dtype
        if alpha != 1.0:
            if in_place:
                result *= result.dtype.type(alpha)
            else:
                result = result * alpha
        if use_c and c is not None:
            if check_c and c.shape != result.shape:
                raise ValueError(
                    f"{node.describe()}: C of shape {c.shape} needs broadcast=1 to match "
                    f"{result.shape}"
                )
            if beta != 1.0:
                c = c * beta
            if in_place and c.ndim <= result.ndim and all(
                    d in (1, r) for d, r in zip(c.shape[::-1], result.shape[::-1])):
                result += c  # C broadcasts to the product's shape
            else:
                result = result + c
        if result.dtype != a.dtype:
            result = result.astype(a.dtype)
        return (result,)

    return compute


@kernels.register("Gemm", 1, 6)
def gemm_legacy(node: NodeInfo):
    """Gemm 1-6: C required, broadcast to the product only with ``broadcast=1``."""
    return _gemm_compute(node, legacy_broadcast=True)


@kernels.register("Gemm", 7)
def gemm(node: NodeInfo):
    """Gemm 7+: C broadcast unidirectionally (optional since 11)."""
    return _gemm_compute(node, legacy_broadcast=False)


def _zero_point(zp, operand_is_a: bool):
    """Return a zero point as int32 shaped to broadcast: A's per-row ([M]) zero point
    becomes a column, B's per-column ([N]) zero point stays a row."""
    zp = zp.astype(np.int32)
    if operand_is_a and zp.ndim >= 1 and zp.size > 1:
        zp = zp.reshape(zp.shape + (1,))
    return zp


@kernels.register("MatMulInteger", 10)
def matmul_integer(node: NodeInfo):
    """MatMulInteger: (A - a_zero_point) @ (B - b_zero_point) in int32, computed exactly in
    float BLAS (:func:`.contrib_quant_common.integer_matmul`); a constant B (with its zero
    point) is shifted and converted once."""
    consts = node.const_inputs
    const_b = consts[1] if len(consts) > 1 else None
    const_bzp = consts[3] if len(consts) > 3 else None
    prepared = None
    if const_b is not None and (const_bzp is not None or not node.has_input(3)):
        b64 = np.asarray(const_b).astype(np.float64)
        if const_bzp is not None:
            b64 -= _zero_point(np.asarray(const_bzp), False)
        prepared = IntegerOperand(b64)

    def compute(a, b, a_zero_point=None, b_zero_point=None):
        a64 = a.astype(np.float64)
        if a_zero_point is not None:
            a64 -= _zero_point(a_zero_point, True)
        operand = prepared
        if operand is None:
            b64 = b.astype(np.float64)
            if b_zero_point is not None:
                b64 -= _zero_point(b_zero_point, False)
            operand = IntegerOperand(b64)
        return (integer_matmul(a64, operand).astype(np.int32),)

    return compute


@kernels.register("Einsum", 12, 27)
@kernels.register("Einsum", 28)
def einsum(node: NodeInfo):
    """Einsum 12+ (bfloat16 since 28): numpy einsum of the ``equation`` (spaces removed);
    float16/bfloat16 operands are computed in float32 and rounded once."""
    xp = node.xp
    equation = node.attrs.get("equation")
    if not isinstance(equation, str) or not equation:
        raise ValueError(f"{node.describe()}: the 'equation' attribute is required")
    equation = equation.replace(" ", "")
    operands = equation.split("->")[0].count(",") + 1
    if operands != node.num_inputs:
        raise ValueError(
            f"{node.describe()}: equation {equation!r} has {operands} operands, node has "
            f"{node.num_inputs} inputs"
        )
    optimize = operands > 2

    def compute(*inputs):
        dtype = inputs[0].dtype
        if dtype in LOW_PRECISION:
            inputs = [x.astype(np.float32) for x in inputs]
        result = xp.einsum(equation, *inputs, optimize=optimize)
        return (xp.asarray(result).astype(dtype, copy=False),)

    return compute


@kernels.register("Det", 11, 21)
@kernels.register("Det", 22)
def det(node: NodeInfo):
    """Det 11+ (bfloat16 since 22): determinants of the [..., M, M] input's matrices."""
    xp = node.xp
    where = node.describe()

    def compute(x):
        if x.ndim < 2 or x.shape[-1] != x.shape[-2]:
            raise ValueError(f"{where}: input of shape {x.shape} is not a batch of square matrices")
        wide = x.astype(np.float32) if x.dtype in LOW_PRECISION else x
        return (xp.asarray(xp.linalg.det(wide)).astype(x.dtype, copy=False),)

    return compute
