"""Model bundles: writing and loading the weights (torch). The format itself (layout, checksums,
config; stdlib only) lives in ``facet_lib.bundle_format``, which the registry uses without torch.

Loading verifies every checksum first and refuses a mismatch; nothing is unpickled.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from facet_lib.bundle_format import FILES, FORMAT, BundleError, read_config, verify_bundle, write_checksums
from facet_lib.config import ModelConfig, from_dict
from facet_lib.files import atomic_write
from facet_lib.models.backbone import create_clip
from facet_lib.models.model import FacetVLM, TextBank

__all__ = ["FILES", "FORMAT", "BundleError", "load_bundle", "model_state", "read_config", "save_bundle"]
__all__ += ["verify_bundle"]


def model_state(model: FacetVLM) -> dict[str, torch.Tensor]:
    return model.weights_state()


def save_bundle(out: str | Path, model: FacetVLM, bank: TextBank, render: dict, extra: dict | None = None) -> str:
    """Write a bundle; returns its digest (SHA-256 of CHECKSUMS.json). Files appear complete or not at all."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "weights.safetensors", lambda p: save_file(model_state(model), p))
    text = {
        "class_embeds": bank.class_embeds.cpu().contiguous(),
        "prompt_embeds": bank.prompt_embeds.cpu().contiguous(),
        "prompt_labels": bank.prompt_labels.cpu().contiguous(),
    }
    atomic_write(out / "text.safetensors", lambda p: save_file(text, p))
    cfg = {
        "format": FORMAT,
        "model": model.cfg.to_dict(),
        "weights": model.weights,
        "labels": bank.labels,
        "prompts": bank.prompts,
        "render": render,
        **(extra or {}),
    }
    atomic_write(out / "config.json", json.dumps(cfg, indent=1, default=str))
    return write_checksums(out)  # CHECKSUMS.json last; files 0644 under the umask


def load_bundle(
    path: str | Path, device: str = "cpu", expected_digest: str | None = None
) -> tuple[FacetVLM, TextBank, dict]:
    """Verify (against ``expected_digest`` too, when given) and load a bundle (safetensors only)."""
    verify_bundle(path, expected_digest)
    cfg = read_config(path)
    # the weights come from the bundle, never from a pretrained tag or checkpoint
    mcfg = from_dict(ModelConfig, {**cfg["model"], "pretrained": None, "checkpoint": None})
    clip, _ = create_clip(mcfg.clip_model, quick_gelu=mcfg.quick_gelu)  # no quick_gelu saved (older): as before
    model = FacetVLM(mcfg, clip=clip, weights=cfg["weights"])
    missing, unexpected = model.load_state_dict(load_file(Path(path) / "weights.safetensors"), strict=False)
    if missing or unexpected:
        raise BundleError(
            f"{path}: weights do not match the model (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    t = load_file(Path(path) / "text.safetensors")
    bank = TextBank(cfg["labels"], t["class_embeds"], t["prompt_embeds"], t["prompt_labels"], cfg["prompts"])
    return model.to(device).eval(), bank.to(device), cfg
