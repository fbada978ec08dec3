"""A run's settings, resolved once: the one resolver behind ``facet-vlm`` (``--preset``, the model flags,
``--set key=value``) and the pipeline's ``configure`` step (a preset, nested override dicts, typed knobs).

Order, for both: the preset (``facet_lib.config.train.PRESETS``), then ``overrides`` (nested like the
dataclasses: ``{"model": {"clip_model": …}, "train": {…}, "render": {…}}``), then the pipeline's
``knobs`` (``facet_lib.config.knobs``: unset ones keep what is there), then ``key=value`` items. 4DME
gets the micro-expression prompts; a weight-needing preset without weights is refused unless
``allow_random_weights`` (then the note says so)."""

from __future__ import annotations

from typing import NamedTuple

from facet_lib.config.codec import from_params, override_many
from facet_lib.config.knobs import is_unset
from facet_lib.config.render import RenderConfig
from facet_lib.config.train import ModelConfig, TrainConfig, preset, require_weights, resolve_micro
from facet_lib.errors import ConfigError

PARTS = ("model", "train", "render")


class Settings(NamedTuple):
    model: ModelConfig
    train: TrainConfig
    render: RenderConfig
    note: str  # "" or why a weight-needing preset runs on random weights


def resolve_settings(
    preset_name: str | None,
    overrides: dict[str, dict] | None = None,
    knobs: dict[str, object] | None = None,
    items: list[str] | tuple = (),
    dataset: str | None = None,
    protocol: str | None = None,
    allow_random_weights: bool = False,
) -> Settings:
    """The preset, then ``overrides``, then the set ``knobs`` (``{"train.epochs": 5, …}``), then ``items``
    (``key=value``, a bare key when only the model or the train settings have it); see the module doc."""
    over: dict[str, dict] = {part: dict((overrides or {}).get(part) or {}) for part in PARTS}
    unknown = set(overrides or {}) - set(PARTS)
    if unknown:
        raise ConfigError(f"overrides: unknown part(s) {sorted(unknown)}; expected {list(PARTS)}")
    for key, value in (knobs or {}).items():
        part, _, name = key.partition(".")
        if part not in over or not name:
            raise ConfigError(f"knob {key!r}: expected model.<key>, train.<key> or render.<key>")
        if not is_unset(value):
            over[part][name] = value
    mcfg, tcfg = preset(preset_name)
    mcfg = from_params(ModelConfig, over["model"], base=mcfg)
    tcfg = from_params(TrainConfig, over["train"], base=tcfg)
    rcfg = from_params(RenderConfig, over["render"], base=RenderConfig())
    if items:
        cfgs = override_many({"model": mcfg, "train": tcfg}, list(items))
        mcfg, tcfg = cfgs["model"], cfgs["train"]
    mcfg = resolve_micro(mcfg, dataset, protocol)
    note = require_weights(preset_name, mcfg, allow_random_weights, tcfg.init_from) or ""
    return Settings(mcfg, tcfg, rcfg, note)
