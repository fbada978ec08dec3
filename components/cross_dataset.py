from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

from components.settings import TRAIN_IMAGE


@dsl.component(base_image=TRAIN_IMAGE, install_kfp_package=False)
def cross_dataset(
    source_views: Input[Dataset],
    target_views: Input[Dataset],
    label_map: dict,
    model_config: dict,
    train_config: dict,
    protocol: str,
    results: Output[Dataset],
    metrics: Output[Metrics],
):
    """Train on the whole source dataset, test on the target (labels mapped into the source's); ``protocol``
    (the pipeline's ``cross_protocol``) names the paper's number the report puts beside it."""
    import json
    import os

    from facet_lib.steps import cross_dataset_step

    res = cross_dataset_step(
        source_views.path, target_views.path, label_map, model_config, train_config, results.path, protocol=protocol
    )
    for name, value in res["scalars"].items():  # ours per scope, the paper's Table 4(b) beside them
        metrics.log_metric(name, value)
    metrics.metadata.update(res["scalar_notes"])
    # also as a JSON file at the artifact path: kfp.local's cache counts an artifact without one as missing
    os.makedirs(os.path.dirname(metrics.path), exist_ok=True)
    with open(metrics.path, "w") as f:
        json.dump(metrics.metadata, f)
