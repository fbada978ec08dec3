"""Issue 13.4: registrations racing from separate processes get distinct, complete, unmixed versions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from facet_lib import registry, storage
from facet_lib.bundle_format import verify_bundle
from tests.bundle_helpers import fake_bundle

JOB = Path(__file__).with_name("registry_race_job.py")


def race(tmp_path: Path, reg: str, name: str, n: int, round_: int) -> list[dict]:
    digests = {f"r{round_}-p{i}": fake_bundle(tmp_path / f"r{round_}-p{i}", f"r{round_}-p{i}") for i in range(n)}
    procs = [
        subprocess.Popen(
            [sys.executable, str(JOB), str(tmp_path / run), reg, name, run],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for run in digests
    ]
    for p in procs:  # wait until every process is at the barrier, then release them together
        assert p.stdout.readline().strip() == "ready", p.stderr.read()[-2000:]
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, stderr[-2000:]
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    for info in out:
        assert info["digest"] == digests[info["run_id"]]
    return out


def check_registry(reg: str, name: str, results: list[dict], tmp_path: Path) -> None:
    """Zero lost versions (one per registration), zero mixed ones (each verifies against its own digest)."""
    vers = registry.versions(reg, name)
    assert len(vers) == len(results) == len({r["version"] for r in results})
    assert sorted(vers) == sorted(r["version"] for r in results)
    for r in results:
        reg_json = storage.get_json(f"{r['uri']}/registration.json")
        assert reg_json["run_id"] == r["run_id"] and reg_json["digest"] == r["digest"]
        assert storage.get_json(f"{r['uri']}/provenance.json") == {"run_id": r["run_id"]}
        local = registry.fetch(r["uri"], tmp_path / "fetched")
        assert verify_bundle(local, r["digest"]) == r["digest"]
        assert json.loads((local / "config.json").read_text())["tag"] == r["run_id"]
    assert storage.list_keys(f"{reg}/{name}/_staging") == []  # every staging prefix was cleaned up
    alias = storage.get_json(f"{reg}/{name}/aliases/production.json")
    assert alias["version"] in vers
    # every registration moved the alias once (compare-and-swap): no move lost from its history
    assert sorted([h["version"] for h in alias["history"]] + [alias["version"]]) == sorted(vers)


def test_racing_registrations_get_distinct_complete_versions(s3, tmp_path):
    reg, name = "s3://facet-race/registry", "race"
    results = race(tmp_path, reg, name, n=4, round_=0)
    check_registry(reg, name, results, tmp_path)


@pytest.mark.slow
def test_many_racing_registrations(s3, tmp_path):
    """3 rounds × 8 processes = 24 racing registrations; goal: zero lost or mixed versions."""
    reg, name = "s3://facet-race/registry", "race-slow"
    results = []
    for r in range(3):
        results += race(tmp_path, reg, name, n=8, round_=r)
    check_registry(reg, name, results, tmp_path)
    print(f"\n{len(results)} racing registrations → {len(registry.versions(reg, name))} complete versions, 0 mixed")
