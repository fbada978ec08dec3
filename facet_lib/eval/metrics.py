"""Metrics from prediction tables: accuracy, macro-F1, per-class F1, recall and Table 5's one-vs-rest
accuracy, their averages, confusion matrix — per fold and on the predictions pooled over all folds.

Definitions (``DEFINITIONS``, printed by the reports):
- ``accuracy``: share of samples predicted correctly (Tables 2-4 of the paper);
- ``acc_<class>``: Table 5's per-class "Accuracy": one-vs-rest accuracy (TP + TN) / N over all N samples
  scored (every baseline value of Table 5 is a multiple of 1/236; tests/eval/test_targets.py checks it);
  ``acc_average``: Table 5's "Average", the unweighted mean of the ``acc_<class>``. With K classes and
  single-label predictions ``acc_average`` = 1 − 2·(1 − accuracy)/K, so it reads much higher than accuracy;
- ``recall_<class>``: TP / (TP + FN); ``mean_class_recall``: their unweighted mean (UAR);
- ``macro_f1``: unweighted mean of the ``f1_<class>`` (Table 5's F1 "Average");
- per fold, a class absent from that fold's test set has no F1 and no recall (NaN, not 0): the fold's
  macro-F1 and UAR average over the classes present; its one-vs-rest accuracy is still defined (all TN
  or FP) and counts in ``acc_average``;
- ``mean`` / ``std`` rows: over folds of the per-fold numbers (NaN skipped);
- ``pooled`` row: the predictions of every fold concatenated and scored once (how Table 5's single set of
  numbers over all 4DME samples reads).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from facet_lib.config import INFERENCE_MODES

SUMMARY_ROWS = ("mean", "std", "pooled", "paper", "diff_to_paper")  # the rows of a CV table that are not folds
DEFINITIONS = {
    "accuracy": "share of test samples predicted correctly (Tables 2-4)",
    "macro_f1": "unweighted mean of the per-class F1 (Table 5's F1 'Average'); per fold over the classes "
    "present in that fold's test set, pooled over the classes present in all folds' predictions",
    "f1_<class>": "F1 of the class; NaN in a fold whose test set lacks the class",
    "acc_<class>": "Table 5's per-class 'Accuracy': one-vs-rest (TP + TN) / N over all N samples scored",
    "acc_average": "Table 5's accuracy 'Average': unweighted mean of acc_<class> over all classes "
    "(= 1 - 2(1 - accuracy)/K for K classes: not comparable with accuracy)",
    "recall_<class>": "TP / (TP + FN) of the class; NaN in a fold whose test set lacks the class",
    "mean_class_recall": "unweighted mean of the per-class recalls of the classes present (UAR)",
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
    recall = np.divide(np.diag(cm), support, out=np.full(len(labels), np.nan), where=support > 0)
    yv, pv = y.to_numpy(), p.to_numpy()
    ovr = (
        np.array([np.mean((yv == lab) == (pv == lab)) for lab in labels], float)
        if len(pred)
        else np.full(len(labels), np.nan)
    )
    out = {
        "accuracy": float(accuracy_score(y, p)),
        "macro_f1": float(f1_score(y, p, labels=present, average="macro", zero_division=0)) if present else np.nan,
        "mean_class_recall": float(np.nanmean(recall)) if present else np.nan,
        "acc_average": float(np.mean(ovr)),
        "n": int(len(pred)),
    }
    out |= {f"f1_{lab}": float(v) for lab, v in zip(labels, per_f1)}
    out |= {f"acc_{lab}": float(v) for lab, v in zip(labels, ovr)}
    out |= {f"recall_{lab}": float(v) for lab, v in zip(labels, recall)}
    out["confusion"] = cm.tolist()
    return out


def cv_table(preds: dict[int, pd.DataFrame], labels: list[str]) -> pd.DataFrame:
    """Rows: each fold and each inference mode; plus ``mean`` and ``std`` over folds and ``pooled``."""
    rows = []
    for mode in INFERENCE_MODES:
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
    return table[~table["fold"].astype(str).isin(SUMMARY_ROWS) & table["mode"].isin(INFERENCE_MODES)]


def pooled_confusion(preds: dict[int, pd.DataFrame], labels: list[str], mode: str = "class_conditional"):
    allp = pd.concat(preds.values())
    return confusion_matrix(allp["label"], allp[f"pred_{mode}"], labels=labels)
