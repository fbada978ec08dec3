"""Wall time of the local end-to-end pipeline run (kfp.local + SeaweedFS), split by step.

Per task: the wall time the local runner logs (start → finish, from ``run_local``'s task records), and
the time spent inside the facet_lib step function it calls (recorded by the step itself). The
difference is orchestration: subprocess start, imports, artifact bookkeeping and S3 transfers outside
facet_lib. Synthetic data, the ``tiny-cpu`` preset (random tiny backbone); the settings are the run
form's (a preset and overrides), not a hand-written config. A second run with kfp.local's cache on
shows what a scheduled run on unchanged data costs. Usage:
python benchmarks/bench_pipeline.py [--subjects 6] [--folds 3]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import tempfile
from pathlib import Path

STEP_OF_TASK = {
    "fingerprint": "fingerprint_step",
    "configure": "config_step",
    "ingest": "ingest_step",
    "render": "render_step",
    "rank-pool": "render_step",
    "merge-views": "merge_step",
    "extract-features": "features_step",
    "train-fold": "train_fold_step",
    "evaluate": "evaluate_step",
    "register": "register_step",
}


def _table(tasks: list[dict], lib: dict[str, list[float]]) -> None:
    by_step: dict[str, list] = collections.defaultdict(lambda: [set(), 0.0])
    for t in tasks:
        step = STEP_OF_TASK.get(t["task"])
        if step and t["status"] == "SUCCESS":
            by_step[step][0].add(t["task"])
            by_step[step][1] += t["seconds"]
    print(f"{'facet_lib step (tasks)':34s} {'runs':>4s} {'wall s':>8s} {'in facet_lib s':>15s} {'outside':>8s}")
    tot_w = tot_l = 0.0
    for step, (names, w) in by_step.items():
        lib_s = sum(lib[step])
        tot_w, tot_l = tot_w + w, tot_l + lib_s
        label = f"{step} ({', '.join(sorted(names))})"
        print(f"{label:34s} {len(lib[step]):4d} {w:8.1f} {lib_s:15.1f} {100 * (1 - lib_s / w):7.0f}%")
    print(f"{'all tasks':34s} {'':4s} {tot_w:8.1f} {tot_l:15.1f} {100 * (1 - tot_l / tot_w):7.0f}%")


def _timings(path: Path) -> dict[str, list[float]]:
    lib = collections.defaultdict(list)
    if path.exists():
        for line in path.read_text().splitlines():
            r = json.loads(line)
            lib[r["step"]].append(r["seconds"])
        path.unlink()
    return lib


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--subjects", type=int, default=6, help="synthetic subjects")
    p.add_argument("--folds", type=int, default=3, help="cross-validation folds")
    a = p.parse_args()

    from facet_lib import storage
    from facet_lib.data.synthetic import SynthConfig, generate
    from pipelines.demo import s3_server
    from pipelines.local_run import run_local

    s3 = s3_server()
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        os.environ.update(s3.start(d / "s3")["env"])
        try:
            data = generate("bu3dfe", d / "data", SynthConfig(subjects=a.subjects, seed=0))
            storage.upload_dir(data, "s3://bench-data/bu3dfe")
            timings = d / "timings.jsonl"
            os.environ["FACET_STEP_TIMINGS"] = str(timings)
            args = dict(
                data_uri="s3://bench-data/bu3dfe",
                dataset="bu3dfe",
                protocol="bu3dfe-II",
                n_folds=a.folds,
                preset="tiny-cpu",
                train_overrides={"device": "cpu"},
                registry_uri="s3://bench-models/registry",
                model_name="bench",
            )
            first = run_local(d / "kfp", cache=True, log_file=d / "kfp.log", **args)
            lib1 = _timings(timings)
            again = run_local(d / "kfp", cache=True, log_file=d / "kfp.log", **args)
            lib2 = _timings(timings)
        finally:
            s3.stop(d / "s3")
    print(
        f"local pipeline, synthetic BU-3DFE Subset II, {a.subjects} subjects, {a.folds} folds, tiny random backbone: "
        f"{first['seconds']:.1f} s end to end (machine shared: figures vary with its load)"
    )
    _table(first["tasks"], lib1)
    print("outside facet_lib = subprocess start, imports, KFP local bookkeeping and artifact copies")
    cached = sum(t["status"] == "CACHED" for t in again["tasks"])
    print(
        f"\nsame data again (a scheduled run on unchanged data, kfp.local cache on): {again['seconds']:.1f} s, "
        f"{cached}/{len(again['tasks'])} tasks from the cache; ran: "
        + ", ".join(sorted({t["task"] for t in again["tasks"] if t["status"] != "CACHED"}))
    )
    _table(again["tasks"], lib2)


if __name__ == "__main__":
    main()
