"""The whole pipeline on this machine (kfp.local SubprocessRunner) against a real SeaweedFS:
synthetic data read from s3://, the best fold registered to s3://; a rerun on unchanged data registers
nothing new, a run on changed data registers a new version."""

import json

import pytest

from facet_lib import registry, storage
from facet_lib.data.synthetic import SynthConfig, generate
from pipelines.local_run import run_local

# a preset plus overrides, as a person fills the run form (no hand-written config dicts)
SMALL = dict(
    preset="tiny-cpu",
    epochs=2,
    render_size=112,
    model_overrides={"unfreeze_top": 1},
    train_overrides={"freeze_epochs": 1, "lr": 0.003, "device": "cpu"},
)


def _executor_outputs(root):
    return [json.loads(p.read_text()) for p in root.rglob("executor_output.json")]


@pytest.mark.slow  # three kfp.local pipeline runs (~3 min): `make test-slow`
def test_pipeline_end_to_end_on_s3_and_retraining_only_on_changed_data(s3, tmp_path, monkeypatch):
    # the code identity is part of what makes a registration new: pin it, commits may land during the test
    monkeypatch.setenv("GIT_COMMIT", "e2e-test")
    data = generate("bu3dfe", tmp_path / "data", SynthConfig(subjects=4, step=3.0, seed=1, workers=1))
    storage.upload_dir(data, "s3://facet-e2e/bu3dfe-synthetic")
    reg, alias = "s3://facet-e2e-models/registry", "s3://facet-e2e-models/registry/e2e@production"
    args = dict(
        data_uri="s3://facet-e2e/bu3dfe-synthetic",
        dataset="bu3dfe",
        protocol="bu3dfe-I",
        n_folds=2,
        shard_size=16,
        registry_uri=reg,
        model_name="e2e",
        **SMALL,
    )
    root = tmp_path / "root"
    res = run_local(root, cache=True, log_file=tmp_path / "kfp.log", **args)
    print(f"\nlocal pipeline run: {res['seconds']:.0f} s")
    status = {t["task"]: t["status"] for t in res["tasks"]}
    assert status["ingest"] == status["train-fold"] == status["register"] == "SUCCESS", status
    assert "Streamed logs" in (tmp_path / "kfp.log").read_text()  # kfp.local's full output went to the file
    assert registry.versions(reg, "e2e") == ["v0001"]
    uri = registry.resolve(alias)
    prov = storage.get_json(f"{uri}/provenance.json")
    assert prov["dataset"] == "bu3dfe" and prov["protocol"] == "bu3dfe-I" and len(prov["index_sha256"]) == 64
    assert len(prov["data_fingerprint"]) == 64
    params = storage.get_json(f"{uri}/params.json")
    assert params["train"]["epochs"] == 2 and params["model"]["clip_model"] == "facet-tiny"  # preset + knobs
    assert params["render"]["size"] == 112
    metrics = storage.get_json(f"{uri}/metrics.json")
    assert 0 <= metrics["accuracy_mean"] <= 1
    # KFP-native outputs of the evaluate step: metrics and a confusion matrix in the executor output
    kinds = {
        a.get("metadata", {}).get("confusionMatrix") is not None
        for o in _executor_outputs(root)
        for arts in o.get("artifacts", {}).values()
        for a in arts.get("artifacts", [])
    }
    assert True in kinds

    # a scheduled rerun on unchanged data: the fingerprint matches, every keyed step comes from the cache,
    # register runs and registers nothing new, the alias stays
    before = storage.get_json(f"{reg}/e2e/aliases/production.json")
    again = run_local(root, cache=True, log_file=tmp_path / "kfp.log", **args)
    status = {t["task"]: t["status"] for t in again["tasks"]}
    assert status["fingerprint"] == status["register"] == "SUCCESS", status
    assert status["ingest"] == status["render"] == status["train-fold"] == status["evaluate"] == "CACHED", status
    assert registry.versions(reg, "e2e") == ["v0001"]
    assert storage.get_json(f"{reg}/e2e/aliases/production.json") == before

    # changed data (one scan rewritten): a new fingerprint, a new version, the alias moves
    scan = next(data.rglob("*.wrl"))
    scan.write_text(scan.read_text() + "\n# re-exported\n")
    storage.upload_file(scan, f"s3://facet-e2e/bu3dfe-synthetic/{scan.relative_to(data).as_posix()}")
    changed = run_local(root, cache=True, log_file=tmp_path / "kfp.log", **args)
    status = {t["task"]: t["status"] for t in changed["tasks"]}
    assert status["ingest"] == status["train-fold"] == "SUCCESS", status  # retrained
    assert registry.versions(reg, "e2e") == ["v0001", "v0002"]
    new = storage.get_json(f"{registry.resolve(alias)}/provenance.json")
    assert new["data_fingerprint"] != prov["data_fingerprint"]


@pytest.mark.slow
def test_cross_dataset_branch_bu4dfe_to_bp4d(s3, tmp_path):
    """The pipeline's cross-dataset branch: train on BU-4DFE-style sequences, test on BP4D T1/T8."""
    a = generate("bu4dfe", tmp_path / "bu4dfe", SynthConfig(subjects=4, frames=4, step_4d=4.0, workers=1))
    b = generate("bp4d", tmp_path / "bp4d", SynthConfig(subjects=2, frames=4, step_4d=4.0, workers=1))
    storage.upload_dir(a, "s3://facet-cross/bu4dfe")
    storage.upload_dir(b, "s3://facet-cross/bp4d")
    run_local(
        tmp_path / "root",
        data_uri="s3://facet-cross/bu4dfe",
        dataset="bu4dfe",
        protocol="bu4dfe",
        n_folds=2,
        frames=4,
        shard_size=16,
        cross_data_uri="s3://facet-cross/bp4d",
        cross_dataset_name="bp4d",
        cross_protocol="bp4d-cross",
        registry_uri="s3://facet-cross-models/registry",
        model_name="cross",
        **SMALL,
    )
    res = json.loads(next((tmp_path / "root").rglob("cross_metrics.json")).read_text())
    assert res["target_classes"]["n"] == 2 * 2  # 2 subjects x (T1, T8)
    assert 0 <= res["target_classes"]["accuracy"] <= 1 and "source_classes" in res
