"""Frozen-backbone feature cache.

The lower ``L − k`` visual blocks never train, so their output for a rendered dataset is computed
once and reused across epochs, folds and ablation variants; only the top ``k`` blocks and the fusion
head run per step. Cached in float16, keyed by the backbone, its weights, the split point and the
rendered dataset's config digest and sample ids.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from facet_lib.files import atomic_write
from facet_lib.models.model import FacetVLM
from facet_lib.progress import progress_bar


def cache_key(model: FacetVLM, render_digest: str, sample_ids: list[str]) -> str:
    h = hashlib.sha256()
    for part in (model.cfg.clip_model, model.weights, str(model.visual.split), render_digest, *sample_ids):
        h.update(part.encode())
    return h.hexdigest()[:20]


@torch.no_grad()
def compute_hidden(
    model: FacetVLM, views: np.ndarray, batch: int = 32, device: str = "cpu", progress: bool = True
) -> torch.Tensor:
    """uint8 (N, 3, H, W, 3) → float16 lower-block states (N, 3, 1+N_patches, width)."""
    out = []
    for i in progress_bar(range(0, len(views), batch), desc="backbone features", unit="batch", disable=not progress):
        v = torch.from_numpy(views[i : i + batch]).to(device)
        out.append(model.hidden_from_views(v).to(torch.float16).cpu())
    return torch.cat(out)


def cached_hidden(
    model: FacetVLM,
    views: np.ndarray | Callable[[], np.ndarray],
    render_digest: str,
    sample_ids: list[str],
    cache_dir: str | Path,
    device: str = "cpu",
    progress: bool = True,
) -> torch.Tensor:
    """``compute_hidden`` through an on-disk cache; ``views`` may be a function that reads them (called only
    when the cache has no entry)."""
    path = Path(cache_dir) / f"hidden-{cache_key(model, render_digest, sample_ids)}.safetensors"
    if path.exists():
        return load_file(path)["hidden"]
    hidden = compute_hidden(model, views() if callable(views) else views, device=device, progress=progress)
    atomic_write(path, lambda tmp: save_file({"hidden": hidden.contiguous()}, tmp))
    return hidden
