"""The shared CLIP image encoder (open_clip) split at a frozen/trainable boundary, and its text tower.

Patch tokens are taken after ``ln_post`` and mapped with CLIP's own pretrained visual projection
(``visual.proj``: 768 → 512 for ViT-B/16), so image tokens live in the joint image–text space the
text prompts are embedded in. The lower ``L − k`` blocks can be run once and cached
(``encode_lower``); the top ``k`` blocks, ``ln_post`` and the projection run per step (``encode_upper``).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path

import open_clip
import torch
from open_clip.transformer import QuickGELU
from torch import nn

from facet_lib.errors import ConfigError

TINY = "facet-tiny"
RANDOM_WEIGHTS = "random (untrained)"
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def register_configs() -> None:
    """Register the packaged open_clip configs (``facet-tiny``: a small random-weight CPU model)."""
    if TINY not in open_clip.list_models():
        open_clip.add_model_config(Path(str(resources.files("facet_lib.configs").joinpath("open_clip"))))


def resolve_quick_gelu(model_name: str, pretrained: str | None = None, quick_gelu: bool | None = None) -> bool:
    """Whether to build ``model_name`` with QuickGELU: an explicit ``quick_gelu`` wins; else the pretrained
    tag's own activation (open_clip's pretrained config, ``quick_gelu``: True for OpenAI's weights, which
    were trained with it); else the model config's (``ViT-B-16``: GELU; ``ViT-B-16-quickgelu``: QuickGELU).

    open_clip itself builds ``ViT-B-16`` with GELU even for the ``openai`` tag and only warns."""
    if quick_gelu is not None:
        return bool(quick_gelu)
    register_configs()
    if model_name not in open_clip.list_models():
        raise ConfigError(f"model.clip_model: unknown open_clip model {model_name!r}")
    if pretrained:
        cfg = open_clip.get_pretrained_cfg(model_name, pretrained)
        if not cfg:
            known = open_clip.list_pretrained_tags_by_model(model_name)
            raise ConfigError(
                f"model.pretrained: open_clip has no tag {pretrained!r} for {model_name} (known: {known})"
            )
        if "quick_gelu" in cfg:
            return bool(cfg["quick_gelu"])
    return bool((open_clip.get_model_config(model_name) or {}).get("quick_gelu", False))


def uses_quick_gelu(clip: nn.Module) -> bool:
    """The activation the built model actually has (open_clip's ``QuickGELU`` modules, else GELU)."""
    return any(isinstance(m, QuickGELU) for m in clip.modules())


def create_clip(
    model_name: str,
    pretrained: str | None = None,
    checkpoint: str | None = None,
    cache_dir: str | Path = "~/.cache/facet_vlm",
    fetch: Callable[[str, Path], Path] | None = None,
    quick_gelu: bool | None = None,
) -> tuple[nn.Module, str]:
    """An open_clip model and a description of its weights.

    ``pretrained``: an open_clip tag (e.g. ``openai``; needs internet). ``checkpoint``: a local
    state-dict / safetensors file, or a remote one (``s3://``) that ``fetch(uri, cache_dir)`` turns into
    a local path (e.g. ``facet_lib.storage.local_path``; models/ does not import storage).
    Neither: random weights — reported as such everywhere. ``quick_gelu``: see ``resolve_quick_gelu``
    (a checkpoint carries no activation: a checkpoint-only build takes it from here).
    """
    register_configs()
    if model_name not in open_clip.list_models():
        raise ConfigError(f"unknown open_clip model '{model_name}'")
    if pretrained and checkpoint:
        raise ConfigError("give either a pretrained tag or a checkpoint path, not both")
    weights = RANDOM_WEIGHTS
    source = None
    if checkpoint:
        if fetch is not None:
            source = str(fetch(checkpoint, Path(cache_dir).expanduser()))
        elif "://" in str(checkpoint):
            raise ConfigError(f"checkpoint {checkpoint}: a remote checkpoint needs a fetch function")
        elif not Path(checkpoint).exists():
            raise ConfigError(f"checkpoint {checkpoint}: no such file")
        else:
            source = str(checkpoint)
        weights = f"checkpoint {checkpoint}"
    elif pretrained:
        source = pretrained
        weights = f"open_clip pretrained '{pretrained}'"
    quick = resolve_quick_gelu(model_name, pretrained, quick_gelu)
    model = open_clip.create_model(
        model_name, pretrained=source, cache_dir=str(Path(cache_dir).expanduser()), force_quick_gelu=quick
    )
    if uses_quick_gelu(model) != quick:  # quick_gelu=False on a *-quickgelu model config
        raise ConfigError(f"model.quick_gelu={quick_gelu!r}: open_clip model {model_name} is built with QuickGELU")
    model.eval()
    return model, weights


class VisualTokens:
    """CLIP's visual tower as lower blocks (cacheable) and upper blocks (trainable) over patch tokens.

    A view of ``clip.visual``, not a module of its own: the weights stay registered once, in the CLIP model.
    """

    def __init__(self, visual: nn.Module, trainable_top: int):
        blocks = visual.transformer.resblocks
        if not 0 <= trainable_top <= len(blocks):
            raise ConfigError(f"unfreeze_top must be in [0, {len(blocks)}], got {trainable_top}")
        if not getattr(visual.transformer, "batch_first", True):
            raise ConfigError("open_clip transformer must be batch-first")
        self.visual = visual
        self.split = len(blocks) - trainable_top
        self.image_size = int(visual.image_size[0] if isinstance(visual.image_size, tuple) else visual.image_size)
        self.mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
        self.std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)

    @property
    def token_dim(self) -> int:
        return (
            int(self.visual.proj.shape[1])
            if self.visual.proj is not None
            else int(self.visual.ln_post.normalized_shape[0])
        )

    @property
    def n_patches(self) -> int:
        return int(self.visual.positional_embedding.shape[0]) - 1

    def upper_parameters(self) -> list[nn.Parameter]:
        mods = list(self.visual.transformer.resblocks[self.split :]) + [self.visual.ln_post]
        params = [p for m in mods for p in m.parameters()]
        if self.visual.proj is not None:
            params.append(self.visual.proj)
        return params

    def preprocess(self, views: torch.Tensor) -> torch.Tensor:
        """uint8 (B, H, W, 3) → normalised float (B, 3, S, S) at the model's input size."""
        x = views.permute(0, 3, 1, 2).float() / 255.0
        if x.shape[-1] != self.image_size:
            x = nn.functional.interpolate(
                x, size=(self.image_size, self.image_size), mode="bilinear", antialias=True, align_corners=False
            )
        return (x - self.mean.to(x.device)) / self.std.to(x.device)

    def encode_lower(self, views: torch.Tensor) -> torch.Tensor:
        """uint8 views (B, H, W, 3) → hidden states (B, 1 + N, width) after the frozen blocks."""
        x = self.visual._embeds(self.preprocess(views))
        for blk in self.visual.transformer.resblocks[: self.split]:
            x = blk(x)
        return x

    def encode_upper(self, hidden: torch.Tensor) -> torch.Tensor:
        """Hidden states → projected patch tokens (B, N, token_dim); the CLS token is dropped."""
        x = hidden
        for blk in self.visual.transformer.resblocks[self.split :]:
            x = blk(x)
        x = self.visual.ln_post(x[:, 1:])
        return x @ self.visual.proj if self.visual.proj is not None else x


class TextEncoder:
    """The frozen CLIP text tower (a view of the CLIP model); embeddings are L2-normalised."""

    def __init__(self, clip: nn.Module, model_name: str):
        self.clip = clip
        self.tokenizer = open_clip.get_tokenizer(model_name)

    @torch.no_grad()
    def __call__(self, prompts: list[str]) -> torch.Tensor:
        dev = next(self.clip.parameters()).device
        return self.clip.encode_text(self.tokenizer(prompts).to(dev), normalize=True).float()
