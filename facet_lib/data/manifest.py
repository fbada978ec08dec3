"""Manifest indexer: any layout described by a CSV, one row per sample.

Columns: ``path`` (a scan file, a folder of frames or a frame glob; relative to the manifest's folder),
``subject``, ``label``, optional ``sample_id``, ``intensity``, ``task``. A bad row — a missing or
unreadable file, a path that is not a scan, a non-integer intensity, an empty field, a sample id used by
another row — goes to the quarantine table with the row number and the reason; the other rows are indexed.
Only a file that is not a CSV manifest at all (unreadable, no required columns) is refused as a whole.
"""

from __future__ import annotations

import glob
from pathlib import Path

import pandas as pd

from facet_lib.data.collect import Collector, IndexResult
from facet_lib.errors import DatasetLayoutError
from facet_lib.io import SCAN_SUFFIXES

REQUIRED = ("path", "subject", "label")
OPTIONAL = ("sample_id", "intensity", "task")
MAX_FRAMES = 100_000  # a glob or folder matching more than this is a mistake, not a sequence


def _cell(row: pd.Series, col: str) -> str | None:
    v = row.get(col)
    return v.strip() or None if isinstance(v, str) else None


def _frame_order(f: Path) -> tuple[int, str]:
    return len(f.stem), f.stem


def _sequence(c: Collector, p: Path, pattern: bool, where: str) -> list[Path] | None:
    """The scan frames behind a folder or glob row, in frame order; bad frames are quarantined one by one."""
    found = [Path(x) for x in glob.iglob(str(p))] if pattern else list(p.iterdir())
    scans = [f for f in found if f.suffix.lower() in SCAN_SUFFIXES and f.is_file()]
    if not scans:
        what = "matches no" if pattern else "holds no"
        c.quarantine(p, f"{where}: {what} scan files ({', '.join(SCAN_SUFFIXES)})")
        return None
    if len(scans) > MAX_FRAMES:
        c.quarantine(p, f"{where}: {len(scans)} scan files, more than {MAX_FRAMES} frames")
        return None
    kinds = sorted({f.suffix.lower() for f in scans})
    if len(kinds) > 1:
        c.quarantine(p, f"{where}: frames of mixed formats {kinds}")
        return None
    frames = [f for f in sorted(scans, key=_frame_order) if c.scan_ok(f, f"{where}: frame {f.name}: ")]
    if not frames:
        c.quarantine(p, f"{where}: no readable frames")
        return None
    return frames


def _row(c: Collector, row: pd.Series, base: Path, where: str) -> tuple[Path, list[Path] | None] | None:
    """The scan (or the sequence folder and its frames) of one manifest row; None when quarantined."""
    raw = _cell(row, "path") or ""
    p = base / raw
    try:
        pattern = any(ch in raw for ch in "*?[")
        if pattern:
            frames = _sequence(c, p, True, where)
            return (frames[0].parent, frames) if frames else None
        if p.is_dir():
            frames = _sequence(c, p, False, where)
            return (p, frames) if frames else None
        if not p.exists():
            c.quarantine(p, f"{where}: file not found")
            return None
        if not p.is_file():
            c.quarantine(p, f"{where}: not a regular file")
            return None
    except (OSError, ValueError) as e:  # unreadable folder, NUL in the path, …
        c.quarantine(raw[:200], f"{where}: unusable path ({type(e).__name__}: {e})")
        return None
    return (p, None) if c.scan_ok(p, f"{where}: ") else None


def index_manifest(manifest: str | Path, dataset: str = "custom") -> IndexResult:
    """Index the samples a manifest CSV lists (see the module docstring)."""
    manifest = Path(manifest).resolve()
    try:
        m = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    except Exception as e:  # pandas raises many types for a file that is not a CSV
        raise DatasetLayoutError(f"{manifest}: not a readable CSV manifest ({type(e).__name__}: {e})") from None
    m.columns = [str(col).strip() for col in m.columns]
    missing = set(REQUIRED) - set(m.columns)
    if missing:
        raise DatasetLayoutError(
            f"{manifest}: missing required column(s) {sorted(missing)} (columns: {', '.join(REQUIRED + OPTIONAL)})"
        )
    c = Collector(dataset, manifest.parent)
    for i, row in m.iterrows():
        where = f"{manifest.name} row {i + 2}"
        named = _cell(row, "path") or manifest.name  # the quarantine row names the scan, else the manifest
        subject, label = _cell(row, "subject"), _cell(row, "label")
        if _cell(row, "path") is None:
            c.quarantine(named, f"{where}: empty path")
            continue
        if subject is None or label is None:
            c.quarantine(named, f"{where}: empty {'subject' if subject is None else 'label'}")
            continue
        inten = _cell(row, "intensity")
        try:
            intensity = None if inten is None else int(inten)
        except ValueError:
            c.quarantine(named, f"{where}: intensity '{inten[:40]}' is not an integer")
            continue
        if intensity is not None and intensity < 0:
            c.quarantine(named, f"{where}: intensity {intensity} is negative")
            continue
        found = _row(c, row, manifest.parent, where)
        if found is None:
            continue
        seq, frames = found
        sid = _cell(row, "sample_id") or f"{dataset}_{i:06d}"
        c.add(sid, subject, label, seq, frames, intensity=intensity, task=_cell(row, "task"), origin=where)
    return c.result()
