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
from facet_lib.config.render import MODES, TEMPORAL, RenderConfig
from facet_lib.config.serve import Limits, ServeConfig
from facet_lib.config.train import (
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
    "MODES",
    "NEEDS_WEIGHTS",
    "PRESETS",
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
