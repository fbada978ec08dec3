"""Pipeline steps as plain functions over folders and parameters (no KFP here).

Each Kubeflow component calls exactly one of these, and the CLI calls the same ones (``cv_step``,
``cross_step``, ``export_step``); the same functions run from Python or tests. Data may live in a local
folder or under an ``s3://`` prefix (read with ``facet_lib.storage``). Importing this module loads
neither torch nor the data/render stack: each step imports what it needs, so CPU-only steps
(ingest, render, merge, evaluate) never load torch.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import subprocess
import tempfile
import time
from pathlib import Path

from facet_lib import storage
from facet_lib.config import ModelConfig, RenderConfig, TrainConfig, from_params, resolve_micro, to_dict, to_params
from facet_lib.config.data import DATA
from facet_lib.config.deploy import DEFAULT_ALIAS, DEPLOY_TARGETS
from facet_lib.data.datasets import CROSS_PROTOCOL, is_4d
from facet_lib.errors import ConfigError


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
    shard_size: int = DATA.shard_size,
    parallel: int = DATA.shard_groups,
) -> dict:
    """Index the dataset at ``data_uri`` (native layout), select the protocol, make the folds, plan shards."""
    from facet_lib.data.folds import make_folds, save_folds
    from facet_lib.data.indexers import index_dataset, save_index, select_protocol

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
        "is_4d": is_4d(dataset),
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
    from facet_lib.data.indexers import load_index
    from facet_lib.device import cpu_threads
    from facet_lib.render.dataset import plan_shards, render_dataset

    info = json.loads((Path(index_dir) / "ingest.json").read_text())
    index = load_index(Path(index_dir) / "index.csv")
    cfg = from_params(RenderConfig, render)
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
        workers = workers or cpu_threads()  # a render task shares the CPUs with its loop siblings
        m = render_dataset(
            index, out, cfg, shard_size=info["shard_size"], shards=shards, workers=workers, root=root, progress=True
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


def _configs(model: dict, train: dict, data=None) -> tuple[ModelConfig, TrainConfig]:
    """The KFP/JSON forms of the settings → dataclasses (4DME data switches the prompts to micro)."""
    mcfg, tcfg = from_params(ModelConfig, model), from_params(TrainConfig, train)
    if data is not None and len(data.rows):
        mcfg = resolve_micro(mcfg, dataset=str(data.rows["dataset"].iloc[0]))
    return mcfg, tcfg


def _runner(
    mcfg: ModelConfig, tcfg: TrainConfig, cache: str | Path, shared: str | Path | None = None, in_loop: bool = False
):
    """A Runner over ``cache``; ``shared``: a features folder whose cached states (backbone and baseline
    features) are linked in (read-only). torch's CPU threads: all usable CPUs, or with ``in_loop`` (a task
    of a pipeline loop, run beside its siblings) their share (``facet_lib.device.cpu_threads``)."""
    from facet_lib.device import set_cpu_threads
    from facet_lib.train.cv import Runner

    set_cpu_threads(None if in_loop else 1)
    for pattern in ("hidden-*.safetensors", "baseline-*.npy"):
        for f in Path(shared).glob(pattern) if shared else []:
            (Path(cache) / f.name).symlink_to(f.resolve())
    if tcfg.init_from:  # fine-tuning: the start bundle, verified (``facet_lib.warm_start``)
        from facet_lib.warm_start import load_start

        return Runner(mcfg, tcfg, cache, start=load_start(tcfg.init_from, cache))
    return Runner(mcfg, tcfg, cache)


@_timed
def features_step(views_dir: str | Path, folds_csv: str | Path, model: dict, train: dict, out: str | Path) -> dict:
    """Run the frozen lower backbone blocks once over the dataset, and compute the trivial baseline's view
    features; every fold reuses both (``out``: ``hidden-*.safetensors``, ``baseline-*.npy``)."""
    from facet_lib.train.cv import load_data

    data = load_data(views_dir, folds_csv)
    mcfg, tcfg = _configs(model, train, data)
    runner = _runner(mcfg, tcfg, out)
    h = runner.hidden(runner.model(mcfg), data)
    runner.baseline_features(data)  # the trivial baseline's inputs, once for every fold
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
    """Train and test one fold (``train_one_fold``): ``out`` gets that fold's predictions, trainable
    weights and fold.json — no CV table or plots (``evaluate_step`` writes those)."""
    from facet_lib.train.cv import load_data, train_one_fold

    data = load_data(views_dir, folds_csv)
    mcfg, tcfg = _configs(model, train, data)
    with tempfile.TemporaryDirectory() as cache:
        info = train_one_fold(_runner(mcfg, tcfg, cache, features_dir, in_loop=True), data, fold, out)
    (Path(out) / "checkpoint.pt").unlink(missing_ok=True)  # the artifact holds the model, not the optimizer
    return info


@_timed
def evaluate_step(fold_dirs: list[str], out: str | Path, context: dict | None = None) -> dict:
    """Fan-in over folds: the CV report (``facet_lib.eval.report``: table, best fold, plots, HTML)."""
    from facet_lib.eval.report import write_report

    return write_report(fold_dirs, out, context)


@_timed
def cv_step(
    views_dir: str | Path,
    folds_csv: str | Path,
    model: dict,
    train: dict,
    out: str | Path,
    labels: list[str] | None = None,
    ablations: bool = False,
    protocol: str | None = None,
) -> dict:
    """Cross-validation in one process (the CLI): one backbone and feature cache (``out/cache``) for every
    fold — each fold is ``train_one_fold`` and the report is ``evaluate_step``'s. With ``ablations``
    every variant runs on the same folds. Returns the report summary (``ablation_table`` with ablations)."""
    from facet_lib.train.cv import load_data, run_ablations, run_cv

    data = load_data(views_dir, folds_csv, labels)
    mcfg, tcfg = _configs(model, train, data)
    runner = _runner(mcfg, tcfg, Path(out) / "cache")
    if ablations:
        table = run_ablations(runner, data, out, protocol=protocol)
        return {"ablation_table": table, "backbone_weights": runner.weights}
    context = {"protocol": protocol, "dataset": str(data.rows["dataset"].iloc[0])}
    return run_cv(runner, data, out, context=context)["summary"]


@_timed
def cross_step(
    source_views: str | Path,
    target_views: str | Path,
    label_map: dict[str, str],
    model: dict,
    train: dict,
    out: str | Path,
    ablations: bool = False,
    protocol: str = CROSS_PROTOCOL,
) -> dict:
    """Train on all of ``source_views``, test on ``target_views`` with its labels mapped into the source's.
    With ``ablations``: every ablation variant so (``ablation_table.csv`` with the paper column)."""
    from facet_lib.train.cv import load_data, run_cross, run_cross_ablations

    source = load_data(source_views)
    target = load_data(target_views, labels=sorted(label_map))
    mcfg, tcfg = _configs(model, train, source)
    with tempfile.TemporaryDirectory() as cache:
        runner = _runner(mcfg, tcfg, cache)
        if ablations:
            table = run_cross_ablations(runner, source, target, out, label_map, protocol=protocol)
            return {"ablation_table": table, "backbone_weights": runner.weights}
        return run_cross(runner, source, target, out, label_map, protocol=protocol)


@_timed
def tune_step(
    views_dir: str | Path,
    folds_csv: str | Path,
    model: dict,
    train: dict,
    tune: dict,
    out: str | Path,
    grid: list[float] | None = None,
    labels: list[str] | None = None,
    features_dir: str | Path | None = None,
    report: bool = True,
) -> dict:
    """The λ search of §3.4 (``facet_lib.train.tune``): every fold × λ of ``grid`` (default ``tune.grid``) on
    a validation split inside the training folds. ``report``: also the grid table, selection and plot
    (a pipeline task per λ writes points only; ``tune_report_step`` gathers them)."""
    from facet_lib.config import TuneConfig
    from facet_lib.train.cv import load_data
    from facet_lib.train.tune import run_tune
    from facet_lib.train.tune import tune_report as report_of

    data = load_data(views_dir, folds_csv, labels)
    mcfg, tcfg = _configs(model, train, data)
    tcfg_tune = from_params(TuneConfig, tune)
    with tempfile.TemporaryDirectory() as cache:
        points = run_tune(_runner(mcfg, tcfg, cache, features_dir, in_loop=True), data, out, tcfg_tune, grid=grid)
    if not report:
        return {"points": points}
    return {"points": points, **report_of(points, out, tcfg_tune.metric, list(grid or tcfg_tune.grid))}


@_timed
def tune_report_step(point_dirs: list[str], out: str | Path, tune: dict, grid: list[float] | None = None) -> dict:
    """Fan-in of the λ search: the points of every task → grid table, selected λ, plot, report. ``grid``:
    the search's λ in its order (ties go to the λ first in it); default ``tune.grid``."""
    from facet_lib.config import TuneConfig
    from facet_lib.train.tune import read_points, tune_report

    cfg = from_params(TuneConfig, tune)
    return tune_report(read_points(point_dirs), out, cfg.metric, [float(v) for v in (grid or cfg.grid)])


def views_render(views_dir: str | Path) -> tuple[dict, str]:
    """A rendered dataset's settings and digest, read from its manifest only (no views are loaded)."""
    from facet_lib.render.dataset import RenderedDataset

    m = RenderedDataset(views_dir, verify=False).manifest
    return m["render_config"], m["config_digest"]


def read_fold(fold_dir: str | Path) -> dict:
    p = Path(fold_dir) / "fold.json"
    if not p.exists():
        raise ConfigError(f"{fold_dir}: not a trained fold (no fold.json)")
    return json.loads(p.read_text())


@_timed
def export_step(fold_dir: str | Path, views_dir: str | Path, out: str | Path, extra: dict | None = None) -> dict:
    """Write the serving bundle of one trained fold: the backbone plus the fold's trainable weights, with the
    labels and settings it was trained with (``fold.json``) and the render settings of ``views_dir`` (its
    manifest; the views themselves are not loaded). Returns {"digest", "model", "train", "render", "fold"}."""
    from safetensors.torch import load_file

    from facet_lib.bundle import save_bundle
    from facet_lib.data.labels import model_prompts
    from facet_lib.train.loop import load_trainable_state

    info = read_fold(fold_dir)
    render, digest = views_render(views_dir)
    if info.get("render_digest", digest) != digest:
        raise ConfigError(
            f"{views_dir}: rendered with settings {digest}, but fold {info['fold']} in {fold_dir} was trained on "
            f"{info['render_digest']}"
        )
    mcfg, tcfg = _configs(info["model"], info["train"])
    labels = info["labels"]
    with tempfile.TemporaryDirectory() as cache:
        model = _runner(mcfg, tcfg, cache).model(mcfg)
    load_trainable_state(model, load_file(Path(fold_dir) / "trainable.safetensors"))
    bank = model.build_text_bank(labels, model_prompts(mcfg, labels))
    meta = {"fold": info["fold"], "train": to_params(tcfg), "metrics": info["metrics"], **(extra or {})}
    bundle_digest = save_bundle(out, model.cpu(), bank, render, meta)
    return {"digest": bundle_digest, "model": to_dict(mcfg), "train": to_dict(tcfg), "render": render, **meta}


def git_commit() -> str:
    """The code's commit: GIT_COMMIT when set (the images set it from the build argument; there is no .git
    inside), else the source tree's ``git rev-parse HEAD``."""
    if os.environ.get("GIT_COMMIT"):
        return os.environ["GIT_COMMIT"]
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, cwd=Path(__file__).parent
        ).stdout.strip()
    except Exception:
        return os.environ.get("GIT_COMMIT") or "unknown"


@_timed
def register_step(
    views_dir: str | Path,
    fold_dir: str | Path,
    registry: str,
    name: str,
    run_id: str,
    metrics: dict,
    provenance: dict,
    bundle_out: str | Path,
    alias: str = DEFAULT_ALIAS,
) -> dict:
    """Build the bundle of the chosen fold (``export_step``: labels and settings from its fold.json, render
    settings from the views manifest — memory does not grow with the dataset) and register it."""
    from facet_lib.registry import register

    b = export_step(fold_dir, views_dir, bundle_out, {"metrics": metrics})
    prov = {**provenance, "git_commit": provenance.get("git_commit") or git_commit(), "bundle_digest": b["digest"]}
    params = {"model": b["model"], "train": b["train"], "render": b["render"]}
    key = dedup_key(prov, params)
    return register(bundle_out, registry, name, run_id, metrics, params, prov, alias=alias or None, dedup_key=key)


DEDUP_FIELDS = ("dataset", "protocol", "data_uri", "data_fingerprint", "index_sha256", "folds_sha256", "git_commit")


def dedup_key(provenance: dict, params: dict) -> str | None:
    """What makes a registration new: the data's content fingerprint, the samples and folds, the settings
    and the code. A second run with the same key (a scheduled run on unchanged data) registers nothing.
    None without a data fingerprint (then every run registers, as before)."""
    if not provenance.get("data_fingerprint"):
        return None
    from facet_lib import __version__

    ident = {"provenance": {k: provenance.get(k) for k in DEDUP_FIELDS}, "params": params, "version": __version__}
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()


def data_fingerprint(data_uri: str) -> dict:
    """A content fingerprint of the data at ``data_uri``: SHA-256 over the sorted object listing (key, size,
    ETag) of an s3:// prefix, or (relative path, size, mtime in ns) of a local folder. It changes when any
    file is added, removed or rewritten, and not when nothing did (the scheduled-retraining key)."""
    if storage.is_s3(data_uri):
        rows = [(o["key"], o["size"], o["etag"]) for o in storage.list_objects(data_uri)]
    else:
        root = Path(data_uri)
        if not root.is_dir():
            raise storage.StorageError(f"data_uri {data_uri}: not an s3:// prefix or a local folder")
        rows = [
            (p.relative_to(root).as_posix(), (st := p.stat()).st_size, str(st.st_mtime_ns))
            for p in root.rglob("*")
            if p.is_file()
        ]
    if not rows:
        raise storage.StorageError(f"data_uri {data_uri}: no files found")
    rows.sort()
    digest = hashlib.sha256(json.dumps(rows, separators=(",", ":")).encode()).hexdigest()
    return {"fingerprint": digest, "files": len(rows), "bytes": int(sum(r[1] for r in rows))}


@_timed
def fingerprint_step(data_uri: str) -> dict:
    """The data fingerprint (see ``data_fingerprint``): never cached, it keys every cached step after it."""
    return data_fingerprint(data_uri)


@_timed
def config_step(
    preset_name: str,
    model_overrides: dict,
    train_overrides: dict,
    render_overrides: dict,
    deploy_target: str = "none",
    dataset: str = "",
    protocol: str = "",
    allow_random_weights: bool = False,
    knobs: dict | None = None,
) -> dict:
    """Resolve a run's settings once: a preset, then partial overrides (nested like the dataclasses), then
    ``knobs`` (``{"train.epochs": 5, "render.size": -1, …}``: the pipeline's typed parameters, where "" or a
    negative number means "not set": KFP parameters cannot be empty).
    Returns the KFP forms (``to_params``) every later step takes and the random-weights note (or "").
    Checks: a weight-needing preset without weights is refused unless ``allow_random_weights``; 4DME gets
    the micro-expression prompts; ``deploy_target`` ``local`` starts a server beside the run, which only
    makes sense for kfp.local runs, not in a pod."""
    from facet_lib.config import (
        ModelConfig,
        RenderConfig,
        TrainConfig,
        from_params,
        preset,
        require_weights,
        resolve_micro,
        to_params,
    )
    from facet_lib.errors import ConfigError

    if deploy_target not in DEPLOY_TARGETS:
        raise ConfigError(f"deploy_target: expected one of {list(DEPLOY_TARGETS)}, got {deploy_target!r}")
    if deploy_target == "local" and os.environ.get("KUBERNETES_SERVICE_HOST"):
        raise ConfigError("deploy_target 'local' is for kfp.local runs only; on a cluster use 'kserve' or 'none'")
    over = {"model": dict(model_overrides), "train": dict(train_overrides), "render": dict(render_overrides)}
    for key, v in (knobs or {}).items():
        part, _, name = key.partition(".")
        if part not in over or not name:
            raise ConfigError(f"knob {key!r}: expected model.<key>, train.<key> or render.<key>")
        if not (v == "" or (isinstance(v, (int, float)) and not isinstance(v, bool) and v < 0)):
            over[part][name] = v
    model_overrides, train_overrides, render_overrides = over["model"], over["train"], over["render"]
    mcfg, tcfg = preset(preset_name)
    mcfg = resolve_micro(from_params(ModelConfig, model_overrides, base=mcfg), dataset, protocol)
    tcfg = from_params(TrainConfig, train_overrides, base=tcfg)
    rcfg = from_params(RenderConfig, render_overrides, base=RenderConfig())
    note = require_weights(preset_name, mcfg, allow_random_weights, tcfg.init_from) or ""
    return {"model": to_params(mcfg), "train": to_params(tcfg), "render": to_params(rcfg), "weights_note": note}
