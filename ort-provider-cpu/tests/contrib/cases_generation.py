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


def t5_graphs(vocab: int = 12, dim: int = 4, heads: int = 2, layers: int = 1, seed: int = 0,
              scale: float = 3.0, hidden_input: bool = True, seq_ids: bool = False,
              encoder_decodes: bool = True) -> tuple[GraphProto, GraphProto]:
    """The (encoder, decoder) graphs of a tiny T5-style model with random weights drawn
    from ``seed``. The encoder embeds the source tokens twice (cross-attention keys and
    values, masked by encoder_attention_mask) and scores the start token against their
    average; the decoder scores its token against the mean of its self-attention state
    (past + new) and the sum of the cross state over the mask. ``hidden_input``: the decoder
    takes encoder_hidden_states (unused); ``seq_ids``: its input_ids are the whole sequences
    (the last token is used); ``encoder_decodes`` False: the encoder takes no
    decoder_input_ids and returns only the cross state (the decoder runs every step)."""
    r = np.random.default_rng(seed)
    hd = heads * dim
    w = {"Ek": r.standard_normal((vocab, hd)).astype(f32),
         "Ev": r.standard_normal((vocab, hd)).astype(f32),
         "Ed": r.standard_normal((vocab, hd)).astype(f32),
         "W": (scale * r.standard_normal((hd, vocab))).astype(f32),
         "heads_shape": np.array([0, 0, heads, dim], np.int64),
         "flat_shape": np.array([0, 0, hd], np.int64),
         "ax1": np.array([1], np.int64), "ax2": np.array([2], np.int64)}
    n = helper.make_node
    def split_heads(src, dst):  # (B, S, hd) -> (B, heads, S, D)
        return [n("Reshape", [src, "heads_shape"], [dst + "_r"]),
                n("Transpose", [dst + "_r"], [dst], perm=[0, 2, 1, 3])]
    def merge_mean(src, dst):  # (B, heads, T, D) -> mean over T -> (B, 1, hd)
        return [n("ReduceMean", [src, "ax2"], [dst + "_m"], keepdims=1),
                n("Transpose", [dst + "_m"], [dst + "_t"], perm=[0, 2, 1, 3]),
                n("Reshape", [dst + "_t", "flat_shape"], [dst])]
    I32, F = TensorProto.INT32, TensorProto.FLOAT
    # encoder
    enc = [n("Gather", ["Ek", "encoder_input_ids"], ["ek"]),
           n("Gather", ["Ev", "encoder_input_ids"], ["ev"]),
           n("Cast", ["encoder_attention_mask"], ["mf"], to=F),
           n("Unsqueeze", ["mf", "ax2"], ["m3"]),
           n("Mul", ["ek", "m3"], ["ekm"]), n("Mul", ["ev", "m3"], ["evm"]),
           n("Add", ["ekm", "evm"], ["hidden"]),
           n("Identity", ["hidden"], ["encoder_hidden_states"]),
           n("Gather", ["Ed", "decoder_input_ids"], ["dx"])]
    enc += split_heads("dx", "dk")
    enc += [n("Mul", ["dk", "half"], ["dv"])]
    enc_outs = ["logits", "encoder_hidden_states"]
    for i in range(layers):
        enc += [n("Identity", ["dk"], [f"present_key_self_{i}"]),
                n("Identity", ["dv"], [f"present_value_self_{i}"])]
        enc_outs += [f"present_key_self_{i}", f"present_value_self_{i}"]
    enc += split_heads("ekm", "ck") + split_heads("evm", "cv")
    for i in range(layers):
        enc += [n("Identity", ["ck"], [f"present_key_cross_{i}"]),
                n("Identity", ["cv"], [f"present_value_cross_{i}"])]
        enc_outs += [f"present_key_cross_{i}", f"present_value_cross_{i}"]
    enc += [n("ReduceSum", ["hidden", "ax1"], ["hs"], keepdims=1),
            n("ReduceSum", ["m3", "ax1"], ["ms"], keepdims=1),
            n("Div", ["hs", "ms"], ["ctx"]),
            n("Add", ["dx", "ctx"], ["h"]), n("Tanh", ["h"], ["ht"]),
            n("MatMul", ["ht", "W"], ["logits"])]
    w["half"] = np.array(0.5, f32)
    winit = [numpy_helper.from_array(v, k) for k, v in w.items()]
    enc_in = [helper.make_tensor_value_info("encoder_input_ids", I32, ["batch", "enc_seq"]),
              helper.make_tensor_value_info("encoder_attention_mask", I32, ["batch", "enc_seq"]),
              helper.make_tensor_value_info("decoder_input_ids", I32, ["batch", 1])]
    shapes = {"logits": ["batch", 1, vocab], "encoder_hidden_states": ["batch", "enc_seq", hd]}
    for i in range(layers):
        for kind in ("key", "value"):
            shapes[f"present_{kind}_self_{i}"] = ["batch", heads, 1, dim]
            shapes[f"present_{kind}_cross_{i}"] = ["batch", heads, "enc_seq", dim]
    if not encoder_decodes:
        used = {"decoder_input_ids"}  # drop what depends on the start token
        kept = []
        for node in enc:
            if used.intersection(node.input):
                used.update(node.output)
            else:
                kept.append(node)
        enc, enc_in = kept, enc_in[:2]
        enc_outs = [o for o in enc_outs if "cross" in o]
    encoder = helper.make_graph(
        enc, "encoder", enc_in,
        [helper.make_tensor_value_info(o, F, shapes[o]) for o in enc_outs], winit)
    # decoder
    dec = [n("Gather", ["Ed", "input_ids"], ["x_all"]),
           n("Slice", ["x_all", "minus1", "big", "ax1"], ["x"]) if seq_ids
           else n("Identity", ["x_all"], ["x"]),
           n("Cast", ["encoder_attention_mask"], ["mf"], to=F),
           n("ReduceSum", ["mf", "ax1"], ["msum"], keepdims=1),          # (B, 1)
           n("Unsqueeze", ["msum", "ax2"], ["msum3"])]                   # (B, 1, 1)
    dec += split_heads("x", "k") + [n("Mul", ["k", "half"], ["v"])]
    dec_outs = ["logits"]
    ctx = []
    for i in range(layers):
        dec += [n("Concat", [f"past_key_self_{i}", "k"], [f"present_key_self_{i}"], axis=2),
                n("Concat", [f"past_value_self_{i}", "v"], [f"present_value_self_{i}"], axis=2)]
        dec_outs += [f"present_key_self_{i}", f"present_value_self_{i}"]
        dec += merge_mean(f"present_key_self_{i}", f"sk{i}")
        dec += merge_mean(f"present_value_self_{i}", f"sv{i}")
        dec += [n("ReduceSum", [f"past_key_cross_{i}", "ax2"], [f"ck{i}_s"], keepdims=1),
                n("ReduceSum", [f"past_value_cross_{i}", "ax2"], [f"cv{i}_s"], keepdims=1),
                n("Add", [f"ck{i}_s", f"cv{i}_s"], [f"c{i}_s"]),
                n("Transpose", [f"c{i}_s"], [f"c{i}_t"], perm=[0, 2, 1, 3]),
                n("Reshape", [f"c{i}_t", "flat_shape"], [f"c{i}_f"]),
                n("Div", [f"c{i}_f", "msum3"], [f"c{i}"])]
        ctx += [f"sk{i}", f"sv{i}", f"c{i}"]
    dec += [n("Sum", ["x"] + ctx, ["h"]), n("Tanh", ["h"], ["ht"]),
            n("MatMul", ["ht", "W"], ["logits"])]
    dinit = winit + [numpy_helper.from_array(np.array([-1], np.int64), "minus1"),
                     numpy_helper.from_array(np.array([2**31], np.int64), "big")]
    dec_in = [helper.make_tensor_value_info("input_ids", I32,
                                            ["batch", "dec_seq" if seq_ids else 1]),
              helper.make_tensor_value_info("encoder_attention_mask", I32, ["batch", "enc_seq"])]
    if hidden_input:
        dec_in.append(helper.make_tensor_value_info("encoder_hidden_states", F,
                                                    ["batch", "enc_seq", hd]))
    for part in ("self", "cross"):
        for i in range(layers):
            for kind in ("key", "value"):
                length = "past" if part == "self" else "enc_seq"
                dec_in.append(helper.make_tensor_value_info(f"past_{kind}_{part}_{i}", F,
                                                            ["batch", heads, length, dim]))
    dshapes = {"logits": ["batch", 1, vocab]}
    for i in range(layers):
        for kind in ("key", "value"):
            dshapes[f"present_{kind}_self_{i}"] = ["batch", heads, "total", dim]
    decoder = helper.make_graph(
        dec, "decoder", dec_in,
        [helper.make_tensor_value_info(o, F, dshapes[o]) for o in dec_outs], dinit)
    return encoder, decoder


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
ENC, DEC_T5 = t5_graphs()
ENC2, DEC2_T5 = t5_graphs(layers=2, seed=1, hidden_input=False)
ENC3, DEC3_T5 = t5_graphs(seed=2, seq_ids=True)
ENC4, DEC4_T5 = t5_graphs(layers=2, seed=4, hidden_input=False, encoder_decodes=False)
IDS_T5 = np.array([[1, 2, 3, 4], [0, 0, 5, 6]], i32)      # row 1 left-padded (pad 0)
T5 = {"encoder": ENC, "decoder": DEC_T5, "model_type": 1, "eos_token_id": 11,
      "pad_token_id": 0, "decoder_start_token_id": 10}
# the scores output of a search that stops before max_length (every batch entry done) is
# left uninitialized past the last step by onnxruntime: such cases do not request it
NO_SCORES = [True, True, False]
AMASK = np.array([[1, 1, 1], [0, 1, 1]], i32)
MASK_NOT_PADS = np.array([[0, 1, 1], [1, 0, 1]], i32)
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
    # a mask that does not follow the pad tokens (positions still do)
    Case("GreedySearch_attention_mask_not_pads", "GreedySearch",
         [IDS, s32(8), None, None, None, None, MASK_NOT_PADS], G),
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
         {**G2, "eos_token_id": 3}, outputs=3, atol=1e-5),
    # onnxruntime infers the output shapes from constant max_length/num_beams/
    # num_return_sequences (and the vocab_size attribute)
    Case("GreedySearch_constant_max_length", "GreedySearch", [IDS, s32(8)], G, constants=(1,)),
    Case("BeamSearch_constant_scalars", "BeamSearch", beam(IDS, 8, 3, 2), G, outputs=3,
         constants=(1, 2, 3, 4, 5), atol=1e-5),
    Case("BeamSearch_constant_scalars_vocab_size", "BeamSearch", beam(IDS, 8, 3, 2),
         {**G, "vocab_size": 11}, outputs=3, constants=(1, 3, 4), atol=1e-5),
    Case("BeamSearch_constant_scalars_t5", "BeamSearch", beam(IDS_T5, 8, 3, 2), T5, outputs=3,
         constants=(1, 3, 4), atol=1e-5),
    Case("Sampling_constant_max_length", "Sampling", sampling(IDS, 9, 11), {**G, "top_p": 0.9},
         outputs=2, constants=(1,)),
    Case("BeamSearch_logits_processor_ignored", "BeamSearch",
         beam(IDS, 8, 3, 2) + [None, s32(1)], G, outputs=3, atol=1e-5),
    Case("BeamSearch_attention_mask_not_pads", "BeamSearch",
         beam(IDS, 8, 3, 2, attention_mask=MASK_NOT_PADS), G, outputs=3, atol=1e-5),
    # negative ids: no token ends a beam (eos -1), finished sequences padded with -1
    Case("BeamSearch_no_eos", "BeamSearch", beam(IDS, 8, 2, 1), {**G, "eos_token_id": -1},
         outputs=3, atol=1e-5),
    Case("BeamSearch_pad_negative", "BeamSearch", beam(IDS, 12, 2, 2),
         {**G, "pad_token_id": -1, "eos_token_id": 6}, outputs=NO_SCORES, atol=1e-5),
    Case("GreedySearch_pad_negative", "GreedySearch", [IDS, s32(8)],
         {**G, "pad_token_id": -1, "eos_token_id": 7}),
    Case("BeamSearch_one_beam", "BeamSearch", beam(IDS, 8, 1, 1), G, outputs=3, atol=1e-5),
    # a vocab_size attribute below the logits size: onnxruntime reads the logits with that
    # row stride (and scores vocab_size tokens)
    Case("GreedySearch_vocab_size_attr", "GreedySearch", [IDS, s32(8)],
         {**G, "vocab_size": 9, "eos_token_id": 3}),
    Case("BeamSearch_vocab_size_attr", "BeamSearch", beam(IDS, 8, 2, 2),
         {**G, "vocab_size": 9, "eos_token_id": 3}, outputs=3, atol=1e-5),
    # init_decoder runs the first step (the whole prompt), decoder the others
    Case("GreedySearch_init_decoder", "GreedySearch", [IDS, s32(8)], {**G, "init_decoder": INIT}),
    Case("BeamSearch_init_decoder", "BeamSearch", beam(IDS, 8, 3, 2), {**G, "init_decoder": INIT},
         outputs=3, atol=1e-5),
    Case("Sampling_init_decoder", "Sampling", sampling(IDS, 9, 8),
         {**G, "top_p": 0.9, "eos_token_id": 10, "init_decoder": INIT}),
    # Sampling: onnxruntime draws with libstdc++'s minstd_rand0 seeded by the seed input
    # (0 when omitted) afresh each run, so its sequences are reproducible
    Case("Sampling_no_seed", "Sampling", sampling(IDS, 12, 0)[:8],
         {**G, "top_p": 0.99, "eos_token_id": 10}),
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
    # BeamSearch over an encoder-decoder model (model_type 1): sequences start with
    # decoder_start_token_id; the encoder's logits give the first token
    Case("BeamSearch_t5", "BeamSearch", beam(IDS_T5, 8, 3, 2), T5, outputs=3, atol=1e-5),
    Case("BeamSearch_t5_two_layers_no_hidden", "BeamSearch", beam(IDS_T5, 9, 2, 2),
         {**T5, "encoder": ENC2, "decoder": DEC2_T5}, outputs=3, atol=1e-5),
    Case("BeamSearch_t5_sequence_input_ids", "BeamSearch", beam(IDS_T5, 8, 2, 1),
         {**T5, "encoder": ENC3, "decoder": DEC3_T5}, outputs=3, atol=1e-5),
    Case("BeamSearch_t5_attention_mask_penalties", "BeamSearch",
         beam(IDS_T5, 8, 3, 3, length_penalty=0.6, repetition_penalty=1.3,
              attention_mask=np.array([[1, 1, 0, 1], [0, 1, 1, 1]], i32)),
         {**T5, "no_repeat_ngram_size": 2}, outputs=3, atol=1e-5),
    Case("BeamSearch_t5_eos", "BeamSearch", beam(IDS_T5, 10, 2, 2), {**T5, "eos_token_id": 8},
         outputs=NO_SCORES, atol=1e-5),
    Case("BeamSearch_t5_cross_only_encoder", "BeamSearch", beam(IDS_T5, 8, 3, 2),
         {**T5, "encoder": ENC4, "decoder": DEC4_T5}, outputs=3, atol=1e-5),
    Case("BeamSearch_t5_cross_only_encoder_eos", "BeamSearch", beam(IDS_T5, 10, 2, 2),
         {**T5, "encoder": ENC4, "decoder": DEC4_T5, "eos_token_id": 6},
         outputs=3, atol=1e-5),
    Case("BeamSearch_t5_decoder_input_ids_ignored", "BeamSearch",
         beam(IDS_T5, 8, 2, 2) + [np.array([[10, 3], [10, 4]], i32)], T5, outputs=2,
         atol=1e-5),
    Case("BeamSearch_t5_one_beam", "BeamSearch", beam(IDS_T5, 7, 1, 1), T5, outputs=3,
         atol=1e-5),
]
