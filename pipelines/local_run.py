"""Run the pipeline on this machine with kfp.local (SubprocessRunner): the same definition as on a cluster.

kfp 2.17's local runner cannot use an s3:// pipeline root (it would be taken as a relative path), so
intermediate artifacts live under a local ``pipeline_root``; the raw data is read from S3 and the
registered model is written to S3, so S3 is at both ends of the run.
"""

from __future__ import annotations

import builtins
import os
import time
from pathlib import Path

from kfp import local

from pipelines.facet_vlm import facet_vlm_pipeline


def run_local(pipeline_root: str | Path, **params) -> dict:
    """Execute the pipeline locally; returns {"seconds", "outputs", "pipeline_root"}."""
    root = Path(pipeline_root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root), raise_on_error=True)
    t0 = time.perf_counter()
    saved_print = builtins.print
    try:
        result = facet_vlm_pipeline(**params)
    finally:
        builtins.print = saved_print  # kfp.local swaps in an indenting print and can leave it behind
    return {"seconds": time.perf_counter() - t0, "outputs": result, "pipeline_root": root}
