"""Every setting, defined once (torch-free): model/train/render/serve dataclasses, presets, and one
way to build them from dicts, ``key=value`` overrides and KFP parameters."""

from facet_lib.config.codec import (
    apply_overrides,
    from_dict,
    from_params,
    known_keys,
    override_many,
    setting,
    to_dict,
    to_params,
)
from facet_lib.config.data import DATA, DataConfig
from facet_lib.config.render import RENDER_MODES, TEMPORAL, RenderConfig
from facet_lib.config.serve import Limits, ServeConfig
from facet_lib.config.train import (
    INFERENCE_MODES,
    NEEDS_WEIGHTS,
    PRESETS,
    HeadConfig,
    ModelConfig,
    TrainConfig,
    TuneConfig,
    preset,
    require_weights,
    resolve_micro,
)

__all__ = [
    "DATA",
    "DataConfig",
    "INFERENCE_MODES",
    "NEEDS_WEIGHTS",
    "PRESETS",
    "RENDER_MODES",
    "TEMPORAL",
    "HeadConfig",
    "Limits",
    "ModelConfig",
    "RenderConfig",
    "ServeConfig",
    "TrainConfig",
    "TuneConfig",
    "apply_overrides",
    "from_dict",
    "from_params",
    "known_keys",
    "override_many",
    "preset",
    "require_weights",
    "resolve_micro",
    "setting",
    "to_dict",
    "to_params",
]
