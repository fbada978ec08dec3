"""Which runs a protocol makes: the ablation variants (and which equal ``full`` and are skipped), and the
check that a start bundle (``train.init_from``) fits the run."""

from __future__ import annotations

import json
from pathlib import Path

from facet_lib.config import ModelConfig, TrainConfig, from_params, to_params
from facet_lib.errors import ConfigError

ABLATIONS: dict[str, tuple[dict, dict]] = {  # name → (ModelConfig changes, TrainConfig changes)
    "full": ({}, {}),
    "no_cvsa": ({"head": {"cvsa": False}}, {}),
    "no_mtgf": ({"head": {"mtgf": False}}, {}),
    "no_consistency": ({}, {"lam": 0.0}),
    "front_only": ({"views": (0,)}, {}),
    "left_only": ({"views": (1,)}, {}),
    "right_only": ({"views": (2,)}, {}),
    # loss choices where the paper is vague (see facet_lib/losses.py)
    "paper_infonce": ({}, {"loss_form": "paper"}),
    "no_class_conditional_ce": ({}, {"cond_weight": 0.0}),
}


def ablation_variants(
    model_cfg: ModelConfig, train_cfg: TrainConfig, variants: list[str] | None = None
) -> tuple[list[tuple[str, ModelConfig, TrainConfig]], dict[str, str]]:
    """The variants to run with their settings, and those skipped with the reason: a variant whose settings
    equal ``full``'s (``paper_infonce`` and ``no_class_conditional_ce`` under ``paper``) would only rerun it."""
    run, skipped = [], {}
    for v in variants or list(ABLATIONS):
        if v not in ABLATIONS:
            raise ConfigError(f"unknown ablation '{v}': expected one of {list(ABLATIONS)}")
        mchg, tchg = ABLATIONS[v]
        m, t = from_params(ModelConfig, mchg, base=model_cfg), from_params(TrainConfig, tchg, base=train_cfg)
        if v != "full" and (m, t) == (model_cfg, train_cfg):
            skipped[v] = f"equals full under these settings ({json.dumps({**mchg, **tchg})} already set)"
        else:
            run.append((v, m, t))
    return run, skipped


def note_skipped(out: Path, skipped: dict[str, str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "ablations_skipped.json").write_text(json.dumps(skipped, indent=1))
    for v, why in skipped.items():
        print(f"ablation {v}: skipped, {why}")


def check_start(saved: ModelConfig, cfg: ModelConfig, ref: str | None) -> None:
    """A start bundle must have this run's backbone and head (the labels and prompts may differ)."""
    diff = [f"clip_model {saved.clip_model} vs {cfg.clip_model}"] if saved.clip_model != cfg.clip_model else []
    diff += [
        f"head.{k} {getattr(saved.head, k)!r} vs {getattr(cfg.head, k)!r}"
        for k in to_params(cfg.head)
        if getattr(saved.head, k) != getattr(cfg.head, k)
    ]
    if diff:
        raise ConfigError(f"train.init_from {ref}: the bundle differs from this run's settings ({'; '.join(diff)})")
