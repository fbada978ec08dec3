"""Rendered-view datasets: sharded ``.npz`` files plus a ``manifest.json``.

Layout of an output folder::

    manifest.json                      settings, config digest, index digest, shards, counts,
                                       failures, repaired sequences, timing
    shard-00000-<key>.npz              views (n, V, H, W, 3) uint8, sample_ids, rows (JSON), failures

A shard's key hashes the render settings and its samples' inputs (ids, paths, file sizes), so a
re-run with the same settings and inputs skips finished shards, and a changed setting writes new
names instead of mixing with old renders. The manifest describes exactly the current index: shards
of an earlier index in the same folder are dropped from it and their files removed, and an index
with duplicate sample ids is refused. Shards and the manifest are written to a temporary name and
renamed, so an interrupted run never leaves a half-written file behind.
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing as mp
import os
import re
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from facet_lib.config import DATA, RenderConfig
from facet_lib.data.indexers import sample_paths
from facet_lib.errors import ConfigError, DatasetLayoutError, FacetError
from facet_lib.files import atomic_write, sha256_file
from facet_lib.io import read_scan
from facet_lib.progress import progress_bar
from facet_lib.render import render_views
from facet_lib.render.sequence import MAX_BAD_FRAME_FRACTION, read_sampled_frames, render_sequence

FORMAT = "facet-views/1"
_SHARD_NAME = re.compile(r"shard-\d{5}-[0-9a-f]{12}\.npz")
ROW_FIELDS = ("sample_id", "dataset", "subject", "label", "intensity", "task", "n_frames")


__all__ = ["RenderedDataset", "merge_rendered", "plan_shards", "render_dataset", "render_sequence", "shard_rows"]


def render_row(
    row: pd.Series | dict, cfg: RenderConfig, root: str | Path | None = None, max_bad: float = MAX_BAD_FRAME_FRACTION
) -> tuple[np.ndarray, list[dict]]:
    """(views, notes) for one index row; notes list a sequence's replaced or dropped bad frames."""
    row = pd.Series(row) if isinstance(row, dict) else row
    paths = sample_paths(row, root)
    if not row["frames"]:
        return render_views(read_scan(paths[0]), cfg), []
    meshes, notes = read_sampled_frames(paths, cfg.frames, max_bad)
    return render_sequence(meshes, cfg), notes


def _file_sig(p: Path) -> str:
    try:
        return f"{p.name}:{p.stat().st_size}"
    except OSError:
        return f"{p.name}:missing"


@dataclass
class ShardPlan:
    shard: int
    key: str
    rows: pd.DataFrame

    @property
    def filename(self) -> str:
        return f"shard-{self.shard:05d}-{self.key[:12]}.npz"


def shard_rows(index: pd.DataFrame, shard_size: int = DATA.shard_size) -> list[pd.DataFrame]:
    """Which samples each shard holds: the index sorted by sample id, in runs of ``shard_size``. The one
    definition of shard membership (the ingest step records it; rendering keys and writes it)."""
    if shard_size < 1:
        raise ConfigError(f"shard_size must be >= 1, got {shard_size}")
    dup = index["sample_id"][index["sample_id"].duplicated()]
    if len(dup):
        raise DatasetLayoutError(
            f"index has {len(dup)} duplicate sample ids (e.g. {', '.join(map(str, dup.unique()[:5]))}): "
            "each sample must appear once"
        )
    df = index.sort_values("sample_id", kind="stable").reset_index(drop=True)
    return [df.iloc[start : start + shard_size] for start in range(0, len(df), shard_size)]


def plan_shards(
    index: pd.DataFrame, cfg: RenderConfig, shard_size: int = DATA.shard_size, root: str | Path | None = None
) -> list[ShardPlan]:
    """Split an index into shards (``shard_rows``) with content keys."""
    plans = []
    for s, rows in enumerate(shard_rows(index, shard_size)):
        h = hashlib.sha256(cfg.digest().encode())
        for _, r in rows.iterrows():
            h.update(r["sample_id"].encode())
            h.update("|".join(_file_sig(p) for p in sample_paths(r, root)).encode())
        plans.append(ShardPlan(s, h.hexdigest(), rows))
    return plans


def _row_json(r: pd.Series) -> dict:
    d = {k: (None if pd.isna(r.get(k)) else r.get(k)) for k in ROW_FIELDS if k in r}
    if "fold" in r and not pd.isna(r["fold"]):
        d["fold"] = int(r["fold"])
    return {k: (int(v) if isinstance(v, np.integer) else v) for k, v in d.items()}


def _render_task(args: tuple) -> tuple[str, np.ndarray | None, str | None, list[dict]]:
    row, cfg_dict, root, max_bad = args
    try:
        views, notes = render_row(row, RenderConfig.from_dict(cfg_dict), root, max_bad)
        return row["sample_id"], views, None, notes
    except FacetError as e:
        return row["sample_id"], None, str(e), []
    except Exception as e:  # a renderer/library failure on one scan must not stop the run; name the file
        where = row.get("path") or (row.get("frames") or ["?"])[0]
        return row["sample_id"], None, f"{where}: {type(e).__name__}: {e}", []


def index_digest(plans: list[ShardPlan], shard_size: int) -> str:
    """Identifies the index a dataset folder renders: its shards' sample ids, in order. Not the content keys:
    a pipeline task that fetched only its own shards' files sees the others' as missing (each shard's key
    still guards its content)."""
    h = hashlib.sha256(f"shard_size={shard_size}".encode())
    for p in plans:
        h.update(("|".join(map(str, p.rows["sample_id"])) + "\n").encode())
    return h.hexdigest()


def _remove_stale(out: Path, keep: set[str]) -> list[str]:
    """Delete this format's shard files in ``out`` that the current index does not produce."""
    stale = sorted(f.name for f in out.glob("shard-*.npz") if _SHARD_NAME.fullmatch(f.name) and f.name not in keep)
    for name in stale:
        (out / name).unlink(missing_ok=True)
    return stale


def _load_manifest(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def render_dataset(
    index: pd.DataFrame,
    out: str | Path,
    cfg: RenderConfig = RenderConfig(),
    shard_size: int = DATA.shard_size,
    shards: list[int] | None = None,
    workers: int = 0,
    root: str | Path | None = None,
    progress: bool = True,
    max_bad_frames: float = MAX_BAD_FRAME_FRACTION,
) -> dict:
    """Render ``index`` into ``out`` (all shards, or only ``shards``); resume and skip finished work.

    Returns the manifest, which describes exactly this index: shards left in ``out`` by another
    index are dropped and their files removed (listed in ``last_run.stale_removed``). A sequence
    with up to ``max_bad_frames`` of its sampled frames unreadable is rendered from the others
    (``repaired`` in the manifest). Raises ConfigError if ``out`` holds renders made with other
    settings and DatasetLayoutError if the index repeats a sample id. Logs one line per shard.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    mpath = out / "manifest.json"
    old = _load_manifest(mpath)
    if old and old.get("config_digest") != cfg.digest():
        raise ConfigError(
            f"{out} holds renders made with other settings (config {old.get('config_digest')}, now {cfg.digest()}): "
            "use a new output folder"
        )
    all_plans = plan_shards(index, cfg, shard_size, root)
    current = {p.filename: p for p in all_plans}
    plans = all_plans if shards is None else [p for p in all_plans if p.shard in set(shards)]
    done = {
        s["file"]: s
        for s in (old or {}).get("shards", [])
        if s["file"] in current and s.get("key") == current[s["file"]].key and (out / s["file"]).exists()
    }
    stale = _remove_stale(out, set(current))
    manifest = {
        "format": FORMAT,
        "render_config": cfg.to_dict(),
        "config_digest": cfg.digest(),
        "index": {"digest": index_digest(all_plans, shard_size), "samples": len(index), "shards": len(all_plans)},
        "shards": list(done.values()),
    }
    todo = [
        p for p in plans if not (p.filename in done and sha256_file(out / p.filename) == done[p.filename]["sha256"])
    ]
    n_views, n_done, t0 = 0, 0, time.perf_counter()
    bar = progress_bar(total=len(todo), desc="render", unit="shard", every_item=True, disable=not progress)
    workers = workers or os.cpu_count() or 1
    # an OpenGL context does not survive fork: pyrender workers start fresh (spawn)
    ctx = mp.get_context("spawn" if cfg.backend == "pyrender" else None)
    pool = ProcessPoolExecutor(workers, mp_context=ctx) if workers > 1 else None
    try:
        for plan in todo:
            tasks = [(r.to_dict(), cfg.to_dict(), root, max_bad_frames) for _, r in plan.rows.iterrows()]
            results = pool.map(_render_task, tasks) if pool else map(_render_task, tasks)
            ids, views, failures, repaired = [], [], [], []
            for sid, v, err, notes in results:
                if err is None:
                    ids.append(sid)
                    views.append(v)
                    n_views += v.shape[0]
                    if notes:
                        repaired.append({"sample_id": sid, "bad_frames": notes})
                else:
                    failures.append({"sample_id": sid, "reason": err})
            n_done += len(plan.rows)
            entry = _write_shard(out, plan, cfg, ids, views, failures, repaired)
            manifest["shards"] = [s for s in manifest["shards"] if s["shard"] != plan.shard] + [entry]
            _finish_manifest(manifest, mpath)
            rate = n_done / (time.perf_counter() - t0)
            bar.set_postfix(
                shard=plan.shard,
                samples=len(plan.rows),
                failed=len(failures),
                repaired=len(repaired),
                samples_per_s=f"{rate:.2f}",
            )
            bar.update(1)
    finally:
        bar.close()
        if pool:
            pool.shutdown()
    elapsed = time.perf_counter() - t0
    manifest["last_run"] = {
        "samples_rendered": sum(len(p.rows) for p in todo),
        "views": n_views,
        "seconds": round(elapsed, 3),
        "views_per_s": round(n_views / elapsed, 2) if elapsed else 0,
        "shards_skipped": len(plans) - len(todo),
        "stale_removed": stale,
    }
    _finish_manifest(manifest, mpath)
    return manifest


def _write_shard(out: Path, plan: ShardPlan, cfg: RenderConfig, ids, views, failures, repaired) -> dict:
    rows = [_row_json(r) for _, r in plan.rows.iterrows() if r["sample_id"] in set(ids)]
    buf = io.BytesIO()
    np.savez(
        buf,
        views=np.stack(views) if views else np.zeros((0, len(cfg.yaws), cfg.size, cfg.size, 3), np.uint8),
        sample_ids=np.array(ids, dtype=str),
        rows=np.array(json.dumps(rows)),
        failures=np.array(json.dumps(failures)),
        config_digest=np.array(cfg.digest()),
    )
    try:  # a full disk leaves no partial shard (atomic_write) and says which shard needed how much
        atomic_write(out / plan.filename, buf.getvalue())
    except OSError as e:
        size = f"{buf.getbuffer().nbytes / 1e6:.1f} MB"
        msg = f"{e.strerror} (writing render shard {plan.shard}, {size})"
        raise OSError(e.errno, msg, str(out / plan.filename)) from None
    return {
        "file": plan.filename,
        "shard": plan.shard,
        "key": plan.key,
        "count": len(ids),
        "sha256": hashlib.sha256(buf.getvalue()).hexdigest(),
        "failures": failures,
        "repaired": repaired,
    }


def _finish_manifest(manifest: dict, path: Path) -> None:
    manifest["shards"] = sorted(manifest["shards"], key=lambda s: s["shard"])
    manifest["samples"] = sum(s["count"] for s in manifest["shards"])
    manifest["failures"] = [f for s in manifest["shards"] for f in s["failures"]]
    manifest["repaired"] = [f for s in manifest["shards"] for f in s.get("repaired", [])]
    if "index" in manifest:
        manifest["complete"] = len(manifest["shards"]) == manifest["index"]["shards"]
    atomic_write(path, json.dumps(manifest, indent=1).encode())


def merge_rendered(parts: list[str | Path], out: str | Path) -> dict:
    """Fan-in: copy the shards of several partial outputs (same settings, same index) into one dataset.

    Parts without shards (e.g. the empty 'sequences' half of a scans-only dataset) add nothing; parts
    rendered from different indexes, or two different shards with one number, are refused; shard
    files in ``out`` that the merged manifest does not list are removed."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    merged: dict | None = None
    for part in map(Path, parts):
        m = _load_manifest(part / "manifest.json")
        if m is None:
            raise ConfigError(f"{part}: no manifest.json (not a rendered dataset)")
        if merged is None:
            merged = {k: m[k] for k in ("format", "render_config", "config_digest")} | {"shards": []}
        elif m["config_digest"] != merged["config_digest"]:
            raise ConfigError(
                f"{part}: rendered with other settings ({m['config_digest']} != {merged['config_digest']})"
            )
        if m["shards"] and "index" in m:
            if "index" in merged and merged["index"]["digest"] != m["index"]["digest"]:
                raise ConfigError(f"{part}: rendered from another index than the parts before it (stale part?)")
            merged["index"] = m["index"]
        for s in m["shards"]:
            clash = [x for x in merged["shards"] if x["shard"] == s["shard"] and x.get("key") != s.get("key")]
            if clash:
                raise ConfigError(
                    f"{part}: shard {s['shard']} differs from the one already merged ({clash[0]['file']})"
                )
            if (out / s["file"]) != (part / s["file"]):
                atomic_write(out / s["file"], (part / s["file"]).read_bytes())
            merged["shards"] = [x for x in merged["shards"] if x["shard"] != s["shard"]] + [s]
    if merged is None:
        raise ConfigError("merge_rendered: no parts given")
    _remove_stale(out, {s["file"] for s in merged["shards"]})
    _finish_manifest(merged, out / "manifest.json")
    return merged


class RenderedDataset:
    """Reads a rendered dataset folder; refuses shards made with other settings or altered bytes."""

    def __init__(self, path: str | Path, verify: bool = True):
        self.path = Path(path)
        m = _load_manifest(self.path / "manifest.json")
        if m is None or m.get("format") != FORMAT:
            raise ConfigError(f"{self.path}: not a rendered dataset (no {FORMAT} manifest.json)")
        self.manifest, self.verify = m, verify
        self.config = RenderConfig.from_dict(m["render_config"])

    def __len__(self) -> int:
        return int(self.manifest["samples"])

    def shards(self, views: bool = True) -> Iterator[tuple[np.ndarray | None, list[str], list[dict]]]:
        """(views, sample ids, rows) per shard; ``views=False`` reads ids and rows only (views is None)."""
        for s in self.manifest["shards"]:
            p = self.path / s["file"]
            if self.verify and sha256_file(p) != s["sha256"]:
                raise ConfigError(f"{p}: checksum differs from manifest.json (corrupt or replaced shard)")
            with np.load(p, allow_pickle=False) as z:
                if str(z["config_digest"]) != self.manifest["config_digest"]:
                    raise ConfigError(
                        f"{p}: rendered with settings {z['config_digest']}, manifest says "
                        f"{self.manifest['config_digest']}"
                    )
                yield z["views"] if views else None, [str(x) for x in z["sample_ids"]], json.loads(str(z["rows"]))

    @property
    def complete(self) -> bool:
        """Whether every shard of the index it was rendered from is present (older manifests: True)."""
        return bool(self.manifest.get("complete", True))

    def __iter__(self) -> Iterator[tuple[str, np.ndarray, dict]]:
        for views, ids, rows in self.shards():
            yield from zip(ids, views, rows)

    def load(self, views: bool = True) -> tuple[np.ndarray | None, pd.DataFrame]:
        """All views (N, V, H, W, 3) and their rows (DataFrame aligned with the first axis); ``views=False``:
        the rows only (None for the views), without decompressing a pixel."""
        parts, rows, seen = [], [], set()
        for v, ids, r in self.shards(views):
            again = seen.intersection(ids)
            if again:
                raise ConfigError(f"{self.path}: sample ids in more than one shard (e.g. {sorted(again)[0]})")
            seen.update(ids)
            parts.append(v)
            rows += r
        if not views:
            return None, pd.DataFrame(rows)
        c = self.config
        views = np.concatenate(parts) if parts else np.zeros((0, len(c.yaws), c.size, c.size, 3), np.uint8)
        return views, pd.DataFrame(rows)
