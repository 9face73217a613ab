"""Running models: the partitioner, the compiler (the only plan builder), the executor (one
step loop with observers), compiled subgraphs and function bodies, and the host resources of a
run (memory arena, BLAS threads, profiling).

The public API (:class:`ort.InferenceSession`) drives it; providers reach its compiler only
through the :class:`~ort.ep.CompileContext` they are handed.
"""

from .arena import HostArena, arena_supported
from .compiler import SessionCompileContext, compile
from .executor import RunState, Terminated, current_run, execute, quiet_fp_begin, quiet_fp_end
from .partition import Partition, partition
from .plan import Plan, Step
from .profiling import Profiler
from .subgraph import Subgraph
from .threads import BlasThreadLimit, may_call_blas

__all__ = ["HostArena", "arena_supported", "SessionCompileContext", "compile", "RunState",
           "Terminated", "current_run", "execute", "quiet_fp_begin", "quiet_fp_end", "Partition",
           "partition", "Plan", "Step", "Profiler", "Subgraph", "BlasThreadLimit", "may_call_blas"]
