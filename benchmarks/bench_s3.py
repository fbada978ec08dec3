"""S3 transfers of the demo's data set: one object at a time vs. the bounded thread pool, same run.

The demo uploads its synthetic BU-3DFE tree (10 subjects: ~751 files, scans with their textures and
landmarks) to the embedded SeaweedFS, and ``ingest`` from ``s3://`` downloads it again
(``storage.download_prefix``). Both directions are timed with ``workers=1`` (the sequential baseline,
what storage did before) and ``workers=N`` (the pool), alternating, on a fresh server started by
pipelines/s3_server.py (isolated: every request goes through its unix-socket proxy; ``--guarded``
measures the server without the private network). Each download is checked byte for byte.

Usage: python benchmarks/bench_s3.py [--subjects 10] [--workers 16] [--rounds 3] [--guarded]
"""

from __future__ import annotations

import argparse
import filecmp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _same_tree(a: Path, b: Path) -> bool:
    fa = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
    fb = sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file())
    return fa == fb and all(filecmp.cmp(a / r, b / r, shallow=False) for r in fa)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, default=10, help="synthetic subjects (the demo uses 10)")
    ap.add_argument("--workers", type=int, default=None, help="pool size (default: storage.TRANSFER_WORKERS)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating sequential/parallel rounds")
    ap.add_argument("--guarded", action="store_true", help="server without the private network (no proxy)")
    a = ap.parse_args(argv)

    from facet_lib import storage
    from facet_lib.data.synthetic import SynthConfig, generate

    workers = a.workers or storage.TRANSFER_WORKERS
    from pipelines import s3_server as s3

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = generate("bu3dfe", tmp / "data", SynthConfig(subjects=a.subjects, seed=0))
        files = [p for p in root.rglob("*") if p.is_file()]
        mb = sum(p.stat().st_size for p in files) / 1e6
        info = s3.start(tmp / "s3", isolate=False if a.guarded else None)
        old = {k: os.environ.get(k) for k in info["env"]}
        os.environ.update(info["env"])
        times: dict[str, list[float]] = {k: [] for k in ("up 1", f"up {workers}", "down 1", f"down {workers}")}
        load0 = os.getloadavg()
        try:
            storage.ensure_bucket("bench-s3")
            for r in range(a.rounds):
                for w in (1, workers) if r % 2 == 0 else (workers, 1):  # alternate who goes first
                    uri = f"s3://bench-s3/r{r}-w{w}"
                    t = time.perf_counter()
                    storage.upload_dir(root, uri, workers=w)
                    times[f"up {w}"].append(time.perf_counter() - t)
                    dest = tmp / f"down-r{r}-w{w}"
                    t = time.perf_counter()
                    storage.download_prefix(uri, dest, workers=w)
                    times[f"down {w}"].append(time.perf_counter() - t)
                    assert _same_tree(root, dest), f"download of {uri} differs from the uploaded tree"
        finally:
            s3.stop(tmp / "s3")
            for k, v in old.items():
                os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
        load1 = os.getloadavg()

    mode = "guarded (no proxy)" if a.guarded else ("isolated (via proxy)" if info["isolated"] else "guarded")
    print(f"S3 transfers of the demo tree: {len(files)} files, {mb:.1f} MB, SeaweedFS {mode}, {a.rounds} rounds")
    print(f"load average before {load0[0]:.2f}, after {load1[0]:.2f} (1 min); {os.cpu_count()} CPUs")
    print(f"{'transfer':<22}{'median s':>10}{'best s':>9}{'ms/file':>9}{'speed-up':>10}")
    result = {
        "files": len(files),
        "mb": mb,
        "workers": workers,
        "load": [load0[0], load1[0]],
        "isolated": info["isolated"],
    }
    for op in ("up", "down"):
        seq = statistics.median(times[f"{op} 1"])
        for w in (1, workers):
            med = statistics.median(times[f"{op} {w}"])
            name = f"{'upload_dir' if op == 'up' else 'download_prefix'} w={w}"
            ms = 1000 * med / len(files)
            print(f"{name:<22}{med:>10.2f}{min(times[f'{op} {w}']):>9.2f}{ms:>9.1f}{seq / med:>9.1f}×")
            result[f"{op}_{w}"] = med
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
