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
    import shutil
    from collections import namedtuple

    from facet_lib.eval.targets import paper_metrics
    from facet_lib.steps import evaluate_step

    ingest = json.loads(open(index.path + "/ingest.json").read())
    context = {k: ingest[k] for k in ("dataset", "protocol", "samples", "subjects")}
    s = evaluate_step([m.path for m in fold_models], cv_table.path, context)
    metrics.log_metric("accuracy_mean", s["accuracy_mean"])
    metrics.log_metric("accuracy_std", s["accuracy_std"])
    metrics.log_metric("macro_f1_mean", s["macro_f1_mean"])
    metrics.log_metric("label_free_accuracy_mean", s["label_free_accuracy_mean"])
    for fold, acc in s["per_fold_accuracy"].items():
        metrics.log_metric(f"fold{fold}_accuracy", acc)
    metrics.metadata["backbone_weights"] = s["backbone_weights"]
    # the paper's numbers beside ours (every metric it prints), the trivial baseline, and this run's rank
    # among the published methods of the paper's tables: finite numbers only
    paper, paper_meta = paper_metrics(s.get("comparison", []), s.get("standing"))
    for name, value in paper.items():
        metrics.log_metric(name, value)
    metrics.metadata.update(paper_meta)
    confusion.log_confusion_matrix(s["labels"], s["confusion"])
    shutil.copy(cv_table.path + "/report.html", report.path)
    for art in (metrics, confusion):  # also as files: kfp.local's cache counts an artifact without one as missing
        os.makedirs(os.path.dirname(art.path), exist_ok=True)
        with open(art.path, "w") as f:
            json.dump(art.metadata, f)
    out = namedtuple("EvalOutputs", ["best_fold", "accuracy"])
    return out(s["best_fold"], s["accuracy_mean"])
