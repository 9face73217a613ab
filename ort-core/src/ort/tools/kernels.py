"""``ort kernels [OP]``: which provider implements which op, for which opset versions and
element types, from what the installed plugins registered."""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Sequence

from ..ep import KernelDef, get_registry

__all__ = ["add_arguments", "command", "kernel_rows", "format_types"]


def format_types(kernel: KernelDef) -> str:
    """The element types a kernel accepts, per constrained input (``any`` when none is)."""
    if not kernel.input_types:
        return "any"
    parts = []
    for index in sorted(kernel.input_types):
        allowed = sorted(kernel.input_types[index])
        parts.append(f"in{index}: {','.join(allowed)}")
    # the CUDA provider constrains every input to the same device types: say it once
    if len({tuple(sorted(v)) for v in kernel.input_types.values()}) == 1 and len(parts) > 1:
        return f"all inputs: {','.join(sorted(next(iter(kernel.input_types.values()))))}"
    return "; ".join(parts)


def kernel_rows(op: str | None = None, provider: str | None = None,
                domain: str | None = None) -> list[tuple[str, str, str, str, str]]:
    """(provider, domain, op, versions, types) of every registered kernel matching the
    filters (``op`` case-insensitively), sorted by op, domain, provider and version."""
    registry = get_registry()
    rows = []
    for name in registry.kernel_providers():
        if provider is not None and name != provider:
            continue
        for kernel in registry.all_kernels(name):
            kernel_domain = kernel.domain or "ai.onnx"
            if op is not None and kernel.op_type.lower() != op.lower():
                continue
            if domain is not None and kernel_domain != domain:
                continue
            rows.append((name, kernel_domain, kernel.op_type, kernel.since_version,
                         kernel.version_range(), format_types(kernel)))
    rows.sort(key=lambda r: (r[2], r[1], r[0], r[3]))
    return [(p, d, o, v, t) for p, d, o, _, v, t in rows]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``ort kernels`` arguments."""
    parser.add_argument("op", nargs="?", help="only this op type (any case), e.g. Conv")
    parser.add_argument("--provider", help="only this provider's kernels")
    parser.add_argument("--domain", help="only this domain (ai.onnx, ai.onnx.ml, "
                        "com.microsoft, ...)")


def command(args: argparse.Namespace) -> int:
    """Print the kernel table; 1 with the closest op names when nothing matches."""
    rows = kernel_rows(args.op, args.provider, args.domain)
    if not rows:
        known = sorted({r[2] for r in kernel_rows(provider=args.provider)})
        close = difflib.get_close_matches(args.op or "", known, n=5, cutoff=0.6)
        what = " ".join(filter(None, [args.op, args.provider and f"on {args.provider}",
                                      args.domain and f"in {args.domain}"]))
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        print(f"no kernel registered for {what or 'anything'}{hint}")
        return 1
    _print_table(rows)
    ops = {(r[1], r[2]) for r in rows}
    print(f"{len(rows)} kernel(s), {len(ops)} op(s)")
    return 0


def _print_table(rows: Sequence[tuple[str, ...]]) -> None:
    header = ("PROVIDER", "DOMAIN", "OP", "VERSIONS", "INPUT TYPES")
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(4)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)) + "  " + header[4])
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[4])
