"""The trivial baseline every CV report shows beside the model: a logistic regression on the same
rendered views, downsampled (32×32 grey per view by default), trained and tested on the same folds.

If the model does not beat this, its accuracy says little. No torch here."""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from facet_lib.config import INFERENCE_MODES
from facet_lib.errors import ConfigError

NAME = "baseline_logreg"


def view_features(views: np.ndarray, size: int = 32) -> np.ndarray:
    """uint8 views (N, V, H, W, 3) → (N, V·size²) float32: each view grey (mean of channels), box-downsampled."""
    if views.ndim != 5 or views.shape[-1] != 3:
        raise ConfigError(f"baseline: expected views of shape (N, V, H, W, 3), got {views.shape}")
    n, v = views.shape[:2]
    grey = views.astype(np.float32).mean(-1)  # (N, V, H, W)
    out = np.empty((n, v, size, size), np.float32)
    for i in range(n):
        for j in range(v):
            out[i, j] = np.asarray(Image.fromarray(grey[i, j]).resize((size, size), Image.Resampling.BOX))
    return out.reshape(n, -1) / 255.0


def baseline_fold(features: np.ndarray, rows: pd.DataFrame, fold: int, seed: int = 0, c: float = 1.0) -> pd.DataFrame:
    """Fit on the rows whose ``fold`` differs from ``fold``, predict the rows of ``fold``. The frame has the
    columns ``facet_lib.eval.metrics.cv_table`` reads (the one prediction stands for both inference modes)."""
    y = rows["label"].to_numpy()
    folds = rows["fold"].astype(int).to_numpy()
    tr, te = folds != fold, folds == fold
    if len(set(y[tr])) < 2:
        raise ConfigError(f"baseline: fold {fold}'s training part has fewer than two classes")
    if not te.any():
        raise ConfigError(f"baseline: no test rows in fold {fold}")
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000, random_state=seed))
    with threadpool_limits(1):  # one BLAS thread: 25× faster than a thread per core on a shared 2-core machine
        clf.fit(features[tr], y[tr])
        p = clf.predict(features[te])
    df = rows.loc[te, [col for col in ("sample_id", "subject", "label") if col in rows]].reset_index(drop=True)
    for mode in INFERENCE_MODES:
        df[f"pred_{mode}"] = p
    return df


def baseline_predictions(
    views: np.ndarray,
    rows: pd.DataFrame,
    labels: list[str],
    size: int = 32,
    seed: int = 0,
    c: float = 1.0,
    folds: list[int] | None = None,
) -> dict[int, pd.DataFrame]:
    """Every fold of ``rows["fold"]`` (or ``folds``): fit on the other folds, predict this one."""
    if "fold" not in rows or rows["fold"].isna().any():
        raise ConfigError("baseline: every row needs a fold (pass the folds file)")
    if len(rows) != len(views):
        raise ConfigError(f"baseline: {len(rows)} rows for {len(views)} samples")
    unknown = set(rows["label"]) - set(labels)
    if unknown:
        raise ConfigError(f"baseline: labels {sorted(unknown)} are not in the label list {labels}")
    x = view_features(views, size)
    rows = rows.reset_index(drop=True)
    ids = sorted(set(rows["fold"].astype(int))) if folds is None else folds
    return {int(f): baseline_fold(x, rows, int(f), seed, c) for f in ids}


def baseline_cross(
    train_x: np.ndarray,
    train_labels: pd.Series | list[str],
    test_x: np.ndarray,
    test_rows: pd.DataFrame,
    scopes: dict[str, list[str]],
    seed: int = 0,
    c: float = 1.0,
) -> dict[str, pd.DataFrame]:
    """The cross-dataset split: fit on every source sample (``train_x``, labels ``train_labels``), predict every
    target sample (``test_rows``' labels already mapped into the source's). Per scope (e.g. ``target_classes``,
    ``source_classes``) the prediction is the most probable of that scope's labels, as the model's scores are
    taken over the scope's prompts only. Frames with the columns ``fold_metrics`` reads."""
    y = np.asarray(train_labels)
    if len(y) != len(train_x) or len(test_rows) != len(test_x):
        raise ConfigError(
            f"baseline: {len(y)} labels for {len(train_x)} source samples, "
            f"{len(test_rows)} rows for {len(test_x)} target samples"
        )
    if train_x.shape[1] != test_x.shape[1]:
        raise ConfigError(
            f"baseline: source and target views differ ({train_x.shape[1]} vs {test_x.shape[1]} features)"
        )
    if len(set(y)) < 2:
        raise ConfigError("baseline: the source has fewer than two classes")
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000, random_state=seed))
    with threadpool_limits(1):
        clf.fit(train_x, y)
        proba = clf.predict_proba(test_x)
    classes = list(clf.classes_)
    out = {}
    for scope, labels in scopes.items():
        cols = [classes.index(lab) for lab in labels if lab in classes]
        if not cols:
            raise ConfigError(f"baseline: no source samples of the {scope} labels {labels}")
        p = np.asarray(classes, dtype=object)[np.asarray(cols)[proba[:, cols].argmax(1)]]
        df = test_rows[[col for col in ("sample_id", "subject", "label") if col in test_rows]].reset_index(drop=True)
        for mode in INFERENCE_MODES:
            df[f"pred_{mode}"] = p
        out[scope] = df
    return out
