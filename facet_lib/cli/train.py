"""``facet-vlm cv | cross | tune | fig4 | settings``: training and evaluation in one process, over the
same step functions as the pipeline (``facet_lib.steps.train``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from facet_lib.cli.common import command, model_args, print_note, settings
from facet_lib.data import datasets


def _cv(a: argparse.Namespace) -> None:
    from facet_lib.config import to_params
    from facet_lib.data.indexers import protocol_labels
    from facet_lib.steps import cv_step

    mcfg, tcfg, note = settings(a, protocol=a.protocol)
    labels = protocol_labels(a.protocol) if a.protocol else None
    res = cv_step(a.views, a.folds, to_params(mcfg), to_params(tcfg), a.out, labels, a.ablations, a.protocol)
    if a.ablations:
        print(res["ablation_table"].round(3).to_string())
        print(f"ablation table: {Path(a.out) / 'ablation_table.csv'}, heatmap: {Path(a.out) / 'ablation_heatmap.png'}")
    else:
        print((Path(a.out) / "report.md").read_text())
        print(f"best fold {res['best_fold']}; outputs in {a.out} (report.html, cv_table.csv, confusion.png)")
    print_note(res["backbone_weights"], note)


def _cross(a: argparse.Namespace) -> None:
    from facet_lib.config import to_params
    from facet_lib.steps import cross_step

    mcfg, tcfg, note = settings(a)
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
    print_note(weights, note)


def _tune(a: argparse.Namespace) -> None:
    import tempfile

    from facet_lib import storage
    from facet_lib.config import TuneConfig, to_params
    from facet_lib.config.options import from_args
    from facet_lib.data.indexers import protocol_labels
    from facet_lib.steps import tune_step

    mcfg, tcfg, note = settings(a, protocol=a.protocol)
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
    print_note(res["backbone_weights"], note)


def _fig4(a: argparse.Namespace) -> None:
    from facet_lib.eval.fig4 import write_fig4

    res = write_fig4(a.runs, a.out)
    print((Path(a.out) / "fig4.md").read_text())
    print(f"heatmap: {res['files'][1]}; table: {res['files'][0]}")


def _show_settings(a: argparse.Namespace) -> None:
    from facet_lib.config import RenderConfig, to_params

    mcfg, tcfg, _ = settings(a)
    print(
        json.dumps({"model": to_params(mcfg), "train": to_params(tcfg), "render": to_params(RenderConfig())}, indent=1)
    )


def add_commands(sub) -> None:
    from facet_lib.config import TuneConfig
    from facet_lib.config.options import add_options

    c = command(sub, "cv", _cv, "K-fold subject-independent cross-validation (optionally all ablations)")
    c.add_argument("--views", required=True, help="rendered dataset folder")
    c.add_argument("--folds", required=True, help="folds CSV")
    c.add_argument("--protocol", default=None, help="restrict labels to a protocol's label set")
    c.add_argument("--ablations", action="store_true", help="run every ablation variant into one table")
    model_args(c)

    x = command(sub, "cross", _cross, "train on one rendered dataset, test on another")
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
    model_args(x)

    t = command(sub, "tune", _tune, "the paper's lambda search (section 3.4) on a validation split inside each fold")
    t.add_argument("--views", required=True, help="rendered dataset folder (or an s3:// prefix)")
    t.add_argument("--folds", required=True, help="folds CSV (or s3://)")
    t.add_argument("--protocol", default=None, help="restrict labels to a protocol's label set")
    model_args(t)
    add_options(t, TuneConfig, aliases={"seed": ["--val-seed"]})

    f4 = command(sub, "fig4", _fig4, "the paper's Fig. 4: one heatmap of several ablation runs beside the paper")
    f4.add_argument("runs", nargs="+", metavar="RUN", help="ablation run folders (cv/cross --ablations) or SETTING=DIR")
    f4.add_argument("--out", required=True, help="folder for fig4.png, fig4.csv, fig4.md")


def add_settings_command(sub) -> None:
    st = command(sub, "settings", _show_settings, "print the resolved model/train settings (and render defaults)")
    model_args(st, out=False)
