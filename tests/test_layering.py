"""Layering, checked by reading every import (static) and by importing modules in fresh interpreters.

- facet_lib imports neither kfp nor pipelines/components; only facet_lib/serving imports kserve; only
  facet_lib/storage imports boto3/botocore; facet_lib/models imports none of storage/train/data;
  train and bundle do not import each other; no sys.path edits in library, components, pipelines, benchmarks.
- The CPU-only pipeline steps (their component modules and facet_lib.steps), the registry and the
  config load no torch when imported.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LIB = ROOT / "facet_lib"


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at module level or inside functions (relative imports resolved)."""
    tree = ast.parse(path.read_text(), str(path))
    pkg = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(pkg.split(".")[: len(pkg.split(".")) - node.level + 1] + ([base] if base else []))
            out.add(base)
            out |= {f"{base}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module" and node.args:
            if isinstance(node.args[0], ast.Constant):
                out.add(str(node.args[0].value))
    return out


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def _rel(p: Path) -> str:
    return p.relative_to(ROOT).as_posix()


def _importers(prefixes: tuple[str, ...], folder: Path = LIB) -> set[str]:
    return {_rel(p) for p in _files(folder) for m in _imports(p) if m == prefixes or m.startswith(prefixes)}


def _top(name: str) -> tuple[str, str]:
    return (name, name + ".")


def test_library_imports_no_kfp_pipelines_or_components():
    for mod in ("kfp", "pipelines", "components"):
        assert _importers(_top(mod)) == set(), f"facet_lib imports {mod}"


def test_only_serving_imports_kserve():
    assert {f for f in _importers(_top("kserve")) if not f.startswith("facet_lib/serving/")} == set()


def test_only_storage_imports_boto3():
    assert _importers(_top("boto3")) | _importers(_top("botocore")) <= {"facet_lib/storage.py"}


def test_models_import_no_storage_train_or_data():
    bad = ("facet_lib.storage", "facet_lib.train", "facet_lib.data")
    for f in _files(LIB / "models"):
        hits = {m for m in _imports(f) if m.startswith(bad)}
        assert not hits, f"{_rel(f)} imports {sorted(hits)}"


def test_train_and_bundle_do_not_import_each_other():
    for f in _files(LIB / "train"):
        assert not {m for m in _imports(f) if m.startswith("facet_lib.bundle")}, _rel(f)
    assert not {m for m in _imports(LIB / "bundle.py") if m.startswith("facet_lib.train")}


@pytest.mark.parametrize("folder", ["facet_lib", "components", "pipelines", "benchmarks"])
def test_no_sys_path_edits(folder):
    for f in _files(ROOT / folder):
        text = f.read_text()
        assert "sys.path.insert" not in text and "sys.path.append" not in text, _rel(f)


CPU_ONLY = [
    "facet_lib.config",
    "facet_lib.steps",
    "facet_lib.registry",
    "facet_lib.eval.report",
    "components.ingest",
    "components.render",
    "components.rank_pool",
    "components.merge_views",
    "components.evaluate",
    "components.register",
]


def _loaded_after(module: str, watch: list[str]) -> list[str]:
    code = f"import json, sys, {module}; print(json.dumps([m for m in {watch!r} if m in sys.modules]))"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("module", CPU_ONLY)
def test_cpu_only_modules_load_no_torch(module):
    if module.startswith("components."):
        pytest.importorskip("kfp")
    assert _loaded_after(module, ["torch", "open_clip"]) == []


def test_importing_every_library_module_loads_no_kfp():
    mods = sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in _files(LIB)
        if not p.name == "__main__.py"
    )
    code = "import importlib, sys\n" + "".join(f"importlib.import_module({m!r})\n" for m in mods)
    code += "print('kfp' in sys.modules, 'pipelines' in sys.modules, 'components' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split() == ["False", "False", "False"]
