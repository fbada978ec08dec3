"""The losses of facet_lib/losses.py (eqs. 8–11, 21–24) against hand-computed values, and the temperature."""

import math

import pytest
import torch
import torch.nn.functional as F

from facet_lib.errors import ConfigError
from facet_lib.losses import consistency, facet_loss, info_nce
from facet_lib.models.facet import LogitScale


def test_consistency_forms_against_hand_computed_values():
    # three views, e_0 = (1, 0), e_1 = (0, 1), e_2 = (1, 0): ē = (2/3, 1/3)
    e = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]])
    var = ((1 / 9 + 1 / 9) + (4 / 9 + 4 / 9) + (1 / 9 + 1 / 9)) / 3  # (1/V) Σ_v ‖e_v − ē‖² = 4/9
    pairs = 2.0 + 2.0 + 0.0  # Σ_{v<w} ‖e_v − e_w‖²: (0,1), (1,2) differ, (0,2) agree
    torch.testing.assert_close(consistency(e, "variance"), torch.tensor(var))
    torch.testing.assert_close(consistency(e, "eq23"), torch.tensor(pairs / 3))
    torch.testing.assert_close(consistency(e, "pairwise_eq21"), torch.tensor(2 * pairs / 3))
    r = F.normalize(torch.randn(7, 3, 10), dim=-1)  # the factors the paper's equations differ by (V = 3)
    torch.testing.assert_close(consistency(r, "eq23"), 3 * consistency(r, "variance"))
    torch.testing.assert_close(consistency(r, "pairwise_eq21"), 6 * consistency(r, "variance"))
    for form in ("variance", "pairwise_eq21", "eq23"):
        assert consistency(r[:, :1].expand(7, 3, 10), form) < 1e-12
    with pytest.raises(ConfigError, match="train.consistency"):
        consistency(r, "eq99")


def test_info_nce_hand_computed():
    img = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    txt = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    s = torch.tensor(2.0)
    # logits = 2·[[1, .6], [0, .8]]; image→text rows, text→image columns
    i2t = (-math.log(math.e**2 / (math.e**2 + math.e**1.2)) - math.log(math.e**1.6 / (1 + math.e**1.6))) / 2
    t2i = (-math.log(math.e**2 / (math.e**2 + 1)) - math.log(math.e**1.6 / (math.e**1.2 + math.e**1.6))) / 2
    got = info_nce(img, txt, torch.tensor([0, 1]), s, form="paper")
    assert abs(float(got) - (i2t + t2i) / 2) < 1e-6
    # distinct labels: label-aware == paper
    assert torch.isclose(info_nce(img, txt, torch.tensor([0, 1]), s, "label_aware"), got)
    # same label: label-aware treats the off-diagonal pair as a positive, so which same-label text
    # sits on the diagonal no longer matters; the paper's form calls that pair a negative
    same, swapped = torch.tensor([0, 0]), txt.flip(0)
    assert torch.isclose(info_nce(img, txt, same, s, "label_aware"), info_nce(img, swapped, same, s, "label_aware"))
    assert not torch.isclose(info_nce(img, txt, same, s, "paper"), info_nce(img, swapped, same, s, "paper"))


def test_total_loss_and_temperature():
    scale = LogitScale()
    assert abs(float(scale().detach()) - 1 / 0.07) < 1e-3
    out = {
        "image_embed": F.normalize(torch.randn(4, 1, 8), dim=-1),
        "view_embeds": F.normalize(torch.randn(4, 3, 8), dim=-1),
    }
    y, text = torch.tensor([0, 1, 0, 2]), F.normalize(torch.randn(4, 8), dim=-1)
    losses = facet_loss(out, text, y, scale(), 0.1, "paper")
    assert set(losses) == {"clip_loss", "consistency_loss"}
    torch.testing.assert_close(losses["consistency_loss"], 0.1 * consistency(out["view_embeds"]))
    eq21 = facet_loss(out, text, y, scale(), 0.1, "paper", consistency_form="pairwise_eq21")["consistency_loss"]
    torch.testing.assert_close(eq21, 0.6 * consistency(out["view_embeds"]))
    assert set(facet_loss(out, out["image_embed"][:, 0], y, scale(), 0, "paper")) == {"clip_loss"}
