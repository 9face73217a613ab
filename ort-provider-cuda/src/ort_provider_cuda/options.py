"""The options of ``CUDAExecutionProvider``: parsed and validated once, without cupy.

Names and values follow ONNX Runtime's CUDA provider; what each one maps to with cupy is in
:class:`CudaOptions`. Every error names the option, the value given and what is accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["CudaOptions", "OPTION_NAMES", "parse_options", "NO_LIMIT"]

#: ONNX Runtime's default ``gpu_mem_limit`` (SIZE_MAX): no limit.
NO_LIMIT = 2**64 - 1

ARENA_STRATEGIES = ("kNextPowerOfTwo", "kSameAsRequested")
CONV_ALGO_SEARCHES = ("EXHAUSTIVE", "HEURISTIC", "DEFAULT")
OPTION_NAMES = frozenset({
    "device_id", "gpu_mem_limit", "arena_extend_strategy", "cudnn_conv_algo_search",
    "do_copy_in_default_stream", "enable_cuda_graph",
})
_TRUE = ("1", "true", "True")
_FALSE = ("0", "false", "False")


@dataclass(frozen=True)
class CudaOptions:
    """Validated provider options.

    Attributes:
        device_id: the CUDA device (checked against the visible devices when the provider
            starts).
        gpu_mem_limit: bytes the provider's memory pool may hold (``cupy.cuda.MemoryPool``
            ``set_limit``); None: no limit. Sessions with the same device and memory settings
            share one pool, so the limit caps them together.
        arena_extend_strategy: ``kNextPowerOfTwo`` rounds each allocation up to a power of two
            (fewer distinct block sizes, more reuse, up to 2x slack); ``kSameAsRequested``
            allocates what is asked (cupy's pool rounds to 512 bytes).
        cudnn_conv_algo_search: accepted and reported for compatibility. Conv runs as
            im2col + cuBLAS GEMM through cupy, without cuDNN, so there is no algorithm to
            search: the three values run the same code.
        do_copy_in_default_stream: True: host/device copies run on the legacy default stream
            and kernels on a blocking stream (ordered with it, as ONNX Runtime's default);
            False: copies and kernels share the provider's non-blocking stream.
        enable_cuda_graph: capture the whole model into a CUDA graph and replay it (see
            :mod:`ort_provider_cuda.graph` for the constraints); forces the stream to be
            non-blocking and copies onto it.
    """

    device_id: int = 0
    gpu_mem_limit: int | None = None
    arena_extend_strategy: str = "kNextPowerOfTwo"
    cudnn_conv_algo_search: str = "EXHAUSTIVE"
    do_copy_in_default_stream: bool = True
    enable_cuda_graph: bool = False

    @property
    def copies_on_default_stream(self) -> bool:
        """Whether copies really run on the legacy default stream (never with CUDA graphs)."""
        return self.do_copy_in_default_stream and not self.enable_cuda_graph

    def reported(self) -> dict[str, str]:
        """The options in effect, as ``get_provider_options()`` reports them (every one, with
        ONNX Runtime's spelling of its default)."""
        limit = NO_LIMIT if self.gpu_mem_limit is None else self.gpu_mem_limit
        return {
            "device_id": str(self.device_id),
            "gpu_mem_limit": str(limit),
            "arena_extend_strategy": self.arena_extend_strategy,
            "cudnn_conv_algo_search": self.cudnn_conv_algo_search,
            "do_copy_in_default_stream": "1" if self.copies_on_default_stream else "0",
            "enable_cuda_graph": "1" if self.enable_cuda_graph else "0",
        }


def _bad(name: str, value: str, expected: str) -> ValueError:
    return ValueError(f"CUDAExecutionProvider option {name}={value!r} is invalid: expected "
                      f"{expected}")


def _non_negative_int(name: str, value: str) -> int:
    text = value.strip()
    if not text.isdigit():
        raise _bad(name, value, "a non-negative integer")
    return int(text)


def _flag(name: str, value: str) -> bool:
    if value.strip() in _TRUE:
        return True
    if value.strip() in _FALSE:
        return False
    raise _bad(name, value, "0 or 1")


def _choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    text = value.strip()
    if text.isdigit() and int(text) < len(choices):  # ONNX Runtime's enum values
        return choices[int(text)]
    if text in choices:
        return text
    raise _bad(name, value, " or ".join(choices) + f" (or 0..{len(choices) - 1})")


def parse_options(options: Mapping[str, Any] | None) -> CudaOptions:
    """Validate ``provider_options`` for ``CUDAExecutionProvider``; raise ValueError naming
    the first bad or unknown option."""
    given = {str(k): str(v) for k, v in (options or {}).items()}
    unknown = sorted(set(given) - OPTION_NAMES)
    if unknown:
        raise ValueError(f"CUDAExecutionProvider does not know the option(s) {unknown}; "
                         f"known options: {sorted(OPTION_NAMES)}")
    parsed: dict[str, Any] = {}
    if "device_id" in given:
        parsed["device_id"] = _non_negative_int("device_id", given["device_id"])
    if "gpu_mem_limit" in given:
        limit = _non_negative_int("gpu_mem_limit", given["gpu_mem_limit"])
        if limit == 0:
            raise _bad("gpu_mem_limit", given["gpu_mem_limit"], "a positive number of bytes")
        parsed["gpu_mem_limit"] = None if limit >= NO_LIMIT else limit
    if "arena_extend_strategy" in given:
        parsed["arena_extend_strategy"] = _choice(
            "arena_extend_strategy", given["arena_extend_strategy"], ARENA_STRATEGIES)
    if "cudnn_conv_algo_search" in given:
        parsed["cudnn_conv_algo_search"] = _choice(
            "cudnn_conv_algo_search", given["cudnn_conv_algo_search"], CONV_ALGO_SEARCHES)
    for flag in ("do_copy_in_default_stream", "enable_cuda_graph"):
        if flag in given:
            parsed[flag] = _flag(flag, given[flag])
    return CudaOptions(**parsed)
