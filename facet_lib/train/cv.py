"""Protocols: K-fold subject-independent cross-validation, ablations, cross-dataset testing.

Every run writes next to its outputs: ``config.json`` (resolved model/train/render settings and the
backbone's weights — "random (untrained)" when no pretrained weights were given), per-fold
predictions, ``cv_table.csv``, plots, and the per-fold trainable weights.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.torch import save_file

from facet_lib.data.folds import load_folds, split
from facet_lib.data.labels import dataset_labels
from facet_lib.errors import ConfigError
from facet_lib.eval.metrics import cv_table, fold_metrics, pooled_confusion
from facet_lib.eval.plots import ablation_heatmap, confusion_plot, per_fold_plot
from facet_lib.models.model import FacetVLM, ModelConfig
from facet_lib.render.dataset import RenderedDataset
from facet_lib.train.config import TrainConfig, from_dict
from facet_lib.train.features import cached_hidden
from facet_lib.train.loop import (
    load_trainable_state,
    predict,
    predictions_frame,
    resolve_device,
    seed_everything,
    train_fold,
    trainable_state,
)

ABLATIONS: dict[str, tuple[dict, dict]] = {  # name → (ModelConfig changes, TrainConfig changes)
    "full": ({}, {}),
    "no_cvsa": ({"cvsa": False}, {}),
    "no_mtgf": ({"mtgf": False}, {}),
    "no_consistency": ({}, {"lam": 0.0}),
    "front_only": ({"views": (0,)}, {}),
    "left_only": ({"views": (1,)}, {}),
    "right_only": ({"views": (2,)}, {}),
    # loss choices where the paper is vague (see facet_lib/losses.py)
    "paper_infonce": ({}, {"loss_form": "paper"}),
    "no_class_conditional_ce": ({}, {"cond_weight": 0.0}),
}


@dataclass
class Data:
    views: np.ndarray  # (N, 3, H, W, 3) uint8
    rows: pd.DataFrame  # aligned with views; has 'fold' when folds were given
    render: dict
    render_digest: str
    labels: list[str]


def load_data(views_dir: str | Path, folds: str | Path | None = None, labels: list[str] | None = None) -> Data:
    ds = RenderedDataset(views_dir)
    views, rows = ds.load()
    if folds is not None:
        f = load_folds(folds)[["sample_id", "fold"]]
        rows = rows.drop(columns=["fold"], errors="ignore").merge(f, on="sample_id", how="left")
    if labels is None:
        known = dataset_labels(str(rows["dataset"].iloc[0])) if len(rows) else []
        labels = [lab for lab in known if lab in set(rows["label"])]
    keep = rows["label"].isin(labels).to_numpy()
    if folds is not None:
        keep &= rows["fold"].notna().to_numpy()
    if not keep.any():
        raise ConfigError(f"{views_dir}: no rendered samples with labels {labels}")
    return Data(
        views[keep],
        rows[keep].reset_index(drop=True),
        ds.manifest["render_config"],
        ds.manifest["config_digest"],
        labels,
    )


class Runner:
    """Shares one CLIP backbone and one feature cache across folds, variants and targets."""

    def __init__(self, model_cfg: ModelConfig, train_cfg: TrainConfig, cache_dir: str | Path, progress: bool = True):
        self.model_cfg, self.train_cfg, self.progress = model_cfg, train_cfg, progress
        self.cache_dir = Path(cache_dir)
        self.device = resolve_device(train_cfg.device)
        seed_everything(train_cfg.seed)
        base = FacetVLM(model_cfg)
        self.clip, self.weights = base.clip, base.weights
        self.pristine = {k: v for k, v in trainable_state(base).items() if k.startswith("clip.")}
        self._hidden: dict[str, torch.Tensor] = {}

    def model(self, cfg: ModelConfig) -> FacetVLM:
        """A fresh head (seeded) on the shared backbone, whose top blocks are reset to their start."""
        seed_everything(self.train_cfg.seed)
        m = FacetVLM(cfg, clip=self.clip, weights=self.weights)
        load_trainable_state(m, self.pristine)
        return m.to(self.device)

    def hidden(self, model: FacetVLM, data: Data) -> torch.Tensor:
        key = f"{data.render_digest}-{len(data.rows)}-{model.visual.split}"
        if key not in self._hidden:
            self._hidden[key] = cached_hidden(
                model,
                data.views,
                data.render_digest,
                list(data.rows["sample_id"]),
                self.cache_dir,
                device=str(self.device),
                progress=self.progress,
            )
        return self._hidden[key]

    def hidden_fn(self, model: FacetVLM, data: Data, subset: np.ndarray, cfg: TrainConfig):
        if cfg.cache_features:
            h = self.hidden(model, data)
            return lambda idx: h[torch.as_tensor(subset)[idx]]

        def fresh(idx):
            with torch.no_grad():
                v = torch.from_numpy(data.views[subset[idx.numpy()]]).to(self.device)
                return model.hidden_from_views(v)

        return fresh

    def frozen_tokens_fn(self, model: FacetVLM, data: Data, subset: np.ndarray):
        """Patch tokens of the untouched backbone (all 3 views), computed once and shared by every fold
        and variant for the epochs in which the backbone is frozen; None without the feature cache."""
        if not self.train_cfg.cache_features:
            return None
        key = f"tokens-{data.render_digest}-{len(data.rows)}-{model.visual.split}"
        if key not in self._hidden:
            h, out = self.hidden(model, data), []
            with torch.no_grad():
                for i in range(0, len(h), 64):
                    tok = model.tokens_from_hidden(h[i : i + 64].to(self.device), views=(0, 1, 2))
                    out.append(tok.to(torch.float16).cpu())
            self._hidden[key] = torch.cat(out)
        tok, sel = self._hidden[key], list(model.cfg.views)
        return lambda idx: tok[torch.as_tensor(subset)[idx]][:, sel]


def _write_config(
    out: Path, runner: Runner, model_cfg: ModelConfig, train_cfg: TrainConfig, data: Data, extra: dict
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    cfg = {
        "model": model_cfg.to_dict(),
        "train": train_cfg.to_dict(),
        "render": data.render,
        "backbone_weights": runner.weights,
        "labels": data.labels,
        "synthetic_note": "random backbone weights: results show the pipeline works, not the paper's numbers"
        if "random" in runner.weights
        else None,
        **extra,
    }
    (out / "config.json").write_text(json.dumps(cfg, indent=1, default=str))


def run_cv(
    runner: Runner,
    data: Data,
    out: str | Path,
    model_cfg: ModelConfig | None = None,
    train_cfg: TrainConfig | None = None,
    name: str = "full",
    folds: list[int] | None = None,
) -> dict:
    """Train and test every fold; returns {"table", "preds", "best_fold", "history"} and writes files."""
    out = Path(out)
    model_cfg, train_cfg = model_cfg or runner.model_cfg, train_cfg or runner.train_cfg
    if "fold" not in data.rows:
        raise ConfigError("cross-validation needs folds (pass a folds file)")
    _write_config(out, runner, model_cfg, train_cfg, data, {"variant": name})
    y_all = torch.tensor([data.labels.index(x) for x in data.rows["label"]])
    fold_ids = sorted(int(f) for f in data.rows["fold"].unique()) if folds is None else folds
    preds, history, t0 = {}, {}, time.perf_counter()
    for f in fold_ids:
        tr, te = split(data.rows.assign(fold=data.rows["fold"].astype(int)), f)
        tr_idx, te_idx = tr.index.to_numpy(), te.index.to_numpy()
        model = runner.model(model_cfg)
        bank = model.build_text_bank(data.labels)
        hist = train_fold(
            model,
            bank,
            runner.hidden_fn(model, data, tr_idx, train_cfg),
            y_all[tr_idx],
            train_cfg,
            ckpt_path=out / f"fold_{f}" / "checkpoint.pt",
            progress=runner.progress,
            desc=f"{name} fold {f}",
            frozen_tokens=runner.frozen_tokens_fn(model, data, tr_idx),
        )
        scores = predict(
            model, bank, runner.hidden_fn(model, data, te_idx, train_cfg), len(te_idx), device=train_cfg.device
        )
        preds[f] = predictions_frame(data.rows.iloc[te_idx], scores, data.labels)
        preds[f].to_csv(out / f"fold_{f}" / "predictions.csv", index=False)
        save_file(
            {k: v.contiguous() for k, v in trainable_state(model).items()}, out / f"fold_{f}" / "trainable.safetensors"
        )
        history[f] = hist
    table = cv_table(preds, data.labels)
    table.to_csv(out / "cv_table.csv", index=False)
    cc = table[(table["mode"] == "class_conditional") & ~table["fold"].isin(["mean", "std"])]
    best = int(cc.loc[cc["accuracy"].idxmax(), "fold"])
    confusion_plot(
        pooled_confusion(preds, data.labels),
        data.labels,
        out / "confusion.png",
        f"{name}: pooled confusion over {len(preds)} folds",
    )
    per_fold_plot(
        table, out / "per_fold_accuracy.png", f"{name}: accuracy per held-out fold", chance=1 / len(data.labels)
    )
    summary = {
        "variant": name,
        "best_fold": best,
        "seconds": round(time.perf_counter() - t0, 1),
        "backbone_weights": runner.weights,
        "history": history,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return {"table": table, "preds": preds, "best_fold": best, "history": history}


def bundle_from_trainable(
    runner: Runner, mcfg: ModelConfig, trainable: str | Path, data: Data, out: str | Path, extra: dict | None = None
) -> str:
    """Write a serving bundle: the shared backbone plus one fold's trainable weights; returns its digest."""
    from safetensors.torch import load_file

    from facet_lib.bundle import save_bundle

    model = runner.model(mcfg)
    load_trainable_state(model, load_file(trainable))
    return save_bundle(out, model.cpu(), model.build_text_bank(data.labels), data.render, extra)


def export_fold_bundle(
    runner: Runner, data: Data, cv_dir: str | Path, fold: int, out: str | Path, extra: dict | None = None
) -> str:
    """Write the bundle of one trained fold of a CV output folder; returns its digest."""
    cv_dir = Path(cv_dir)
    cfg = json.loads((cv_dir / "config.json").read_text())
    table = pd.read_csv(cv_dir / "cv_table.csv")
    metrics = table[table["fold"].astype(str).isin([str(fold), "mean", "std"])].to_dict("records")
    return bundle_from_trainable(
        runner,
        from_dict(ModelConfig, cfg["model"]),
        cv_dir / f"fold_{fold}" / "trainable.safetensors",
        data,
        out,
        {"fold": fold, "train": cfg["train"], "metrics": metrics, **(extra or {})},
    )


def run_ablations(runner: Runner, data: Data, out: str | Path, variants: list[str] | None = None) -> pd.DataFrame:
    """Every variant's CV on the same folds and the same cached features; one table and a heatmap."""
    out = Path(out)
    rows = []
    for v in variants or list(ABLATIONS):
        if v not in ABLATIONS:
            raise ConfigError(f"unknown ablation '{v}': expected one of {list(ABLATIONS)}")
        mchg, tchg = ABLATIONS[v]
        res = run_cv(
            runner,
            data,
            out / v,
            dataclasses.replace(runner.model_cfg, **mchg),
            dataclasses.replace(runner.train_cfg, **tchg),
            name=v,
        )
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
    table.to_csv(out / "ablation_table.csv")
    heat = table.drop(columns=["accuracy_std"])
    ablation_heatmap(heat, out / "ablation_heatmap.png", "ablations (class-conditional unless noted)")
    return table


def run_cross(runner: Runner, source: Data, target: Data, out: str | Path, label_map: dict[str, str]) -> dict:
    """Train on all of ``source``; test on ``target`` with its labels mapped into the source's.

    Reported twice: over the target's classes only (e.g. happy vs disgust for BP4D T1/T8) and over
    all source classes."""
    out = Path(out)
    _write_config(
        out,
        runner,
        runner.model_cfg,
        runner.train_cfg,
        source,
        {"target_render": target.render, "label_map": label_map},
    )
    mapped = target.rows["label"].map(label_map)
    if mapped.isna().any():
        missing = sorted(set(target.rows.loc[mapped.isna(), "label"]))
        raise ConfigError(f"label map has no entry for target label(s) {missing}")
    if not set(mapped) <= set(source.labels):
        raise ConfigError(f"mapped labels {sorted(set(mapped) - set(source.labels))} are not source labels")
    model = runner.model(runner.model_cfg)
    bank = model.build_text_bank(source.labels)
    y = torch.tensor([source.labels.index(x) for x in source.rows["label"]])
    all_idx = np.arange(len(source.rows))
    train_fold(
        model,
        bank,
        runner.hidden_fn(model, source, all_idx, runner.train_cfg),
        y,
        runner.train_cfg,
        ckpt_path=out / "checkpoint.pt",
        progress=runner.progress,
        desc="cross-dataset train",
        frozen_tokens=runner.frozen_tokens_fn(model, source, all_idx),
    )
    rows = target.rows.assign(label=mapped.to_numpy())
    results = {}
    for scope, labels in (
        ("target_classes", sorted(set(mapped), key=source.labels.index)),
        ("source_classes", source.labels),
    ):
        sub = model.build_text_bank(labels)
        scores = predict(
            model,
            sub,
            runner.hidden_fn(model, target, np.arange(len(rows)), runner.train_cfg),
            len(rows),
            device=runner.train_cfg.device,
        )
        pred = predictions_frame(rows, scores, labels)
        pred.to_csv(out / f"predictions_{scope}.csv", index=False)
        m = fold_metrics(pred, labels)
        confusion_plot(np.array(m["confusion"]), labels, out / f"confusion_{scope}.png", f"cross-dataset ({scope})")
        results[scope] = {k: v for k, v in m.items() if k != "confusion"}
    (out / "cross_metrics.json").write_text(json.dumps(results, indent=1))
    save_file({k: v.contiguous() for k, v in trainable_state(model).items()}, out / "trainable.safetensors")
    return results
