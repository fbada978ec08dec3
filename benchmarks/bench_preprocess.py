"""Dataset-scale preprocessing: index, read and render a BU-4DFE-style tree with the pipeline's shard fan-out.

What runs is what the pipeline runs: ``steps.ingest_step`` (index, protocol, folds, shard groups), then
one ``steps.render_step(kind="sequences")`` per shard group, each in its own process (a pipeline pod),
then ``steps.merge_step``. Inside the workers the library's functions are wrapped with timers to
split the time into read / centre / render (project + rasterise, 3 views) / pool (rank pooling) /
write; each worker reports its peak RSS.

The tree: BU-4DFE has 101 subjects x 6 sequences x ~100 frames (~35k-vertex VRML each). We build a
stated fraction (``--subjects``, default 4 of 101) with ``--frames`` frame files per sequence. Writing
VRML is slow, so ``--distinct`` frames per sequence are generated for the first subject and the other
frame files are hard links of them (parse and render cost per frame are the same; the page cache
holds fewer distinct bytes than a real tree would). Projections to the full database assume one
core per worker and this run's CPU seconds per sequence.

Baseline in the same run: the previous VRML reader (``tests/io/wrl_reference.py``) against the
current one on the same frames, and the full-database parse time each implies.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

BU4DFE = {"subjects": 101, "sequences": 606, "frames": 60_600}  # 101 x 6 x ~100 frames
REPO = Path(__file__).resolve().parents[1]


def build_tree(root: Path, subjects: int, frames: int, distinct: int, step: float) -> Path:
    """BU-4DFE layout <root>/<S>/<Expression>/<NNN>.wrl; returns root (reused when already built)."""
    from facet_lib.data.synthetic import SynthConfig, _subjects4d, generate

    stamp = root / ".bench-tree.json"
    params = {"subjects": subjects, "frames": frames, "distinct": distinct, "step": step}
    if stamp.exists() and json.loads(stamp.read_text()) == params:
        return root
    gen = root.parent / f"{root.name}-generated"
    generate("bu4dfe", gen, SynthConfig(subjects=1, frames=distinct, step_4d=step))
    first = _subjects4d(1)[0]
    for subj in _subjects4d(subjects):
        for expr in sorted(p.name for p in (gen / first).iterdir()):
            d = root / subj / expr
            d.mkdir(parents=True, exist_ok=True)
            for t in range(frames):
                dst = d / f"{t:03d}.wrl"
                if not dst.exists():
                    os.link(gen / first / expr / f"{t * distinct // frames:03d}.wrl", dst)
    stamp.write_text(json.dumps(params))
    return root


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(ln.split()[1]) for ln in f if ln.startswith("VmRSS")) / 1024


def _worker(args: tuple) -> dict:
    """One pipeline render task (one shard group) with timers around the library's phases."""
    index_dir, data_uri, group, render, out = args
    import facet_lib.render.dataset as ds
    import facet_lib.render.sequence as seq
    from facet_lib import steps

    cpu, calls = defaultdict(float), defaultdict(int)

    def wrap(mod, name: str, key: str) -> None:
        fn = getattr(mod, name)

        def timed(*a, **k):
            c0 = time.process_time()
            try:
                return fn(*a, **k)
            finally:
                cpu[key] += time.process_time() - c0
                calls[key] += 1

        setattr(mod, name, timed)

    targets = [
        (seq, "read_scan", "read"),
        (seq, "face_center", "centre"),
        (seq, "render_views", "render"),
        (seq, "summarize", "pool"),
        (ds, "_write_shard", "write"),
    ]
    originals = [(mod, name, getattr(mod, name)) for mod, name, _ in targets]
    for mod, name, key in targets:
        wrap(mod, name, key)
    rss0 = _rss_mb()
    w0, c0 = time.perf_counter(), time.process_time()
    try:
        info = steps.render_step(index_dir, data_uri, group, render, out, kind="sequences", workers=1)
    finally:
        for mod, name, fn in originals:  # in-process runs (--workers 1) leave the library as it was
            setattr(mod, name, fn)
    total = time.process_time() - c0
    return {
        "group": group,
        "wall": time.perf_counter() - w0,
        "cpu": total,
        "phases": dict(cpu),
        "calls": dict(calls),
        "samples": info["samples"],
        "failures": len(info["failures"]),
        "rss_start_mb": rss0,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def reader_baseline(files: list[Path], repeats: int) -> tuple[float, float]:
    """(ms per frame previous reader, ms per frame current reader), CPU time, same frames."""
    from facet_lib.io.wrl import read_wrl

    spec = importlib.util.spec_from_file_location("wrl_reference", REPO / "tests" / "io" / "wrl_reference.py")
    ref = sys.modules["wrl_reference"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    out = []
    for fn in (ref.read_wrl, read_wrl):
        fn(files[0])  # warm-up
        c0 = time.process_time()
        for _ in range(repeats):
            for f in files:
                fn(f)
        out.append((time.process_time() - c0) / (repeats * len(files)) * 1000)
    return out[0], out[1]


def main(argv: list[str] | None = None) -> None:
    """Build (or reuse) the tree, run ingest → render groups → merge, print the figures and projections."""
    from facet_lib import steps
    from facet_lib.config import RenderConfig

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, default=4, help="subjects in the tree (BU-4DFE has 101; >= 2 for folds)")
    ap.add_argument("--frames", type=int, default=100, help="frame files per sequence")
    ap.add_argument("--distinct", type=int, default=8, help="generated frames per sequence (others: hard links)")
    ap.add_argument("--step", type=float, default=0.82, help="grid step in mm (0.82 → ~36k vertices per frame)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="parallel render tasks (pods)")
    ap.add_argument("--shard-size", type=int, default=4, help="sequences per shard")
    ap.add_argument("--data", type=Path, default=None, help="keep the generated tree here (reused if present)")
    args = ap.parse_args(argv)
    cfg = RenderConfig()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = (args.data or tmp / "bu4dfe").resolve()
        t0 = time.perf_counter()
        build_tree(data, args.subjects, args.frames, args.distinct, args.step)
        t_gen = time.perf_counter() - t0
        import facet_lib.data.folds  # noqa: F401  (imports outside the timed index)
        import facet_lib.data.indexers  # noqa: F401

        t0 = time.perf_counter()
        info = steps.ingest_step(str(data), "bu4dfe", "bu4dfe", 2, 0, tmp / "ingest", args.shard_size, args.workers)
        t_index = time.perf_counter() - t0
        n_seq = info["samples"]
        print(
            f"tree: {args.subjects} subjects x 6 sequences x {args.frames} frames = {n_seq * args.frames} frame files "
            f"({args.subjects / BU4DFE['subjects']:.1%} of BU-4DFE; built in {t_gen:.0f} s)"
        )
        print(f"index (ingest_step): {t_index:.2f} s for {n_seq} sequences, {info['quarantined']} quarantined")
        groups = info["shard_groups"]
        tasks = [
            (str(tmp / "ingest"), str(data), g, cfg.to_dict(), str(tmp / f"part-{i}")) for i, g in enumerate(groups)
        ]
        t0 = time.perf_counter()
        if args.workers == 1:  # in this process (peak RSS then includes the tree generation)
            res = [_worker(t) for t in tasks]
        else:
            with ProcessPoolExecutor(args.workers, mp_context=mp.get_context("spawn")) as ex:
                res = list(ex.map(_worker, tasks))
        t_render = time.perf_counter() - t0
        t0 = time.perf_counter()
        merged = steps.merge_step([t[-1] for t in tasks], tmp / "views")
        t_merge = time.perf_counter() - t0
        report(args, cfg, n_seq, res, t_index, t_render, t_merge, merged)
        files = sorted(data.rglob("*.wrl"))[: args.distinct]
        old_ms, new_ms = reader_baseline(files, 2)
        hours = BU4DFE["frames"] / 3.6e6
        print(
            f"baseline, same frames: previous reader {old_ms:.0f} ms/frame, current {new_ms:.0f} ms/frame "
            f"({old_ms / new_ms:.1f}x); parsing all {BU4DFE['frames']} BU-4DFE frames once on one core: "
            f"{old_ms * hours:.2f} h before, {new_ms * hours:.2f} h now"
        )


def report(args, cfg, n_seq: int, res: list[dict], t_index: float, t_render: float, t_merge: float, merged) -> None:
    cpu = sum(r["cpu"] for r in res)
    phases = defaultdict(float)
    for r in res:
        for k, v in r["phases"].items():
            phases[k] += v
    reads = sum(r["calls"].get("read", 0) for r in res)
    frames_done = sum(r["calls"].get("render", 0) for r in res)
    print(
        f"render ({len(res)} shard groups on {args.workers} workers, {cfg.frames} of {args.frames} frames sampled per "
        f"sequence): {t_render:.1f} s wall, {frames_done / t_render:.1f} frames/s "
        f"({frames_done / cpu:.1f} per worker CPU second), {n_seq / t_render:.2f} sequences/s; "
        f"merge {t_merge:.1f} s; {merged['samples']} samples, {merged['failures']} failures"
    )
    print(f"frames read: {reads} for {n_seq} sequences = {reads / max(n_seq, 1):.1f} per sequence (each sampled once)")
    other = cpu - sum(phases.values())
    shares = " ".join(f"{k} {v / cpu:.0%}" for k, v in [*phases.items(), ("other", other)])
    print(f"where CPU time goes ({cpu:.1f} s in workers): {shares}")
    per_frame = {k: phases[k] / max(frames_done, 1) * 1000 for k in ("read", "render")}
    print(f"per frame: read {per_frame['read']:.0f} ms, render 3 views {per_frame['render']:.0f} ms (CPU)")
    for r in res:
        print(
            f"  worker shards {r['group']}: {r['samples']} sequences, {r['wall']:.1f} s wall, {r['cpu']:.1f} s CPU, "
            f"RSS {r['rss_start_mb']:.0f} MB after imports, peak {r['peak_rss_mb']:.0f} MB"
        )
    per_seq = cpu / max(n_seq, 1)
    proj = ", ".join(f"{n} workers {BU4DFE['sequences'] * per_seq / n / 60:.1f} min" for n in (1, 2, 8, 32))
    print(f"projected BU-4DFE render pass ({BU4DFE['sequences']} sequences, {per_seq:.2f} CPU s each): {proj}")
    print("(this machine is shared; CPU seconds are less disturbed by other load than wall seconds)")


if __name__ == "__main__":
    main()
