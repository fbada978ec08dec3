"""One resolver for a run's settings (issue 20.2): ``facet-vlm``'s flags and ``--set`` and the pipeline's
``configure`` (override dicts, typed knobs) go through ``facet_lib.config.resolve.resolve_settings`` and
agree for the same request."""

import json

import pytest

from facet_lib.cli import main
from facet_lib.config import to_params
from facet_lib.config.resolve import resolve_settings
from facet_lib.errors import ConfigError
from facet_lib.steps import config_step


def _cli_settings(capsys, *args) -> dict:
    assert main(["settings", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_cli_and_configure_resolve_the_same_settings(capsys):
    cli = _cli_settings(
        capsys, "--preset", "tiny-cpu", "--checkpoint", "/w/clip.pt", "--set", "epochs=3", "train.lam=0.5"
    )
    knobs = {"model.checkpoint": "/w/clip.pt", "train.epochs": 3, "train.lam": 0.5, "render.size": -1}
    pipe = config_step("tiny-cpu", {}, {}, {}, "none", knobs=knobs)
    assert (cli["model"], cli["train"]) == (pipe["model"], pipe["train"])
    assert cli["train"]["epochs"] == 3 and cli["model"]["checkpoint"] == "/w/clip.pt"


def test_order_preset_then_overrides_then_knobs_then_items():
    s = resolve_settings(
        "tiny-cpu",
        {"train": {"epochs": 2, "lam": 0.3}, "render": {"size": 64}},
        knobs={"train.epochs": 4, "train.lam": -1.0, "render.mode": ""},  # unset knobs keep what is there
        items=["epochs=6"],
    )
    assert (s.train.epochs, s.train.lam, s.render.size, s.render.mode) == (6, 0.3, 64, "shaded")
    assert resolve_settings("tiny-cpu", protocol="4dme").model.micro is True


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"overrides": {"serve": {}}}, "unknown part"),
        ({"knobs": {"epochs": 3}}, "expected model.<key>"),
        ({"items": ["nope=1"]}, "nope"),
        ({"overrides": {"train": {"epochs": 0}}}, "epochs"),
    ],
)
def test_bad_requests_name_the_setting(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        resolve_settings("tiny-cpu", **kwargs)


def test_weight_needing_presets_are_refused_the_same_way(capsys):
    with pytest.raises(ConfigError, match="needs pretrained CLIP weights"):
        resolve_settings("paper")
    assert main(["settings", "--preset", "paper"]) == 2 and "needs pretrained" in capsys.readouterr().err
    s = resolve_settings("paper", allow_random_weights=True)
    assert "random backbone weights" in s.note and to_params(s.model)["clip_model"] == "ViT-B-16"
