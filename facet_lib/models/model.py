"""FacetVLM: the CLIP backbone, the FACET head, the learnable temperature and the cached prompt bank."""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from facet_lib.config import INFERENCE_MODES, ModelConfig
from facet_lib.errors import ConfigError
from facet_lib.models.backbone import RANDOM_WEIGHTS, TextEncoder, VisualTokens, create_clip, uses_quick_gelu
from facet_lib.models.facet import FacetHead, LogitScale


@dataclass
class TextBank:
    """Prompt embeddings, computed once: class embeddings (mean of each label's prompts, eq. 7) and
    every prompt (one is sampled per training instance)."""

    labels: list[str]
    class_embeds: torch.Tensor  # (C, d)
    prompt_embeds: torch.Tensor  # (P, d)
    prompt_labels: torch.Tensor  # (P,)
    prompts: list[str] = field(default_factory=list)

    def sample(self, labels: torch.Tensor, gen: random.Random) -> torch.Tensor:
        """One prompt embedding per instance of its own label."""
        out = []
        for y in labels.tolist():
            idx = torch.nonzero(self.prompt_labels == y).flatten().tolist()
            out.append(self.prompt_embeds[gen.choice(idx)])
        return torch.stack(out)

    def to(self, device) -> TextBank:
        return TextBank(
            self.labels,
            self.class_embeds.to(device),
            self.prompt_embeds.to(device),
            self.prompt_labels.to(device),
            self.prompts,
        )


def _act(quick: bool) -> str:
    return "QuickGELU" if quick else "GELU"


class FacetVLM(nn.Module):
    def __init__(self, cfg: ModelConfig, clip: nn.Module | None = None, weights: str | None = None, fetch=None):
        """``fetch(uri, cache_dir) → local path`` resolves a remote ``checkpoint`` (see ``create_clip``)."""
        super().__init__()
        if clip is None:
            clip, weights = create_clip(
                cfg.clip_model, cfg.pretrained, cfg.checkpoint, fetch=fetch, quick_gelu=cfg.quick_gelu
            )
        quick = uses_quick_gelu(clip)
        if cfg.quick_gelu is not None and cfg.quick_gelu != quick:
            raise ConfigError(f"model.quick_gelu={cfg.quick_gelu}: the given CLIP model has {_act(quick)}")
        self.cfg = dataclasses.replace(cfg, quick_gelu=quick)  # the activation built, recorded (bundles)
        self.clip = clip
        self.weights = weights or RANDOM_WEIGHTS
        for p in self.clip.parameters():
            p.requires_grad_(False)
        self.visual = VisualTokens(self.clip.visual, cfg.unfreeze_top)
        self.text = TextEncoder(self.clip, cfg.clip_model)
        self.head = FacetHead(cfg.head, dim=self.visual.token_dim, n_tokens=self.visual.n_patches, n_views=3)
        self.logit_scale = LogitScale()

    # -- parameters ------------------------------------------------------------------------------
    def backbone_trainable(self) -> list[nn.Parameter]:
        return self.visual.upper_parameters()

    def set_backbone_trainable(self, on: bool) -> None:
        for p in self.backbone_trainable():
            p.requires_grad_(on)

    def weights_state(self, trainable_only: bool = False) -> dict[str, torch.Tensor]:
        """CPU copies of the weights: all of them (a bundle), or what a fold trains (``trainable_only``:
        the head, the temperature and the top visual blocks)."""
        if trainable_only:
            ids = {id(p) for p in self.backbone_trainable()}
            clip = {k: p for k, p in self.clip.named_parameters() if id(p) in ids}
        else:
            clip = self.clip.state_dict()
        state = {f"clip.{k}": v for k, v in clip.items()}
        state |= {f"head.{k}": v for k, v in self.head.state_dict().items()}
        state |= {f"logit_scale.{k}": v for k, v in self.logit_scale.state_dict().items()}
        return {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}

    # -- text ------------------------------------------------------------------------------------
    def build_text_bank(self, labels: list[str], prompts: dict[str, list[str]]) -> TextBank:
        """Encode every label's prompts once (frozen text encoder). ``prompts``: label → its prompts, the
        first being the canonical one (``facet_lib.data.labels.prompts_for(labels, cfg.micro, mode=cfg.prompts)``)."""
        missing = [lab for lab in labels if not prompts.get(lab)]
        if missing:
            raise ConfigError(f"no prompts given for label(s) {missing}")
        all_p, all_l, cls, flat = [], [], [], []
        for i, lab in enumerate(labels):
            ps = list(prompts[lab])
            emb = self.text(ps)
            cls.append(F.normalize(emb.mean(0), dim=-1))  # eq. 7: the label's prompts averaged
            all_p.append(emb)
            all_l += [i] * len(ps)
            flat += ps
        return TextBank(list(labels), torch.stack(cls), torch.cat(all_p), torch.tensor(all_l), flat)

    # -- image -----------------------------------------------------------------------------------
    def tokens_from_hidden(self, hidden: torch.Tensor, views: tuple[int, ...] | None = None) -> torch.Tensor:
        """Lower-block states (B, 3, 1+N, w) → projected patch tokens (B, V', N, d) of the used views."""
        h = hidden[:, list(self.cfg.views if views is None else views)]
        b, v = h.shape[:2]
        return self.visual.encode_upper(h.flatten(0, 1).to(self.head.view_pos.dtype)).unflatten(0, (b, v))

    def hidden_from_views(self, views: torch.Tensor) -> torch.Tensor:
        """uint8 views (B, 3, H, W, 3) → lower-block states (B, 3, 1+N, w)."""
        b = views.shape[0]
        return self.visual.encode_lower(views.flatten(0, 1)).unflatten(0, (b, views.shape[1]))

    def fuse(self, tokens: torch.Tensor, query: torch.Tensor | None) -> dict[str, torch.Tensor]:
        return self.head(tokens, query, views=list(self.cfg.views))

    @torch.no_grad()
    def scores(self, tokens: torch.Tensor, class_embeds: torch.Tensor, mode: str = "class_conditional"):
        """Cosine-similarity logits (B, C) against the class prompts.

        class_conditional: MTGF is queried with each class's own prompt and that fused embedding is
        compared with that prompt. label_free: one query, the mean prompt, for every class."""
        b = tokens.shape[0]
        if mode == "class_conditional" and self.cfg.head.mtgf:
            out = self.fuse(tokens, class_embeds[None].expand(b, -1, -1))
            sims = (out["image_embed"] * class_embeds[None]).sum(-1)
        elif mode in INFERENCE_MODES:
            q = F.normalize(class_embeds.mean(0), dim=-1)[None].expand(b, -1)
            out = self.fuse(tokens, q)
            sims = out["image_embed"][:, 0] @ class_embeds.t()
        else:
            raise ValueError(f"mode must be {'|'.join(INFERENCE_MODES)}, got {mode!r}")
        return sims * self.logit_scale(), out
