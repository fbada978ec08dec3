"""Pipeline steps as plain functions over folders and parameters (no KFP here).

Each Kubeflow component calls exactly one of these; the same functions run from Python or tests.
Data may live in a local folder or under an ``s3://`` prefix (read with ``facet_lib.storage``).
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import json
import math
import os
import subprocess
import tempfile
import time
from pathlib import Path

import pandas as pd

from facet_lib import storage
from facet_lib.data.folds import make_folds, save_folds
from facet_lib.data.indexers import index_dataset, load_index, save_index, select_protocol
from facet_lib.models.model import ModelConfig
from facet_lib.render.config import RenderConfig
from facet_lib.train.config import TrainConfig, from_dict

FOUR_D = {"bu4dfe", "bp4d", "4dme"}


def _timed(fn):
    """Append {"step", "seconds"} to the JSONL file named by FACET_STEP_TIMINGS, when set (benchmarks)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            path = os.environ.get("FACET_STEP_TIMINGS")
            if path:
                with open(path, "a") as f:
                    f.write(json.dumps({"step": fn.__name__, "seconds": time.perf_counter() - t0}) + "\n")

    return wrapper


def _local_root(data_uri: str, work: Path) -> Path:
    if storage.is_s3(data_uri):
        return storage.download_prefix(data_uri, work / "raw")
    p = Path(data_uri)
    if not p.is_dir():
        raise storage.StorageError(f"data_uri {data_uri}: not an s3:// prefix or a local folder")
    return p


@_timed
def ingest_step(
    data_uri: str,
    dataset: str,
    protocol: str,
    k: int,
    seed: int,
    out: str | Path,
    shard_size: int = 64,
    parallel: int = 4,
) -> dict:
    """Index the dataset at ``data_uri`` (native layout), select the protocol, make the folds, plan shards."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        root = _local_root(data_uri, Path(work))
        res = index_dataset(dataset, root)
    df, labels = select_protocol(res.index, protocol)
    save_index(df, out / "index.csv")
    res.quarantine.to_csv(out / "quarantine.csv", index=False)
    save_folds(make_folds(df, k, seed), out / "folds.csv")
    n_shards = max(1, math.ceil(len(df) / shard_size))
    groups = [list(range(g, n_shards, parallel)) for g in range(min(parallel, n_shards))]
    info = {
        "dataset": dataset,
        "protocol": protocol,
        "data_uri": data_uri,
        "samples": len(df),
        "subjects": int(df["subject"].nunique()),
        "labels": labels,
        "is_4d": dataset in FOUR_D,
        "quarantined": len(res.quarantine),
        "shard_size": shard_size,
        "shard_groups": groups,
        "fold_ids": list(range(k)),
        "index_sha256": hashlib.sha256((out / "index.csv").read_bytes()).hexdigest(),
    }
    (out / "ingest.json").write_text(json.dumps(info, indent=1))
    return info


@_timed
def render_step(
    index_dir: str | Path,
    data_uri: str,
    shards: list[int],
    render: dict,
    out: str | Path,
    kind: str = "all",
    workers: int = 0,
) -> dict:
    """Render some shards of an ingested index; 4D sequences become per-view dynamic images.

    ``kind``: "scans" renders only 3D scans, "sequences" only 4D sequences (each yields an empty
    dataset for the other kind, so one DAG serves both without conditional branches), "all" both.
    From S3 only the files of these shards (and their side files) are downloaded."""
    from facet_lib.render.dataset import plan_shards, render_dataset

    info = json.loads((Path(index_dir) / "ingest.json").read_text())
    index = load_index(Path(index_dir) / "index.csv")
    cfg = RenderConfig.from_dict(render)
    is_seq = index["frames"].map(bool)
    index = index[~is_seq] if kind == "scans" else index[is_seq] if kind == "sequences" else index
    with tempfile.TemporaryDirectory() as work:
        root = Path(data_uri) if not storage.is_s3(data_uri) else Path(work) / "raw"
        if storage.is_s3(data_uri):  # fetch this task's scans and their side files (texture, landmarks)
            wanted = {
                str(Path(f).with_suffix(""))
                for p in plan_shards(index, cfg, info["shard_size"], root=root)
                if p.shard in set(shards)
                for _, r in p.rows.iterrows()
                for f in (r["frames"] or [r["path"]])
            }
            keys = [k for k in storage.list_keys(data_uri) if str(Path(k).with_suffix("")) in wanted]
            storage.download_prefix(data_uri, root, only=keys)
        m = render_dataset(
            index, out, cfg, shard_size=info["shard_size"], shards=shards, workers=workers, root=root, progress=False
        )
    return {"samples": m["samples"], "failures": m["failures"], **m.get("last_run", {})}


@_timed
def merge_step(parts: list[str], out: str | Path) -> dict:
    from facet_lib.render.contact_sheet import contact_sheet
    from facet_lib.render.dataset import merge_rendered

    m = merge_rendered(parts, out)
    if m["samples"]:
        contact_sheet(out, Path(out) / "contact_sheet.png")
    return {"samples": m["samples"], "failures": len(m["failures"]), "shards": len(m["shards"])}


def _configs(model: dict, train: dict) -> tuple[ModelConfig, TrainConfig]:
    # KFP parameters cannot hold None: an empty string means "not given"
    model = {k: (None if v == "" and k in ("pretrained", "checkpoint") else v) for k, v in model.items()}
    return from_dict(ModelConfig, model), from_dict(TrainConfig, train)


@_timed
def features_step(views_dir: str | Path, folds_csv: str | Path, model: dict, train: dict, out: str | Path) -> dict:
    """Run the frozen lower backbone blocks once over the dataset; every fold reuses the result."""
    from facet_lib.train.cv import Runner, load_data

    mcfg, tcfg = _configs(model, train)
    data = load_data(views_dir, folds_csv)
    runner = Runner(mcfg, tcfg, out, progress=False)
    h = runner.hidden(runner.model(mcfg), data)
    return {"samples": int(h.shape[0]), "shape": list(h.shape), "backbone_weights": runner.weights}


@_timed
def train_fold_step(
    views_dir: str | Path,
    folds_csv: str | Path,
    features_dir: str | Path,
    fold: int,
    model: dict,
    train: dict,
    out: str | Path,
) -> dict:
    """Train and test one fold; writes predictions, trainable weights and metrics under ``out``."""
    import shutil

    from facet_lib.eval.metrics import fold_metrics
    from facet_lib.train.cv import Runner, load_data, run_cv

    mcfg, tcfg = _configs(model, train)
    data = load_data(views_dir, folds_csv)
    with tempfile.TemporaryDirectory() as cache:
        for f in Path(features_dir).glob("hidden-*.safetensors"):  # the shared cache, read-only input
            (Path(cache) / f.name).symlink_to(f.resolve())
        runner = Runner(mcfg, tcfg, cache, progress=False)
        res = run_cv(runner, data, out, name=f"fold {fold}", folds=[fold])
    shutil.move(str(Path(out) / f"fold_{fold}" / "predictions.csv"), Path(out) / "predictions.csv")
    shutil.move(str(Path(out) / f"fold_{fold}" / "trainable.safetensors"), Path(out) / "trainable.safetensors")
    m = {k: v for k, v in fold_metrics(res["preds"][fold], data.labels).items() if k != "confusion"}
    lf = fold_metrics(res["preds"][fold], data.labels, "label_free")
    info = {
        "fold": fold,
        "labels": data.labels,
        "metrics": m,
        "label_free_accuracy": lf["accuracy"],
        "backbone_weights": runner.weights,
        "history": res["history"][fold],
    }
    (Path(out) / "fold.json").write_text(json.dumps(info, indent=1))
    return info


def _img(path: Path) -> str:
    return f'<img src="data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}" style="max-width:48%">'


@_timed
def evaluate_step(fold_dirs: list[str], out: str | Path) -> dict:
    """Fan-in over folds: the CV table, pooled confusion matrix, plots and an HTML report.

    Best fold (what ``register`` ships): the highest held-out accuracy, class-conditional mode. The
    reported CV score is the mean over all folds, not the best fold's."""
    from facet_lib.eval.metrics import cv_table, pooled_confusion
    from facet_lib.eval.plots import confusion_plot, per_fold_plot

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    infos = [json.loads((Path(d) / "fold.json").read_text()) for d in fold_dirs]
    labels = infos[0]["labels"]
    preds = {
        i["fold"]: pd.read_csv(Path(d) / "predictions.csv", dtype={"subject": str, "label": str})
        for i, d in zip(infos, fold_dirs)
    }
    table = cv_table(preds, labels)
    table.to_csv(out / "cv_table.csv", index=False)
    cm = pooled_confusion(preds, labels)
    weights = infos[0]["backbone_weights"]
    note = (
        " — random backbone weights: shows the pipeline works, not the paper's accuracy" if "random" in weights else ""
    )
    confusion_plot(
        cm,
        labels,
        out / "confusion.png",
        f"pooled confusion, {len(preds)} folds" + (" (random backbone)" if note else ""),
    )
    per_fold_plot(table, out / "per_fold_accuracy.png", "accuracy per held-out fold", chance=1 / len(labels))
    t = table.set_index(["mode", "fold"])
    best = max(infos, key=lambda i: i["metrics"]["accuracy"])
    summary = {
        "labels": labels,
        "folds": len(preds),
        "best_fold": best["fold"],
        "best_fold_dir": fold_dirs[infos.index(best)],
        "backbone_weights": weights,
        "accuracy_mean": float(t.loc[("class_conditional", "mean"), "accuracy"]),
        "accuracy_std": float(t.loc[("class_conditional", "std"), "accuracy"]),
        "macro_f1_mean": float(t.loc[("class_conditional", "mean"), "macro_f1"]),
        "label_free_accuracy_mean": float(t.loc[("label_free", "mean"), "accuracy"]),
        "per_fold_accuracy": {str(i["fold"]): i["metrics"]["accuracy"] for i in infos},
        "confusion": cm.tolist(),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    html = [
        "<html><body><h1>FACET-VLM cross-validation</h1>",
        f"<p>Backbone weights: {weights}{note}</p>",
        f"<p>Accuracy {summary['accuracy_mean']:.3f} ± {summary['accuracy_std']:.3f} (class-conditional), "
        f"label-free {summary['label_free_accuracy_mean']:.3f}; best fold {best['fold']}</p>",
        _img(out / "confusion.png"),
        _img(out / "per_fold_accuracy.png"),
        table.round(4).to_html(index=False),
        "</body></html>",
    ]
    (out / "report.html").write_text("\n".join(html))
    return summary


@_timed
def cross_step(
    source_views: str | Path,
    target_views: str | Path,
    label_map: dict[str, str],
    model: dict,
    train: dict,
    out: str | Path,
) -> dict:
    from facet_lib.train.cv import Runner, load_data, run_cross

    mcfg, tcfg = _configs(model, train)
    source = load_data(source_views)
    target = load_data(target_views, labels=sorted(label_map))
    with tempfile.TemporaryDirectory() as cache:
        return run_cross(Runner(mcfg, tcfg, cache, progress=False), source, target, out, label_map)


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, cwd=Path(__file__).parent
        ).stdout.strip()
    except Exception:
        return "unknown"


@_timed
def register_step(
    views_dir: str | Path,
    folds_csv: str | Path,
    fold_dir: str | Path,
    fold: int,
    model: dict,
    train: dict,
    registry: str,
    name: str,
    run_id: str,
    metrics: dict,
    provenance: dict,
    bundle_out: str | Path,
    alias: str = "production",
) -> dict:
    """Build the bundle of the chosen fold and register it in the S3 registry."""
    from facet_lib.registry import register
    from facet_lib.train.cv import Runner, bundle_from_trainable, load_data

    mcfg, tcfg = _configs(model, train)
    data = load_data(views_dir, folds_csv)
    with tempfile.TemporaryDirectory() as cache:
        runner = Runner(mcfg, tcfg, cache, progress=False)
        digest = bundle_from_trainable(
            runner, mcfg, Path(fold_dir) / "trainable.safetensors", data, bundle_out, {"fold": fold, "metrics": metrics}
        )
    prov = {**provenance, "git_commit": provenance.get("git_commit") or git_commit(), "bundle_digest": digest}
    params = {"model": dataclasses.asdict(mcfg), "train": dataclasses.asdict(tcfg), "render": data.render}
    return register(bundle_out, registry, name, run_id, metrics, params, prov, alias=alias or None)
