"""One CLIP backbone and one feature cache shared by every fold, ablation variant, λ point and target.

``load_data`` reads a rendered dataset lazily (rows and settings now, views on first use); ``Runner``
holds the backbone (random, pretrained, or a start bundle's), hands out fresh heads on it, caches the
frozen blocks' states and the trivial baseline's features, and trains (``fit``) and scores (``score``)
a model — the one training body behind a CV fold, a λ-search point and a cross-dataset run
(``facet_lib.train.protocols``, ``facet_lib.train.tune``)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from facet_lib.config import ModelConfig, TrainConfig
from facet_lib.data.folds import load_folds
from facet_lib.data.labels import dataset_labels, model_prompts
from facet_lib.device import resolve_device
from facet_lib.errors import ConfigError
from facet_lib.eval.baseline import view_features
from facet_lib.eval.report import weights_note
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
from facet_lib.train.variants import check_start


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

    def fit(
        self, data: Data, idx: np.ndarray, model_cfg: ModelConfig, train_cfg: TrainConfig, ckpt_path: Path, desc: str
    ) -> tuple[FacetVLM, list[dict]]:
        """A fresh model (``model``) trained on rows ``idx`` of ``data`` (resuming from ``ckpt_path``):
        (model, history)."""
        y = torch.tensor([data.labels.index(x) for x in data.rows["label"]])
        model = self.model(model_cfg)
        bank = model.build_text_bank(data.labels, model_prompts(model.cfg, data.labels))
        history = train_fold(
            model,
            bank,
            self.hidden_fn(model, data, idx, train_cfg),
            y[idx],
            train_cfg,
            ckpt_path=ckpt_path,
            progress=self.progress,
            desc=desc,
            frozen_tokens=self.frozen_tokens_fn(model, data, idx),
        )
        return model, history

    def score(
        self,
        model: FacetVLM,
        data: Data,
        idx: np.ndarray,
        labels: list[str],
        train_cfg: TrainConfig,
        rows: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """Predictions of ``model`` for rows ``idx`` of ``data`` over the classes ``labels`` (the rows of the
        frame: ``rows``, default ``data.rows``, at ``idx``)."""
        bank = model.build_text_bank(labels, model_prompts(model.cfg, labels))
        scores = predict(model, bank, self.hidden_fn(model, data, idx, train_cfg), len(idx), device=train_cfg.device)
        return predictions_frame((data.rows if rows is None else rows).iloc[idx], scores, labels)


def write_config(
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
    model, history = runner.fit(data, tr_idx, model_cfg, train_cfg, ckpt_path, desc)
    return model, history, runner.score(model, data, eval_idx, data.labels, train_cfg)
