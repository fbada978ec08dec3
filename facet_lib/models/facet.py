"""FACET-VLM fusion head over the patch tokens of the three views.

Equation numbers refer to Behzad (2025), "FACET-VLM" (see docs/paper-notes.md for the readings taken).
- View-specific learned positional encodings: one (N, d) table per view, added to its tokens → ẑ.
- CVSA (eqs. 3–6): self-attention (eq. 4) over the concatenated 3N tokens; mean pooling → v_fused (eq. 6).
  ``cvsa_form="eq4"`` (paper): softmax(Z W_Q (Z W_K)ᵀ/√d) Z W_V, one head, d×d matrices, nothing else;
  ``"block"`` (ours): pre-LayerNorm multi-head attention with output projection and residual [+ MLP].
- MTGF (eqs. 14–18): the prompt's text embedding t is a single-head query over the tokens (eqs. 14–16),
  softmax (eq. 17), attention-weighted values (eq. 18) → v_tg. The tokens are ẑ as eq. 14
  writes (``mtgf_input="pre_cvsa"``) or the CVSA output, as the prose's "after the CVSA module" can be
  read (``"post_cvsa"``). No LayerNorm and no biases as written; ``mtgf_key_norm``/``mtgf_bias`` are ours.
- Gate (eqs. 19–20): α = σ(W_g t) (``gate_bias``: ours); v_final = α·v_tg + (1 − α)·v_fused.
- Output (``head_out``): ``none`` (the paper: v_final is compared with the text embedding as it is),
  ``identity`` (a Linear initialised to the identity, zero bias) or ``learned`` (LayerNorm + Linear, ours).
Per-view embeddings for the consistency loss: each view's mean-pooled tokens, taken from the encoder
output before CVSA (``view_embed_from="pre_cvsa"``, "encourages the encoder", §2.5.3) or from each
view's share of the CVSA output (``"post_cvsa"``), through the same output layer.

With ``head_out`` none/identity the head starts as (almost) CLIP's own mean pooling in the joint
image–text space, so untrained zero-shot scores are not scrambled: the block CVSA's residual branch starts
at zero, eq. 4's W_Q at zero and its W_V at the identity (uniform attention over values = the tokens, so
v_fused starts as the tokens' mean), and MTGF's value projection at the identity on the un-normalised
tokens (the paper is silent on initialisation). ``learned`` keeps the
earlier head exactly (default initialisation, values from LayerNorm'd tokens).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from facet_lib.config import HeadConfig
from facet_lib.errors import ConfigError


def check_width(cfg: HeadConfig, dim: int) -> None:
    """What only the built model knows: the backbone's token width ``dim``. (Every choice of ``cfg`` is
    checked by ``HeadConfig`` itself.) The block CVSA splits the width over its heads."""
    if cfg.cvsa_form == "block" and dim % cfg.cvsa_heads:  # built even with cvsa off
        raise ConfigError(
            f"head.cvsa_heads={cfg.cvsa_heads} must divide the backbone's token width {dim} "
            f"(cvsa_form 'block' splits the width over its heads)"
        )


class CrossViewAttention(nn.Module):
    """Eq. 4 as written: Attn = softmax(Q Kᵀ/√d) V with Q, K, V = Z W_Q, Z W_K, Z W_V, W ∈ R^{d×d}: one head,
    no bias, no normalisation, no output projection, no residual. ``keep_space``: W_Q = 0 and W_V = I at the
    start (uniform attention over the tokens themselves: v_fused starts as their mean)."""

    def __init__(self, dim: int, keep_space: bool = False):
        super().__init__()
        self.q, self.k, self.v = (nn.Linear(dim, dim, bias=False) for _ in range(3))
        if keep_space:
            with torch.no_grad():
                self.q.weight.zero_()
                self.v.weight.copy_(torch.eye(dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (B, 3N, d) → (B, 3N, d)
        return F.scaled_dot_product_attention(self.q(z), self.k(z), self.v(z))  # eq. 4, scale 1/√d


class CVSABlock(nn.Module):
    """Pre-norm multi-head self-attention over all views' tokens with a residual (eqs. 3–5);
    optionally followed by an MLP sub-layer as in a standard transformer block.
    ``zero_init``: the residual branch starts at zero, so the block starts as the identity."""

    def __init__(self, dim: int, heads: int, mlp: bool = False, zero_init: bool = False):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.mlp = (
            nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
            if mlp
            else None
        )
        if zero_init:
            nn.init.zeros_(self.attn.out_proj.weight)
            nn.init.zeros_(self.attn.out_proj.bias)
            if self.mlp is not None:
                nn.init.zeros_(self.mlp[-1].weight)
                nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (B, 3N, d)
        h = self.norm1(z)
        z = z + self.attn(h, h, h, need_weights=False)[0]  # softmax(QKᵀ/√d_k)V, eq. 4
        return z + self.mlp(z) if self.mlp is not None else z


class MTGF(nn.Module):
    """Text-guided fusion: single-head attention with the prompt embedding as query (eqs. 14–20).

    ``preserve_space``: values are W_v·z on the un-normalised tokens with W_v initialised to the
    identity, so v_tg starts as a weighted mean of tokens in the joint space; otherwise values are
    taken from LayerNorm'd tokens with the default initialisation."""

    def __init__(
        self,
        dim: int,
        preserve_space: bool = False,
        key_norm: bool = False,
        bias: bool = False,
        gate_bias: bool = False,
    ):
        super().__init__()
        self.q, self.k, self.v = (nn.Linear(dim, dim, bias=bias) for _ in range(3))  # W_Q, W_K, W_V (eqs. 15-16)
        self.gate = nn.Linear(dim, 1, bias=gate_bias)  # W_g (eq. 19)
        self.norm = nn.LayerNorm(dim) if key_norm else None  # ours (``mtgf_key_norm``)
        self.preserve_space = preserve_space
        if preserve_space:
            with torch.no_grad():
                self.v.weight.copy_(torch.eye(dim))
                if bias:
                    self.v.bias.zero_()

    def forward(self, z: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """z (B, M, d) tokens, t (B, Q, d) queries → v_tg (B, Q, d), attention (B, Q, M), α (B, Q, 1)."""
        h = self.norm(z) if self.norm is not None else z
        q, k = self.q(t), self.k(h)  # eqs. 15–16
        v = self.v(z if self.preserve_space else h)
        attn = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(q.shape[-1]), dim=-1)  # eq. 17
        return attn @ v, attn, torch.sigmoid(self.gate(t))  # eq. 18, eq. 19


def _output_layer(kind: str, dim: int) -> nn.Module:
    if kind == "none":
        return nn.Identity()
    if kind == "identity":
        lin = nn.Linear(dim, dim)
        with torch.no_grad():
            lin.weight.copy_(torch.eye(dim))
            lin.bias.zero_()
        return lin
    return nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim))


class FacetHead(nn.Module):
    """The fusion head for ``n_views`` views of ``n_tokens`` tokens of width ``dim`` (sizes from the backbone)."""

    def __init__(self, cfg: HeadConfig, dim: int, n_tokens: int, n_views: int = 3):
        super().__init__()
        check_width(cfg, dim)
        self.cfg = cfg
        keep = cfg.head_out != "learned"
        self.view_pos = nn.Parameter(torch.randn(n_views, n_tokens, dim) * 0.02)
        blocks = [
            CrossViewAttention(dim, keep_space=keep)
            if cfg.cvsa_form == "eq4"
            else CVSABlock(dim, cfg.cvsa_heads, cfg.cvsa_mlp, zero_init=keep)
            for _ in range(cfg.cvsa_depth)
        ]
        self.cvsa = nn.ModuleList(blocks) if cfg.cvsa else None
        mtgf = dict(key_norm=cfg.mtgf_key_norm, bias=cfg.mtgf_bias, gate_bias=cfg.gate_bias)
        self.mtgf = MTGF(dim, preserve_space=keep, **mtgf) if cfg.mtgf else None
        self.out = _output_layer(cfg.head_out, dim)

    def forward(
        self, tokens: torch.Tensor, query: torch.Tensor | None = None, views: list[int] | None = None
    ) -> dict[str, torch.Tensor]:
        """tokens (B, V, N, d); query (B, d) or (B, Q, d) prompt embeddings (needed with MTGF).

        Returns image_embed (B, Q, d) L2-normalised, view_embeds (B, V, d), alpha (B, Q, 1) and
        attention (B, Q, V·N) (zeros for α and attention without MTGF)."""
        views = list(range(tokens.shape[1])) if views is None else views
        b, nv, n, d = tokens.shape
        z_hat = (tokens + self.view_pos[views]).reshape(b, nv * n, d)  # ẑ, what eq. 14 attends over
        z = z_hat
        if self.cvsa is not None:
            for blk in self.cvsa:
                z = blk(z)
        # without CVSA each view is pooled alone and the views averaged: late fusion
        v_fused = z.mean(dim=1)  # eq. 6
        per_view = tokens if self.cfg.view_embed_from == "pre_cvsa" else z.reshape(b, nv, n, d)
        view_embeds = F.normalize(self.out(per_view.mean(dim=2)), dim=-1)  # e_v of eqs. 21–23
        if self.mtgf is not None:
            if query is None:
                raise ValueError("MTGF needs a text query")
            q = query[:, None] if query.dim() == 2 else query
            v_tg, attn, alpha = self.mtgf(z_hat if self.cfg.mtgf_input == "pre_cvsa" else z, q)
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


class LogitScale(nn.Module):
    """CLIP's learnable inverse temperature, initialised at 1/0.07 and capped at 100."""

    def __init__(self, init_temperature: float = 0.07):
        super().__init__()
        self.log_scale = nn.Parameter(torch.tensor(math.log(1 / init_temperature)))

    def forward(self) -> torch.Tensor:
        return self.log_scale.clamp(max=math.log(100)).exp()
