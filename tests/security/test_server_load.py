"""Bounded load test (slow): ``benchmarks/bench_serving.py load`` as a user would run it — valid views
and scans alone and with four hostile loops in flight (the corpus's load subset), then 32 clients on
loopback, valid and hostile mixed. Goals checked: no 5xx (or dropped connection), every valid request
200, the hostile ones refused. The latency ratios are printed, not asserted (a shared machine's noise
is a benchmark's business; the README records measured runs with their load average)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_serving.py"


@pytest.mark.slow
def test_mixed_hostile_load_has_no_5xx():
    args = ["load", "--rounds", "2", "--clients", "32", "--per-client", "2", "--loop-requests", "20"]
    out = subprocess.run(
        [sys.executable, str(BENCH), *args, "--server-arg=--render_timeout_s=10"],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    print(out.stdout)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["errors_5xx"] == 0, report["statuses"]
    assert report["valid_failed"] == 0, report["rounds"]
    assert all(r["requests"] > 0 for r in report["rounds"])
    assert any(int(code) in (400, 413, 429) for code in report["statuses"])  # the hostile ones were refused
    for kind, row in report["hostile_loops"].items():
        assert row["valid_failed"] == 0, (kind, row)
        assert all(int(k) < 500 and int(k) != 0 for k in row["hostile_statuses"]), (kind, row)
