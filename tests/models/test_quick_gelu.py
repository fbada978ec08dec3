"""OpenAI's CLIP (the paper's ViT-B/16 backbone) was trained with QuickGELU; open_clip 3.3.0 builds ``ViT-B-16``
with nn.GELU even for the ``openai`` tag (it only warns). The activation is resolved from open_clip's own
pretrained registry, recorded in the model settings and carried to every checkpoint-only build."""

from __future__ import annotations

import json

import numpy as np
import open_clip
import pytest
import torch
from open_clip.transformer import QuickGELU
from torch import nn

from facet_lib import weights as weights_mod
from facet_lib.bundle import load_bundle, save_bundle
from facet_lib.bundle_format import write_checksums
from facet_lib.config import ModelConfig, from_dict
from facet_lib.data.labels import prompts_for
from facet_lib.errors import ConfigError
from facet_lib.models.backbone import create_clip, resolve_quick_gelu, uses_quick_gelu
from facet_lib.models.model import FacetVLM
from facet_lib.train.loop import predict

LABELS = ["anger", "happy"]


def _act(clip: nn.Module) -> type:
    return type(clip.visual.transformer.resblocks[0].mlp.gelu)


def test_openai_tag_resolves_to_quick_gelu_from_open_clips_registry():
    assert open_clip.get_pretrained_cfg("ViT-B-16", "openai")["quick_gelu"] is True  # open_clip's own record
    assert resolve_quick_gelu("ViT-B-16", "openai") is True
    assert resolve_quick_gelu("ViT-B-16", "laion2b_s34b_b88k") is False  # a tag trained with GELU
    assert resolve_quick_gelu("ViT-B-16") is False  # no tag: the model config's (GELU)
    assert resolve_quick_gelu("ViT-B-16-quickgelu") is True
    assert resolve_quick_gelu("ViT-B-16", "openai", quick_gelu=False) is False  # an explicit setting wins
    with pytest.raises(ConfigError, match="no tag 'nope' for ViT-B-16"):
        resolve_quick_gelu("ViT-B-16", "nope")


def test_built_vit_b16_has_quick_gelu_and_open_clips_default_does_not():
    clip, _ = create_clip("ViT-B-16", quick_gelu=resolve_quick_gelu("ViT-B-16", "openai"))
    assert _act(clip) is QuickGELU
    assert isinstance(clip.transformer.resblocks[0].mlp.gelu, QuickGELU)  # the text tower too
    plain, _ = create_clip("ViT-B-16")
    assert _act(plain) is nn.GELU and not uses_quick_gelu(plain)


def test_weights_step_hands_on_the_tags_activation(monkeypatch):
    entry = {"checkpoint": "s3://w/sha256/x/open_clip_model.safetensors", "sha256": "x", "fetched": False}
    monkeypatch.setattr(weights_mod, "store_tag", lambda model, tag, store: entry)
    out = weights_mod.weights_step({"clip_model": "ViT-B-16", "pretrained": "openai"}, "s3://w")
    handed = out["model_config"]
    assert handed["pretrained"] == "" and handed["checkpoint"] == entry["checkpoint"] and handed["quick_gelu"] is True
    cfg = from_dict(ModelConfig, json.loads(json.dumps(handed)), "model")  # through KFP's JSON, as a step gets it
    assert cfg.quick_gelu is True and cfg.pretrained is None
    explicit = weights_mod.weights_step(
        {"clip_model": "ViT-B-16", "pretrained": "openai", "quick_gelu": False}, "s3://w"
    )
    assert explicit["model_config"]["quick_gelu"] is False


def test_bundle_round_trip_keeps_quick_gelu_and_an_old_bundle_loads_as_before(tmp_path):
    torch.manual_seed(0)
    model = FacetVLM(ModelConfig(clip_model="facet-tiny", unfreeze_top=1, quick_gelu=True))
    assert model.cfg.quick_gelu is True and _act(model.clip) is QuickGELU
    bank = model.build_text_bank(LABELS, prompts_for(LABELS, mode=model.cfg.prompts))
    save_bundle(tmp_path / "b", model, bank, render={"size": 64})
    assert json.loads((tmp_path / "b" / "config.json").read_text())["model"]["quick_gelu"] is True
    loaded, bank2, _ = load_bundle(tmp_path / "b")
    assert loaded.cfg.quick_gelu is True and _act(loaded.clip) is QuickGELU
    h = model.hidden_from_views(
        torch.from_numpy(np.random.default_rng(0).integers(0, 255, (2, 3, 64, 64, 3), np.uint8))
    )
    a = predict(model, bank, lambda idx: h[idx], 2, device="cpu")["class_conditional"]
    np.testing.assert_allclose(
        a, predict(loaded, bank2, lambda idx: h[idx], 2, device="cpu")["class_conditional"], atol=1e-5
    )
    # a bundle written before the setting existed (no quick_gelu) loads with open_clip's default, as it did
    cfg = json.loads((tmp_path / "b" / "config.json").read_text())
    del cfg["model"]["quick_gelu"]
    (tmp_path / "b" / "config.json").write_text(json.dumps(cfg))
    write_checksums(tmp_path / "b")
    old, _, _ = load_bundle(tmp_path / "b")
    assert old.cfg.quick_gelu is False and _act(old.clip) is nn.GELU


def test_a_given_clip_must_match_an_explicit_setting():
    clip, _ = create_clip("facet-tiny")
    assert FacetVLM(ModelConfig(clip_model="facet-tiny", unfreeze_top=1), clip=clip).cfg.quick_gelu is False
    with pytest.raises(ConfigError, match="model.quick_gelu=True: the given CLIP model has GELU"):
        FacetVLM(ModelConfig(clip_model="facet-tiny", unfreeze_top=1, quick_gelu=True), clip=clip)
