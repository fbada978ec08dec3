"""Each component's Python function on tiny inputs, with local artifacts (no runner)."""

import json

import pytest
from kfp.dsl import HTML, ClassificationMetrics, Dataset, Metrics, Model

from components.evaluate import evaluate
from components.extract_features import extract_features
from components.ingest import ingest
from components.merge_views import merge_views
from components.rank_pool import rank_pool
from components.render import render
from components.train_fold import train_fold

MODEL = {"clip_model": "facet-tiny", "pretrained": "", "checkpoint": "", "unfreeze_top": 1}
TRAIN = {"epochs": 1, "freeze_epochs": 1, "lr": 0.003, "device": "cpu"}


def _art(cls, tmp_path, name):
    return cls(name=name, uri=str(tmp_path / name))


@pytest.fixture(scope="module")
def steps(synth_root, tmp_path_factory):
    t = tmp_path_factory.mktemp("components")
    index = _art(Dataset, t, "index")
    out = ingest.python_func(
        data_uri=str(synth_root / "bu3dfe"),
        dataset="bu3dfe",
        protocol="bu3dfe-I",
        n_folds=2,
        seed=0,
        shard_size=16,
        parallel=2,
        index=index,
    )
    return t, index, out


def test_ingest(steps):
    _, index, out = steps
    assert out.samples == 4 * 12 and out.is_4d is False and out.fold_ids == [0, 1]
    assert sorted(s for g in out.shard_groups for s in g) == [0, 1, 2]
    assert index.metadata["subjects"] == 4 and len(index.metadata["index_sha256"]) == 64


def test_render_rank_pool_merge_features_train_evaluate(steps, synth_root):
    t, index, out = steps
    parts3, parts4 = [], []
    for k, group in enumerate(out.shard_groups):
        v3, v4 = _art(Dataset, t, f"r3_{k}"), _art(Dataset, t, f"r4_{k}")
        args = dict(
            index=index,
            data_uri=str(synth_root / "bu3dfe"),
            shards=group,
            mode="shaded",
            size=64,
            frames=4,
            temporal="rankpool",
        )
        render.python_func(**args, views=v3)
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
    res = evaluate.python_func(fold_models=models, cv_table=table, metrics=metrics, confusion=conf, report=report)
    assert res.best_fold in (0, 1) and 0 <= res.accuracy <= 1
    assert {"accuracy_mean", "accuracy_std", "fold0_accuracy"} <= set(metrics.metadata)
    assert len(conf.metadata["confusionMatrix"]["rows"]) == 6
    assert "FACET-VLM cross-validation" in open(report.path).read()
    summary = json.loads(open(f"{table.path}/summary.json").read())
    assert summary["folds"] == 2
