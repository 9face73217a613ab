"""``InferenceSession``: load, partition and plan once; then ``run`` many times.

Everything expensive happens in the constructor. ``run`` validates the feeds (names, element
types, ranks, fixed dimensions), executes the plan and converts the outputs; a bad call raises a
clear error and leaves the session usable, and the caller's arrays are never written to.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import ModelProto

from ..ep import ExecutionProvider, get_registry
from ..errors import EPFail, Fail, InvalidArgument, InvalidProtobuf
from ..ir import WeightStore, infer_types, load_model, validate_model
from ..ir.declared_types import check_declared_types
from ..ir.loading import undecodable_text
from ..optimizer import OptimizerContext, optimize_model
from ..runtime import (
    BlasThreadLimit, HostArena, Partition, Plan, Profiler, RunState, SessionCompileContext,
    arena_supported, compile, execute, may_call_blas, quiet_fp_begin, quiet_fp_end,
)
from .feeds import FeedSpec, TensorFeed, feed_spec
from .iobinding import IOBinding
from .metadata import ModelMetadata, NodeArg, node_arg_of
from .options import ExecutionMode, RunOptions, SessionOptions
from .ortvalue import OrtValue
from .providers import create_providers

__all__ = ["InferenceSession", "PartitionReport"]

logger = logging.getLogger("ort")


@dataclass(frozen=True)
class PartitionReport:
    """Which provider runs which node, and the device copies inserted between them."""

    nodes_by_provider: dict[str, list[str]]
    copies: list[str]
    #: node name -> why the providers before the one running it did not take it
    fallbacks: dict[str, str]


#: weights moved out of a model's protobuf from which the model is parsed afresh to free them
_REPARSE_BYTES = 16 << 20


class InferenceSession:
    """Runs an ONNX model (``onnxruntime.InferenceSession``).

    Args:
        path_or_bytes: a file path, ``os.PathLike``, the serialized model, or an
            ``onnx.ModelProto`` (ONNX Runtime refuses the latter; ort accepts it).
        sess_options: a :class:`SessionOptions`.
        providers: provider names or ``(name, options)`` tuples in priority order;
            ``CPUExecutionProvider`` is appended when missing. Providers that are not installed
            or cannot run here are skipped with a warning saying why.
        provider_options: one options dict per entry of ``providers``.
    """

    def __init__(
        self,
        path_or_bytes: str | bytes | os.PathLike | ModelProto,
        sess_options: SessionOptions | None = None,
        providers: Sequence[str | tuple[str, dict[str, Any]]] | None = None,
        provider_options: Sequence[dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> None:
        self._model_path = path_or_bytes if isinstance(path_or_bytes, (str, os.PathLike)) else None
        self._sess_options = sess_options if sess_options is not None else SessionOptions()
        if not isinstance(self._sess_options, SessionOptions):
            raise TypeError(
                f"sess_options must be an ort.SessionOptions, got {type(sess_options).__name__}"
            )
        # ONNX Runtime's undocumented kwarg: optimizer passes to skip, by name
        self._disabled_optimizers = set(kwargs.pop("disabled_optimizers", None) or ())
        self._profiler: Profiler | None = None
        if self._sess_options.enable_profiling:
            self._profiler = Profiler(self._sess_options.profile_file_prefix)
            self._profiler_start = self._profiler.now_us()
        try:
            self._create(path_or_bytes, providers, provider_options)
        except (UnicodeDecodeError, TypeError) as exc:
            # protobuf's Python runtime hands out text that is not UTF-8 as bytes, or raises
            # when it is read: whatever then failed, the model's text is the cause
            where = undecodable_text(path_or_bytes)
            if where is None:
                raise
            raise InvalidProtobuf(
                f"Failed to load model: {where} holds text that is not valid UTF-8 ({exc}); "
                "ONNX requires UTF-8 text") from None

    def _create(self, path_or_bytes: Any, providers: Any, provider_options: Any) -> None:
        """Load, validate, type and optimize the model; compile it for the providers."""
        model, _ = load_model(path_or_bytes, self._sess_options._config.get(
            "session.model_external_initializers_file_folder_path") or None)
        if model is path_or_bytes:  # the caller's ModelProto: annotate a copy, not theirs
            model = ModelProto()
            model.CopyFrom(path_or_bytes)
        loaded_at = self._profiler.now_us() if self._profiler is not None else 0.0
        registry = get_registry()
        validate_model(model, registry.schemas, lambda domain, op_type: any(
            registry.kernels_for(p, domain, op_type) for p in registry.kernel_providers()))
        model = self._apply_free_dimension_overrides(model)
        self._model = _constants_of_ir3(infer_types(model, registry.schemas))
        check_declared_types(self._model, registry.schemas)
        self._metadata = ModelMetadata.of_model(self._model)
        self._apply_initializer_overrides()
        # weights move out of the protobuf once, so rewriting the model copies no data; they
        # belong to this session: no other model can name them
        self._weights = WeightStore()
        moved = self._weights.detach(self._model.graph)
        # protobuf keeps a parsed message's bytes in one arena, which clearing fields does not
        # shrink: a fresh parse of the detached model lets the weights' bytes go (BERT-base:
        # 390 MB of resident memory); not worth its time for a few MB
        del model
        if moved >= _REPARSE_BYTES:
            self._model = ModelProto.FromString(self._model.SerializeToString())
        graph = self._model.graph
        init_names = {t.name for t in graph.initializer} | {t.values.name for t in graph.sparse_initializer}
        self._inputs = [node_arg_of(vi) for vi in graph.input if vi.name not in init_names]
        self._outputs = [node_arg_of(vi) for vi in graph.output]
        self._overridable = [node_arg_of(vi) for vi in graph.input if vi.name in init_names]
        self._setup(providers, provider_options)
        if self._profiler is not None:
            now = self._profiler.now_us()
            self._profiler.add("Session", "model_loading_uri", self._profiler_start, loaded_at)
            self._profiler.add("Session", "session_initialization", self._profiler_start, now)
        if self._sess_options.optimized_model_filepath:
            onnx.save(self._weights.materialize(self._optimized_model),
                      self._sess_options.optimized_model_filepath)

    # -- construction helpers -----------------------------------------------------------------
    def _apply_free_dimension_overrides(self, model: ModelProto) -> ModelProto:
        by_name = self._sess_options._free_dims_by_name
        by_denotation = self._sess_options._free_dims_by_denotation
        if not by_name and not by_denotation:
            return model
        model = ModelProto.FromString(model.SerializeToString()) if isinstance(model, ModelProto) else model
        for vi in model.graph.input:
            if vi.type.WhichOneof("value") != "tensor_type":
                continue
            for dim in vi.type.tensor_type.shape.dim:
                value = by_name.get(dim.dim_param) if dim.HasField("dim_param") else None
                if value is None and dim.denotation:
                    value = by_denotation.get(dim.denotation)
                if value is not None:
                    dim.dim_value = value
        return model

    def _apply_initializer_overrides(self) -> None:
        overrides = self._sess_options._initializers
        if not overrides:
            return
        tensors = {t.name: t for t in self._model.graph.initializer}
        for name, value in overrides.items():
            if name not in tensors:
                raise InvalidArgument(
                    f"add_initializer: the model has no initializer named '{name}'; "
                    f"initializers: {sorted(tensors)[:20]}"
                )
        model = ModelProto()
        model.CopyFrom(self._model)
        for tensor in model.graph.initializer:
            if tensor.name in overrides:
                value = overrides[tensor.name]
                array = value.numpy() if isinstance(value, OrtValue) else np.asarray(value)
                tensor.CopyFrom(onnx.numpy_helper.from_array(np.asarray(array, order="C"), tensor.name))
        self._model = model

    def _optimize(self, registry: Any) -> ModelProto:
        """The model rewritten at the session's optimization level for its providers."""
        level = int(self._sess_options.graph_optimization_level)
        if level <= 0:
            return self._model
        preferred = self._providers[0].name

        def has_kernel(domain: str, op_type: str, version: int) -> bool:
            # fusions target the user's first-choice provider: fusing into an op only a later
            # provider has would take nodes away from the first choice
            return registry.lookup(preferred, domain, op_type, version, []) is not None

        context = OptimizerContext(has_kernel=has_kernel, evaluate=self._evaluate_constant,
                                   weights=self._weights)
        disabled = self._disabled_optimizers
        optimized = optimize_model(self._model, level, context, disabled)
        if optimized is self._model:
            return optimized
        self._weights.retain(self._model, optimized)  # drop what later rounds replaced
        # keep what is known of values that survive (a pass never changes what a surviving
        # name holds, and onnx cannot infer through com.microsoft ops); infer the new ones
        produced = {o for node in optimized.graph.node for o in node.output if o}
        kept = [vi for vi in optimized.graph.value_info if vi.name in produced]
        del optimized.graph.value_info[:]
        optimized.graph.value_info.extend(kept)
        before = {o for node in self._model.graph.node for o in node.output if o}
        typed = {vi.name for vi in kept} | {o.name for o in optimized.graph.output
                                            if o.type.WhichOneof("value") is not None}
        original = {t.name for t in self._model.graph.initializer}
        if produced <= before and produced <= typed and \
                all(t.name in original for t in optimized.graph.initializer):
            return optimized  # no new value or constant: inference would find the same types
        return infer_types(optimized, registry.schemas)

    def _evaluate_constant(self, model: ModelProto) -> list[Any]:
        """Run a small input-free model on this session's providers (constant folding): the
        session's compiler plans it directly, without the checks and rewrites a user's model
        gets."""
        return [_to_user(value, []) for value in self._compiler.evaluate(model)]

    def _setup(self, providers: Any, provider_options: Any) -> None:
        self._providers: list[ExecutionProvider] = create_providers(providers, provider_options)
        self._arenas = []
        if self._sess_options.enable_cpu_mem_arena and arena_supported():
            for provider in self._providers:
                if provider.device.is_host and provider.host_arena is None:
                    provider.host_arena = HostArena()
                    self._arenas.append(provider.host_arena)
        registry = get_registry()
        self._compiler = SessionCompileContext(
            self._providers, registry, self._weights, self._sess_options._config,
            intra_op_threads=self._sess_options.intra_op_num_threads)
        self._optimized_model = self._optimize(registry)
        self._graph = self._compiler.graph_of(self._optimized_model)
        for value in self._graph.initializers.values():
            if isinstance(value, np.ndarray):
                value.setflags(write=False)  # kernels must never write model constants
        self._plan: Plan = compile(self._graph, self._compiler)
        self._partition: Partition = self._plan.partition
        self._report_fallbacks()
        self._input_specs: dict[str, tuple[FeedSpec, int]] = {
            vi.name: (feed_spec(vi.name, vi.type), self._plan.input_slots[vi.name])
            for vi in list(self._graph.inputs) + list(self._graph.overridable)
        }
        self._required = [vi.name for vi in self._graph.inputs
                          if vi.type.WhichOneof("value") != "optional_type"]
        self._bound_plans: dict[tuple[Any, ...], Plan] = {}
        # BLAS runs single-threaded during runs; providers split large work over their own
        # threads (intra_op_num_threads), which sleep instead of spinning (ort.runtime.threads)
        self._blas_limit = BlasThreadLimit(1 if may_call_blas(self._optimized_model) else 0)
        self._pool = None
        if self._sess_options.execution_mode == ExecutionMode.ORT_PARALLEL:
            from concurrent.futures import ThreadPoolExecutor

            workers = self._sess_options.inter_op_num_threads or (os.cpu_count() or 1)
            self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ort-inter-op")
        self._output_names = [vi.name for vi in self._graph.outputs]
        self._all_outputs: list[tuple[str, int, Any]] = []
        self._all_outputs = self._output_slots(self._output_names, self._plan, check=False)
        if logger.isEnabledFor(logging.INFO):
            copies = self.get_partition().copies
            logger.info("session for graph '%s': %s; %d copy step(s)%s", self._graph.name,
                        self._partition.summary(), len(copies),
                        f" {copies[:20]}" if copies else "")

    def _report_fallbacks(self) -> None:
        """Log (or, with ``session.disable_cpu_ep_fallback=1``, refuse) nodes that run on a
        later provider than the user's first choice."""
        fallbacks = self._partition.fallbacks
        if not fallbacks:
            return
        by_provider = self._partition.nodes_by_provider()
        runners = {name: p for p, names in by_provider.items() for name in names}
        lines = [f"{name} -> {runners.get(name)} ({reason})" for name, reason in fallbacks.items()]
        disabled = self._sess_options._config.get("session.disable_cpu_ep_fallback", "0") == "1"
        if disabled and any(runners.get(n) == "CPUExecutionProvider" for n in fallbacks):
            raise EPFail(
                f"{len(fallbacks)} node(s) would fall back from {self._providers[0].name} and "
                "session.disable_cpu_ep_fallback is set: " + "; ".join(lines[:10])
            )
        logger.warning("%d node(s) were not assigned to the preferred execution provider %s: %s",
                       len(fallbacks), self._providers[0].name, "; ".join(lines[:20]))

    # -- metadata -----------------------------------------------------------------------------
    def get_inputs(self) -> list[NodeArg]:
        """The inputs callers must feed (initializers excluded)."""
        return list(self._inputs)

    def get_outputs(self) -> list[NodeArg]:
        """The graph outputs."""
        return list(self._outputs)

    def get_overridable_initializers(self) -> list[NodeArg]:
        """Initializers also listed as graph inputs: feeding one overrides it."""
        return list(self._overridable)

    def get_modelmeta(self) -> ModelMetadata:
        """The model's metadata."""
        return self._metadata

    def get_providers(self) -> list[str]:
        """The providers of this session in priority order."""
        return [p.name for p in self._providers]

    def get_provider_options(self) -> dict[str, dict[str, str]]:
        """Provider name -> the options it runs with."""
        return {p.name: p.provider_options() for p in self._providers}

    def get_session_options(self) -> SessionOptions:
        """The session options this session was created with."""
        return self._sess_options

    def get_partition(self) -> PartitionReport:
        """Which provider runs which node and which device copies were inserted (ort only;
        ONNX Runtime offers this only behind a session config flag)."""
        return PartitionReport(self._partition.nodes_by_provider(), self._plan.copy_labels(),
                               dict(self._partition.fallbacks))

    def set_providers(self, providers: Sequence[Any] | None = None,
                      provider_options: Sequence[dict[str, Any]] | None = None) -> None:
        """Re-partition the session over a new provider list."""
        self._setup(providers, provider_options)

    def disable_fallback(self) -> None:
        """Kept for ONNX Runtime compatibility: ort never re-runs a failed call on another
        provider behind the caller's back, so there is nothing to disable."""

    def enable_fallback(self) -> None:
        """Kept for ONNX Runtime compatibility; see :meth:`disable_fallback`."""

    # -- running ------------------------------------------------------------------------------
    def _output_slots(self, output_names: Sequence[str] | None, plan: Plan | None = None,
                      check: bool = True) -> list[tuple[str, int, Any]]:
        """(name, slot, provider holding it or None) of the requested outputs."""
        plan = self._plan if plan is None else plan
        if check and not output_names and not self._output_names:
            raise InvalidArgument("At least one output should be requested: the model has no "
                                  "outputs")
        if check and not output_names and plan is self._plan:
            return self._all_outputs
        names = self._output_names if not output_names else list(output_names)
        slots = []
        for name in names:
            slot = plan.output_slots.get(name)
            if slot is None:
                raise InvalidArgument(f"Invalid output name:{name}")
            slots.append((name, slot, plan.output_location.get(name)))
        return slots

    def _bind_feeds(self, input_feed: Mapping[str, Any], values: list[Any]) -> list[np.ndarray]:
        """Check and convert the feeds into ``values``; return the caller's arrays (outputs
        must never alias them)."""
        if type(input_feed) is not dict and not isinstance(input_feed, Mapping):
            raise TypeError(f"input_feed must be a dict of input name -> value, got {type(input_feed).__name__}")
        for name in self._required:
            if name not in input_feed:
                missing = [n for n in self._required if n not in input_feed]
                raise InvalidArgument(
                    f"Required inputs ({missing}) are missing from input feed ({list(input_feed)}).")
        specs = self._input_specs
        fed: list[np.ndarray] = []
        for name, value in input_feed.items():
            entry = specs.get(name)
            if entry is None:
                raise InvalidArgument(f"Invalid input name: {name}")
            spec, slot = entry
            array = spec.convert(value)
            values[slot] = array
            if type(array) is np.ndarray:
                fed.append(array)
            elif isinstance(array, list):
                fed.extend(_arrays_in(array))
        return fed

    def _execute(self, output_names: Sequence[str] | None, input_feed: Mapping[str, Any],
                 run_options: RunOptions | None) -> tuple[list[Any], list[np.ndarray]]:
        plan = self._plan
        outputs = self._output_slots(output_names)
        values = plan.new_values()
        fed = self._bind_feeds(input_feed, values)
        self._run_plan(plan, values, run_options, outputs)
        return [values[slot] if where is None else where.to_host(values[slot])
                for _, slot, where in outputs], fed

    def _run_plan(self, plan: Plan, values: list[Any], run_options: RunOptions | None,
                  outputs: Sequence[tuple[str, int, Any]]) -> None:
        """Run ``plan`` over ``values`` honouring the run options, the BLAS thread bound,
        profiling and the execution mode."""
        if run_options is not None or self._profiler is not None:
            self._run_watched(plan, values, run_options, outputs)
        else:
            self._run_quietly(plan, values, None, None)

    def _run_quietly(self, plan: Plan, values: list[Any], run: RunState | None,
                     steps: Sequence[Any] | None) -> None:
        """Execute with numpy's floating-point warnings off (inf/nan results are the spec's),
        inside the BLAS thread bound; then age the arenas' buffers."""
        quiet = quiet_fp_begin()
        try:
            if self._blas_limit.active:
                with self._blas_limit:
                    execute(plan, values, run, steps, self._pool)
            else:
                execute(plan, values, run, steps, self._pool)
        finally:
            quiet_fp_end(quiet)
            for arena in self._arenas:
                arena.end_run()

    def _run_watched(self, plan: Plan, values: list[Any], run_options: RunOptions | None,
                     outputs: Sequence[tuple[str, int, Any]]) -> None:
        """:meth:`_run_plan` with run options or profiling: the executor watches every step
        (terminate, profiler), pruned runs, run logging and the profile's session events."""
        steps = None
        profiler = self._profiler if self._profiler is not None and self._profiler.active else None
        run = RunState(run_options, profiler)
        if run_options is not None and run_options.only_execute_path_to_fetches:
            steps = plan.steps_for([name for name, _, _ in outputs])
        log_run = run_options is not None and run_options.log_severity_level < 2
        started = time.perf_counter() if log_run else 0.0
        start_us = profiler.now_us() if profiler is not None else 0.0
        self._run_quietly(plan, values, run, steps)
        if profiler is not None:
            end_us = profiler.now_us()
            executor = "ParallelExecutor" if self._pool is not None else "SequentialExecutor"
            profiler.add("Session", f"{executor}::Execute", start_us, end_us)
            profiler.add("Session", "model_run", start_us, profiler.now_us())
        if log_run:
            logger.info("run '%s' of graph '%s': %d step(s) in %.3f ms", run_options.run_tag,
                        self._graph.name, len(plan.steps if steps is None else steps),
                        (time.perf_counter() - started) * 1e3)

    # -- IOBinding ----------------------------------------------------------------------------
    def io_binding(self) -> IOBinding:
        """A new :class:`IOBinding` for this session."""
        return IOBinding(self)

    def _session_provider_for(self, provider: ExecutionProvider) -> ExecutionProvider:
        """This session's provider instance for ``provider``'s device, else ``provider``."""
        for own in self._providers:
            if own.device == provider.device:
                return own
        return provider

    def _plan_for_devices(self, placed: dict[str, ExecutionProvider]) -> Plan:
        if not placed:
            return self._plan
        key = tuple(sorted((name, str(p.device)) for name, p in placed.items()))
        plan = self._bound_plans.get(key)
        if plan is None:
            plan = self._bound_plans[key] = compile(self._graph, self._compiler, placed,
                                                    partition=self._partition)
        return plan

    def run_with_iobinding(self, iobinding: IOBinding, run_options: RunOptions | None = None) -> None:
        """Run with the inputs and outputs bound in ``iobinding``; the results are read with
        ``iobinding.get_outputs()`` / ``copy_outputs_to_cpu()``."""
        bound = iobinding.bound_inputs
        missing = [n for n in self._required if n not in bound]
        if missing:
            raise Fail(f"Error in execution: Missing Input: {missing[0]} (bound inputs: "
                       f"{sorted(bound)})")
        placed = {name: self._session_provider_for(value.provider) for name, value in bound.items()
                  if value.provider is not None}
        plan = self._plan_for_devices(placed)
        values = plan.new_values()
        for name, value in bound.items():
            spec, _ = self._input_specs[name]
            if value.provider is None:
                values[plan.input_slots[name]] = spec.convert(value.value)
            else:
                if isinstance(spec, TensorFeed):
                    spec.check(value.value)
                values[plan.input_slots[name]] = value.value
        outputs = iobinding.bound_outputs
        self._run_plan(plan, values, run_options, self._output_slots(list(outputs), plan))
        results = []
        for name, binding in outputs.items():
            value = values[plan.output_slots[name]]
            source = plan.output_location.get(name)
            results.append(self._deliver(name, value, source, binding))
        iobinding._set_results(results)

    def _deliver(self, name: str, value: Any, source: ExecutionProvider | None,
                 binding: Any) -> OrtValue:
        """Move one output to where its binding wants it."""
        target = binding.provider
        same_device = (source is None and target is None) or (
            source is not None and target is not None and source.device == target.device)
        if not same_device:
            host = source.to_host(value) if source is not None else value
            value = target.to_device(np.asarray(host, order="C")) if target is not None else host
        if binding.target is None:
            if target is None:
                value = _to_user(value, [])
            return OrtValue(value, target)
        buffer = binding.target
        if tuple(buffer.shape()) != tuple(value.shape):
            raise Fail(
                f"Error in execution: The output OrtValue provided for output '{name}' has shape "
                f"{{{','.join(map(str, buffer.shape()))}}} but the computed output shape for this "
                f"run is {{{','.join(map(str, value.shape))}}}. When calling Run() with "
                "pre-allocated output OrtValues on a model with dynamic output shapes, either "
                "supply unallocated output OrtValues or ensure the pre-allocated shapes match"
            )
        if buffer.value.dtype != value.dtype:
            raise Fail(f"Error in execution: output '{name}' is {value.dtype} but the bound "
                       f"buffer holds {buffer.value.dtype}")
        if target is None:
            np.copyto(buffer.value, value)
        else:
            target.copy_into(buffer.value, value)
        return buffer

    def end_profiling(self) -> str:
        """Write the profile (``enable_profiling``) and return its file name; '' when
        profiling is off or already ended."""
        return self._profiler.end() if self._profiler is not None else ""

    def get_profiling_start_time_ns(self) -> int:
        """When profiling started, in nanoseconds since the epoch (0 without profiling)."""
        return self._profiler.start_ns if self._profiler is not None else 0

    def run(self, output_names: Sequence[str] | None, input_feed: Mapping[str, Any],
            run_options: RunOptions | None = None) -> list[Any]:
        """Run the model; return the requested outputs (all when ``output_names`` is None or
        empty) as numpy arrays, in the order asked for."""
        results, fed = self._execute(output_names, input_feed, run_options)
        try:
            return [_to_user(value, fed) for value in results]
        except MemoryError as exc:  # a broadcast view (Expand) too large to hand out
            raise Fail(f"An output of the run does not fit in memory: {exc}. The model "
                       "computes an output larger than this machine can hold") from None

    def run_with_ort_values(self, output_names: Sequence[str] | None,
                            input_dict_ort_values: Mapping[str, Any],
                            run_options: RunOptions | None = None) -> list[OrtValue]:
        """Like :meth:`run`, with OrtValues in and out."""
        results, fed = self._execute(output_names, input_dict_ort_values, run_options)
        return [OrtValue(_to_user(value, fed)) for value in results]


def _constants_of_ir3(model: ModelProto) -> ModelProto:
    """``model`` with, below IR version 4, its initializers no longer listed as graph inputs:
    IR 3 had to list every initializer as an input, and onnxruntime reads them as constants
    there (not overridable: feeding one is an invalid input name), so the optimizer may fold
    and fuse them (Conv+BatchNormalization, Clip bounds)."""
    if model.ir_version >= 4 or not model.graph.initializer:
        return model
    names = {t.name for t in model.graph.initializer}
    inputs = [vi for vi in model.graph.input if vi.name not in names]
    if len(inputs) == len(model.graph.input):
        return model
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    model.ir_version = 4  # initializers need not be inputs any more
    return model


def _arrays_in(value: Any) -> list[np.ndarray]:
    """The arrays a fed value holds (itself, or a sequence's items)."""
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, list):
        return [a for item in value for a in _arrays_in(item)]
    return []


def _to_user(value: Any, fed: list[np.ndarray]) -> Any:
    """An output the caller may keep and modify: never a view of a model constant or of a
    caller's own input array (sequences are returned as new lists of such arrays)."""
    if type(value) is np.ndarray and value.base is None and value.flags.writeable:
        for array in fed:  # a fresh array the run made (the common case), unless it is a feed
            if value is array:
                return value.copy()
        return value
    if isinstance(value, list):
        return [_to_user(item, fed) for item in value]
    if not isinstance(value, np.ndarray):
        if isinstance(value, np.generic):
            return np.asarray(value)
        return value
    if not value.flags.writeable:
        return value.copy()
    if value.base is not None or any(value is f for f in fed):
        for array in fed:
            if np.may_share_memory(value, array):
                return value.copy()
    return value
