"""Pipeline steps as plain functions over folders and parameters (no KFP here).

Each Kubeflow component calls exactly one of these, and the CLI calls the same ones; the same functions
run from Python or tests. Data may live in a local folder or under an ``s3://`` prefix (read with
``facet_lib.storage``). By job: ``steps.data`` (index, folds, shard plan, render, merge, fingerprint),
``steps.train`` (settings, backbone features, folds, CV, cross-dataset, λ search), ``steps.release``
(report, bundle, registration); ``steps.common`` holds what they share. Importing this package loads
neither torch nor the data/render stack: each step imports what it needs, so CPU-only steps (ingest,
render, merge, evaluate) never load torch.
"""

from facet_lib.steps.data import (
    fingerprint_step,
    folds_step,
    index_step,
    ingest_step,
    merge_step,
    quarantine_path,
    render_step,
    render_views,
)
from facet_lib.steps.release import evaluate_folds, evaluate_step, export_step, read_fold, register_best, register_step
from facet_lib.steps.train import (
    ablations_step,
    config_step,
    cross_dataset_step,
    cross_step,
    cv_step,
    features_step,
    train_fold_step,
    tune_report_step,
    tune_step,
)

__all__ = [
    "ablations_step",
    "config_step",
    "cross_dataset_step",
    "cross_step",
    "cv_step",
    "evaluate_folds",
    "evaluate_step",
    "export_step",
    "features_step",
    "fingerprint_step",
    "folds_step",
    "index_step",
    "ingest_step",
    "merge_step",
    "quarantine_path",
    "read_fold",
    "register_best",
    "register_step",
    "render_step",
    "render_views",
    "train_fold_step",
    "tune_report_step",
    "tune_step",
]
