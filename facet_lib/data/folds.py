"""Subject-independent, label-stratified K-fold splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from facet_lib.config.data import DATA
from facet_lib.errors import FoldLeakError


def make_folds(index: pd.DataFrame, n_folds: int = DATA.n_folds, seed: int = DATA.fold_seed) -> pd.DataFrame:
    """Assign every sample a fold in [0, n_folds): no subject in two folds, labels stratified as far as
    subjects allow (scikit-learn's StratifiedGroupKFold), deterministic for a seed.

    Returns a DataFrame with ``sample_id``, ``subject``, ``label``, ``fold``.
    """
    n_subj = index["subject"].nunique()
    if n_folds < 2 or n_folds > n_subj:
        raise FoldLeakError(
            f"cannot make {n_folds} subject-independent folds from {n_subj} subjects (need 2 <= n_folds <= subjects)"
        )
    from sklearn.model_selection import StratifiedGroupKFold  # here: reading folds needs no scikit-learn

    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    fold = np.full(len(index), -1, np.int64)
    for f, (_, test) in enumerate(splitter.split(np.zeros(len(index)), index["label"], index["subject"])):
        fold[test] = f
    out = pd.DataFrame(
        {
            "sample_id": index["sample_id"].to_numpy(),
            "subject": index["subject"].to_numpy(),
            "label": index["label"].to_numpy(),
            "fold": fold,
        }
    )
    check_folds(out)
    return out


def check_folds(folds: pd.DataFrame) -> None:
    """Refuse a split in which a subject appears in more than one fold or a sample has no fold."""
    if (folds["fold"] < 0).any():
        raise FoldLeakError(f"sample {folds.loc[folds['fold'] < 0, 'sample_id'].iloc[0]} has no fold")
    per = folds.groupby("subject")["fold"].nunique()
    leaked = per[per > 1]
    if len(leaked):
        s = leaked.index[0]
        raise FoldLeakError(
            f"subject {s} appears in folds {sorted(folds.loc[folds['subject'] == s, 'fold'].unique())}: "
            "a subject-independent split needs each subject in exactly one fold"
        )


def split(folds: pd.DataFrame, test_fold: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test) rows for one fold, with a final check that no test subject is in training."""
    test = folds[folds["fold"] == test_fold]
    train = folds[folds["fold"] != test_fold]
    overlap = set(test["subject"]) & set(train["subject"])
    if overlap:
        raise FoldLeakError(f"fold {test_fold}: test subject(s) {sorted(overlap)[:5]} also in training")
    return train, test


def save_folds(folds: pd.DataFrame, path: str | Path) -> Path:
    check_folds(folds)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    folds.to_csv(path, index=False)
    return Path(path)


def load_folds(path: str | Path) -> pd.DataFrame:
    folds = pd.read_csv(path, dtype={"sample_id": str, "subject": str, "label": str})
    check_folds(folds)
    return folds
