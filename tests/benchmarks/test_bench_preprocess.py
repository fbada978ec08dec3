"""Smoke test of the dataset-scale benchmark on a tiny tree (figures are not checked: not a timing test)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_preprocess.py"


@pytest.mark.slow
def test_tiny_tree_prints_the_breakdown_and_projection(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("bench_preprocess", BENCH)
    mod = sys.modules["bench_preprocess"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    args = ["--subjects", "2", "--frames", "6", "--distinct", "2", "--step", "4.0", "--workers", "1"]
    mod.main([*args, "--shard-size", "3", "--data", str(tmp_path / "tree")])
    out = capsys.readouterr().out
    assert "frames read: 72 for 12 sequences = 6.0 per sequence" in out  # 6 frames ≤ 16 sampled: each read once
    assert "where CPU time goes" in out and "read " in out and "render " in out
    assert "projected BU-4DFE render pass (606 sequences" in out and "0 failures" in out
    assert "baseline, same frames: previous reader" in out
