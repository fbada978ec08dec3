"""Metrics from prediction tables: accuracy, macro-F1, per-class F1 and accuracy, mean class accuracy,
confusion matrix — per fold and on the predictions pooled over all folds.

Definitions (``DEFINITIONS``, printed by the reports):
- per fold, a class absent from that fold's test set has no F1 and no accuracy (NaN, not 0): the fold's
  macro-F1 and mean class accuracy average over the classes present in its test set;
- ``mean`` / ``std`` rows: over folds of the per-fold numbers (NaN skipped);
- ``pooled`` row: the predictions of every fold concatenated and scored once (the usual definition of
  4DME F1 and per-class accuracy; Table 5 of the paper);
- per-class accuracy is that class's recall; ``mean_class_acc`` is their unweighted mean (the reading of
  Table 5's "Average" taken here; the printed averages are not the means of the printed per-class values).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

MODES = ("class_conditional", "label_free")
SUMMARY_ROWS = ("mean", "std", "pooled", "paper", "diff_to_paper")  # the rows of a CV table that are not folds
DEFINITIONS = {
    "accuracy": "share of test samples predicted correctly",
    "macro_f1": "per fold: unweighted mean F1 over the classes present in that fold's test set; "
    "pooled: over the classes present in all folds' predictions together",
    "f1_<class>": "F1 of the class; NaN in a fold whose test set lacks the class",
    "acc_<class>": "accuracy of the class (its recall); NaN in a fold whose test set lacks the class",
    "mean_class_acc": "unweighted mean of the per-class accuracies of the classes present",
    "mean/std": "over folds of the per-fold values (NaN skipped)",
    "pooled": "every fold's predictions concatenated and scored once",
}


def fold_metrics(pred: pd.DataFrame, labels: list[str], mode: str = "class_conditional") -> dict:
    """Metrics of one prediction table (columns ``label`` and ``pred_<mode>``); see ``DEFINITIONS``."""
    y, p = pred["label"], pred[f"pred_{mode}"]
    cm = confusion_matrix(y, p, labels=labels)
    support = cm.sum(1)
    present = [lab for lab, s in zip(labels, support) if s > 0]
    per_f1 = f1_score(y, p, labels=labels, average=None, zero_division=0).astype(float)
    per_f1[support == 0] = np.nan
    per_acc = np.divide(np.diag(cm), support, out=np.full(len(labels), np.nan), where=support > 0)
    out = {
        "accuracy": float(accuracy_score(y, p)),
        "macro_f1": float(f1_score(y, p, labels=present, average="macro", zero_division=0)) if present else np.nan,
        "mean_class_acc": float(np.nanmean(per_acc)) if present else np.nan,
        "n": int(len(pred)),
    }
    out |= {f"f1_{lab}": float(v) for lab, v in zip(labels, per_f1)}
    out |= {f"acc_{lab}": float(v) for lab, v in zip(labels, per_acc)}
    out["confusion"] = cm.tolist()
    return out


def cv_table(preds: dict[int, pd.DataFrame], labels: list[str]) -> pd.DataFrame:
    """Rows: each fold and each inference mode; plus ``mean`` and ``std`` over folds and ``pooled``."""
    rows = []
    for mode in MODES:
        per = []
        for fold, df in sorted(preds.items()):
            m = fold_metrics(df, labels, mode)
            m.pop("confusion")
            per.append({"mode": mode, "fold": str(fold), **m})
        frame = pd.DataFrame(per)
        num = frame.drop(columns=["mode", "fold"])
        rows += per
        rows.append({"mode": mode, "fold": "mean", **num.mean().to_dict()})
        rows.append({"mode": mode, "fold": "std", **num.std(ddof=0).to_dict()})
        pooled = fold_metrics(pd.concat(preds.values(), ignore_index=True), labels, mode)
        pooled.pop("confusion")
        rows.append({"mode": mode, "fold": "pooled", **pooled})
    return pd.DataFrame(rows)


def fold_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The per-fold rows of a CV table (no summary or reference rows, no baseline)."""
    return table[~table["fold"].astype(str).isin(SUMMARY_ROWS) & table["mode"].isin(MODES)]


def pooled_confusion(preds: dict[int, pd.DataFrame], labels: list[str], mode: str = "class_conditional"):
    allp = pd.concat(preds.values())
    return confusion_matrix(allp["label"], allp[f"pred_{mode}"], labels=labels)
