"""Model bundles: everything serving needs, without training code and without pickles.

A bundle folder holds ``weights.safetensors`` (CLIP towers, FACET head, temperature),
``text.safetensors`` (cached class and prompt embeddings), ``config.json`` (model and render
settings, label order, prompts, provenance) and ``CHECKSUMS.json`` (SHA-256 of each file). Loading
verifies every checksum first and refuses a mismatch.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from facet_lib.errors import FacetError
from facet_lib.files import sha256_file
from facet_lib.models.backbone import create_clip
from facet_lib.models.model import FacetVLM, ModelConfig, TextBank
from facet_lib.train.config import from_dict

FORMAT = "facet-bundle/1"
FILES = ("weights.safetensors", "text.safetensors", "config.json")


class BundleError(FacetError):
    """A bundle is missing a file, fails its checksum or has an unknown format."""


def model_state(model: FacetVLM) -> dict[str, torch.Tensor]:
    state = {f"clip.{k}": v for k, v in model.clip.state_dict().items()}
    state |= {f"head.{k}": v for k, v in model.head.state_dict().items()}
    state |= {f"logit_scale.{k}": v for k, v in model.logit_scale.state_dict().items()}
    return {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}


def save_bundle(out: str | Path, model: FacetVLM, bank: TextBank, render: dict, extra: dict | None = None) -> str:
    """Write a bundle; returns its digest (SHA-256 of CHECKSUMS.json). Files appear complete or not at all."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = {name: out / f".{name}.tmp-{os.getpid()}" for name in FILES}
    save_file(model_state(model), tmp["weights.safetensors"])
    save_file(
        {
            "class_embeds": bank.class_embeds.cpu().contiguous(),
            "prompt_embeds": bank.prompt_embeds.cpu().contiguous(),
            "prompt_labels": bank.prompt_labels.cpu().contiguous(),
        },
        tmp["text.safetensors"],
    )
    cfg = {
        "format": FORMAT,
        "model": model.cfg.to_dict(),
        "weights": model.weights,
        "labels": bank.labels,
        "prompts": bank.prompts,
        "render": render,
        **(extra or {}),
    }
    tmp["config.json"].write_text(json.dumps(cfg, indent=1, default=str))
    for name, t in tmp.items():
        os.replace(t, out / name)
    sums = json.dumps({name: sha256_file(out / name) for name in FILES}, indent=1, sort_keys=True)
    (out / ".CHECKSUMS.json.tmp").write_text(sums)
    os.replace(out / ".CHECKSUMS.json.tmp", out / "CHECKSUMS.json")
    return hashlib.sha256(sums.encode()).hexdigest()


def verify_bundle(path: str | Path) -> str:
    """Check every file against CHECKSUMS.json; returns the bundle digest."""
    path = Path(path)
    sums_path = path / "CHECKSUMS.json"
    if not sums_path.exists():
        raise BundleError(f"{path}: no CHECKSUMS.json (not a facet bundle, or incomplete)")
    sums_text = sums_path.read_text()
    sums = json.loads(sums_text)
    for name in FILES:
        f = path / name
        if not f.exists():
            raise BundleError(f"{path}: missing {name}")
        if sha256_file(f) != sums.get(name):
            raise BundleError(f"{f}: checksum mismatch (expected {sums.get(name)}); refusing a tampered bundle")
    return hashlib.sha256(sums_text.encode()).hexdigest()


def read_config(path: str | Path) -> dict:
    cfg = json.loads((Path(path) / "config.json").read_text())
    if cfg.get("format") != FORMAT:
        raise BundleError(f"{path}: unknown bundle format {cfg.get('format')!r} (expected {FORMAT})")
    return cfg


def load_bundle(path: str | Path, device: str = "cpu") -> tuple[FacetVLM, TextBank, dict]:
    """Verify and load a bundle (safetensors only: nothing is unpickled)."""
    verify_bundle(path)
    cfg = read_config(path)
    # the weights come from the bundle, never from a pretrained tag or checkpoint
    mcfg = from_dict(ModelConfig, {**cfg["model"], "pretrained": None, "checkpoint": None})
    clip, _ = create_clip(mcfg.clip_model)
    model = FacetVLM(mcfg, clip=clip, weights=cfg["weights"])
    missing, unexpected = model.load_state_dict(load_file(Path(path) / "weights.safetensors"), strict=False)
    if missing or unexpected:
        raise BundleError(
            f"{path}: weights do not match the model (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    t = load_file(Path(path) / "text.safetensors")
    bank = TextBank(cfg["labels"], t["class_embeds"], t["prompt_embeds"], t["prompt_labels"], cfg["prompts"])
    return model.to(device).eval(), bank.to(device), cfg
