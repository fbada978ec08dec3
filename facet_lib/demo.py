"""The main job on the embedded default: synthetic data → index → folds (later: render, train, serve).

Every number it prints comes from synthetic data; it says so.
"""

from __future__ import annotations

import json
from pathlib import Path

from facet_lib.data.folds import make_folds, save_folds
from facet_lib.data.indexers import index_dataset, save_index, select_protocol
from facet_lib.data.synthetic import SynthConfig, generate


def prepare_dataset(out: Path, dataset: str, cfg: SynthConfig) -> Path:
    """Generate ``dataset`` under ``out/data`` unless the same settings already produced it."""
    root = out / "data" / dataset
    stamp = root / ".synthetic.json"
    want = json.dumps({"dataset": dataset, **cfg.__dict__}, sort_keys=True)
    if stamp.exists() and stamp.read_text() == want:
        print(f"{dataset}: reusing synthetic data in {root}")
        return root
    generate(dataset, root, cfg)
    stamp.write_text(want)
    return root


def run_demo(out: Path, subjects: int = 10, seed: int = 0) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    print("FACET-VLM demo — SYNTHETIC data (procedural faces), not a licensed dataset.")
    small = SynthConfig(subjects=3, frames=12, seed=seed)
    roots = {"bu3dfe": prepare_dataset(out, "bu3dfe", SynthConfig(subjects=subjects, seed=seed))}
    for ds in ("bosphorus", "bu4dfe", "bp4d", "4dme"):
        roots[ds] = prepare_dataset(out, ds, small)
    paths: dict[str, Path] = {}
    for ds, root in roots.items():
        res = index_dataset(ds, root)
        paths[f"{ds}_index"] = save_index(res.index, out / "index" / f"{ds}.csv")
        print(f"[{ds}] {res.summary()}")
    res = index_dataset("bu3dfe", roots["bu3dfe"])
    df, labels = select_protocol(res.index, "bu3dfe-II")
    k = min(10, df["subject"].nunique())
    paths["folds"] = save_folds(make_folds(df, k, seed), out / "index" / "bu3dfe-II_folds.csv")
    print(f"BU-3DFE Subset II: {len(df)} samples, labels {labels}, {k} subject-independent folds → {paths['folds']}")
    paths.update(render_demo(out, df, index_dataset("bu4dfe", roots["bu4dfe"]).index))
    return paths


def render_demo(out: Path, scans, sequences) -> dict[str, Path]:
    """Three views per BU-3DFE scan and rank-pooled dynamic images per BU-4DFE sequence."""
    from facet_lib.render import RenderConfig
    from facet_lib.render.contact_sheet import contact_sheet
    from facet_lib.render.dataset import render_dataset

    paths = {}
    for name, idx, cfg in [
        ("bu3dfe_views", scans, RenderConfig()),
        ("bu4dfe_dynamic", sequences, RenderConfig(frames=12)),
    ]:
        m = render_dataset(idx, out / "rendered" / name, cfg)
        run = m["last_run"]
        paths[name] = out / "rendered" / name
        paths[f"{name}_sheet"] = contact_sheet(paths[name], paths[name] / "contact_sheet.png")
        print(
            f"[{name}] {m['samples']} samples rendered ({len(m['failures'])} failed), "
            f"{run['views_per_s']} views/s this run, {run['shards_skipped']} shards reused; "
            f"contact sheet: {paths[f'{name}_sheet']}"
        )
    return paths
