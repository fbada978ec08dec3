"""Protocols: K-fold subject-independent cross-validation, ablations, cross-dataset testing.

Every run writes next to its outputs: ``config.json`` (resolved model/train/render settings and the
backbone's weights — "random (untrained)" when no pretrained weights were given), one folder per fold
(``train_one_fold``: predictions, trainable weights, fold.json) and the CV report (``eval.report``).
Bundles are built from a trained fold by ``facet_lib.steps.export_step`` (train/ never imports bundle).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.torch import save_file

from facet_lib.config import ModelConfig, TrainConfig, to_params
from facet_lib.data.datasets import CROSS_PROTOCOL
from facet_lib.data.folds import load_folds, split
from facet_lib.data.labels import dataset_labels, model_prompts
from facet_lib.device import resolve_device
from facet_lib.errors import ConfigError
from facet_lib.eval.baseline import baseline_cross, baseline_fold, view_features
from facet_lib.eval.fig4 import write_ablation_meta
from facet_lib.eval.metrics import cv_table, fold_metrics
from facet_lib.eval.report import read_folds, weights_note, write_cross_report, write_report
from facet_lib.eval.targets import with_paper_column
from facet_lib.files import atomic_write
from facet_lib.models.model import FacetVLM
from facet_lib.render.dataset import RenderedDataset
from facet_lib.storage import local_path
from facet_lib.train.features import cached_hidden
from facet_lib.train.loop import (
    load_trainable_state,
    predict,
    predictions_frame,
    seed_everything,
    train_fold,
    trainable_state,
)
from facet_lib.train.variants import ABLATIONS, ablation_variants, check_start, note_skipped  # noqa: F401


@dataclass
class Data:
    rows: pd.DataFrame  # aligned with views; has 'fold' when folds were given
    render: dict
    render_digest: str
    labels: list[str]
    load_views: Callable[[], np.ndarray] | None = None  # reads the views on first use of ``views``
    _views: np.ndarray | None = None

    @property
    def views(self) -> np.ndarray:
        """(N, 3, H, W, 3) uint8, read on first use: a fold trained on cached features never needs them."""
        if self._views is None:
            if self.load_views is None:
                raise ConfigError("no views: this dataset was loaded without them")
            self._views = self.load_views()
        return self._views


def load_data(views_dir: str | Path, folds: str | Path | None = None, labels: list[str] | None = None) -> Data:
    """The rendered dataset's rows (with ``folds``) and settings; the views are read when first used."""
    ds = RenderedDataset(views_dir)
    _, rows = ds.load(views=False)
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
    ids = list(rows["sample_id"])

    def load_views() -> np.ndarray:
        views, again = ds.load()
        if list(again["sample_id"]) != ids:
            raise ConfigError(f"{views_dir}: changed while it was read (sample ids differ)")
        return views[keep]

    return Data(
        rows[keep].reset_index(drop=True),
        ds.manifest["render_config"],
        ds.manifest["config_digest"],
        labels,
        load_views,
    )


class Runner:
    """Shares one CLIP backbone and one feature cache across folds, variants and targets."""

    def __init__(
        self,
        model_cfg: ModelConfig,
        train_cfg: TrainConfig,
        cache_dir: str | Path,
        progress: bool = True,
        start: FacetVLM | None = None,
    ):
        """``start``: the bundle model of ``train_cfg.init_from`` (``facet_lib.warm_start.load_start``): its
        backbone, head and temperature are every fold's starting point (fine-tuning)."""
        self.model_cfg, self.train_cfg, self.progress = model_cfg, train_cfg, progress
        self.cache_dir = Path(cache_dir)
        self.device = resolve_device(train_cfg.device, what="train.device")
        seed_everything(train_cfg.seed)
        if bool(train_cfg.init_from) != (start is not None):
            raise ConfigError("train.init_from: facet_lib.warm_start loads the start bundle; pass it as start=")
        self.start_head: dict[str, torch.Tensor] = {}
        if start is not None:
            check_start(start.cfg, model_cfg, train_cfg.init_from)
            base = FacetVLM(model_cfg, clip=start.clip, weights=start.weights)
            self.start_head = {k: v for k, v in start.weights_state().items() if not k.startswith("clip.")}
        else:
            base = FacetVLM(model_cfg, fetch=local_path)
        self.clip, self.weights = base.clip, base.weights
        self.pristine = {k: v for k, v in trainable_state(base).items() if k.startswith("clip.")}
        self._hidden: dict[str, torch.Tensor] = {}

    def model(self, cfg: ModelConfig) -> FacetVLM:
        """A fresh head (seeded) on the shared backbone, whose top blocks are reset to their start; with a start
        bundle the head and temperature start from it (an ablation variant takes the parts it shares)."""
        seed_everything(self.train_cfg.seed)
        m = FacetVLM(cfg, clip=self.clip, weights=self.weights)
        load_trainable_state(m, self.pristine)
        if self.start_head:
            own = m.state_dict()
            load_trainable_state(m, {k: v for k, v in self.start_head.items() if k in own and own[k].shape == v.shape})
        return m.to(self.device)

    def baseline_features(self, data: Data, size: int = 32) -> np.ndarray:
        """The trivial baseline's features (``eval.baseline.view_features``: 32×32 grey per view), computed once
        per rendered dataset and kept in the cache folder as ``baseline-<key>.npy`` (linked into fold tasks
        with the backbone features, so a fold does not read every view only to recompute them)."""
        ident = "\n".join([data.render_digest, str(size), *map(str, data.rows["sample_id"])])
        path = self.cache_dir / f"baseline-{hashlib.sha256(ident.encode()).hexdigest()[:20]}.npy"
        if path.exists():
            return np.load(path, allow_pickle=False)
        x = view_features(data.views, size)

        def write(p: Path) -> None:
            with open(p, "wb") as f:
                np.save(f, x, allow_pickle=False)

        atomic_write(path, write)
        return x

    def hidden(self, model: FacetVLM, data: Data) -> torch.Tensor:
        key = f"{data.render_digest}-{len(data.rows)}-{model.visual.split}"
        if key not in self._hidden:
            self._hidden[key] = cached_hidden(
                model,
                lambda: data.views,
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
        "note": weights_note(runner.weights),
        **extra,
    }
    (out / "config.json").write_text(json.dumps(cfg, indent=1, default=str))


def fit_and_score(
    runner: Runner,
    data: Data,
    tr_idx: np.ndarray,
    eval_idx: np.ndarray,
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    ckpt_path: Path,
    desc: str,
) -> tuple[FacetVLM, list[dict], pd.DataFrame]:
    """Train a fresh model on rows ``tr_idx`` (resuming from ``ckpt_path``) and score rows ``eval_idx``:
    (model, history, predictions frame). The body shared by a CV fold and a λ-search point."""
    y = torch.tensor([data.labels.index(x) for x in data.rows["label"]])
    model = runner.model(model_cfg)
    bank = model.build_text_bank(data.labels, model_prompts(model.cfg, data.labels))
    history = train_fold(
        model,
        bank,
        runner.hidden_fn(model, data, tr_idx, train_cfg),
        y[tr_idx],
        train_cfg,
        ckpt_path=ckpt_path,
        progress=runner.progress,
        desc=desc,
        frozen_tokens=runner.frozen_tokens_fn(model, data, tr_idx),
    )
    hidden = runner.hidden_fn(model, data, eval_idx, train_cfg)
    scores = predict(model, bank, hidden, len(eval_idx), device=train_cfg.device)
    return model, history, predictions_frame(data.rows.iloc[eval_idx], scores, data.labels)


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
    model, history, preds = fit_and_score(
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
    _write_config(out, runner, model_cfg, train_cfg, data, {"variant": name})
    fold_ids = sorted(int(f) for f in data.rows["fold"].unique()) if folds is None else folds
    t0, dirs = time.perf_counter(), [out / f"fold_{f}" for f in fold_ids]
    for f, d in zip(fold_ids, dirs):
        train_one_fold(runner, data, f, d, model_cfg, train_cfg, desc=f"{name} fold {f}")
    summary = write_report(
        dirs, out, {**(context or {}), "variant": name, "seconds": round(time.perf_counter() - t0, 1)}
    )
    _, preds = read_folds(dirs)
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
) -> dict:
    """Train on all of ``source``; test on ``target`` with its labels mapped into the source's.

    Reported twice: over the target's classes only (e.g. happy vs disgust for BP4D T1/T8) and over
    all source classes; ``cross_report.md``/``cross_summary.json`` put the paper's number for
    ``protocol``/``variant`` beside it (``eval.report.write_cross_report``)."""
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
    bank = model.build_text_bank(source.labels, model_prompts(model.cfg, source.labels))
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
    scopes = {"target_classes": sorted(set(mapped), key=source.labels.index), "source_classes": source.labels}
    # the trivial baseline on the same split (logistic regression on 32x32 grey views), for the report
    base_preds = baseline_cross(
        runner.baseline_features(source),
        source.rows["label"],
        runner.baseline_features(target),
        rows,
        scopes,
        seed=runner.train_cfg.seed,
    )
    baseline = {}
    for scope, pred in base_preds.items():
        pred.to_csv(out / f"baseline_predictions_{scope}.csv", index=False)
        baseline[scope] = {k: v for k, v in fold_metrics(pred, scopes[scope]).items() if k != "confusion"}
    results = {}
    for scope, labels in scopes.items():
        sub = model.build_text_bank(labels, model_prompts(model.cfg, labels))
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
    import copy

    out, rows = Path(out), []
    todo, skipped = ablation_variants(runner.model_cfg, runner.train_cfg, variants)
    note_skipped(out, skipped)
    for v, mcfg, tcfg in todo:
        r = copy.copy(runner)  # shares the backbone and the cached features
        r.model_cfg, r.train_cfg = mcfg, tcfg
        res = run_cross(r, source, target, out / v, label_map, protocol=protocol, variant=v)
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
