"""``facet-vlm generate | index | folds | render``: the data half, through the same front door as the
pipeline's ingest and render steps (``facet_lib.steps.data``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from facet_lib.cli.common import command, existing, out_folder
from facet_lib.config.data import DATA
from facet_lib.data import datasets


def _generate(a: argparse.Namespace) -> None:
    from facet_lib.data.synthetic import SynthConfig, generate

    out_folder(a.out)

    cfg = SynthConfig(
        subjects=a.subjects, frames=a.frames, step=a.step, step_4d=a.step_4d, seed=a.seed, workers=a.workers
    )
    for ds in a.dataset:
        root = generate(ds, Path(a.out) / ds if len(a.dataset) > 1 else Path(a.out), cfg)
        print(f"{ds}: synthetic dataset (seed {a.seed}) written to {root}")


def _index(a: argparse.Namespace) -> None:
    from facet_lib.steps.data import index_step, quarantine_path

    res = index_step(a.dataset, a.root, a.out, names=("--root", "--dataset"))
    print(res.summary())
    print(f"index: {a.out}\nquarantine: {quarantine_path(a.out)}")


def _folds(a: argparse.Namespace) -> None:
    from facet_lib.data.indexers import load_index
    from facet_lib.steps.data import folds_step

    _, _, folds = folds_step(load_index(existing(a.index, "--index")), a.protocol, a.n_folds, a.seed, a.out)
    table = folds.groupby("fold").agg(samples=("sample_id", "size"), subjects=("subject", "nunique"))
    print(table.to_string())
    print(f"folds: {a.out} ({a.n_folds} subject-independent folds, seed {a.seed})")


def _render(a: argparse.Namespace) -> None:
    from facet_lib.config import RenderConfig
    from facet_lib.config.options import from_args
    from facet_lib.data.indexers import load_index
    from facet_lib.render.contact_sheet import contact_sheet
    from facet_lib.steps.data import render_views

    cfg = from_args(RenderConfig, a)
    index = load_index(existing(a.index, "--index"))
    m = render_views(index, a.root, cfg, out_folder(a.out), a.shard_size, a.shards, workers=a.workers)
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


def add_commands(sub) -> None:
    from facet_lib.config import RenderConfig
    from facet_lib.config.options import add_options
    from facet_lib.data.synthetic import SynthConfig

    syn = SynthConfig()
    g = command(sub, "generate", _generate, "write a synthetic dataset in a native layout")
    g.add_argument("--dataset", nargs="+", default=["bu3dfe"], choices=datasets.names(), help="datasets to generate")
    g.add_argument("--out", required=True, help="output folder (one sub-folder per dataset when several)")
    g.add_argument("--subjects", type=int, default=syn.subjects, help="subjects per dataset")
    g.add_argument("--frames", type=int, default=syn.frames, help="frames per 4D sequence")
    g.add_argument("--step", type=float, default=syn.step, help="grid spacing of 3D scans in mm")
    g.add_argument("--step-4d", type=float, default=syn.step_4d, help="grid spacing of 4D frames in mm")
    g.add_argument("--seed", type=int, default=syn.seed, help="random seed (same seed, same files)")
    g.add_argument("--workers", type=int, default=syn.workers, help="processes (0 = all cores)")

    i = command(sub, "index", _index, "index a dataset root (native layout) or a manifest CSV")
    i.add_argument("--dataset", required=True, choices=[*datasets.names(), datasets.MANIFEST], help="dataset layout")
    i.add_argument(
        "--root",
        required=True,
        help="dataset root (a folder or an s3:// prefix), or the manifest CSV for --dataset manifest",
    )
    i.add_argument(
        "--out", required=True, help="index CSV to write (the quarantine goes beside it: <stem>_quarantine.csv)"
    )

    f = command(sub, "folds", _folds, "subject-independent K-fold split of an index")
    f.add_argument("--index", required=True, help="index CSV (from `facet-vlm index`)")
    f.add_argument("--protocol", default=None, help=f"e.g. bu3dfe-I, bu3dfe-II, bosphorus, {datasets.CROSS_PROTOCOL}")
    f.add_argument("--n-folds", "--k", dest="n_folds", type=int, default=DATA.n_folds, help="number of folds")
    f.add_argument("--seed", type=int, default=DATA.fold_seed, help="seed of the subject shuffle")
    f.add_argument("--out", required=True, help="folds CSV to write")

    r = command(sub, "render", _render, "render an index into sharded multiview (dynamic) images")
    r.add_argument("--index", required=True, help="index CSV")
    r.add_argument("--out", required=True, help="rendered dataset folder")
    r.add_argument("--root", default=None, help="dataset root (or s3:// prefix), if not where it was indexed")
    r.add_argument("--shard-size", type=int, default=DATA.shard_size, help="samples per shard")
    r.add_argument("--shards", type=int, nargs="*", default=None, help="only these shard numbers (none given: all)")
    r.add_argument("--workers", type=int, default=0, help="processes (0 = all cores)")
    add_options(r, RenderConfig)
