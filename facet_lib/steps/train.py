"""The training half: the shared backbone features, one fold, cross-validation and cross-dataset runs in
one process (the CLI), the λ search, and the run's settings resolved once (``config_step``)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from facet_lib.config import from_params, to_params
from facet_lib.config.deploy import DEPLOY_TARGETS
from facet_lib.data.datasets import CROSS_PROTOCOL
from facet_lib.errors import ConfigError
from facet_lib.steps.common import configs, make_runner, timed


@timed
def features_step(views_dir: str | Path, folds_csv: str | Path, model: dict, train: dict, out: str | Path) -> dict:
    """Run the frozen lower backbone blocks once over the dataset, and compute the trivial baseline's view
    features; every fold reuses both (``out``: ``hidden-*.safetensors``, ``baseline-*.npy``)."""
    from facet_lib.train.shared import load_data

    data = load_data(views_dir, folds_csv)
    mcfg, tcfg = configs(model, train, data)
    runner = make_runner(mcfg, tcfg, out)
    h = runner.hidden(runner.model(mcfg), data)
    runner.baseline_features(data)  # the trivial baseline's inputs, once for every fold
    return {"samples": int(h.shape[0]), "shape": list(h.shape), "backbone_weights": runner.weights}


@timed
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
    from facet_lib.train.protocols import train_one_fold
    from facet_lib.train.shared import load_data

    data = load_data(views_dir, folds_csv)
    mcfg, tcfg = configs(model, train, data)
    with tempfile.TemporaryDirectory() as cache:
        info = train_one_fold(make_runner(mcfg, tcfg, cache, features_dir, in_loop=True), data, fold, out)
    (Path(out) / "checkpoint.pt").unlink(missing_ok=True)  # the artifact holds the model, not the optimizer
    return info


@timed
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
    from facet_lib.train.protocols import run_ablations, run_cv
    from facet_lib.train.shared import load_data

    data = load_data(views_dir, folds_csv, labels)
    mcfg, tcfg = configs(model, train, data)
    runner = make_runner(mcfg, tcfg, Path(out) / "cache")
    if ablations:
        table = run_ablations(runner, data, out, protocol=protocol)
        return {"ablation_table": table, "backbone_weights": runner.weights}
    context = {"protocol": protocol, "dataset": str(data.rows["dataset"].iloc[0])}
    return run_cv(runner, data, out, context=context)["summary"]


@timed
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
    from facet_lib.train.protocols import run_cross, run_cross_ablations
    from facet_lib.train.shared import load_data

    source = load_data(source_views)
    target = load_data(target_views, labels=sorted(label_map))
    mcfg, tcfg = configs(model, train, source)
    with tempfile.TemporaryDirectory() as cache:
        runner = make_runner(mcfg, tcfg, cache)
        if ablations:
            table = run_cross_ablations(runner, source, target, out, label_map, protocol=protocol)
            return {"ablation_table": table, "backbone_weights": runner.weights}
        return run_cross(runner, source, target, out, label_map, protocol=protocol)


@timed
def cross_dataset_step(
    source_views: str | Path,
    target_views: str | Path,
    label_map: dict[str, str],
    model: dict,
    train: dict,
    out: str | Path,
    protocol: str = CROSS_PROTOCOL,
) -> dict:
    """The pipeline's cross-dataset task: ``cross_step``, plus the ``scalars`` its metrics show (accuracy and
    macro-F1 over the target's and over all source classes, the paper's Table 4(b) number beside ours, this
    run among the published methods) and ``scalar_notes`` (their sources, the backbone weights)."""
    from facet_lib.eval.targets import paper_metrics

    res = cross_step(source_views, target_views, label_map, model, train, out, protocol=protocol)
    scalars = {f"{scope}_{k}": m[k] for scope, m in res.items() for k in ("accuracy", "macro_f1")}
    s = json.loads((Path(out) / "cross_summary.json").read_text())
    paper, notes = paper_metrics(s["comparison"], s.get("standing"))
    return {
        "results": res,
        "scalars": {**scalars, **paper},
        "scalar_notes": {**notes, "backbone_weights": s["backbone_weights"]},
    }


@timed
def ablations_step(views_dir: str | Path, index_dir: str | Path, model: dict, train: dict, out: str | Path) -> dict:
    """The pipeline's ablation task: every variant of §4.4 (``cv_step`` with ``ablations``) on the folds of
    the ingest folder ``index_dir``, with its protocol's paper column. Returns {"protocol", "backbone_weights"}."""
    protocol = json.loads((Path(index_dir) / "ingest.json").read_text())["protocol"]
    res = cv_step(views_dir, Path(index_dir) / "folds.csv", model, train, out, ablations=True, protocol=protocol)
    return {"protocol": protocol, "backbone_weights": res["backbone_weights"]}


@timed
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
    from facet_lib.train.shared import load_data
    from facet_lib.train.tune import run_tune
    from facet_lib.train.tune import tune_report as report_of

    data = load_data(views_dir, folds_csv, labels)
    mcfg, tcfg = configs(model, train, data)
    tcfg_tune = from_params(TuneConfig, tune)
    with tempfile.TemporaryDirectory() as cache:
        points = run_tune(make_runner(mcfg, tcfg, cache, features_dir, in_loop=True), data, out, tcfg_tune, grid=grid)
    if not report:
        return {"points": points}
    return {"points": points, **report_of(points, out, tcfg_tune.metric, list(grid or tcfg_tune.grid))}


@timed
def tune_report_step(point_dirs: list[str], out: str | Path, tune: dict, grid: list[float] | None = None) -> dict:
    """Fan-in of the λ search: the points of every task → grid table, selected λ, plot, report. ``grid``:
    the search's λ in its order (ties go to the λ first in it); default ``tune.grid``. Also ``scalars``
    (each λ's mean validation score, the majority baseline, each fold's and the mean's selected λ beside
    the paper's) and ``scalar_notes``."""
    from facet_lib.config import TuneConfig
    from facet_lib.train.tune import read_points, tune_report

    cfg = from_params(TuneConfig, tune)
    s = tune_report(read_points(point_dirs), out, cfg.metric, [float(v) for v in (grid or cfg.grid)])
    mean = s["table"].loc["mean"]
    scalars = {f"val_mean_lam_{lam:g}": float(mean[lam]) for lam in s["grid"]}
    scalars["val_majority_baseline"] = float(mean["majority_baseline"])
    scalars.update({f"fold{fold}_selected_lam": lam for fold, lam in s["per_fold"].items()})
    scalars.update({"best_mean_lam": s["best_mean_lam"], "paper_lam": s["paper_lam"]})
    return {**s, "scalars": scalars, "scalar_notes": {"backbone_weights": s["backbone_weights"]}}


@timed
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
    """The pipeline's settings step: ``facet_lib.config.resolve.resolve_settings`` over a preset, partial
    overrides (nested like the dataclasses) and the typed ``knobs`` (``facet_lib.config.knobs``). Returns the
    KFP forms (``to_params``) every later step takes and the random-weights note (or ""). ``deploy_target``
    ``local`` starts a server beside the run, which only makes sense for kfp.local runs, not in a pod."""
    from facet_lib.config.resolve import resolve_settings

    if deploy_target not in DEPLOY_TARGETS:
        raise ConfigError(f"deploy_target: expected one of {list(DEPLOY_TARGETS)}, got {deploy_target!r}")
    if deploy_target == "local" and os.environ.get("KUBERNETES_SERVICE_HOST"):
        raise ConfigError("deploy_target 'local' is for kfp.local runs only; on a cluster use 'kserve' or 'none'")
    over = {"model": model_overrides, "train": train_overrides, "render": render_overrides}
    s = resolve_settings(preset_name, over, knobs, dataset=dataset, protocol=protocol,
                         allow_random_weights=allow_random_weights)  # fmt: skip
    return {
        "model": to_params(s.model),
        "train": to_params(s.train),
        "render": to_params(s.render),
        "weights_note": s.note,
    }
