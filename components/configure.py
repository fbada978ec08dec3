from typing import NamedTuple

from kfp import dsl

from components.settings import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def configure(
    preset: str,
    model_overrides: dict,
    train_overrides: dict,
    render_overrides: dict,
    deploy_target: str,
    dataset: str = "",
    protocol: str = "",
    allow_random_weights: bool = False,
    pretrained: str = "",
    checkpoint: str = "",
    epochs: int = -1,
    lam: float = -1.0,
    render_size: int = -1,
    render_mode: str = "",
    frames: int = -1,
    temporal: str = "",
    init_from: str = "",
    prompts_file: str = "",
) -> NamedTuple("Settings", [("model_config", dict), ("train_config", dict), ("render_config", dict)]):
    """Resolve the run's settings once: the preset, the override dicts, then the typed knobs ("" or a
    negative number = the preset's value). Later steps get the full resolved dicts; a bad key or value
    fails here, first."""
    from collections import namedtuple

    from facet_lib.config.knobs import knob_settings
    from facet_lib.steps import config_step

    cfg = config_step(
        preset, model_overrides, train_overrides, render_overrides, deploy_target, dataset, protocol,
        allow_random_weights, knob_settings(locals()),
    )  # fmt: skip
    if cfg["weights_note"]:
        print(f"NOTE: {cfg['weights_note']}")
    return namedtuple("Settings", ["model_config", "train_config", "render_config"])(
        cfg["model"], cfg["train"], cfg["render"]
    )
