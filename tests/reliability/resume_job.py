"""A tiny training run used by the resume tests, in-process or as a subprocess that can be SIGKILLed.

``python resume_job.py OUT [--kill-after K]``: trains (resuming from OUT/checkpoint.pt when present) and
writes OUT/scores.npz; with ``--kill-after K`` the process SIGKILLs itself once epoch K's checkpoint is
on disk — a real preemption, nothing is flushed or cleaned up."""

from __future__ import annotations

import argparse
import copy
import functools
import os
import signal
import sys
from pathlib import Path

import numpy as np
import torch

from facet_lib.config import ModelConfig, TrainConfig
from facet_lib.data.labels import prompts_for
from facet_lib.models.model import FacetVLM
from facet_lib.train.loop import EpochHook, predict, seed_everything, train_fold

MODEL = ModelConfig(clip_model="facet-tiny", unfreeze_top=1)
# 3 frozen epochs (cached tokens) then the top block trains: both phases cross the interruption point
TRAIN = TrainConfig(
    epochs=5, freeze_epochs=3, batch_size=16, lr=3e-3, backbone_lr=3e-4, seed=0, device="cpu", cond_weight=1.0
)
N, N_TEST = 40, 12


@functools.cache
def _pristine():
    """The backbone, data, frozen features and prompt bank: built once per process (they never train)."""
    seed_everything(TRAIN.seed)
    model = FacetVLM(MODEL)
    g = torch.Generator().manual_seed(1)
    views = torch.randint(0, 256, (N + N_TEST, 3, 112, 112, 3), dtype=torch.uint8, generator=g)
    with torch.no_grad():
        hidden = model.hidden_from_views(views).to(torch.float16)
        frozen = model.tokens_from_hidden(hidden[:N]).to(torch.float16)
    names = ["anger", "disgust", "fear", "happiness", "sadness", "surprise"]
    return model, hidden, frozen, model.build_text_bank(names, prompts_for(names, mode=model.cfg.prompts))


def run(out: Path, on_epoch: EpochHook | None = None) -> dict[str, np.ndarray]:
    """A fresh model (seeded head, untouched backbone copy), trained (resuming if a checkpoint exists) and
    scored on held-out data."""
    base, hidden, frozen, bank = _pristine()
    seed_everything(TRAIN.seed)
    model = FacetVLM(MODEL, clip=copy.deepcopy(base.clip), weights=base.weights)
    train_fold(
        model,
        bank,
        lambda idx: hidden[idx],
        torch.arange(N) % 6,
        TRAIN,
        ckpt_path=out / "checkpoint.pt",
        progress=False,
        frozen_tokens=lambda idx: frozen[idx],
        on_epoch=on_epoch,
    )
    return predict(model, bank, lambda idx: hidden[N + idx], N_TEST, device="cpu")


def _kill_after(k: int) -> EpochHook:
    def hook(rec: dict) -> None:
        if rec["epoch"] == k:
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--kill-after", type=int)
    a = ap.parse_args()
    torch.set_num_threads(1)
    a.out.mkdir(parents=True, exist_ok=True)
    scores = run(a.out, None if a.kill_after is None else _kill_after(a.kill_after))
    np.savez(a.out / "scores.npz", **scores)
    sys.exit(0)
