"""The architecture in code: layers, import cycles, module sizes and names, what ``import ort``
loads. Together with the import-linter contracts in ``.importlinter`` (``lint-imports``), these
keep later work from quietly undoing the layering (docs/architecture.md)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from import_graph import PACKAGES, cycles, graph_of, upward_imports

ROOT = Path(__file__).resolve().parents[2]
#: The source trees of the distributions (tests are not held to these rules).
SOURCES = [ROOT / "ort-core/src", ROOT / "ort-provider-cpu/src", ROOT / "ort-provider-cuda/src",
           ROOT / "ort-backend/src", ROOT / "examples/ort-provider-example/src"]
MAX_LINES = 600


def _modules() -> list[Path]:
    return sorted(p for src in SOURCES for p in src.rglob("*.py") if ".egg-info" not in str(p))


def _installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycles(package):
    """Function-level and TYPE_CHECKING imports count, and so does a submodule importing its
    own package (whose ``__init__`` imports it back)."""
    if not _installed(package):
        pytest.skip(f"{package} is not installed in this environment")
    found = cycles(graph_of(package))
    assert not found, "import cycles:\n" + "\n".join(", ".join(c) for c in found)


def test_core_layers_import_only_downward():
    """The same rule as the import-linter layers contract, with function-level imports."""
    assert upward_imports(graph_of("ort")) == []


def test_no_source_module_over_600_lines():
    long = {str(p.relative_to(ROOT)): n for p in _modules()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them by what they hold): {long}"


def test_no_module_named_like_a_stdlib_module():
    clash = [str(p.relative_to(ROOT)) for p in _modules()
             if p.stem in sys.stdlib_module_names]
    assert not clash, f"modules named like stdlib modules: {clash}"


def test_import_linter_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.skip("import-linter is not installed here (the lint tox environment runs it)")
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


@pytest.mark.parametrize("statement", ["import ort", "import ort.testing",
                                       "import ort; ort.get_available_providers()"])
def test_importing_ort_loads_no_heavy_dependency(statement):
    """``import ort`` (and the testing kit, and discovering providers) never imports cupy,
    numba or onnxruntime: they load when a provider or an oracle run needs them."""
    code = (f"{statement}\nimport sys\n"
            "print(sorted(m for m in ('cupy', 'numba', 'onnxruntime') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_only_the_compiler_builds_plans():
    """Subgraphs, function bodies, constant folding and providers' fused groups all go
    through ort.runtime.compiler: no other module constructs a Plan."""
    import ast

    builders = []
    for path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                if name in ("Plan", "ExecutionPlan"):
                    builders.append(str(path.relative_to(ROOT)))
    assert sorted(set(builders)) == ["ort-core/src/ort/runtime/compiler.py"]
