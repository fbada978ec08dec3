"""Dataset-level settings: the cross-validation split and the render shard plan (one place for their defaults)."""

from __future__ import annotations

from dataclasses import dataclass

from facet_lib.config.codec import setting


@dataclass(frozen=True)
class DataConfig:
    n_folds: int = setting(10, "subject-independent cross-validation folds (the paper: 10)")
    fold_seed: int = setting(0, "seed of the subject-to-fold assignment")
    shard_size: int = setting(64, "samples per rendered shard (the unit of resume and of the render fan-out)")
    render_tasks: int = setting(4, "render tasks the shards are spread over (KFP ParallelFor branches)")


DATA = DataConfig()  # the defaults, for function signatures that take one of these settings on its own
