"""``facet-vlm`` command line. Each subcommand parses its flags and calls one library function."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from facet_lib.errors import FacetError


def _generate(a: argparse.Namespace) -> None:
    from facet_lib.data.synthetic import SynthConfig, generate

    cfg = SynthConfig(subjects=a.subjects, frames=a.frames, step=a.step, step_4d=a.step_4d,
                      seed=a.seed, workers=a.workers)
    for ds in a.dataset:
        root = generate(ds, Path(a.out) / ds if len(a.dataset) > 1 else Path(a.out), cfg)
        print(f"{ds}: synthetic dataset (seed {a.seed}) written to {root}")


def _index(a: argparse.Namespace) -> None:
    from facet_lib.data.indexers import index_dataset, save_index

    res = index_dataset(a.dataset, a.root)
    save_index(res.index, a.out)
    qpath = Path(a.out).with_name(Path(a.out).stem + "_quarantine.csv")
    res.quarantine.to_csv(qpath, index=False)
    print(res.summary())
    print(f"index: {a.out}\nquarantine: {qpath}")


def _folds(a: argparse.Namespace) -> None:
    from facet_lib.data.folds import make_folds, save_folds
    from facet_lib.data.indexers import load_index, select_protocol

    df = load_index(a.index)
    if a.protocol:
        df, _ = select_protocol(df, a.protocol)
    folds = make_folds(df, a.k, a.seed)
    save_folds(folds, a.out)
    table = folds.groupby("fold").agg(samples=("sample_id", "size"), subjects=("subject", "nunique"))
    print(table.to_string())
    print(f"folds: {a.out} ({a.k} subject-independent folds, seed {a.seed})")


def _demo(a: argparse.Namespace) -> None:
    from facet_lib.demo import run_demo

    run_demo(Path(a.out), subjects=a.subjects, seed=a.seed)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="facet-vlm", description="FACET-VLM 3D/4D facial expression recognition")
    sub = p.add_subparsers(dest="cmd", required=True)

    g = sub.add_parser("generate", help="write a synthetic dataset in a native layout")
    g.add_argument("--dataset", nargs="+", default=["bu3dfe"],
                   choices=["bu3dfe", "bosphorus", "bu4dfe", "bp4d", "4dme"])
    g.add_argument("--out", required=True)
    g.add_argument("--subjects", type=int, default=10)
    g.add_argument("--frames", type=int, default=24, help="frames per 4D sequence")
    g.add_argument("--step", type=float, default=1.0, help="grid spacing of 3D scans in mm")
    g.add_argument("--step-4d", type=float, default=2.0, help="grid spacing of 4D frames in mm")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--workers", type=int, default=0, help="processes (0 = all cores)")
    g.set_defaults(func=_generate)

    i = sub.add_parser("index", help="index a dataset root (native layout) or a manifest CSV")
    i.add_argument("--dataset", required=True,
                   choices=["bu3dfe", "bosphorus", "bu4dfe", "bp4d", "4dme", "manifest"])
    i.add_argument("--root", required=True, help="dataset root, or the manifest CSV for --dataset manifest")
    i.add_argument("--out", required=True, help="index CSV to write")
    i.set_defaults(func=_index)

    f = sub.add_parser("folds", help="subject-independent K-fold split of an index")
    f.add_argument("--index", required=True)
    f.add_argument("--protocol", default=None, help="e.g. bu3dfe-I, bu3dfe-II, bosphorus, bp4d-cross")
    f.add_argument("--k", type=int, default=10)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--out", required=True)
    f.set_defaults(func=_folds)

    d = sub.add_parser("demo", help="the main job on the embedded synthetic default")
    d.add_argument("--out", default="runs/demo")
    d.add_argument("--subjects", type=int, default=10)
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except FacetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
