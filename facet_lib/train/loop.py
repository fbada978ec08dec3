"""Training one fold and predicting with a trained model."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from facet_lib.losses import facet_loss
from facet_lib.models.model import FacetVLM, TextBank
from facet_lib.train.config import TrainConfig
from facet_lib.train.schedule import warmup_cosine

HiddenFn = Callable[[torch.Tensor], torch.Tensor]  # sample indices → lower-block states (B, 3, T, w)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _autocast(device: torch.device, on: bool):
    return torch.autocast("cuda", dtype=torch.bfloat16) if on and device.type == "cuda" else nullcontext()


def _optimizer(model: FacetVLM, cfg: TrainConfig) -> torch.optim.Optimizer:
    head = list(model.head.parameters()) + list(model.logit_scale.parameters())
    groups = [{"params": head, "lr": cfg.lr}]
    if model.cfg.unfreeze_top > 0:
        groups.append({"params": model.backbone_trainable(), "lr": cfg.backbone_lr})
    return torch.optim.AdamW(groups, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay)


def trainable_state(model: FacetVLM) -> dict[str, torch.Tensor]:
    """What a fold changes: the head, the temperature and the top visual blocks."""
    names = {id(p) for p in model.backbone_trainable()}
    state = {f"head.{k}": v for k, v in model.head.state_dict().items()}
    state |= {f"logit_scale.{k}": v for k, v in model.logit_scale.state_dict().items()}
    state |= {f"clip.{k}": p.detach() for k, p in model.clip.named_parameters() if id(p) in names}
    return {k: v.detach().clone() for k, v in state.items()}


def load_trainable_state(model: FacetVLM, state: dict[str, torch.Tensor]) -> None:
    model.load_state_dict(state, strict=False)


def train_fold(
    model: FacetVLM,
    bank: TextBank,
    hidden: HiddenFn,
    labels: torch.Tensor,
    cfg: TrainConfig,
    ckpt_path: str | Path | None = None,
    progress: bool = True,
    desc: str = "train",
    frozen_tokens: HiddenFn | None = None,
) -> list[dict]:
    """Train ``model`` on the samples behind ``hidden`` (indices 0..len(labels)-1); returns per-epoch history.

    ``frozen_tokens``, when given, returns the patch tokens of the untouched backbone: used while the
    backbone is frozen instead of running its top blocks each step. A checkpoint is written after every
    epoch; an interrupted run resumes from it."""
    device = resolve_device(cfg.device)
    model.to(device)
    bank = bank.to(device)
    labels = labels.to(device)
    opt = _optimizer(model, cfg)
    steps_per_epoch = max(1, -(-len(labels) // cfg.batch_size))
    total = cfg.epochs * steps_per_epoch
    sched = warmup_cosine(opt, total, int(cfg.warmup_frac * total))
    history: list[dict] = []
    start = 0
    ckpt = Path(ckpt_path) if ckpt_path else None
    if ckpt and ckpt.exists():
        st = torch.load(ckpt, map_location=device, weights_only=True)
        load_trainable_state(model, st["model"])
        opt.load_state_dict(st["optimizer"])
        sched.load_state_dict(st["scheduler"])
        start, history = int(st["epoch"]) + 1, list(st["history"])
    prompt_rng = random.Random(cfg.seed)
    for _ in range(start * steps_per_epoch * cfg.batch_size):
        prompt_rng.random()  # keep prompt sampling identical on resume
    bar = tqdm(range(start, cfg.epochs), desc=desc, unit="epoch", disable=not progress)
    for epoch in bar:
        tune = epoch >= cfg.freeze_epochs and model.cfg.unfreeze_top > 0
        model.set_backbone_trainable(tune)
        model.train()
        gen = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
        perm = torch.randperm(len(labels), generator=gen)
        tot, correct, seen = 0.0, 0, 0
        for i in range(0, len(perm), cfg.batch_size):
            idx = perm[i : i + cfg.batch_size]
            y = labels[idx.to(device)]
            if not tune and frozen_tokens is not None:
                tokens = frozen_tokens(idx).to(device).float()
            else:
                with _autocast(device, cfg.amp), nullcontext() if tune else torch.no_grad():
                    tokens = model.tokens_from_hidden(hidden(idx).to(device))
            text = bank.sample(y.cpu(), prompt_rng).to(device)
            with _autocast(device, cfg.amp):
                use_cond = cfg.cond_weight > 0 and model.cfg.mtgf
                ce = bank.class_embeds
                # one pass: query 0 is the instance's sampled prompt, queries 1..C the class prompts
                query = torch.cat([text[:, None], ce[None].expand(len(y), -1, -1)], 1) if use_cond else text
                out = model.fuse(tokens, query)
                cond = (
                    {"embed": out["image_embed"][:, 1:], "classes": ce, "weight": cfg.cond_weight} if use_cond else None
                )
                losses = facet_loss(out, text, y, model.logit_scale(), cfg.lam, cfg.loss_form, cond)
                loss = sum(losses.values())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], cfg.grad_clip)
            opt.step()
            sched.step()
            with torch.no_grad():
                pred = (out["image_embed"][:, 0].float() @ bank.class_embeds.t()).argmax(1)
            correct += int((pred == y).sum())
            seen += len(y)
            tot += float(loss.detach()) * len(y)
        rec = {
            "epoch": epoch,
            "loss": tot / seen,
            "train_acc": correct / seen,
            "backbone_tuned": tune,
            "lr": sched.get_last_lr()[0],
            "temperature": float(1 / model.logit_scale().detach()),
        }
        history.append(rec)
        bar.set_postfix(loss=f"{rec['loss']:.3f}", acc=f"{rec['train_acc']:.2f}")
        if ckpt:
            tmp = ckpt.with_name(f".{ckpt.name}.tmp-{os.getpid()}")
            ckpt.parent.mkdir(parents=True, exist_ok=True)
            torch.save(
                {
                    "model": trainable_state(model),
                    "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(),
                    "epoch": epoch,
                    "history": history,
                },
                tmp,
            )
            os.replace(tmp, ckpt)
    model.set_backbone_trainable(False)
    return history


@torch.no_grad()
def predict(
    model: FacetVLM, bank: TextBank, hidden: HiddenFn, n: int, batch: int = 64, device: str = "auto"
) -> dict[str, np.ndarray]:
    """Class scores for samples 0..n-1 in both inference modes: (n, C) logits each."""
    dev = resolve_device(device)
    model.to(dev).eval()
    ce = bank.class_embeds.to(dev)
    out: dict[str, list] = {"class_conditional": [], "label_free": []}
    for i in range(0, n, batch):
        tokens = model.tokens_from_hidden(hidden(torch.arange(i, min(n, i + batch))).to(dev)).float()
        for mode in out:
            out[mode].append(model.scores(tokens, ce, mode)[0].cpu())
    return {k: torch.cat(v).numpy() for k, v in out.items()}


def predictions_frame(rows: pd.DataFrame, scores: dict[str, np.ndarray], labels: list[str]) -> pd.DataFrame:
    """One row per sample: truth, prediction per inference mode, and class probabilities."""
    df = rows[["sample_id", "subject", "label"]].reset_index(drop=True).copy()
    for mode, s in scores.items():
        df[f"pred_{mode}"] = [labels[i] for i in s.argmax(1)]
        p = torch.softmax(torch.from_numpy(s), dim=1).numpy()
        for c, lab in enumerate(labels):
            df[f"p_{mode}_{lab}"] = p[:, c]
    return df
