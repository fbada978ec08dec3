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
