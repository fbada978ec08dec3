"""Runs INSIDE the images (tests/test_images.py mounts this file): each component's Python function on tiny inputs.

    python image_steps.py pipeline WORK DATA_URI   configure, fingerprint, ingest (from S3), render, rank-pool, merge,
                                                   pyrender offscreen render (EGL)
    python image_steps.py train WORK               extract-features, train-fold (fold 0, one epoch)
    python image_steps.py evaluate WORK            evaluate over the trained fold
State between stages lives in WORK/state.json; artifacts are folders under WORK (mounted from the host).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from kfp.dsl import HTML, ClassificationMetrics, Dataset, Metrics, Model


def _art(cls, work: Path, name: str):
    return cls(name=name, uri=str(work / name))


def pipeline_stage(work: Path, data_uri: str) -> dict:
    from components.configure import configure
    from components.fingerprint import fingerprint
    from components.ingest import ingest
    from components.merge_views import merge_views
    from components.rank_pool import rank_pool
    from components.render import render

    settings = configure.python_func(
        preset="tiny-cpu",
        model_overrides={"unfreeze_top": 1},
        train_overrides={"freeze_epochs": 1, "device": "cpu"},
        render_overrides={},
        deploy_target="none",
        epochs=1,
        render_size=64,
        frames=4,
    )
    fp = fingerprint.python_func(data_uri=data_uri)
    index = _art(Dataset, work, "index")
    out = ingest.python_func(
        data_uri=data_uri,
        data_fingerprint=fp.fingerprint,
        dataset="bu3dfe",
        protocol="bu3dfe-I",
        n_folds=2,
        seed=0,
        shard_size=16,
        render_tasks=2,
        index=index,
    )
    parts3, parts4 = [], []
    for k, group in enumerate(out.shard_groups):
        v3, v4 = _art(Dataset, work, f"r3_{k}"), _art(Dataset, work, f"r4_{k}")
        args = dict(index=index, data_uri=data_uri, shards=group, render_config=settings.render_config)
        render.python_func(**args, views=v3, contact_sheet=_art(HTML, work, f"sheet_{k}"))
        rank_pool.python_func(**args, views=v4)
        parts3.append(v3)
        parts4.append(v4)
    views = _art(Dataset, work, "views")
    merge_views.python_func(scans=parts3, sequences=parts4, views=views)

    import numpy as np
    import pyrender
    import trimesh

    r = pyrender.OffscreenRenderer(32, 32)  # the reference backend: EGL + Mesa llvmpipe inside the image
    scene = pyrender.Scene()
    scene.add(pyrender.Mesh.from_trimesh(trimesh.creation.box()))
    scene.add(
        pyrender.PerspectiveCamera(yfov=1.0), pose=np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 3], [0, 0, 0, 1.0]])
    )
    color, _ = r.render(scene)
    r.delete()
    state = {
        "model_config": settings.model_config,
        "train_config": settings.train_config,
        "fingerprint": fp.fingerprint,
        "samples": out.samples,
        "fold_ids": out.fold_ids,
        "views_samples": views.metadata.get("samples"),
        "views_failures": views.metadata.get("failures"),
        "pyrender": {"version": pyrender.__version__, "shape": list(color.shape), "lit": int((color > 0).any())},
    }
    return state


def train_stage(work: Path, state: dict) -> dict:
    from components.extract_features import extract_features
    from components.train_fold import train_fold

    index, views = _art(Dataset, work, "index"), _art(Dataset, work, "views")
    feats = _art(Dataset, work, "features")
    mc, tc = state["model_config"], state["train_config"]
    extract_features.python_func(views=views, index=index, model_config=mc, train_config=tc, features=feats)
    fm, met = _art(Model, work, "fold0"), _art(Metrics, work, "met0")
    train_fold.python_func(
        views=views, index=index, features=feats, fold=0, model_config=mc, train_config=tc, fold_model=fm, metrics=met
    )
    return {"fold0_metrics": dict(met.metadata), "features_files": sorted(os.listdir(feats.path))}


def evaluate_stage(work: Path) -> dict:
    from components.evaluate import evaluate

    table, metrics = _art(Dataset, work, "cv"), _art(Metrics, work, "metrics")
    conf, report = _art(ClassificationMetrics, work, "conf"), _art(HTML, work, "report")
    res = evaluate.python_func(
        fold_models=[_art(Model, work, "fold0")],
        index=_art(Dataset, work, "index"),
        cv_table=table,
        metrics=metrics,
        confusion=conf,
        report=report,
    )
    return {"best_fold": res.best_fold, "accuracy": res.accuracy, "report_bytes": Path(report.path).stat().st_size}


def main(argv: list[str]) -> None:
    stage, work = argv[0], Path(argv[1])
    state_file = work / "state.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    if stage == "pipeline":
        state["pipeline"] = pipeline_stage(work, argv[2])
        state.update(model_config=state["pipeline"]["model_config"], train_config=state["pipeline"]["train_config"])
    elif stage == "train":
        state["train"] = train_stage(work, state)
    elif stage == "evaluate":
        state["evaluate"] = evaluate_stage(work)
    else:
        raise SystemExit(f"unknown stage {stage!r}: expected pipeline, train or evaluate")
    state.setdefault("uid", {})[stage] = os.getuid()
    state_file.write_text(json.dumps(state, indent=1, default=str))
    print(f"image_steps {stage}: ok")


if __name__ == "__main__":
    main(sys.argv[1:])
