"""Each component's Python function on tiny inputs, with local artifacts (no runner)."""

import hashlib
import json

import pytest
from kfp.dsl import HTML, ClassificationMetrics, Dataset, Metrics, Model

from components.configure import configure
from components.evaluate import evaluate
from components.extract_features import extract_features
from components.fingerprint import fingerprint
from components.ingest import ingest
from components.merge_views import merge_views
from components.rank_pool import rank_pool
from components.render import render
from components.train_fold import train_fold
from facet_lib.config import ModelConfig, RenderConfig, TrainConfig, from_params, preset
from facet_lib.errors import ConfigError

# the run's settings as the pipeline resolves them: a preset, override dicts, then typed knobs
SETTINGS = configure.python_func(
    preset="tiny-cpu",
    model_overrides={"unfreeze_top": 1},
    train_overrides={"freeze_epochs": 1, "device": "cpu"},
    render_overrides={"size": 96},
    deploy_target="none",
    epochs=1,
    render_size=64,
    frames=4,
)
MODEL, TRAIN, RENDER = SETTINGS.model_config, SETTINGS.train_config, SETTINGS.render_config


def test_configure_resolves_preset_overrides_and_knobs():
    m, t, r = from_params(ModelConfig, MODEL), from_params(TrainConfig, TRAIN), from_params(RenderConfig, RENDER)
    assert m.clip_model == "facet-tiny" and t.epochs == 1 and t.device == "cpu"
    assert r.size == 64 and r.frames == 4  # the typed knob wins over the override dict
    assert t.lr == preset("tiny-cpu")[1].lr  # the rest comes from the preset
    with pytest.raises(ConfigError, match="epoch"):
        configure.python_func("paper", {}, {"epoch": 3}, {}, "none")
    with pytest.raises(ConfigError, match="deploy_target"):
        configure.python_func("paper", {}, {}, {}, "kubernetes")


def test_configure_unset_knobs_keep_the_preset_and_weights_are_required():
    unset = configure.python_func("tiny-cpu", {}, {}, {}, "none")  # every knob at its "-1 / empty" value
    base_m, base_t = preset("tiny-cpu")
    assert from_params(TrainConfig, unset.train_config) == base_t
    assert from_params(ModelConfig, unset.model_config) == base_m
    assert from_params(RenderConfig, unset.render_config) == RenderConfig()
    assert (
        from_params(TrainConfig, configure.python_func("tiny-cpu", {}, {}, {}, "none", lam=0.0).train_config).lam == 0
    )
    with pytest.raises(ConfigError, match="pretrained"):
        configure.python_func("paper", {}, {}, {}, "none")
    ok = configure.python_func("paper", {}, {}, {}, "none", allow_random_weights=True)
    assert from_params(ModelConfig, ok.model_config).clip_model == "ViT-B-16"
    micro = configure.python_func("tiny-cpu", {}, {}, {}, "none", dataset="4dme", protocol="4dme")
    assert from_params(ModelConfig, micro.model_config).micro is True


def test_local_deploy_refused_inside_a_pod(monkeypatch):
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    with pytest.raises(ConfigError, match="kfp.local runs only"):
        configure.python_func("paper", {}, {}, {}, "local")


def test_fingerprint_follows_content(tmp_path):
    (tmp_path / "a.wrl").write_text("x")
    first = fingerprint.python_func(data_uri=str(tmp_path))
    assert first.files == 1 and fingerprint.python_func(data_uri=str(tmp_path)) == first
    (tmp_path / "b.wrl").write_text("y")
    assert fingerprint.python_func(data_uri=str(tmp_path)).fingerprint != first.fingerprint


def _art(cls, tmp_path, name):
    return cls(name=name, uri=str(tmp_path / name))


@pytest.fixture(scope="module")
def steps(synth_root, tmp_path_factory):
    t = tmp_path_factory.mktemp("components")
    index = _art(Dataset, t, "index")
    out = ingest.python_func(
        data_uri=str(synth_root / "bu3dfe"),
        data_fingerprint="f" * 64,
        dataset="bu3dfe",
        protocol="bu3dfe-I",
        n_folds=2,
        seed=0,
        shard_size=16,
        render_tasks=2,
        index=index,
    )
    return t, index, out


def test_ingest(steps):
    _, index, out = steps
    assert out.samples == 4 * 12 and out.is_4d is False and out.fold_ids == [0, 1]
    assert sorted(s for g in out.shard_groups for s in g) == [0, 1, 2]
    assert index.metadata["subjects"] == 4 and len(index.metadata["index_sha256"]) == 64
    assert index.metadata["data_fingerprint"] == "f" * 64


def test_render_rank_pool_merge_features_train_evaluate_register(steps, synth_root, s3):
    t, index, out = steps
    parts3, parts4 = [], []
    for k, group in enumerate(out.shard_groups):
        v3, v4 = _art(Dataset, t, f"r3_{k}"), _art(Dataset, t, f"r4_{k}")
        args = dict(
            index=index,
            data_uri=str(synth_root / "bu3dfe"),
            shards=group,
            render_config=RENDER,
        )
        sheet = _art(HTML, t, f"sheet_{k}")
        render.python_func(**args, views=v3, contact_sheet=sheet)
        page = open(sheet.path).read()  # the KFP UI's HTML viewer: one file, the image inline
        assert page.startswith("<!doctype html>") and "data:image/jpeg;base64," in page and "http" not in page
        rank_pool.python_func(**args, views=v4)
        assert v4.metadata["samples"] == 0  # rank-pool passes over 3D scans
        parts3.append(v3)
        parts4.append(v4)
    views = _art(Dataset, t, "views")
    merge_views.python_func(scans=parts3, sequences=parts4, views=views)
    assert views.metadata["samples"] == 48 and views.metadata["failures"] == 0
    feats = _art(Dataset, t, "features")
    extract_features.python_func(views=views, index=index, model_config=MODEL, train_config=TRAIN, features=feats)
    assert feats.metadata["backbone_weights"] == "random (untrained)"
    models = []
    for fold in out.fold_ids:
        fm, met = _art(Model, t, f"fold{fold}"), _art(Metrics, t, f"met{fold}")
        train_fold.python_func(
            views=views,
            index=index,
            features=feats,
            fold=fold,
            model_config=MODEL,
            train_config=TRAIN,
            fold_model=fm,
            metrics=met,
        )
        assert f"fold{fold}_accuracy" in met.metadata and fm.metadata["fold"] == fold
        models.append(fm)
    table, metrics = _art(Dataset, t, "cv"), _art(Metrics, t, "metrics")
    conf, report = _art(ClassificationMetrics, t, "conf"), _art(HTML, t, "report")
    res = evaluate.python_func(
        fold_models=models, index=index, cv_table=table, metrics=metrics, confusion=conf, report=report
    )
    assert res.best_fold in (0, 1) and 0 <= res.accuracy <= 1
    assert {"accuracy_mean", "accuracy_std", "fold0_accuracy"} <= set(metrics.metadata)
    # the paper's reference and the trivial baseline reach the KFP metrics (issue 10)
    assert "baseline_logreg_accuracy" in metrics.metadata and metrics.metadata["paper_source"]
    assert "random" in metrics.metadata["paper_note"]
    # bu3dfe-I: Table 2's 93.21 and this run's rank among its six published methods + the paper's row
    assert metrics.metadata["paper_accuracy"] == 0.9321 and metrics.metadata["published_count_accuracy"] == 8
    assert 1 <= metrics.metadata["published_rank_accuracy"] <= 8 and metrics.metadata["published_note"]
    assert len(conf.metadata["confusionMatrix"]["rows"]) == 6
    assert "FACET-VLM cross-validation" in open(report.path).read()
    summary = json.loads(open(f"{table.path}/summary.json").read())
    assert summary["folds"] == 2
    # register: the best fold, bundled, with the run's provenance; the same run again registers nothing new
    from components.register import register
    from facet_lib import registry, storage

    got = []
    for run in ("run-a", "run-b"):
        bundle = _art(Model, t, f"bundle-{run}")
        got.append(
            register.python_func(
                views=views,
                index=index,
                fold_models=models,
                best_fold=res.best_fold,
                cv_table=table,
                registry_uri="s3://facet-components/registry",
                model_name="m",
                run_id=run,
                data_fingerprint="f" * 64,
                model=bundle,
            )  # fmt: skip
        )
    assert got[0] == got[1] and bundle.metadata["reused"] is True
    rec = registry.show(got[0].model_uri)
    prov = storage.get_json(f"{got[0].model_uri}/provenance.json")
    assert (prov["dataset"], prov["protocol"], prov["best_fold"]) == ("bu3dfe", "bu3dfe-I", res.best_fold)
    assert prov["folds_sha256"] == hashlib.sha256(open(f"{index.path}/folds.csv", "rb").read()).hexdigest()
    assert rec["metrics"]["accuracy_mean"] == summary["accuracy_mean"] and rec["metrics"]["fold"] == res.best_fold
