"""Training one fold and predicting with a trained model."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from facet_lib.config import TrainConfig
from facet_lib.device import resolve_device as device_for
from facet_lib.errors import ConfigError
from facet_lib.files import atomic_write
from facet_lib.losses import facet_loss
from facet_lib.models.model import FacetVLM, TextBank
from facet_lib.progress import progress_bar
from facet_lib.train.schedule import warmup_cosine

HiddenFn = Callable[[torch.Tensor], torch.Tensor]  # sample indices → lower-block states (B, 3, T, w)
EpochHook = Callable[[dict], None]  # called with each epoch's record after its checkpoint is written
CHECKPOINT_FORMAT = 2  # 2: with every RNG state; earlier checkpoints cannot resume exactly and are refused


def resolve_device(name: str) -> torch.device:
    """The training device (``facet_lib.device``: a GPU asked for but unusable fails fast)."""
    return device_for(name, what="train.device")


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
    return model.weights_state(trainable_only=True)


def load_trainable_state(model: FacetVLM, state: dict[str, torch.Tensor]) -> None:
    model.load_state_dict(state, strict=False)


def rng_state(prompt_rng: random.Random, data_gen: torch.Generator, device: torch.device) -> dict:
    """Every random stream a training step can touch, in a form ``torch.load(weights_only=True)`` reads."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "python": random.getstate(),
        "prompts": prompt_rng.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos},
        "numpy_gauss": (has_gauss, gauss),
        "torch": torch.get_rng_state(),
        "data_order": data_gen.get_state(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict, prompt_rng: random.Random, data_gen: torch.Generator, device: torch.device) -> None:
    random.setstate(_tuples(state["python"]))
    prompt_rng.setstate(_tuples(state["prompts"]))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], *state["numpy_gauss"]))
    torch.set_rng_state(state["torch"])
    data_gen.set_state(state["data_order"])
    if device.type == "cuda" and "cuda" in state:
        if len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state["cuda"])
        else:  # resumed on a node with another GPU count: the training device's stream is what matters
            torch.cuda.set_rng_state(state["cuda"][min(device.index or 0, len(state["cuda"]) - 1)], device)


def _tuples(x):
    """``random.setstate`` wants tuples; a checkpoint may hand back lists."""
    return tuple(_tuples(v) for v in x) if isinstance(x, list | tuple) else x


def _resume_key(cfg: TrainConfig, n: int) -> dict:
    """What a checkpoint must agree on to be continued: every training setting but the device, and the size."""
    return {**{k: v for k, v in dataclasses.asdict(cfg).items() if k != "device"}, "n_samples": n}


def _load_checkpoint(ckpt: Path, key: dict) -> dict:
    try:
        st = torch.load(ckpt, map_location="cpu", weights_only=True)  # RNG states must stay on the CPU
    except Exception as e:  # truncated/corrupt file: say which one and what to do
        msg = f"{ckpt}: unreadable training checkpoint ({type(e).__name__}: {str(e)[:200]}); delete it to retrain"
        raise ConfigError(msg) from e
    if not isinstance(st, dict) or st.get("format") != CHECKPOINT_FORMAT:
        raise ConfigError(
            f"{ckpt}: checkpoint format {st.get('format') if isinstance(st, dict) else '?'}, expected "
            f"{CHECKPOINT_FORMAT} (with RNG state, for an exact resume); delete it to retrain"
        )
    saved = {k: tuple(v) if isinstance(v, list) else v for k, v in st["resume_key"].items()}
    diff = sorted(k for k in set(key) | set(saved) if key.get(k) != saved.get(k))
    if diff:
        raise ConfigError(
            f"{ckpt}: checkpoint was written with different settings ({', '.join(diff)}); "
            "use another output folder or delete it to retrain"
        )
    return st


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
    on_epoch: EpochHook | None = None,
) -> list[dict]:
    """Train ``model`` on the samples behind ``hidden`` (indices 0..len(labels)-1); returns per-epoch history.

    ``frozen_tokens``, when given, returns the patch tokens of the untouched backbone: used while the
    backbone is frozen instead of running its top blocks each step. A checkpoint is written after every
    epoch with the weights, optimizer, scheduler and every RNG state (Python, NumPy, torch, CUDA, the
    prompt sampler and the data-order generator): an interrupted run resumes from it and ends with the same
    bytes as an uninterrupted one. ``on_epoch`` is called with each epoch's record once its checkpoint is on
    disk (logging; tests use it to interrupt a run)."""
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
    prompt_rng = random.Random(cfg.seed)
    data_gen = torch.Generator().manual_seed(cfg.seed)
    ckpt = Path(ckpt_path) if ckpt_path else None
    key = _resume_key(cfg, len(labels))
    if ckpt and ckpt.exists():
        st = _load_checkpoint(ckpt, key)
        load_trainable_state(model, st["model"])
        opt.load_state_dict(st["optimizer"])
        sched.load_state_dict(st["scheduler"])
        set_rng_state(st["rng"], prompt_rng, data_gen, device)
        start, history = int(st["epoch"]) + 1, list(st["history"])
    bar = progress_bar(range(start, cfg.epochs), desc=desc, unit="epoch", disable=not progress, every_item=True)
    for epoch in bar:
        tune = epoch >= cfg.freeze_epochs and model.cfg.unfreeze_top > 0
        model.set_backbone_trainable(tune)
        model.train()
        perm = torch.randperm(len(labels), generator=data_gen)
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
                use_cond = cfg.cond_weight > 0 and model.cfg.head.mtgf
                ce = bank.class_embeds
                # one pass: query 0 is the instance's sampled prompt, queries 1..C the class prompts
                query = torch.cat([text[:, None], ce[None].expand(len(y), -1, -1)], 1) if use_cond else text
                out = model.fuse(tokens, query)
                cond = (
                    {"embed": out["image_embed"][:, 1:], "classes": ce, "weight": cfg.cond_weight} if use_cond else None
                )
                losses = facet_loss(out, text, y, model.logit_scale(), cfg.lam, cfg.loss_form, cond, cfg.consistency)
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
            state = {
                "format": CHECKPOINT_FORMAT,
                "resume_key": key,
                "rng": rng_state(prompt_rng, data_gen, device),
                "model": trainable_state(model),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "epoch": epoch,
                "history": history,
            }
            atomic_write(ckpt, lambda p, state=state: torch.save(state, p))
        if on_epoch is not None:
            on_epoch(rec)
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
