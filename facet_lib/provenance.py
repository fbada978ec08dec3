"""Where a registered model came from, and when a registration is new: the code's commit, the data's
content fingerprint, the run's provenance record and its dedup key. No torch, no KFP."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

from facet_lib import storage

# what makes a registration new (besides the settings and the package version): see ``dedup_key``
DEDUP_FIELDS = ("dataset", "protocol", "data_uri", "data_fingerprint", "index_sha256", "folds_sha256", "git_commit")


def git_commit() -> str:
    """The code's commit: GIT_COMMIT when set (the images set it from the build argument; there is no .git
    inside), else the source tree's ``git rev-parse HEAD``."""
    if os.environ.get("GIT_COMMIT"):
        return os.environ["GIT_COMMIT"]
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, cwd=Path(__file__).parent
        ).stdout.strip()
    except Exception:
        return os.environ.get("GIT_COMMIT") or "unknown"


def dedup_key(provenance: dict, params: dict) -> str | None:
    """What makes a registration new: the data's content fingerprint, the samples and folds, the settings
    and the code. A second run with the same key (a scheduled run on unchanged data) registers nothing.
    None without a data fingerprint (then every run registers, as before)."""
    if not provenance.get("data_fingerprint"):
        return None
    from facet_lib import __version__

    ident = {"provenance": {k: provenance.get(k) for k in DEDUP_FIELDS}, "params": params, "version": __version__}
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()


def data_fingerprint(data_uri: str) -> dict:
    """A content fingerprint of the data at ``data_uri``: SHA-256 over the sorted object listing (key, size,
    ETag) of an s3:// prefix, or (relative path, size, mtime in ns) of a local folder. It changes when any
    file is added, removed or rewritten, and not when nothing did (the scheduled-retraining key)."""
    if storage.is_s3(data_uri):
        rows = [(o["key"], o["size"], o["etag"]) for o in storage.list_objects(data_uri)]
    else:
        root = Path(data_uri)
        if not root.is_dir():
            raise storage.StorageError(f"data_uri {data_uri}: not an s3:// prefix or a local folder")
        rows = [
            (p.relative_to(root).as_posix(), (st := p.stat()).st_size, str(st.st_mtime_ns))
            for p in root.rglob("*")
            if p.is_file()
        ]
    if not rows:
        raise storage.StorageError(f"data_uri {data_uri}: no files found")
    rows.sort()
    digest = hashlib.sha256(json.dumps(rows, separators=(",", ":")).encode()).hexdigest()
    return {"fingerprint": digest, "files": len(rows), "bytes": int(sum(r[1] for r in rows))}


def run_provenance(index_dir: str | Path, fingerprint: str, best_fold: int) -> dict:
    """The provenance record of a pipeline run's registration, from its ingest folder (``ingest.json``,
    ``folds.csv``): dataset, protocol, data URI and fingerprint, the index's and the folds' SHA-256, the
    chosen fold, and a ``data_note`` ("synthetic" for the generator's data)."""
    index_dir = Path(index_dir)
    ingest = json.loads((index_dir / "ingest.json").read_text())
    return {
        "dataset": ingest["dataset"],
        "protocol": ingest["protocol"],
        "data_uri": ingest["data_uri"],
        "index_sha256": ingest["index_sha256"],
        "data_fingerprint": fingerprint,
        "folds_sha256": hashlib.sha256((index_dir / "folds.csv").read_bytes()).hexdigest(),
        "best_fold": best_fold,
        "data_note": "synthetic" if "synthetic" in ingest["data_uri"] else "",
    }
