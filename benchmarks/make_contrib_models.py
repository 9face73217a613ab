"""Write the quantized and fused benchmark models (``make_contrib_models.py OUTDIR``).

Each model is derived offline from a float model of ``make_models.py`` (written into OUTDIR
first when it is not there) by onnxruntime's own tools, so they carry the com.microsoft
contrib ops and quantized operators those tools produce, at realistic sizes:

=========================  ====================================================================
bert_base_dynamic_u8s8     ``quantize_dynamic`` of bert_base, QInt8 weights (its default, the
                           type onnxruntime recommends on x86 CPUs), per-tensor, uint8
                           activations: DynamicQuantizeLinear + MatMulInteger + Mul (+ Add),
                           which onnxruntime's session turns into DynamicQuantizeMatMul and
                           MatMulIntegerToFloat
bert_base_fused            ``onnxruntime.transformers.optimizer.optimize_model`` (bert, 12 heads,
                           hidden 768): Attention, SkipLayerNormalization, BiasGelu,
                           EmbedLayerNormalization where the patterns match
gpt2_small_int4            ``MatMulNBitsQuantizer`` of gpt2_small: 4-bit weights, block 32,
                           symmetric: MatMulNBits
resnet18_qdq_u8s8          ``quantize_static`` QDQ of resnet18 (after ``quant_pre_process``),
                           per-channel, uint8 activations, int8 weights: QuantizeLinear /
                           DequantizeLinear pairs around Conv, Add, MaxPool, Gemm ...
mobilenetv2_qdq            the same for mobilenetv2
resnet18_qop               ``quantize_static`` QOperator format of resnet18 (same settings):
                           QLinearConv, QLinearAdd, QLinearGlobalAveragePool, QGemm ...
mobilenetv2_extended       mobilenetv2 as an onnxruntime session saves it optimized at
                           ORT_ENABLE_EXTENDED: FusedConv (Conv + BN + Clip) ...
=========================  ====================================================================

Static quantization calibrates (MinMax) on a few batch-1 inputs of seeded normal noise, the
inputs ``ort bench`` feeds; the tools are deterministic, so the files are the same on every
run with the same onnxruntime. onnxruntime (with its ``transformers`` and ``quantization``
packages) is the only extra dependency, as for the benchmark's comparison. ``--only a,b``
writes a subset; like make_models.py, OUTDIR gets a ``.gitignore`` that keeps it out of git.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import onnx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_models  # noqa: E402  (the float models, this folder)

SEED = 0
#: Calibration inputs per statically quantized model (batch 1 each).
CALIBRATION_SAMPLES = 4


def dynamic_quantized(src: Path, dst: Path) -> None:
    """``quantize_dynamic`` with QInt8 weights, per tensor."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), per_channel=False, weight_type=QuantType.QInt8)


def split_mask_unsqueeze(model: onnx.ModelProto) -> onnx.ModelProto:
    """Rewrite ``Unsqueeze(attention_mask, axes=[1, 2])`` as two Unsqueezes (axis 1, then 2).

    That is how torch exports ``attention_mask[:, None, None, :]``, and the only form of that
    step the transformer optimizer's attention fusion matches (``make_models.py`` writes the
    one-node form, with which BERT gets no Attention). Same values, same graph otherwise."""
    from onnx import numpy_helper

    constants = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    nodes = []
    for node in model.graph.node:
        axes = constants.get(node.input[1]) if node.op_type == "Unsqueeze" else None
        if node.input[:1] == ["attention_mask"] and axes is not None and list(axes) == [1, 2]:
            one, two, middle = f"{node.name}_axis1", f"{node.name}_axis2", f"{node.name}_mid"
            model.graph.initializer.extend([numpy_helper.from_array(np.array([1]), one),
                                            numpy_helper.from_array(np.array([2]), two)])
            nodes += [onnx.helper.make_node("Unsqueeze", [node.input[0], one], [middle],
                                            f"{node.name}_1"),
                      onnx.helper.make_node("Unsqueeze", [middle, two], list(node.output),
                                            f"{node.name}_2")]
        else:
            nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model


def bert_fused(src: Path, dst: Path) -> None:
    """The transformer optimizer's BERT fusions for BERT-base (12 heads, hidden 768).

    ``optimize_model``'s default for bert (``opt_level=1``) first saves the model as an
    onnxruntime session optimizes it at ORT_ENABLE_BASIC, through a helper that imports torch;
    this does that step itself and then runs the fusions alone (``opt_level=0``): the same
    result without torch."""
    from onnxruntime.transformers import optimizer

    with tempfile.TemporaryDirectory() as tmp:
        split, basic = Path(tmp) / "split.onnx", Path(tmp) / "basic.onnx"
        onnx.save_model(split_mask_unsqueeze(onnx.load(str(src))), str(split))
        ort_saved(split, basic, "BASIC")
        fused = optimizer.optimize_model(str(basic), model_type="bert", num_heads=12,
                                         hidden_size=768, opt_level=0)
    fused.save_model_to_file(str(dst))


def int4_quantized(src: Path, dst: Path) -> None:
    """``MatMulNBitsQuantizer``: 4-bit symmetric weights in blocks of 32."""
    from onnxruntime.quantization import matmul_nbits_quantizer

    quantizer = matmul_nbits_quantizer.MatMulNBitsQuantizer(
        onnx.load(str(src)), bits=4, block_size=32, is_symmetric=True)
    quantizer.process()
    quantizer.model.save_model_to_file(str(dst))


def _calibration_reader(model_path: Path):
    """A deterministic CalibrationDataReader: seeded normal noise for every float input,
    batch 1 (the model's symbolic dims set to 1)."""
    from onnxruntime.quantization import CalibrationDataReader

    graph = onnx.load(str(model_path), load_external_data=False).graph
    initializers = {init.name for init in graph.initializer}
    shapes = {i.name: [d.dim_value or 1 for d in i.type.tensor_type.shape.dim]
              for i in graph.input if i.name not in initializers}
    rng = np.random.default_rng(SEED)
    feeds = [{name: rng.standard_normal(shape).astype(np.float32)
              for name, shape in shapes.items()} for _ in range(CALIBRATION_SAMPLES)]

    class Reader(CalibrationDataReader):
        """Yields the prepared feeds once."""

        def __init__(self) -> None:
            self._feeds = iter(feeds)

        def get_next(self) -> dict[str, np.ndarray] | None:
            """The next calibration feed, None at the end."""
            return next(self._feeds, None)

    return Reader()


def static_quantized(src: Path, dst: Path, fmt: str) -> None:
    """``quant_pre_process`` (BN folded into Conv, shapes inferred), then ``quantize_static``
    per-channel with uint8 activations and int8 weights in ``qdq`` or ``qop`` format."""
    from onnxruntime import quantization
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(src), str(prepared))
        formats = quantization.QuantFormat
        quantization.quantize_static(
            str(prepared), str(dst), _calibration_reader(prepared),
            quant_format=formats.QDQ if fmt == "qdq" else formats.QOperator,
            activation_type=quantization.QuantType.QUInt8,
            weight_type=quantization.QuantType.QInt8, per_channel=True)


def ort_saved(src: Path, dst: Path, level: str = "EXTENDED") -> None:
    """Save ``src`` as an onnxruntime CPU session optimizes it at ORT_ENABLE_``level``."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = getattr(onnxruntime.GraphOptimizationLevel,
                                               f"ORT_ENABLE_{level}")
    options.optimized_model_filepath = str(dst)
    options.intra_op_num_threads = 1
    onnxruntime.InferenceSession(str(src), options, providers=["CPUExecutionProvider"])


#: name -> (float source model of make_models.py, maker(src, dst)).
MODELS: dict[str, tuple[str, Callable[[Path, Path], None]]] = {
    "bert_base_dynamic_u8s8": ("bert_base", dynamic_quantized),
    "bert_base_fused": ("bert_base", bert_fused),
    "gpt2_small_int4": ("gpt2_small", int4_quantized),
    "resnet18_qdq_u8s8": ("resnet18", lambda s, d: static_quantized(s, d, "qdq")),
    "mobilenetv2_qdq": ("mobilenetv2", lambda s, d: static_quantized(s, d, "qdq")),
    "resnet18_qop": ("resnet18", lambda s, d: static_quantized(s, d, "qop")),
    "mobilenetv2_extended": ("mobilenetv2", ort_saved),
}


def op_summary(model: onnx.ModelProto, top: int = 8) -> str:
    """The most frequent op types of a model, ``domain:`` prefixed outside the default one."""
    counts: dict[str, int] = {}
    for node in model.graph.node:
        default = node.domain in ("", "ai.onnx")
        key = node.op_type if default else f"{node.domain}:{node.op_type}"
        counts[key] = counts.get(key, 0) + 1
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{op} {n}" for op, n in ranked[:top])


def main(argv: list[str] | None = None) -> int:
    """Write the requested derived models (and the float models they need) into OUTDIR."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path, nargs="?", default=Path(".bench_models"),
                        help="folder of make_models.py's models (default .bench_models)")
    parser.add_argument("--only", default="", help="comma-separated model names: "
                        + ",".join(MODELS))
    args = parser.parse_args(argv)
    names = make_models.chosen_models(parser, args.only, MODELS)
    make_models.prepare_outdir(args.outdir, "make_contrib_models.py")
    sources = sorted({MODELS[n][0] for n in names
                      if not (args.outdir / f"{MODELS[n][0]}.onnx").exists()})
    if sources:
        make_models.main([str(args.outdir), "--only", ",".join(sources)])
    for name in names:
        source, maker = MODELS[name]
        dst = args.outdir / f"{name}.onnx"
        start = time.perf_counter()
        maker(args.outdir / f"{source}.onnx", dst)
        model = onnx.load(str(dst), load_external_data=False)
        print(f"{dst}: {len(model.graph.node)} nodes ({op_summary(model)}), "
              f"{dst.stat().st_size / 1e6:.1f} MB, {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
