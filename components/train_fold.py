from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components.settings import TRAIN_IMAGE


@dsl.component(base_image=TRAIN_IMAGE, install_kfp_package=False)
def train_fold(
    views: Input[Dataset],
    index: Input[Dataset],
    features: Input[Dataset],
    fold: int,
    model_config: dict,
    train_config: dict,
    fold_model: Output[Model],
    metrics: Output[Metrics],
):
    """Train on every fold but ``fold``, test on ``fold`` (subject-independent)."""
    import json
    import os

    from facet_lib.steps import train_fold_step

    info = train_fold_step(
        views.path, index.path + "/folds.csv", features.path, fold, model_config, train_config, fold_model.path
    )
    fold_model.metadata.update(
        {
            "fold": fold,
            "accuracy": info["metrics"]["accuracy"],
            "backbone_weights": info["backbone_weights"],
            "framework": "pytorch/open_clip",
        }
    )
    metrics.log_metric(f"fold{fold}_accuracy", info["metrics"]["accuracy"])
    metrics.log_metric(f"fold{fold}_macro_f1", info["metrics"]["macro_f1"])
    metrics.log_metric(f"fold{fold}_label_free_accuracy", info["label_free_accuracy"])

    # also as a JSON file at the artifact path: kfp.local's cache counts an artifact without one as missing
    for art in (metrics,):
        os.makedirs(os.path.dirname(art.path), exist_ok=True)
        with open(art.path, "w") as f:
            json.dump(art.metadata, f)
