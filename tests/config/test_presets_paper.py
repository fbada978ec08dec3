"""The presets resolve to exactly the documented settings (docs/paper-notes.md), and the paper's presets
refuse random backbone weights."""

import dataclasses

import pytest

from facet_lib.config import HeadConfig, ModelConfig, TrainConfig, preset, require_weights, resolve_micro
from facet_lib.errors import ConfigError

PAPER_HEAD = {"head_out": "none", "mtgf_input": "pre_cvsa", "view_embed_from": "pre_cvsa", "cvsa_form": "eq4"}
PAPER_HEAD |= {"cvsa_heads": 1, "mtgf_key_norm": False, "mtgf_bias": False, "gate_bias": False}
STRONG = {"cvsa_form": "block", "cvsa_heads": 8, "mtgf_key_norm": True, "mtgf_bias": True, "gate_bias": True}
OURS_HEAD = {"head_out": "learned", "mtgf_input": "post_cvsa", "view_embed_from": "post_cvsa", **STRONG}


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
    assert m.prompts == "table1" and m.prompts_file is None and t.init_from is None


def test_paper_preset_is_the_defaults_on_vit_b16():
    m, t = preset("paper")
    assert _changed(m, ModelConfig()) == {}  # ViT-B-16, unfreeze_top 2, paper head
    assert _changed(t, TrainConfig()) == {"epochs": 30, "freeze_epochs": 5}


def test_recommended_lists_exactly_its_deviations():
    m, t = preset("recommended")
    assert _changed(m, ModelConfig()) == {
        "prompts": "bank",
        **{f"head.{k}": v for k, v in {**OURS_HEAD, "head_out": "identity"}.items()},
    }
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
        "prompts": "bank",
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
    assert old.head == HeadConfig(**{**OURS_HEAD, "cvsa_heads": 8}) and old.prompts == "bank"


def test_configs_saved_before_the_literal_forms_keep_their_modules():
    """A bundle's config.json from before issue 19 (every head setting of then, no cvsa_form/prompts) loads
    with the block CVSA, key LayerNorm, biases and the prompt bank it was trained with; partial dicts do not."""
    from facet_lib.config import from_dict

    head = {"cvsa": True, "cvsa_depth": 1, "cvsa_heads": 8, "cvsa_mlp": False, "mtgf": True}
    head |= {"head_out": "none", "mtgf_input": "pre_cvsa", "view_embed_from": "pre_cvsa"}
    saved = {"clip_model": "ViT-B-16", "pretrained": None, "checkpoint": None, "unfreeze_top": 2, "head": head}
    m = from_dict(ModelConfig, {**saved, "views": [0, 1, 2], "micro": False})
    assert (m.head.cvsa_form, m.head.cvsa_heads, m.head.mtgf_key_norm, m.head.mtgf_bias, m.head.gate_bias) == (
        "block",
        8,
        True,
        True,
        True,
    )
    assert m.prompts == "bank"
    partial = from_dict(ModelConfig, {"head": {"cvsa_depth": 2}})
    assert partial.head.cvsa_form == "eq4" and partial.prompts == "table1"
    again = from_dict(ModelConfig, ModelConfig().to_dict())  # a new config round-trips unchanged
    assert again == ModelConfig()


@pytest.mark.parametrize(
    "cls, kw, field",
    [
        (ModelConfig, {"prompts": "gpt"}, "model.prompts"),
        (TrainConfig, {"loss_form": "x"}, "train.loss_form"),
        (HeadConfig, {"cvsa_form": "x"}, "head.cvsa_form"),
        (TrainConfig, {"consistency": "eq99"}, "train.consistency"),
        (ModelConfig, {"views": (0, 5)}, "model.views"),
        (ModelConfig, {"views": ()}, "model.views"),
    ],
)
def test_choices_are_validated_in_the_dataclass(cls, kw, field):
    with pytest.raises(ConfigError, match=field):
        cls(**kw)
