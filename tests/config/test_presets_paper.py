"""The presets resolve to exactly the documented settings (docs/paper-notes.md), and the paper's presets
refuse random backbone weights."""

import dataclasses

import pytest

from facet_lib.config import HeadConfig, ModelConfig, TrainConfig, preset, require_weights, resolve_micro
from facet_lib.errors import ConfigError

PAPER_HEAD = {"head_out": "none", "mtgf_input": "pre_cvsa", "view_embed_from": "pre_cvsa"}
OURS_HEAD = {"head_out": "learned", "mtgf_input": "post_cvsa", "view_embed_from": "post_cvsa"}


def _changed(obj, base) -> dict:
    """Fields of ``obj`` that differ from ``base`` (nested head included, as ``head.<name>``)."""
    out = {}
    for f in dataclasses.fields(obj):
        a, b = getattr(obj, f.name), getattr(base, f.name)
        if dataclasses.is_dataclass(a):
            out |= {f"{f.name}.{k}": v for k, v in _changed(a, b).items()}
        elif a != b:
            out[f.name] = a
    return out


def test_defaults_are_the_papers_objective():
    m, t = ModelConfig(), TrainConfig()
    assert {k: getattr(m.head, k) for k in PAPER_HEAD} == PAPER_HEAD
    assert (t.loss_form, t.cond_weight, t.lam, t.consistency) == ("paper", 0.0, 0.1, "variance")
    assert t.lr == t.backbone_lr == 1e-4 and t.betas == (0.9, 0.999) and m.clip_model == "ViT-B-16"


def test_paper_preset_is_the_defaults_on_vit_b16():
    m, t = preset("paper")
    assert _changed(m, ModelConfig()) == {}  # ViT-B-16, unfreeze_top 2, paper head
    assert _changed(t, TrainConfig()) == {"epochs": 30, "freeze_epochs": 5}


def test_recommended_lists_exactly_its_deviations():
    m, t = preset("recommended")
    assert _changed(m, ModelConfig()) == {f"head.{k}": v for k, v in {**OURS_HEAD, "head_out": "identity"}.items()}
    assert _changed(t, TrainConfig()) == {
        "epochs": 30,
        "freeze_epochs": 5,
        "backbone_lr": 1e-5,
        "loss_form": "label_aware",
        "cond_weight": 1.0,
    }


def test_tiny_cpu_keeps_its_earlier_settings():
    m, t = preset("tiny-cpu")
    assert _changed(m, ModelConfig()) == {
        "clip_model": "facet-tiny",
        "unfreeze_top": 1,
        **{f"head.{k}": v for k, v in OURS_HEAD.items()},
    }
    assert _changed(t, TrainConfig()) == {
        "epochs": 25,
        "freeze_epochs": 20,
        "lr": 3e-3,
        "backbone_lr": 3e-4,
        "loss_form": "label_aware",
        "cond_weight": 1.0,
    }


@pytest.mark.parametrize("name", ["paper", "recommended"])
def test_paper_presets_refuse_random_weights(name):
    m, _ = preset(name)
    with pytest.raises(ConfigError, match="--pretrained.*--checkpoint"):
        require_weights(name, m)
    note = require_weights(name, m, allow_random=True)
    assert "random" in note and "--allow-random-weights" in note
    assert require_weights(name, dataclasses.replace(m, pretrained="openai")) is None
    assert require_weights(name, dataclasses.replace(m, checkpoint="s3://w/ViT-B-16.safetensors")) is None


def test_tiny_cpu_and_no_preset_run_on_random_weights():
    assert require_weights("tiny-cpu", preset("tiny-cpu")[0]) is None
    assert require_weights(None, ModelConfig()) is None


def test_4dme_switches_on_the_micro_template():
    m = ModelConfig()
    assert resolve_micro(m, dataset="4dme").micro and resolve_micro(m, protocol="4DME").micro
    assert not resolve_micro(m, dataset="bu3dfe", protocol="bu3dfe-I").micro
    assert resolve_micro(dataclasses.replace(m, micro=True), dataset="bu3dfe").micro  # never switched off


def test_old_saved_configs_keep_their_learned_head():
    from facet_lib.config import from_dict

    old = from_dict(ModelConfig, {"clip_model": "facet-tiny", "cvsa": True, "mtgf": True})
    assert old.head == HeadConfig(**OURS_HEAD)
