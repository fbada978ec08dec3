"""The data half: index a dataset in its native layout, make the folds, plan the shards, render, merge.

One front door for the command line and the pipeline: ``facet-vlm index``/``folds``/``render`` call
``index_step``/``folds_step``/``render_views``, and the pipeline's ingest and render steps are built from
the same three, so both write the same files (``<index>.csv`` with ``<index>_quarantine.csv`` beside it,
the folds CSV, the rendered views). Only the ingest step plans the shards: it records shard → sample ids
(``shards.csv``) and every render task reads that record."""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

import pandas as pd

from facet_lib import storage
from facet_lib.config import RenderConfig, from_params
from facet_lib.config.data import DATA
from facet_lib.data.datasets import MANIFEST, is_4d
from facet_lib.errors import DatasetLayoutError
from facet_lib.provenance import data_fingerprint
from facet_lib.steps.common import local_root, timed

KINDS = ("all", "scans", "sequences")  # what a render task renders: both, the 3D scans, the 4D sequences


def quarantine_path(index_csv: str | Path) -> Path:
    """Where the files an index skipped are listed, with why: ``<index stem>_quarantine.csv`` beside it."""
    p = Path(index_csv)
    return p.with_name(p.stem + "_quarantine.csv")


def index_step(dataset: str, data_uri: str | Path, out: str | Path, names: tuple[str, str] = ("data_uri", "dataset")):
    """Index the dataset at ``data_uri`` (a local folder, an s3:// prefix, or for ``dataset='manifest'`` a
    manifest CSV) in its native layout; write the index CSV ``out`` and its quarantine beside it. Refuses
    an index with no sample, naming the layout the reader expects (``names``: what the caller calls the
    location and the dataset, e.g. ``--root``, ``--dataset``). Returns the ``IndexResult``."""
    from facet_lib.data import datasets
    from facet_lib.data.indexers import index_dataset, save_index

    with tempfile.TemporaryDirectory() as tmp:
        s3 = storage.is_s3(str(data_uri)) and dataset != MANIFEST
        res = index_dataset(dataset, local_root(str(data_uri), Path(tmp)) if s3 else data_uri)
    if res.index.empty:
        q = res.quarantine
        why = f"; {len(q)} files quarantined, e.g. {q.iloc[0]['reason']}" if len(q) else ""
        layout = datasets.get(dataset).layout if dataset != MANIFEST else "the manifest columns"
        raise DatasetLayoutError(
            f"{names[0]} {data_uri}: no {dataset} samples recognised (the {dataset} reader expects {layout}){why}; "
            f"wrong {names[1]}?"
        )
    save_index(res.index, out)
    res.quarantine.to_csv(quarantine_path(out), index=False)
    return res


def folds_step(
    index: pd.DataFrame, protocol: str | None, n_folds: int, seed: int, out: str | Path
) -> tuple[pd.DataFrame, list[str], pd.DataFrame]:
    """Select ``protocol``'s rows and labels (none: every row), make ``n_folds`` subject-independent folds
    and write them to ``out``. Returns (rows, labels, folds)."""
    from facet_lib.data.folds import make_folds, save_folds
    from facet_lib.data.indexers import select_protocol

    df, labels = select_protocol(index, protocol) if protocol else (index, sorted(index["label"].unique()))
    folds = make_folds(df, n_folds, seed)
    save_folds(folds, out)
    return df, labels, folds


def save_shards(index: pd.DataFrame, shard_size: int, out: str | Path) -> int:
    """Plan the shards once (``facet_lib.render.dataset.shard_rows``) and record shard → sample id."""
    from facet_lib.render.dataset import shard_rows

    rows = [(s, sid) for s, part in enumerate(shard_rows(index, shard_size)) for sid in part["sample_id"]]
    pd.DataFrame(rows, columns=["shard", "sample_id"]).to_csv(out, index=False)
    return len({s for s, _ in rows})


@timed
def ingest_step(
    data_uri: str,
    dataset: str,
    protocol: str,
    n_folds: int,
    seed: int,
    out: str | Path,
    shard_size: int = DATA.shard_size,
    render_tasks: int = DATA.render_tasks,
) -> dict:
    """Index the dataset at ``data_uri`` (native layout), select the protocol, make the folds, plan the
    shards and spread them over ``render_tasks`` groups. ``out`` gets index.csv (+ quarantine), folds.csv,
    shards.csv and ingest.json (the summary returned)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    res = index_step(dataset, data_uri, out / "index.csv")
    df, labels, _ = folds_step(res.index, protocol, n_folds, seed, out / "folds.csv")
    from facet_lib.data.indexers import save_index

    save_index(df, out / "index.csv")  # the protocol's rows: what the folds and the shards cover
    n_shards = save_shards(df, shard_size, out / "shards.csv")
    groups = [list(range(g, n_shards, render_tasks)) for g in range(min(render_tasks, n_shards))]
    info = {
        "dataset": dataset,
        "protocol": protocol,
        "data_uri": data_uri,
        "samples": len(df),
        "subjects": int(df["subject"].nunique()),
        "labels": labels,
        "is_4d": is_4d(dataset),
        "quarantined": len(res.quarantine),
        "shard_size": shard_size,
        "shard_groups": groups,
        "fold_ids": list(range(n_folds)),
        "index_sha256": hashlib.sha256((out / "index.csv").read_bytes()).hexdigest(),
    }
    (out / "ingest.json").write_text(json.dumps(info, indent=1))
    return info


def _of_kind(index: pd.DataFrame, kind: str) -> pd.DataFrame:
    if kind not in KINDS:
        raise DatasetLayoutError(f"render kind: expected one of {KINDS}, got {kind!r}")
    is_seq = index["frames"].map(bool)
    return index[~is_seq] if kind == "scans" else index[is_seq] if kind == "sequences" else index


def render_views(
    index: pd.DataFrame,
    data_uri: str | Path | None,
    cfg: RenderConfig,
    out: str | Path,
    shard_size: int = DATA.shard_size,
    shards: list[int] | None = None,
    kind: str = "all",
    workers: int = 0,
    members: pd.DataFrame | None = None,
) -> dict:
    """Render (some ``shards`` of) ``index`` into ``out``: the ``kind`` of samples ("scans", "sequences" or
    "all"; a task of one kind yields an empty dataset for the other, so one DAG serves both). ``data_uri``:
    the dataset root (None: where the index was made), or an s3:// prefix, from which only these shards'
    files and their side files are downloaded (``members``: the ingest step's shard → sample id record;
    without it the shards are planned here). Returns the manifest."""
    from facet_lib.device import cpu_threads
    from facet_lib.render.dataset import render_dataset, shard_rows

    index = _of_kind(index, kind)
    with tempfile.TemporaryDirectory() as work:
        root = Path(data_uri) if data_uri and not storage.is_s3(str(data_uri)) else None
        if data_uri and storage.is_s3(str(data_uri)):  # this task's scans and their side files (texture, landmarks)
            root = Path(work) / "raw"
            if members is None:
                parts = shard_rows(index, shard_size)
                members = pd.DataFrame(
                    [(s, sid) for s, p in enumerate(parts) for sid in p["sample_id"]], columns=["shard", "sample_id"]
                )
            ids = set(members["sample_id"][members["shard"].isin(set(shards))]) if shards is not None else None
            rows = index if ids is None else index[index["sample_id"].isin(ids)]
            wanted = {str(Path(f).with_suffix("")) for _, r in rows.iterrows() for f in (r["frames"] or [r["path"]])}
            keys = [k for k in storage.list_keys(str(data_uri)) if str(Path(k).with_suffix("")) in wanted]
            storage.download_prefix(str(data_uri), root, only=keys)
        workers = workers or cpu_threads()  # a render task shares the CPUs with its loop siblings
        return render_dataset(index, out, cfg, shard_size=shard_size, shards=shards, workers=workers, root=root)


@timed
def render_step(
    index_dir: str | Path,
    data_uri: str,
    shards: list[int],
    render: dict,
    out: str | Path,
    kind: str = "all",
    workers: int = 0,
    sheet_html: str | Path | None = None,
    sheet_title: str = "",
) -> dict:
    """Render some shards of an ingested index (``ingest_step``'s folder); 4D sequences become per-view
    dynamic images. The shards' members come from the ingest step's record. ``sheet_html``: also a contact
    sheet page of a few views per label there (``render.contact_sheet.contact_sheet_html``)."""
    from facet_lib.data.indexers import load_index

    index_dir = Path(index_dir)
    info = json.loads((index_dir / "ingest.json").read_text())
    members = pd.read_csv(index_dir / "shards.csv", dtype={"sample_id": str})
    index = load_index(index_dir / "index.csv")
    cfg = from_params(RenderConfig, render)
    m = render_views(index, data_uri, cfg, out, info["shard_size"], shards, kind, workers, members)
    if sheet_html:
        from facet_lib.render.contact_sheet import contact_sheet_html

        contact_sheet_html(out, sheet_html, title=sheet_title)
    return {"samples": m["samples"], "failures": m["failures"], **m.get("last_run", {})}


@timed
def merge_step(parts: list[str], out: str | Path) -> dict:
    from facet_lib.render.contact_sheet import contact_sheet
    from facet_lib.render.dataset import merge_rendered

    m = merge_rendered(parts, out)
    if m["samples"]:
        contact_sheet(out, Path(out) / "contact_sheet.png")
    return {"samples": m["samples"], "failures": len(m["failures"]), "shards": len(m["shards"])}


@timed
def fingerprint_step(data_uri: str) -> dict:
    """The data fingerprint (``facet_lib.provenance.data_fingerprint``): never cached, it keys every cached
    step after it."""
    return data_fingerprint(data_uri)
