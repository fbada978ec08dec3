import random

import numpy as np
import pytest
import torch

from facet_lib.config import ModelConfig, TrainConfig, apply_overrides
from facet_lib.data.labels import prompts_for
from facet_lib.errors import ConfigError
from facet_lib.models.model import FacetVLM
from facet_lib.train.loop import train_fold

LABELS = ["anger", "disgust", "fear", "happy", "sad", "surprise"]


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return FacetVLM(ModelConfig(clip_model="facet-tiny", unfreeze_top=1))


@pytest.fixture(scope="module")
def views():
    return np.random.default_rng(0).integers(0, 255, (8, 3, 64, 64, 3), dtype=np.uint8)


def test_backbone_tokens_shapes(tiny, views):
    h = tiny.hidden_from_views(torch.from_numpy(views[:2]))
    assert h.shape == (2, 3, 1 + tiny.visual.n_patches, 128)
    tok = tiny.tokens_from_hidden(h)
    assert tok.shape == (2, 3, tiny.visual.n_patches, tiny.visual.token_dim)


def test_text_bank_cached_class_embeddings(tiny):
    bank = tiny.build_text_bank(LABELS, prompts_for(LABELS, mode=tiny.cfg.prompts))
    assert bank.class_embeds.shape == (6, 128) and len(bank.prompts) == len(bank.prompt_embeds)
    torch.testing.assert_close(bank.class_embeds.norm(dim=-1), torch.ones(6))
    s = bank.sample(torch.tensor([3, 3, 0]), random.Random(1))
    for row, y in zip(s, [3, 3, 0]):  # a sampled prompt always belongs to the instance's own label
        k = int(torch.argmin((bank.prompt_embeds - row).abs().sum(-1)))
        assert int(bank.prompt_labels[k]) == y


def _train(model, hidden, cfg, views=None):
    bank = model.build_text_bank(LABELS, prompts_for(LABELS, mode=model.cfg.prompts))
    y = torch.tensor([0, 1, 2, 3, 4, 5, 0, 1])
    return train_fold(model, bank, hidden, y, cfg, progress=False)


def test_freezing_really_freezes_and_unfreezing_trains_exactly_the_top_blocks(views):
    torch.manual_seed(0)
    m = FacetVLM(ModelConfig(clip_model="facet-tiny", unfreeze_top=1))
    before = {k: v.clone() for k, v in m.clip.state_dict().items()}
    with torch.no_grad():
        h = m.hidden_from_views(torch.from_numpy(views))
    cfg = TrainConfig(epochs=2, freeze_epochs=2, batch_size=4, lr=1e-2, device="cpu")
    _train(m, lambda idx: h[idx], cfg)
    assert all(torch.equal(before[k], v) for k, v in m.clip.state_dict().items())  # nothing moved
    assert not any(p.requires_grad for p in m.clip.parameters())
    cfg = TrainConfig(epochs=2, freeze_epochs=0, batch_size=4, lr=1e-2, backbone_lr=1e-2, device="cpu")
    _train(m, lambda idx: h[idx], cfg)
    changed = {k for k, v in m.clip.state_dict().items() if not torch.equal(before[k], v)}
    top = f"visual.transformer.resblocks.{len(m.clip.visual.transformer.resblocks) - 1}."
    assert changed and all(k.startswith(top) or k.startswith("visual.ln_post") or k == "visual.proj" for k in changed)
    assert any(k.startswith(top) for k in changed) and "visual.proj" in changed


def test_cached_and_uncached_features_give_the_same_loss(views):
    torch.manual_seed(0)
    m = FacetVLM(ModelConfig(clip_model="facet-tiny", unfreeze_top=1))
    cfg = TrainConfig(epochs=1, freeze_epochs=1, batch_size=8, lr=1e-3, device="cpu")
    state = {k: v.clone() for k, v in m.head.state_dict().items()}
    with torch.no_grad():
        cached = m.hidden_from_views(torch.from_numpy(views)).to(torch.float16)
    a = _train(m, lambda idx: cached[idx], cfg)
    m.head.load_state_dict(state)
    m.logit_scale.log_scale.data.fill_(float(np.log(1 / 0.07)))

    def fresh(idx):
        with torch.no_grad():
            return m.hidden_from_views(torch.from_numpy(views[idx.numpy()]))

    b = _train(m, fresh, cfg)
    assert abs(a[0]["loss"] - b[0]["loss"]) < 1e-2 * abs(b[0]["loss"])


def test_overrides_and_config_errors():
    t = apply_overrides(TrainConfig(), ["epochs=3", "betas=[0.8, 0.9]", "loss_form=paper"])
    assert t.epochs == 3 and t.betas == (0.8, 0.9) and t.loss_form == "paper"
    with pytest.raises(ConfigError, match="override 'nope=1'"):
        apply_overrides(TrainConfig(), ["nope=1"])
    with pytest.raises(ConfigError, match="model.views must be"):
        ModelConfig(clip_model="facet-tiny", views=(3,))
    with pytest.raises(ConfigError, match="unknown open_clip model"):
        FacetVLM(ModelConfig(clip_model="ViT-Nope"))
