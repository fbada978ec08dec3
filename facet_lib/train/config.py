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


def from_dict(cls, d: dict):
    """Build a config dataclass from JSON-ish values: unknown keys refused, lists → tuples, and whole
    floats → int where the field is an int (KFP passes dict numbers as floats)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(d) - set(fields)
    if unknown:
        raise ConfigError(f"{cls.__name__}: unknown setting(s) {sorted(unknown)}")
    out = {}
    for k, v in d.items():
        default = fields[k].default
        if isinstance(v, list):
            v = tuple(int(x) if isinstance(x, float) and x.is_integer() and k == "views" else x for x in v)
        elif isinstance(default, int) and not isinstance(default, bool) and isinstance(v, float) and v.is_integer():
            v = int(v)
        out[k] = v
    return cls(**out)


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
