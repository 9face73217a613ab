"""The fuzz suite's seed corpus: small valid models, the same bytes on every call.

Every model is built with :mod:`onnx.helper` (default domain opset 17, IR version 8, weights
from ``np.random.default_rng`` with a fixed seed) and both ort and onnxruntime load and run it
unmutated (``test_fuzz.py`` checks that). Between them the models cover elementwise ops,
reductions, convolution and pooling, MatMul/Gemm, shape ops, casts, constants, If/Loop/Scan,
sequences, a model-local function, RNNs, quantization, ai.onnx.ml ops, com.microsoft contrib
ops, small and large initializers (at least 64 KiB, which ort detaches into its weight store),
a sparse initializer and external data.

A :class:`Seed` is a model plus the files that sit next to it (external data); the harness
writes both into a temporary folder before a runtime loads the model by path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = ["OPSET", "ML_OPSET", "IR_VERSION", "Seed", "seeds", "seed_names"]

#: The default-domain opset of every seed.
OPSET = 17
#: The ai.onnx.ml opset of the seeds that use ML ops.
ML_OPSET = 3
#: The IR version every seed declares.
IR_VERSION = 8

F = TensorProto.FLOAT
I64 = TensorProto.INT64


@dataclasses.dataclass(frozen=True)
class Seed:
    """One corpus model: ``model`` plus the files (name -> bytes) written next to it."""

    name: str
    model: onnx.ModelProto
    files: dict[str, bytes] = dataclasses.field(default_factory=dict)


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng(sum(name.encode()))


def _value(name: str, elem_type: int, shape: Sequence[int | str] | None) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem_type, None if shape is None else list(shape))


def _init(name: str, array: np.ndarray) -> TensorProto:
    return numpy_helper.from_array(np.asarray(array), name)


def _model(name: str, nodes: list[onnx.NodeProto], inputs: list[onnx.ValueInfoProto],
           outputs: list[onnx.ValueInfoProto], initializers: Sequence[TensorProto] = (),
           domains: dict[str, int] | None = None, **graph_kwargs) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, name, inputs, outputs, list(initializers), **graph_kwargs)
    opsets = [helper.make_opsetid("", OPSET)]
    opsets += [helper.make_opsetid(domain, version) for domain, version in (domains or {}).items()]
    model = helper.make_model(graph, opset_imports=opsets, ir_version=IR_VERSION,
                              producer_name="ort-fuzz-corpus")
    return model


def _weights(name: str, shape: Sequence[int]) -> np.ndarray:
    return _rng(name).standard_normal(shape).astype(np.float32)


# -- elementwise ------------------------------------------------------------------------------

def elementwise() -> Seed:
    nodes = [
        helper.make_node("Add", ["X", "B"], ["s"]),
        helper.make_node("Mul", ["s", "X"], ["m"]),
        helper.make_node("Sub", ["m", "B"], ["d"]),
        helper.make_node("Div", ["d", "two"], ["Y"]),
    ]
    return Seed("elementwise", _model(
        "elementwise", nodes, [_value("X", F, [2, 3]), _value("B", F, [3])], [_value("Y", F, [2, 3])],
        [_init("two", np.float32(2.0))]))


def unary_chain() -> Seed:
    nodes = [
        helper.make_node("Abs", ["X"], ["a"]),
        helper.make_node("Add", ["a", "one"], ["a1"]),
        helper.make_node("Log", ["a1"], ["l"]),
        helper.make_node("Sqrt", ["a1"], ["q"]),
        helper.make_node("Sigmoid", ["l"], ["s"]),
        helper.make_node("Tanh", ["q"], ["t"]),
        helper.make_node("Relu", ["X"], ["r"]),
        helper.make_node("Exp", ["s"], ["e"]),
        helper.make_node("Sum", ["e", "t", "r"], ["Y"]),
    ]
    return Seed("unary_chain", _model(
        "unary_chain", nodes, [_value("X", F, ["N", 4])], [_value("Y", F, ["N", 4])],
        [_init("one", np.float32(1.0))]))


def logic_where() -> Seed:
    nodes = [
        helper.make_node("Greater", ["X", "Y"], ["g"]),
        helper.make_node("Not", ["g"], ["ng"]),
        helper.make_node("Equal", ["X", "X"], ["eq"]),
        helper.make_node("And", ["ng", "eq"], ["c"]),
        helper.make_node("Where", ["c", "X", "Y"], ["Z"]),
    ]
    return Seed("logic_where", _model(
        "logic_where", nodes, [_value("X", F, [3, 2]), _value("Y", F, [3, 2])],
        [_value("Z", F, [3, 2])]))


def int_arith() -> Seed:
    nodes = [
        helper.make_node("Add", ["A", "K"], ["s"]),
        helper.make_node("Mul", ["s", "A"], ["m"]),
        helper.make_node("Mod", ["m", "K"], ["r"]),
        helper.make_node("Max", ["r", "A"], ["mx"]),
        helper.make_node("Min", ["mx", "K"], ["Y"]),
    ]
    return Seed("int_arith", _model(
        "int_arith", nodes, [_value("A", I64, [4])], [_value("Y", I64, [4])],
        [_init("K", np.array([3, 5, 7, 2], np.int64))]))


def float16_ops() -> Seed:
    nodes = [
        helper.make_node("Cast", ["X"], ["h"], to=TensorProto.FLOAT16),
        helper.make_node("Mul", ["h", "w"], ["m"]),
        helper.make_node("Cast", ["m"], ["Y"], to=F),
    ]
    return Seed("float16_ops", _model(
        "float16_ops", nodes, [_value("X", F, [2, 2])], [_value("Y", F, [2, 2])],
        [_init("w", np.array([[1.5, -2.0], [0.25, 4.0]], np.float16))]))


# -- reductions, normalization ----------------------------------------------------------------

def reductions() -> Seed:
    nodes = [
        helper.make_node("ReduceSum", ["X", "axes"], ["s"], keepdims=1),
        helper.make_node("ReduceMean", ["X"], ["m"], axes=[0], keepdims=0),
        helper.make_node("ReduceMax", ["X"], ["mx"], axes=[1], keepdims=0),
        helper.make_node("ArgMax", ["X"], ["am"], axis=1, keepdims=0),
        helper.make_node("Add", ["m", "mx"], ["Y"]),
    ]
    return Seed("reductions", _model(
        "reductions", nodes, [_value("X", F, [3, 3])],
        [_value("s", F, [3, 1]), _value("Y", F, [3]), _value("am", I64, [3])],
        [_init("axes", np.array([1], np.int64))]))


def softmax_norm() -> Seed:
    nodes = [
        helper.make_node("Softmax", ["X"], ["s"], axis=-1),
        helper.make_node("LayerNormalization", ["s", "gamma", "beta"], ["Y"], axis=-1, epsilon=1e-5),
    ]
    return Seed("softmax_norm", _model(
        "softmax_norm", nodes, [_value("X", F, [2, 4])], [_value("Y", F, [2, 4])],
        [_init("gamma", np.ones(4, np.float32)), _init("beta", np.zeros(4, np.float32))]))


# -- convolution and pooling ------------------------------------------------------------------

def conv_pool() -> Seed:
    nodes = [
        helper.make_node("Conv", ["X", "W", "B"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("AveragePool", ["p"], ["a"], kernel_shape=[2, 2]),
        helper.make_node("GlobalAveragePool", ["a"], ["Y"]),
    ]
    return Seed("conv_pool", _model(
        "conv_pool", nodes, [_value("X", F, [1, 2, 6, 6])], [_value("Y", F, [1, 3, 1, 1])],
        [_init("W", _weights("conv_pool", [3, 2, 3, 3])), _init("B", np.zeros(3, np.float32))]))


def conv_batchnorm() -> Seed:
    nodes = [
        helper.make_node("Conv", ["X", "W"], ["c"], kernel_shape=[1, 1], group=2),
        helper.make_node("BatchNormalization", ["c", "scale", "bias", "mean", "var"], ["b"]),
        helper.make_node("LeakyRelu", ["b"], ["Y"], alpha=0.1),
    ]
    return Seed("conv_batchnorm", _model(
        "conv_batchnorm", nodes, [_value("X", F, [1, 4, 3, 3])], [_value("Y", F, [1, 4, 3, 3])],
        [_init("W", _weights("conv_batchnorm", [4, 2, 1, 1])),
         _init("scale", np.full(4, 1.5, np.float32)), _init("bias", np.full(4, 0.1, np.float32)),
         _init("mean", np.zeros(4, np.float32)), _init("var", np.ones(4, np.float32))]))


# -- matrix products --------------------------------------------------------------------------

def matmul_gemm() -> Seed:
    nodes = [
        helper.make_node("MatMul", ["X", "W"], ["h"]),
        helper.make_node("Gemm", ["h", "W2", "C"], ["Y"], transB=1, alpha=0.5, beta=2.0),
    ]
    return Seed("matmul_gemm", _model(
        "matmul_gemm", nodes, [_value("X", F, ["batch", 4])], [_value("Y", F, ["batch", 2])],
        [_init("W", _weights("mm_w", [4, 3])), _init("W2", _weights("mm_w2", [2, 3])),
         _init("C", np.array([0.5, -0.5], np.float32))]))


def large_initializer() -> Seed:
    """A 128 KiB weight (ort moves initializers of 64 KiB and more into its weight store)."""
    nodes = [
        helper.make_node("MatMul", ["X", "W"], ["h"]),
        helper.make_node("Add", ["h", "B"], ["Y"]),
    ]
    return Seed("large_initializer", _model(
        "large_initializer", nodes, [_value("X", F, [2, 128])], [_value("Y", F, [2, 256])],
        [_init("W", _weights("large", [128, 256])), _init("B", np.zeros(256, np.float32))]))


def einsum_matmul() -> Seed:
    nodes = [helper.make_node("Einsum", ["X", "W"], ["Y"], equation="bi,ij->bj")]
    return Seed("einsum", _model(
        "einsum", nodes, [_value("X", F, [2, 3])], [_value("Y", F, [2, 2])],
        [_init("W", _weights("einsum", [3, 2]))]))


# -- shape ops --------------------------------------------------------------------------------

def reshape_transpose() -> Seed:
    nodes = [
        helper.make_node("Reshape", ["X", "shape"], ["r"]),
        helper.make_node("Transpose", ["r"], ["Y"], perm=[2, 0, 1]),
    ]
    return Seed("reshape_transpose", _model(
        "reshape_transpose", nodes, [_value("X", F, [2, 6])], [_value("Y", F, [3, 2, 2])],
        [_init("shape", np.array([2, 2, 3], np.int64))]))


def concat_split() -> Seed:
    nodes = [
        helper.make_node("Concat", ["X", "Y"], ["c"], axis=1),
        helper.make_node("Split", ["c", "split"], ["a", "b"], axis=1),
        helper.make_node("Mul", ["a", "b"], ["Z"]),
    ]
    return Seed("concat_split", _model(
        "concat_split", nodes, [_value("X", F, [2, 2]), _value("Y", F, [2, 2])],
        [_value("Z", F, [2, 2])], [_init("split", np.array([2, 2], np.int64))]))


def slice_gather() -> Seed:
    nodes = [
        helper.make_node("Slice", ["X", "starts", "ends", "axes", "steps"], ["s"]),
        helper.make_node("Gather", ["s", "idx"], ["g"], axis=0),
        helper.make_node("GatherElements", ["X", "eidx"], ["ge"], axis=1),
    ]
    return Seed("slice_gather", _model(
        "slice_gather", nodes, [_value("X", F, [4, 5])], [_value("g", F, [3, 4]), _value("ge", F, [4, 2])],
        [_init("starts", np.array([0, 1], np.int64)), _init("ends", np.array([4, 5], np.int64)),
         _init("axes", np.array([0, 1], np.int64)), _init("steps", np.array([2, 1], np.int64)),
         _init("idx", np.array([1, 0, 1], np.int64)),
         _init("eidx", np.array([[0, 4]] * 4, np.int64))]))


def squeeze_flatten() -> Seed:
    nodes = [
        helper.make_node("Unsqueeze", ["X", "axes"], ["u"]),
        helper.make_node("Squeeze", ["u", "axes"], ["s"]),
        helper.make_node("Flatten", ["s"], ["f"], axis=1),
        helper.make_node("Identity", ["f"], ["Y"]),
    ]
    return Seed("squeeze_flatten", _model(
        "squeeze_flatten", nodes, [_value("X", F, [2, 3, 2])], [_value("Y", F, [2, 6])],
        [_init("axes", np.array([0, 3], np.int64))]))


def shape_generators() -> Seed:
    """Shape, ConstantOfShape, Expand, Tile, Range: the ops whose output size comes from data."""
    nodes = [
        helper.make_node("Shape", ["X"], ["shp"]),
        helper.make_node("ConstantOfShape", ["shp"], ["zeros"],
                         value=numpy_helper.from_array(np.array([1.0], np.float32))),
        helper.make_node("Expand", ["B", "shp"], ["e"]),
        helper.make_node("Add", ["zeros", "e"], ["z"]),
        helper.make_node("Tile", ["z", "reps"], ["T"]),
        helper.make_node("Range", ["start", "limit", "delta"], ["R"]),
        helper.make_node("Size", ["T"], ["S"]),
    ]
    return Seed("shape_generators", _model(
        "shape_generators", nodes, [_value("X", F, [2, 3])],
        [_value("T", F, [4, 3]), _value("R", I64, [3]), _value("S", I64, [])],
        [_init("B", np.array([1.0, 2.0, 3.0], np.float32)), _init("reps", np.array([2, 1], np.int64)),
         _init("start", np.array(0, np.int64)), _init("limit", np.array(6, np.int64)),
         _init("delta", np.array(2, np.int64))]))


def pad_depth() -> Seed:
    nodes = [
        helper.make_node("Pad", ["X", "pads"], ["p"], mode="constant"),
        helper.make_node("DepthToSpace", ["p"], ["Y"], blocksize=2),
    ]
    return Seed("pad_depth", _model(
        "pad_depth", nodes, [_value("X", F, [1, 4, 2, 2])], [_value("Y", F, [1, 1, 8, 8])],
        [_init("pads", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64))]))


def topk_cumsum() -> Seed:
    nodes = [
        helper.make_node("TopK", ["X", "k"], ["values", "indices"], axis=-1),
        helper.make_node("CumSum", ["values", "axis"], ["Y"]),
    ]
    return Seed("topk_cumsum", _model(
        "topk_cumsum", nodes, [_value("X", F, [2, 5])],
        [_value("Y", F, [2, 3]), _value("indices", I64, [2, 3])],
        [_init("k", np.array([3], np.int64)), _init("axis", np.array(1, np.int64))]))


# -- casts and constants ----------------------------------------------------------------------

def casts() -> Seed:
    nodes = [
        helper.make_node("Cast", ["X"], ["i"], to=TensorProto.INT32),
        helper.make_node("Cast", ["i"], ["d"], to=TensorProto.DOUBLE),
        helper.make_node("CastLike", ["d", "X"], ["f"]),
        helper.make_node("Cast", ["X"], ["b"], to=TensorProto.BOOL),
        helper.make_node("Cast", ["b"], ["u"], to=TensorProto.UINT8),
    ]
    return Seed("casts", _model(
        "casts", nodes, [_value("X", F, [3])], [_value("f", F, [3]), _value("u", TensorProto.UINT8, [3])]))


def constants() -> Seed:
    nodes = [
        helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(
            np.array([[1.0, 2.0]], np.float32))),
        helper.make_node("Constant", [], ["f"], value_float=0.5),
        helper.make_node("Constant", [], ["ints"], value_ints=[1, 2]),
        helper.make_node("Mul", ["X", "c"], ["m"]),
        helper.make_node("Add", ["m", "f"], ["Y"]),
        helper.make_node("Cast", ["ints"], ["Z"], to=F),
    ]
    return Seed("constants", _model(
        "constants", nodes, [_value("X", F, [3, 2])], [_value("Y", F, [3, 2]), _value("Z", F, [2])]))


def strings() -> Seed:
    nodes = [
        helper.make_node("Identity", ["S"], ["s"]),
        helper.make_node("Concat", ["s", "extra"], ["Y"], axis=0),
    ]
    extra = helper.make_tensor("extra", TensorProto.STRING, [1], [b"tail"])
    return Seed("strings", _model(
        "strings", nodes, [_value("S", TensorProto.STRING, [2])],
        [_value("Y", TensorProto.STRING, [3])], [extra]))


# -- control flow, sequences, functions -------------------------------------------------------

def if_branches() -> Seed:
    then_graph = helper.make_graph(
        [helper.make_node("Add", ["X", "one"], ["t"])], "then", [], [_value("t", F, [2])])
    else_graph = helper.make_graph(
        [helper.make_node("Neg", ["X"], ["e"])], "else", [], [_value("e", F, [2])])
    nodes = [
        helper.make_node("ReduceSum", ["X"], ["total"], keepdims=0),
        helper.make_node("Greater", ["total", "zero"], ["cond"]),
        helper.make_node("If", ["cond"], ["Y"], then_branch=then_graph, else_branch=else_graph),
    ]
    return Seed("if_branches", _model(
        "if_branches", nodes, [_value("X", F, [2])], [_value("Y", F, [2])],
        [_init("one", np.float32(1.0)), _init("zero", np.float32(0.0))]))


def loop_accumulate() -> Seed:
    body = helper.make_graph(
        [helper.make_node("Add", ["acc_in", "X"], ["acc_out"]),
         helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Mul", ["acc_out", "half"], ["scan_out"])],
        "body",
        [_value("i", I64, []), helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         _value("acc_in", F, [2])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []), _value("acc_out", F, [2]),
         _value("scan_out", F, [2])])
    nodes = [helper.make_node("Loop", ["trip", "cond", "init"], ["final", "stacked"], body=body)]
    return Seed("loop_accumulate", _model(
        "loop_accumulate", nodes, [_value("X", F, [2])],
        [_value("final", F, [2]), _value("stacked", F, [3, 2])],
        [_init("trip", np.array(3, np.int64)), _init("cond", np.array(True)),
         _init("init", np.zeros(2, np.float32)), _init("half", np.float32(0.5))]))


def scan_cumulative() -> Seed:
    body = helper.make_graph(
        [helper.make_node("Add", ["state_in", "x_t"], ["state_out"]),
         helper.make_node("Identity", ["state_out"], ["y_t"])],
        "scan_body",
        [_value("state_in", F, [2]), _value("x_t", F, [2])],
        [_value("state_out", F, [2]), _value("y_t", F, [2])])
    nodes = [helper.make_node("Scan", ["init", "X"], ["final", "Y"], body=body, num_scan_inputs=1)]
    return Seed("scan_cumulative", _model(
        "scan_cumulative", nodes, [_value("X", F, [3, 2])],
        [_value("final", F, [2]), _value("Y", F, [3, 2])], [_init("init", np.zeros(2, np.float32))]))


def sequences() -> Seed:
    nodes = [
        helper.make_node("SequenceConstruct", ["X", "Y"], ["seq"]),
        helper.make_node("SequenceAt", ["seq", "pos"], ["at"]),
        helper.make_node("SequenceLength", ["seq"], ["n"]),
        helper.make_node("ConcatFromSequence", ["seq"], ["cat"], axis=0),
        helper.make_node("Add", ["at", "X"], ["Z"]),
    ]
    return Seed("sequences", _model(
        "sequences", nodes, [_value("X", F, [2]), _value("Y", F, [2])],
        [_value("Z", F, [2]), _value("n", I64, []), _value("cat", F, [4])],
        [_init("pos", np.array(1, np.int64))]))


def local_function() -> Seed:
    function = helper.make_function(
        "custom", "ScaledAdd", ["a", "b"], ["y"],
        [helper.make_node("Add", ["a", "b"], ["s"]),
         helper.make_node("Constant", [], ["k"], value_float=3.0),
         helper.make_node("Mul", ["s", "k"], ["y"])],
        [helper.make_opsetid("", OPSET)])
    nodes = [helper.make_node("ScaledAdd", ["X", "Y"], ["Z"], domain="custom")]
    model = _model("local_function", nodes, [_value("X", F, [2]), _value("Y", F, [2])],
                   [_value("Z", F, [2])], domains={"custom": 1})
    model.functions.append(function)
    return Seed("local_function", model)


# -- recurrent and quantized ------------------------------------------------------------------

def rnn_gru() -> Seed:
    hidden, features = 3, 2
    nodes = [helper.make_node("GRU", ["X", "W", "R", "B"], ["Y", "Y_h"], hidden_size=hidden)]
    return Seed("rnn_gru", _model(
        "rnn_gru", nodes, [_value("X", F, [2, 1, features])],
        [_value("Y", F, [2, 1, 1, hidden]), _value("Y_h", F, [1, 1, hidden])],
        [_init("W", _weights("gru_w", [1, 3 * hidden, features])),
         _init("R", _weights("gru_r", [1, 3 * hidden, hidden])),
         _init("B", np.zeros([1, 6 * hidden], np.float32))]))


def rnn_lstm() -> Seed:
    hidden, features = 2, 3
    nodes = [helper.make_node("LSTM", ["X", "W", "R"], ["Y"], hidden_size=hidden)]
    return Seed("rnn_lstm", _model(
        "rnn_lstm", nodes, [_value("X", F, [2, 1, features])], [_value("Y", F, [2, 1, 1, hidden])],
        [_init("W", _weights("lstm_w", [1, 4 * hidden, features])),
         _init("R", _weights("lstm_r", [1, 4 * hidden, hidden]))]))


def quantize() -> Seed:
    nodes = [
        helper.make_node("QuantizeLinear", ["X", "scale", "zp"], ["q"]),
        helper.make_node("DequantizeLinear", ["q", "scale", "zp"], ["Y"]),
    ]
    return Seed("quantize", _model(
        "quantize", nodes, [_value("X", F, [2, 3])], [_value("Y", F, [2, 3])],
        [_init("scale", np.float32(0.05)), _init("zp", np.uint8(128))]))


# -- ai.onnx.ml -------------------------------------------------------------------------------

def ml_linear_zipmap() -> Seed:
    nodes = [
        helper.make_node("LinearClassifier", ["X"], ["label", "scores"], domain="ai.onnx.ml",
                         coefficients=[0.5, -1.0, 1.0, 0.25, -0.5, 2.0], intercepts=[0.1, -0.1],
                         classlabels_ints=[0, 1], post_transform="SOFTMAX"),
        helper.make_node("ZipMap", ["scores"], ["probabilities"], domain="ai.onnx.ml",
                         classlabels_int64s=[0, 1]),
    ]
    zipped = helper.make_value_info("probabilities", helper.make_sequence_type_proto(
        helper.make_map_type_proto(I64, helper.make_tensor_type_proto(F, []))))
    return Seed("ml_linear_zipmap", _model(
        "ml_linear_zipmap", nodes, [_value("X", F, [2, 3])], [_value("label", I64, [2]), zipped],
        domains={"ai.onnx.ml": ML_OPSET}))


def ml_tree_regressor() -> Seed:
    nodes = [helper.make_node(
        "TreeEnsembleRegressor", ["X"], ["Y"], domain="ai.onnx.ml", n_targets=1,
        nodes_treeids=[0, 0, 0], nodes_nodeids=[0, 1, 2], nodes_featureids=[0, 0, 0],
        nodes_modes=["BRANCH_LEQ", "LEAF", "LEAF"], nodes_values=[0.5, 0.0, 0.0],
        nodes_truenodeids=[1, 0, 0], nodes_falsenodeids=[2, 0, 0],
        nodes_hitrates=[1.0, 1.0, 1.0], nodes_missing_value_tracks_true=[0, 0, 0],
        target_treeids=[0, 0], target_nodeids=[1, 2], target_ids=[0, 0], target_weights=[-1.0, 1.0],
        post_transform="NONE", aggregate_function="SUM")]
    return Seed("ml_tree_regressor", _model(
        "ml_tree_regressor", nodes, [_value("X", F, [3, 2])], [_value("Y", F, [3, 1])],
        domains={"ai.onnx.ml": ML_OPSET}))


def ml_normalizer_scaler() -> Seed:
    nodes = [
        helper.make_node("Scaler", ["X"], ["s"], domain="ai.onnx.ml", offset=[0.5, 0.5, 0.5],
                         scale=[2.0, 1.0, 0.5]),
        helper.make_node("Normalizer", ["s"], ["Y"], domain="ai.onnx.ml", norm="L2"),
    ]
    return Seed("ml_normalizer_scaler", _model(
        "ml_normalizer_scaler", nodes, [_value("X", F, [2, 3])], [_value("Y", F, [2, 3])],
        domains={"ai.onnx.ml": ML_OPSET}))


# -- com.microsoft ----------------------------------------------------------------------------

def contrib_ops() -> Seed:
    nodes = [
        helper.make_node("FusedMatMul", ["X", "W"], ["m"], domain="com.microsoft", alpha=0.5,
                         transB=1),
        helper.make_node("QuickGelu", ["m"], ["Y"], domain="com.microsoft", alpha=1.702),
    ]
    return Seed("contrib_ops", _model(
        "contrib_ops", nodes, [_value("X", F, [2, 3])], [_value("Y", F, [2, 4])],
        [_init("W", _weights("contrib", [4, 3]))], domains={"com.microsoft": 1}))


# -- initializers in other forms --------------------------------------------------------------

def sparse_initializer() -> Seed:
    values = numpy_helper.from_array(np.array([1.0, -2.0, 3.0], np.float32), "S")
    indices = numpy_helper.from_array(np.array([1, 5, 10], np.int64), "S_indices")
    sparse = helper.make_sparse_tensor(values, indices, [3, 4])
    nodes = [helper.make_node("Add", ["X", "S"], ["Y"])]
    return Seed("sparse_initializer", _model(
        "sparse_initializer", nodes, [_value("X", F, [3, 4])], [_value("Y", F, [3, 4])],
        sparse_initializer=[sparse]))


def sparse_constant() -> Seed:
    """A Constant whose value is a sparse tensor (ort and onnxruntime both make it dense)."""
    values = numpy_helper.from_array(np.array([4.0, 5.0], np.float32), "values")
    indices = numpy_helper.from_array(np.array([[0, 1], [2, 3]], np.int64), "indices")
    sparse = helper.make_sparse_tensor(values, indices, [3, 4])
    nodes = [helper.make_node("Constant", [], ["c"], sparse_value=sparse),
             helper.make_node("Mul", ["X", "c"], ["Y"])]
    return Seed("sparse_constant", _model(
        "sparse_constant", nodes, [_value("X", F, [3, 4])], [_value("Y", F, [3, 4])]))


def _externalize(tensor: TensorProto, location: str, offset: int) -> bytes:
    """Move ``tensor``'s raw data out to ``location`` at ``offset``; return the data."""
    data = tensor.raw_data
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", str(offset)), ("length", str(len(data)))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return data


def external_data() -> Seed:
    """Two small weights in one file beside the model, the second at an offset."""
    w = _init("W", _weights("external_w", [3, 4]))
    b = _init("B", np.arange(4, dtype=np.float32))
    blob = _externalize(w, "weights.bin", 0)
    blob += _externalize(b, "weights.bin", len(blob))
    nodes = [helper.make_node("MatMul", ["X", "W"], ["m"]), helper.make_node("Add", ["m", "B"], ["Y"])]
    return Seed("external_data", _model(
        "external_data", nodes, [_value("X", F, [2, 3])], [_value("Y", F, [2, 4])], [w, b]),
        {"weights.bin": blob})


def external_data_large() -> Seed:
    """A 128 KiB weight in a file of its own."""
    w = _init("W", _weights("external_large", [256, 128]))
    blob = _externalize(w, "large.bin", 0)
    nodes = [helper.make_node("MatMul", ["X", "W"], ["Y"])]
    return Seed("external_data_large", _model(
        "external_data_large", nodes, [_value("X", F, [1, 256])], [_value("Y", F, [1, 128])], [w]),
        {"large.bin": blob})


#: Every seed builder, in corpus order (mutant ids and their order depend on it: append only).
BUILDERS: tuple[Callable[[], Seed], ...] = (
    elementwise, unary_chain, logic_where, int_arith, float16_ops, reductions, softmax_norm,
    conv_pool, conv_batchnorm, matmul_gemm, large_initializer, einsum_matmul, reshape_transpose,
    concat_split, slice_gather, squeeze_flatten, shape_generators, pad_depth, topk_cumsum, casts,
    constants, strings, if_branches, loop_accumulate, scan_cumulative, sequences, local_function,
    rnn_gru, rnn_lstm, quantize, ml_linear_zipmap, ml_tree_regressor, ml_normalizer_scaler,
    contrib_ops, sparse_initializer, sparse_constant, external_data, external_data_large,
)


def seeds() -> list[Seed]:
    """The corpus, freshly built (callers may mutate what they get)."""
    return [build() for build in BUILDERS]


def seed_names() -> list[str]:
    """The corpus's model names, in corpus order."""
    return [seed.name for seed in seeds()]
