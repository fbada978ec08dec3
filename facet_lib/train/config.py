"""Training settings (a frozen dataclass; ``key=value`` overrides; written next to every run)."""

from __future__ import annotations

import ast
import dataclasses
from dataclasses import asdict, dataclass

from facet_lib.errors import ConfigError


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    freeze_epochs: int = 3  # backbone fully frozen first, then its top blocks train
    batch_size: int = 32
    lr: float = 1e-4
    backbone_lr: float = 1e-5
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    warmup_frac: float = 0.1  # linear warm-up over this share of the steps, then cosine (eq. 27)
    grad_clip: float = 1.0
    lam: float = 0.1  # λ of the consistency loss
    loss_form: str = "label_aware"  # or "paper"
    cond_weight: float = 1.0  # class-conditional CE (teaches MTGF wrong-class queries); 0 = paper objective
    seed: int = 0
    amp: bool = True  # mixed precision on GPU (bf16 autocast); ignored on CPU
    device: str = "auto"
    cache_features: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


def apply_overrides(obj, overrides: list[str]):
    """Return a copy of a frozen dataclass with ``key=value`` overrides (values parsed as Python literals)."""
    names = {f.name: f for f in dataclasses.fields(obj)}
    changes = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or key not in names:
            raise ConfigError(f"override '{item}': expected key=value with key in {sorted(names)}")
        try:
            val = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            val = raw
        if isinstance(val, list):
            val = tuple(val)
        changes[key] = val
    return dataclasses.replace(obj, **changes)
