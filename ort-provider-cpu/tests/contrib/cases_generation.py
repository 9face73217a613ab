"""Contrib-op cases of the generation ops (GreedySearch, BeamSearch, Sampling): one-node
models whose ``decoder`` graph attribute is a tiny GPT-2 style decoder built here.

The decoder embeds ``input_ids`` and ``position_ids``, appends the embeddings as key and value
to each layer's ``past_<i>`` along the sequence axis (``present_<i>``), averages the keys the
``attention_mask`` keeps and projects ``tanh(embedding + average)`` to the vocabulary: small,
but its logits depend on every feed the search loop builds (token, position, mask, past
state), so a wrong feed changes the generated sequence.
"""

from __future__ import annotations

import numpy as np
from contrib_case import Case
from onnx import GraphProto, TensorProto, helper, numpy_helper

i32 = np.int32
f32 = np.float32


def gpt_decoder(vocab: int = 11, dim: int = 4, heads: int = 1, layers: int = 2,
                max_pos: int = 32, seed: int = 0, scale: float = 3.0) -> GraphProto:
    """A GPT-2 style decoder graph (inputs input_ids, position_ids, attention_mask, past_*;
    outputs logits, present_*) with random weights drawn from ``seed``."""
    r = np.random.default_rng(seed)
    hidden = heads * dim
    weights = {"E": r.standard_normal((vocab, hidden)).astype(f32),
               "P": (0.5 * r.standard_normal((max_pos, hidden))).astype(f32),
               "W": (scale * r.standard_normal((hidden, vocab))).astype(f32),
               "kv_shape": np.array([0, 0, heads, dim], np.int64),
               "flat_shape": np.array([0, 0, hidden], np.int64),
               "zero": np.array(0, np.int64), "ax0": np.array([0], np.int64),
               "ax1": np.array([1], np.int64), "ax2": np.array([2], np.int64)}
    n = helper.make_node
    nodes = [n("Gather", ["E", "input_ids"], ["emb"]),
             n("Gather", ["P", "position_ids"], ["pos"]),
             n("Add", ["emb", "pos"], ["x"]),                         # (B, S, hidden)
             n("Reshape", ["x", "kv_shape"], ["x4"]),                  # (B, S, H, D)
             n("Transpose", ["x4"], ["k"], perm=[0, 2, 1, 3]),         # (B, H, S, D)
             n("Unsqueeze", ["k", "ax0"], ["k5"]),
             n("Concat", ["k5", "k5"], ["kv"], axis=0),                # (2, B, H, S, D)
             n("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
             n("Unsqueeze", ["maskf", "ax2"], ["mask3"])]              # (B, T, 1)
    sums = []
    for i in range(layers):
        nodes += [n("Concat", [f"past_{i}", "kv"], [f"present_{i}"], axis=3),
                  n("Gather", [f"present_{i}", "zero"], [f"key_{i}"], axis=0),
                  n("Transpose", [f"key_{i}"], [f"keyt_{i}"], perm=[0, 2, 1, 3]),
                  n("Reshape", [f"keyt_{i}", "flat_shape"], [f"keyf_{i}"]),  # (B, T, hidden)
                  n("Mul", [f"keyf_{i}", "mask3"], [f"km_{i}"]),
                  n("ReduceSum", [f"km_{i}", "ax1"], [f"ks_{i}"], keepdims=1)]
        sums.append(f"ks_{i}")
    nodes += [n("Sum", sums, ["ksum"]),
              n("ReduceSum", ["mask3", "ax1"], ["msum"], keepdims=1),
              n("Div", ["ksum", "msum"], ["ctx"]),
              n("Add", ["x", "ctx"], ["h"]),
              n("Tanh", ["h"], ["ht"]),
              n("MatMul", ["ht", "W"], ["logits"])]
    ft = TensorProto.FLOAT
    inputs = [helper.make_tensor_value_info(name, TensorProto.INT32, ["batch", size])
              for name, size in (("input_ids", "seq"), ("position_ids", "seq"),
                                 ("attention_mask", "total"))]
    inputs += [helper.make_tensor_value_info(f"past_{i}", ft, [2, "batch", heads, "past", dim])
               for i in range(layers)]
    outputs = [helper.make_tensor_value_info("logits", ft, ["batch", "seq", vocab])]
    outputs += [helper.make_tensor_value_info(f"present_{i}", ft,
                                              [2, "batch", heads, "total", dim])
                for i in range(layers)]
    return helper.make_graph(nodes, "decoder", inputs, outputs,
                             [numpy_helper.from_array(v, k) for k, v in weights.items()])


def s32(value: int) -> np.ndarray:
    """A one-element int32 input (how onnxruntime's converters feed scalars)."""
    return np.array([value], i32)


def s_f(value: float) -> np.ndarray:
    """A one-element float input."""
    return np.array([value], f32)


DEC = gpt_decoder()
INIT = gpt_decoder(seed=5)
DEC2 = gpt_decoder(vocab=13, dim=3, heads=2, layers=1, seed=3, scale=2.0)
IDS = np.array([[1, 2, 3], [0, 4, 5]], i32)            # row 1 left-padded (pad 0)
IDS3 = np.array([[7, 3, 2, 5], [1, 1, 6, 2], [0, 0, 8, 4]], i32)
G = {"decoder": DEC, "eos_token_id": 9, "pad_token_id": 0}
G2 = {"decoder": DEC2, "eos_token_id": 3, "pad_token_id": 12}
VMASK = np.array([1, 1, 1, 1, 0, 1, 0, 1, 1, 0, 1], i32)  # bans eos: no early stop
PMASK = np.array([[1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1]], i32)
# the scores output of a search that stops before max_length (every batch entry done) is
# left uninitialized past the last step by onnxruntime: such cases do not request it
NO_SCORES = [True, True, False]
AMASK = np.array([[1, 1, 1], [0, 1, 1]], i32)
PRESENCE = np.array([[0, 1, 0, 0, 1, 0, 0, 0, 0, 1, 0], [1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]], i32)


def sampling(ids, max_length, seed, *, min_length=None, repetition_penalty=None,
             vocab_mask=None, prefix_vocab_mask=None, attention_mask=None, presence_mask=None):
    """Sampling's inputs; a fixed ``seed`` makes onnxruntime's draws reproducible."""
    return [ids, s32(max_length), None if min_length is None else s32(min_length),
            None if repetition_penalty is None else s_f(repetition_penalty), vocab_mask,
            prefix_vocab_mask, attention_mask, presence_mask, s32(seed)]


def beam(ids, max_length, num_beams, num_return, *, min_length=0, length_penalty=1.0,
         repetition_penalty=None, vocab_mask=None, prefix_vocab_mask=None,
         attention_mask=None):
    """BeamSearch's inputs (onnxruntime's CPU kernel needs min_length and length_penalty)."""
    return [ids, s32(max_length), s32(min_length), s32(num_beams), s32(num_return),
            s_f(length_penalty),
            None if repetition_penalty is None else s_f(repetition_penalty),
            vocab_mask, prefix_vocab_mask, attention_mask]


CASES = [
    # GreedySearch
    Case("GreedySearch_basic", "GreedySearch", [IDS, s32(8)], G),
    Case("GreedySearch_eos_one_row", "GreedySearch", [IDS, s32(8)], {**G, "eos_token_id": 7}),
    Case("GreedySearch_min_length", "GreedySearch", [IDS, s32(9), s32(7)],
         {**G, "eos_token_id": 7}),
    Case("GreedySearch_repetition_penalty", "GreedySearch", [IDS, s32(10), None, s_f(1.8)], G),
    Case("GreedySearch_no_repeat_ngram", "GreedySearch", [IDS, s32(12)],
         {**G, "no_repeat_ngram_size": 2}),
    Case("GreedySearch_no_repeat_unigram", "GreedySearch", [IDS, s32(10)],
         {**G, "no_repeat_ngram_size": 1}),
    Case("GreedySearch_vocab_masks", "GreedySearch", [IDS, s32(9), None, None, VMASK, PMASK],
         G),
    Case("GreedySearch_attention_mask", "GreedySearch",
         [IDS, s32(9), None, None, None, None, AMASK], G),
    Case("GreedySearch_two_heads_one_layer", "GreedySearch", [IDS3, s32(11)], G2),
    # BeamSearch
    Case("BeamSearch_basic", "BeamSearch", beam(IDS, 8, 3, 2), G, outputs=3, atol=1e-5),
    Case("BeamSearch_sequences_only", "BeamSearch", beam(IDS, 8, 2, 1), G),
    Case("BeamSearch_four_beams", "BeamSearch", beam(IDS3, 10, 4, 4), G2, outputs=3,
         atol=1e-5),
    Case("BeamSearch_eos", "BeamSearch", beam(IDS, 12, 3, 3), {**G, "eos_token_id": 6},
         outputs=NO_SCORES, atol=1e-5),
    Case("BeamSearch_eos_early_stopping", "BeamSearch", beam(IDS, 12, 3, 2),
         {**G, "eos_token_id": 6, "early_stopping": 1}, outputs=NO_SCORES, atol=1e-5),
    Case("BeamSearch_length_penalty", "BeamSearch", beam(IDS, 12, 3, 3, length_penalty=0.6),
         {**G, "eos_token_id": 6}, outputs=NO_SCORES, atol=1e-5),
    Case("BeamSearch_min_length", "BeamSearch", beam(IDS, 12, 3, 2, min_length=9),
         {**G, "eos_token_id": 6}, outputs=3, atol=1e-5),
    Case("BeamSearch_repetition_penalty", "BeamSearch",
         beam(IDS, 10, 2, 2, repetition_penalty=1.5), G, outputs=3, atol=1e-5),
    Case("BeamSearch_no_repeat_ngram", "BeamSearch", beam(IDS, 12, 3, 2),
         {**G, "no_repeat_ngram_size": 2}, outputs=3, atol=1e-5),
    Case("BeamSearch_vocab_masks", "BeamSearch",
         beam(IDS, 9, 2, 2, vocab_mask=VMASK, prefix_vocab_mask=PMASK), G, outputs=3,
         atol=1e-5),
    Case("BeamSearch_attention_mask", "BeamSearch", beam(IDS, 9, 2, 1, attention_mask=AMASK),
         G, outputs=[True, True, False], atol=1e-5),
    Case("BeamSearch_batch_done_scores", "BeamSearch", beam(IDS, 10, 2, 2),
         {**G, "eos_token_id": 4, "early_stopping": 1}, outputs=3, atol=1e-5),
    Case("BeamSearch_three_batches_eos", "BeamSearch", beam(IDS3, 10, 2, 1),
         {**G2, "eos_token_id": 3}, outputs=NO_SCORES, atol=1e-5),
    # onnxruntime infers the output shapes from initializer max_length/num_beams/
    # num_return_sequences values, which the core's declared inference does not see
    Case("GreedySearch_constant_max_length", "GreedySearch", [IDS, s32(8)], G, constants=(1,)),
    Case("BeamSearch_constant_scalars", "BeamSearch", beam(IDS, 8, 3, 2), G, outputs=3,
         constants=(1, 2, 3, 4, 5), atol=1e-5),
    Case("BeamSearch_one_beam", "BeamSearch", beam(IDS, 8, 1, 1), G, outputs=3, atol=1e-5),
    # init_decoder runs the first step (the whole prompt), decoder the others
    Case("GreedySearch_init_decoder", "GreedySearch", [IDS, s32(8)], {**G, "init_decoder": INIT}),
    Case("BeamSearch_init_decoder", "BeamSearch", beam(IDS, 8, 3, 2), {**G, "init_decoder": INIT},
         outputs=3, atol=1e-5),
    Case("Sampling_init_decoder", "Sampling", sampling(IDS, 9, 8),
         {**G, "top_p": 0.9, "eos_token_id": 10, "init_decoder": INIT}),
    # Sampling: onnxruntime draws with libstdc++'s minstd_rand0 seeded by the seed input, so
    # a seed reproduces its sequences (without a seed it draws a random one: not comparable)
    Case("Sampling_top_p", "Sampling", sampling(IDS, 10, 1), {**G, "top_p": 0.9}),
    Case("Sampling_top_p_small", "Sampling", sampling(IDS3, 11, 12345), {**G2, "top_p": 0.5}),
    Case("Sampling_custom", "Sampling", sampling(IDS, 10, 7), {**G, "top_p": 0.6, "custom": 1}),
    Case("Sampling_temperature_min_keep", "Sampling", sampling(IDS, 10, 99),
         {**G, "top_p": 0.3, "temperature": 0.7, "min_tokens_to_keep": 3}),
    Case("Sampling_filter_value_eos", "Sampling", sampling(IDS, 12, 5, min_length=6),
         {**G, "top_p": 0.95, "filter_value": -1e4, "eos_token_id": 7}),
    Case("Sampling_penalties_masks", "Sampling",
         sampling(IDS, 10, 3, repetition_penalty=1.4, vocab_mask=VMASK,
                  prefix_vocab_mask=PMASK, presence_mask=PRESENCE),
         {**G, "top_p": 0.8, "presence_penalty": 0.5, "no_repeat_ngram_size": 2}),
    Case("Sampling_attention_mask", "Sampling", sampling(IDS, 9, 21, attention_mask=AMASK),
         {**G, "top_p": 0.9}, outputs=2),
]
