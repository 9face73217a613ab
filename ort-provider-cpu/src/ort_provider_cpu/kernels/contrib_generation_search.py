"""The search machinery of onnxruntime's generation ops (GreedySearch, BeamSearch, Sampling):
the GPT-2 style decoder driver, the logits processors and the beam scorer.

Each step runs the decoder subgraph on the tokens generated so far (the whole prompt on the
first step, then one token with the past key/value state), turns the last position's logits
into next-token scores, filters them with the logits processors (repetition penalty,
no-repeat n-grams, vocabulary masks, minimum length, temperature, presence penalty) and picks
the next tokens: argmax (greedy), a draw (sampling) or the best ``2 * num_beams`` candidates
handed to the beam scorer (beam search). The details (which rows a finished batch entry
copies, where the position ids start, how hypotheses are scored) follow onnxruntime's CPU
kernels, which the conformance cases compare against, quirks included where they change
results: the scorer reads each batch entry's best candidate score at offset
``batch * num_beams``, the presence penalty lands on the first score only, a smaller
``vocab_size`` attribute is a row stride into the logits, and sampling draws with libstdc++'s
``minstd_rand0`` engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ort.ep import CompiledGraph, NodeInfo

__all__ = ["LOWEST", "GenerationParams", "GptDecoder", "process_logits", "log_softmax",
           "BeamScorer", "BeamRun", "top_candidates", "last_logits", "MinStdRand0",
           "top_p_filter", "multinomial"]

#: The score a processor gives a banned token (onnxruntime uses ``numeric_limits::lowest``).
LOWEST = np.float32(np.finfo(np.float32).min)


@dataclass
class GenerationParams:
    """The per-call settings of a generation op (attributes and scalar inputs)."""

    eos_token_id: int
    pad_token_id: int
    max_length: int
    min_length: int = 0
    num_beams: int = 1
    num_return_sequences: int = 1
    length_penalty: float = 1.0
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    early_stopping: bool = False
    temperature: float = 1.0
    presence_penalty: float = 0.0
    vocab_mask: np.ndarray | None = None
    prefix_vocab_mask: np.ndarray | None = None
    presence_mask: np.ndarray | None = None


# ---------------------------------------------------------------------------------------------
# Decoder


def _tensor_dims(tp: Any) -> list[int | str | None] | None:
    if tp is None or tp.WhichOneof("value") != "tensor_type" \
            or not tp.tensor_type.HasField("shape"):
        return None
    out: list[int | str | None] = []
    for d in tp.tensor_type.shape.dim:
        kind = d.WhichOneof("value")
        out.append(d.dim_value if kind == "dim_value" else d.dim_param if kind == "dim_param"
                   else None)
    return out


class GptDecoder:
    """A GPT-2 style decoder subgraph (``model_type`` 0): inputs ``input_ids``,
    ``position_ids``, ``attention_mask`` (int32) then ``past_0 ...`` of shape
    ``(2, batch, heads, past_length, head_size)``; outputs ``logits`` of shape
    ``(batch, length, vocab)`` then ``present_0 ...``."""

    def __init__(self, node: NodeInfo, attr: str = "decoder") -> None:
        self.node = node
        self.graph: CompiledGraph = node.subgraph(attr)
        names = self.graph.input_names
        outputs = self.graph.output_names
        what = f"{node.describe()}: the GPT-2 {attr} subgraph"
        expected = ["input_ids", "position_ids", "attention_mask", "past_0"]
        if len(names) < 4 or list(names[:4]) != expected:
            raise ValueError(f"{what} must take inputs named {expected} first, got {names}")
        if len(outputs) < 2 or list(outputs[:2]) != ["logits", "present_0"]:
            raise ValueError(f"{what} must return 'logits' then 'present_0', got {outputs}")
        if len(names) != len(outputs) + 2:
            raise ValueError(f"{what} has {len(names)} inputs and {len(outputs)} outputs; the "
                             "past/present shared-buffer form (past_sequence_length input) is "
                             "not supported")
        self.num_layers = len(outputs) - 1
        past = _tensor_dims(self.graph.input_types[3])
        if past is None or len(past) != 5 or past[0] != 2 or not isinstance(past[2], int) \
                or not isinstance(past[4], int):
            raise ValueError(f"{what}: past_0 must have shape (2, batch, heads, past, head_size)"
                             f" with fixed heads and head_size, got {past}")
        self.num_heads, self.head_size = int(past[2]), int(past[4])
        logits = _tensor_dims(self.graph.output_types[0])
        if logits is None or len(logits) != 3 or not isinstance(logits[2], int):
            raise ValueError(f"{what}: logits must have shape (batch, length, vocab) with a fixed "
                             f"vocab size, got {logits}")
        self.vocab_size = int(logits[2])
        self.past_dtype = self.graph.output_dtype(1) or np.dtype(np.float32)

    def first_feeds(self, input_ids: np.ndarray, attention_mask: np.ndarray | None,
                    pad_token_id: int, num_beams: int) -> tuple[list[Any], np.ndarray]:
        """The feeds of the first step (each batch row repeated ``num_beams`` times) and
        each row's count of non-pad prompt tokens (where its positions continue)."""
        ids = np.ascontiguousarray(input_ids, dtype=np.int32)
        real = ids != pad_token_id
        positions = np.where(real, np.cumsum(real, axis=1, dtype=np.int32) - 1, 0)
        mask = real.astype(np.int32) if attention_mask is None \
            else np.asarray(attention_mask, dtype=np.int32)
        lengths = real.sum(axis=1, dtype=np.int32)
        if num_beams > 1:
            ids, positions, mask, lengths = (np.repeat(a, num_beams, axis=0)
                                             for a in (ids, positions, mask, lengths))
        past = np.zeros((2, ids.shape[0], self.num_heads, 0, self.head_size), self.past_dtype)
        feeds = [ids, positions.astype(np.int32), mask, *([past] * self.num_layers)]
        return feeds, lengths.astype(np.int32)

    def run(self, graph: CompiledGraph, feeds: Sequence[Any],
            outer: Mapping[str, Any]) -> tuple[np.ndarray, list[Any]]:
        """Run one step: the logits and the present states."""
        results = graph.run(list(feeds), outer)
        return np.asarray(results[0]), list(results[1:])

    @staticmethod
    def next_feeds(feeds: list[Any], presents: list[Any], tokens: np.ndarray,
                   positions: np.ndarray, beam_indices: np.ndarray | None) -> list[Any]:
        """The feeds of the next step: the new tokens, their positions, the mask grown by one
        and the present states (rows reordered by ``beam_indices`` when given)."""
        mask = feeds[2]
        grown = np.concatenate([mask, np.ones((mask.shape[0], 1), np.int32)], axis=1)
        if beam_indices is not None:
            presents = [np.asarray(p)[:, beam_indices] for p in presents]
        return [tokens.reshape(-1, 1).astype(np.int32), positions.reshape(-1, 1).copy(), grown,
                *presents]


def last_logits(logits: np.ndarray, rows: int, vocab: int) -> np.ndarray:
    """The float32 logits of the last position, one row per batch-beam (a logits batch of
    ``rows // k`` rows, as an encoder or init decoder may return, is repeated ``k`` times).

    A ``vocab_size`` attribute below the logits' last dim makes onnxruntime read the logits
    buffer with that row stride (row ``i`` starts at ``(i * length + length - 1) * vocab``);
    so does this, to give the same tokens."""
    count, length, width = logits.shape
    if vocab == width:
        last = logits[:, -1, :]
    else:
        flat = logits.reshape(-1)
        starts = (np.arange(count) * length + length - 1) * vocab
        last = flat[starts[:, None] + np.arange(vocab)]
    last = last.astype(np.float32)
    if last.shape[0] != rows:
        if last.shape[0] == 0 or rows % last.shape[0]:
            raise ValueError(f"the decoder returned logits for {last.shape[0]} rows, "
                             f"expected {rows}")
        last = np.repeat(last, rows // last.shape[0], axis=0)
    return np.array(last, dtype=np.float32)


def log_softmax(x: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax in float32."""
    shifted = x - x.max(axis=1, keepdims=True)
    return (shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Logits processors


def _repetition_penalty(scores: np.ndarray, sequences: np.ndarray, penalty: float) -> None:
    present = np.zeros(scores.shape, dtype=bool)
    present[np.arange(scores.shape[0])[:, None], sequences] = True
    p = np.float32(penalty)
    penalized = np.where(scores < 0, scores * p, scores / p)
    np.copyto(scores, penalized, where=present)


def _no_repeat_ngram(scores: np.ndarray, sequences: np.ndarray, n: int) -> None:
    length = sequences.shape[1]
    if n == 0 or n > length:
        return
    windows = np.lib.stride_tricks.sliding_window_view(sequences, n, axis=1)
    if n == 1:
        match = np.ones(windows.shape[:2], dtype=bool)
    else:
        prefix = sequences[:, length - (n - 1):]
        match = np.all(windows[:, :, :n - 1] == prefix[:, None, :], axis=2)
    rows, starts = np.nonzero(match)
    scores[rows, windows[rows, starts, n - 1]] = LOWEST


def process_logits(scores: np.ndarray, sequences: np.ndarray, params: GenerationParams,
                   step: int, batch_size: int) -> None:
    """Apply onnxruntime's logits processors, in its order, to ``scores`` (batch-beam rows,
    in place): repetition penalty, no-repeat n-gram, vocab mask, prefix vocab mask (first
    step only), min length, temperature, presence penalty."""
    if params.repetition_penalty != 1.0:
        _repetition_penalty(scores, sequences, params.repetition_penalty)
    if params.no_repeat_ngram_size > 0:
        _no_repeat_ngram(scores, sequences, params.no_repeat_ngram_size)
    if params.vocab_mask is not None:
        scores[:, params.vocab_mask == 0] = LOWEST
    if params.prefix_vocab_mask is not None and step <= 1:
        banned = np.repeat(params.prefix_vocab_mask == 0, scores.shape[0] // batch_size, axis=0)
        scores[banned] = LOWEST
    if params.min_length > 0 and sequences.shape[1] < params.min_length \
            and params.eos_token_id >= 0:
        scores[:, params.eos_token_id] = LOWEST
    if params.temperature > 0 and params.temperature != 1.0:
        scores /= np.float32(params.temperature)
    if params.presence_mask is not None and params.presence_penalty != 0.0:
        # onnxruntime's loop never advances its score pointer: every penalty lands on the
        # first score (batch 0, token 0), one float32 subtraction after another
        penalties = (params.presence_mask.reshape(-1).astype(np.float32)
                     * np.float32(params.presence_penalty))
        chain = np.concatenate([scores.reshape(-1)[:1], penalties[penalties != 0]])
        scores.reshape(-1)[0] = np.subtract.accumulate(chain, dtype=np.float32)[-1]


# ---------------------------------------------------------------------------------------------
# Beam search


def top_candidates(scores: np.ndarray, batch_size: int, k: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best entries of each batch's ``(num_beams * vocab)`` scores, best first
    (ties: lower index first): their scores and flat indices."""
    flat = scores.reshape(batch_size, -1)
    key = np.where(np.isnan(flat), -np.inf, flat)  # NaN (a broken decoder) ranks last
    if k < flat.shape[1]:
        part = np.argpartition(-key, k - 1, axis=1)[:, :k]
        # entries tying with the k-th value may lie outside the partition: gather all of
        # them, then order by (score descending, index ascending)
        kth = np.take_along_axis(key, part, axis=1).min(axis=1)
        rows = []
        for row, threshold in zip(key, kth):
            chosen = np.nonzero(row >= threshold)[0]
            rows.append(chosen[np.lexsort((chosen, -row[chosen]))][:k])
        index = np.stack(rows)
    else:
        index = np.argsort(-key, axis=1, kind="stable")
    return np.take_along_axis(flat, index, axis=1), index


class BeamScorer:
    """onnxruntime's beam scorer: keeps the ``num_beams`` best finished hypotheses of each
    batch entry (score = sum of log-probabilities / length ** length_penalty) and picks each
    step's continuing beams."""

    def __init__(self, params: GenerationParams, batch_size: int) -> None:
        self.params = params
        self.batch_size = batch_size
        self.num_beams = params.num_beams
        self.hyps: list[list[tuple[float, np.ndarray]]] = [[] for _ in range(batch_size)]
        self.worst = [np.float32(1e9)] * batch_size
        self.done = np.zeros(batch_size, dtype=bool)

    def _score(self, sum_logprobs: float, length: int) -> np.float32:
        return np.float32(np.float32(sum_logprobs)
                          / np.power(np.float32(length), np.float32(self.params.length_penalty)))

    def _add(self, batch: int, tokens: np.ndarray, sum_logprobs: float) -> None:
        score = self._score(sum_logprobs, tokens.shape[0])
        hyps = self.hyps[batch]
        if len(hyps) < self.num_beams or score > self.worst[batch]:
            hyps.append((score, tokens.copy()))
            if len(hyps) > self.num_beams:
                hyps.pop(min(range(len(hyps)), key=lambda i: hyps[i][0]))
            self.worst[batch] = min(h[0] for h in hyps)

    def _is_done(self, batch: int, best_sum_logprobs: float, length: int) -> bool:
        if len(self.hyps[batch]) < self.num_beams:
            return False
        if self.params.early_stopping:
            return True
        return bool(self.worst[batch] >= self._score(best_sum_logprobs, length))

    def process(self, sequences: np.ndarray, top_scores: np.ndarray, top_tokens: np.ndarray,
                top_beams: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One step: the candidates (per batch, best first: score, token, beam within the
        batch) become finished hypotheses (eos among the first ``num_beams``) or the next
        beams. Returns the next beam scores, tokens and (global) source rows."""
        nb, eos = self.num_beams, self.params.eos_token_id
        length = sequences.shape[1]
        rows = self.batch_size * nb
        next_scores = np.zeros(rows, np.float32)
        next_tokens = np.full(rows, self.params.pad_token_id, np.int32)
        next_indices = np.zeros(rows, np.int32)
        flat = top_scores.reshape(-1)
        for b in range(self.batch_size):
            if self.done[b]:
                continue
            filled = 0
            for j in range(2 * nb):
                token, score = int(top_tokens[b, j]), top_scores[b, j]
                source = b * nb + int(top_beams[b, j])
                if eos >= 0 and token == eos:
                    if j >= nb:
                        continue
                    self._add(b, sequences[source], score)
                else:
                    out = b * nb + filled
                    next_scores[out], next_tokens[out], next_indices[out] = score, token, source
                    filled += 1
                if filled == nb:
                    break
            # onnxruntime reads the best candidate score at offset batch * num_beams of the
            # (batch, 2 * num_beams) candidates (not batch * 2 * num_beams): so does this
            best = flat[b * nb:b * nb + 2 * nb].max()
            if self._is_done(b, best, length):
                self.done[b] = True
        return next_scores, next_tokens, next_indices

    def finalize(self, sequences: np.ndarray, beam_scores: np.ndarray, max_length: int,
                 num_return: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``num_return`` best hypotheses of each batch entry (open beams of unfinished
        entries compete too), padded to ``max_length``, and their scores."""
        nb = self.num_beams
        for b in range(self.batch_size):
            if not self.done[b]:
                for k in range(nb):
                    self._add(b, sequences[b * nb + k], beam_scores[b * nb + k])
        out = np.full((self.batch_size, num_return, max_length), self.params.pad_token_id,
                      np.int32)
        out_scores = np.zeros((self.batch_size, num_return), np.float32)
        for b in range(self.batch_size):
            best = sorted(self.hyps[b], key=lambda h: -h[0])[:num_return]
            for r, (score, tokens) in enumerate(best):
                out[b, r, :tokens.shape[0]] = tokens
                out_scores[b, r] = score
        return out, out_scores


class BeamRun:
    """The state of one beam search: the sequences of every batch-beam row, the beam scores,
    the scorer and the per-step scores output; :meth:`step` turns one decoder output into
    the next tokens."""

    def __init__(self, params: GenerationParams, sequences: np.ndarray, batch_size: int,
                 vocab: int, want_scores: bool) -> None:
        self.params = params
        self.batch_size = batch_size
        self.vocab = vocab
        nb = params.num_beams
        self.sequences = sequences
        scores = np.zeros((batch_size, nb), np.float32)
        scores[:, 1:] = np.float32(-1e9)  # only the first beam of a batch entry starts live
        self.beam_scores = scores.reshape(-1)
        self.scorer = BeamScorer(params, batch_size)
        steps = params.max_length - sequences.shape[1]
        self.all_scores = (np.zeros((steps, batch_size, nb, vocab), np.float32)
                           if want_scores else None)

    def step(self, logits: np.ndarray, iteration: int) -> tuple[np.ndarray, np.ndarray]:
        """Score the decoder's ``logits`` (step ``iteration``, 1-based), pick the next beams
        and extend the sequences; return the new tokens and the rows they continue."""
        params, batch, vocab = self.params, self.batch_size, self.vocab
        nb = params.num_beams
        scores = log_softmax(last_logits(logits, batch * nb, vocab))
        process_logits(scores, self.sequences, params, iteration, batch)
        scores += self.beam_scores[:, None]
        if self.all_scores is not None:
            self.all_scores[iteration - 1] = scores.reshape(batch, nb, vocab)
        top_scores, top_index = top_candidates(scores, batch, 2 * nb)
        self.beam_scores, tokens, sources = self.scorer.process(
            self.sequences, top_scores, (top_index % vocab).astype(np.int32), top_index // vocab)
        self.sequences = np.concatenate([self.sequences[sources], tokens[:, None]], axis=1)
        return tokens, sources

    @property
    def done(self) -> bool:
        """Whether every batch entry has its hypotheses."""
        return bool(self.scorer.done.all())

    def outputs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """sequences, sequences_scores and scores (None unless requested)."""
        out, out_scores = self.scorer.finalize(self.sequences, self.beam_scores,
                                               self.params.max_length,
                                               self.params.num_return_sequences)
        return out, out_scores, self.all_scores


# ---------------------------------------------------------------------------------------------
# Sampling


class MinStdRand0:
    """The C++ standard library's ``std::default_random_engine`` of libstdc++
    (``minstd_rand0``: ``x = 16807 * x mod (2**31 - 1)``), with
    ``std::uniform_real_distribution<double>(0, 1)`` on top, as onnxruntime draws with."""

    MODULUS = 2147483647
    RANGE = 2147483646.0  # max - min + 1 of the engine

    def __init__(self, seed: int) -> None:
        state = int(seed) % self.MODULUS
        self.state = state if state else 1

    def next(self) -> int:
        """The next raw value in ``[1, 2**31 - 2]``."""
        self.state = (16807 * self.state) % self.MODULUS
        return self.state

    def uniform(self) -> float:
        """A double in ``[0, 1)``: ``generate_canonical<double, 53>`` (two raw values)."""
        total = float(self.next() - 1)
        scale = self.RANGE
        total += float(self.next() - 1) * scale
        scale = scale * self.RANGE
        value = total / scale
        return value if value < 1.0 else float(np.nextafter(1.0, 0.0))


def top_p_filter(scores: np.ndarray, top_p: float, filter_value: float, custom: bool,
                 min_tokens_to_keep: int) -> None:
    """onnxruntime's nucleus filter (in place): sort each row's scores (ascending, or
    descending with ``custom``), accumulate their softmax and set ``filter_value`` where the
    running total crosses the threshold."""
    order = np.argsort(-scores if custom else scores, axis=1, kind="stable")
    ranked = np.take_along_axis(scores, order, axis=1)
    shifted = np.exp(ranked - ranked.max(axis=1, keepdims=True))
    # like onnxruntime's softmax: exp(x - max) times the reciprocal of its sum, in float32
    probs = shifted * (np.float32(1.0) / shifted.sum(axis=1, keepdims=True, dtype=np.float32))
    vocab = scores.shape[1]
    rows = np.arange(scores.shape[0])[:, None]
    threshold = np.float32(top_p)
    if custom:
        # position j (of the sorted order) is filtered when the total up to j - 1 exceeds top_p
        cumulative = np.cumsum(probs[:, :vocab - 1], axis=1, dtype=np.float32)
        drop = np.zeros_like(scores, dtype=bool)
        drop[:, 1:] = cumulative > threshold
    else:
        limit = max(vocab - min_tokens_to_keep, 1)
        cumulative = np.cumsum(probs[:, :limit], axis=1, dtype=np.float32)
        drop = np.zeros_like(scores, dtype=bool)
        drop[:, :limit] = cumulative <= np.float32(1.0) - threshold
    scores[rows, order] = np.where(drop, np.float32(filter_value), ranked)


def multinomial(scores: np.ndarray, rng: MinStdRand0) -> np.ndarray:
    """One draw per row from ``softmax(scores)`` (non-finite scores never drawn), as
    onnxruntime's Multinomial kernel draws: inverse CDF in double precision."""
    out = np.empty(scores.shape[0], np.int32)
    for b, row in enumerate(scores):
        finite = np.isfinite(row)
        top = row[finite].max() if finite.any() else np.float32(LOWEST)
        weights = np.where(finite, np.exp(row.astype(np.float64) - float(top)), 0.0)
        cdf = np.cumsum(weights)
        target = rng.uniform() * cdf[-1]
        out[b] = min(int(np.searchsorted(cdf, target, side="right")), row.shape[0])
    return out
