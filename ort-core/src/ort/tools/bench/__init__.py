"""``ort bench``: a model's latency and throughput on ort, optionally beside others.

onnxruntime and onnx's ``ReferenceEvaluator`` (``--compare``) are measured in the same process
on the same inputs.

What is measured, per engine: session creation (load + optimize + kernel setup), then
``--warmup`` untimed runs, then ``--runs`` timed runs of ``run(None, feeds)``; the report gives
the median and p90 latency, throughput (``batch / median`` items per second) and, for every
comparison, the ratio ``ort / other`` of the medians (above 1: ort is slower) and whether the
outputs agree (``allclose`` at rtol 1e-3, atol 1e-4, with the largest absolute difference).

Threads: ``--threads N`` (default 1) is ``SessionOptions.intra_op_num_threads`` for ort and for
onnxruntime; the reference evaluator runs under a BLAS limit of ``N`` threads. The reference
evaluator is skipped with a note when one run takes longer than ``REFERENCE_LIMIT_S`` seconds,
and runs at most as many times as fit in that budget.

The header tells which BLAS numpy uses (threadpoolctl: internal API, version, core type,
threads) and warns when ``OPENBLAS_CORETYPE`` forces OpenBLAS onto kernels for an older
instruction set than this CPU has. Nothing here ever changes the environment: OpenBLAS reads
that variable once, when the library loads, and has no call to switch kernels afterwards.
"""

from ..inputs import DEFAULT_SEQUENCE, InputSpec, make_feeds, model_inputs, resolve_shape
from .command import DESCRIPTION, add_arguments, command, config_from_args, jsonable, main
from .environment import (
    blas_info, coretype_warning, cpu_flags, cpu_isa_level, cpu_model, environment_report,
    format_header, openblas_choice,
)
from .measure import (
    ATOL, COMPARABLE, ENGINES, LEVELS, REFERENCE_LIMIT_S, RTOL, BenchConfig, EngineResult,
    outputs_agree, profile_op_types, profile_python,
)
from .runner import format_profile, format_results, load_feeds, run_bench

__all__ = [
    "DESCRIPTION", "add_arguments", "command", "config_from_args", "jsonable", "main", "blas_info",
    "coretype_warning", "cpu_flags", "cpu_isa_level", "cpu_model", "environment_report",
    "format_header", "openblas_choice", "ATOL", "COMPARABLE", "ENGINES", "LEVELS",
    "REFERENCE_LIMIT_S", "RTOL", "BenchConfig", "EngineResult", "outputs_agree",
    "profile_op_types", "profile_python", "format_profile", "format_results", "load_feeds",
    "run_bench",
    "DEFAULT_SEQUENCE", "InputSpec", "make_feeds", "model_inputs", "resolve_shape",
]
