"""One way to build, override and transport every settings dataclass (no torch here).

- ``from_dict``: JSON-ish values → a frozen dataclass. Unknown keys are refused; lists become tuples;
  whole floats become ints where the field is an int (KFP sends dict numbers as floats); ``""`` means
  "not given" (None) for optional fields (KFP parameters cannot hold None); nested dataclasses come
  from nested dicts. Every error names the field and what was expected.
- ``apply_overrides``: ``key=value`` strings (values parsed as Python literals), dotted keys for
  nested settings (``head.cvsa=False``).
- ``to_params`` / ``from_params``: the KFP form (plain JSON: lists, no None).
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import types
import typing
from dataclasses import field
from typing import Any, TypeVar

from facet_lib.errors import ConfigError

T = TypeVar("T")


def setting(default: Any, help: str, choices: tuple | None = None) -> Any:
    """A dataclass field with its help text (shown by the CLI) and, optionally, its allowed values."""
    meta = {"help": help, "choices": choices}
    if dataclasses.is_dataclass(default):
        return field(default_factory=lambda: default, metadata=meta)
    return field(default=default, metadata=meta)


def check_choices(obj: Any, prefix: str) -> None:
    """Refuse a value outside its field's ``choices`` (from ``__post_init__``), naming ``prefix.field``."""
    for f in dataclasses.fields(obj):
        choices = f.metadata.get("choices")
        if choices and getattr(obj, f.name) not in choices:
            raise ConfigError(f"{prefix}.{f.name}: expected one of {list(choices)}, got {getattr(obj, f.name)!r}")


@functools.cache
def hints(cls: type) -> dict[str, Any]:
    """Resolved field types of a settings dataclass (``from __future__ import annotations`` safe)."""
    return typing.get_type_hints(cls)


def _is_optional(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in typing.get_args(tp)


def _coerce(tp: Any, v: Any, where: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if v is None or (v == "" and type(None) in args):
            return None
        return _coerce(next(a for a in args if a is not type(None)), v, where)
    if dataclasses.is_dataclass(tp):
        if isinstance(v, tp):
            return v
        if not isinstance(v, dict):
            raise ConfigError(f"{where}: expected a mapping of {tp.__name__} settings, got {v!r}")
        return from_dict(tp, v, where)
    if origin is tuple:
        if not isinstance(v, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {v!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], x, f"{where}[{i}]") for i, x in enumerate(v))
        if len(v) != len(args):
            raise ConfigError(f"{where}: expected {len(args)} values, got {len(v)} ({list(v)})")
        return tuple(_coerce(a, x, f"{where}[{i}]") for i, (a, x) in enumerate(zip(args, v)))
    if tp is bool:
        if isinstance(v, bool):
            return v
    elif tp is int:
        if isinstance(v, int) and not isinstance(v, bool):
            return v
        if isinstance(v, float) and v.is_integer():
            return int(v)
    elif tp is float:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    elif tp is str:
        if isinstance(v, str):
            return v
    elif origin is dict or tp is dict:
        if isinstance(v, dict):
            return dict(v)
    else:
        return v
    raise ConfigError(f"{where}: expected {getattr(tp, '__name__', tp)}, got {v!r}")


def from_dict(cls: type[T], d: dict, where: str | None = None) -> T:
    """Build the settings dataclass ``cls`` from JSON-ish values (see the module docstring)."""
    where = where or cls.__name__
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: expected a mapping, got {d!r}")
    upgrade = getattr(cls, "_upgrade", None)  # older spellings of saved configs (e.g. flat head keys)
    d = upgrade(dict(d)) if upgrade else d
    tps = hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = set(d) - set(names)
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {sorted(unknown)}; known: {names}")
    return cls(**{k: _coerce(tps[k], v, f"{where}.{k}") for k, v in d.items()})


def to_dict(obj: Any) -> dict:
    """Nested plain dict (tuples kept): what runs write next to their outputs."""
    return dataclasses.asdict(obj)


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return "" if v is None else v


def to_params(obj: Any, changed_only: bool = False) -> dict:
    """The KFP parameter form of a settings object: JSON only (lists, ``""`` for None).
    ``changed_only``: only the settings that differ from the class defaults (short pipeline forms)."""
    d = to_dict(obj)
    if changed_only:
        base = to_dict(type(obj)())
        d = _diff(d, base)
    return _jsonable(d)


def _diff(d: dict, base: dict) -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            sub = _diff(v, base[k])
            if sub:
                out[k] = sub
        elif v != base[k]:
            out[k] = v
    return out


def from_params(cls: type[T], params: dict | None, base: T | None = None) -> T:
    """Inverse of ``to_params``; with ``base``, ``params`` are partial and override ``base``."""
    d = to_dict(base) if base is not None else {}
    return from_dict(cls, _merge(d, params or {}), cls.__name__)


def _merge(d: dict, changes: dict) -> dict:
    out = dict(d)
    for k, v in changes.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def known_keys(cls: type, prefix: str = "") -> list[str]:
    """Every settable key of ``cls``, dotted for nested settings."""
    keys = []
    for f in dataclasses.fields(cls):
        tp = hints(cls)[f.name]
        if dataclasses.is_dataclass(tp):
            keys += known_keys(tp, f"{prefix}{f.name}.")
        else:
            keys.append(prefix + f.name)
    return keys


def parse_override(item: str) -> tuple[str, Any]:
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"override '{item}': expected key=value")
    try:
        val = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        val = raw
    return key.strip(), val


def apply_overrides(obj: T, overrides: list[str]) -> T:
    """A copy of ``obj`` with ``key=value`` overrides (dotted keys for nested settings), validated."""
    cls, keys = type(obj), known_keys(type(obj))
    changes: dict = {}
    for item in overrides:
        key, val = parse_override(item)
        if key not in keys:
            raise ConfigError(f"override '{item}': unknown key '{key}' for {cls.__name__}; known: {keys}")
        *parents, leaf = key.split(".")
        node = changes
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = val
    return from_params(cls, changes, base=obj) if changes else obj


def override_many(configs: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Route ``key=value`` overrides to several configs (``{"model": ModelConfig, "train": ...}``):
    a key may name its config (``train.epochs=3``) or be bare when only one config has it."""
    routed: dict[str, list[str]] = {name: [] for name in configs}
    for item in overrides:
        key, _ = parse_override(item)
        head, _, rest = key.partition(".")
        if head in configs and rest:
            routed[head].append(item[len(head) + 1 :])
            continue
        owners = [n for n, c in configs.items() if key in known_keys(type(c))]
        if len(owners) != 1:
            where = "several" if owners else "none"
            all_keys = {n: known_keys(type(c)) for n, c in configs.items()}
            raise ConfigError(f"override '{item}': key '{key}' matches {where} of the settings {all_keys}")
        routed[owners[0]].append(item)
    return {n: apply_overrides(c, routed[n]) for n, c in configs.items()}
