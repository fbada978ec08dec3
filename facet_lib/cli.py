"""``facet-vlm`` command line. Each subcommand parses its flags and calls one library function."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from facet_lib.errors import FacetError


def _generate(a: argparse.Namespace) -> None:
    from facet_lib.data.synthetic import SynthConfig, generate

    cfg = SynthConfig(
        subjects=a.subjects, frames=a.frames, step=a.step, step_4d=a.step_4d, seed=a.seed, workers=a.workers
    )
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


def render_config_from_args(a: argparse.Namespace):
    from facet_lib.render.config import RenderConfig

    return RenderConfig(
        size=a.size,
        yaws=tuple(a.yaws),
        mode=a.mode,
        projection=a.projection,
        backend=a.backend,
        frames=a.frames,
        temporal=a.temporal,
        frontalize=a.frontalize,
    )


def _render(a: argparse.Namespace) -> None:
    from facet_lib.data.indexers import load_index
    from facet_lib.render.contact_sheet import contact_sheet
    from facet_lib.render.dataset import render_dataset

    cfg = render_config_from_args(a)
    m = render_dataset(
        load_index(a.index), a.out, cfg, shard_size=a.shard_size, shards=a.shards, workers=a.workers, root=a.root
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


def _configs(a: argparse.Namespace):
    from facet_lib.models.model import ModelConfig
    from facet_lib.train.config import TrainConfig, apply_overrides
    from facet_lib.train.presets import PRESETS

    mcfg, tcfg = PRESETS[a.preset] if a.preset else (ModelConfig(), TrainConfig())
    if a.model:
        mcfg = apply_overrides(mcfg, [f"clip_model={a.model}"])
    if a.pretrained:
        mcfg = apply_overrides(mcfg, [f"pretrained={a.pretrained}"])
    if a.checkpoint:
        mcfg = apply_overrides(mcfg, [f"checkpoint={a.checkpoint}"])
    model_keys = {f for f in mcfg.to_dict()}
    mcfg = apply_overrides(mcfg, [o for o in a.set if o.split("=")[0] in model_keys])
    tcfg = apply_overrides(tcfg, [o for o in a.set if o.split("=")[0] not in model_keys])
    return mcfg, tcfg


def _cv(a: argparse.Namespace) -> None:
    from facet_lib.data.indexers import protocol_labels
    from facet_lib.train.cv import Runner, load_data, run_ablations, run_cv

    mcfg, tcfg = _configs(a)
    labels = protocol_labels(a.protocol) if a.protocol else None
    if a.micro:
        mcfg = dataclasses.replace(mcfg, micro=True)
    data = load_data(a.views, a.folds, labels)
    runner = Runner(mcfg, tcfg, Path(a.out) / "cache")
    print(f"backbone {mcfg.clip_model}, weights: {runner.weights}; {len(data.rows)} samples, labels {data.labels}")
    if a.ablations:
        table = run_ablations(runner, data, a.out)
        print(table.round(3).to_string())
        print(f"ablation table: {Path(a.out) / 'ablation_table.csv'}, heatmap: {Path(a.out) / 'ablation_heatmap.png'}")
    else:
        res = run_cv(runner, data, a.out)
        print(res["table"].round(3).to_string())
        print(f"best fold {res['best_fold']}; outputs in {a.out} (cv_table.csv, confusion.png, per_fold_accuracy.png)")
    if "random" in runner.weights:
        print("NOTE: random backbone weights — these numbers show the pipeline works, not the paper's accuracy.")


def _cross(a: argparse.Namespace) -> None:
    import json

    from facet_lib.train.cv import Runner, load_data, run_cross

    mcfg, tcfg = _configs(a)
    label_map = dict(item.split("=", 1) for item in a.label_map.split(","))
    source = load_data(a.train_views)
    target = load_data(a.test_views, labels=sorted(label_map))
    runner = Runner(mcfg, tcfg, Path(a.out) / "cache")
    res = run_cross(runner, source, target, a.out, label_map)
    print(json.dumps(res, indent=1))
    if "random" in runner.weights:
        print("NOTE: random backbone weights — these numbers show the pipeline works, not the paper's accuracy.")


def _export(a: argparse.Namespace) -> None:
    import json

    from facet_lib.train.cv import Runner, export_fold_bundle, load_data

    cfg = json.loads((Path(a.cv) / "config.json").read_text())
    summary = json.loads((Path(a.cv) / "summary.json").read_text())
    fold = summary["best_fold"] if a.fold == "best" else int(a.fold)
    from facet_lib.models.model import ModelConfig
    from facet_lib.train.config import TrainConfig, from_dict

    mcfg, tcfg = from_dict(ModelConfig, cfg["model"]), from_dict(TrainConfig, cfg["train"])
    data = load_data(a.views, labels=cfg["labels"])
    digest = export_fold_bundle(Runner(mcfg, tcfg, Path(a.cv) / "cache", progress=False), data, a.cv, fold, a.out)
    print(f"bundle of fold {fold}: {a.out} (digest {digest})")


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True)
    p.add_argument(
        "--preset",
        default=None,
        choices=["paper", "tiny-cpu"],
        help="paper: ViT-B-16 and the paper's optimiser; tiny-cpu: small random-weight CPU demo",
    )
    p.add_argument("--model", default=None, help="open_clip model name (ViT-B-16, facet-tiny, …)")
    p.add_argument("--pretrained", default=None, help="open_clip pretrained tag, e.g. openai (needs internet)")
    p.add_argument("--checkpoint", default=None, help="local or s3:// CLIP weights (state dict / safetensors)")
    p.add_argument("--set", nargs="*", default=[], help="key=value overrides of model/train settings")


def _serve(a: argparse.Namespace) -> None:
    from facet_lib.serving.server import main as serve_main

    serve_main(
        ["--model", a.model, "--model_name", a.name, "--host", a.host, "--http_port", str(a.port), "--device", a.device]
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="facet-vlm", description="FACET-VLM 3D/4D facial expression recognition")
    sub = p.add_subparsers(dest="cmd", required=True)

    g = sub.add_parser("generate", help="write a synthetic dataset in a native layout")
    g.add_argument(
        "--dataset", nargs="+", default=["bu3dfe"], choices=["bu3dfe", "bosphorus", "bu4dfe", "bp4d", "4dme"]
    )
    g.add_argument("--out", required=True)
    g.add_argument("--subjects", type=int, default=10)
    g.add_argument("--frames", type=int, default=24, help="frames per 4D sequence")
    g.add_argument("--step", type=float, default=1.0, help="grid spacing of 3D scans in mm")
    g.add_argument("--step-4d", type=float, default=2.0, help="grid spacing of 4D frames in mm")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--workers", type=int, default=0, help="processes (0 = all cores)")
    g.set_defaults(func=_generate)

    i = sub.add_parser("index", help="index a dataset root (native layout) or a manifest CSV")
    i.add_argument("--dataset", required=True, choices=["bu3dfe", "bosphorus", "bu4dfe", "bp4d", "4dme", "manifest"])
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

    r = sub.add_parser("render", help="render an index into sharded multiview (dynamic) images")
    r.add_argument("--index", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--root", default=None, help="dataset root, if it moved since indexing")
    r.add_argument("--mode", default="shaded", choices=["shaded", "depth", "normal", "texture"])
    r.add_argument("--size", type=int, default=224)
    r.add_argument("--yaws", type=float, nargs="+", default=[0.0, -30.0, 30.0])
    r.add_argument("--projection", default="ortho", choices=["ortho", "perspective"])
    r.add_argument("--backend", default="fast", choices=["fast", "pyrender"])
    r.add_argument("--frames", type=int, default=16, help="frames sampled per 4D sequence")
    r.add_argument("--temporal", default="rankpool", choices=["rankpool", "mean", "apex"])
    r.add_argument("--frontalize", action="store_true")
    r.add_argument("--shard-size", type=int, default=64)
    r.add_argument("--shards", type=int, nargs="*", default=None, help="only these shard numbers")
    r.add_argument("--workers", type=int, default=0)
    r.set_defaults(func=_render)

    c = sub.add_parser("cv", help="K-fold subject-independent cross-validation (optionally all ablations)")
    c.add_argument("--views", required=True, help="rendered dataset folder")
    c.add_argument("--folds", required=True)
    c.add_argument("--protocol", default=None, help="restrict labels to a protocol's label set")
    c.add_argument("--micro", action="store_true", help="4DME micro-expression prompts")
    c.add_argument("--ablations", action="store_true", help="run every ablation variant into one table")
    _model_args(c)
    c.set_defaults(func=_cv)

    x = sub.add_parser("cross", help="train on one rendered dataset, test on another")
    x.add_argument("--train-views", required=True)
    x.add_argument("--test-views", required=True)
    x.add_argument(
        "--label-map", default="happy=happy,disgust=disgust", help="target label=source label pairs, comma-separated"
    )
    _model_args(x)
    x.set_defaults(func=_cross)

    e = sub.add_parser("export", help="write the serving bundle of a trained fold (default: the best)")
    e.add_argument("--cv", required=True, help="a cv output folder")
    e.add_argument("--views", required=True, help="the rendered dataset the CV used")
    e.add_argument("--fold", default="best")
    e.add_argument("--out", required=True)
    e.set_defaults(func=_export)

    s = sub.add_parser("serve", help="serve a bundle with KServe's model server (REST, 127.0.0.1 by default)")
    s.add_argument("--model", required=True, help="s3://registry/name@production, s3://…/vNNNN, or a folder")
    s.add_argument("--name", default="facet-vlm")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8080)
    s.add_argument("--device", default="auto")
    s.set_defaults(func=_serve)

    sub.add_parser("pipeline", help="Kubeflow pipeline: compile | submit | schedule (see `facet-vlm pipeline -h`)")

    sub.add_parser("demo", help="the main job: S3 + synthetic data + local pipeline + served model + requests")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["pipeline"], ["demo"]):
        # The Kubeflow adapters and the demo that runs them live outside the library (facet_lib never
        # imports kfp): hand over.
        import importlib

        return importlib.import_module(f"pipelines.{'cli' if argv[0] == 'pipeline' else 'demo'}").main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except FacetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
