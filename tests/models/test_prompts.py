"""Class prompts: Table 1's one prompt per label under `paper`, the prompt bank under `recommended`, the 4DME
micro-expression bank (micro prompts only, the same count per class), and a prompts file from the CLI."""

import json

import pytest

from facet_lib.cli import main
from facet_lib.config import ModelConfig, preset
from facet_lib.data.labels import dataset_labels, load_label_config, model_prompts, prompts_for
from facet_lib.errors import ConfigError

TABLE_1 = {  # the paper's Table 1, verbatim
    "happy": "a happy face",
    "anger": "an angry face",
    "disgust": "a disgusted face",
    "fear": "a fearful face",
    "sad": "a sad face",
    "surprise": "a surprised face",
}


def test_paper_preset_uses_table_1_one_prompt_per_label():
    labels = list(TABLE_1)
    assert model_prompts(preset("paper")[0], labels) == {k: [v] for k, v in TABLE_1.items()}


def test_recommended_uses_the_bank_with_table_1_first():
    bank = model_prompts(preset("recommended")[0], list(TABLE_1))
    assert all(ps[0] == TABLE_1[k] and len(ps) > 1 for k, ps in bank.items())


def test_prompt_modes_are_the_config_vocabulary_and_have_no_default_of_their_own():
    """One vocabulary (``ModelConfig.prompts``'s choices) and one default (the config's): prompts_for takes
    the mode from its caller, so a bare call cannot silently use the bank while the config says table1."""
    from facet_lib.config.train import PROMPTS

    labels = list(TABLE_1)
    assert ModelConfig().prompts == "table1" and set(PROMPTS) == {"table1", "bank"}
    with pytest.raises(TypeError, match="mode"):
        prompts_for(labels)
    for mode in PROMPTS:
        assert prompts_for(labels, mode=mode) == model_prompts(ModelConfig(prompts=mode), labels)
    with pytest.raises(ConfigError, match=r"model.prompts: expected table1\|bank, got 'gpt'"):
        prompts_for(labels, mode="gpt")


@pytest.mark.parametrize("mode", ["table1", "bank"])
def test_4dme_prompts_are_micro_only_with_the_same_count(mode):
    labels = dataset_labels("4dme")
    template = load_label_config()["micro_template"]
    got = prompts_for(labels, micro=True, mode=mode)
    assert {lab: ps[0] for lab, ps in got.items()} == {lab: template.format(cls=lab) for lab in labels}
    assert len({len(ps) for ps in got.values()}) == 1  # same count per class ("surprise" included)
    macro = {p for ps in load_label_config()["prompt_bank"].values() for p in ps}
    assert not macro & {p for ps in got.values() for p in ps}  # no macro-expression prompt in 4DME's bank
    if mode == "bank":
        assert len(got["surprise"]) == 3


def test_prompts_file_from_the_cli(tmp_path, capsys):
    f = tmp_path / "prompts.yaml"
    f.write_text(
        "prompts: {happy: 'a photo of a joyful person', sad: 'a photo of a sorrowful person'}\n"
        "micro_template: 'a face showing a brief {cls} expression'\n"
        "prompt_bank: {happy: ['a grinning person']}\n"
    )
    assert main(["settings", "--preset", "tiny-cpu", "--prompts-file", str(f)]) == 0
    model = json.loads(capsys.readouterr().out)["model"]
    assert model["prompts_file"] == str(f) and model["prompts"] == "bank"
    cfg = ModelConfig(prompts_file=str(f))
    assert model_prompts(cfg, ["happy", "sad"]) == {
        "happy": ["a photo of a joyful person"],
        "sad": ["a photo of a sorrowful person"],
    }
    bank = ModelConfig(prompts_file=str(f), prompts="bank")
    assert model_prompts(bank, ["happy"]) == {"happy": ["a photo of a joyful person", "a grinning person"]}
    micro = ModelConfig(prompts_file=str(f), micro=True)
    assert model_prompts(micro, ["others"]) == {"others": ["a face showing a brief others expression"]}


@pytest.mark.parametrize(
    "text, match",
    [
        ("micro_template: 'x {cls}'\n", "missing key 'prompts'"),
        ("prompts: {happy: a}\nmicro_template: 'no placeholder'\n", "must contain"),
        ("prompts: [a, b]\nmicro_template: '{cls}'\n", "'prompts' must be a dict"),
        ("prompts: {happy: [\n", "unreadable"),
    ],
)
def test_bad_prompts_file_is_refused_naming_the_file(tmp_path, text, match):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=match) as e:
        model_prompts(ModelConfig(prompts_file=str(f)), ["happy"])
    assert str(f) in str(e.value)


def test_missing_prompts_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml"):
        model_prompts(ModelConfig(prompts_file=str(tmp_path / "nope.yaml")), ["happy"])
