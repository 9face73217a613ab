"""Shape, layout and indexing kernels of the CPU provider, compared exactly with onnxruntime.

Each case is a single-node model. Shape-like inputs are tried both as graph inputs and as
initializers (the kernels' constant path). Old opsets onnxruntime no longer runs are checked
against ``onnx.reference.ReferenceEvaluator``.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from ort.testing import assert_outputs_match, node_model, run_onnxruntime, run_ort, run_reference

RNG = np.random.default_rng(0)


# --------------------------------------------------------------------------- harness


def make_model(op, inputs, n_out=1, opset=18, consts=(), **attrs):
    """A single-node model and its feeds (:func:`ort.testing.node_model`); ``inputs`` is a list
    of (name, array-or-None); names in ``consts`` become initializers, ``None`` arrays become
    omitted ('') inputs."""
    return node_model(op, [a for _, a in inputs], attrs, outputs=n_out, opset=opset,
                      constants=[i for i, (name, _) in enumerate(inputs) if name in consts])


def check(op, inputs, n_out=1, opset=18, consts=(), oracle="ort", **attrs):
    """Assert our outputs equal onnxruntime's (``oracle='ort'``) or the onnx reference
    evaluator's exactly (dtype, shape, values)."""
    model, feeds = make_model(op, inputs, n_out, opset, consts, **attrs)
    expected = (run_onnxruntime if oracle == "ort" else run_reference)(model, feeds)
    got = run_ort(model, feeds)
    assert all(isinstance(g, np.ndarray) for g in got), [type(g) for g in got]
    assert_outputs_match(got, expected, rtol=0, atol=0)
    return got


def check_fails(op, inputs, n_out=1, opset=18, consts=(), **attrs):
    """Assert our run raises a clear error for invalid data."""
    model, feeds = make_model(op, inputs, n_out, opset, consts, **attrs)
    with pytest.raises(Exception):
        run_ort(model, feeds)


def arr(shape, dtype=np.float32):
    """A random array of ``shape`` and ``dtype``."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return RNG.random(shape) > 0.5
    if dtype == object:
        return np.array([f"s{i}" for i in range(int(np.prod(shape)))], dtype=object).reshape(shape)
    if dtype.kind in "iu":
        return RNG.integers(0, 100, size=shape).astype(dtype)
    return RNG.standard_normal(shape).astype(dtype)


def i64(*values):
    """An int64 1-D array."""
    return np.array(values, dtype=np.int64)


CONST = pytest.mark.parametrize("const", [False, True], ids=["input", "const"])


# --------------------------------------------------------------------------- Shape / Size


@pytest.mark.parametrize("opset", [13, 15, 21])
@pytest.mark.parametrize("shape", [(), (0,), (2, 3, 4), (1, 0, 5)])
def test_shape_size(opset, shape):
    check("Shape", [("x", arr(shape))], opset=opset)
    check("Size", [("x", arr(shape))], opset=opset)


@pytest.mark.parametrize("start,end", [(0, None), (1, None), (-1, None), (0, -1), (-10, 10),
                                       (2, 1), (5, 6)])
def test_shape_start_end(start, end):
    attrs = {"start": start} if end is None else {"start": start, "end": end}
    check("Shape", [("x", arr((2, 3, 4)))], opset=15, **attrs)


def test_shape_strings():
    check("Shape", [("x", arr((2, 3), object))], opset=15)


# --------------------------------------------------------------------------- Reshape / Flatten


@CONST
@pytest.mark.parametrize("in_shape,spec", [
    ((2, 3, 4), (4, -1)), ((2, 3, 4), (0, 12)), ((2, 3, 4), (-1,)), ((2, 3, 4), (0, 0, -1)),
    ((0, 3), (3, -1)), ((2, 3, 4), (2, 0, 2, 2)), ((6,), (1, 2, 3)), ((1,), ()),
])
@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.bool_, object])
def test_reshape(in_shape, spec, dtype, const):
    check("Reshape", [("x", arr(in_shape, dtype)), ("s", i64(*spec))],
          consts={"s"} if const else ())


@CONST
def test_reshape_allowzero(const):
    check("Reshape", [("x", arr((0, 3))), ("s", i64(3, 0))], opset=14,
          consts={"s"} if const else (), allowzero=1)


def test_reshape_bad():
    check_fails("Reshape", [("x", arr((2, 3))), ("s", i64(4, -1))])
    check_fails("Reshape", [("x", arr((2, 3))), ("s", i64(-1, -1))])


def test_reshape_1():
    check("Reshape", [("x", arr((2, 3, 4)))], opset=1, shape=[0, -1])


@pytest.mark.parametrize("opset", [9, 11, 13, 21])
@pytest.mark.parametrize("axis", [0, 1, 2, 3])
def test_flatten(opset, axis):
    check("Flatten", [("x", arr((2, 3, 0, 5) if axis == 2 else (2, 3, 4)))], opset=opset,
          axis=axis if axis < 3 else 3)


@pytest.mark.parametrize("axis", [-1, -3])
def test_flatten_negative(axis):
    check("Flatten", [("x", arr((2, 3, 4)))], opset=13, axis=axis)


# --------------------------------------------------------------------------- Transpose


@pytest.mark.parametrize("perm", [None, [0, 2, 1], [2, 0, 1], [1, 2, 0]])
@pytest.mark.parametrize("dtype", [np.float32, np.int8, object, np.bool_])
def test_transpose(perm, dtype):
    attrs = {} if perm is None else {"perm": perm}
    check("Transpose", [("x", arr((2, 3, 4), dtype))], opset=13, **attrs)


def test_transpose_scalar_and_empty():
    check("Transpose", [("x", arr(()))], opset=13)
    check("Transpose", [("x", arr((0, 3)))], opset=13, perm=[1, 0])


# --------------------------------------------------------------------------- Unsqueeze / Squeeze


@CONST
@pytest.mark.parametrize("in_shape,axes", [((2, 3), (0,)), ((2, 3), (-1, 1)), ((), (0,)),
                                           ((2, 3), (3, 0)), ((0, 3), (1,))])
def test_unsqueeze_13(in_shape, axes, const):
    check("Unsqueeze", [("x", arr(in_shape)), ("a", i64(*axes))], opset=13,
          consts={"a"} if const else ())


@pytest.mark.parametrize("opset", [1, 11])
def test_unsqueeze_attr(opset):
    axes = [0, 3] if opset == 1 else [0, -1]
    check("Unsqueeze", [("x", arr((2, 3)))], opset=opset, axes=axes,
          oracle="reference" if opset < 7 else "ort")


@CONST
@pytest.mark.parametrize("in_shape,axes", [((1, 3, 1), (0,)), ((1, 3, 1), (-1, 0)),
                                           ((1, 3, 1), None), ((1,), None), ((1, 0, 1), (2,))])
def test_squeeze_13(in_shape, axes, const):
    inputs = [("x", arr(in_shape))] + ([] if axes is None else [("a", i64(*axes))])
    check("Squeeze", inputs, opset=13, consts={"a"} if const else ())


@pytest.mark.parametrize("opset", [1, 11])
def test_squeeze_attr(opset):
    check("Squeeze", [("x", arr((1, 3, 1)))], opset=opset,
          axes=[2] if opset == 1 else [-1], oracle="reference" if opset < 7 else "ort")
    check("Squeeze", [("x", arr((1, 3, 1)))], opset=opset,
          oracle="reference" if opset < 7 else "ort")


@CONST
def test_squeeze_empty_axes(const):
    check("Squeeze", [("x", arr((1, 3, 1))), ("a", i64())], opset=13,
          consts={"a"} if const else ())


def test_squeeze_bad():
    check_fails("Squeeze", [("x", arr((1, 3))), ("a", i64(1))], opset=13)


# --------------------------------------------------------------------------- Concat / Split


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("dtype", [np.float32, np.int64, object, np.bool_])
def test_concat(axis, dtype):
    shapes = [(2, 3), (2, 3), (2, 3)]
    shapes = [tuple(d + i if j == axis % 2 else d for j, d in enumerate(s))
              for i, s in enumerate(shapes)]
    inputs = [(f"x{i}", arr(s, dtype)) for i, s in enumerate(shapes)]
    check("Concat", inputs, opset=13, axis=axis)


def test_concat_empty_and_single():
    check("Concat", [("a", arr((0, 3))), ("b", arr((2, 3)))], opset=13, axis=0)
    check("Concat", [("a", arr((2, 3)))], opset=13, axis=1)


@CONST
@pytest.mark.parametrize("split", [None, (1, 2, 3), (0, 6, 0)])
@pytest.mark.parametrize("opset", [13, 18])
def test_split_input(split, opset, const):
    if split is None and opset == 18:
        pytest.skip("opset 18 needs split or num_outputs")
    n_out = 3
    inputs = [("x", arr((2, 6)))] + ([] if split is None else [("s", i64(*split))])
    check("Split", inputs, n_out=n_out, opset=opset, consts={"s"} if const else (), axis=1)


@pytest.mark.parametrize("dim,n", [(7, 3), (6, 3), (2, 2), (7, 4)])
def test_split_num_outputs(dim, n):
    check("Split", [("x", arr((dim, 2)))], n_out=n, opset=18, num_outputs=n)


@pytest.mark.parametrize("dim,n", [(4, 3), (5, 4)])
def test_split_num_outputs_empty_chunk(dim, n):
    check_fails("Split", [("x", arr((dim, 2)))], n_out=n, opset=18, num_outputs=n)


@pytest.mark.parametrize("opset", [2, 11])
def test_split_attr(opset):
    oracle = "reference" if opset < 7 else "ort"
    check("Split", [("x", arr((2, 6)))], n_out=2, opset=opset, axis=1, split=[2, 4],
          oracle=oracle)
    check("Split", [("x", arr((2, 6)))], n_out=3, opset=opset, axis=-1 if opset == 11 else 1,
          oracle=oracle)


# --------------------------------------------------------------------------- Slice


SLICES = [
    ((0,), (2,), None, None),
    ((1, 0), (3, -1), (0, 1), None),
    ((-1,), (-1000,), (1,), (-1,)),
    ((2**63 - 1,), (-(2**63),), (0,), (-1,)),
    ((0, 10), (2**63 - 1, -100), (1, 0), (2, -3)),
    ((-(2**63),), (2**63 - 1,), (-1,), (3,)),
    ((3,), (1,), (0,), (1,)),
    ((1,), (1,), (2,), (1,)),
]


@CONST
@pytest.mark.parametrize("starts,ends,axes,steps", SLICES)
def test_slice(starts, ends, axes, steps, const):
    inputs = [("x", arr((4, 5, 6))), ("st", i64(*starts)), ("en", i64(*ends)),
              ("ax", None if axes is None else i64(*axes)),
              ("sp", None if steps is None else i64(*steps))]
    check("Slice", inputs, opset=13, consts={"st", "en", "ax", "sp"} if const else ())


def test_slice_int32_and_strings():
    inputs = [("x", arr((4, 5), object)), ("st", np.array([1], np.int32)),
              ("en", np.array([-1], np.int32)), ("ax", np.array([1], np.int32))]
    check("Slice", inputs, opset=13)


def test_slice_1():
    check("Slice", [("x", arr((4, 5)))], opset=1, oracle="reference",
          starts=[1, 0], ends=[3, 100], axes=[0, 1])
    check("Slice", [("x", arr((4, 5)))], opset=9, starts=[-3], ends=[-1])


# --------------------------------------------------------------------------- Gather family


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("ind_shape", [(), (3,), (2, 2), (0,), (5, 6)])  # (5, 6): numpy range check
@pytest.mark.parametrize("ind_dtype", [np.int64, np.int32])
def test_gather(axis, ind_shape, ind_dtype):
    x = arr((3, 4, 5))
    dim = x.shape[axis]
    idx = RNG.integers(-dim, dim, size=ind_shape).astype(ind_dtype)
    check("Gather", [("x", x), ("i", idx)], opset=13, axis=axis)


def test_gather_strings_and_scalar():
    check("Gather", [("x", arr((5,), object)), ("i", np.array(-2, np.int64))], opset=13)
    check("Gather", [("x", arr((5,))), ("i", np.array(3, np.int64))], opset=13)


def test_gather_out_of_range():
    model, feeds = make_model("Gather", [("x", arr((3,))), ("i", i64(0, 3))], opset=13)
    with pytest.raises(Exception, match="3"):
        run_ort(model, feeds)
    check_fails("Gather", [("x", arr((3,))), ("i", i64(-4))], opset=13)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_gather_elements(axis):
    x = arr((3, 4))
    dim = x.shape[axis]
    idx = RNG.integers(-dim, dim, size=(2, 3)).astype(np.int64)
    check("GatherElements", [("x", x), ("i", idx)], opset=13, axis=axis)
    check("GatherElements", [("x", x), ("i", RNG.integers(0, dim, (3, 4)).astype(np.int32))],
          opset=11, axis=axis)


def test_gather_elements_out_of_range():
    check_fails("GatherElements", [("x", arr((2, 2))), ("i", i64(0, 2).reshape(1, 2))], opset=13)


@pytest.mark.parametrize("data_shape,ind_shape,batch_dims", [
    ((2, 2), (2, 2), 0), ((2, 2), (2, 1), 0), ((2, 2, 2), (2, 1, 2), 0),
    ((2, 2, 2), (2, 1), 1), ((2, 3, 4), (2, 3, 1), 2), ((3, 4), (0, 2), 0),
    ((2, 3, 4), (2, 5, 2), 1),
])
def test_gather_nd(data_shape, ind_shape, batch_dims):
    x = arr(data_shape)
    k = ind_shape[-1]
    dims = data_shape[batch_dims:batch_dims + k]
    idx = np.stack([RNG.integers(-d, d, size=ind_shape[:-1]) for d in dims], axis=-1)
    idx = idx.astype(np.int64).reshape(ind_shape)
    check("GatherND", [("x", x), ("i", idx)], opset=13, batch_dims=batch_dims)


def test_gather_nd_out_of_range():
    check_fails("GatherND", [("x", arr((2, 2))), ("i", i64(0, 2).reshape(1, 2))], opset=13)


# --------------------------------------------------------------------------- Scatter family


@pytest.mark.parametrize("reduction", ["none", "add", "mul", "min", "max"])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_scatter_elements(reduction, axis):
    x = arr((3, 4))
    dim = x.shape[axis]
    idx = RNG.integers(-dim, dim, size=(2, 3)).astype(np.int64)
    if reduction == "none":  # unique targets: duplicate order is unspecified
        idx = np.stack([RNG.permutation(np.arange(dim))[:2] for _ in range(3)], axis=1)
        idx = idx.astype(np.int64) if axis == 0 else np.stack(
            [RNG.permutation(np.arange(dim))[:3] for _ in range(2)]).astype(np.int64)
    upd = arr((2, 3))
    check("ScatterElements", [("x", x), ("i", idx), ("u", upd)], opset=18, axis=axis,
          reduction=reduction)


def test_scatter_elements_old_and_int():
    x = arr((3, 3), np.int64)
    idx = np.array([[1, 0, 2], [0, 2, 1]], np.int32)
    check("ScatterElements", [("x", x), ("i", idx), ("u", arr((2, 3), np.int64))], opset=11)
    check("Scatter", [("x", x), ("i", idx), ("u", arr((2, 3), np.int64))], opset=9)
    check("ScatterElements", [("x", arr((5,))), ("i", i64(-1, 0)), ("u", arr((2,)))],
          opset=16, reduction="add")


def test_scatter_elements_out_of_range():
    check_fails("ScatterElements", [("x", arr((3,))), ("i", i64(3)), ("u", arr((1,)))], opset=13)


@pytest.mark.parametrize("reduction", ["none", "add", "mul", "min", "max"])
@pytest.mark.parametrize("data_shape,ind", [
    ((8,), [[4], [3], [1], [7]]),
    ((4, 4, 4), [[0], [2]]),
    ((4, 4), [[0, 1], [2, -1], [-4, 3]]),
    ((2, 3), np.zeros((0, 1), np.int64)),
])
def test_scatter_nd(reduction, data_shape, ind):
    x = arr(data_shape)
    idx = np.array(ind, np.int64)
    upd = arr(idx.shape[:-1] + data_shape[idx.shape[-1]:])
    check("ScatterND", [("x", x), ("i", idx), ("u", upd)], opset=18, reduction=reduction)


def test_scatter_nd_out_of_range():
    check_fails("ScatterND", [("x", arr((3,))), ("i", i64(3).reshape(1, 1)),
                              ("u", arr((1,)))], opset=13)


# --------------------------------------------------------------------------- ConstantOfShape / Expand / Tile / Range


@CONST
@pytest.mark.parametrize("shape", [(2, 3), (0,), (4, 0, 2)])
@pytest.mark.parametrize("value", [None, np.array([7], np.int32), np.array([1.5], np.float64),
                                   np.array([True])])
def test_constant_of_shape(shape, value, const):
    attrs = {} if value is None else {"value": numpy_helper.from_array(value)}
    check("ConstantOfShape", [("s", i64(*shape))], opset=21, consts={"s"} if const else (),
          **attrs)


@CONST
@pytest.mark.parametrize("in_shape,shape", [((3, 1), (2, 1, 6)), ((3, 1), (3, 4)),
                                            ((1,), (0,)), ((2, 3), (1,)), ((2, 1), (1, 1, 3))])
@pytest.mark.parametrize("dtype", [np.float32, np.int64, object, np.bool_])
def test_expand(in_shape, shape, dtype, const):
    check("Expand", [("x", arr(in_shape, dtype)), ("s", i64(*shape))], opset=13,
          consts={"s"} if const else ())


@CONST
@pytest.mark.parametrize("repeats", [(1, 1), (2, 3), (0, 2)])
@pytest.mark.parametrize("dtype", [np.float32, object, np.bool_])
def test_tile(repeats, dtype, const):
    check("Tile", [("x", arr((2, 3), dtype)), ("r", i64(*repeats))], opset=13,
          consts={"r"} if const else ())


@pytest.mark.parametrize("start,limit,delta", [(3, 9, 3), (10, 4, -2), (0, 0, 1), (0, 10, 3),
                                               (1, -5, 2), (0.5, 10.25, 0.3), (0.0, 1.0, 0.1),
                                               (-2.5, 2.5, 0.7), (10.0, 1.0, -0.3)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64, np.int16])
def test_range(start, limit, delta, dtype):
    if np.dtype(dtype).kind == "i" and isinstance(delta, float):
        pytest.skip("float bounds only for float types")
    inputs = [(n, np.array(v, dtype)) for n, v in (("s", start), ("l", limit), ("d", delta))]
    check("Range", inputs, opset=11)


def test_range_long_float():
    inputs = [("s", np.array(0.1, np.float32)), ("l", np.array(1000.0, np.float32)),
              ("d", np.array(0.37, np.float32))]
    check("Range", inputs, opset=11)


# --------------------------------------------------------------------------- Pad


PADS = [(0, 1, 0, 2), (1, 1, 1, 1), (2, 0, 0, 3), (-1, 1, 0, -2), (0, 0, 0, 0)]


@CONST
@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
@pytest.mark.parametrize("pads", PADS)
def test_pad(mode, pads, const):
    inputs = [("x", arr((3, 4))), ("p", i64(*pads))]
    if mode == "constant":
        inputs.append(("v", np.array(2.5, np.float32)))
    check("Pad", inputs, opset=19, consts={"p", "v"} if const else (), mode=mode)


@CONST
@pytest.mark.parametrize("axes", [(1,), (-2,), (0, 1)])
def test_pad_axes(axes, const):
    pads = i64(*([1] * len(axes) + [2] * len(axes)))
    check("Pad", [("x", arr((3, 4), np.int32)), ("p", pads), ("v", None), ("a", i64(*axes))],
          opset=18, consts={"p", "a"} if const else ())
    check("Pad", [("x", arr((3, 4))), ("p", pads), ("v", None), ("a", i64(*axes))],
          opset=18, consts={"p", "a"} if const else (), mode="edge")


@pytest.mark.parametrize("dtype", [np.int64, np.bool_, np.float16])
def test_pad_dtypes(dtype):
    check("Pad", [("x", arr((2, 3), dtype)), ("p", i64(1, 0, 0, 2))], opset=13)


def test_pad_old():
    check("Pad", [("x", arr((2, 3)))], opset=2, oracle="reference", pads=[1, 0, 0, 2],
          value=1.5)
    check("Pad", [("x", arr((3, 3)))], opset=2, oracle="reference", pads=[1, 1, 1, 1],
          mode="reflect")
    check("Pad", [("x", arr((2, 3)))], opset=7, pads=[0, 1, 1, 0], mode="edge")


@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 4, 6), (1, 1, 512), (2,)])
def test_pad_mirrored_equals_numpys_pad(shape):
    """Reflect and edge padding by slice copies, per axis, equal numpy's pad for every pad
    up to the axis's size (reflect: shorter than it)."""
    from ort_provider_cpu.kernels.layout import _pad_mirrored

    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape).astype(np.float32)
    for _ in range(100):
        begin = [int(rng.integers(0, d)) for d in shape]
        end = [int(rng.integers(0, d)) for d in shape]
        for mode in ("reflect", "edge"):
            want = np.pad(x, list(zip(begin, end)), mode=mode)
            np.testing.assert_array_equal(_pad_mirrored(np, x, begin, end, mode == "reflect"),
                                          want)
    big = [d + 5 for d in shape]  # edge pads may exceed the axis
    np.testing.assert_array_equal(_pad_mirrored(np, x, big, big, False),
                                  np.pad(x, list(zip(big, big)), mode="edge"))


def test_pad_reflect_too_large():
    check_fails("Pad", [("x", arr((2, 3))), ("p", i64(0, 3, 0, 0))], opset=13, mode="reflect")


# --------------------------------------------------------------------------- DepthToSpace / SpaceToDepth


@pytest.mark.parametrize("mode", ["DCR", "CRD"])
@pytest.mark.parametrize("block", [1, 2, 3])
def test_depth_to_space(mode, block):
    check("DepthToSpace", [("x", arr((2, 2 * block * block, 3, 4)))], opset=13,
          blocksize=block, mode=mode)


@pytest.mark.parametrize("block", [1, 2])
def test_space_to_depth(block):
    check("SpaceToDepth", [("x", arr((2, 3, 4, 6)))], opset=13, blocksize=block)
    check("DepthToSpace", [("x", arr((1, 8, 2, 3)))], opset=1, blocksize=2)


@pytest.mark.parametrize("mode", ["DCR", "CRD"])
def test_space_to_depth_28_mode_is_the_inverse_of_depth_to_space(mode):
    check("SpaceToDepth", [("x", arr((2, 3, 4, 6)))], opset=28, oracle="reference",
          blocksize=2, mode=mode)
    x = arr((2, 3, 4, 6))
    model, feeds = make_model("SpaceToDepth", [("x", x)], opset=28, blocksize=2, mode=mode)
    (packed,) = run_ort(model, feeds)
    model, feeds = make_model("DepthToSpace", [("x", packed)], opset=28, blocksize=2, mode=mode)
    np.testing.assert_array_equal(run_ort(model, feeds)[0], x)


# --------------------------------------------------------------------------- Trilu / EyeLike


@pytest.mark.parametrize("upper", [0, 1])
@pytest.mark.parametrize("k", [None, 0, 1, -1, 5, -7])
@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 3), (5, 2), (0, 3)])
def test_trilu(upper, k, shape):
    inputs = [("x", arr(shape, np.int64))] + ([] if k is None else [("k", np.array(k, np.int64))])
    check("Trilu", inputs, opset=14, upper=upper)


def test_trilu_const_k():
    check("Trilu", [("x", arr((4, 4))), ("k", np.array(1, np.int64))], opset=14,
          consts={"k"}, upper=0)


@pytest.mark.parametrize("k", [0, 1, -2, 10])
@pytest.mark.parametrize("dtype", [None, onnx.TensorProto.INT32, onnx.TensorProto.DOUBLE])
def test_eye_like(k, dtype):
    attrs = {"k": k} if dtype is None else {"k": k, "dtype": dtype}
    check("EyeLike", [("x", arr((3, 4)))], opset=9, **attrs)


# --------------------------------------------------------------------------- OneHot / NonZero / Compress


@pytest.mark.parametrize("axis", [-1, 0, 1, -3])
@pytest.mark.parametrize("ind_dtype,depth_dtype,val_dtype", [
    (np.int64, np.int64, np.float32), (np.int64, np.int64, np.int64),
    (np.float32, np.float32, np.float32), (np.int32, np.float32, np.float32),
    (np.int64, np.int32, np.float32)])
def test_one_hot(axis, ind_dtype, depth_dtype, val_dtype):
    idx = np.array([[0, 3, -1], [2, 7, -6]], ind_dtype)
    check("OneHot", [("i", idx), ("d", np.array([5], depth_dtype)),
                     ("v", np.array([2, 9], val_dtype))], opset=11, axis=axis)


def test_one_hot_strings():
    check("OneHot", [("i", i64(0, 2, -1)), ("d", np.array(3, np.int64)),
                     ("v", np.array(["off", "on"], dtype=object))], opset=11)


@pytest.mark.parametrize("shape", [(2, 3), (5,), (0, 3), (2, 2, 2)])
@pytest.mark.parametrize("dtype", [np.float32, np.bool_, np.int64])
def test_non_zero(shape, dtype):
    x = arr(shape, dtype)
    if dtype != np.bool_:
        x = (x * (RNG.random(shape) > 0.5)).astype(dtype)
    check("NonZero", [("x", x)], opset=13)


@pytest.mark.parametrize("axis", [None, 0, 1, -1])
@pytest.mark.parametrize("cond", [[True, False, True], [False], [True, True, False]])
def test_compress(axis, cond):
    attrs = {} if axis is None else {"axis": axis}
    check("Compress", [("x", arr((3, 3))), ("c", np.array(cond))], opset=11, **attrs)


# --------------------------------------------------------------------------- TopK / ReverseSequence / Unique


@pytest.mark.parametrize("largest", [0, 1])
@pytest.mark.parametrize("axis", [-1, 0, 1])
@pytest.mark.parametrize("k", [0, 1, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.int32, np.float64])
def test_topk(largest, axis, k, dtype):
    x = RNG.integers(0, 4, size=(3, 4, 5)).astype(dtype)  # many ties
    check("TopK", [("x", x), ("k", i64(k))], n_out=2, opset=11, axis=axis, largest=largest)


@pytest.mark.parametrize("largest", [0, 1])
def test_topk_unsorted_same_set(largest):
    """sorted=0 leaves the order unspecified (ORT's follows its heap): compare as sets."""
    x = arr((3, 50))
    model, feeds = make_model("TopK", [("x", x), ("k", i64(7))], n_out=2, opset=11,
                              sorted=0, largest=largest)
    exp_v, exp_i = run_onnxruntime(model, feeds)
    got_v, got_i = run_ort(model, feeds)
    np.testing.assert_array_equal(np.sort(got_i, axis=1), np.sort(exp_i, axis=1))
    np.testing.assert_array_equal(np.take_along_axis(x, got_i, axis=1), got_v)
    assert got_v.dtype == exp_v.dtype and got_i.dtype == exp_i.dtype


def test_topk_old():
    x = arr((3, 6))
    check("TopK", [("x", x), ("k", i64(2))], n_out=2, opset=10)
    check("TopK", [("x", x)], n_out=2, opset=1, oracle="reference", k=2)


@pytest.mark.parametrize("time_axis,batch_axis", [(0, 1), (1, 0)])
def test_reverse_sequence(time_axis, batch_axis):
    x = arr((4, 4, 2))
    lens = np.array([4, 3, 1, 2], np.int64)
    check("ReverseSequence", [("x", x), ("l", lens)], opset=10, time_axis=time_axis,
          batch_axis=batch_axis)


@pytest.mark.parametrize("sorted_", [0, 1])
@pytest.mark.parametrize("axis", [None, 0, 1])
def test_unique(sorted_, axis):
    x = np.array([[1, 3, 1], [2, 3, 2], [1, 3, 1]], np.int64)
    attrs = {"sorted": sorted_} if axis is None else {"sorted": sorted_, "axis": axis}
    check("Unique", [("x", x)], n_out=4, opset=11, **attrs)
    check("Unique", [("x", np.array([2.0, 1.0, 1.0, 3.0, 4.0, 3.0], np.float32))], n_out=4,
          opset=11, sorted=sorted_)


# --------------------------------------------------------------------------- edge cases


def test_non_zero_scalar():
    check("NonZero", [("x", np.array(3.0, np.float32))], opset=13)
    check("NonZero", [("x", np.array(0, np.int64))], opset=13)


@pytest.mark.parametrize("axis", [None, 1])
def test_compress_long_condition(axis):
    attrs = {} if axis is None else {"axis": axis}
    check("Compress", [("x", arr((2, 3))), ("c", np.array([True, False, True, True]))],
          opset=11, **attrs)


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "wrap"])
def test_pad_negative_mixed(mode):
    check("Pad", [("x", arr((4, 5))), ("p", i64(-1, 1, 2, -3))], opset=19, mode=mode)
    check("Pad", [("x", arr((2, 3))), ("p", i64(0, 4, 3, 7))], opset=19, mode="wrap")


def test_legacy_versions_without_oracle():
    """Tile-1 and Concat-1 (no runtime supports them any more) against numpy."""
    x = arr((2, 3))
    tiles, axis = np.array(2, np.float32), np.array(1, np.float32)  # Tile-1: same type as x
    model, feeds = make_model("Tile", [("x", x), ("t", tiles), ("a", axis)], opset=1)
    np.testing.assert_array_equal(run_ort(model, feeds)[0], np.tile(x, (1, 2)))
    y = arr((2, 1))
    model, feeds = make_model("Concat", [("a", x), ("b", y)], opset=1)
    np.testing.assert_array_equal(run_ort(model, feeds)[0], np.concatenate([x, y], axis=1))
    check("Pad", [("x", x)], opset=1, oracle="reference", paddings=[1, 0, 0, 2])


def test_outputs_do_not_alias_mutated_inputs():
    """Scatter/Pad copy: the caller's arrays stay untouched."""
    x = arr((3, 3))
    before = x.copy()
    check("ScatterElements", [("x", x), ("i", i64(0, 1, 2).reshape(1, 3)),
                              ("u", arr((1, 3)))], opset=13)
    check("ScatterND", [("x", x), ("i", i64(1).reshape(1, 1)), ("u", arr((1, 3)))], opset=13)
    np.testing.assert_array_equal(x, before)
