"""Wall time of the local end-to-end pipeline run (kfp.local + SeaweedFS), split by step.

Per task: the wall time the local runner logs (start → finish), and the time spent inside the
facet_lib step function it calls (recorded by the step itself). The difference is orchestration:
subprocess start, imports, artifact bookkeeping and S3 transfers outside facet_lib. Synthetic data,
random tiny backbone. Usage: python benchmarks/bench_pipeline.py [--subjects 6] [--folds 3]
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import os
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))
ANSI = re.compile(r"\x1b\[[0-9;]*m")
STEP_OF_TASK = {
    "ingest": "ingest_step",
    "render": "render_step",
    "rank-pool": "render_step",
    "merge-views": "merge_step",
    "extract-features": "features_step",
    "train-fold": "train_fold_step",
    "evaluate": "evaluate_step",
    "register": "register_step",
}


class Recorder(logging.Filter):
    """A filter on the root logger (kfp.local swaps the root handlers during a run, not its filters)."""

    def __init__(self):
        super().__init__()
        self.events: list[tuple[float, str, str]] = []

    def filter(self, record):
        self._see(record)
        return True

    def _see(self, record):
        msg = ANSI.sub("", record.getMessage())
        if m := re.match(r"Executing task '([^']+)'", msg):
            self.events.append((record.created, "start", m[1]))
        elif m := re.match(r"Task '([^']+)' finished", msg):
            self.events.append((record.created, "end", m[1]))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--subjects", type=int, default=6)
    p.add_argument("--folds", type=int, default=3)
    a = p.parse_args()
    import s3_server

    from facet_lib import storage
    from facet_lib.data.synthetic import SynthConfig, generate
    from facet_lib.train.presets import PRESETS
    from pipelines.local_run import run_local

    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        os.environ.update(s3_server.start(d / "s3")["env"])
        try:
            data = generate("bu3dfe", d / "data", SynthConfig(subjects=a.subjects, seed=0))
            storage.upload_dir(data, "s3://bench-data/bu3dfe")
            rec = Recorder()
            logging.getLogger().addFilter(rec)
            os.environ["FACET_STEP_TIMINGS"] = str(d / "timings.jsonl")
            mcfg, tcfg = PRESETS["tiny-cpu"]
            res = run_local(
                d / "kfp",
                data_uri="s3://bench-data/bu3dfe",
                dataset="bu3dfe",
                protocol="bu3dfe-II",
                n_folds=a.folds,
                model_config={
                    "clip_model": mcfg.clip_model,
                    "pretrained": "",
                    "checkpoint": "",
                    "unfreeze_top": mcfg.unfreeze_top,
                },
                train_config={**{k: v for k, v in tcfg.to_dict().items() if k != "betas"}, "device": "cpu"},
                registry_uri="s3://bench-models/registry",
                model_name="bench",
            )
            lib = collections.defaultdict(list)
            for line in (d / "timings.jsonl").read_text().splitlines():
                r = json.loads(line)
                lib[r["step"]].append(r["seconds"])
        finally:
            s3_server.stop(d / "s3")
    open_tasks: dict[str, list[float]] = collections.defaultdict(list)
    wall: dict[str, list[float]] = collections.defaultdict(list)
    for t, kind, name in rec.events:
        if kind == "start":
            open_tasks[name].append(t)
        elif open_tasks[name]:
            wall[name].append(t - open_tasks[name].pop(0))
    print(
        f"local pipeline, synthetic BU-3DFE Subset II, {a.subjects} subjects, {a.folds} folds, tiny random backbone: "
        f"{res['seconds']:.1f} s end to end"
    )
    by_step: dict[str, list] = collections.defaultdict(lambda: [[], 0.0])
    for task, ws in wall.items():
        step = STEP_OF_TASK.get(task)
        if step:
            by_step[step][0].append(task)
            by_step[step][1] += sum(ws)
    print(f"{'facet_lib step (tasks)':34s} {'runs':>4s} {'wall s':>8s} {'in facet_lib s':>15s} {'outside':>8s}")
    tot_w = tot_l = 0.0
    for step, (tasks, w) in by_step.items():
        lib_s = sum(lib[step])
        tot_w, tot_l = tot_w + w, tot_l + lib_s
        label = f"{step} ({', '.join(sorted(set(tasks)))})"
        print(f"{label:34s} {len(lib[step]):4d} {w:8.1f} {lib_s:15.1f} {100 * (1 - lib_s / w):7.0f}%")
    print(f"{'all tasks':34s} {'':4s} {tot_w:8.1f} {tot_l:15.1f} {100 * (1 - tot_l / tot_w):7.0f}%")
    print("outside facet_lib = subprocess start, imports, KFP local bookkeeping and artifact copies")


if __name__ == "__main__":
    main()
