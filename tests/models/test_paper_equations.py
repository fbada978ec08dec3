"""The `paper` preset's head is eqs. 4-6 and 14-20 as printed: each equation is re-implemented here on toy
tensors from the paper's symbols (W ∈ R^{d×d} right-multiplied, no bias, no LayerNorm, no residual) with the
module's own weights, and compared with the module. The `recommended` forms are shown to differ."""

import math

import pytest
import torch

from facet_lib.config import HeadConfig, preset
from facet_lib.models.facet import MTGF, CrossViewAttention, FacetHead

D, N, B = 16, 5, 3  # token width d, tokens per view N, batch


def _eq4(z, wq, wk, wv):
    """Eq. 4 with Q = Z W_Q, K = Z W_K, V = Z W_V."""
    q, k, v = z @ wq, z @ wk, z @ wv
    return torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(z.shape[-1]), dim=-1) @ v


def _eqs15_20(z_multi, t, v_fused, wq, wk, wv, wg):
    """Eqs. 15-20 for one query per sample: q_t = t W_Q; K_v, V_v = Z W_K, Z W_V; A_t = softmax(q Kᵀ/√d);
    v_tg = A_t V_v; α = σ(W_g t) (W_g ∈ R^{d×1}); v_final = α v_tg + (1 − α) v_fused."""
    q = t[:, None] @ wq  # (B, 1, d), eq. 15
    k, v = z_multi @ wk, z_multi @ wv  # eq. 16
    a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(t.shape[-1]), dim=-1)  # eq. 17
    v_tg = (a @ v)[:, 0]  # eq. 18
    alpha = torch.sigmoid(t @ wg)  # eq. 19, (B, 1)
    return alpha * v_tg + (1 - alpha) * v_fused, a[:, 0], alpha  # eq. 20


def _randomise(module):
    torch.manual_seed(3)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.3)


def test_paper_preset_head_has_the_literal_forms():
    head = preset("paper")[0].head
    assert (head.cvsa_form, head.cvsa_heads, head.cvsa_depth, head.cvsa_mlp) == ("eq4", 1, 1, False)
    assert (head.mtgf_key_norm, head.mtgf_bias, head.gate_bias, head.head_out) == (False, False, False, "none")
    m = FacetHead(head, dim=D, n_tokens=N)
    names = {n for n, _ in m.named_parameters()}
    assert names == {"view_pos", "cvsa.0.q.weight", "cvsa.0.k.weight", "cvsa.0.v.weight"} | {
        f"mtgf.{p}.weight" for p in ("q", "k", "v", "gate")
    }  # no bias, no LayerNorm, no output projection anywhere


def test_cvsa_is_eq4():
    torch.manual_seed(0)
    att = CrossViewAttention(D)
    _randomise(att)
    z = torch.randn(B, 3 * N, D)
    ref = _eq4(z, att.q.weight.t(), att.k.weight.t(), att.v.weight.t())
    torch.testing.assert_close(att(z), ref, rtol=1e-5, atol=1e-6)


def test_mtgf_is_eqs15_to_19():
    m = MTGF(D)
    _randomise(m)
    z, t = torch.randn(B, 3 * N, D), torch.randn(B, D)
    v_tg, attn, alpha = m(z, t[:, None])
    q, k, v = t[:, None] @ m.q.weight.t(), z @ m.k.weight.t(), z @ m.v.weight.t()
    a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(D), dim=-1)
    torch.testing.assert_close(attn, a, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(v_tg, a @ v, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(alpha[:, 0], torch.sigmoid(t @ m.gate.weight.t()), rtol=1e-5, atol=1e-6)


def test_paper_head_is_eqs_3_to_20():
    """The whole head under `paper`: eq. 5 (view encodings), 3 and 14 (concatenation), 4, 6, 15-20; the
    output is v_final L2-normalised for the cosine of eq. 8."""
    head = FacetHead(preset("paper")[0].head, dim=D, n_tokens=N)
    _randomise(head)
    tokens, t = torch.randn(B, 3, N, D), torch.randn(B, D)
    out = head(tokens, t)
    z_hat = (tokens + head.view_pos).reshape(B, 3 * N, D)  # eq. 5, then eq. 3 / eq. 14
    c, g = head.cvsa[0], head.mtgf
    v_fused = _eq4(z_hat, c.q.weight.t(), c.k.weight.t(), c.v.weight.t()).mean(1)  # eq. 6
    v_final, a, alpha = _eqs15_20(z_hat, t, v_fused, g.q.weight.t(), g.k.weight.t(), g.v.weight.t(), g.gate.weight.t())
    torch.testing.assert_close(out["image_embed"][:, 0], torch.nn.functional.normalize(v_final, dim=-1))
    torch.testing.assert_close(out["attention"][:, 0], a, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out["alpha"][:, 0], alpha, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "change, part",
    [
        ({"cvsa_form": "block", "cvsa_heads": 4}, "cvsa"),
        ({"mtgf_key_norm": True}, "mtgf"),
        ({"mtgf_bias": True}, "mtgf"),
        ({"gate_bias": True}, "mtgf"),
    ],
)
def test_each_stronger_form_is_not_the_equation(change, part):
    """Each named option of `recommended` changes the computation (so `paper` must not have it)."""
    paper = FacetHead(HeadConfig(), dim=D, n_tokens=N)
    other = FacetHead(HeadConfig(**change), dim=D, n_tokens=N)
    _randomise(paper)
    _randomise(other)
    with torch.no_grad():  # share every weight the two have in common
        for name, p in other.named_parameters():
            src = dict(paper.named_parameters()).get(name)
            if src is not None and src.shape == p.shape:
                p.copy_(src)
    tokens, t = torch.randn(B, 3, N, D), torch.randn(B, D)
    assert not torch.allclose(paper(tokens, t)["image_embed"], other(tokens, t)["image_embed"], atol=1e-4)
    extra = {n for n, _ in other.named_parameters()} - {n for n, _ in paper.named_parameters()}
    assert extra and all(n.startswith(part) for n in extra)


def test_recommended_has_every_stronger_form():
    head = preset("recommended")[0].head
    assert (head.cvsa_form, head.cvsa_heads) == ("block", 8)
    assert head.mtgf_key_norm and head.mtgf_bias and head.gate_bias
    assert preset("recommended")[0].prompts == "bank" and preset("paper")[0].prompts == "table1"
