from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Metrics, Output

from components.settings import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def tune_report(
    points: Input[list[Dataset]],
    tune_config: dict,
    lambda_grid: list,
    table: Output[Dataset],
    metrics: Output[Metrics],
    report: Output[HTML],
) -> NamedTuple("TuneOutputs", [("best_lam", float)]):
    """Fan-in of the λ search: grid table, selected λ per fold and for the mean (beside the paper's 0.1),
    plot and HTML report. ``lambda_grid``: the pipeline's grid, in its order (ties go to the λ first in it)."""
    import json
    import os
    import shutil
    from collections import namedtuple

    from facet_lib.steps import tune_report_step

    s = tune_report_step([p.path for p in points], table.path, tune_config, grid=lambda_grid)
    mean = s["table"].loc["mean"]
    for lam in s["grid"]:
        metrics.log_metric(f"val_mean_lam_{lam:g}", float(mean[lam]))
    metrics.log_metric("val_majority_baseline", float(mean["majority_baseline"]))
    for fold, lam in s["per_fold"].items():
        metrics.log_metric(f"fold{fold}_selected_lam", lam)
    metrics.log_metric("best_mean_lam", s["best_mean_lam"])
    metrics.log_metric("paper_lam", s["paper_lam"])
    metrics.metadata["backbone_weights"] = s["backbone_weights"]
    shutil.copy(table.path + "/tune_report.html", report.path)
    os.makedirs(os.path.dirname(metrics.path), exist_ok=True)  # kfp.local's cache wants a file
    with open(metrics.path, "w") as f:
        json.dump(metrics.metadata, f)
    return namedtuple("TuneOutputs", ["best_lam"])(s["best_mean_lam"])
