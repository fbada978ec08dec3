"""The cross-validation and shard defaults come from one place (facet_lib.config.DataConfig)."""

import inspect

from facet_lib.cli import build_parser
from facet_lib.config import DATA, DataConfig
from facet_lib.data.folds import make_folds
from facet_lib.render.dataset import plan_shards, render_dataset
from facet_lib.steps import ingest_step


def test_every_consumer_takes_the_dataclass_default():
    assert DATA == DataConfig()
    assert inspect.signature(make_folds).parameters["n_folds"].default == DATA.n_folds
    assert inspect.signature(make_folds).parameters["seed"].default == DATA.fold_seed
    assert inspect.signature(ingest_step).parameters["shard_size"].default == DATA.shard_size
    assert inspect.signature(ingest_step).parameters["render_tasks"].default == DATA.render_tasks
    assert inspect.signature(ingest_step).parameters["n_folds"].default is inspect.Parameter.empty
    assert inspect.signature(plan_shards).parameters["shard_size"].default == DATA.shard_size
    assert inspect.signature(render_dataset).parameters["shard_size"].default == DATA.shard_size
    args = build_parser().parse_args(["folds", "--index", "i.csv", "--out", "f.csv"])
    assert (args.n_folds, args.seed) == (DATA.n_folds, DATA.fold_seed)


def test_pipeline_defaults_follow_the_dataclass():
    from pipelines.facet_vlm import facet_vlm_pipeline

    params = inspect.signature(facet_vlm_pipeline.pipeline_func).parameters
    assert params["n_folds"].default == DATA.n_folds
    assert params["shard_size"].default == DATA.shard_size
