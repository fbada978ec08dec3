import os

import pytest
import torch

from facet_lib import registry, storage
from facet_lib.bundle import save_bundle
from facet_lib.models.model import FacetVLM, ModelConfig
from facet_lib.storage import StorageError


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    torch.manual_seed(0)
    m = FacetVLM(ModelConfig(clip_model="facet-tiny", unfreeze_top=1))
    d = tmp_path_factory.mktemp("bundle") / "b"
    save_bundle(d, m, m.build_text_bank(["happy", "sad"]), render={"size": 112, "mode": "shaded", "yaws": [0]})
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


def test_bad_names(s3, bundle):
    with pytest.raises(registry.RegistryError, match="model name"):
        registry.register(bundle, "s3://facet-reg/x", "Bad Name", "r", {}, {}, {})
    with pytest.raises(StorageError, match="at least 3 characters"):
        storage.split_s3("s3://ab/key")
