"""One set of command-line options for `python -m facet_lib.serving` and `facet-vlm serve`, built from
the ``ServeConfig`` and ``Limits`` fields (default and help from each field). No kserve/torch import."""

from __future__ import annotations

import argparse
import dataclasses

from facet_lib.config import Limits, ServeConfig, from_dict

LIVENESS_PATH = "/v2/health/live"  # answers 200 while the process serves (a pod's livenessProbe)
READINESS_PATH = "/v2/models/{name}/ready"  # 200 once the model is loaded and warmed up
_ALIASES = {"name": ["--model_name"], "port": ["--http_port"]}  # KServe's spelling, used by the manifests


def add_serve_options(p: argparse.ArgumentParser) -> None:
    """Every ServeConfig and Limits field as ``--field`` (and ``--field-with-dashes``), with its default and help."""
    for cls in (ServeConfig, Limits):
        for f in dataclasses.fields(cls):
            if f.name == "limits":
                continue
            flags = [f"--{f.name}"] + ([f"--{f.name.replace('_', '-')}"] if "_" in f.name else [])
            flags += _ALIASES.get(f.name, [])
            kw = {"dest": f.name, "default": f.default, "help": f.metadata.get("help", "")}
            if isinstance(f.default, bool):
                kw["action"] = argparse.BooleanOptionalAction
            else:
                kw["type"] = type(f.default)
            p.add_argument(*flags, **kw)


def config_from_args(a: argparse.Namespace) -> ServeConfig:
    d = vars(a)
    limits = {f.name: d[f.name] for f in dataclasses.fields(Limits)}
    serve = {f.name: d[f.name] for f in dataclasses.fields(ServeConfig) if f.name != "limits"}
    return from_dict(ServeConfig, {**serve, "limits": limits})
