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

    from facet_lib.eval.targets import paper_metrics
    from facet_lib.steps import cross_step

    res = cross_step(
        source_views.path, target_views.path, label_map, model_config, train_config, results.path, protocol=protocol
    )
    for scope, m in res.items():
        metrics.log_metric(f"{scope}_accuracy", m["accuracy"])
        metrics.log_metric(f"{scope}_macro_f1", m["macro_f1"])
    # the paper's Table 4(b) number beside ours, and this run among its published methods
    s = json.loads(open(results.path + "/cross_summary.json").read())
    paper, paper_meta = paper_metrics(s["comparison"], s.get("standing"))
    for name, value in paper.items():
        metrics.log_metric(name, value)
    metrics.metadata.update(paper_meta)
    metrics.metadata["backbone_weights"] = s["backbone_weights"]

    # also as a JSON file at the artifact path: kfp.local's cache counts an artifact without one as missing
    for art in (metrics,):
        os.makedirs(os.path.dirname(art.path), exist_ok=True)
        with open(art.path, "w") as f:
            json.dump(art.metadata, f)
