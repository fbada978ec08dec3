"""Run the pipeline on this machine with kfp.local (SubprocessRunner): the same definition as on a cluster.

kfp 2.17's local runner cannot use an s3:// pipeline root (it would be taken as a relative path), so
intermediate artifacts live under a local ``pipeline_root``; the raw data is read from S3 and the
registered model is written to S3, so S3 is at both ends of the run. With ``cache=True`` kfp.local's
file cache (under ``pipeline_root/.kfp_cache``) applies the same per-task caching as a cluster: a rerun
on unchanged data reuses every keyed step and registers nothing new.
"""

from __future__ import annotations

import builtins
import contextlib
import logging
import os
import re
import sys
import time
import warnings
from pathlib import Path
from typing import TextIO

from kfp import local

from facet_lib.device import CONCURRENT_TASKS_ENV
from pipelines.facet_vlm import facet_vlm_pipeline

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_START = re.compile(r"Executing task '([^']+)'")
_END = re.compile(r"Task '([^']+)' finished with status (\w+)")
_HIT = re.compile(r"Task '?([^' ]+)'? cache hit")

# where a run's time goes: stage → the pipeline tasks it covers (tasks not listed count as "other tasks")
STAGES: dict[str, tuple[str, ...]] = {
    "ingest": ("fingerprint", "configure", "ingest"),
    "render": ("render", "rank-pool", "rank-pool-2", "merge-views"),
    "features": ("fetch-weights", "extract-features"),
    "train": ("train-fold", "tune-lambda", "tune-report", "cross-dataset", "ablations"),
    "evaluate": ("evaluate", "fig4"),
    "register": ("register",),
    "deploy": ("deploy",),
}


class TaskLog(logging.Filter):
    """Follows kfp.local's log records (a filter on the root logger survives kfp.local swapping the root
    handlers for each task) and writes one line per finished task to ``out``. With ``log`` set, kfp.local's own
    records go to that file instead of the terminal."""

    def __init__(self, out: TextIO | None, log: TextIO | None = None):
        super().__init__()
        self.out = out
        self.log = log
        self.tasks: list[dict] = []
        self._open: dict[str, list[dict]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        msg = _ANSI.sub("", record.getMessage())
        if m := _START.match(msg):
            t = {"task": m[1], "started": record.created, "finished": None, "seconds": None, "status": "RUNNING"}
            self._open.setdefault(m[1], []).append(t)
            self.tasks.append(t)
        elif (m := _END.match(msg)) and self._open.get(m[1]):
            self._finish(self._open[m[1]].pop(0), record.created, m[2])
        elif m := _HIT.match(msg):  # logged instead of "Executing task" when the cache has the outputs
            t = {"task": m[1], "started": record.created}
            self.tasks.append(t)
            self._finish(t, record.created, "CACHED")
        if self.log:
            self.log.write(f"{record.levelname}: {msg}\n")
            return False
        return True

    def _finish(self, t: dict, when: float, status: str) -> None:
        t.update(finished=when, seconds=when - t["started"], status=status)
        if self.out:
            hms = lambda s: time.strftime("%H:%M:%S", time.localtime(s))  # noqa: E731
            self.out.write(
                f"  {t['task']:<22s} started {hms(t['started'])}  finished {hms(when)}  "
                f"{t['seconds']:7.1f} s  {status}\n"
            )
            self.out.flush()


def loop_concurrency() -> int:
    """How many iterations of a ``dsl.ParallelFor`` kfp.local runs at once: its executor's cap (2 in kfp 2.17,
    whatever the loop's ``parallelism``), read from kfp.local itself."""
    try:
        from kfp.local.orchestrator.enhanced_dag_orchestrator import ParallelExecutor

        return max(1, int(ParallelExecutor().max_workers))
    except (ImportError, AttributeError, TypeError, ValueError):  # a kfp without that executor: one at a time
        return 1


def _span(tasks: list[dict]) -> float:
    """Seconds covered by the union of the tasks' [started, finished] intervals (parallel tasks count once)."""
    tot, end = 0.0, float("-inf")
    for t in sorted(tasks, key=lambda t: t["started"]):
        lo, hi = max(t["started"], end), t["finished"]
        tot, end = tot + max(0.0, hi - lo), max(end, hi)
    return tot


def stage_times(tasks: list[dict], seconds: float | None = None) -> list[dict]:
    """Per stage of ``STAGES`` (in order): {"stage", "tasks", "wall", "task_seconds"} — wall = the union of its
    tasks' intervals, task_seconds = their sum (> wall when tasks ran side by side). With ``seconds`` (the
    run's wall time) a last row "between tasks" holds what no task covers: kfp.local's own bookkeeping."""
    done = [t for t in tasks if t.get("finished") is not None]
    of = {task: stage for stage, names in STAGES.items() for task in names}
    rows = []
    for stage in [*STAGES, "other tasks"]:
        mine = [t for t in done if of.get(t["task"], "other tasks") == stage]
        if mine or stage != "other tasks":
            rows.append(
                {
                    "stage": stage,
                    "tasks": len(mine),
                    "wall": _span(mine),
                    "task_seconds": sum(t["seconds"] for t in mine),
                }
            )
    if seconds is not None:
        rows.append({"stage": "between tasks", "tasks": 0, "wall": max(0.0, seconds - _span(done)), "task_seconds": 0})
    return rows


def format_stages(rows: list[dict], total: float | None = None) -> str:
    """The stage table as text: stage, tasks, wall seconds, task seconds, share of ``total``."""
    total = total if total is not None else sum(r["wall"] for r in rows)
    lines = [f"  {'stage':<24s} {'tasks':>5s} {'wall s':>8s} {'task s':>8s} {'share':>6s}"]
    for r in rows:
        share = f"{100 * r['wall'] / total:5.0f}%" if total else ""
        ts = f"{r['task_seconds']:8.1f}" if r["tasks"] else f"{'':8s}"
        lines.append(f"  {r['stage']:<24s} {r['tasks'] or '':>5} {r['wall']:8.1f} {ts} {share:>6s}")
    lines.append(f"  {'total':<24s} {'':5s} {total:8.1f}")
    return "\n".join(lines)


def run_local(
    pipeline_root: str | Path,
    cache: bool = False,
    log_file: str | Path | None = None,
    echo: TextIO | None = None,
    runner: local.SubprocessRunner | local.DockerRunner | None = None,
    **params,
) -> dict:
    """Execute the pipeline locally; returns {"seconds", "outputs", "pipeline_root", "tasks", "log_file"}.

    ``log_file``: kfp.local's full output (each task's streamed logs and executor output) goes there
    instead of the terminal; ``echo`` (e.g. sys.stdout) gets one line per task as it finishes.
    ``runner``: default SubprocessRunner(use_venv=False); a kfp.local.DockerRunner runs each task in its image."""
    root = Path(pipeline_root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # the tasks of one loop that kfp.local runs side by side: each takes its share of the CPUs (torch threads,
    # render workers) instead of a thread per core each (facet_lib.device.cpu_threads)
    saved_env = os.environ.get(CONCURRENT_TASKS_ENV)
    os.environ.setdefault(CONCURRENT_TASKS_ENV, str(loop_concurrency()))
    local.init(
        runner=runner or local.SubprocessRunner(use_venv=False),
        pipeline_root=str(root),
        raise_on_error=True,
        enable_caching=cache,
    )
    tasks = TaskLog(echo)
    rootlog = logging.getLogger()
    level = rootlog.level
    rootlog.addFilter(tasks)
    rootlog.setLevel(min(level, logging.INFO) if level else logging.INFO)  # cache hits are logged at INFO
    t0 = time.perf_counter()
    saved_print = builtins.print
    with contextlib.ExitStack() as stack:
        if log_file:
            Path(log_file).parent.mkdir(parents=True, exist_ok=True)
            log = stack.enter_context(open(log_file, "a", buffering=1))
            tasks.log = log
            stack.enter_context(contextlib.redirect_stdout(log))
            # kfp.local's per-task UserWarnings (local no-ops, non-Python base image) belong in the log too
            stack.enter_context(warnings.catch_warnings())
            warnings.showwarning = lambda msg, cat, fn, ln, file=None, line=None: log.write(
                warnings.formatwarning(msg, cat, fn, ln, line)
            )
        try:
            result = facet_vlm_pipeline(**params)
        finally:
            builtins.print = saved_print  # kfp.local swaps in an indenting print and can leave it behind
            if saved_env is None:
                os.environ.pop(CONCURRENT_TASKS_ENV, None)
            rootlog.removeFilter(tasks)
            rootlog.setLevel(level)
            sys.stdout.flush()
    return {
        "seconds": time.perf_counter() - t0,
        "outputs": result,
        "pipeline_root": root,
        "tasks": tasks.tasks,
        "log_file": Path(log_file) if log_file else None,
    }
