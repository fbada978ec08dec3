"""The pipeline's 4DME runs use the micro-expression prompt template ("a face with [CLS] micro expression")."""

import pandas as pd
import pytest

from facet_lib.data.labels import dataset_labels, load_label_config, prompts_for
from facet_lib.steps import config_step
from facet_lib.steps.common import configs

LABELS = dataset_labels("4dme")


def _first_prompts(model_params: dict, train_params: dict, data=None) -> list[str]:
    mcfg, _ = configs(model_params, train_params, data)  # what every train/export step builds its model from
    return [ps[0] for ps in prompts_for(LABELS, mcfg.micro, mode=mcfg.prompts).values()]


@pytest.mark.parametrize("where", [{"dataset": "4dme"}, {"protocol": "4dme"}])
def test_pipeline_configure_switches_4dme_to_the_micro_template(where):
    kfp = pytest.importorskip("kfp")  # noqa: F841  the real component, as the pipeline calls it
    from components.configure import configure

    out = configure.python_func(
        preset="tiny-cpu", model_overrides={}, train_overrides={}, render_overrides={}, deploy_target="none", **where
    )
    template = load_label_config()["micro_template"]
    assert _first_prompts(out.model_config, out.train_config) == [template.format(cls=c) for c in LABELS]
    assert "a face with positive micro expression" in _first_prompts(out.model_config, out.train_config)


def test_without_4dme_the_prompts_are_the_plain_ones_and_4dme_data_switches_them():
    cfg = config_step("tiny-cpu", {}, {}, {}, "none", dataset="bu4dfe", protocol="bu4dfe")
    assert _first_prompts(cfg["model"], cfg["train"])[0] == "a positive face"  # what the issue found
    data = type("D", (), {"rows": pd.DataFrame({"dataset": ["4dme"], "label": ["positive"]})})()
    assert _first_prompts(cfg["model"], cfg["train"], data)[0] == "a face with positive micro expression"
