"""Smoke test of the prepared GPU benchmark: with ``--tiny`` it runs on the CPU and prints its one table
(figures are not checked: this is not a timing test)."""

from __future__ import annotations

import importlib
import json
import math
import sys
from pathlib import Path

import torch

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str):
    """A benchmark script as a module (benchmarks/ is a folder of scripts, not a package)."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module(name)


def test_tiny_run_prints_the_table_and_writes_figures(tmp_path, capsys):
    gpu = _load("gpu_vitb16")
    threads = torch.get_num_threads()
    try:
        out = gpu.main(["--tiny", "--json", str(tmp_path / "fig.json")])
    finally:
        torch.set_num_threads(threads)
    text = capsys.readouterr().out
    assert "| row " in text and "vs baseline" in text and "peak GPU GiB" in text
    for label in gpu.ROWS.values():
        assert label in text
    assert "served V2, 1 sample/request" in text and "projected 10-fold BU-3DFE Subset II" in text
    saved = json.loads((tmp_path / "fig.json").read_text())
    assert saved["rates"].keys() == gpu.ROWS.keys() == out["rates"].keys()
    assert all(r > 0 and math.isfinite(r) for r in saved["rates"].values())
    assert saved["served"]["rps"] > 0 and saved["projection"]["ratio"] > 0
    # bench_train.py projects the GPU run from these figures
    train = _load("bench_train")
    p = train.project_cv(saved["rates"], preset="paper")
    assert p["epochs"] == 30 and p["cached_h"] > 0


def test_projection_arithmetic():
    steps = _load("train_steps")
    rates = {"frozen_uncached": 10.0, "frozen_tokens": 100.0, "tuned_uncached": 5.0, "tuned_cached": 20.0}
    p = steps.project_cv({**rates, "extract": 30.0}, n=100, folds=10, preset="paper")  # 30 epochs, 5 frozen
    n_train = 90
    cached = 100 / 30 + 10 * n_train * (5 / 100 + 25 / 20)
    uncached = 10 * n_train * (5 / 10 + 25 / 5)
    assert math.isclose(p["cached_h"] * 3600, cached) and math.isclose(p["uncached_h"] * 3600, uncached)
