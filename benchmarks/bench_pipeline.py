"""Wall time of the local end-to-end pipeline run (kfp.local + SeaweedFS), by stage, before and after.

Two arms on the same synthetic data, one after the other in this run:
- ``before``: the demo's former settings — the ``tiny-cpu`` preset as it is (25 epochs, 20 of them with the
  backbone frozen; views rendered at 224 px) — with every task using a thread per core (torch's default:
  FACET_CONCURRENT_TASKS=1), as when two fold tasks shared two cores with two threads each;
- ``after``: the demo's settings (``pipelines.demo.DEMO_RUN``) with each loop task taking its share of the
  CPUs (``facet_lib.device.cpu_threads``).
Code changes that have no switch (fold tasks read no views and reuse the baseline's features from the
features step; fewer imports per task) are in both arms: the ratio understates the change from the old code.

Per arm: the stage table (``pipelines.local_run.stage_times``), and per facet_lib step the time inside the
step function (recorded by the step itself) against the task's wall time — the difference is orchestration:
subprocess start, imports, artifact bookkeeping. Then the ``after`` arm again with kfp.local's cache on (what
a scheduled run on unchanged data costs). Synthetic data, random tiny backbone. The machine's load average is
printed with every figure: on a shared machine read the ratios. Usage:
python benchmarks/bench_pipeline.py [--subjects 6] [--folds 3] [--arms before after] [--no-cached]
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


def arms() -> dict[str, tuple[dict, str]]:
    """arm → (run parameters, FACET_CONCURRENT_TASKS or "" for run_local's default)."""
    from pipelines.demo import DEMO_RUN

    before = {"preset": "tiny-cpu", "train_overrides": {"device": "cpu"}}
    return {"before": (before, "1"), "after": (DEMO_RUN, "")}


def _load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def _steps(tasks: list[dict], lib: dict[str, list[float]]) -> None:
    by_step: dict[str, list] = collections.defaultdict(lambda: [set(), 0.0])
    for t in tasks:
        step = STEP_OF_TASK.get(t["task"])
        if step and t["status"] == "SUCCESS":
            by_step[step][0].add(t["task"])
            by_step[step][1] += t["seconds"]
    print(f"  {'facet_lib step (tasks)':34s} {'runs':>4s} {'task s':>8s} {'in facet_lib s':>15s} {'outside':>8s}")
    tot_w = tot_l = 0.0
    for step, (names, w) in by_step.items():
        lib_s = sum(lib[step])
        tot_w, tot_l = tot_w + w, tot_l + lib_s
        label = f"{step} ({', '.join(sorted(names))})"
        print(f"  {label:34s} {len(lib[step]):4d} {w:8.1f} {lib_s:15.1f} {100 * (1 - lib_s / w):7.0f}%")
    if tot_w:
        print(f"  {'all tasks':34s} {'':4s} {tot_w:8.1f} {tot_l:15.1f} {100 * (1 - tot_l / tot_w):7.0f}%")


def _timings(path: Path) -> dict[str, list[float]]:
    lib = collections.defaultdict(list)
    if path.exists():
        for line in path.read_text().splitlines():
            r = json.loads(line)
            lib[r["step"]].append(r["seconds"])
        path.unlink()
    return lib


def _run(d: Path, name: str, params: dict, concurrent: str, common: dict, cache: bool = False) -> dict:
    from facet_lib.device import CONCURRENT_TASKS_ENV
    from pipelines.local_run import run_local, stage_times

    saved = os.environ.pop(CONCURRENT_TASKS_ENV, None)
    if concurrent:
        os.environ[CONCURRENT_TASKS_ENV] = concurrent
    load0 = _load()
    try:
        res = run_local(d / f"kfp-{name}", cache=cache, log_file=d / f"kfp-{name}.log", **common, **params)
    finally:
        os.environ.pop(CONCURRENT_TASKS_ENV, None)
        if saved is not None:
            os.environ[CONCURRENT_TASKS_ENV] = saved
    res["stages"] = stage_times(res["tasks"], res["seconds"])
    res["lib"] = _timings(d / "timings.jsonl")
    res["load"] = f"{load0} at the start, {_load()} at the end"
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--subjects", type=int, default=6, help="synthetic subjects")
    p.add_argument("--folds", type=int, default=3, help="cross-validation folds")
    p.add_argument("--arms", nargs="+", default=["before", "after"], choices=["before", "after"])
    p.add_argument("--no-cached", action="store_true", help="skip the cached rerun of the last arm")
    a = p.parse_args()

    from facet_lib import storage
    from facet_lib.data.synthetic import SynthConfig, generate
    from pipelines import s3_server as s3
    from pipelines.demo import DEMO_NOTE
    from pipelines.local_run import format_stages

    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        os.environ.update(s3.start(d / "s3")["env"])
        try:
            data = generate("bu3dfe", d / "data", SynthConfig(subjects=a.subjects, seed=0))
            storage.upload_dir(data, "s3://bench-data/bu3dfe")
            os.environ["FACET_STEP_TIMINGS"] = str(d / "timings.jsonl")
            common = dict(
                data_uri="s3://bench-data/bu3dfe",
                dataset="bu3dfe",
                protocol="bu3dfe-II",
                n_folds=a.folds,
                registry_uri="s3://bench-models/registry",
                model_name="bench",
            )
            every, last = arms(), a.arms[-1]
            for name in a.arms:
                params, concurrent = every[name]
                cache = name == last and not a.no_cached  # the last arm fills kfp.local's cache for the rerun
                results[name] = _run(d, name, params, concurrent, common, cache=cache)
                print(f"{name}: {results[name]['seconds']:.1f} s ({results[name]['load']})", flush=True)
            if not a.no_cached:
                again = _run(d, last, *every[last], common, cache=True)
        finally:
            s3.stop(d / "s3")
    print(
        f"\nlocal pipeline, synthetic BU-3DFE Subset II, {a.subjects} subjects, {a.folds} folds, random tiny backbone, "
        f"{os.cpu_count()} cores (machine shared: seconds vary with its load, read the ratios)"
    )
    for name in a.arms:
        r = results[name]
        what = "tiny-cpu preset as is, a thread per core in every task" if name == "before" else DEMO_NOTE
        print(f"\n{name} ({what}): {r['seconds']:.1f} s end to end; {r['load']}")
        print(format_stages(r["stages"], r["seconds"]))
        _steps(r["tasks"], r["lib"])
    if {"before", "after"} <= set(results):
        b, f = ({s["stage"]: s["wall"] for s in results[k]["stages"]} for k in ("before", "after"))
        print(
            f"\nafter ÷ before: end to end {results['after']['seconds'] / results['before']['seconds']:.2f}, "
            + ", ".join(f"{k} {f[k] / b[k]:.2f}" for k in ("render", "features", "train") if b.get(k))
        )
    print("outside facet_lib = subprocess start, imports, KFP local bookkeeping and artifact copies")
    if not a.no_cached:
        cached = sum(t["status"] == "CACHED" for t in again["tasks"])
        print(
            f"\n{last} again on the same data with kfp.local's cache on (a scheduled run on unchanged data): "
            f"{again['seconds']:.1f} s, {cached}/{len(again['tasks'])} tasks from the cache; ran: "
            + ", ".join(sorted({t["task"] for t in again["tasks"] if t["status"] != "CACHED"}))
            + f"; {again['load']}"
        )


if __name__ == "__main__":
    main()
