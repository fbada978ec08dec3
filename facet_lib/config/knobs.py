"""The pipeline's typed shortcuts for common settings ("knobs"), defined once.

A KFP run form shows typed parameters, and ``epochs`` is easier to set there than ``train_overrides``.
Each knob is one pipeline parameter (and one parameter of the ``configure`` component) that sets one
setting. A knob left alone must mean "the preset's value", and that cannot be ``None``: kfp.local 2.17
cannot start a pipeline whose ``Optional[...] = None`` parameter is not passed (its
``OrchestratorUtils.join_user_inputs_and_defaults`` turns the missing default into "Unknown value type"),
so "unset" is ``""`` for strings and ``-1`` for numbers, values no knob's setting accepts.
``tests/pipelines/test_knobs.py`` checks the pipeline's signature, ``configure`` and the settings
dataclasses against this table.
"""

from __future__ import annotations

# pipeline parameter → the setting it sets (part.field of ModelConfig / TrainConfig / RenderConfig)
KNOBS: dict[str, str] = {
    "pretrained": "model.pretrained",
    "checkpoint": "model.checkpoint",
    "epochs": "train.epochs",
    "lam": "train.lam",
    "render_size": "render.size",
    "render_mode": "render.mode",
    "frames": "render.frames",
    "temporal": "render.temporal",
    "init_from": "train.init_from",
    "prompts_file": "model.prompts_file",
}
UNSET = {str: "", int: -1, float: -1.0}  # a knob's "not set" value, by its parameter type


def is_unset(value: object) -> bool:
    """``""`` or a negative number (not a bool): the knob keeps the preset's value."""
    if value == "":
        return True
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0


def knob_settings(given: dict) -> dict[str, object]:
    """``{"train.epochs": 5, …}`` from the pipeline parameters ``given`` (a component's ``locals()``): every
    knob, set or not (the resolver skips the unset ones)."""
    return {setting: given[name] for name, setting in KNOBS.items()}
