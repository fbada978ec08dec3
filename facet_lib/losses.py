"""Losses. Each returns a dict of ``*_loss`` tensors; training sums them.

- Symmetric InfoNCE with a learnable temperature (eqs. 8–11). ``form="paper"``: every off-diagonal
  pair in the batch is a negative, as written. ``form="label_aware"`` (default): pairs that share a
  label are positives too (multi-positive cross-entropy, targets spread evenly over them) — with six
  classes most batches hold several samples per label, and calling those negatives pushes apart
  embeddings that should agree.
- Class-conditional cross-entropy (ours, weight ``cond`` — 0 gives the paper's objective): MTGF is
  queried with every class prompt and each fused embedding scored against its own prompt, the way
  class-conditional inference scores; trained only with the true label's prompt as query, MTGF never
  learns to give a wrong-class query a poor match, and class-conditional inference collapses.
- Multiview consistency (eqs. 21–22): the variance of the per-view embeddings around their mean,
  averaged over the batch; equal to the pairwise form (eq. 23) ½·mean_{v,w}‖e_v − e_w‖².
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class LogitScale(nn.Module):
    """CLIP's learnable inverse temperature, initialised at 1/0.07 and capped at 100."""

    def __init__(self, init_temperature: float = 0.07):
        super().__init__()
        self.log_scale = nn.Parameter(torch.tensor(math.log(1 / init_temperature)))

    def forward(self) -> torch.Tensor:
        return self.log_scale.clamp(max=math.log(100)).exp()


def info_nce(
    image: torch.Tensor, text: torch.Tensor, labels: torch.Tensor, scale: torch.Tensor, form: str = "label_aware"
) -> torch.Tensor:
    """Symmetric InfoNCE between (B, d) image and (B, d) text embeddings (eqs. 8–11)."""
    logits = scale * image @ text.t()  # (B, B)
    if form == "paper":
        target = torch.eye(len(labels), device=image.device)
    elif form == "label_aware":
        target = (labels[:, None] == labels[None, :]).float()
    else:
        raise ValueError(f"InfoNCE form must be paper|label_aware, got {form!r}")
    t_i2t = target / target.sum(1, keepdim=True)
    t_t2i = target.t() / target.t().sum(1, keepdim=True)
    l_i2t = -(t_i2t * F.log_softmax(logits, dim=1)).sum(1).mean()
    l_t2i = -(t_t2i * F.log_softmax(logits.t(), dim=1)).sum(1).mean()
    return (l_i2t + l_t2i) / 2


def consistency(view_embeds: torch.Tensor) -> torch.Tensor:
    """(B, V, d) → mean over the batch of (1/V) Σ_v ‖e_v − ē‖² (eqs. 21–22)."""
    mean = view_embeds.mean(dim=1, keepdim=True)
    return ((view_embeds - mean) ** 2).sum(-1).mean()


def consistency_pairwise(view_embeds: torch.Tensor) -> torch.Tensor:
    """The pairwise form (eq. 23): (1 / 2V²) Σ_{v,w} ‖e_v − e_w‖², averaged over the batch."""
    d = view_embeds[:, :, None] - view_embeds[:, None, :]
    return (d**2).sum(-1).mean(dim=(1, 2)).mean() / 2


def class_conditional_ce(
    cond_embed: torch.Tensor, class_embeds: torch.Tensor, labels: torch.Tensor, scale: torch.Tensor
) -> torch.Tensor:
    """cond_embed (B, C, d): the fused embedding queried with each class prompt; CE over s·cos(v_c, t_c)."""
    logits = scale * (cond_embed * class_embeds[None]).sum(-1)
    return F.cross_entropy(logits, labels)


def facet_loss(
    out: dict[str, torch.Tensor],
    text: torch.Tensor,
    labels: torch.Tensor,
    scale: torch.Tensor,
    lam: float = 0.1,
    form: str = "label_aware",
    cond: dict | None = None,
) -> dict[str, torch.Tensor]:
    """L = L_CLIP + λ·L_FACET (λ = 0.1 in the paper) [+ w·L_cond when ``cond`` = {"embed", "classes", "weight"}]."""
    losses = {"clip_loss": info_nce(out["image_embed"][:, 0], text, labels, scale, form)}
    if cond is not None and cond["weight"] > 0:
        losses["cond_loss"] = cond["weight"] * class_conditional_ce(cond["embed"], cond["classes"], labels, scale)
    if lam > 0 and out["view_embeds"].shape[1] > 1:
        losses["consistency_loss"] = lam * consistency(out["view_embeds"])
    return losses
