"""The contrib-model test set: small float models and the models onnxruntime's tools derive
from them, i.e. the graphs full of ``com.microsoft`` ops that users bring to ``ort``.

``tests/test_contrib_models.py`` runs every model committed beside this script on ort and on
onnxruntime; this script only (re)makes them. It needs torch and transformers, which are *not*
dependencies of the project (the tests need neither): make a separate environment for it::

    python -m venv /tmp/genvenv
    /tmp/genvenv/bin/pip install torch transformers onnx onnxruntime onnxscript onnx_ir
    /tmp/genvenv/bin/python tests/contrib_models/generate.py

The committed models were made with torch 2.14.1 (TorchScript exporter, ``dynamo=False``),
transformers 5.25.0, onnx 1.23.2 and onnxruntime 1.32.0. Every weight comes from a fixed
seed and every sample input from ``numpy.random.default_rng``; nothing is downloaded.

Families (one folder each; a model is ``<family>/<name>.onnx`` with its sample feeds in
``<family>/<name>.npz`` beside it):

* ``float`` -- torch exports: ``cnn`` (Conv/BatchNormalization/Relu/Clip/MaxPool/AveragePool/
  GlobalAveragePool/Gemm), ``mlp`` (MatMul/Add/Relu/Sigmoid on 3-D input), ``ffn`` (a
  pre-LayerNorm transformer feed-forward block with Erf GELU and a residual), ``rnn`` (LSTM then
  GRU), and tiny random-weight ``bert`` (BertModel), ``gpt2`` (GPT2LMHeadModel) and ``llama``
  (LlamaForCausalLM with grouped KV heads) from ``transformers`` configs.
* ``optimized`` -- each float model saved by an onnxruntime session at ORT_ENABLE_BASIC
  (``<model>_basic``) and ORT_ENABLE_EXTENDED (``<model>_extended``) through
  ``SessionOptions.optimized_model_filepath`` (the extended level writes onnxruntime's own
  fusions: FusedConv, FusedMatMul, Gelu, BiasGelu, SkipLayerNormalization, ...).
* ``fusions`` -- ``onnxruntime.transformers.optimizer.optimize_model`` on bert / gpt2 / llama
  at opt_level 0, 1 and 2, plus BERT with the GELU approximation and MultiHeadAttention, with
  a raw 2-D attention mask, without EmbedLayerNormalization, and converted to float16
  (``convert_float_to_float16``, float inputs and outputs kept). (optimize_model fuses no
  attention in the GPT-2 and Llama exports of transformers 5, and no RotaryEmbedding or
  GroupQueryAttention from a TorchScript or dynamo export; its Llama pipeline script is not
  runnable from the installed wheel. Those models get the normalization and GELU fusions.)
* ``dynamic`` -- ``quantize_dynamic`` (QUInt8 / QInt8 weights, per-channel on and off) of the
  float models and of the fused BERT (QAttention), some also saved at ORT_ENABLE_EXTENDED
  (DynamicQuantizeMatMul, MatMulIntegerToFloat).
* ``static`` -- ``quantize_static`` in QDQ and QOperator formats (u8/s8 activations, per-channel
  on and off) with a deterministic calibration reader, of cnn / mlp / ffn / bert / gpt2 and of
  the fused BERT, and QDQ models saved at ORT_ENABLE_EXTENDED (QLinearConv, QLinearMatMul,
  QLinearAdd, QGemm, QLinearSoftmax, DQ+MatMul as 8-bit MatMulNBits, ...).
* ``nbits`` -- ``MatMulNBitsQuantizer`` 4-bit weights (block sizes 32 and 128, symmetric and
  not, accuracy level 4, Gather embeddings as GatherBlockQuantized, and the QDQ format: blocked
  int4 DequantizeLinear before MatMul, which ORT_ENABLE_EXTENDED turns into MatMulNBits).

Run ``python tests/contrib_models/generate.py`` to rewrite every model (the folders are
emptied of ``.onnx``/``.npz`` files first).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnx.version_converter

ROOT = Path(__file__).resolve().parent
FAMILIES = ("float", "optimized", "fusions", "dynamic", "static", "nbits")
OPSET = 17
#: Sequence length / batch of the transformer sample inputs.
BATCH, SEQ, VOCAB = 2, 8, 64


# ------------------------------------------------------------------------------------------
# sample inputs
# ------------------------------------------------------------------------------------------


def _token_feeds(rng: np.random.Generator, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Token ids, a right-padded attention mask (row 1 has two pads) and token types."""
    feeds = {"input_ids": rng.integers(0, VOCAB, size=(BATCH, SEQ), dtype=np.int64)}
    mask = np.ones((BATCH, SEQ), np.int64)
    mask[1, -2:] = 0
    feeds["attention_mask"] = mask
    feeds["token_type_ids"] = (np.arange(SEQ)[None, :] >= SEQ // 2).astype(np.int64).repeat(
        BATCH, axis=0)
    return {name: feeds[name] for name in names}


def sample_feeds(kind: str, seed: int) -> dict[str, np.ndarray]:
    """The sample input of a float model kind (also used, with other seeds, to calibrate)."""
    rng = np.random.default_rng(seed)
    if kind == "cnn":
        return {"input": rng.standard_normal((1, 3, 16, 16)).astype(np.float32)}
    if kind == "mlp":
        return {"input": rng.standard_normal((2, 4, 64)).astype(np.float32)}
    if kind == "ffn":
        return {"input": rng.standard_normal((1, 8, 64)).astype(np.float32)}
    if kind == "rnn":
        return {"input": rng.standard_normal((2, 5, 16)).astype(np.float32)}
    if kind == "bert":
        return _token_feeds(rng, ("input_ids", "attention_mask", "token_type_ids"))
    return _token_feeds(rng, ("input_ids", "attention_mask"))


# ------------------------------------------------------------------------------------------
# float models (torch)
# ------------------------------------------------------------------------------------------


def _torch_modules():
    """The float modules by kind, with their input and output names and dynamic axes."""
    import torch
    from torch import nn

    class Cnn(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
            self.bn1 = nn.BatchNorm2d(8)  # after the Relu: the exporter cannot fold it away
            self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(16)
            self.conv3 = nn.Conv2d(16, 16, 1)
            self.fc = nn.Linear(16, 10)

        def forward(self, x):
            x = self.bn1(torch.relu(self.conv1(x)))
            x = nn.functional.max_pool2d(x, 2)
            x = torch.clamp(self.bn2(self.conv2(x)), 0.0, 6.0)
            x = nn.functional.avg_pool2d(torch.relu(self.conv3(x)) + x, 2)
            x = nn.functional.adaptive_avg_pool2d(x, 1).flatten(1)
            return self.fc(x)

    class Mlp(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2, self.fc3 = nn.Linear(64, 128), nn.Linear(128, 64), nn.Linear(64, 16)

        def forward(self, x):
            return torch.sigmoid(self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x))))))

    class Ffn(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = nn.LayerNorm(64)
            self.up, self.down = nn.Linear(64, 128), nn.Linear(128, 64)

        def forward(self, x):
            return x + self.down(nn.functional.gelu(self.up(self.norm(x))))

    class Rnn(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(16, 16, batch_first=True)
            self.gru = nn.GRU(16, 12, batch_first=True)

        def forward(self, x):
            y, _ = self.lstm(x)
            z, h = self.gru(y)
            return z, h

    class Lm(nn.Module):
        """A transformers model called with keywords, returning its first output."""

        def __init__(self, model, names):
            super().__init__()
            self.model, self.names = model, names

        def forward(self, *args):
            kwargs = dict(zip(self.names, args))
            if "token_type_ids" not in self.names:
                kwargs["use_cache"] = False
            out = self.model(**kwargs, return_dict=False)
            return tuple(out[:2]) if "token_type_ids" in self.names else out[0]

    def transformer(kind):
        import transformers as tf

        if kind == "bert":
            config = tf.BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2,
                                   num_attention_heads=4, intermediate_size=64,
                                   max_position_embeddings=32, attn_implementation="eager")
            return Lm(tf.BertModel(config), ("input_ids", "attention_mask", "token_type_ids"))
        if kind == "gpt2":
            config = tf.GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=4, n_inner=64,
                                   n_positions=32, bos_token_id=0, eos_token_id=0,
                                   attn_implementation="eager")
            return Lm(tf.GPT2LMHeadModel(config), ("input_ids", "attention_mask"))
        config = tf.LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64,
                                num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                max_position_embeddings=32, bos_token_id=0, eos_token_id=0,
                                attn_implementation="eager")
        return Lm(tf.LlamaForCausalLM(config), ("input_ids", "attention_mask"))

    def make(kind):
        torch.manual_seed({"cnn": 1, "mlp": 2, "ffn": 3, "rnn": 4, "bert": 5, "gpt2": 6,
                           "llama": 7}[kind])
        if kind in ("bert", "gpt2", "llama"):
            module = transformer(kind)
        else:
            module = {"cnn": Cnn, "mlp": Mlp, "ffn": Ffn, "rnn": Rnn}[kind]()
        if kind == "cnn":  # non-trivial running statistics for the BatchNormalization nodes
            for bn in (module.bn1, module.bn2):
                bn.running_mean.uniform_(-0.5, 0.5)
                bn.running_var.uniform_(0.5, 2.0)
                bn.weight.data.uniform_(0.5, 1.5)
                bn.bias.data.uniform_(-0.2, 0.2)
        return module.eval()

    return make


OUTPUTS = {"cnn": ["output"], "mlp": ["output"], "ffn": ["output"], "rnn": ["output", "h_n"],
           "bert": ["last_hidden_state", "pooler_output"], "gpt2": ["logits"],
           "llama": ["logits"]}
FLOAT_KINDS = tuple(OUTPUTS)


def export_float(kind: str, path: Path) -> None:
    """Export float model ``kind`` with torch's TorchScript exporter (opset 17)."""
    import torch

    module = _torch_modules()(kind)
    feeds = sample_feeds(kind, 0)
    args = tuple(torch.from_numpy(v) for v in feeds.values())
    axes = {}
    for name, value in feeds.items():
        axes[name] = {0: "batch", 1: "seq"} if value.ndim == 2 else {0: "batch"}
    if kind == "cnn":
        axes = {"input": {0: "batch"}}
    with torch.no_grad():
        torch.onnx.export(module, args, str(path), input_names=list(feeds),
                          output_names=OUTPUTS[kind], dynamic_axes=axes, opset_version=OPSET,
                          dynamo=False, do_constant_folding=True)
    model = onnx.load(str(path))
    onnx.save(model, str(path))


# ------------------------------------------------------------------------------------------
# derived models (onnxruntime's tools)
# ------------------------------------------------------------------------------------------


def ort_optimized(src: Path, dst: Path, level: str) -> None:
    """Save ``src`` as an onnxruntime session optimizes it at ``level`` (BASIC / EXTENDED)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = getattr(onnxruntime.GraphOptimizationLevel,
                                               f"ORT_ENABLE_{level}")
    options.optimized_model_filepath = str(dst)
    options.intra_op_num_threads = 1
    onnxruntime.InferenceSession(str(src), options, providers=["CPUExecutionProvider"])


def transformer_fused(src: Path, dst: Path, model_type: str, opt_level: int,
                      **fusion: bool) -> None:
    """``optimize_model`` with the tiny transformers' 4 heads and hidden size 32."""
    from onnxruntime.transformers import optimizer
    from onnxruntime.transformers.fusion_options import FusionOptions

    options = FusionOptions(model_type)
    for name, value in fusion.items():
        setattr(options, name, value)
    fused = optimizer.optimize_model(str(src), model_type=model_type, num_heads=4,
                                     hidden_size=32, opt_level=opt_level,
                                     optimization_options=options)
    fused.save_model_to_file(str(dst))


def float16(src: Path, dst: Path) -> None:
    """The optimizer's ``convert_float_to_float16`` (float inputs and outputs kept)."""
    from onnxruntime.transformers.onnx_model import OnnxModel

    model = OnnxModel(onnx.load(str(src)))
    model.convert_float_to_float16(keep_io_types=True)
    model.save_model_to_file(str(dst))


def dynamic_quantized(src: Path, dst: Path, weight: str, per_channel: bool) -> None:
    """``quantize_dynamic`` with QUInt8 (``u8``) or QInt8 (``s8``) weights."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), per_channel=per_channel,
                     weight_type=QuantType.QUInt8 if weight == "u8" else QuantType.QInt8,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})


class _Reader:
    """A deterministic CalibrationDataReader: eight sample inputs of one model kind."""

    def __init__(self, kind: str) -> None:
        self._feeds = iter([sample_feeds(kind, 100 + i) for i in range(8)])

    def get_next(self):
        return next(self._feeds, None)

    def rewind(self) -> None:  # pragma: no cover - the MinMax calibrator does not rewind
        raise NotImplementedError


def static_quantized(src: Path, dst: Path, kind: str, fmt: str, activation: str, weight: str,
                     per_channel: bool) -> None:
    """``quantize_static`` in ``qdq`` or ``qop`` (QOperator) format."""
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)

    types = {"u8": QuantType.QUInt8, "s8": QuantType.QInt8}
    reader = type("Reader", (_Reader, CalibrationDataReader), {})(kind)
    quantize_static(str(src), str(dst), reader,
                    quant_format=QuantFormat.QDQ if fmt == "qdq" else QuantFormat.QOperator,
                    activation_type=types[activation], weight_type=types[weight],
                    per_channel=per_channel)


def nbits_quantized(src: Path, dst: Path, block: int, symmetric: bool,
                    accuracy_level: int | None = None, gather: bool = False,
                    qdq: bool = False) -> None:
    """``MatMulNBitsQuantizer`` 4-bit (MatMul -> MatMulNBits, Gather -> GatherBlockQuantized;
    ``qdq``: blocked int4 DequantizeLinear -> MatMul instead)."""
    from onnxruntime.quantization import QuantFormat
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    model, kwargs = onnx.load(str(src)), {}
    if gather or qdq:  # int4 tensors need opset 21: convert first (the quantizer relabels)
        model = onnx.version_converter.convert_version(model, 21)
    if qdq:
        kwargs["quant_format"] = QuantFormat.QDQ
    if gather:
        kwargs = {"op_types_to_quantize": ("MatMul", "Gather"),
                  "quant_axes": (("MatMul", 0), ("Gather", 1))}
    quantizer = MatMulNBitsQuantizer(model, bits=4, block_size=block,
                                     is_symmetric=symmetric, accuracy_level=accuracy_level,
                                     **kwargs)
    quantizer.process()
    quantizer.model.save_model_to_file(str(dst))


# ------------------------------------------------------------------------------------------
# the set
# ------------------------------------------------------------------------------------------

#: (family, name, source (family/name), maker, keyword arguments); ``kind`` is the float
#: model a derived model descends from (its sample feeds).
DERIVED: list[tuple[str, str, str, str, dict]] = []


def _kind_of(source: str) -> str:
    """The float model kind a model descends from (``dynamic/bert_fused_u8`` -> ``bert``)."""
    return Path(source).name.split("_")[0]


def _derive(family: str, name: str, source: str, maker: str, **kwargs) -> None:
    DERIVED.append((family, name, source, maker, kwargs))


for _kind in FLOAT_KINDS:
    for _level in ("BASIC", "EXTENDED"):
        _derive("optimized", f"{_kind}_{_level.lower()}", f"float/{_kind}", "ort_optimized",
                level=_level)
for _level in (0, 1, 2):
    _derive("fusions", f"bert_opt{_level}", "float/bert", "transformer_fused",
            model_type="bert", opt_level=_level)
    _derive("fusions", f"gpt2_opt{_level}", "float/gpt2", "transformer_fused",
            model_type="gpt2", opt_level=_level)
    _derive("fusions", f"llama_opt{_level}", "float/llama", "transformer_fused",
            model_type="gpt2", opt_level=_level)
_derive("fusions", "bert_fastgelu_mha", "float/bert", "transformer_fused", model_type="bert",
        opt_level=0, enable_gelu_approximation=True, use_multi_head_attention=True)
_derive("fusions", "bert_rawmask", "float/bert", "transformer_fused", model_type="bert",
        opt_level=1, attention_mask_format=2)  # AttentionMaskFormat.AttentionMask: 2-D mask
for _name in ("bert_opt1", "gpt2_opt1", "llama_opt1"):
    _derive("fusions", f"{_name}_fp16", f"fusions/{_name}", "float16")
_derive("fusions", "bert_noembed", "float/bert", "transformer_fused", model_type="bert",
        opt_level=1, enable_embed_layer_norm=False, enable_bias_skip_layer_norm=False)

for _name, _src, _weight, _pc in [
        ("mlp_u8", "float/mlp", "u8", False), ("mlp_s8", "float/mlp", "s8", False),
        ("mlp_u8_pc", "float/mlp", "u8", True), ("mlp_s8_pc", "float/mlp", "s8", True),
        ("ffn_u8", "float/ffn", "u8", False), ("ffn_s8_pc", "float/ffn", "s8", True),
        ("cnn_u8", "float/cnn", "u8", False),
        ("rnn_u8", "float/rnn", "u8", False), ("rnn_s8", "float/rnn", "s8", False),
        ("bert_u8", "float/bert", "u8", False), ("bert_s8_pc", "float/bert", "s8", True),
        ("bert_fused_u8", "fusions/bert_opt1", "u8", False),
        ("bert_fused_s8", "fusions/bert_opt1", "s8", False),
        ("gpt2_s8", "float/gpt2", "s8", False), ("llama_s8_pc", "float/llama", "s8", True)]:
    _derive("dynamic", _name, _src, "dynamic_quantized", weight=_weight, per_channel=_pc)
for _name in ("mlp_u8", "mlp_s8_pc", "ffn_s8_pc", "bert_fused_s8"):
    _derive("dynamic", f"{_name}_extended", f"dynamic/{_name}", "ort_optimized",
            level="EXTENDED")

for _prefix, _src, _variants in [
        ("cnn", "float/cnn", ["qdq_u8s8", "qdq_s8s8_pc", "qop_u8u8", "qop_s8s8_pc",
                              "qop_u8s8_pc"]),
        ("mlp", "float/mlp", ["qdq_u8s8", "qdq_s8s8_pc", "qop_u8s8", "qop_s8s8_pc"]),
        ("ffn", "float/ffn", ["qdq_u8s8", "qop_u8s8", "qop_s8s8_pc"]),
        ("bert", "float/bert", ["qdq_u8s8", "qop_u8s8"]),
        ("bert_fused", "fusions/bert_noembed", ["qdq_u8s8"]),
        ("gpt2", "float/gpt2", ["qop_u8s8"])]:
    for _v in _variants:
        _fmt, _types, *_pc = _v.split("_")
        _derive("static", f"{_prefix}_{_v}", _src, "static_quantized", kind=_kind_of(_src),
                fmt=_fmt, activation=_types[:2], weight=_types[2:], per_channel=bool(_pc))
for _name in ("cnn_qdq_u8s8", "cnn_qdq_s8s8_pc", "mlp_qdq_u8s8", "mlp_qdq_s8s8_pc",
              "ffn_qdq_u8s8", "bert_qdq_u8s8", "bert_fused_qdq_u8s8"):
    _derive("static", f"{_name}_extended", f"static/{_name}", "ort_optimized", level="EXTENDED")

for _name, _src, _block, _sym, _extra in [
        ("mlp_b32_sym", "float/mlp", 32, True, {}), ("mlp_b32_asym", "float/mlp", 32, False, {}),
        ("mlp_b128_sym", "float/mlp", 128, True, {}),
        ("mlp_b128_asym", "float/mlp", 128, False, {}),
        ("ffn_b32_sym", "float/ffn", 32, True, {}), ("ffn_b128_asym", "float/ffn", 128, False, {}),
        ("ffn_b32_acc4", "float/ffn", 32, False, {"accuracy_level": 4}),
        ("bert_b32_sym", "float/bert", 32, True, {}),
        ("bert_fused_b32_asym", "fusions/bert_opt1", 32, False, {}),
        ("gpt2_b32_asym", "float/gpt2", 32, False, {}),
        ("llama_b32_sym", "float/llama", 32, True, {}),
        ("llama_b128_asym", "float/llama", 128, False, {}),
        ("llama_b32_acc4", "float/llama", 32, True, {"accuracy_level": 4}),
        ("llama_b32_gather", "float/llama", 32, True, {"gather": True})]:
    _derive("nbits", _name, _src, "nbits_quantized", block=_block, symmetric=_sym, **_extra)
for _name, _src in (("mlp_b32_qdq", "float/mlp"), ("llama_b32_qdq", "float/llama")):
    _derive("nbits", _name, _src, "nbits_quantized", block=32, symmetric=False, qdq=True)
    _derive("nbits", f"{_name}_extended", f"nbits/{_name}", "ort_optimized", level="EXTENDED")


def main() -> None:
    """Rewrite every model of the set and its sample feeds."""
    warnings.filterwarnings("ignore")
    os.environ.setdefault("PYTHONHASHSEED", "0")
    for family in FAMILIES:
        folder = ROOT / family
        folder.mkdir(exist_ok=True)
        for old in list(folder.glob("*.onnx")) + list(folder.glob("*.npz")):
            old.unlink()
    makers = {"ort_optimized": ort_optimized, "transformer_fused": transformer_fused,
              "float16": float16,
              "dynamic_quantized": dynamic_quantized, "static_quantized": static_quantized,
              "nbits_quantized": nbits_quantized}
    for kind in FLOAT_KINDS:
        export_float(kind, ROOT / "float" / f"{kind}.onnx")
        np.savez(ROOT / "float" / f"{kind}.npz", **sample_feeds(kind, 0))
        print("float", kind)
    with tempfile.TemporaryDirectory() as tmp:
        for family, name, source, maker, kwargs in DERIVED:
            dst = ROOT / family / f"{name}.onnx"
            work = Path(tmp) / f"{family}_{name}.onnx"  # the tools write side files
            shutil.copy(ROOT / f"{source}.onnx", Path(tmp) / "src.onnx")
            makers[maker](Path(tmp) / "src.onnx", work, **kwargs)
            model = onnx.load(str(work))
            model.graph.doc_string = f"{maker} of {source} {kwargs or ''}".strip()
            onnx.save(model, str(dst))
            feeds = sample_feeds(_kind_of(source), 0)
            names = [i.name for i in model.graph.input]
            assert set(names) <= set(feeds), (name, names)
            np.savez(ROOT / family / f"{name}.npz", **{n: feeds[n] for n in names})
            print(family, name)


if __name__ == "__main__":
    main()
