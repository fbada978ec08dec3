from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Output

from components.settings import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def ingest(
    data_uri: str,
    data_fingerprint: str,
    dataset: str,
    protocol: str,
    n_folds: int,
    seed: int,
    shard_size: int,
    render_tasks: int,
    index: Output[Dataset],
) -> NamedTuple("IngestOutputs", [("shard_groups", list), ("fold_ids", list), ("is_4d", bool), ("samples", int)]):
    """Index a dataset (native layout, local folder or s3:// prefix), select the protocol, make folds.

    Cached, keyed by ``data_fingerprint`` (the content of the data, from the never-cached ``fingerprint``
    step), so a run on unchanged data reuses it and every cached step after it."""
    from collections import namedtuple

    from facet_lib.steps import ingest_step

    info = ingest_step(data_uri, dataset, protocol, n_folds, seed, index.path, shard_size, render_tasks)
    keep = ("dataset", "protocol", "samples", "subjects", "labels", "quarantined", "index_sha256")
    index.metadata.update({**{k: info[k] for k in keep}, "data_fingerprint": data_fingerprint})
    out = namedtuple("IngestOutputs", ["shard_groups", "fold_ids", "is_4d", "samples"])
    return out(info["shard_groups"], info["fold_ids"], info["is_4d"], info["samples"])
