from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from components.settings import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def register(
    views: Input[Dataset],
    index: Input[Dataset],
    fold_models: Input[list[Model]],
    best_fold: int,
    cv_table: Input[Dataset],
    registry_uri: str,
    model_name: str,
    run_id: str,
    data_fingerprint: str,
    model: Output[Model],
) -> NamedTuple("RegisterOutputs", [("model_uri", str), ("version", str)]):
    """Bundle the best fold and register it in the S3 model registry (version + `production` alias).

    Never cached. The same data (fingerprint), folds, settings and code as a registered version registers
    nothing new and leaves the alias where it is."""
    from collections import namedtuple

    from facet_lib.steps import register_best

    folds = [m.path for m in fold_models]
    info = register_best(
        views.path, index.path, folds, best_fold, cv_table.path, registry_uri, model_name, run_id, data_fingerprint,
        model.path,
    )  # fmt: skip
    model.metadata.update({"registry_uri": info["uri"], "version": info["version"], "digest": info["digest"]})
    model.metadata["reused"] = bool(info.get("reused"))
    out = namedtuple("RegisterOutputs", ["model_uri", "version"])
    return out(info["uri"], info["version"])
