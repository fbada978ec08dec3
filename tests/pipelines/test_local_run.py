"""The whole pipeline on this machine (kfp.local SubprocessRunner) against a real SeaweedFS:
synthetic data read from s3://, the best fold registered to s3://."""

import json

import pytest

from facet_lib import registry, storage
from facet_lib.data.synthetic import SynthConfig, generate
from pipelines.local_run import run_local


def test_pipeline_end_to_end_on_s3(s3, tmp_path):
    data = generate("bu3dfe", tmp_path / "data", SynthConfig(subjects=4, step=3.0, seed=1, workers=1))
    storage.upload_dir(data, "s3://facet-e2e/bu3dfe-synthetic")
    res = run_local(
        tmp_path / "root",
        data_uri="s3://facet-e2e/bu3dfe-synthetic",
        dataset="bu3dfe",
        protocol="bu3dfe-I",
        n_folds=2,
        render_size=112,
        shard_size=16,
        model_config={"clip_model": "facet-tiny", "pretrained": "", "checkpoint": "", "unfreeze_top": 1},
        train_config={"epochs": 2, "freeze_epochs": 1, "lr": 0.003, "device": "cpu"},
        registry_uri="s3://facet-e2e-models/registry",
        model_name="e2e",
    )
    print(f"\nlocal pipeline run: {res['seconds']:.0f} s")
    assert registry.versions("s3://facet-e2e-models/registry", "e2e") == ["v0001"]
    uri = registry.resolve("s3://facet-e2e-models/registry/e2e@production")
    prov = storage.get_json(f"{uri}/provenance.json")
    assert prov["dataset"] == "bu3dfe" and prov["protocol"] == "bu3dfe-I" and len(prov["index_sha256"]) == 64
    metrics = storage.get_json(f"{uri}/metrics.json")
    assert 0 <= metrics["accuracy_mean"] <= 1
    # KFP-native outputs of the evaluate step: metrics and a confusion matrix in the executor output
    outs = [json.loads(p.read_text()) for p in (tmp_path / "root").rglob("executor_output.json")]
    kinds = {
        a.get("metadata", {}).get("confusionMatrix") is not None
        for o in outs
        for arts in o.get("artifacts", {}).values()
        for a in arts.get("artifacts", [])
    }
    assert True in kinds


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
        render_size=112,
        frames=4,
        shard_size=16,
        model_config={"clip_model": "facet-tiny", "pretrained": "", "checkpoint": "", "unfreeze_top": 1},
        train_config={"epochs": 2, "freeze_epochs": 1, "lr": 0.003, "device": "cpu"},
        cross_data_uri="s3://facet-cross/bp4d",
        cross_dataset_name="bp4d",
        cross_protocol="bp4d-cross",
        registry_uri="s3://facet-cross-models/registry",
        model_name="cross",
    )
    res = json.loads(next((tmp_path / "root").rglob("cross_metrics.json")).read_text())
    assert res["target_classes"]["n"] == 2 * 2  # 2 subjects x (T1, T8)
    assert 0 <= res["target_classes"]["accuracy"] <= 1 and "source_classes" in res
