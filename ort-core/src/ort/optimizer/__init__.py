"""Graph optimization at session creation, by ``SessionOptions.graph_optimization_level``.

Passes rewrite an ``onnx.ModelProto`` (so ``optimized_model_filepath`` can save the result as a
valid ONNX file). :data:`PASSES` lists them with the level from which each runs, in the order
they run in each round:

* ``ORT_ENABLE_BASIC`` (1): semantics-preserving cleanups that need no special kernel
  (constant folding, dead-node and identity elimination, common subexpressions, Conv+BN
  folding).
* ``ORT_ENABLE_EXTENDED`` (2): fusions into ops the session's first-choice provider has a
  kernel for (``context.has_kernel``), e.g. ``com.microsoft:FusedConv``; fusing into an op
  only a later provider runs would take nodes away from the user's first choice.
* ``ORT_ENABLE_ALL`` (99): everything above. ort makes no blocked-layout rewrites of its own;
  the other way round, ``NchwcUnblock`` turns the ``com.microsoft.nchwc`` regions of models
  onnxruntime saved at this level back into plain NCHW ops.

Every pass keeps the graph's inputs, outputs and overridable initializers, and outputs at
every level equal level 0's within floating-point tolerance. The passes run on the main graph,
then on each subgraph (If/Loop/Scan bodies) as onnxruntime's do (:mod:`.subgraphs`). A new pass is a function
``(model, context) -> changed`` in a module of this package, added to :data:`PASSES`.
"""

from __future__ import annotations

from onnx import ModelProto

from ..errors import Fail, OrtError
from ..ir.gc_pause import paused_gc

from .activation_fusions import (
    fuse_conv_activation, fuse_conv_add_activation, fuse_gemm_activation, fuse_matmul_add,
)
from .attention_fusion import fuse_attention
from .basic import eliminate_dead_nodes, eliminate_identity
from .castlike_folding import castlike_to_cast
from .constant_folding import fold_constants
from .context import OptimizationPass, OptimizerContext
from .conv_folding import fuse_conv_add, fuse_conv_bn, fuse_conv_mul
from .cse import eliminate_common_subexpressions, merge_shape_inputs
from .function_inlining import inline_local_functions
from .gelu_fusions import fuse_bias_gelu, fuse_fast_gelu, fuse_gelu
from .matmul_fusion import fuse_matmul_scale, fuse_matmul_transpose
from .nchwc_unblock import unblock_nchwc
from .noop_elimination import eliminate_noop_casts, eliminate_noop_slices
from .norm_fusions import fuse_layer_norm, fuse_skip_layer_norm
from .quant_fusions import (
    fuse_dynamic_quantize_matmul, fuse_matmul_integer_to_float, fuse_qdq, fuse_qdq_s8_to_u8,
)
from .reshape_fusion import fuse_reshape_targets
from .rms_norm_fusion import fuse_simplified_layer_norm, fuse_skip_simplified_layer_norm
from .silu_fusion import fuse_quick_gelu
from .slice_split_fusion import fuse_slices_to_split
from .subgraphs import optimize_subgraphs

__all__ = ["OptimizerContext", "OptimizationPass", "PASSES", "passes_for", "optimize_model"]

#: (level, name, pass), in the order the passes run in each round.
PASSES: tuple[tuple[int, str, OptimizationPass], ...] = (
    (1, "FunctionInlining", inline_local_functions),
    (1, "CastElimination", eliminate_noop_casts),
    (1, "SliceElimination", eliminate_noop_slices),
    (1, "IdentityElimination", eliminate_identity),
    (1, "DeadNodeElimination", eliminate_dead_nodes),
    (1, "CastLikeToCast", castlike_to_cast),
    (1, "ConstantFolding", fold_constants),
    (1, "ShapeInputMerge", merge_shape_inputs),
    (1, "CommonSubexpressionElimination", eliminate_common_subexpressions),
    (1, "ReshapeFusion", fuse_reshape_targets),
    (1, "ConvBNFusion", fuse_conv_bn),
    (1, "ConvMulFusion", fuse_conv_mul),
    (1, "ConvAddFusion", fuse_conv_add),
    (2, "NchwcUnblock", unblock_nchwc),
    (2, "SliceToSplitFusion", fuse_slices_to_split),
    (2, "QDQS8ToU8", fuse_qdq_s8_to_u8),
    (2, "QDQFusion", fuse_qdq),
    (2, "MatMulIntegerToFloatFusion", fuse_matmul_integer_to_float),
    (2, "DynamicQuantizeMatMulFusion", fuse_dynamic_quantize_matmul),
    (2, "AttentionFusion", fuse_attention),
    (2, "ConvActivationFusion", fuse_conv_activation),
    (2, "ConvAddActivationFusion", fuse_conv_add_activation),
    (2, "MatMulAddFusion", fuse_matmul_add),
    (2, "GemmActivationFusion", fuse_gemm_activation),
    (2, "GeluFusion", fuse_gelu),
    (2, "FastGeluFusion", fuse_fast_gelu),
    (2, "BiasGeluFusion", fuse_bias_gelu),
    (2, "LayerNormFusion", fuse_layer_norm),
    (2, "SkipLayerNormFusion", fuse_skip_layer_norm),
    (2, "QuickGeluFusion", fuse_quick_gelu),
    (2, "SimplifiedLayerNormFusion", fuse_simplified_layer_norm),
    (2, "SkipSimplifiedLayerNormFusion", fuse_skip_simplified_layer_norm),
    (2, "MatMulScaleFusion", fuse_matmul_scale),
    (2, "MatmulTransposeFusion", fuse_matmul_transpose),
)


def passes_for(level: int) -> list[tuple[str, OptimizationPass]]:
    """The passes that run at ``level``, in order."""
    return [(name, fn) for pass_level, name, fn in PASSES if pass_level <= int(level)]


def optimize_model(model: ModelProto, level: int, context: OptimizerContext,
                   disabled: set[str] | None = None, max_rounds: int = 4) -> ModelProto:
    """Return an optimized copy of ``model`` (``model`` itself at level 0 or when no pass
    changes anything); passes named in ``disabled`` are skipped. Passes repeat until none
    changes the graph (at most ``max_rounds`` rounds); a round stops early where every pass
    left to run saw the same model last round and changed nothing (passes are deterministic
    functions of the model)."""
    selected = [(n, fn) for n, fn in passes_for(level) if n not in (disabled or set())]
    if not selected:
        return model
    with paused_gc():  # passes allocate per node; full collections would find nothing to free
        return _optimize(model, context, selected, max_rounds)


def _optimize(model: ModelProto, context: OptimizerContext,
              selected: list[tuple[str, OptimizationPass]], max_rounds: int) -> ModelProto:
    optimized = ModelProto()
    optimized.CopyFrom(model)
    # an unchanged model is returned as it came, so the session does not infer its types again
    return optimized if _optimize_in_place(optimized, context, selected, max_rounds) else model


def _optimize_in_place(optimized: ModelProto, context: OptimizerContext,
                       selected: list[tuple[str, OptimizationPass]], max_rounds: int) -> bool:
    """Run the rounds of passes on ``optimized``, then on its subgraphs; whether anything
    changed."""
    graph = optimized.graph
    context.keep = ({i.name for i in graph.input} | {o.name for o in graph.output})
    changed_at_all = False
    last_fired = len(selected)  # position of the last pass that changed the model last round
    for _ in range(max_rounds):
        fired_at = -1
        for position, (name, fn) in enumerate(selected):
            if fired_at < 0 and position > last_fired:
                # this pass and the ones after it saw this very model at the end of the last
                # round and left it as it was: they would again, and the round changes nothing
                break
            try:
                fired = fn(optimized, context)
            except OrtError:
                raise
            except Exception as exc:  # a pass tripped over the model: a typed error naming it
                context.cached_view = None
                raise Fail(f"Graph optimization failed in pass {name}: {type(exc).__name__}: "
                           f"{exc}. Set graph_optimization_level to ORT_DISABLE_ALL to run the "
                           "model unoptimized") from exc
            if fired:
                fired_at = position
                context.cached_view = None  # the model changed: index it afresh
        if fired_at < 0:
            break
        changed_at_all = True
        last_fired = fired_at
    context.cached_view = None  # the view refers back to the context: no cycle left behind
    # then the If/Loop/Scan bodies, each as a model of its own (their nodes' subgraphs too)
    if optimize_subgraphs(optimized, context, lambda sub, inner: _optimize_in_place(
            sub, inner, selected, max_rounds)):
        changed_at_all = True
    return changed_at_all
