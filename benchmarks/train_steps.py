"""Training-step workloads shared by ``bench_train.py`` (CPU) and ``gpu_vitb16.py`` (GPU), and the wall-time
projection of a cross-validation run from their per-step figures.

Step kinds, as ``facet_lib.train.loop.train_fold`` runs them (batch of B samples × 3 views):
  - ``frozen_uncached``: backbone frozen, recomputed every step (no feature cache), head trained;
  - ``frozen_tokens``: backbone frozen and its output tokens cached: only the head runs;
  - ``tuned_uncached``: after ``freeze_epochs`` the top blocks train; lower blocks recomputed every step;
  - ``tuned_cached``: the same with the lower blocks cached (the default);
  - ``extract``: the lower blocks' forward alone — the one-time cost of the cache;
  - ``bare_encoder``: baseline, a bare open_clip image encoder forward+backward (all weights trainable).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

import torch

from facet_lib.config import PRESETS, ModelConfig
from facet_lib.data.labels import prompts_for
from facet_lib.losses import facet_loss
from facet_lib.models.model import FacetVLM

LABELS = ["anger", "disgust", "fear", "happy", "sad", "surprise"]
STEP_KINDS = ("frozen_uncached", "frozen_tokens", "tuned_uncached", "tuned_cached")


@dataclass
class Workload:
    model: FacetVLM
    steps: dict[str, Callable[[], None]]  # STEP_KINDS + "extract" + "bare_encoder"
    batch: int
    device: torch.device


def build(clip_model: str, unfreeze_top: int, batch: int, device: torch.device, size: int = 224) -> Workload:
    """Random-weight model (throughput does not depend on the values) and one synthetic batch on ``device``."""
    torch.manual_seed(0)
    model = FacetVLM(ModelConfig(clip_model=clip_model, unfreeze_top=unfreeze_top)).to(device)
    bank = model.build_text_bank(LABELS, prompts_for(LABELS, mode=model.cfg.prompts)).to(device)
    g = torch.Generator().manual_seed(0)
    views = torch.randint(0, 256, (batch, 3, size, size, 3), dtype=torch.uint8, generator=g).to(device)
    y = torch.randint(0, len(LABELS), (batch,), generator=g).to(device)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    with torch.no_grad(), amp:
        hidden = model.hidden_from_views(views)
        tokens = model.tokens_from_hidden(hidden)
    head_opt = torch.optim.AdamW(list(model.head.parameters()) + list(model.logit_scale.parameters()), lr=1e-4)
    tuned_opt = torch.optim.AdamW(
        list(model.head.parameters()) + list(model.logit_scale.parameters()) + model.backbone_trainable(), lr=1e-4
    )

    def facet_step(kind: str) -> None:
        tune = kind.startswith("tuned")
        model.set_backbone_trainable(tune)
        opt = tuned_opt if tune else head_opt
        with amp:
            if kind == "frozen_tokens":
                tok = tokens
            else:
                with torch.no_grad():
                    h = hidden if kind == "tuned_cached" else model.hidden_from_views(views)
                with nullcontext() if tune else torch.no_grad():
                    tok = model.tokens_from_hidden(h)
            text = bank.sample(y.cpu(), random.Random(0)).to(device)
            q = torch.cat([text[:, None], bank.class_embeds[None].expand(batch, -1, -1)], 1)
            out = model.fuse(tok, q)
            cond = {"embed": out["image_embed"][:, 1:], "classes": bank.class_embeds, "weight": 1.0}
            loss = sum(facet_loss(out, text, y, model.logit_scale(), 0.1, "label_aware", cond).values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def extract() -> None:
        with torch.no_grad(), amp:
            model.hidden_from_views(views)

    images = model.visual.preprocess(views.flatten(0, 1))

    def bare_encoder() -> None:
        visual = model.clip.visual
        for p in visual.parameters():
            p.requires_grad_(True)
        with amp:
            out = visual(images)
            out = out[0] if isinstance(out, tuple) else out
        out.float().sum().backward()
        for p in visual.parameters():
            p.requires_grad_(False)
            p.grad = None

    steps = {k: (lambda k=k: facet_step(k)) for k in STEP_KINDS}
    return Workload(model, {**steps, "extract": extract, "bare_encoder": bare_encoder}, batch, device)


def timed(fn: Callable[[], None], batch: int, steps: int, device: torch.device, warmup: int = 1) -> dict:
    """``steps`` calls after ``warmup`` calls: samples per wall second, samples per CPU second of this process
    (steadier than wall time on a shared machine) and the peak GPU memory in GiB (nan on the CPU)."""
    cuda = device.type == "cuda"
    for _ in range(warmup):
        fn()
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        fn()
    if cuda:
        torch.cuda.synchronize(device)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if cuda else float("nan")
    return {"wall": steps * batch / wall, "cpu": steps * batch / max(cpu, 1e-9), "peak_gib": peak}


def rate(fn: Callable[[], None], batch: int, steps: int, device: torch.device, warmup: int = 1) -> tuple[float, float]:
    """(samples/s, peak GPU GiB or nan on the CPU); see ``timed``."""
    t = timed(fn, batch, steps, device, warmup)
    return t["wall"], t["peak_gib"]


def project_cv(rates: dict[str, float], n: int = 2400, folds: int = 10, preset: str = "paper") -> dict[str, float]:
    """Hours of training for a ``folds``-fold CV of ``n`` samples with ``preset``'s epochs and freeze_epochs,
    with and without the feature cache (evaluation passes and data loading left out: small against training).
    ``rates``: samples/s per step kind (``STEP_KINDS`` and ``extract``)."""
    tcfg = PRESETS[preset][1]
    n_train = n * (folds - 1) / folds
    frozen, tuned = tcfg.freeze_epochs, tcfg.epochs - tcfg.freeze_epochs
    per_fold_cached = n_train * (frozen / rates["frozen_tokens"] + tuned / rates["tuned_cached"])
    per_fold_uncached = n_train * (frozen / rates["frozen_uncached"] + tuned / rates["tuned_uncached"])
    cached = n / rates["extract"] + folds * per_fold_cached  # the cache is computed once for every fold
    uncached = folds * per_fold_uncached
    return {
        "cached_h": cached / 3600,
        "uncached_h": uncached / 3600,
        "ratio": uncached / cached,
        "epochs": tcfg.epochs,
        "freeze_epochs": frozen,
    }
