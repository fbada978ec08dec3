"""Child of test_storage_faults: render into a tiny tmpfs so that a shard write hits a real ENOSPC.

Runs in a user + mount namespace of its own (unprivileged: tmpfs may be mounted there), so the
tmpfs is invisible to, and vanishes with, this process. Prints one JSON line: what the failed run
raised, which files were visible after it, and the manifest of the rerun after the disk was grown.
Usage: python enospc_job.py INDEX_CSV DATA_ROOT OUT_DIR TMPFS_BYTES SHARD_SIZE
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
from pathlib import Path

CLONE_NEWUSER, CLONE_NEWNS, MS_REC, MS_PRIVATE, MS_REMOUNT = 0x10000000, 0x00020000, 0x4000, 0x40000, 0x20


def _mount(libc, target: str, opts: str, flags: int = 0) -> None:
    if libc.mount(b"tmpfs", target.encode(), b"tmpfs", flags, opts.encode()) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"mount tmpfs {target} ({opts}): {os.strerror(e)}")


def main(index_csv: str, root: str, out: str, size: int, shard_size: int) -> None:
    uid, gid = os.getuid(), os.getgid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWUSER|CLONE_NEWNS)")
    Path("/proc/self/setgroups").write_text("deny")
    Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
    Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")
    libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None)  # nothing propagates back to the host
    Path(out).mkdir(parents=True, exist_ok=True)
    _mount(libc, out, f"size={size}")

    from facet_lib.config import RenderConfig
    from facet_lib.data.indexers import load_index
    from facet_lib.render.dataset import RenderedDataset, render_dataset

    cfg = RenderConfig(size=64, yaws=(0, 30))
    index = load_index(index_csv)
    res: dict = {}
    try:
        render_dataset(index, out, cfg, shard_size=shard_size, workers=1, root=root, progress=False)
        res["first"] = "completed"
    except OSError as e:
        res["first"] = {"type": type(e).__name__, "errno": e.errno, "message": str(e), "filename": e.filename}
    res["visible"] = sorted(p.name for p in Path(out).iterdir())
    man = Path(out) / "manifest.json"
    res["manifest_shards"] = [s["file"] for s in json.loads(man.read_text())["shards"]] if man.exists() else None
    _mount(libc, out, "size=256m", MS_REMOUNT)  # the disk is grown (space freed): the KFP retry
    m = render_dataset(index, out, cfg, shard_size=shard_size, workers=1, root=root, progress=False)
    res["rerun"] = {k: m[k] for k in ("samples", "complete")} | {"last_run": m["last_run"]}
    res["readable"] = len(RenderedDataset(out))
    print(json.dumps(res))


if __name__ == "__main__":
    a = sys.argv[1:]
    main(a[0], a[1], a[2], int(a[3]), int(a[4]))
