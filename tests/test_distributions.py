"""Meta-tests: the distributions share one shape and one version, and public names are documented."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
DISTRIBUTIONS = {
    "ort-core": "ort",
    "ort-provider-cpu": "ort_provider_cpu",
    "ort-provider-cuda": "ort_provider_cuda",
    "ort-backend": "ort_backend",
}


def pyproject(dist: str) -> dict:
    return tomllib.loads((ROOT / dist / "pyproject.toml").read_text())


@pytest.mark.parametrize("dist", DISTRIBUTIONS)
def test_every_distribution_has_the_same_shape(dist):
    package = DISTRIBUTIONS[dist]
    for path in ("pyproject.toml", "README.md", f"src/{package}/__init__.py", f"src/{package}/py.typed", "tests"):
        assert (ROOT / dist / path).exists(), f"{dist} lacks {path}"
    assert pyproject(dist)["build-system"]["build-backend"] == "setuptools.build_meta"


def test_versions_move_in_lockstep_and_siblings_pin_the_core_range():
    from ort import __version__

    major_minor = ".".join(__version__.split(".")[:2])
    for dist in DISTRIBUTIONS:
        project = pyproject(dist)["project"]
        assert project["version"] == __version__, dist
        for requirement in project.get("dependencies", []):
            if requirement.startswith("ort-"):
                assert re.search(rf">={major_minor}\b", requirement), (dist, requirement)


def test_cupy_is_only_an_extra_of_the_cuda_provider():
    for dist in DISTRIBUTIONS:
        assert not any("cupy" in d for d in pyproject(dist)["project"].get("dependencies", [])), dist
    extras = pyproject("ort-provider-cuda")["project"]["optional-dependencies"]
    assert set(extras) == {"cuda12", "cuda13"}


def _public_members(module):
    names = getattr(module, "__all__", None) or [n for n in vars(module) if not n.startswith("_")]
    for name in names:
        obj = getattr(module, name, None)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            if getattr(obj, "__module__", "").split(".")[0] == module.__name__.split(".")[0]:
                yield f"{module.__name__}.{name}", obj
                if inspect.isclass(obj):
                    for attr, member in vars(obj).items():
                        if not attr.startswith("_") and inspect.isfunction(member):
                            yield f"{module.__name__}.{name}.{attr}", member


@pytest.mark.parametrize("package", ["ort", "ort_backend", "ort_provider_cpu",
                                     "ort_provider_cuda"])
def test_public_names_have_docstrings(package):
    """Every module of the distribution, at every depth (ort's layers are subpackages)."""
    root = pytest.importorskip(package, reason=f"{package} is not installed in this environment")
    modules = [root] + [importlib.import_module(m.name)
                        for m in pkgutil.walk_packages(root.__path__, f"{package}.")
                        if not m.name.rsplit(".", 1)[-1].startswith("_")]
    missing = sorted({name for module in modules for name, obj in _public_members(module)
                      if not (obj.__doc__ or "").strip()})
    assert missing == []
