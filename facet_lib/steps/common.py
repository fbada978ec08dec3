"""What every step module shares: the timing hook, the KFP-forms → dataclasses conversion, the Runner
factory, and the local view of a data URI. Imports neither torch nor the data/render stack."""

from __future__ import annotations

import functools
import json
import os
import time
from pathlib import Path

from facet_lib import storage
from facet_lib.config import ModelConfig, TrainConfig, from_params, resolve_micro


def timed(fn):
    """Append {"step", "seconds"} to the JSONL file named by FACET_STEP_TIMINGS, when set (benchmarks)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            path = os.environ.get("FACET_STEP_TIMINGS")
            if path:
                with open(path, "a") as f:
                    f.write(json.dumps({"step": fn.__name__, "seconds": time.perf_counter() - t0}) + "\n")

    return wrapper


def local_root(data_uri: str, work: Path) -> Path:
    """A local folder holding the data at ``data_uri``: the folder itself, or an s3:// prefix downloaded
    under ``work``."""
    if storage.is_s3(data_uri):
        return storage.download_prefix(data_uri, work / "raw")
    p = Path(data_uri)
    if not p.is_dir():
        raise storage.StorageError(f"data_uri {data_uri}: not an s3:// prefix or a local folder")
    return p


def configs(model: dict, train: dict, data=None) -> tuple[ModelConfig, TrainConfig]:
    """The KFP/JSON forms of the settings → dataclasses (4DME data switches the prompts to micro)."""
    mcfg, tcfg = from_params(ModelConfig, model), from_params(TrainConfig, train)
    if data is not None and len(data.rows):
        mcfg = resolve_micro(mcfg, dataset=str(data.rows["dataset"].iloc[0]))
    return mcfg, tcfg


def make_runner(
    mcfg: ModelConfig, tcfg: TrainConfig, cache: str | Path, shared: str | Path | None = None, in_loop=False
):
    """A Runner over ``cache``; ``shared``: a features folder whose cached states (backbone and baseline
    features) are linked in (read-only). torch's CPU threads: all usable CPUs, or with ``in_loop`` (a task
    of a pipeline loop, run beside its siblings) their share (``facet_lib.device.cpu_threads``)."""
    from facet_lib.device import set_cpu_threads
    from facet_lib.train.shared import Runner

    set_cpu_threads(None if in_loop else 1)
    for pattern in ("hidden-*.safetensors", "baseline-*.npy"):
        for f in Path(shared).glob(pattern) if shared else []:
            (Path(cache) / f.name).symlink_to(f.resolve())
    if tcfg.init_from:  # fine-tuning: the start bundle, verified (``facet_lib.warm_start``)
        from facet_lib.warm_start import load_start

        return Runner(mcfg, tcfg, cache, start=load_start(tcfg.init_from, cache))
    return Runner(mcfg, tcfg, cache)
