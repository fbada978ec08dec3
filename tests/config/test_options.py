"""Command-line options built from the settings dataclasses: defaults come from the fields."""

import argparse
import dataclasses

from facet_lib.config import ModelConfig, RenderConfig, ServeConfig
from facet_lib.config.options import add_options, from_args


def _parse(cls, argv, **kw):
    p = argparse.ArgumentParser()
    add_options(p, cls, **kw)
    return from_args(cls, p.parse_args(argv))


def test_no_flags_give_the_dataclass_defaults():
    for cls in (RenderConfig, ServeConfig, ModelConfig):
        assert _parse(cls, []) == cls()


def test_flags_of_every_kind():
    r = _parse(RenderConfig, ["--size", "64", "--yaws", "0", "15", "--no-cull-backfaces", "--light", "1", "2", "3"])
    assert r == dataclasses.replace(RenderConfig(), size=64, yaws=(0.0, 15.0), cull_backfaces=False, light=(1, 2, 3))
    s = _parse(ServeConfig, ["--http_port", "9000", "--max-frames", "7"], aliases={"port": ["--http_port"]})
    assert s.port == 9000 and s.limits.max_frames == 7
    m = _parse(ModelConfig, ["--no-cvsa", "--pretrained", "openai", "--views", "0"])
    assert m.head.cvsa is False and m.pretrained == "openai" and m.views == (0,)


def test_serve_options_are_the_same_builder_in_kserve_spelling():
    from facet_lib.config import Limits
    from facet_lib.config.options import add_serve_options, config_from_args

    p = argparse.ArgumentParser()
    add_serve_options(p)
    flags = {s for a in p._actions for s in a.option_strings}
    assert {"--model", "--max_batch", "--max-batch", "--model_name", "--http_port", "--max_frames", "--no-ui"} <= flags
    assert {"--no-model_repository", "--no-model-repository"} <= flags
    assert config_from_args(p.parse_args([])) == ServeConfig()
    a = p.parse_args(["--http_port", "9000", "--max-frames", "7", "--no-ui", "--max_wait_ms", "2.5"])
    limits = dataclasses.replace(Limits(), max_frames=7)
    assert config_from_args(a) == dataclasses.replace(
        ServeConfig(), port=9000, ui=False, max_wait_ms=2.5, limits=limits
    )
    text = p.format_help()  # no group heading, nested fields by their own name
    assert "--max_frames MAX_FRAMES" in text and "LIMITS__" not in text and "settings:" not in text
