"""``facet-vlm export | serve | registry``: the release half — the serving bundle of a fold, KServe's
model server over it, and the S3 model registry."""

from __future__ import annotations

import argparse
import json

from facet_lib.cli.common import command, existing, formatter, out_folder
from facet_lib.config.deploy import DEFAULT_ALIAS
from facet_lib.errors import FacetError


def _export(a: argparse.Namespace) -> None:
    from facet_lib.steps import export_step

    cv = existing(a.cv, "--cv", "folder")
    if not (cv / "summary.json").is_file():
        raise FacetError(f"--cv {a.cv}: no summary.json (not the output folder of `facet-vlm cv`)")
    try:
        fold = json.loads((cv / "summary.json").read_text())["best_fold"] if a.fold == "best" else int(a.fold)
    except (ValueError, KeyError) as e:
        raise FacetError(f"--cv {a.cv}: summary.json has no best fold ({type(e).__name__}: {e})") from None
    if not (cv / f"fold_{fold}").is_dir():
        raise FacetError(f"--cv {a.cv}: no fold_{fold} folder")
    info = export_step(cv / f"fold_{fold}", existing(a.views, "--views", "folder"), out_folder(a.out))
    print(f"bundle of fold {fold}: {a.out} (digest {info['digest']})")


def _serve(a: argparse.Namespace) -> None:
    from facet_lib.serving.server import run_from_args

    run_from_args(a)


def _registry(a: argparse.Namespace) -> None:
    from facet_lib import registry

    if a.action == "list":
        res = registry.list_versions(a.registry, a.name) if a.name else registry.models(a.registry)
    elif a.action == "show":
        res = registry.show(a.ref)
    elif a.action == "promote":
        res = registry.promote(a.ref, a.alias)
    elif a.action == "rollback":
        res = registry.rollback(a.registry, a.name, a.alias)
    else:
        res = {"path": str(registry.fetch(a.ref, a.dest))}
    print(json.dumps(res, indent=1, default=str))


def _registry_parser(sub) -> None:
    r = sub.add_parser(
        "registry", help="the S3 model registry: list, show, promote, rollback, fetch", formatter_class=formatter
    )
    acts = r.add_subparsers(dest="action", required=True)
    ref = "a version or alias: s3://…/registry/NAME/vNNNN or s3://…/registry/NAME@ALIAS"
    p = command(acts, "list", _registry, "list the models of a registry, or one model's versions and aliases")
    p.add_argument("--registry", required=True, help="registry prefix, e.g. s3://facet-models/registry")
    p.add_argument("--name", default=None, help="model name (omit to list the models)")
    p = command(acts, "show", _registry, "one version: registration record, metrics, aliases")
    p.add_argument("ref", help=ref)
    p = command(acts, "promote", _registry, "point an alias at a version (verifies it first)")
    p.add_argument("ref", help=ref)
    p.add_argument("--alias", default=DEFAULT_ALIAS, help="alias to move")
    p = command(acts, "rollback", _registry, "move an alias back to the version it named before")
    p.add_argument("--registry", required=True, help="registry prefix, e.g. s3://facet-models/registry")
    p.add_argument("--name", required=True, help="model name")
    p.add_argument("--alias", default=DEFAULT_ALIAS, help="alias to move back")
    p = command(acts, "fetch", _registry, "download and verify a version into a local folder")
    p.add_argument("ref", help=ref)
    p.add_argument("--dest", required=True, help="local folder to write the bundle into")


def add_export_command(sub) -> None:
    e = command(sub, "export", _export, "write the serving bundle of a trained fold (default: the best)")
    e.add_argument("--cv", required=True, help="a cv output folder")
    e.add_argument("--views", required=True, help="the rendered dataset the CV used (only its manifest is read)")
    e.add_argument("--fold", default="best", help="fold number, or best (the report's best fold)")
    e.add_argument("--out", required=True, help="bundle folder to write")


def add_commands(sub) -> None:
    from facet_lib.config.options import add_serve_options

    s = command(sub, "serve", _serve, "serve a bundle with KServe's model server (REST, 127.0.0.1 by default)")
    add_serve_options(s)
    _registry_parser(sub)
