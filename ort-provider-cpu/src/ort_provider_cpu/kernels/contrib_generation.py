"""CPU kernels: onnxruntime's generation ops (GreedySearch, BeamSearch, Sampling), which run a
decoder subgraph in a loop to generate token sequences.

Semantics follow onnxruntime's contrib operator spec (docs/ContribOperators.md) and its CPU
kernels' observed behaviour; every op is declared to the core in ``SCHEMAS``
(:mod:`.contrib_schema`). The search machinery lives in :mod:`.contrib_generation_search`.

Supported: decoder-only models (``model_type`` 0, GPT-2 style ``decoder`` subgraph with
``past_*``/``present_*`` state, optional ``init_decoder`` for the first step) in all three ops,
encoder-decoder models (``model_type`` 1, T5/BART style ``encoder`` + ``decoder``) in
BeamSearch (as onnxruntime's CPU kernels: GreedySearch and Sampling refuse them), with every
logits processor onnxruntime's CPU kernels apply. Not supported (refused with a ValueError):
the ``past_present_share_buffer`` decoder forms, Whisper (WhisperBeamSearch, ``model_type``
2). BeamSearch's ``decoder_input_ids`` and ``logits_processor`` inputs are ignored, as
onnxruntime's CPU kernel ignores them for these model types.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from onnx import TensorProto, TypeProto

from ort.ep import DeclaredSchema, KernelTable, NodeInfo

from .contrib_generation_search import (BeamRun, GenerationParams, GptDecoder, MinStdRand0,
                                        last_logits, multinomial, process_logits, top_p_filter)
from .contrib_generation_t5 import T5Model
from .contrib_schema import MS, REQUIRED, declare, dims, elem_type, tensor_type

kernels = KernelTable()

#: Longest sequence onnxruntime generates (``max_length`` above it is refused).
MAX_SEQUENCE_LENGTH = 4096
#: Most beams onnxruntime searches with.
MAX_NUM_BEAMS = 128


def _scalar(node: NodeInfo, value: Any, name: str, default: Any) -> Any:
    """The value of a one-element scalar input (``default`` when omitted)."""
    if value is None:
        return default
    array = np.asarray(value)
    if array.size != 1 or array.ndim > 1:
        raise ValueError(f"{node.describe()}: input '{name}' must be a scalar or a one-element "
                         f"vector, got shape {array.shape}")
    return array.reshape(-1)[0].item()


def _split_outer(node: NodeInfo, args: tuple[Any, ...],
                 count: int) -> tuple[list[Any], dict[str, Any]]:
    """The regular inputs (padded with None to the op's ``count`` inputs) and the
    outer-scope values the subgraphs read."""
    n_outer = len(node.implicit_input_names)
    regular = list(args[:len(args) - n_outer]) if n_outer else list(args)
    regular += [None] * (count - len(regular))
    outer = dict(zip(node.implicit_input_names, args[len(args) - n_outer:])) if n_outer else {}
    return regular, outer


def _model_type(node: NodeInfo, supported: tuple[int, ...]) -> int:
    """The node's ``model_type``, refused unless the op supports it."""
    model_type = int(node.attrs.get("model_type") or 0)
    if model_type not in supported:
        raise ValueError(f"{node.describe()}: model_type {model_type} is not supported by "
                         f"{node.op_type} (supported: {', '.join(map(str, supported))}; 0 is a "
                         "GPT-2 style decoder, 1 an encoder-decoder model)")
    return model_type


def _mask(node: NodeInfo, value: Any, name: str, shape: tuple[int, ...]) -> np.ndarray | None:
    """A vocab/prefix/presence mask input checked against its expected ``shape``."""
    if value is None:
        return None
    mask = np.asarray(value)
    if mask.shape != shape:
        raise ValueError(f"{node.describe()}: input '{name}' must have shape {shape}, "
                         f"got {mask.shape}")
    return mask


class _Generator:
    """What the three ops share: the decoder(s) and the parsing of common inputs."""

    def __init__(self, node: NodeInfo, model_types: tuple[int, ...] = (0,)) -> None:
        self.node = node
        self.t5: T5Model | None = None
        self.init_graph = None
        if _model_type(node, model_types) == 1:
            self.t5 = T5Model(node)
            decoder_vocab = self.t5.vocab_size
            self.start_token = int(node.attrs.get("decoder_start_token_id", -1))
            if self.start_token < 0:
                raise ValueError(f"{node.describe()}: an encoder-decoder model needs "
                                 "decoder_start_token_id >= 0")
        else:
            self.decoder = GptDecoder(node, "decoder")
            decoder_vocab = self.decoder.vocab_size
            if node.attrs.get("init_decoder") is not None:
                self.init_graph = GptDecoder(node, "init_decoder").graph
        vocab = int(node.attrs.get("vocab_size") or -1)
        if vocab > decoder_vocab:
            raise ValueError(f"{node.describe()}: vocab_size ({vocab}) must be no more than the "
                             f"decoder's logits size ({decoder_vocab})")
        self.vocab = vocab if vocab > 0 else decoder_vocab
        # negative ids are accepted, as onnxruntime does: no token is eos, or pads are -1
        self.eos = int(node.attrs["eos_token_id"])
        self.pad = int(node.attrs["pad_token_id"])

    def input_ids(self, value: Any) -> np.ndarray:
        """The (batch, sequence) int32 prompt."""
        ids = np.asarray(value)
        if ids.ndim != 2:
            raise ValueError(f"{self.node.describe()}: input_ids must have 2 dimensions "
                             f"(batch, sequence), got shape {ids.shape}")
        return ids.astype(np.int32, copy=False)

    def max_length(self, value: Any, seq_len: int) -> int:
        """The max_length input, checked against the sequence length it must exceed."""
        max_length = int(_scalar(self.node, value, "max_length", MAX_SEQUENCE_LENGTH))
        if max_length <= seq_len:
            raise ValueError(f"{self.node.describe()}: max_length ({max_length}) must be greater "
                             f"than the input sequence length ({seq_len})")
        if max_length > MAX_SEQUENCE_LENGTH:
            raise ValueError(f"{self.node.describe()}: max_length ({max_length}) must be no more "
                             f"than {MAX_SEQUENCE_LENGTH}")
        return max_length

    def graph_for(self, iteration: int):
        """The subgraph of ``iteration`` (1-based): the init decoder first when there is one."""
        if iteration == 1 and self.init_graph is not None:
            return self.init_graph
        return self.decoder.graph


# ---------------------------------------------------------------------------------------------
# GreedySearch and Sampling


def _greedy_loop(gen: _Generator, params: GenerationParams, ids: np.ndarray,
                 attention_mask: Any, outer: dict[str, Any], pick) -> np.ndarray:
    """The one-beam generation loop; ``pick(scores) -> tokens`` chooses the next tokens from
    the processed scores. Returns sequences (batch, max_length), pad-filled."""
    batch, seq_len = ids.shape
    feeds, positions = gen.decoder.first_feeds(ids, attention_mask, params.pad_token_id, 1)
    sequences = ids.copy()
    finished = np.zeros(batch, dtype=bool)
    iteration = 0
    current = seq_len
    while current < params.max_length:
        iteration += 1
        logits, presents = gen.decoder.run(gen.graph_for(iteration), feeds, outer)
        scores = last_logits(logits, batch, gen.vocab)
        process_logits(scores, sequences, params, iteration, batch)
        tokens = np.asarray(pick(scores), dtype=np.int32)
        finished |= tokens == params.eos_token_id
        tokens = np.where(finished, np.int32(params.pad_token_id), tokens)
        sequences = np.concatenate([sequences, tokens[:, None]], axis=1)
        if finished.all():
            break
        current += 1
        if current < params.max_length:
            if iteration > 1:
                positions = positions + 1
            feeds = gen.decoder.next_feeds(feeds, presents, tokens, positions, None)
    out = np.full((batch, params.max_length), params.pad_token_id, np.int32)
    out[:, :sequences.shape[1]] = sequences
    return out


def _token_params(node: NodeInfo, gen: Any, regular: Sequence[Any], ids: np.ndarray,
                  ngram: int, **extra: Any) -> GenerationParams:
    """The GenerationParams GreedySearch and Sampling share, from their common leading inputs
    (max_length, min_length, repetition_penalty, vocab_mask, prefix_vocab_mask), plus
    ``extra`` fields."""
    batch, seq_len = ids.shape
    return GenerationParams(
        eos_token_id=gen.eos, pad_token_id=gen.pad,
        max_length=gen.max_length(regular[1], seq_len),
        min_length=int(_scalar(node, regular[2], "min_length", 0)),
        repetition_penalty=float(_scalar(node, regular[3], "repetition_penalty", 1.0)),
        no_repeat_ngram_size=ngram,
        vocab_mask=_mask(node, regular[4], "vocab_mask", (gen.vocab,)),
        prefix_vocab_mask=_mask(node, regular[5], "prefix_vocab_mask", (batch, gen.vocab)),
        **extra)


@kernels.register("GreedySearch", since=1, domain=MS)
def greedy_search(node: NodeInfo):
    """GreedySearch 1 (com.microsoft): generate tokens with a GPT-2 style decoder subgraph,
    taking the highest-scoring token each step after the logits processors (repetition
    penalty, no_repeat_ngram_size, vocab_mask, prefix_vocab_mask, min_length). A batch entry
    that produced eos_token_id is padded with pad_token_id; generation stops when all have
    or at max_length. Output: sequences (batch, max_length) int32."""
    gen = _Generator(node)
    ngram = int(node.attrs.get("no_repeat_ngram_size") or 0)

    def compute(*args):
        regular, outer = _split_outer(node, args, 7)
        ids = gen.input_ids(regular[0])
        params = _token_params(node, gen, regular, ids, ngram)
        attention_mask = _mask(node, regular[6], "attention_mask", ids.shape)
        return (_greedy_loop(gen, params, ids, attention_mask, outer,
                             lambda scores: scores.argmax(axis=1)),)

    return compute


@kernels.register("Sampling", since=1, domain=MS)
def sampling(node: NodeInfo):
    """Sampling 1 (com.microsoft): like GreedySearch, but each step draws the next token
    from the processed scores (temperature, presence_penalty with presence_mask, then the
    top_p nucleus filter setting filter_value, ``custom`` for the descending variant) with
    onnxruntime's generator (libstdc++ ``minstd_rand0`` seeded by the ``seed`` input, or 0
    when omitted, afresh each run) and multinomial draw, so a given seed reproduces
    onnxruntime's sequences. The optional filtered_logits output is not produced (as in
    onnxruntime's CPU kernel)."""
    gen = _Generator(node)
    attrs = node.attrs
    ngram = int(attrs.get("no_repeat_ngram_size") or 0)
    temperature = float(attrs.get("temperature", 1.0))
    top_p = float(attrs.get("top_p", 0.0))
    filter_value = float(attrs.get("filter_value", -1e20))
    presence_penalty = float(attrs.get("presence_penalty", 0.0))
    custom = int(attrs.get("custom") or 0) != 0
    min_keep = int(attrs.get("min_tokens_to_keep") or 0)

    def compute(*args):
        regular, outer = _split_outer(node, args, 9)
        ids = gen.input_ids(regular[0])
        batch = ids.shape[0]
        params = _token_params(
            node, gen, regular, ids, ngram, temperature=temperature,
            presence_penalty=presence_penalty,
            presence_mask=_mask(node, regular[7], "presence_mask", (batch, gen.vocab)))
        attention_mask = _mask(node, regular[6], "attention_mask", ids.shape)
        # a generator seeded per run; without a seed onnxruntime's is seeded with 0 (which
        # the engine turns into 1), so runs are reproducible either way
        rng = MinStdRand0(int(_scalar(node, regular[8], "seed", 0)))

        def pick(scores: np.ndarray) -> np.ndarray:
            top_p_filter(scores, top_p, filter_value, custom, min_keep)
            return multinomial(scores, rng)

        return _greedy_loop(gen, params, ids, attention_mask, outer, pick), None

    return compute


# ---------------------------------------------------------------------------------------------
# BeamSearch


@kernels.register("BeamSearch", since=1, domain=MS)
def beam_search(node: NodeInfo):
    """BeamSearch 1 (com.microsoft): beam search with a GPT-2 style decoder subgraph. Each
    step scores ``log_softmax(logits)`` (after the logits processors) plus the beam's score,
    keeps the ``2 * num_beams`` best candidates per batch entry, finishes those ending in
    eos_token_id as hypotheses scored ``sum_logprobs / length ** length_penalty`` and
    continues the best ``num_beams`` others; early_stopping ends an entry once it has
    ``num_beams`` hypotheses. Outputs: sequences (batch, num_return_sequences, max_length),
    sequences_scores (batch, num_return_sequences), scores (max_length - sequence_length,
    batch, num_beams, vocab: each step's candidate scores)."""
    gen = _Generator(node, (0, 1))
    ngram = int(node.attrs.get("no_repeat_ngram_size") or 0)
    early = int(node.attrs.get("early_stopping") or 0) == 1
    want_scores = node.has_output(2)

    def compute(*args):
        regular, outer = _split_outer(node, args, 12)
        ids = gen.input_ids(regular[0])
        batch, seq_len = ids.shape
        num_beams = int(_scalar(node, regular[3], "num_beams", 1))
        num_return = int(_scalar(node, regular[4], "num_return_sequences", 1))
        if not 1 <= num_beams <= MAX_NUM_BEAMS:
            raise ValueError(f"{node.describe()}: num_beams must be in [1, {MAX_NUM_BEAMS}], "
                             f"got {num_beams}")
        if not 1 <= num_return <= num_beams:
            raise ValueError(f"{node.describe()}: num_return_sequences ({num_return}) must be "
                             f"in [1, num_beams ({num_beams})]")
        # logits_processor selects a processor onnxruntime's CPU kernel does not apply: it
        # only checks the value
        logits_processor = int(_scalar(node, regular[11], "logits_processor", 0))
        if logits_processor < 0:
            raise ValueError(f"{node.describe()}: logits_processor must be a non-negative "
                             f"integer, got {logits_processor}")
        params = GenerationParams(
            eos_token_id=gen.eos, pad_token_id=gen.pad,
            max_length=gen.max_length(regular[1], 1 if gen.t5 is not None else seq_len),
            min_length=int(_scalar(node, regular[2], "min_length", 0)),
            num_beams=num_beams, num_return_sequences=num_return,
            length_penalty=float(_scalar(node, regular[5], "length_penalty", 1.0)),
            repetition_penalty=float(_scalar(node, regular[6], "repetition_penalty", 1.0)),
            no_repeat_ngram_size=ngram, early_stopping=early,
            vocab_mask=_mask(node, regular[7], "vocab_mask", (gen.vocab,)),
            prefix_vocab_mask=_mask(node, regular[8], "prefix_vocab_mask", (batch, gen.vocab)))
        if params.repetition_penalty <= 0:
            raise ValueError(f"{node.describe()}: repetition_penalty must be > 0, "
                             f"got {params.repetition_penalty}")
        attention_mask = _mask(node, regular[9], "attention_mask", ids.shape)
        if gen.t5 is not None:
            return gen.t5.search(params, ids, attention_mask, gen.start_token, gen.vocab,
                                 outer, want_scores)
        return _beam_loop(gen, params, ids, attention_mask, outer, want_scores)

    return compute


def _beam_loop(gen: _Generator, params: GenerationParams, ids: np.ndarray,
               attention_mask: Any, outer: dict[str, Any], want_scores: bool):
    """Beam search over a GPT-2 style decoder: the three BeamSearch outputs."""
    batch, seq_len = ids.shape
    nb = params.num_beams
    feeds, positions = gen.decoder.first_feeds(ids, attention_mask, params.pad_token_id, nb)
    run = BeamRun(params, np.repeat(ids, nb, axis=0), batch, gen.vocab, want_scores)
    iteration = 0
    current = seq_len
    while current < params.max_length:
        iteration += 1
        logits, presents = gen.decoder.run(gen.graph_for(iteration), feeds, outer)
        tokens, sources = run.step(logits, iteration)
        if run.done:
            break
        current += 1
        if current < params.max_length:
            if iteration > 1:
                positions = positions + 1
            feeds = gen.decoder.next_feeds(feeds, presents, tokens, positions,
                                           sources if nb > 1 else None)
    return run.outputs()


# ---------------------------------------------------------------------------------------------
# Schemas


def _int32(shape: Sequence[Any] | None = None) -> TypeProto | None:
    return tensor_type(TensorProto.INT32, shape)


def _fixed_ids_shape(types: Sequence[TypeProto | None]) -> tuple[int, int] | None:
    """(batch, sequence) of input_ids when both are fixed (else onnxruntime infers no
    shape)."""
    shape = dims(types[0]) if types else None
    if shape is None or len(shape) != 2 or not all(isinstance(d, int) for d in shape):
        return None
    return int(shape[0]), int(shape[1])


def _constant_scalar(values: Sequence[Any], index: int) -> int | None:
    """An int32 one-element constant input (as onnxruntime's inference parses them)."""
    value = values[index] if index < len(values) else None
    if value is None or np.asarray(value).dtype != np.int32 or np.asarray(value).size != 1:
        return None
    return int(np.asarray(value).reshape(-1)[0])


def _greedy_infer(types, attrs, values):
    """GreedySearch/Sampling: sequences (batch, max_length) when input_ids' shape is fixed
    and max_length a constant; Sampling's filtered_logits (batch, ?)."""
    ids = _fixed_ids_shape(types)
    max_length = _constant_scalar(values, 1)
    if ids is None or max_length is None:
        return [_int32(), tensor_type(TensorProto.FLOAT)]
    return [_int32([ids[0], max_length]), tensor_type(TensorProto.FLOAT, [ids[0], None])]


def _beam_infer(types, attrs, values):
    """BeamSearch: sequences (batch, num_return_sequences, max_length) and scores
    (max_length - input_ids' length, batch, num_beams, vocab_size or ?) when input_ids' shape
    is fixed and max_length, num_beams, num_return_sequences are constants (onnxruntime's
    inference: scores keeps the input length even for encoder-decoder models, whose outputs
    have max_length - 1 steps; it gives sequences_scores no shape). The scores' element type
    is length_penalty's."""
    score = elem_type(types[5]) if len(types) > 5 and types[5] is not None else None
    score = score or TensorProto.FLOAT
    ids = _fixed_ids_shape(types)
    max_length, beams, returned = (_constant_scalar(values, i) for i in (1, 3, 4))
    if ids is None or None in (max_length, beams, returned):
        return [_int32(), tensor_type(score), tensor_type(score)]
    vocab = int(attrs.get("vocab_size") or -1)
    scores = [max_length - ids[1], ids[0], beams, vocab if vocab != -1 else None]
    return [_int32([ids[0], returned, max_length]), tensor_type(score),
            tensor_type(score, scores)]


_COMMON_ATTRS = {
    "decoder": REQUIRED, "init_decoder": None, "encoder": None,
    "eos_token_id": REQUIRED, "pad_token_id": REQUIRED,
    "decoder_start_token_id": -1, "no_repeat_ngram_size": 0, "model_type": 0, "vocab_size": -1,
}

#: The contrib ops of this module, declared to the core.
SCHEMAS: list[DeclaredSchema] = [
    declare("GreedySearch", inputs=(2, 7), outputs=1, attributes=dict(_COMMON_ATTRS),
            infer=_greedy_infer, uses_values=True),
    declare("BeamSearch", inputs=(5, 12), outputs=(1, 3),
            attributes={**_COMMON_ATTRS, "early_stopping": 0}, infer=_beam_infer,
            uses_values=True),
    declare("Sampling", inputs=(2, 9), outputs=(1, 2),
            attributes={**_COMMON_ATTRS, "temperature": 1.0, "top_p": 0.0,
                        "filter_value": -1e20, "presence_penalty": 0.0, "custom": 0,
                        "min_tokens_to_keep": 0},
            infer=_greedy_infer, uses_values=True),
]
