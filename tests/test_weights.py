"""Issue 17.2: an open_clip pretrained tag is fetched once (huggingface_hub's own client against a stand-in hub
on loopback, HF_ENDPOINT) into S3 under its SHA-256, and the model settings then name that S3 copy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from facet_lib import storage
from facet_lib.errors import ConfigError
from facet_lib.files import sha256_file
from facet_lib.weights import content_uri, store_tag, tag_index_uri, weights_step
from tests.hf_standin import OPENAI_FILE, OPENAI_REPO, StandInHub, vit_b16_openai

STORE = "s3://facet-weights-test/weights"


@pytest.fixture(scope="session")
def openai_standin(tmp_path_factory) -> Path:
    return vit_b16_openai(tmp_path_factory.mktemp("hub") / OPENAI_FILE)


def hub_env(hub: StandInHub, home: Path) -> dict:
    """The environment of a connected cluster's step: the hub at HF_ENDPOINT, no HF_HUB_OFFLINE."""
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    return {**env, "HF_ENDPOINT": hub.url, "HF_HOME": str(home), "HOME": str(home)}


def run_cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "facet_lib.weights", *args], env=env, capture_output=True, text=True, timeout=600
    )


def test_tag_is_fetched_once_into_s3_and_the_settings_name_the_copy(s3, openai_standin, tmp_path):
    digest = sha256_file(openai_standin)
    with StandInHub({OPENAI_REPO: {OPENAI_FILE: openai_standin}}) as hub:
        env = hub_env(hub, tmp_path / "home")
        first = run_cli(env, "ViT-B-16", "openai", STORE)
        assert first.returncode == 0, first.stderr[-2000:]
        uri = content_uri(STORE, digest, OPENAI_FILE)
        assert f"checkpoint={uri}" in first.stdout and "downloaded 299 MB" in first.stdout
        assert "quick_gelu=True" in first.stdout.splitlines()  # what an air-gapped run passes with it
        # huggingface_hub asked the stand-in for the file open_clip names for this tag: HEAD, then one GET
        assert hub.downloads() == [f"/{OPENAI_REPO}/resolve/main/{OPENAI_FILE}"]
        assert ("HEAD", f"/{OPENAI_REPO}/resolve/main/{OPENAI_FILE}") in hub.requests
        obj = storage.head(uri)
        assert obj["metadata"]["sha256"] == digest and obj["size"] == openai_standin.stat().st_size
        assert obj["metadata"]["source"] == f"hf://{OPENAI_REPO}@0123456789abcdef0123456789abcdef01234567/{OPENAI_FILE}"
        index = storage.get_json(tag_index_uri(STORE, "ViT-B-16", "openai"))
        assert index["checkpoint"] == uri and index["sha256"] == digest and index["quick_gelu"] is True
        n = len(hub.file_requests())
        again = run_cli(env, "ViT-B-16", "openai", STORE)  # a second run: from S3, nothing from the hub
        assert again.returncode == 0 and "stored before" in again.stdout and f"checkpoint={uri}" in again.stdout
        assert len(hub.file_requests()) == n
    # the step every run goes through: the tag becomes the S3 copy, and the model loads exactly those weights
    model = {"clip_model": "ViT-B-16", "pretrained": "openai", "checkpoint": None, "unfreeze_top": 1}
    out = weights_step(model, STORE)
    assert out["model_config"]["checkpoint"] == uri and out["model_config"]["pretrained"] == ""  # KFP: no None
    assert None not in out["model_config"].values()
    assert out["model_config"]["quick_gelu"] is True  # openai's activation, which the checkpoint does not carry
    assert out["weights"]["fetched"] is False and out["weights"]["sha256"] == digest
    import torch
    from safetensors.torch import load_file

    from facet_lib.models.backbone import create_clip

    clip, weights = create_clip("ViT-B-16", checkpoint=uri, cache_dir=tmp_path / "cache", fetch=storage.local_path)
    served = load_file(str(openai_standin))
    assert weights == f"checkpoint {uri}"
    assert torch.equal(clip.visual.proj.detach(), served["visual.proj"].float())
    assert torch.equal(clip.visual.conv1.weight.detach(), served["visual.conv1.weight"].float())


def test_no_tag_passes_unchanged():
    plain = {"clip_model": "facet-tiny", "pretrained": None, "checkpoint": "s3://x/w.safetensors"}
    note = {"checkpoint": "s3://x/w.safetensors", "fetched": False, "source": "checkpoint"}
    assert weights_step(plain, STORE) == {"model_config": plain, "weights": note}


@pytest.mark.slow
def test_a_copy_without_its_digest_is_fetched_again(s3, openai_standin, tmp_path):
    store = "s3://facet-weights-test/bad"
    digest = sha256_file(openai_standin)
    storage.ensure_bucket("facet-weights-test")
    bogus = content_uri(store, digest, OPENAI_FILE)  # an index pointing at an object without the digest
    storage.put_bytes(bogus, b"not weights")
    storage.put_json(tag_index_uri(store, "ViT-B-16", "openai"), {"checkpoint": bogus, "sha256": digest})
    with StandInHub({OPENAI_REPO: {OPENAI_FILE: openai_standin}}) as hub:
        r = run_cli(hub_env(hub, tmp_path / "h"), "ViT-B-16", "openai", store)
        assert r.returncode == 0, r.stderr[-2000:]
        assert len(hub.downloads()) == 1 and storage.head(bogus)["metadata"]["sha256"] == digest


def test_failures_name_the_tag_the_file_and_the_air_gapped_way(s3, tmp_path, monkeypatch):
    import torch
    from safetensors.torch import save_file

    from facet_lib.weights import check_loads, download_tag

    wrong = tmp_path / OPENAI_FILE  # right name, wrong shapes: refused (before anything is stored)
    save_file({"visual.proj": torch.zeros(3, 3)}, str(wrong))
    with pytest.raises(ConfigError, match=f"{wrong}: not facet-tiny weights"):
        check_loads("facet-tiny", wrong)
    with pytest.raises(ConfigError, match="no tag 'no-such-tag' for ViT-B-16.*openai"):
        download_tag("ViT-B-16", "no-such-tag", tmp_path)
    with pytest.raises(ConfigError, match="s3:// prefix"):
        store_tag("ViT-B-16", "openai", "/local/folder")
    # no hub reachable (here: huggingface_hub offline): one line naming the tag and checkpoint=s3://…, exit 1
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "h")}
    r = run_cli(env, "ViT-B-16", "openai", STORE + "-off")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr[-2000:]
    assert "ViT-B-16/openai" in r.stderr and "checkpoint=s3://" in r.stderr
    assert storage.list_keys(STORE + "-off") == []


@pytest.mark.slow
def test_local_pipeline_fetches_the_tag_once_and_every_gpu_step_uses_the_copy(
    s3, openai_standin, tmp_path, monkeypatch
):
    """kfp.local: `pretrained=openai` on ViT-B-16 (real shapes, random stand-in weights): fetch-weights downloads it
    once through huggingface_hub; extract-features, every train-fold and the registered bundle use the S3 copy."""
    from facet_lib import registry
    from facet_lib.data.synthetic import SynthConfig, generate
    from pipelines.local_run import run_local

    monkeypatch.setenv("GIT_COMMIT", "weights-test")
    data = generate("bu3dfe", tmp_path / "data", SynthConfig(subjects=4, step=3.0, seed=1, workers=1))
    storage.upload_dir(data, "s3://facet-weights-e2e/bu3dfe")
    reg, store = "s3://facet-weights-e2e/registry", "s3://facet-weights-e2e/weights"
    digest = sha256_file(openai_standin)
    with StandInHub({OPENAI_REPO: {OPENAI_FILE: openai_standin}}) as hub:
        for k, v in hub_env(hub, tmp_path / "home").items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # a connected cluster (run_local defaults it to 1 otherwise)
        res = run_local(
            tmp_path / "root", log_file=tmp_path / "kfp.log", data_uri="s3://facet-weights-e2e/bu3dfe",
            dataset="bu3dfe", protocol="bu3dfe-I", n_folds=2, shard_size=16, preset="tiny-cpu", epochs=1,
            render_size=64, pretrained="openai", model_overrides={"clip_model": "ViT-B-16", "unfreeze_top": 1},
            train_overrides={"freeze_epochs": 1, "device": "cpu"}, registry_uri=reg, model_name="w", weights_uri=store,
        )  # fmt: skip
        requests = list(hub.requests)
    status = {t["task"]: t["status"] for t in res["tasks"]}
    assert set(status.values()) == {"SUCCESS"} and "fetch-weights" in status, status
    # the hub saw only fetch-weights' HEAD + GET of the one file: no GPU step asked it for any file
    # (huggingface_hub also asks for /api/agent-harnesses, its user-agent registry, at most once a day)
    path = f"/{OPENAI_REPO}/resolve/main/{OPENAI_FILE}"
    assert [r for r in requests if "/resolve/" in r[1]] == [("HEAD", path), ("GET", path)], requests
    copy = content_uri(store, digest, OPENAI_FILE)
    used = {}  # task folder → backbone_weights of its output artifacts (extract-features, each train-fold)
    for p in (tmp_path / "root").rglob("executor_output.json"):
        for arts in json.loads(p.read_text()).get("artifacts", {}).values():
            for a in arts.get("artifacts", []):
                if "backbone_weights" in a.get("metadata", {}):
                    used[str(p.parent.relative_to(tmp_path / "root"))] = a["metadata"]["backbone_weights"]
    assert sum("extract-features" in k for k in used) == 1 and sum("train-fold" in k for k in used) == 2, used
    assert set(used.values()) == {f"checkpoint {copy}"}, used
    params = storage.get_json(f"{registry.resolve(f'{reg}/w@production')}/params.json")
    assert params["model"]["checkpoint"] == copy and not params["model"]["pretrained"]
