"""Write ``cupy_api.json``: the public API surface of an installed cupy (names, kinds and the
parameter names of functions, ndarray methods and ufuncs), which :mod:`fake_cupy` enforces.

cupy imports without a GPU, so this runs on any machine with a cupy wheel::

    pip install --target /tmp/cupy_site cupy-cuda12x
    PYTHONPATH=/tmp/cupy_site python ort-provider-cuda/tests/fake_cupy/snapshot_api.py
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import sys
from pathlib import Path
from typing import Any

MODULES = ("cupy", "cupy.lib.stride_tricks", "cupy.linalg", "cupyx", "cupyx.scipy.special",
           "cupy.cuda", "cupy.cuda.runtime")
CLASSES = ("cupy.cuda.Stream", "cupy.cuda.Graph", "cupy.cuda.MemoryPool", "cupy.cuda.Device",
           "cupy.cuda.MemoryPointer", "cupy.ElementwiseKernel")
_DOC_SIGNATURE = re.compile(r"^[\w.]*?\(([^\n]*)\)\s*(->.*)?$")


def _split_params(text: str) -> list[str]:
    """Split a parameter list at top-level commas."""
    parts, depth, quote, current = [], 0, "", []
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    if "".join(current).strip():
        parts.append("".join(current).strip())
    return parts


def _params_from_doc(obj: Any) -> dict[str, Any] | None:
    """Parameters from the Cython ``embedsignature`` first docstring line."""
    doc = (getattr(obj, "__doc__", None) or "").strip().splitlines()
    if not doc:
        return None
    match = _DOC_SIGNATURE.match(doc[0].strip())
    if match is None:
        return None
    names, varargs, varkw = [], False, False
    for part in _split_params(match.group(1).replace("\\*", "*")):
        name = part.split("=")[0].split(":")[0].strip()
        if name in ("self", "/", "*", ""):
            continue
        if name.startswith("**"):
            varkw = True
        elif name.startswith("*"):
            varargs = True
        else:
            names.append(name)
    return {"params": names, "varargs": varargs, "varkw": varkw}


def _params(obj: Any) -> dict[str, Any] | None:
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return _params_from_doc(obj)
    kinds = inspect.Parameter
    return {
        "params": [p.name for p in sig.parameters.values()
                   if p.kind not in (kinds.VAR_POSITIONAL, kinds.VAR_KEYWORD) and p.name != "self"],
        "varargs": any(p.kind == kinds.VAR_POSITIONAL for p in sig.parameters.values()),
        "varkw": any(p.kind == kinds.VAR_KEYWORD for p in sig.parameters.values()),
    }


def _describe(obj: Any) -> dict[str, Any]:
    import cupy

    if isinstance(obj, cupy.ufunc):
        return {"kind": "ufunc", "nin": obj.nin, "nout": obj.nout, "types": list(obj.types),
                **(_params_from_doc(obj) or {})}
    if inspect.ismodule(obj):
        return {"kind": "module"}
    if inspect.isclass(obj):
        return {"kind": "class"}
    if callable(obj):
        return {"kind": "function", **(_params(obj) or {"params": None})}
    return {"kind": "value", "type": type(obj).__name__}


def _public(obj: Any) -> list[str]:
    return sorted(n for n in dir(obj) if not n.startswith("_"))


def main(out: Path) -> None:
    import cupy

    api: dict[str, Any] = {"cupy_version": cupy.__version__, "modules": {}, "classes": {}}
    for name in MODULES:
        module = importlib.import_module(name)
        api["modules"][name] = {n: _describe(getattr(module, n)) for n in _public(module)}
    dunders = ("__array__", "__array_ufunc__", "__array_function__", "__bool__", "__int__",
               "__float__", "__index__", "__len__", "__iter__", "__matmul__", "__dlpack__",
               "__cuda_array_interface__", "__complex__")
    ndarray = {}
    for n in _public(cupy.ndarray) + [d for d in dunders if hasattr(cupy.ndarray, d)]:
        attr = getattr(cupy.ndarray, n)
        ndarray[n] = ({"kind": "method", **(_params(attr) or {"params": None})}
                      if callable(attr) else {"kind": "attribute"})
    api["ndarray"] = ndarray
    api["flags"] = _public(cupy._core.flags.Flags)
    api["ufunc_methods"] = {n: _params(getattr(cupy.add, n)) for n in ("at", "reduce",
                                                                        "accumulate", "outer",
                                                                        "reduceat")}
    for path in CLASSES:
        module, _, cls = path.rpartition(".")
        klass = getattr(importlib.import_module(module), cls)
        api["classes"][path] = {n: _describe(getattr(klass, n)) for n in _public(klass)}
        api["classes"][path]["__init__"] = _params(klass.__init__) or {"params": None}
    for name, spec in api["modules"]["cupy.cuda.runtime"].items():
        spec.pop("params", None)  # only the names of the runtime API matter
    out.write_text(json.dumps(api, indent=0, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("cupy_api.json"))
