"""``facet-vlm`` command line. Each subcommand parses its flags and calls one library or step function.

Options that are settings come from the settings dataclasses (``facet_lib.config``): render options are
built from ``RenderConfig``'s fields, serve options from ``ServeConfig``'s, and model/train settings are
a preset plus ``--set key=value`` (``facet-vlm settings`` lists every key with its default and help).
The Kubeflow commands (``pipeline``, ``demo``) are mounted by ``pipelines`` (facet_lib never imports it):
``main(argv, extensions=[...])``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from facet_lib.config.data import DATA
from facet_lib.config.deploy import DEFAULT_ALIAS
from facet_lib.data import datasets
from facet_lib.errors import FacetError

Extension = Callable[[argparse._SubParsersAction], None]  # adds subparsers whose func(args) -> int | None


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.ArgumentDefaultsHelpFormatter(prog, max_help_position=32, width=110)


def _file(path: str, option: str, what: str = "file") -> Path:
    """``path`` when it is an existing file (``what='file'``) or folder (``'folder'``), else a one-line error."""
    p = Path(path)
    if not (p.is_file() if what == "file" else p.is_dir()):
        raise FacetError(f"{option} {path}: {'no such ' + what if not p.exists() else 'not a ' + what}")
    return p


def _out_folder(path: str, option: str = "--out") -> Path:
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise FacetError(f"{option} {path}: exists and is not a folder")
    return p


def _generate(a: argparse.Namespace) -> None:
    from facet_lib.data.synthetic import SynthConfig, generate

    _out_folder(a.out)

    cfg = SynthConfig(
        subjects=a.subjects, frames=a.frames, step=a.step, step_4d=a.step_4d, seed=a.seed, workers=a.workers
    )
    for ds in a.dataset:
        root = generate(ds, Path(a.out) / ds if len(a.dataset) > 1 else Path(a.out), cfg)
        print(f"{ds}: synthetic dataset (seed {a.seed}) written to {root}")


def _index(a: argparse.Namespace) -> None:
    from facet_lib.data.indexers import index_dataset, save_index

    res = index_dataset(a.dataset, a.root)
    if res.index.empty:
        from facet_lib.errors import DatasetLayoutError

        why = (
            f"; {len(res.quarantine)} files quarantined, e.g. {res.quarantine.iloc[0]['reason']}"
            if len(res.quarantine)
            else ""
        )
        layout = datasets.get(a.dataset).layout if a.dataset != datasets.MANIFEST else "the manifest columns"
        raise DatasetLayoutError(
            f"--root {a.root}: no {a.dataset} samples recognised (the {a.dataset} reader expects "
            f"{layout}){why}; wrong --dataset?"
        )
    save_index(res.index, a.out)
    qpath = Path(a.out).with_name(Path(a.out).stem + "_quarantine.csv")
    res.quarantine.to_csv(qpath, index=False)
    print(res.summary())
    print(f"index: {a.out}\nquarantine: {qpath}")


def _folds(a: argparse.Namespace) -> None:
    from facet_lib.data.folds import make_folds, save_folds
    from facet_lib.data.indexers import load_index, select_protocol

    df = load_index(_file(a.index, "--index"))
    if a.protocol:
        df, _ = select_protocol(df, a.protocol)
    folds = make_folds(df, a.k, a.seed)
    save_folds(folds, a.out)
    table = folds.groupby("fold").agg(samples=("sample_id", "size"), subjects=("subject", "nunique"))
    print(table.to_string())
    print(f"folds: {a.out} ({a.k} subject-independent folds, seed {a.seed})")


def _render(a: argparse.Namespace) -> None:
    from facet_lib.config import RenderConfig
    from facet_lib.config.options import from_args
    from facet_lib.data.indexers import load_index
    from facet_lib.render.contact_sheet import contact_sheet
    from facet_lib.render.dataset import render_dataset

    cfg = from_args(RenderConfig, a)
    m = render_dataset(
        load_index(_file(a.index, "--index")),
        _out_folder(a.out),
        cfg,
        shard_size=a.shard_size,
        shards=a.shards,
        workers=a.workers,
        root=a.root,
    )
    run = m["last_run"]
    print(
        f"rendered dataset: {a.out} — {m['samples']} samples in {len(m['shards'])} shards, "
        f"{len(m['failures'])} failed; this run: {run['samples_rendered']} samples, "
        f"{run['views']} views in {run['seconds']:.1f} s ({run['views_per_s']:.1f} views/s), "
        f"{run['shards_skipped']} shards already done"
    )
    for f in m["failures"][:20]:
        print(f"  failed {f['sample_id']}: {f['reason']}")
    if m["samples"]:
        print(f"contact sheet: {contact_sheet(a.out, Path(a.out) / 'contact_sheet.png')}")


def _settings(a: argparse.Namespace):
    """The preset, then --model/--pretrained/--checkpoint, then --set: (model, train, note)."""
    from facet_lib.config import override_many, preset, require_weights

    mcfg, tcfg = preset(a.preset)
    picked = [f"{k}={v!r}" for k, v in (("clip_model", a.model), ("pretrained", a.pretrained)) if v]
    picked += [f"checkpoint={a.checkpoint!r}"] if a.checkpoint else []
    picked += [f"prompts_file={a.prompts_file!r}"] if a.prompts_file else []
    start = [f"train.init_from={a.init_from!r}"] if a.init_from else []
    cfgs = override_many({"model": mcfg, "train": tcfg}, [f"model.{p}" for p in picked] + start + a.set)
    allow = getattr(a, "allow_random_weights", False)
    note = require_weights(a.preset, cfgs["model"], allow, cfgs["train"].init_from)
    return cfgs["model"], cfgs["train"], note


def _print_note(weights: str, note: str | None) -> None:
    from facet_lib.eval.report import weights_note

    for n in (note, weights_note(weights)):
        if n:
            print(f"NOTE: {n}")


def _cv(a: argparse.Namespace) -> None:
    from facet_lib.config import resolve_micro, to_params
    from facet_lib.data.indexers import protocol_labels
    from facet_lib.steps import cv_step

    mcfg, tcfg, note = _settings(a)
    mcfg = resolve_micro(mcfg, protocol=a.protocol)
    labels = protocol_labels(a.protocol) if a.protocol else None
    res = cv_step(a.views, a.folds, to_params(mcfg), to_params(tcfg), a.out, labels, a.ablations, a.protocol)
    if a.ablations:
        print(res["ablation_table"].round(3).to_string())
        print(f"ablation table: {Path(a.out) / 'ablation_table.csv'}, heatmap: {Path(a.out) / 'ablation_heatmap.png'}")
    else:
        print((Path(a.out) / "report.md").read_text())
        print(f"best fold {res['best_fold']}; outputs in {a.out} (report.html, cv_table.csv, confusion.png)")
    _print_note(res["backbone_weights"], note)


def _cross(a: argparse.Namespace) -> None:
    from facet_lib.config import to_params
    from facet_lib.steps import cross_step

    mcfg, tcfg, note = _settings(a)
    label_map = dict(item.split("=", 1) for item in a.label_map.split(","))
    res = cross_step(
        a.train_views, a.test_views, label_map, to_params(mcfg), to_params(tcfg), a.out, a.ablations, a.protocol
    )
    if a.ablations:
        print(res["ablation_table"].round(3).to_string())
        weights = res["backbone_weights"]
    else:
        print(json.dumps(res, indent=1))
        print((Path(a.out) / "cross_report.md").read_text())  # beside the paper's Table 4(b)
        weights = json.loads((Path(a.out) / "config.json").read_text())["backbone_weights"]
    _print_note(weights, note)


def _tune(a: argparse.Namespace) -> None:
    import tempfile

    from facet_lib import storage
    from facet_lib.config import TuneConfig, resolve_micro, to_params
    from facet_lib.config.options import from_args
    from facet_lib.data.indexers import protocol_labels
    from facet_lib.steps import tune_step

    mcfg, tcfg, note = _settings(a)
    mcfg = resolve_micro(mcfg, protocol=a.protocol)
    labels = protocol_labels(a.protocol) if a.protocol else None
    tune = to_params(from_args(TuneConfig, a))
    with tempfile.TemporaryDirectory(prefix="facet-tune-") as work:  # s3:// inputs (a Katib trial) come down first
        views = storage.download_prefix(a.views, Path(work) / "views") if storage.is_s3(a.views) else a.views
        folds = storage.local_path(a.folds, work) if storage.is_s3(a.folds) else a.folds
        res = tune_step(views, folds, to_params(mcfg), to_params(tcfg), tune, a.out, labels=labels)
    print((Path(a.out) / "tune_report.md").read_text())
    mean = res["table"].loc["mean"]
    for lam in res["grid"]:  # name=value lines: what Katib's StdOut metrics collector reads
        print(f"lam={lam:g} val_{a.metric}={mean[lam]:.6f}")
    print(f"outputs in {a.out} (tune_table.csv, tune_selected.json, tune_plot.png, tune_report.html)")
    _print_note(res["backbone_weights"], note)


def _fig4(a: argparse.Namespace) -> None:
    from facet_lib.eval.fig4 import write_fig4

    res = write_fig4(a.runs, a.out)
    print((Path(a.out) / "fig4.md").read_text())
    print(f"heatmap: {res['files'][1]}; table: {res['files'][0]}")


def _export(a: argparse.Namespace) -> None:
    from facet_lib.steps import export_step

    cv = _file(a.cv, "--cv", "folder")
    if not (cv / "summary.json").is_file():
        raise FacetError(f"--cv {a.cv}: no summary.json (not the output folder of `facet-vlm cv`)")
    try:
        fold = json.loads((cv / "summary.json").read_text())["best_fold"] if a.fold == "best" else int(a.fold)
    except (ValueError, KeyError) as e:
        raise FacetError(f"--cv {a.cv}: summary.json has no best fold ({type(e).__name__}: {e})") from None
    if not (cv / f"fold_{fold}").is_dir():
        raise FacetError(f"--cv {a.cv}: no fold_{fold} folder")
    info = export_step(cv / f"fold_{fold}", _file(a.views, "--views", "folder"), _out_folder(a.out))
    print(f"bundle of fold {fold}: {a.out} (digest {info['digest']})")


def _show_settings(a: argparse.Namespace) -> None:
    from facet_lib.config import RenderConfig, to_params

    mcfg, tcfg, _ = _settings(a)
    print(
        json.dumps({"model": to_params(mcfg), "train": to_params(tcfg), "render": to_params(RenderConfig())}, indent=1)
    )


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


def _model_args(p: argparse.ArgumentParser, out: bool = True) -> None:
    from facet_lib.config import PRESETS

    if out:
        p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--preset",
        default=None,
        choices=list(PRESETS),
        help="named model/train settings (facet_lib/config/train.py); none: the dataclass defaults (the paper's)",
    )
    p.add_argument("--model", default=None, help="open_clip model name (ViT-B-16, facet-tiny, …); sets clip_model")
    p.add_argument("--pretrained", default=None, help="open_clip pretrained tag, e.g. openai (needs internet)")
    p.add_argument("--checkpoint", default=None, help="local or s3:// CLIP weights (state dict / safetensors)")
    p.add_argument(
        "--prompts-file", default=None, help="labels/prompts YAML (local or s3://) replacing the packaged prompts"
    )
    p.add_argument(
        "--init-from",
        default=None,
        help="start training from a bundle: a local bundle folder or s3://…/registry/NAME@ALIAS|/vNNNN (fine-tuning)",
    )
    p.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="model/train overrides, e.g. epochs=5 head.cvsa=False train.seed=1 (`facet-vlm settings` lists the keys)",
    )
    p.add_argument(
        "--allow-random-weights",
        action="store_true",
        help="let presets that need pretrained weights run on random ones (smoke tests only)",
    )


def _command(sub, name: str, func, help: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help, description=help, formatter_class=_formatter)
    p.set_defaults(func=func)
    return p


def _registry_parser(sub) -> None:
    r = sub.add_parser(
        "registry", help="the S3 model registry: list, show, promote, rollback, fetch", formatter_class=_formatter
    )
    acts = r.add_subparsers(dest="action", required=True)
    ref = "a version or alias: s3://…/registry/NAME/vNNNN or s3://…/registry/NAME@ALIAS"
    p = _command(acts, "list", _registry, "list the models of a registry, or one model's versions and aliases")
    p.add_argument("--registry", required=True, help="registry prefix, e.g. s3://facet-models/registry")
    p.add_argument("--name", default=None, help="model name (omit to list the models)")
    p = _command(acts, "show", _registry, "one version: registration record, metrics, aliases")
    p.add_argument("ref", help=ref)
    p = _command(acts, "promote", _registry, "point an alias at a version (verifies it first)")
    p.add_argument("ref", help=ref)
    p.add_argument("--alias", default=DEFAULT_ALIAS, help="alias to move")
    p = _command(acts, "rollback", _registry, "move an alias back to the version it named before")
    p.add_argument("--registry", required=True, help="registry prefix, e.g. s3://facet-models/registry")
    p.add_argument("--name", required=True, help="model name")
    p.add_argument("--alias", default=DEFAULT_ALIAS, help="alias to move back")
    p = _command(acts, "fetch", _registry, "download and verify a version into a local folder")
    p.add_argument("ref", help=ref)
    p.add_argument("--dest", required=True, help="local folder to write the bundle into")


def build_parser(extensions: list[Extension] | tuple = ()) -> argparse.ArgumentParser:
    from facet_lib import __version__
    from facet_lib.config import RenderConfig, TuneConfig
    from facet_lib.config.options import add_options
    from facet_lib.data.synthetic import SynthConfig

    p = argparse.ArgumentParser(
        prog="facet-vlm", description="FACET-VLM 3D/4D facial expression recognition", formatter_class=_formatter
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    syn = SynthConfig()
    g = _command(sub, "generate", _generate, "write a synthetic dataset in a native layout")
    g.add_argument("--dataset", nargs="+", default=["bu3dfe"], choices=datasets.names(), help="datasets to generate")
    g.add_argument("--out", required=True, help="output folder (one sub-folder per dataset when several)")
    g.add_argument("--subjects", type=int, default=syn.subjects, help="subjects per dataset")
    g.add_argument("--frames", type=int, default=syn.frames, help="frames per 4D sequence")
    g.add_argument("--step", type=float, default=syn.step, help="grid spacing of 3D scans in mm")
    g.add_argument("--step-4d", type=float, default=syn.step_4d, help="grid spacing of 4D frames in mm")
    g.add_argument("--seed", type=int, default=syn.seed, help="random seed (same seed, same files)")
    g.add_argument("--workers", type=int, default=syn.workers, help="processes (0 = all cores)")

    i = _command(sub, "index", _index, "index a dataset root (native layout) or a manifest CSV")
    i.add_argument("--dataset", required=True, choices=[*datasets.names(), datasets.MANIFEST], help="dataset layout")
    i.add_argument("--root", required=True, help="dataset root, or the manifest CSV for --dataset manifest")
    i.add_argument("--out", required=True, help="index CSV to write")

    f = _command(sub, "folds", _folds, "subject-independent K-fold split of an index")
    f.add_argument("--index", required=True, help="index CSV (from `facet-vlm index`)")
    f.add_argument("--protocol", default=None, help=f"e.g. bu3dfe-I, bu3dfe-II, bosphorus, {datasets.CROSS_PROTOCOL}")
    f.add_argument("--k", type=int, default=DATA.folds, help="number of folds")
    f.add_argument("--seed", type=int, default=DATA.fold_seed, help="seed of the subject shuffle")
    f.add_argument("--out", required=True, help="folds CSV to write")

    r = _command(sub, "render", _render, "render an index into sharded multiview (dynamic) images")
    r.add_argument("--index", required=True, help="index CSV")
    r.add_argument("--out", required=True, help="rendered dataset folder")
    r.add_argument("--root", default=None, help="dataset root, if it moved since indexing")
    r.add_argument("--shard-size", type=int, default=DATA.shard_size, help="samples per shard")
    r.add_argument("--shards", type=int, nargs="*", default=None, help="only these shard numbers (none given: all)")
    r.add_argument("--workers", type=int, default=0, help="processes (0 = all cores)")
    add_options(r, RenderConfig)

    c = _command(sub, "cv", _cv, "K-fold subject-independent cross-validation (optionally all ablations)")
    c.add_argument("--views", required=True, help="rendered dataset folder")
    c.add_argument("--folds", required=True, help="folds CSV")
    c.add_argument("--protocol", default=None, help="restrict labels to a protocol's label set")
    c.add_argument("--ablations", action="store_true", help="run every ablation variant into one table")
    _model_args(c)

    x = _command(sub, "cross", _cross, "train on one rendered dataset, test on another")
    x.add_argument("--train-views", required=True, help="rendered dataset to train on")
    x.add_argument("--test-views", required=True, help="rendered dataset to test on")
    x.add_argument(
        "--label-map",
        default=",".join(f"{k}={v}" for k, v in datasets.cross_label_map().items()),
        help="target label=source label pairs, comma-separated",
    )
    x.add_argument("--ablations", action="store_true", help="run every ablation variant into one table")
    x.add_argument(
        "--protocol", default=datasets.CROSS_PROTOCOL, help="protocol whose paper targets the ablation table shows"
    )
    _model_args(x)

    t = _command(sub, "tune", _tune, "the paper's lambda search (section 3.4) on a validation split inside each fold")
    t.add_argument("--views", required=True, help="rendered dataset folder (or an s3:// prefix)")
    t.add_argument("--folds", required=True, help="folds CSV (or s3://)")
    t.add_argument("--protocol", default=None, help="restrict labels to a protocol's label set")
    _model_args(t)
    add_options(t, TuneConfig, aliases={"seed": ["--val-seed"]})

    f4 = _command(sub, "fig4", _fig4, "the paper's Fig. 4: one heatmap of several ablation runs beside the paper")
    f4.add_argument("runs", nargs="+", metavar="RUN", help="ablation run folders (cv/cross --ablations) or SETTING=DIR")
    f4.add_argument("--out", required=True, help="folder for fig4.png, fig4.csv, fig4.md")

    e = _command(sub, "export", _export, "write the serving bundle of a trained fold (default: the best)")
    e.add_argument("--cv", required=True, help="a cv output folder")
    e.add_argument("--views", required=True, help="the rendered dataset the CV used (only its manifest is read)")
    e.add_argument("--fold", default="best", help="fold number, or best (the report's best fold)")
    e.add_argument("--out", required=True, help="bundle folder to write")

    st = _command(sub, "settings", _show_settings, "print the resolved model/train settings (and render defaults)")
    _model_args(st, out=False)

    from facet_lib.serving.options import add_serve_options

    s = _command(sub, "serve", _serve, "serve a bundle with KServe's model server (REST, 127.0.0.1 by default)")
    add_serve_options(s)

    _registry_parser(sub)
    for ext in extensions:
        ext(sub)
    return p


def _one_line(e: BaseException) -> str | None:
    """The message of an error a user can act on, or None for a bug (which keeps its traceback)."""
    if isinstance(e, FacetError):
        return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if isinstance(e, OSError):  # a path that is missing, not a folder, not writable, disk full …
        where = f"{e.filename}: " if e.filename else ""
        return f"{where}{e.strerror or e}" + (f" -> {e.filename2}" if e.filename2 else "")
    if isinstance(e, SystemExit) and isinstance(e.code, str):  # extensions and scripts exiting with a message
        return e.code.strip().splitlines()[0]
    return None


def main(argv: list[str] | None = None, extensions: list[Extension] | tuple = ()) -> int:
    """Run one command. Errors a user can act on (``FacetError``, ``OSError``, ``SystemExit('message')``)
    print one ``error: …`` line and exit 2, like argparse's usage errors; ``FACET_TRACEBACK=1`` re-raises."""
    args = build_parser(extensions).parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return int(args.func(args) or 0)
    except (FacetError, OSError, SystemExit) as e:
        msg = _one_line(e)
        if msg is None or os.environ.get("FACET_TRACEBACK") == "1":
            raise
        print(f"error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
