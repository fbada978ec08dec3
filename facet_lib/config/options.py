"""Command-line options built from a settings dataclass: one ``--flag`` per field (nested settings
flattened), with the field's default, type, choices and help text — no default typed twice.

The model server's options (``python -m facet_lib.serving`` and ``facet-vlm serve``) are ``ServeConfig``'s
through the same builder: ``add_serve_options`` / ``config_from_args``."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any, TypeVar

from facet_lib.config.codec import _is_optional, from_dict, hints
from facet_lib.config.serve import ServeConfig

T = TypeVar("T")
SERVE_ALIASES = {"name": ["--model_name"], "port": ["--http_port"]}  # KServe's spelling, used by the manifests


def _leaves(cls: type, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], dataclasses.Field, Any]]:
    out = []
    for f in dataclasses.fields(cls):
        tp = hints(cls)[f.name]
        if dataclasses.is_dataclass(tp):
            out += _leaves(tp, (*prefix, f.name))
        else:
            out.append(((*prefix, f.name), f, tp))
    return out


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


def add_options(
    p: argparse.ArgumentParser,
    cls: type,
    aliases: dict[str, list[str]] | None = None,
    *,
    underscores: bool = False,
    group: bool = True,
) -> None:
    """Add ``--name`` for every (leaf) field of ``cls``; ``aliases``: extra flags per field name.
    ``underscores``: the field's own spelling ``--field_name`` first, then ``--field-name`` (KServe's model
    server spells its flags with underscores); ``group``: in a "<cls> settings" group, else on ``p`` itself."""
    target = p.add_argument_group(f"{cls.__name__} settings") if group else p
    for path, f, tp in _leaves(cls):
        name = path[-1]
        kw: dict[str, Any] = {"dest": "__".join(path), "default": _default(f), "help": f.metadata.get("help", "")}
        if f.metadata.get("choices"):
            kw["choices"] = f.metadata["choices"]
        if _is_optional(tp):
            kw["type"], kw["help"] = str, kw["help"] + ' ("" = none)'
        elif tp is bool:
            kw["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(tp) is tuple:
            args = typing.get_args(tp)
            kw["type"], kw["nargs"] = args[0], "+" if args[-1] is Ellipsis else len(args)
        else:
            kw["type"] = tp
        if len(path) > 1 and "action" not in kw and "choices" not in kw:
            kw["metavar"] = name.upper()  # not the nested dest (LIMITS__MAX_FRAMES)
        dashed = f"--{name.replace('_', '-')}"
        flags = ([f"--{name}"] if underscores and "_" in name else []) + [dashed]
        target.add_argument(*flags, *(aliases or {}).get(name, []), **kw)


def from_args(cls: type[T], a: argparse.Namespace) -> T:
    """The settings object of the options ``add_options(p, cls)`` added."""
    d: dict = {}
    for path, _, _ in _leaves(cls):
        node = d
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = getattr(a, "__".join(path))
    return from_dict(cls, d)


def add_serve_options(p: argparse.ArgumentParser) -> None:
    """The model server's options: every ServeConfig and Limits field as ``--field`` (and ``--field-with-dashes``)."""
    add_options(p, ServeConfig, SERVE_ALIASES, underscores=True, group=False)


def config_from_args(a: argparse.Namespace) -> ServeConfig:
    """The ServeConfig of the options ``add_serve_options`` added."""
    return from_args(ServeConfig, a)
