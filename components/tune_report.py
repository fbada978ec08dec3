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
    for name, value in s["scalars"].items():  # each λ's validation score, the selected λ, the paper's 0.1
        metrics.log_metric(name, value)
    metrics.metadata.update(s["scalar_notes"])
    shutil.copy(table.path + "/tune_report.html", report.path)
    os.makedirs(os.path.dirname(metrics.path), exist_ok=True)  # kfp.local's cache wants a file
    with open(metrics.path, "w") as f:
        json.dump(metrics.metadata, f)
    return namedtuple("TuneOutputs", ["best_lam"])(s["best_mean_lam"])
