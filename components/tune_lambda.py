from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from components.settings import TRAIN_IMAGE


@dsl.component(base_image=TRAIN_IMAGE, install_kfp_package=False)
def tune_lambda(
    views: Input[Dataset],
    index: Input[Dataset],
    features: Input[Dataset],
    lam: float,
    model_config: dict,
    train_config: dict,
    tune_config: dict,
    points: Output[Dataset],
):
    """One λ of the paper's grid search (§3.4): every fold trains on its training part minus a subject-
    independent validation split and is scored there (the test folds are not used)."""
    from facet_lib.steps import tune_step

    res = tune_step(
        views.path, index.path + "/folds.csv", model_config, train_config, tune_config, points.path,
        grid=[lam], features_dir=features.path, report=False,
    )  # fmt: skip
    points.metadata.update({"lam": lam, "folds": len(res["points"])})
