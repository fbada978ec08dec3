"""Import time of each pipeline step's modules, now vs. a git revision, measured in the same run.

Every KFP task starts a fresh interpreter, imports its component module and, in the component body,
``facet_lib.steps``; before the single config module, that pulled torch and open_clip into every
CPU-only step. Per task: the best of ``--repeat`` fresh interpreters (wall seconds of the imports) and
whether torch got loaded. The baseline is ``git archive REF`` of facet_lib/ and components/ unpacked
into a temporary folder, imported from there (the editable install's finder is bypassed).
Usage: python benchmarks/bench_imports.py [--repeat 3] [--ref 06b7623]  (06b7623: before issue 9's work)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TASKS = {  # a task's imports: its component module, then (in the component body) facet_lib.steps
    "ingest (CPU)": ["components.ingest", "facet_lib.steps"],
    "render (CPU)": ["components.render", "facet_lib.steps"],
    "rank-pool (CPU)": ["components.rank_pool", "facet_lib.steps"],
    "merge-views (CPU)": ["components.merge_views", "facet_lib.steps"],
    "evaluate (CPU)": ["components.evaluate", "facet_lib.steps"],
    "register (CPU)": ["components.register", "facet_lib.steps"],
    "facet_lib.registry": ["facet_lib.registry"],
    "facet_lib.steps": ["facet_lib.steps"],
    "train-fold (GPU)": ["components.train_fold", "facet_lib.steps"],
}


# the editable install's finder would map facet_lib to the working tree ahead of sys.path: drop it
_NO_EDITABLE = "sys.meta_path[:] = [f for f in sys.meta_path if '__editable__' not in repr(f)]; "


def measure(modules: list[str], tree: Path, repeat: int) -> tuple[float, bool] | None:
    """Seconds to import ``modules`` from the source tree ``tree`` in a fresh interpreter (best of
    ``repeat``), and whether torch got loaded."""
    best, torch = None, False
    code = (
        f"import sys, time; {_NO_EDITABLE}t = time.perf_counter(); import {', '.join(modules)}; "
        f"print(time.perf_counter() - t, 'torch' in sys.modules, {modules[-1]}.__file__)"
    )
    for _ in range(repeat):
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tree)
        if r.returncode != 0:
            return None
        secs, loaded, where = r.stdout.split()
        assert where.startswith(str(tree)), f"{modules[-1]} was imported from {where}, not {tree}"
        best = float(secs) if best is None else min(best, float(secs))
        torch = loaded == "True"
    return best, torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="fresh interpreters per module (best is kept)")
    ap.add_argument("--ref", default="HEAD", help="git revision of the baseline")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as old:
        arch = subprocess.run(["git", "archive", a.ref, "facet_lib", "components"], cwd=ROOT, capture_output=True)
        subprocess.run(["tar", "-x", "-C", old], input=arch.stdout, check=True)
        print(f"import time of each step's module (best of {a.repeat}); before = {a.ref}, after = working tree")
        print(f"{'task':22} {'before s':>9} {'torch':>6} {'after s':>9} {'torch':>6}   imports")
        for task, mods in TASKS.items():
            before = measure(mods, Path(old), a.repeat)
            after = measure(mods, ROOT, a.repeat)
            b = f"{before[0]:9.2f} {str(before[1]):>6}" if before else f"{'n/a':>9} {'':>6}"
            n = f"{after[0]:9.2f} {str(after[1]):>6}" if after else f"{'error':>9} {'':>6}"
            print(f"{task:22} {b} {n}   {' + '.join(mods)}")
    print(f"machine load (1/5/15 min): {os.getloadavg()} on {os.cpu_count()} cores — shared machine, compare rows")


if __name__ == "__main__":
    main()
