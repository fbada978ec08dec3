"""Layering, checked by reading every import (static) and by importing modules in fresh interpreters.

- facet_lib imports neither kfp nor pipelines/components; only facet_lib/serving imports kserve; only
  facet_lib/storage imports boto3/botocore; facet_lib/models imports none of storage/train/data;
  train and bundle do not import each other; no sys.path edits in library, components, pipelines, benchmarks.
- config imports nothing above it; only facet_lib/cli imports facet_lib.steps; the split modules (steps/data,
  steps/common, provenance, cli/*, train/shared, train/protocols) keep to their layer; components import
  only step functions.
- The CPU-only pipeline steps (their component modules, facet_lib.steps and steps.data/release), the
  registry, provenance, the settings resolver, the CLI and the config load no torch when imported.
- facet_lib/config imports nothing of facet_lib/serving; the deploy modules (manifest, local), the request
  decoding (inputs, decoding) and the batcher import neither kserve nor torch, and the deploy step's modules
  (deploy, kserve_client: kserve only inside the call) load neither when imported.
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


def test_config_imports_no_serving():
    assert _importers(_top("facet_lib.serving"), LIB / "config") == set()


LIGHT_SERVING = ["manifest", "local", "inputs", "decoding", "batcher"]


@pytest.mark.parametrize("module", LIGHT_SERVING)
def test_light_serving_modules_import_no_kserve_or_torch(module):
    hits = {m for m in _imports(LIB / "serving" / f"{module}.py") if m.startswith(_top("kserve") + _top("torch"))}
    assert not hits, f"facet_lib/serving/{module}.py imports {sorted(hits)}"


@pytest.mark.parametrize("module", [*LIGHT_SERVING, "deploy", "kserve_client"])
def test_deploy_and_decoding_modules_load_no_kserve_or_torch(module):
    assert _loaded_after(f"facet_lib.serving.{module}", ["torch", "kserve", "open_clip"]) == []


def test_config_imports_nothing_above_it():
    """facet_lib.config is the bottom layer: it imports only itself and facet_lib.errors."""
    for f in _files(LIB / "config"):
        hits = {
            m
            for m in _imports(f)
            if m.startswith("facet_lib") and not m.startswith(("facet_lib.config", "facet_lib.errors"))
        }
        assert not hits, f"{_rel(f)} imports {sorted(hits)}"


def test_only_the_cli_imports_the_steps():
    """The steps sit above every library module: only facet_lib/cli (and the steps themselves) import them."""
    allowed = ("facet_lib/steps/", "facet_lib/cli/")
    assert {f for f in _importers(_top("facet_lib.steps")) if not f.startswith(allowed)} == set()
    assert {f for f in _importers(_top("facet_lib.cli")) if not f.startswith("facet_lib/cli/")} == set()


@pytest.mark.parametrize(
    "module, forbidden",
    [
        ("steps/data.py", ("facet_lib.train", "facet_lib.models", "facet_lib.serving", "facet_lib.registry")),
        ("steps/common.py", ("facet_lib.serving", "facet_lib.registry", "facet_lib.render")),
        ("provenance.py", ("facet_lib.steps", "facet_lib.train", "facet_lib.serving", "facet_lib.registry")),
        ("cli/data.py", ("facet_lib.serving", "facet_lib.train", "facet_lib.registry")),
        ("cli/train.py", ("facet_lib.serving", "facet_lib.registry")),
        ("cli/common.py", ("facet_lib.steps", "facet_lib.serving", "facet_lib.train")),
        ("train/shared.py", ("facet_lib.train.protocols", "facet_lib.train.tune", "facet_lib.steps")),
        ("train/protocols.py", ("facet_lib.train.tune", "facet_lib.steps")),
    ],
)
def test_split_modules_keep_to_their_layer(module, forbidden):
    hits = {m for m in _imports(LIB / module) if m.startswith(forbidden)}
    assert not hits, f"facet_lib/{module} imports {sorted(hits)}"


# what a component may call: one step function (or, for the steps outside facet_lib.steps, its module)
COMPONENT_CALLS = (
    "facet_lib.__version__",  # components/settings.py: the image tag
    "facet_lib.steps",
    "facet_lib.config",
    "facet_lib.serving.deploy",
    "facet_lib.weights",
    "facet_lib.eval.fig4",
)


def test_components_call_only_step_functions():
    for f in _files(ROOT / "components"):
        hits = {m for m in _imports(f) if m.startswith("facet_lib.") and not m.startswith(COMPONENT_CALLS)}
        assert not hits, f"{_rel(f)} imports {sorted(hits)}: a component body is one step call"


CPU_ONLY = [
    "facet_lib.config",
    "facet_lib.config.resolve",
    "facet_lib.provenance",
    "facet_lib.steps",
    "facet_lib.steps.data",
    "facet_lib.steps.release",
    "facet_lib.cli",
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
