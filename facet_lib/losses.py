"""Losses. Each returns a dict of ``*_loss`` tensors; training sums them.

- Symmetric InfoNCE with a learnable temperature (eqs. 8–11). ``form="paper"`` (the default): diagonal
  positives, every off-diagonal pair in the batch a negative, as written. ``form="label_aware"``
  (``recommended``, ``tiny-cpu``): pairs that share a
  label are positives too (multi-positive cross-entropy, targets spread evenly over them) — with six
  classes most batches hold several samples per label, and calling those negatives pushes apart
  embeddings that should agree.
- Class-conditional cross-entropy (ours, weight ``cond`` — 0 gives the paper's objective): MTGF is
  queried with every class prompt and each fused embedding scored against its own prompt, the way
  class-conditional inference scores; trained only with the true label's prompt as query, MTGF never
  learns to give a wrong-class query a poor match, and class-conditional inference collapses.
- Multiview consistency (eqs. 21–24), three forms that differ by constant factors in the paper (so
  λ = 0.1 has no single meaning; see docs/paper-notes.md). With e_v the L2-normalised per-view
  embeddings and ē their mean, per sample, averaged over the batch:
  ``variance`` (eq. 22, the default): (1/V) Σ_v ‖e_v − ē‖²;
  ``pairwise_eq21``: (1/V) Σ_{v≠w} ‖e_v − e_w‖² = 2V × eq. 22 (6× for three views);
  ``eq23``: the right side of eq. 23, (1/V) Σ_{v<w} ‖e_v − e_w‖² = V × eq. 22 (3×; eq. 24 is its gradient).
  The paper states eq. 23 equal to eq. 22; it is not (Σ_{v<w} ‖e_v − e_w‖² = V Σ_v ‖e_v − ē‖²). The
  normalisations written here are our reading, chosen to reproduce the factors between the equations.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from facet_lib.config.train import CONSISTENCY_FORMS, LOSS_FORMS
from facet_lib.errors import ConfigError


def info_nce(
    image: torch.Tensor, text: torch.Tensor, labels: torch.Tensor, scale: torch.Tensor, form: str = "paper"
) -> torch.Tensor:
    """Symmetric InfoNCE between (B, d) image and (B, d) text embeddings (eqs. 8–11)."""
    logits = scale * image @ text.t()  # (B, B)
    if form == "paper":
        target = torch.eye(len(labels), device=image.device)
    elif form == "label_aware":
        target = (labels[:, None] == labels[None, :]).float()
    else:
        raise ConfigError(f"train.loss_form: expected one of {LOSS_FORMS}, got {form!r}")
    t_i2t = target / target.sum(1, keepdim=True)
    t_t2i = target.t() / target.t().sum(1, keepdim=True)
    l_i2t = -(t_i2t * F.log_softmax(logits, dim=1)).sum(1).mean()
    l_t2i = -(t_t2i * F.log_softmax(logits.t(), dim=1)).sum(1).mean()
    return (l_i2t + l_t2i) / 2


def consistency(view_embeds: torch.Tensor, form: str = "variance") -> torch.Tensor:
    """(B, V, d) → the consistency loss of ``form`` (see the module docstring), averaged over the batch."""
    v = view_embeds.shape[1]
    if form == "variance":  # eq. 22
        mean = view_embeds.mean(dim=1, keepdim=True)
        return ((view_embeds - mean) ** 2).sum(-1).mean(1).mean()
    if form not in CONSISTENCY_FORMS:
        raise ConfigError(f"train.consistency: expected one of {CONSISTENCY_FORMS}, got {form!r}")
    d2 = ((view_embeds[:, :, None] - view_embeds[:, None, :]) ** 2).sum(-1)  # (B, V, V), zero diagonal
    ordered = d2.sum(dim=(1, 2)) / v  # eq. 21: (1/V) Σ_{v≠w}
    return (ordered if form == "pairwise_eq21" else ordered / 2).mean()  # eq. 23: (1/V) Σ_{v<w}


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
    lam: float,
    form: str,
    cond: dict | None = None,
    consistency_form: str = "variance",
) -> dict[str, torch.Tensor]:
    """L = L_CLIP + λ·L_FACET (eq. 25) [+ w·L_cond when ``cond`` = {"embed", "classes", "weight"}].
    λ, the InfoNCE form and the consistency form come from ``TrainConfig`` (one source of defaults)."""
    losses = {"clip_loss": info_nce(out["image_embed"][:, 0], text, labels, scale, form)}
    if cond is not None and cond["weight"] > 0:
        losses["cond_loss"] = cond["weight"] * class_conditional_ce(cond["embed"], cond["classes"], labels, scale)
    if lam > 0 and out["view_embeds"].shape[1] > 1:
        losses["consistency_loss"] = lam * consistency(out["view_embeds"], consistency_form)
    return losses
