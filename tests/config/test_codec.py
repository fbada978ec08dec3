"""facet_lib.config: one from_dict / apply_overrides / to_params / from_params for every settings class."""

import dataclasses
import json

import pytest

from facet_lib.config import (
    PRESETS,
    HeadConfig,
    Limits,
    ModelConfig,
    RenderConfig,
    ServeConfig,
    TrainConfig,
    apply_overrides,
    from_dict,
    from_params,
    known_keys,
    override_many,
    to_params,
)
from facet_lib.errors import ConfigError

CLASSES = [HeadConfig, ModelConfig, TrainConfig, RenderConfig, ServeConfig, Limits]
SAMPLES = [c() for c in CLASSES] + [cfg for pair in PRESETS.values() for cfg in pair]


@pytest.mark.parametrize("cfg", SAMPLES, ids=lambda c: type(c).__name__)
def test_params_round_trip_through_json(cfg):
    params = json.loads(json.dumps(to_params(cfg)))  # what KFP stores and hands back
    assert from_params(type(cfg), params) == cfg
    assert from_params(type(cfg), {}, base=cfg) == cfg


@pytest.mark.parametrize("cls", CLASSES)
def test_every_setting_has_a_help_text(cls):
    for f in dataclasses.fields(cls):
        assert f.metadata.get("help"), f"{cls.__name__}.{f.name} has no help text"


def test_kfp_numbers_lists_and_empty_strings_are_coerced():
    m = from_params(
        ModelConfig, {"unfreeze_top": 1.0, "views": [0.0, 2.0], "pretrained": "", "head": {"cvsa_depth": 2.0}}
    )
    assert m.unfreeze_top == 1 and m.views == (0, 2) and m.pretrained is None and m.head.cvsa_depth == 2
    assert isinstance(m.views[0], int) and isinstance(m.unfreeze_top, int)
    r = from_dict(RenderConfig, {"size": 64.0, "yaws": [0, 30]})
    assert r.size == 64 and r.yaws == (0.0, 30.0) and r.digest() == RenderConfig(size=64, yaws=(0.0, 30.0)).digest()


@pytest.mark.parametrize(
    "cls, d, where",
    [
        (TrainConfig, {"epochs": 2.5}, "TrainConfig.epochs"),
        (TrainConfig, {"epochs": "ten"}, "TrainConfig.epochs"),
        (TrainConfig, {"amp": "yes"}, "TrainConfig.amp"),
        (TrainConfig, {"betas": [0.9]}, "TrainConfig.betas"),
        (ModelConfig, {"head": {"cvsa": 1}}, "ModelConfig.head.cvsa"),
        (ModelConfig, {"head": 3}, "ModelConfig.head"),
        (TrainConfig, {"epochz": 3}, "unknown setting(s) ['epochz']"),
    ],
)
def test_bad_values_name_the_field(cls, d, where):
    with pytest.raises(ConfigError, match=where.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        from_dict(cls, d)


def test_render_settings_are_validated():
    with pytest.raises(ConfigError, match="RenderConfig: mode"):
        from_dict(RenderConfig, {"mode": "glossy"})


def test_overrides_dotted_keys_and_routing():
    m = apply_overrides(ModelConfig(), ["head.cvsa=False", "views=[1]", "pretrained=openai"])
    assert m.head.cvsa is False and m.views == (1,) and m.pretrained == "openai"
    assert m.head.mtgf == ModelConfig().head.mtgf  # the rest of the head is kept
    out = override_many({"model": ModelConfig(), "train": TrainConfig()}, ["epochs=3", "model.micro=True"])
    assert out["train"].epochs == 3 and out["model"].micro is True
    with pytest.raises(ConfigError, match="unknown key 'cvsa'"):
        apply_overrides(ModelConfig(), ["cvsa=False"])
    with pytest.raises(ConfigError, match="expected key=value"):
        apply_overrides(TrainConfig(), ["epochs"])
    with pytest.raises(ConfigError, match="matches none"):
        override_many({"model": ModelConfig(), "train": TrainConfig()}, ["nope=1"])
    with pytest.raises(ConfigError, match="matches several"):
        override_many({"a": TrainConfig(), "b": TrainConfig()}, ["epochs=1"])


def test_changed_only_params_and_known_keys():
    m, t = PRESETS["tiny-cpu"]
    short = to_params(m, changed_only=True)
    assert short["clip_model"] == "facet-tiny" and "micro" not in short
    assert from_params(ModelConfig, short) == m
    assert "head.cvsa" in known_keys(ModelConfig) and "head" not in known_keys(ModelConfig)


def test_configs_saved_before_the_head_was_nested_still_load():
    old = {"clip_model": "facet-tiny", "cvsa": False, "mtgf": True, "views": [0, 1, 2]}
    m = from_dict(ModelConfig, old)
    assert m.head.cvsa is False and m.clip_model == "facet-tiny"
