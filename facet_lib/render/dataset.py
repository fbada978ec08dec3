"""Rendered-view datasets: sharded ``.npz`` files plus a ``manifest.json``.

Layout of an output folder::

    manifest.json                      settings, config digest, shards, counts, failures, timing
    shard-00000-<key>.npz              views (n, V, H, W, 3) uint8, sample_ids, rows (JSON), failures

A shard's key hashes the render settings and its samples' inputs (ids, paths, file sizes), so a
re-run with the same settings and inputs skips finished shards, and a changed setting writes new
names instead of mixing with old renders. Shards and the manifest are written to a temporary name
and renamed, so an interrupted run never leaves a half-written file behind.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import multiprocessing as mp
import os
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from facet_lib.data.indexers import sample_paths
from facet_lib.errors import ConfigError, FacetError
from facet_lib.files import atomic_write, sha256_file
from facet_lib.io import read_scan
from facet_lib.rankpool import sample_uniform, summarize
from facet_lib.render import render_views
from facet_lib.render.config import RenderConfig
from facet_lib.render.geometry import face_center

FORMAT = "facet-views/1"
ROW_FIELDS = ("sample_id", "dataset", "subject", "label", "intensity", "task", "n_frames")


def render_sample(row: pd.Series | dict, cfg: RenderConfig, root: str | Path | None = None) -> np.ndarray:
    """(views, H, W, 3) uint8 for one index row: a scan's views, or a sequence's per-view summaries."""
    row = pd.Series(row) if isinstance(row, dict) else row
    paths = sample_paths(row, root)
    if not row["frames"]:
        return render_views(read_scan(paths[0]), cfg)
    return render_sequence([paths[i] for i in sample_uniform(len(paths), cfg.frames)], cfg)


def render_sequence(paths: list[Path], cfg: RenderConfig) -> np.ndarray:
    """(views, H, W, 3): each view's frames summarised (rank pooling by default).

    All frames share the first frame's face centre, so head position is fixed by the sequence start
    and the summary shows the face's motion, not a re-centring jitter."""
    meshes = (read_scan(p) for p in paths)
    first = next(meshes)
    center = face_center(first, cfg)
    frames = np.stack([render_views(m, cfg, center) for m in itertools.chain([first], meshes)])  # (T, V, H, W, 3)
    return np.stack([summarize(frames[:, v], cfg.temporal) for v in range(frames.shape[1])])


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


def plan_shards(
    index: pd.DataFrame, cfg: RenderConfig, shard_size: int = 64, root: str | Path | None = None
) -> list[ShardPlan]:
    """Split an index (sorted by sample id) into shards with content keys."""
    if shard_size < 1:
        raise ConfigError(f"shard_size must be >= 1, got {shard_size}")
    df = index.sort_values("sample_id", kind="stable").reset_index(drop=True)
    plans = []
    for s, start in enumerate(range(0, len(df), shard_size)):
        rows = df.iloc[start : start + shard_size]
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


def _render_task(args: tuple) -> tuple[str, np.ndarray | None, str | None]:
    row, cfg_dict, root = args
    try:
        return row["sample_id"], render_sample(row, RenderConfig.from_dict(cfg_dict), root), None
    except FacetError as e:
        return row["sample_id"], None, str(e)
    except Exception as e:  # a renderer/library failure on one scan must not stop the run
        return row["sample_id"], None, f"{type(e).__name__}: {e}"


def _load_manifest(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def render_dataset(
    index: pd.DataFrame,
    out: str | Path,
    cfg: RenderConfig = RenderConfig(),
    shard_size: int = 64,
    shards: list[int] | None = None,
    workers: int = 0,
    root: str | Path | None = None,
    progress: bool = True,
) -> dict:
    """Render ``index`` into ``out`` (all shards, or only ``shards``); resume and skip finished work.

    Returns the manifest. Raises ConfigError if ``out`` holds renders made with other settings.
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
    plans = plan_shards(index, cfg, shard_size, root)
    if shards is not None:
        plans = [p for p in plans if p.shard in set(shards)]
    done = {s["file"]: s for s in (old or {}).get("shards", [])}
    manifest = {
        "format": FORMAT,
        "render_config": cfg.to_dict(),
        "config_digest": cfg.digest(),
        "shards": [s for s in done.values() if (out / s["file"]).exists()],
    }
    todo = [
        p
        for p in plans
        if not (
            p.filename in done
            and (out / p.filename).exists()
            and sha256_file(out / p.filename) == done[p.filename]["sha256"]
        )
    ]
    n_views, t0 = 0, time.perf_counter()
    bar = tqdm(total=sum(len(p.rows) for p in todo), desc="render", unit="sample", disable=not progress)
    workers = workers or os.cpu_count() or 1
    # an OpenGL context does not survive fork: pyrender workers start fresh (spawn)
    ctx = mp.get_context("spawn" if cfg.backend == "pyrender" else None)
    pool = ProcessPoolExecutor(workers, mp_context=ctx) if workers > 1 else None
    try:
        for plan in todo:
            tasks = [(r.to_dict(), cfg.to_dict(), root) for _, r in plan.rows.iterrows()]
            results = pool.map(_render_task, tasks) if pool else map(_render_task, tasks)
            ids, views, failures = [], [], []
            for sid, v, err in results:
                bar.update(1)
                if err is None:
                    ids.append(sid)
                    views.append(v)
                    n_views += v.shape[0]
                else:
                    failures.append({"sample_id": sid, "reason": err})
                bar.set_postfix(views_per_s=f"{n_views / (time.perf_counter() - t0):.0f}", failed=len(failures))
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
            atomic_write(out / plan.filename, buf.getvalue())
            entry = {
                "file": plan.filename,
                "shard": plan.shard,
                "key": plan.key,
                "count": len(ids),
                "sha256": hashlib.sha256(buf.getvalue()).hexdigest(),
                "failures": failures,
            }
            manifest["shards"] = [s for s in manifest["shards"] if s["shard"] != plan.shard] + [entry]
            _finish_manifest(manifest, mpath)
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
    }
    _finish_manifest(manifest, mpath)
    return manifest


def _finish_manifest(manifest: dict, path: Path) -> None:
    manifest["shards"] = sorted(manifest["shards"], key=lambda s: s["shard"])
    manifest["samples"] = sum(s["count"] for s in manifest["shards"])
    manifest["failures"] = [f for s in manifest["shards"] for f in s["failures"]]
    atomic_write(path, json.dumps(manifest, indent=1).encode())


def merge_rendered(parts: list[str | Path], out: str | Path) -> dict:
    """Fan-in: move the shards of several partial outputs (same settings) into one dataset."""
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
        for s in m["shards"]:
            if (out / s["file"]) != (part / s["file"]):
                atomic_write(out / s["file"], (part / s["file"]).read_bytes())
            merged["shards"] = [x for x in merged["shards"] if x["shard"] != s["shard"]] + [s]
    if merged is None:
        raise ConfigError("merge_rendered: no parts given")
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

    def shards(self) -> Iterator[tuple[np.ndarray, list[str], list[dict]]]:
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
                yield z["views"], [str(x) for x in z["sample_ids"]], json.loads(str(z["rows"]))

    def __iter__(self) -> Iterator[tuple[str, np.ndarray, dict]]:
        for views, ids, rows in self.shards():
            yield from zip(ids, views, rows)

    def load(self) -> tuple[np.ndarray, pd.DataFrame]:
        """All views (N, V, H, W, 3) and their rows (DataFrame aligned with the first axis)."""
        parts, rows = [], []
        for views, _, r in self.shards():
            parts.append(views)
            rows += r
        c = self.config
        views = np.concatenate(parts) if parts else np.zeros((0, len(c.yaws), c.size, c.size, 3), np.uint8)
        return views, pd.DataFrame(rows)
