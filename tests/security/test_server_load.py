"""Bounded load test (slow): 32 clients on loopback, valid and hostile requests mixed, a few rounds,
through ``benchmarks/bench_serving.py load`` as a user would run it. Goals: no 5xx (or dropped
connection) over the hostile corpus and every valid request answered 200; the latency figures are
printed (p99 with hostile requests in flight against alone; the goal is ≤ 3x on a quiet machine)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_serving.py"


@pytest.mark.slow
def test_mixed_hostile_load_has_no_5xx():
    args = ["load", "--rounds", "2", "--clients", "32", "--per-client", "2", "--server-arg=--render_timeout_s=10"]
    out = subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, out.stderr[-3000:]
    print(out.stdout)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["errors_5xx"] == 0, report["statuses"]
    assert report["valid_failed"] == 0, report["rounds"]
    assert all(r["requests"] > 0 for r in report["rounds"])
    assert any(int(code) == 400 or int(code) == 413 for code in report["statuses"])  # the hostile ones were refused
