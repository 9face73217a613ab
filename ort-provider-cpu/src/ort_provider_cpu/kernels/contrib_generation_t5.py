"""BeamSearch over encoder-decoder models (``model_type`` 1: T5/BART style), as onnxruntime's
CPU kernel runs them.

The ``encoder`` subgraph (which also initializes the decoder) takes ``encoder_input_ids``,
``encoder_attention_mask`` and ``decoder_input_ids`` (the decoder start token) and returns
``logits``, ``encoder_hidden_states``, ``present_key_self_<i>``/``present_value_self_<i>`` of
each layer, then ``present_key_cross_<i>``/``present_value_cross_<i>``. Its logits give the
first generated token; the ``decoder`` subgraph then takes ``input_ids`` (the last tokens, or
the whole sequences when its ``input_ids`` are not declared ``(batch, 1)``),
``encoder_attention_mask``, optionally ``encoder_hidden_states``, the self-attention past of
each layer and the cross-attention past, and returns ``logits`` and the new self-attention
state. Sequences start with ``decoder_start_token_id``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ort.ep import CompiledGraph, NodeInfo

from .contrib_generation_search import BeamRun, GenerationParams

__all__ = ["T5Model"]


def _dims(tp: Any) -> list[Any] | None:
    if tp is None or tp.WhichOneof("value") != "tensor_type" \
            or not tp.tensor_type.HasField("shape"):
        return None
    return [d.dim_value if d.WhichOneof("value") == "dim_value" else None
            for d in tp.tensor_type.shape.dim]


class T5Model:
    """The encoder and decoder subgraphs of an encoder-decoder BeamSearch node."""

    def __init__(self, node: NodeInfo) -> None:
        if node.attrs.get("encoder") is None:
            raise ValueError(f"{node.describe()}: model_type 1 needs an 'encoder' subgraph")
        self.encoder: CompiledGraph = node.subgraph("encoder")
        self.decoder: CompiledGraph = node.subgraph("decoder")
        what = f"{node.describe()}: the encoder subgraph"
        names, outputs = self.encoder.input_names, self.encoder.output_names
        expected = ["encoder_input_ids", "encoder_attention_mask", "decoder_input_ids"]
        #: the encoder also runs the first decoder step (its outputs start with logits)
        self.encoder_decodes = len(names) == 3
        if list(names) != expected[:len(names)] or len(names) < 2:
            raise ValueError(f"{what} must take inputs {expected[:2]} and optionally "
                             f"decoder_input_ids, got {names}")
        if self.encoder_decodes:
            if list(outputs[:3]) != ["logits", "encoder_hidden_states", "present_key_self_0"] \
                    or (len(outputs) - 2) % 4 or len(outputs) < 6:
                raise ValueError(f"{what} must return logits, encoder_hidden_states, then "
                                 "present_{key,value}_self_* and present_{key,value}_cross_* of "
                                 f"each layer, got {outputs}")
            self.num_layers = (len(outputs) - 2) // 4
        else:
            if list(outputs[:2]) != ["present_key_cross_0", "present_value_cross_0"] \
                    or len(outputs) % 2:
                raise ValueError(f"{what} must return present_key_cross_* and "
                                 f"present_value_cross_* of each layer, got {outputs}")
            self.num_layers = len(outputs) // 2
        what = f"{node.describe()}: the decoder subgraph"
        names, outputs = self.decoder.input_names, self.decoder.output_names
        if list(names[:2]) != ["input_ids", "encoder_attention_mask"]:
            raise ValueError(f"{what} must take input_ids and encoder_attention_mask first, "
                             f"got {names}")
        self.has_hidden = len(names) > 2 and names[2] == "encoder_hidden_states"
        if self.has_hidden and not self.encoder_decodes:
            raise ValueError(f"{what} takes encoder_hidden_states, which an encoder without "
                             "decoder_input_ids does not return")
        self.first_past = 3 if self.has_hidden else 2
        if len(names) - self.first_past != 4 * self.num_layers \
                or len(outputs) != 1 + 2 * self.num_layers or outputs[0] != "logits":
            raise ValueError(f"{what} must take the self and cross past state of "
                             f"{self.num_layers} layers (the shared-buffer form is not "
                             f"supported) and return logits and the self present state; it "
                             f"takes {names} and returns {outputs}")
        logits = _dims(self.decoder.output_types[0])
        if logits is None or len(logits) != 3 or not logits[2]:
            raise ValueError(f"{what}: logits must have shape (batch, 1, vocab) with a fixed "
                             f"vocab size, got {logits}")
        self.vocab_size = int(logits[2])
        ids = _dims(self.decoder.input_types[0])
        self.token_input = ids is not None and len(ids) == 2 and ids[1] == 1

    def search(self, params: GenerationParams, ids: np.ndarray, attention_mask: Any,
               start_token: int, vocab: int, outer: dict[str, Any], want_scores: bool):
        """Beam search: the three BeamSearch outputs."""
        batch = ids.shape[0]
        nb = params.num_beams
        if self.encoder_decodes and params.max_length < 3:
            raise ValueError("max_length must be at least 3 when the encoder subgraph runs the "
                             "first decoder step")
        if attention_mask is None:
            # only left padding is masked (a pad token later in the row is a real eos)
            mask = np.logical_or.accumulate(ids != params.pad_token_id, axis=1)
            mask = mask.astype(np.int32)
        else:
            mask = np.asarray(attention_mask, dtype=np.int32)
        start = np.full((batch, 1), start_token, np.int32)
        run = BeamRun(params, np.full((batch * nb, 1), start_token, np.int32), batch, vocab,
                      want_scores)
        layers2 = 2 * self.num_layers
        current, iteration = 1, 0
        feeds: list[Any] = [None, np.repeat(mask, nb, axis=0)]
        if not self.encoder_decodes:
            # the decoder runs every step, from the start token and an empty self state
            cross = [np.repeat(np.asarray(v), nb, axis=0) for v in self.encoder.run([ids, mask],
                                                                                   outer)]
            heads, size = cross[0].shape[1], cross[0].shape[3]
            empty = np.zeros((batch * nb, heads, 0, size), cross[0].dtype)
            feeds[0] = self._ids(run.sequences[:, -1], run)
            feeds += [empty] * layers2 + cross
        elif current + 1 < params.max_length:
            encoded = self.encoder.run([ids, mask, start], outer)
            iteration = 1
            tokens, _ = run.step(np.asarray(encoded[0]), iteration)
            current += 1
            feeds[0] = self._ids(tokens, run)
            if self.has_hidden:
                feeds.append(np.repeat(np.asarray(encoded[1]), nb, axis=0))
            feeds += [np.repeat(np.asarray(v), nb, axis=0) for v in encoded[2:]]
        while current < params.max_length:
            iteration += 1
            results = self.decoder.run(feeds, outer)
            tokens, sources = run.step(np.asarray(results[0]), iteration)
            if run.done:
                break
            current += 1
            if current < params.max_length:
                presents = [np.asarray(p) for p in results[1:1 + layers2]]
                if nb > 1:
                    presents = [p[sources] for p in presents]
                feeds[0] = self._ids(tokens, run)
                feeds[self.first_past:self.first_past + layers2] = presents
        return run.outputs()

    def _ids(self, tokens: np.ndarray, run: BeamRun) -> np.ndarray:
        if self.token_input:
            return tokens.reshape(-1, 1).astype(np.int32)
        return np.ascontiguousarray(run.sequences, dtype=np.int32)
