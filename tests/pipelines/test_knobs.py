"""The knob table (facet_lib/config/knobs.py) against what uses it: the pipeline's signature and compiled form,
the configure component, and the settings each knob sets — a knob's "unset" value is never a real value."""

import dataclasses
import inspect
import typing

import pytest

from components.configure import configure
from facet_lib.config import ModelConfig, RenderConfig, TrainConfig
from facet_lib.config.codec import hints
from facet_lib.config.knobs import KNOBS, UNSET, is_unset, knob_settings
from facet_lib.errors import ConfigError
from pipelines.facet_vlm import facet_vlm_pipeline

PARTS = {"model": ModelConfig, "train": TrainConfig, "render": RenderConfig}


def _plain(tp):
    """str | None → str."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return args[0] if args else tp


def _signature(fn) -> dict[str, inspect.Parameter]:
    func = getattr(fn, "pipeline_func", None) or getattr(fn, "python_func", fn)  # a pipeline | a component
    return dict(inspect.signature(func).parameters)


@pytest.mark.parametrize("name, key", sorted(KNOBS.items()))
def test_knob_matches_its_setting_the_pipeline_and_configure(name, key):
    part, _, field = key.partition(".")
    cls = PARTS[part]
    assert field in {f.name for f in dataclasses.fields(cls)}, f"{key}: no such setting"
    tp = _plain(hints(cls)[field])
    for where, sig in (("pipeline", _signature(facet_vlm_pipeline)), ("configure", _signature(configure))):
        p = sig.get(name)
        assert p is not None, f"{where} has no parameter {name!r}"
        assert p.annotation in (tp, tp.__name__), f"{where}.{name}: typed {p.annotation}, the setting is {tp}"
        assert p.default == UNSET[tp] and is_unset(p.default), f"{where}.{name}: default {p.default!r}"
    # the unset value is no value of the setting: refused by the dataclass, or "" = not given (None)
    unset = UNSET[tp]
    if tp is str and typing.get_args(hints(cls)[field]):
        assert getattr(cls(**{field: None}), field) is None
    else:
        with pytest.raises(ConfigError, match=field):
            cls(**{field: unset})


def test_pipeline_passes_every_knob_to_configure(tmp_path):
    import yaml

    from pipelines.cli import compile_pipeline

    spec = next(yaml.safe_load_all(compile_pipeline(tmp_path / "p.yaml").read_text()))
    inputs = spec["root"]["dag"]["tasks"]["configure"]["inputs"]["parameters"]
    for name in KNOBS:
        assert inputs[name]["componentInputParameter"] == name
    assert spec["root"]["inputDefinitions"]["parameters"]["epochs"]["defaultValue"] == -1


def test_knob_settings_and_unset():
    given = {name: UNSET[str] for name in KNOBS} | {"epochs": 3, "lam": 0.0, "render_size": -1}
    got = knob_settings(given)
    assert set(got) == set(KNOBS.values()) and got["train.epochs"] == 3 and got["train.lam"] == 0.0
    assert is_unset("") and is_unset(-1) and is_unset(-1.0)
    assert not is_unset(0) and not is_unset(0.0) and not is_unset(False) and not is_unset("paper")
