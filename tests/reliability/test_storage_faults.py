"""Issue 18.6 fault drills (storage part): SeaweedFS stopped during ``ingest`` and during ``register``,
and the disk filling up during a render shard write. Each: one clear line, nothing half-visible, and the
retry KFP makes (``set_retry`` in pipelines/facet_vlm.py: the same task again, same inputs and output
path) succeeds once the fault is gone. The server is really stopped (SIGTERM) and started again on the
same data folder; the full disk is a real tmpfs (ENOSPC from the kernel)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from facet_lib import registry, storage
from facet_lib.bundle_format import verify_bundle
from facet_lib.data.indexers import index_dataset, save_index
from facet_lib.steps import ingest_step
from pipelines import s3_server
from tests.bundle_helpers import fake_bundle
from tests.test_s3_server import NO_NAMESPACES

ENOSPC_JOB = Path(__file__).with_name("enospc_job.py")


@pytest.fixture()
def own_s3(tmp_path, monkeypatch):
    """A SeaweedFS of this test's own (the drill stops it), env vars set."""
    d = tmp_path / "s3"
    info = s3_server.start(d)
    for k, v in info["env"].items():
        monkeypatch.setenv(k, v)
    yield d
    s3_server.stop(d)


def _stop_after(monkeypatch, name: str, n: int, d: Path) -> dict:
    """Patch storage.<name> so that the server is stopped just before its n-th call goes out."""
    real, calls = getattr(storage, name), {"n": 0}

    def call(*a, **kw):
        calls["n"] += 1
        if calls["n"] == n:
            s3_server.stop(d)
        return real(*a, **kw)

    monkeypatch.setattr(storage, name, call)
    return calls


def test_s3_stopped_during_ingest_fails_in_one_line_and_the_retry_succeeds(own_s3, synth_root, tmp_path, monkeypatch):
    storage.upload_dir(synth_root / "bu3dfe", "s3://facet-drill/bu3dfe")
    args = ("s3://facet-drill/bu3dfe", "bu3dfe", "bu3dfe-I", 3, 0)
    ref = ingest_step(*args, tmp_path / "ref")
    calls = _stop_after(monkeypatch, "download_file", 20, own_s3)  # mid-way through the download
    out = tmp_path / "task-out"
    with pytest.raises(storage.StorageError) as e:
        ingest_step(*args, out)
    msg = str(e.value)
    assert "\n" not in msg and "s3://facet-drill/bu3dfe/" in msg and storage.endpoint() in msg, msg
    assert calls["n"] >= 20 and list(out.iterdir()) == []  # no index, folds or ingest.json half-written
    s3_server.start(own_s3)  # the server is back; KFP retries the task
    again = ingest_step(*args, out)
    assert again == ref | {"index_sha256": again["index_sha256"]}
    cols = ["sample_id", "subject", "label", "path"]
    assert pd.read_csv(out / "index.csv")[cols].equals(pd.read_csv(tmp_path / "ref" / "index.csv")[cols])
    assert (out / "folds.csv").read_bytes() == (tmp_path / "ref" / "folds.csv").read_bytes()


def test_s3_stopped_during_register_fails_in_one_line_leaves_nothing_visible_and_the_retry_succeeds(
    own_s3, tmp_path, monkeypatch
):
    digest = fake_bundle(tmp_path / "b", "drill")
    reg = "s3://facet-drill/registry"
    storage.ensure_bucket("facet-drill")
    _stop_after(monkeypatch, "upload_file", 2, own_s3)  # after the claim and the first bundle file
    with pytest.raises(storage.StorageError) as e:
        registry.register(tmp_path / "b", reg, "m", "run-1", {}, {}, {})
    assert "\n" not in str(e.value) and storage.endpoint() in str(e.value), str(e.value)
    monkeypatch.undo()
    info = s3_server.start(own_s3)
    for k, v in info["env"].items():
        monkeypatch.setenv(k, v)
    assert registry.versions(reg, "m") == []  # nothing half-visible: no complete version, no alias
    with pytest.raises(registry.RegistryError):
        registry.resolve(f"{reg}/m@production")
    done = registry.register(tmp_path / "b", reg, "m", "run-1", {}, {}, {})  # the retry
    assert registry.versions(reg, "m") == [done["version"]]
    assert registry.resolve(f"{reg}/m@production") == done["uri"]
    assert verify_bundle(registry.fetch(f"{reg}/m@production", tmp_path / "fetched"), expected_digest=digest)


def test_disk_full_during_a_shard_write_leaves_no_partial_shard_and_a_rerun_resumes(synth_root, tmp_path):
    try:
        subprocess.run([sys.executable, str(s3_server.NETNS), "check"], check=True, capture_output=True)
    except subprocess.CalledProcessError:
        pytest.skip(NO_NAMESPACES)
    index = index_dataset("bu3dfe", synth_root / "bu3dfe").index.head(24)  # 6 shards of 4
    save_index(index, tmp_path / "index.csv")
    shard = 4 * 2 * 64 * 64 * 3  # samples × yaws × pixels × RGB of one uncompressed shard
    size = int(2.6 * shard) // 4096 * 4096  # two shards fit, the third does not
    cmd = [sys.executable, str(ENOSPC_JOB), str(tmp_path / "index.csv"), str(synth_root / "bu3dfe")]
    r = subprocess.run([*cmd, str(tmp_path / "out"), str(size), "4"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    first = res["first"]
    assert first != "completed" and first["errno"] == 28, first
    assert "No space left on device (writing render shard" in first["message"] and "MB)" in first["message"]
    assert first["filename"].endswith(".npz") and "\n" not in first["message"]
    written = [f for f in res["visible"] if f.endswith(".npz")]
    assert 1 <= len(written) < 6 and not [f for f in res["visible"] if ".tmp-" in f], res["visible"]
    assert set(res["manifest_shards"]) == set(written)  # every visible shard is a complete, listed one
    assert res["rerun"]["complete"] and res["rerun"]["samples"] == 24 and res["readable"] == 24
    assert res["rerun"]["last_run"]["shards_skipped"] == len(written)  # resumed, not redone
