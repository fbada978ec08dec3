"""The evaluation protocols over a shared backbone (``facet_lib.train.shared.Runner``): one CV fold,
K-fold subject-independent cross-validation, the ablation variants, cross-dataset testing and its
ablations.

Every run writes next to its outputs: ``config.json`` (resolved model/train/render settings and the
backbone's weights — "random (untrained)" when no pretrained weights were given), one folder per fold
(``train_one_fold``: predictions, trainable weights, fold.json) and the CV report (``eval.report``).
Bundles are built from a trained fold by ``facet_lib.steps.export_step`` (train/ never imports bundle).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from safetensors.torch import save_file

from facet_lib.config import ModelConfig, TrainConfig, to_params
from facet_lib.data.datasets import CROSS_PROTOCOL
from facet_lib.data.folds import split
from facet_lib.errors import ConfigError
from facet_lib.eval.baseline import baseline_cross, baseline_fold
from facet_lib.eval.fig4 import write_ablation_meta
from facet_lib.eval.metrics import cv_table, fold_metrics
from facet_lib.eval.report import read_folds, report_of_folds, write_cross_report
from facet_lib.eval.targets import with_paper_column
from facet_lib.train import shared
from facet_lib.train.loop import trainable_state
from facet_lib.train.shared import Data, Runner, write_config
from facet_lib.train.variants import ablation_variants, note_skipped


def train_one_fold(
    runner: Runner,
    data: Data,
    fold: int,
    out: str | Path,
    model_cfg: ModelConfig | None = None,
    train_cfg: TrainConfig | None = None,
    desc: str | None = None,
) -> dict:
    """Train on every fold but ``fold`` and test on it. Writes that fold's model and predictions only:
    ``predictions.csv``, ``trainable.safetensors``, ``fold.json`` (metrics, history, settings) and, while
    training, ``checkpoint.pt`` (an interrupted fold resumes from it). Returns the ``fold.json`` content."""
    out = Path(out)
    model_cfg, train_cfg = model_cfg or runner.model_cfg, train_cfg or runner.train_cfg
    if "fold" not in data.rows:
        raise ConfigError("cross-validation needs folds (pass a folds file)")
    rows = data.rows.assign(fold=data.rows["fold"].astype(int))
    if fold not in set(rows["fold"]):
        raise ConfigError(f"fold {fold}: not in the folds file (folds {sorted(set(rows['fold']))})")
    out.mkdir(parents=True, exist_ok=True)
    tr, te = split(rows, fold)
    tr_idx, te_idx = tr.index.to_numpy(), te.index.to_numpy()
    if not len(tr_idx) or not len(te_idx):
        raise ConfigError(f"fold {fold}: {len(tr_idx)} training and {len(te_idx)} test samples; both must be > 0")
    model, history, preds = shared.fit_and_score(
        runner, data, tr_idx, te_idx, model_cfg, train_cfg, out / "checkpoint.pt", desc or f"fold {fold}"
    )
    preds.to_csv(out / "predictions.csv", index=False)
    # the trivial baseline on the same split (logistic regression on 32x32 grey views), for the report
    baseline_fold(runner.baseline_features(data), rows, fold, seed=train_cfg.seed).to_csv(
        out / "baseline_predictions.csv", index=False
    )
    save_file({k: v.contiguous() for k, v in trainable_state(model).items()}, out / "trainable.safetensors")
    info = {
        "fold": fold,
        "labels": data.labels,
        "metrics": {k: v for k, v in fold_metrics(preds, data.labels).items() if k != "confusion"},
        "label_free_accuracy": fold_metrics(preds, data.labels, "label_free")["accuracy"],
        "backbone_weights": runner.weights,
        "render_digest": data.render_digest,
        "model": to_params(model_cfg),
        "train": to_params(train_cfg),
        "history": history,
    }
    (out / "fold.json").write_text(json.dumps(info, indent=1))
    return info


def run_cv(
    runner: Runner,
    data: Data,
    out: str | Path,
    model_cfg: ModelConfig | None = None,
    train_cfg: TrainConfig | None = None,
    name: str = "full",
    folds: list[int] | None = None,
    context: dict | None = None,
) -> dict:
    """Every fold (``train_one_fold`` into ``out/fold_<k>``), then the CV report (``eval.report``).
    Returns {"table", "preds", "best_fold", "history", "summary"}."""
    out = Path(out)
    model_cfg, train_cfg = model_cfg or runner.model_cfg, train_cfg or runner.train_cfg
    if "fold" not in data.rows:
        raise ConfigError("cross-validation needs folds (pass a folds file)")
    write_config(out, runner, model_cfg, train_cfg, data, {"variant": name})
    fold_ids = sorted(int(f) for f in data.rows["fold"].unique()) if folds is None else folds
    t0, dirs = time.perf_counter(), [out / f"fold_{f}" for f in fold_ids]
    for f, d in zip(fold_ids, dirs):
        train_one_fold(runner, data, f, d, model_cfg, train_cfg, desc=f"{name} fold {f}")
    infos, preds = read_folds(dirs)  # once: the report and the table below both use them
    ctx = {**(context or {}), "variant": name, "seconds": round(time.perf_counter() - t0, 1)}
    summary = report_of_folds(infos, preds, dirs, out, ctx)
    table = cv_table(preds, data.labels)  # the folds' rows (cv_table.csv also has the reference rows)
    history = {int(k): v for k, v in summary["history"].items()}
    return {"table": table, "preds": preds, "best_fold": summary["best_fold"], "history": history, "summary": summary}


def run_ablations(
    runner: Runner, data: Data, out: str | Path, variants: list[str] | None = None, protocol: str | None = None
) -> pd.DataFrame:
    """Every variant's CV on the same folds and the same cached features; one table (with the paper's
    Fig. 3 value per variant for ``protocol``) and heatmaps (absolute, and difference to ``full``)."""
    out = Path(out)
    rows = []
    todo, skipped = ablation_variants(runner.model_cfg, runner.train_cfg, variants)
    note_skipped(out, skipped)
    for v, mcfg, tcfg in todo:
        res = run_cv(runner, data, out / v, mcfg, tcfg, name=v)
        t = res["table"].set_index(["mode", "fold"])
        rows.append(
            {
                "variant": v,
                "accuracy": t.loc[("class_conditional", "mean"), "accuracy"],
                "accuracy_std": t.loc[("class_conditional", "std"), "accuracy"],
                "macro_f1": t.loc[("class_conditional", "mean"), "macro_f1"],
                "label_free_accuracy": t.loc[("label_free", "mean"), "accuracy"],
                **{f"f1_{lab}": t.loc[("class_conditional", "mean"), f"f1_{lab}"] for lab in data.labels},
            }
        )
    table = pd.DataFrame(rows).set_index("variant")
    table = _ablation_outputs(table, table.drop(columns=["accuracy_std"]), out, "ablations", protocol, runner.weights)
    table.attrs["skipped"] = skipped
    return table


def _ablation_outputs(
    table: pd.DataFrame, heat: pd.DataFrame, out: Path, title: str, protocol: str | None, weights: str
) -> pd.DataFrame:
    """``ablation_table.csv`` (with the paper column) and the heatmaps (absolute, and vs ``full``)."""
    table = with_paper_column(table, protocol, weights)
    table.to_csv(out / "ablation_table.csv")
    write_ablation_meta(out, protocol, weights)  # the setting, for `facet-vlm fig4`
    from facet_lib.eval.plots import ablation_heatmap  # matplotlib: not for the fold tasks

    ablation_heatmap(heat, out / "ablation_heatmap.png", f"{title} (class-conditional unless noted)")
    if "full" in heat.index and len(heat) > 1:
        ablation_heatmap(heat, out / "ablation_heatmap_diff.png", title, reference="full")
    return table


def run_cross(
    runner: Runner,
    source: Data,
    target: Data,
    out: str | Path,
    label_map: dict[str, str],
    protocol: str | None = CROSS_PROTOCOL,
    variant: str = "full",
    model_cfg: ModelConfig | None = None,
    train_cfg: TrainConfig | None = None,
) -> dict:
    """Train on all of ``source``; test on ``target`` with its labels mapped into the source's (settings:
    ``model_cfg``/``train_cfg``, default the runner's; an ablation variant passes its own).

    Reported twice: over the target's classes only (e.g. happy vs disgust for BP4D T1/T8) and over
    all source classes; ``cross_report.md``/``cross_summary.json`` put the paper's number for
    ``protocol``/``variant`` beside it (``eval.report.write_cross_report``)."""
    out = Path(out)
    model_cfg, train_cfg = model_cfg or runner.model_cfg, train_cfg or runner.train_cfg
    write_config(out, runner, model_cfg, train_cfg, source, {"target_render": target.render, "label_map": label_map})
    mapped = target.rows["label"].map(label_map)
    if mapped.isna().any():
        missing = sorted(set(target.rows.loc[mapped.isna(), "label"]))
        raise ConfigError(f"label map has no entry for target label(s) {missing}")
    if not set(mapped) <= set(source.labels):
        raise ConfigError(f"mapped labels {sorted(set(mapped) - set(source.labels))} are not source labels")
    all_idx = np.arange(len(source.rows))
    model, _ = runner.fit(source, all_idx, model_cfg, train_cfg, out / "checkpoint.pt", "cross-dataset train")
    rows = target.rows.assign(label=mapped.to_numpy())
    scopes = {"target_classes": sorted(set(mapped), key=source.labels.index), "source_classes": source.labels}
    # the trivial baseline on the same split (logistic regression on 32x32 grey views), for the report
    base_preds = baseline_cross(
        runner.baseline_features(source),
        source.rows["label"],
        runner.baseline_features(target),
        rows,
        scopes,
        seed=train_cfg.seed,
    )
    baseline = {}
    for scope, pred in base_preds.items():
        pred.to_csv(out / f"baseline_predictions_{scope}.csv", index=False)
        baseline[scope] = {k: v for k, v in fold_metrics(pred, scopes[scope]).items() if k != "confusion"}
    results = {}
    for scope, labels in scopes.items():
        pred = runner.score(model, target, np.arange(len(rows)), labels, train_cfg, rows=rows)
        pred.to_csv(out / f"predictions_{scope}.csv", index=False)
        m = fold_metrics(pred, labels)
        from facet_lib.eval.plots import confusion_plot

        confusion_plot(np.array(m["confusion"]), labels, out / f"confusion_{scope}.png", f"cross-dataset ({scope})")
        results[scope] = {k: v for k, v in m.items() if k != "confusion"}
    (out / "cross_metrics.json").write_text(json.dumps(results, indent=1))
    write_cross_report(results, out, protocol, runner.weights, variant, baseline=baseline)
    save_file({k: v.contiguous() for k, v in trainable_state(model).items()}, out / "trainable.safetensors")
    return results


def run_cross_ablations(
    runner: Runner,
    source: Data,
    target: Data,
    out: str | Path,
    label_map: dict[str, str],
    variants: list[str] | None = None,
    protocol: str = CROSS_PROTOCOL,
) -> pd.DataFrame:
    """The ablation variants in the cross-dataset setting (the sixth setting of the paper's Fig. 3), on
    the same backbone and feature cache; one table (target-class metrics, paper column) and heatmaps."""
    out, rows = Path(out), []
    todo, skipped = ablation_variants(runner.model_cfg, runner.train_cfg, variants)
    note_skipped(out, skipped)
    for v, mcfg, tcfg in todo:
        res = run_cross(runner, source, target, out / v, label_map, protocol, v, mcfg, tcfg)
        tc, sc = res["target_classes"], res["source_classes"]
        rows.append(
            {
                "variant": v,
                "accuracy": tc["accuracy"],
                "macro_f1": tc["macro_f1"],
                "accuracy_all_source_classes": sc["accuracy"],
            }
        )
    heat = pd.DataFrame(rows).set_index("variant")
    table = _ablation_outputs(heat, heat, out, "cross-dataset ablations", protocol, runner.weights)
    table.attrs["skipped"] = skipped
    return table
