"""FACET-VLM fusion head over the patch tokens of the three views.

Equation numbers refer to Behzad (2025), "FACET-VLM".
- View-specific learned positional encodings: one (N, d) table per view, added to its tokens.
- CVSA (eqs. 3–6): self-attention over the concatenated 3N tokens; mean pooling → v_fused.
- MTGF (eqs. 14–18): the prompt's text embedding is a single-head query over the 3N tokens → v_tg.
- Gate (eqs. 19–20): α = σ(W_g t); v_final = α·v_tg + (1 − α)·v_fused.
Per-view embeddings for the consistency loss: each view's share of the fused tokens, mean-pooled
and passed through the same output projection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class HeadConfig:
    dim: int
    n_tokens: int
    n_views: int = 3
    cvsa: bool = True
    cvsa_depth: int = 1
    cvsa_heads: int = 8
    cvsa_mlp: bool = False  # the paper's CVSA is attention only; an MLP sub-layer is optional
    mtgf: bool = True


class CVSABlock(nn.Module):
    """Pre-norm multi-head self-attention over all views' tokens with a residual (eqs. 3–6);
    optionally followed by an MLP sub-layer as in a standard transformer block."""

    def __init__(self, dim: int, heads: int, mlp: bool = False):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.mlp = (
            nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
            if mlp
            else None
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (B, 3N, d)
        h = self.norm1(z)
        z = z + self.attn(h, h, h, need_weights=False)[0]  # softmax(QKᵀ/√d)V, eqs. 4–5
        return z + self.mlp(z) if self.mlp is not None else z


class MTGF(nn.Module):
    """Text-guided fusion: single-head attention with the prompt embedding as query (eqs. 14–20)."""

    def __init__(self, dim: int):
        super().__init__()
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.gate = nn.Linear(dim, 1)  # W_g (eq. 19)
        self.norm = nn.LayerNorm(dim)

    def forward(self, z: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """z (B, M, d) tokens, t (B, Q, d) queries → v_tg (B, Q, d), attention (B, Q, M), α (B, Q, 1)."""
        h = self.norm(z)
        q, k, v = self.q(t), self.k(h), self.v(h)
        attn = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(q.shape[-1]), dim=-1)  # eq. 16
        return attn @ v, attn, torch.sigmoid(self.gate(t))  # eqs. 17, 19


class FacetHead(nn.Module):
    def __init__(self, cfg: HeadConfig):
        super().__init__()
        self.cfg = cfg
        self.view_pos = nn.Parameter(torch.randn(cfg.n_views, cfg.n_tokens, cfg.dim) * 0.02)
        blocks = [CVSABlock(cfg.dim, cfg.cvsa_heads, cfg.cvsa_mlp) for _ in range(cfg.cvsa_depth)]
        self.cvsa = nn.ModuleList(blocks) if cfg.cvsa else None
        self.mtgf = MTGF(cfg.dim) if cfg.mtgf else None
        self.out = nn.Sequential(nn.LayerNorm(cfg.dim), nn.Linear(cfg.dim, cfg.dim))

    def forward(
        self, tokens: torch.Tensor, query: torch.Tensor | None = None, views: list[int] | None = None
    ) -> dict[str, torch.Tensor]:
        """tokens (B, V, N, d); query (B, d) or (B, Q, d) prompt embeddings (needed with MTGF).

        Returns image_embed (B, Q, d) L2-normalised, view_embeds (B, V, d), alpha (B, Q, 1) and
        attention (B, Q, V·N) (ones for α and zeros for attention without MTGF)."""
        views = list(range(tokens.shape[1])) if views is None else views
        b, nv, n, d = tokens.shape
        z = (tokens + self.view_pos[views]).reshape(b, nv * n, d)
        if self.cvsa is not None:
            for blk in self.cvsa:
                z = blk(z)
        # without CVSA each view is pooled alone and the views averaged: late fusion
        v_fused = z.mean(dim=1)  # eq. 6
        view_embeds = F.normalize(self.out(z.reshape(b, nv, n, d).mean(dim=2)), dim=-1)
        if self.mtgf is not None:
            if query is None:
                raise ValueError("MTGF needs a text query")
            q = query[:, None] if query.dim() == 2 else query
            v_tg, attn, alpha = self.mtgf(z, q)
            v_final = alpha * v_tg + (1 - alpha) * v_fused[:, None]  # eq. 20
        else:
            nq = 1 if query is None or query.dim() == 2 else query.shape[1]
            v_final = v_fused[:, None].expand(b, nq, d)
            attn = torch.zeros(b, nq, nv * n, device=z.device)
            alpha = torch.zeros(b, nq, 1, device=z.device)
        return {
            "image_embed": F.normalize(self.out(v_final), dim=-1),
            "view_embeds": view_embeds,
            "alpha": alpha,
            "attention": attn,
        }
