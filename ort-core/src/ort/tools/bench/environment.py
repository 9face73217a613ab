"""What ``ort bench`` reports about the machine: CPU, BLAS, and whether ``OPENBLAS_CORETYPE``
forces OpenBLAS onto kernels for an older instruction set than this CPU has. Nothing here ever
changes the environment: OpenBLAS reads that variable once, when the library loads, and has no
call to switch kernels afterwards.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["blas_info", "cpu_flags", "cpu_model", "cpu_isa_level", "openblas_choice",
           "coretype_warning", "environment_report", "format_header"]

# OpenBLAS x86-64 core types by the instruction set their kernels use: 0 SSE, 1 AVX,
# 2 AVX2/FMA, 3 AVX-512. Names as OPENBLAS_CORETYPE and openblas_get_corename spell them.
_CORETYPE_LEVEL = {
    "prescott": 0, "core2": 0, "penryn": 0, "dunnington": 0, "nehalem": 0, "atom": 0,
    "opteron": 0, "opteron_sse3": 0, "barcelona": 0, "bobcat": 0, "nano": 0, "katmai": 0,
    "coppermine": 0, "northwood": 0, "banias": 0, "athlon": 0,
    "sandybridge": 1, "bulldozer": 1, "piledriver": 1,
    "haswell": 2, "zen": 2, "steamroller": 2, "excavator": 2, "skylake": 2,
    "skylakex": 3, "cooperlake": 3, "sapphirerapids": 3,
}
_LEVEL_NAMES = {0: "SSE", 1: "AVX", 2: "AVX2/FMA", 3: "AVX-512"}


def blas_info() -> list[dict[str, Any]]:
    """numpy's BLAS libraries as threadpoolctl sees them (numpy must be imported first)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover - a dependency of ort-core
        return []
    keys = ("internal_api", "version", "architecture", "num_threads", "threading_layer",
            "filepath")
    return [{k: info.get(k) for k in keys} for info in threadpool_info()
            if info.get("user_api") == "blas"]


def cpu_flags(path: str = "/proc/cpuinfo") -> set[str]:
    """The CPU feature flags of the first processor in ``/proc/cpuinfo`` (empty elsewhere)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith(("flags", "Features")):
                    return set(line.partition(":")[2].split())
    except OSError:
        pass
    return set()


def cpu_model(path: str = "/proc/cpuinfo") -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (the platform's processor name elsewhere)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_isa_level(flags: set[str]) -> int | None:
    """The best x86 vector level the CPU has (see ``_LEVEL_NAMES``); None when unknown."""
    if not flags or "sse2" not in flags:
        return None
    if {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"} <= flags:
        return 3
    if {"avx2", "fma"} <= flags:
        return 2
    return 1 if "avx" in flags else 0


def openblas_choice(flags: set[str]) -> str | None:
    """The x86 core type a dynamic OpenBLAS build picks for these flags, by instruction set.

    Its own detection (``get_coretype`` in OpenBLAS's dynamic.c) goes by vendor and model and
    falls back on these same feature tests; AVX-512 CPUs with bf16 may get Cooperlake, which
    builds such as numpy's wheels serve with the SkylakeX kernels."""
    level = cpu_isa_level(flags)
    if level is None:
        return None
    return {3: "SkylakeX", 2: "Haswell", 1: "Sandybridge", 0: "Nehalem"}[level]


def coretype_warning(environ: dict[str, str] | os._Environ, flags: set[str]) -> str | None:
    """A warning when ``OPENBLAS_CORETYPE`` forces kernels older than this CPU supports."""
    forced = environ.get("OPENBLAS_CORETYPE")
    if not forced:
        return None
    forced_level = _CORETYPE_LEVEL.get(forced.strip().lower())
    cpu_level = cpu_isa_level(flags)
    if forced_level is None or cpu_level is None or forced_level >= cpu_level:
        return None
    return (f"OPENBLAS_CORETYPE={forced} forces OpenBLAS onto {_LEVEL_NAMES[forced_level]} "
            f"kernels; this CPU has {_LEVEL_NAMES[cpu_level]} (OpenBLAS would pick "
            f"{openblas_choice(flags)}). Matrix products may be slower than they can be; "
            "unset it for representative figures (e.g. `env -u OPENBLAS_CORETYPE ort bench "
            "...`). ort never changes it for you.")


def environment_report() -> dict[str, Any]:
    """Versions, CPU, BLAS and the BLAS-related environment variables, for the header/JSON."""
    import onnx

    from ..._version import __version__

    flags = cpu_flags()
    variables = {k: v for k, v in sorted(os.environ.items())
                 if k.startswith(("OPENBLAS_", "GOTO", "MKL_", "BLIS_"))
                 or k in ("OMP_NUM_THREADS",)}
    warnings = [w for w in (coretype_warning(os.environ, flags),) if w]
    level = cpu_isa_level(flags)
    return {
        "python": platform.python_version(), "numpy": np.__version__, "onnx": onnx.__version__,
        "ort": __version__, "platform": platform.platform(), "cpu": cpu_model(),
        "cpu_count": os.cpu_count(), "cpu_isa": None if level is None else _LEVEL_NAMES[level],
        "openblas_would_pick": openblas_choice(flags), "blas": blas_info(),
        "blas_environment": variables, "warnings": warnings,
    }


def format_header(env: dict[str, Any]) -> list[str]:
    """The report's header lines from :func:`environment_report`'s dict."""
    lines = [f"ort {env['ort']}  numpy {env['numpy']}  onnx {env['onnx']}  "
             f"python {env['python']}",
             f"cpu: {env['cpu']} ({env['cpu_count']} cpus, {env['cpu_isa'] or 'ISA unknown'})"]
    for lib in env["blas"] or [{}]:
        if not lib:
            lines.append("blas: none found by threadpoolctl")
            continue
        lines.append(f"blas: {lib['internal_api']} {lib['version']}  core type "
                     f"{lib['architecture']}  threads {lib['num_threads']}  "
                     f"({Path(lib['filepath'] or '?').name})")
    if env["blas_environment"]:
        lines.append("environment: " + " ".join(f"{k}={v}"
                                                for k, v in env["blas_environment"].items()))
    lines += [f"WARNING: {w}" for w in env["warnings"]]
    return lines
