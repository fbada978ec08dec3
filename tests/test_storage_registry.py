import json
import os
import subprocess
import sys

import pytest
import torch

from facet_lib import registry, storage
from facet_lib.bundle import save_bundle
from facet_lib.bundle_format import verify_bundle
from facet_lib.config import ModelConfig
from facet_lib.data.labels import prompts_for
from facet_lib.models.model import FacetVLM
from facet_lib.storage import StorageError
from tests.bundle_helpers import fake_bundle


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    torch.manual_seed(0)
    m = FacetVLM(ModelConfig(clip_model="facet-tiny", unfreeze_top=1))
    d = tmp_path_factory.mktemp("bundle") / "b"
    save_bundle(
        d,
        m,
        m.build_text_bank(["happy", "sad"], prompts_for(["happy", "sad"], mode=m.cfg.prompts)),
        render={"size": 112, "mode": "shaded", "yaws": [0]},
    )
    return d


def test_multipart_round_trip_and_listing(s3, tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(storage.MULTIPART_THRESHOLD + 1234))  # above the multipart threshold
    storage.ensure_bucket("facet-test")
    storage.upload_file(big, "s3://facet-test/a/big.bin")
    head = storage.client().head_object(Bucket="facet-test", Key="a/big.bin")
    assert "-" in head["ETag"]  # a multipart upload's ETag carries the part count
    storage.download_file("s3://facet-test/a/big.bin", tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == big.read_bytes()
    assert storage.list_keys("s3://facet-test/a") == ["big.bin"]


def test_wrong_credentials_name_endpoint_and_bucket(s3, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
    with pytest.raises(StorageError) as e:
        storage.list_keys("s3://facet-test/a")
    msg = str(e.value)
    assert s3["AWS_ENDPOINT_URL"] in msg and "s3://facet-test/a" in msg and "SignatureDoesNotMatch" in msg


def test_anonymous_access_refused(s3):
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    anon = boto3.client(
        "s3",
        endpoint_url=s3["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        config=Config(signature_version=UNSIGNED, s3={"addressing_style": "path"}),
    )
    with pytest.raises(Exception) as e:
        anon.put_object(Bucket="facet-test", Key="anon.txt", Body=b"x")
    assert "AccessDenied" in str(e.value)


def test_register_idempotent_versions_and_alias(s3, bundle, tmp_path):
    reg = "s3://facet-reg/models"
    a = registry.register(bundle, reg, "demo", "run-1", {"accuracy": 0.5}, {}, {"dataset": "synthetic"})
    again = registry.register(bundle, reg, "demo", "run-1", {"accuracy": 0.5}, {}, {"dataset": "synthetic"})
    b = registry.register(bundle, reg, "demo", "run-2", {"accuracy": 0.6}, {}, {"dataset": "synthetic"})
    assert a["version"] == again["version"] == "v0001" and b["version"] == "v0002"
    assert registry.versions(reg, "demo") == ["v0001", "v0002"]
    assert registry.resolve(f"{reg}/demo@production") == b["uri"]
    keys = storage.list_keys(b["uri"])
    assert {"MODEL_CARD.md", "metrics.json", "provenance.json", "params.json", "_COMPLETE"} <= set(keys)
    card = storage.client().get_object(Bucket="facet-reg", Key="models/demo/v0002/MODEL_CARD.md")["Body"].read()
    assert b"Random backbone weights" in card
    local = registry.fetch(f"{reg}/demo@production", tmp_path / "fetched")
    assert (local / "weights.safetensors").exists()


def test_interrupted_upload_is_invisible_and_alias_stays(s3, bundle, monkeypatch):
    reg = "s3://facet-reg/interrupted"
    first = registry.register(bundle, reg, "m", "run-1", {}, {}, {})
    real, calls = storage.upload_file, {"n": 0}

    def flaky(path, uri):
        calls["n"] += 1
        if calls["n"] == 3:
            raise StorageError("simulated network failure")
        return real(path, uri)

    monkeypatch.setattr(storage, "upload_file", flaky)
    with pytest.raises(StorageError, match="simulated"):
        registry.register(bundle, reg, "m", "run-2", {}, {}, {})
    monkeypatch.setattr(storage, "upload_file", real)
    assert registry.versions(reg, "m") == ["v0001"]  # v0002 has files but no _COMPLETE
    assert registry.resolve(f"{reg}/m@production") == first["uri"]
    with pytest.raises(registry.RegistryError, match="not a complete registered version"):
        registry.resolve(f"{reg}/m/v0002")


def test_failure_after_the_claim_leaves_an_invisible_version_and_no_staging(s3, tmp_path, monkeypatch):
    reg = "s3://facet-reg/aftclaim"
    for t in "abc":
        fake_bundle(tmp_path / t, t)
    registry.register(tmp_path / "a", reg, "m", "run-a", {}, {}, {})
    real = storage.copy

    def broken(src, dst):
        raise StorageError("simulated failure while copying")

    monkeypatch.setattr(storage, "copy", broken)
    with pytest.raises(StorageError, match="simulated"):
        registry.register(tmp_path / "b", reg, "m", "run-b", {}, {}, {})
    monkeypatch.setattr(storage, "copy", real)
    assert "v0002/_CLAIM" in storage.list_keys(f"{reg}/m") and registry.versions(reg, "m") == ["v0001"]
    assert storage.list_keys(f"{reg}/m/_staging") == []
    c = registry.register(tmp_path / "c", reg, "m", "run-c", {}, {}, {})
    assert c["version"] == "v0003" and registry.versions(reg, "m") == ["v0001", "v0003"]
    assert registry.resolve(f"{reg}/m@production") == c["uri"]


def test_bad_names(s3, bundle):
    with pytest.raises(registry.RegistryError, match="model name"):
        registry.register(bundle, "s3://facet-reg/x", "Bad Name", "r", {}, {}, {})
    with pytest.raises(StorageError, match="at least 3 characters"):
        storage.split_s3("s3://ab/key")


# -- issue 12: bundle files readable by the non-root server; issue 9: the registry is torch-free ----------


def test_bundle_files_are_world_readable(bundle, tmp_path):
    from facet_lib.bundle_format import ALL_FILES, file_mode

    assert file_mode() == 0o666 & ~_umask()
    for f in ALL_FILES:  # safetensors' save_file alone writes 0600
        assert (bundle / f).stat().st_mode & 0o777 == file_mode(), f
    old = os.umask(0o027)
    try:
        fake_bundle(tmp_path / "b", "b")
    finally:
        os.umask(old)
    assert {(tmp_path / "b" / f).stat().st_mode & 0o777 for f in ALL_FILES} == {0o640}


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def test_registry_imports_no_torch():
    code = "import sys, facet_lib.registry, facet_lib.bundle_format; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# -- issue 13.5 / 13.9: fetch compares digests, uses a fresh folder per digest, refuses escaping keys -------


def test_fetch_refuses_a_swapped_bundle(s3, tmp_path):
    reg = "s3://facet-reg/swap"
    fake_bundle(tmp_path / "a", "a")
    fake_bundle(tmp_path / "evil", "evil")
    v1 = registry.register(tmp_path / "a", reg, "m", "run-a", {}, {}, {})
    # an attacker replaces every file of v1 with another, internally consistent bundle
    for f in ("weights.safetensors", "text.safetensors", "config.json", "CHECKSUMS.json"):
        storage.upload_file(tmp_path / "evil" / f, f"{v1['uri']}/{f}")
    for ref in (f"{reg}/m@production", v1["uri"]):
        with pytest.raises(registry.RegistryError, match="differs from the expected"):
            registry.fetch(ref, tmp_path / "cache")
    assert not any((tmp_path / "cache").iterdir())  # nothing left behind to be picked up later
    alias = storage.get_json(f"{reg}/m/aliases/production.json")
    storage.put_json(f"{reg}/m/aliases/production.json", {**alias, "digest": "0" * 64})
    with pytest.raises(registry.RegistryError, match="alias digest"):
        registry.lookup(f"{reg}/m@production")


def test_fetch_uses_a_fresh_folder_per_digest(s3, tmp_path):
    reg = "s3://facet-reg/fresh"
    da, db = fake_bundle(tmp_path / "a", "a"), fake_bundle(tmp_path / "b", "b")
    registry.register(tmp_path / "a", reg, "m", "run-a", {}, {}, {})
    la = registry.fetch(f"{reg}/m@production", tmp_path / "cache")
    registry.register(tmp_path / "b", reg, "m", "run-b", {}, {}, {})
    lb = registry.fetch(f"{reg}/m@production", tmp_path / "cache")  # same cache folder, next version
    assert (la.name, lb.name) == (da, db)
    assert json.loads((lb / "config.json").read_text())["tag"] == "b"
    (la / "weights.safetensors").write_bytes(b"corrupted")  # a damaged cache is re-downloaded, not served
    assert registry.fetch(f"{reg}/m/v0001", tmp_path / "cache") == la
    assert verify_bundle(la, da) == da


def test_keys_escaping_the_destination_are_refused(s3, tmp_path, monkeypatch):
    for bad in ("../evil", "a/../../evil", "/etc/evil", "a/..", ""):
        with pytest.raises(StorageError, match="escapes the destination"):
            storage.contained(tmp_path / "dest", bad)
    assert storage.contained(tmp_path / "dest", "a/b.json") == (tmp_path / "dest" / "a" / "b.json").resolve()
    listing = [{"key": k, "size": 1, "etag": ""} for k in ("ok.json", "../../escaped.json")]
    monkeypatch.setattr(storage, "list_objects", lambda uri: listing)
    with pytest.raises(StorageError, match="escapes"):
        storage.download_prefix("s3://facet-reg/any", tmp_path / "dest")
    assert not (tmp_path / "dest").exists() and not (tmp_path.parent / "escaped.json").exists()


def _tree(root, n=40):
    files = {f"d{i % 4}/f{i:03d}.bin": os.urandom(100 + 37 * i) for i in range(n)}
    for rel, body in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(body)
    return files


def test_parallel_upload_and_download_round_trip(s3, tmp_path):
    files = _tree(tmp_path / "src")
    assert storage.upload_dir(tmp_path / "src", "s3://facet-par/t", workers=8) == sorted(files)
    storage.download_prefix("s3://facet-par/t", tmp_path / "back", workers=8)
    back = [p for p in (tmp_path / "back").rglob("*") if p.is_file()]
    assert {p.relative_to(tmp_path / "back").as_posix(): p.read_bytes() for p in back} == files  # no temp files
    storage.download_prefix("s3://facet-par/t", tmp_path / "some", only=["d1/f001.bin", "d2/f002.bin"], workers=8)
    assert sorted(p.name for p in (tmp_path / "some").rglob("*.bin")) == ["f001.bin", "f002.bin"]


def test_parallel_download_failure_is_one_error_and_leaves_only_whole_files(s3, tmp_path, monkeypatch):
    files = _tree(tmp_path / "src")
    storage.upload_dir(tmp_path / "src", "s3://facet-par/f")
    real = storage.download_file

    def flaky(uri, dest):
        if uri.endswith("f017.bin"):
            raise StorageError(f"download {uri} failed: simulated")
        return real(uri, dest)

    monkeypatch.setattr(storage, "download_file", flaky)
    with pytest.raises(StorageError, match="f017.bin failed: simulated"):
        storage.download_prefix("s3://facet-par/f", tmp_path / "back", workers=8)
    left = [p for p in (tmp_path / "back").rglob("*") if p.is_file()]
    assert left and all(p.read_bytes() == files[p.relative_to(tmp_path / "back").as_posix()] for p in left)
    assert not (tmp_path / "back" / "d1" / "f017.bin").exists()
    # a size that disagrees with the listing: refused, the file removed
    monkeypatch.setattr(storage, "download_file", real)
    listing = storage.list_objects("s3://facet-par/f")
    listing[5]["size"] += 1
    monkeypatch.setattr(storage, "list_objects", lambda uri: listing)
    with pytest.raises(StorageError, match=f"{listing[5]['key']}: got {listing[5]['size'] - 1} bytes, the listing"):
        storage.download_prefix("s3://facet-par/f", tmp_path / "again", workers=8)
    assert not (tmp_path / "again" / listing[5]["key"]).exists()


def test_parallel_upload_failure_raises_the_first_error(s3, tmp_path, monkeypatch):
    _tree(tmp_path / "src")
    real = storage.upload_file

    def flaky(path, uri):
        if uri.endswith("f023.bin"):
            raise StorageError(f"upload to {uri} failed: simulated")
        return real(path, uri)

    monkeypatch.setattr(storage, "upload_file", flaky)
    with pytest.raises(StorageError, match="f023.bin failed: simulated"):
        storage.upload_dir(tmp_path / "src", "s3://facet-par/u", workers=8)
    assert "d3/f023.bin" not in storage.list_keys("s3://facet-par/u")


def test_no_credentials_error_names_the_variables(s3, monkeypatch, tmp_path):
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(StorageError) as e:
        storage.list_keys("s3://facet-reg/x")
    for var in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert var in str(e.value)


# -- issue 13.4: version claims need conditional writes ----------------------------------------------------


def test_a_store_ignoring_conditional_writes_is_refused(s3, tmp_path, monkeypatch):
    fake_bundle(tmp_path / "a", "a")
    real = storage.put_bytes
    monkeypatch.setattr(storage, "put_bytes", lambda uri, body, if_absent=False, **kw: real(uri, body, False, **kw))
    with pytest.raises(registry.RegistryError, match="ignores conditional writes"):
        registry.register(tmp_path / "a", "s3://facet-noncond/reg", "m", "run-a", {}, {}, {})
    monkeypatch.setattr(storage, "put_bytes", real)
    assert storage.put_bytes("s3://facet-reg/once", b"1", if_absent=True) is True
    assert storage.put_bytes("s3://facet-reg/once", b"2", if_absent=True) is False
    assert storage.client().get_object(Bucket="facet-reg", Key="once")["Body"].read() == b"1"


# -- registry commands: list / show / promote / rollback; dedup ------------------------------------------


def test_promote_rollback_list_show_and_dedup(s3, tmp_path):
    reg = "s3://facet-reg/cmds"
    for t in "abcd":
        fake_bundle(tmp_path / t, t)
    v1 = registry.register(tmp_path / "a", reg, "m", "run-a", {"accuracy": 0.4}, {}, {})
    v2 = registry.register(tmp_path / "b", reg, "m", "run-b", {"accuracy": 0.5}, {}, {})
    assert registry.lookup(f"{reg}/m@production")["version"] == v2["version"] == "v0002"
    registry.promote(f"{reg}/m/v0001", "production")
    registry.promote(f"{reg}/m@production", "staging")  # an alias can name another alias's version
    assert registry.resolve(f"{reg}/m@production") == registry.resolve(f"{reg}/m@staging") == v1["uri"]
    listed = {v["version"]: v for v in registry.list_versions(reg, "m")}
    assert listed["v0001"]["aliases"] == ["production", "staging"] and listed["v0002"]["aliases"] == []
    shown = registry.show(f"{reg}/m@production")
    assert shown["version"] == "v0001" and shown["metrics"] == {"accuracy": 0.4} and shown["run_id"] == "run-a"
    back = registry.rollback(reg, "m")
    assert back["version"] == "v0002" and back["rolled_back_from"] == "v0001"
    assert registry.rollback(reg, "m")["version"] == "v0001"  # history: v1 → v2 → v1 (promote) → v2 → v1
    with pytest.raises(registry.RegistryError, match="no earlier version"):
        registry.rollback(reg, "m")
    assert registry.models("s3://facet-reg/cmds") == ["m"]
    with pytest.raises(registry.RegistryError, match="expected s3://"):
        registry.lookup(f"{reg}/m")
    # dedup: a second registration with the same key returns the first one and leaves the alias alone
    v3 = registry.register(tmp_path / "c", reg, "m", "run-c", {}, {}, {}, alias="production", dedup_key="k1")
    again = registry.register(tmp_path / "d", reg, "m", "run-d", {}, {}, {}, alias="staging", dedup_key="k1")
    assert again["reused"] is True and again["version"] == v3["version"] == "v0003"
    assert registry.resolve(f"{reg}/m@staging") == v1["uri"] and registry.versions(reg, "m")[-1] == "v0003"


def test_provenance_commit_from_git_commit_env_without_git(monkeypatch):
    """Issue 12: inside an image there is no .git; provenance takes the GIT_COMMIT build argument."""
    from facet_lib import provenance

    def no_git(*a, **kw):
        raise FileNotFoundError("git")

    monkeypatch.setattr(provenance.subprocess, "run", no_git)
    monkeypatch.setenv("GIT_COMMIT", "0123abc")
    assert provenance.git_commit() == "0123abc"
    monkeypatch.delenv("GIT_COMMIT")
    assert provenance.git_commit() == "unknown"


def test_alias_moves_are_compare_and_swap(s3, tmp_path):
    """A concurrent alias move between our read and our write is never overwritten: the write is retried."""
    reg = "s3://facet-reg/cas"
    fake_bundle(tmp_path / "a", "a")
    registry.register(tmp_path / "a", reg, "m", "run-a", {}, {}, {})
    key = f"{reg}/m/aliases/production.json"
    old, etag = storage.get_json_versioned(key)
    assert storage.put_json(key, {**old, "other": 1}, if_match=etag) is True
    assert storage.put_json(key, {**old, "stale": 1}, if_match=etag) is False  # etag no longer current
    calls = []

    def change(cur):
        calls.append(cur)
        if len(calls) == 1:  # another writer moves the alias right after our read
            storage.put_json(key, {**cur, "history": cur["history"] + [{"version": "v0009"}]})
        return {**cur, "note": len(calls)}

    rec = registry._update_alias(key, change)
    assert len(calls) == 2 and rec["history"][-1] == {"version": "v0009"} and rec["note"] == 2
    assert storage.get_json(key) == rec
