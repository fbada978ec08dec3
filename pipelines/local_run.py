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

from pipelines.facet_vlm import facet_vlm_pipeline

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_START = re.compile(r"Executing task '([^']+)'")
_END = re.compile(r"Task '([^']+)' finished with status (\w+)")
_HIT = re.compile(r"Task '?([^' ]+)'? cache hit")


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
