from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from components.settings import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def evaluate(
    fold_models: Input[list[Model]],
    index: Input[Dataset],
    cv_table: Output[Dataset],
    metrics: Output[Metrics],
    confusion: Output[ClassificationMetrics],
    report: Output[HTML],
) -> NamedTuple("EvalOutputs", [("best_fold", int), ("accuracy", float)]):
    """Fan-in over folds: CV table, mean/std and per-fold accuracy, pooled confusion matrix, HTML report
    (with the paper's figure for the dataset and protocol of ``index``, where the paper has one)."""
    import json
    import os
    from collections import namedtuple

    from facet_lib.steps import evaluate_folds

    s = evaluate_folds([m.path for m in fold_models], index.path, cv_table.path, report.path)
    for name, value in s["scalars"].items():  # the summary, each fold, the paper's numbers beside ours
        metrics.log_metric(name, value)
    metrics.metadata.update(s["scalar_notes"])
    confusion.log_confusion_matrix(s["labels"], s["confusion"])
    for art in (metrics, confusion):  # also as files: kfp.local's cache counts an artifact without one as missing
        os.makedirs(os.path.dirname(art.path), exist_ok=True)
        with open(art.path, "w") as f:
            json.dump(art.metadata, f)
    out = namedtuple("EvalOutputs", ["best_fold", "accuracy"])
    return out(s["best_fold"], s["accuracy_mean"])
